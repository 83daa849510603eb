"""MCP servers for cognitive steps: where they are defined, starting them, calling their tools.

A spec names MCP servers in ``[mcp_tools]`` (``required``, ``recommended``, ``optional``; the
reference §2.1). How to start one comes from the first of these that defines it (docs/mcp.md):

1. the spec: ``[mcp_tools.config.NAME]`` with ``command`` (and ``args``, ``env``, ``cwd``,
   ``timeout_seconds``, ``startup_timeout_seconds``); a table without ``command`` holds only
   settings and defines no server;
2. the project constitution: the same tables;
3. the JSON file named by ``SPECS_MCP_CONFIG``;
4. ``.mcp.json`` or ``mcp.json`` in the spec folder, then in the project constitution's folder.

A JSON file has the shape Claude Desktop, Claude Code and Cursor use:
``{"mcpServers": {"NAME": {"command": "...", "args": [...], "env": {...}}}}``. ``${VAR}`` and
``${VAR:-default}`` in ``command``, ``args``, ``env`` and ``cwd`` are read from the
environment. A server gets only the environment the SDK passes by default (``HOME``, ``PATH``
...) plus its ``env``: API keys are not handed to it unless named there.

:class:`McpHub` starts each server as a subprocess over stdio with the official ``mcp`` SDK,
initialises it and lists its tools (bounded by ``startup_timeout_seconds``), calls tools
(bounded by ``timeout_seconds``) from any task of the run, and closes every server at the end:
stdin closed, then SIGTERM, then SIGKILL (the SDK's shutdown), so no process is left behind.
Each session is owned by one task of its own, so start-up and shutdown keep the SDK's
structured-concurrency rules whichever step calls a tool. SDK errors become one sentence at this
boundary (:class:`McpStartError`, :class:`McpCallResult` with ``ok=False``).

:func:`verify` is rule 1.11: required and recommended servers are started (a required one that
is missing or fails halts the run before it starts, unless ``halt_if_required_missing = false``;
a recommended one is a warning); optional servers are listed, and started when defined (their
tools are offered), never a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, TextIO, cast

from specs.errors import SpecsError
from specs.spec.mcp_servers import (
    JSON_FILES,
    McpConfigError,
    ServerConfig,
    find_servers,
)

__all__ = [
    "JSON_FILES",
    "McpCallResult",
    "McpConfigError",
    "McpHub",
    "McpStartError",
    "McpUnavailable",
    "ServerConfig",
    "Verification",
    "find_servers",
    "offered_name",
    "verify",
]

MAX_RESULT_CHARS = 64_000
STDERR_TAIL = 300
#: the provider rule for tool names (OpenAI and Anthropic)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class McpUnavailable(SpecsError):
    """A required MCP server is not available: the run does not start."""

    exit_code = 2


class McpStartError(Exception):
    """A server that could not be started, initialised or listed (one sentence)."""


@dataclass(frozen=True, slots=True)
class McpCallResult:
    """A tool call's answer for the model: ``ok`` and the text (or why it failed)."""

    ok: bool
    content: str
    server: str
    tool: str


# -- tool names ---------------------------------------------------------------------------------


def offered_name(server: str, tool: str, taken: Iterable[str] = ()) -> str:
    """The name a server's tool is offered under: ``server__tool``, cut to the providers'
    ``^[a-zA-Z0-9_-]{1,64}$`` (other characters become ``_``); a clash gets a suffix."""
    clean = re.sub(r"[^a-zA-Z0-9_-]", "_", f"{server}__{tool}")
    name = clean[:64]
    taken = set(taken)
    number = 2
    while name in taken:
        suffix = f"_{number}"
        name = clean[:64 - len(suffix)] + suffix
        number += 1
    return name


# -- one server ---------------------------------------------------------------------------------


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class _Server:
    """One running server: a task owns the SDK's contexts from start to close."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.session: Any = None
        self.tools: list[Any] = []
        self.server_info = ""
        self.failure: str | None = None  # why it stopped working, once it has
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        # the server's stderr: kept for error messages, gone when closed
        self._stderr: IO[str] = tempfile.TemporaryFile(  # noqa: SIM115 - closed in close()
            "w+", encoding="utf-8", errors="replace")

    def stderr_tail(self) -> str:
        # pread: the server writes through the same open file, so its offset is left alone
        with contextlib.suppress(OSError, ValueError):
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            start = max(0, size - 4 * STDERR_TAIL)
            raw = os.pread(fd, size - start, start)
            text = " ".join(raw.decode("utf-8", "replace").split())
            return text[-STDERR_TAIL:]
        return ""

    def _command(self) -> str:
        return " ".join([self.config.command, *self.config.args])

    def _why(self, exc: BaseException, during: str) -> str:
        leaf = _leaf(exc)
        command = self._command()
        if isinstance(leaf, FileNotFoundError):
            text = f"cannot start `{command}`: command not found"
        elif isinstance(leaf, PermissionError):
            text = f"cannot start `{command}`: permission denied"
        elif isinstance(leaf, OSError):
            text = f"cannot start `{command}`: {leaf.strerror or leaf}"
        elif isinstance(leaf, TimeoutError):
            text = (f"no answer to {during} within {self.config.startup_timeout:g}s "
                    f"(`{command}`; raise startup_timeout_seconds if it is slow to start)")
        elif type(leaf).__name__ == "MCPError" and "closed" in str(leaf).lower():
            text = f"the server exited during {during} (`{command}`)"
        else:
            text = f"{during} failed (`{command}`): {type(leaf).__name__}: {leaf}"
        tail = self.stderr_tail()
        return text + (f"; its stderr ends: {tail}" if tail else "")

    async def start(self) -> None:
        """Start, initialise and list tools; :class:`McpStartError` says why not."""
        cwd = self.config.cwd
        if cwd is not None and not cwd.is_dir():
            # said here: the process would fail with "No such file or directory", which
            # reads as a missing command
            what = "is not a folder" if cwd.exists() else "does not exist"
            await self.close()
            raise McpStartError(f"cannot start `{self._command()}`: its working folder {cwd} "
                                f"{what} (cwd, {self.config.origin or 'its definition'})")
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._task = asyncio.create_task(self._own(), name=f"mcp:{self.config.name}")
        try:
            await asyncio.shield(self._ready)
        except BaseException:  # a failed start, or cancelled (Ctrl-C) while starting
            await asyncio.shield(self.close())
            raise

    async def _own(self) -> None:
        import anyio
        from mcp import ClientSession, StdioServerParameters, stdio_client

        assert self._ready is not None
        config = self.config
        during = "start-up"
        try:
            params = StdioServerParameters(command=config.command, args=list(config.args),
                                           env=dict(config.env) or None, cwd=config.cwd)
            async with contextlib.AsyncExitStack() as stack:
                streams = await stack.enter_async_context(
                    stdio_client(params, errlog=cast(TextIO, self._stderr)))
                session = await stack.enter_async_context(ClientSession(*streams))
                with anyio.fail_after(config.startup_timeout):
                    during = "initialize"
                    init = await session.initialize()
                    during = "tools/list"
                    self.tools = await _list_tools(session)
                info = init.server_info
                self.server_info = f"{info.name} {info.version}".strip() if info else ""
                self.session = session
                self._ready.set_result(None)
                await self._stop.wait()
                self.session = None
        except BaseException as exc:  # reported to the caller, never lost
            self.session = None
            if not self._ready.done():
                if isinstance(exc, asyncio.CancelledError):
                    self._ready.cancel()
                else:
                    self._ready.set_exception(McpStartError(self._why(exc, during)))
            elif self.failure is None and not self._stop.is_set():
                self.failure = self._why(exc, "the run")
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def call(self, tool: str, arguments: dict[str, Any]) -> tuple[bool, str]:
        """Call ``tool``; (ok, text for the model). Never raises for the server's faults."""
        import anyio

        session = self.session
        if session is None:
            return False, (f"MCP server {self.config.name!r} is not running"
                           + (f": {self.failure}" if self.failure else ""))
        try:
            with anyio.fail_after(self.config.call_timeout):
                result = await session.call_tool(tool, arguments)
        except TimeoutError:
            return False, (f"MCP tool {tool!r} of {self.config.name!r} gave no answer within "
                           f"{self.config.call_timeout:g}s")
        except Exception as exc:  # the SDK's and the transport's errors, at this boundary
            leaf = _leaf(exc)
            if type(leaf).__name__ == "MCPError" and "closed" in str(leaf).lower():
                self.failure = self.failure or "the server exited"
                tail = self.stderr_tail()
                return False, (f"MCP server {self.config.name!r} exited"
                               + (f"; its stderr ends: {tail}" if tail else ""))
            return False, f"MCP tool {tool!r} failed: {type(leaf).__name__}: {leaf}"
        return not bool(result.is_error), _result_text(result)

    async def close(self) -> None:
        self._stop.set()
        task = self._task
        if task is not None and not task.done() and self._ready is not None \
                and not self._ready.done():
            task.cancel()  # still starting: stop at once (the SDK's shutdown is shielded)
        if task is not None and not task.done():
            try:
                # the SDK's own shutdown is bounded (stdin, SIGTERM, SIGKILL: ~6 s at most)
                await asyncio.wait_for(asyncio.shield(task), timeout=15)
            except (TimeoutError, Exception):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        with contextlib.suppress(OSError):
            self._stderr.close()


async def _list_tools(session: Any) -> list[Any]:
    tools: list[Any] = []
    listed = await session.list_tools()
    tools.extend(listed.tools)
    cursor = listed.next_cursor
    pages = 1
    while cursor and pages < 100:
        from mcp.types import PaginatedRequestParams

        listed = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        tools.extend(listed.tools)
        cursor, pages = listed.next_cursor, pages + 1
    return tools


def _result_text(result: Any) -> str:
    """The text of a ``CallToolResult``: text blocks joined, other blocks described."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else
                         f"[binary resource {resource.uri} ({resource.mime_type or 'unknown'})]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} content ({getattr(block, 'mime_type', '') or 'unknown'}), "
                         "not shown]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(parts) if parts else "(no content)"
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[cut: {len(text) - MAX_RESULT_CHARS} more " \
                                          "characters]"
    return text


# -- the servers of a run -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferedTool:
    name: str  # as offered to the model
    server: str
    tool: str
    description: str
    parameters: dict[str, Any]


class McpHub:
    """The MCP servers of one run: start them, offer their tools, route calls, close them."""

    def __init__(self, servers: Mapping[str, ServerConfig],
                 broken: Mapping[str, str] | None = None) -> None:
        self.configs = dict(servers)
        self.broken = dict(broken or {})
        self.running: dict[str, _Server] = {}
        self.failed: dict[str, str] = {}
        self.offered: dict[str, OfferedTool] = {}

    @classmethod
    def for_spec(cls, loaded: Any, environ: Mapping[str, str] | None = None) -> McpHub:
        servers, broken = find_servers(loaded, environ)
        return cls(servers, broken)

    def why_missing(self, name: str) -> str | None:
        """None when ``name`` runs; else why not (not defined, unusable, failed to start)."""
        if name in self.running:
            return None
        if name in self.failed:
            return self.failed[name]
        if name in self.broken:
            return self.broken[name]
        return (f"server {name!r} is not configured (add [mcp_tools.config.{name}] command = "
                f'"..." to the spec, or an "mcpServers" entry in .mcp.json; see docs/mcp.md)')

    async def start(self, names: Iterable[str]) -> None:
        """Start the defined servers among ``names`` at once; failures go to ``failed``."""
        todo = [n for n in dict.fromkeys(names)
                if n in self.configs and n not in self.running and n not in self.failed]
        servers = [_Server(self.configs[n]) for n in todo]
        results = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
        unexpected: BaseException | None = None
        for server, result in zip(servers, results, strict=True):
            name = server.config.name
            if isinstance(result, McpStartError):
                self.failed[name] = f"server {name!r}: {result}"
            elif isinstance(result, BaseException):
                unexpected = unexpected or result  # the server closed itself
            else:
                self.running[name] = server  # closed by aclose(), whatever happens next
                self._offer(server)
        if unexpected is not None:
            raise unexpected

    def _offer(self, server: _Server) -> None:
        for tool in server.tools:
            name = offered_name(server.config.name, tool.name, self.offered)
            schema = dict(tool.input_schema or {})
            schema.setdefault("type", "object")
            if schema.get("type") == "object":
                schema.setdefault("properties", {})
            self.offered[name] = OfferedTool(
                name, server.config.name, tool.name,
                (tool.description or tool.title or tool.name).strip()[:1024]
                + f" (MCP server {server.config.name})", schema)

    def tools(self) -> list[OfferedTool]:
        return list(self.offered.values())

    async def call(self, name: str, arguments: Any) -> McpCallResult:
        """Call the offered tool ``name``; an error is a result, never an exception."""
        offered = self.offered[name]
        if not isinstance(arguments, dict):
            return McpCallResult(False, f"bad arguments for {name}: expected a JSON object",
                                 offered.server, offered.tool)
        ok, text = await self.running[offered.server].call(offered.tool, arguments)
        return McpCallResult(ok, text, offered.server, offered.tool)

    async def aclose(self) -> None:
        """Close every server (also when cancelled: each shutdown is shielded)."""
        servers, self.running = list(self.running.values()), {}
        for server in servers:
            await asyncio.shield(server.close())

    async def __aenter__(self) -> McpHub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# -- rule 1.11 ---------------------------------------------------------------------------------


@dataclass
class Verification:
    """The outcome of rule 1.11: the record for the log, the warnings, the fatal reason."""

    record: dict[str, Any]
    warnings: list[str]
    fatal: str | None


async def verify(mcp_tools: Any, hub: McpHub, *, now: float | None = None) -> Verification:
    """Start the servers of ``[mcp_tools]`` and judge them by rule 1.11 (module docstring)."""
    check = mcp_tools.verification
    required, recommended = list(mcp_tools.required), list(mcp_tools.recommended)
    optional = list(mcp_tools.optional)
    wanted = required + recommended + [n for n in optional if n in hub.configs]
    await hub.start(wanted)
    warnings: list[str] = []
    missing_required = [n for n in required if hub.why_missing(n) is not None]
    missing_recommended = [n for n in recommended if hub.why_missing(n) is not None]
    fatal: str | None = None
    if missing_required:
        reasons = "; ".join(str(hub.why_missing(n)) for n in missing_required)
        text = f"required MCP server{'s' if len(missing_required) > 1 else ''} not available" \
               f" (rule 1.11): {reasons}"
        if check.check_on_startup and check.halt_if_required_missing:
            fatal = text
        else:
            warnings.append(text + "; going on without "
                            + ("them" if len(missing_required) > 1 else "it"))
    if missing_recommended and check.warn_if_recommended_missing:
        for name in missing_recommended:
            warnings.append(f"recommended MCP server not available: {hub.why_missing(name)}; "
                            "going on without its tools")

    def group(names: list[str], missing: list[str]) -> dict[str, Any]:
        return {"total": len(names), "verified": [n for n in names if n not in missing],
                "missing": missing}

    record: dict[str, Any] = {
        "verification_enabled": check.check_on_startup,
        "verification_timestamp": _iso(time.time() if now is None else now),
        "required_tools": group(required, missing_required),
        "recommended_tools": group(recommended, missing_recommended),
        "optional_tools": {"total": len(optional), "listed": optional,
                           "started": [n for n in optional if n in hub.running]},
        "verification_status": "FAIL" if missing_required else "PASS",
        "missing_reasons": {n: hub.why_missing(n) for n in missing_required
                            + missing_recommended},
    }
    if check.log_available_tools:
        record["available_tools"] = {
            server: [t.tool for t in hub.offered.values() if t.server == server]
            for server in hub.running}
    return Verification(record, warnings, fatal)


def _iso(epoch: float) -> str:
    from specs.events import iso

    return iso(epoch)
