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

__all__ = ["bind", "serve"]


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


def serve(config: DashboardConfig, *, announce: Callable[[str], None] = print,
          log_level: str = "warning") -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM), saying the address first."""
    sock = bind(config.host, config.port)
    config.port = sock.getsockname()[1]
    app = create_app(config)
    host = f"[{config.host}]" if ":" in config.host else config.host
    link = f"http://{host}:{config.port}/runs"
    announce(f"specs dashboard: {link}" + (" (open it with ?token=TOKEN once)"
                                           if config.token else "") + "; Ctrl-C stops it")
    server = uvicorn.Server(uvicorn.Config(
        app, log_level=log_level, access_log=False, timeout_graceful_shutdown=2,
        lifespan="on"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
