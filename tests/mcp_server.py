"""A small real MCP server for the tests (stdio, the official ``mcp`` SDK's MCPServer).

Tools: ``add(a, b)``, ``lookup(key)`` (from a fixed table; an unknown key is a tool error),
``boom(reason)`` (raises), ``die()`` (the process exits at once) and ``wait(seconds)`` (answers
after that long: a slow tool).

Environment: ``MCP_PID_FILE`` - append this process's id there at start; ``MCP_SLOW_START`` -
sleep this many seconds before serving; ``MCP_CRASH`` - print it to stderr and exit 3 before
serving (a server that cannot start).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

TABLE = {"alpha": "first letter", "omega": "last letter"}

server = MCPServer("specs-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
def lookup(key: str) -> str:
    """Look a key up in the test table."""
    if key not in TABLE:
        raise ToolError(f"no entry for {key!r}")  # its message reaches the client
    return TABLE[key]


@server.tool()
def boom(reason: str) -> str:
    """Always fails (an unexpected error: the client sees only that the tool failed)."""
    raise RuntimeError(f"boom: {reason}")


@server.tool()
async def wait(seconds: float) -> str:
    """Answers after ``seconds``."""
    await anyio.sleep(seconds)
    return f"waited {seconds:g} s"


@server.tool()
def die() -> str:
    """Ends the server process at once (a server that crashes mid-run)."""
    print("dying on purpose", file=sys.stderr, flush=True)
    os._exit(7)


if __name__ == "__main__":
    pid_file = os.environ.get("MCP_PID_FILE")
    if pid_file:
        with Path(pid_file).open("a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    if os.environ.get("MCP_SLOW_START"):
        time.sleep(float(os.environ["MCP_SLOW_START"]))  # deaf to stdin meanwhile
    crash = os.environ.get("MCP_CRASH")
    if crash:
        print(crash, file=sys.stderr, flush=True)
        sys.exit(3)
    server.run()
