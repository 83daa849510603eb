"""Where a spec's MCP servers are defined, and how to start each one (docs/mcp.md).

A spec names MCP servers in ``[mcp_tools]``; how to start one comes from the first of these that
defines it: the spec's ``[mcp_tools.config.NAME]`` tables (with ``command``), the project
constitution's, the JSON file named by ``SPECS_MCP_CONFIG``, then ``.mcp.json`` or ``mcp.json``
in the spec folder and in the project constitution's folder. ``${VAR}`` and ``${VAR:-default}``
are read from the environment. This module only reads definitions (the validator checks them);
:mod:`specs.llm.mcp` starts the servers and calls their tools.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.errors import SpecsError

__all__ = ["JSON_FILES", "McpConfigError", "ServerConfig", "config_problems", "find_servers"]

JSON_FILES = (".mcp.json", "mcp.json")
ENV_FILE = "SPECS_MCP_CONFIG"
DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_CALL_TIMEOUT = 120.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_LAUNCH_KEYS = ("command", "args", "env", "cwd", "timeout_seconds", "startup_timeout_seconds")


class McpConfigError(SpecsError):
    """A server definition that cannot be read (the message names the file and the fix)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to start one stdio MCP server, and where that was said (``origin``)."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    origin: str = ""


# -- definitions --------------------------------------------------------------------------------


def find_servers(loaded: Any, environ: Mapping[str, str] | None = None
                 ) -> tuple[dict[str, ServerConfig], dict[str, str]]:
    """The servers defined for ``loaded`` (a :class:`~specs.spec.load.LoadedSpec`), by name, and
    the names whose definition is unusable with why (e.g. ``${KEY}`` not set).

    Raises :class:`McpConfigError` for a file that cannot be read or is not the expected
    shape. Only the first source that defines a name counts (see the module docstring).
    """
    environ = os.environ if environ is None else environ
    found: dict[str, ServerConfig] = {}
    broken: dict[str, str] = {}

    def take(name: str, entry: Any, origin: str, base: Path) -> None:
        if name in found or name in broken:
            return
        try:
            found[name] = _server(name, entry, origin, base, environ)
        except _Unusable as exc:
            broken[name] = str(exc)

    spec = loaded.spec
    config = spec.mcp_tools.config if spec is not None and spec.mcp_tools else None
    for name, entry in (config or {}).items():
        if isinstance(entry, dict) and "command" in entry:
            where = loaded.sources.at(("mcp_tools", "config", name, "command"))
            take(name, entry, f"{where}", loaded.folder)
    project = loaded.project
    if project is not None:
        table = project.get("mcp_tools.config")
        for name, entry in (table or {}).items() if isinstance(table, dict) else ():
            if isinstance(entry, dict) and "command" in entry:
                where = project.sources.at(("mcp_tools", "config", name, "command"))
                take(name, entry, f"{where}", project.path.parent)
    for path in _json_files(loaded, environ):
        for name, entry in _read_json(path).items():
            take(name, entry, str(path), path.parent)
    return found, broken


def _json_files(loaded: Any, environ: Mapping[str, str]) -> list[Path]:
    files: list[Path] = []
    given = environ.get(ENV_FILE, "").strip()
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise McpConfigError(f"{ENV_FILE}={given}: no such file (point it at a JSON file "
                                 'like {"mcpServers": {"NAME": {"command": "..."}}}, or unset '
                                 "it)")
        files.append(path)
    folders = [loaded.folder]
    if loaded.project is not None:
        folders.append(loaded.project.path.parent)
    seen: set[Path] = set()
    for folder in folders:
        for name in JSON_FILES:
            path = folder / name
            if path.is_file() and path.resolve() not in seen:
                seen.add(path.resolve())
                files.append(path)
    return files


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise McpConfigError(f"{path}: cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        line, col = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
        message = getattr(exc, "msg", str(exc))
        raise McpConfigError(f"{path}:{line}:{col}: not valid JSON: {message} (fix the file "
                             "or remove it)") from None
    servers = data.get("mcpServers", data.get("servers")) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(f'{path}: expected {{"mcpServers": {{"NAME": {{"command": '
                             '"...", "args": [...]}}}} (an object of servers by name)')
    return servers


class _Unusable(Exception):
    pass


def _server(name: str, entry: Any, origin: str, base: Path,
            environ: Mapping[str, str]) -> ServerConfig:
    """One definition, checked; :class:`_Unusable` says what is wrong and where."""
    where = f"server {name!r} ({origin})"
    if not isinstance(entry, dict):
        raise _Unusable(f"{where}: expected a table/object with command, args, env")
    if "command" not in entry:
        kind = "url" if "url" in entry else None
        raise _Unusable(f"{where}: only stdio servers (with a command) are supported"
                        if kind else f"{where}: no command given")

    def expand(value: str, key: str) -> str:
        def one(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in environ:
                return environ[var]
            if default is not None:
                return default
            raise _Unusable(f"{where}: {key} uses ${{{var}}}, which is not set in the "
                            f"environment (export {var}=..., or write the value)")
        return _VAR.sub(one, value)

    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise _Unusable(f"{where}: command must be a non-empty string")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise _Unusable(f"{where}: args must be a list of strings")
    env = entry.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str | int | float | bool)
                                            and not isinstance(v, dict) for v in env.values()):
        raise _Unusable(f"{where}: env must be a table of strings")
    cwd = entry.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise _Unusable(f"{where}: cwd must be a string")
    timeouts: dict[str, float] = {}
    for key, default in (("startup_timeout_seconds", DEFAULT_STARTUP_TIMEOUT),
                         ("timeout_seconds", DEFAULT_CALL_TIMEOUT)):
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise _Unusable(f"{where}: {key} must be a positive number of seconds")
        timeouts[key] = float(value)
    # absolute, so a server's folder does not depend on where `specs run` was started
    base = Path(os.path.abspath(base))
    folder = Path(expand(cwd, "cwd")).expanduser() if cwd else base
    if not folder.is_absolute():
        folder = Path(os.path.normpath(base / folder))
    return ServerConfig(
        name=name, command=expand(command, "command"),
        args=tuple(expand(a, "args") for a in args),
        env={str(k): expand(v if isinstance(v, str) else json.dumps(v), f"env.{k}")
             for k, v in env.items()},
        cwd=folder, startup_timeout=timeouts["startup_timeout_seconds"],
        call_timeout=timeouts["timeout_seconds"], origin=origin)


def config_problems(entry: Any) -> list[tuple[str, str]]:
    """Wrong types in a ``[mcp_tools.config.NAME]`` table that defines a server: (key, what
    is wrong) pairs, for the validator."""
    if not isinstance(entry, dict) or "command" not in entry:
        return []
    try:
        _server("x", entry, "", Path("."), _Everything())
    except _Unusable as exc:
        text = str(exc).split(": ", 1)[-1]
        key = next((k for k in _LAUNCH_KEYS if text.startswith(k)), "command")
        return [(key, text)]
    return []


class _Everything(dict[str, str]):
    """An environment in which every variable is set (types are checked, not values)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return ""
