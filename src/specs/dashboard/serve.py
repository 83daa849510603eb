"""Serving the dashboard with uvicorn (``specs dashboard``).

The listening socket is bound here, before uvicorn starts, so an address in use is one
clear error (exit code 2) and ``--port 0`` can pick a free port and say which.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from specs.dashboard.app import create_app
from specs.dashboard.config import DashboardConfig
from specs.errors import UsageError

__all__ = ["DashboardServer", "bind", "serve"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; UsageError when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another "
                         "--port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class DashboardServer(uvicorn.Server):
    """uvicorn's server, which ends the dashboard's event streams first when it stops (they
    never end by themselves, and uvicorn waits for open responses before its lifespan's
    shutdown)."""

    def __init__(self, config: DashboardConfig, *, log_level: str = "warning") -> None:
        self.app = create_app(config)
        super().__init__(uvicorn.Config(
            self.app, host=config.host, port=config.port, log_level=log_level,
            access_log=False, timeout_graceful_shutdown=2, lifespan="on"))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.app.state.dashboard.hub.close()
        await super().shutdown(sockets)


def serve(config: DashboardConfig, *, announce: Callable[[str], None] = print,
          log_level: str = "warning") -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM), saying the address first."""
    sock = bind(config.host, config.port)
    config.port = sock.getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    link = f"http://{host}:{config.port}/runs"
    announce(f"specs dashboard: {link}" + (" (open it with ?token=TOKEN once)"
                                           if config.token else "") + "; Ctrl-C stops it")
    server = DashboardServer(config, log_level=log_level)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
