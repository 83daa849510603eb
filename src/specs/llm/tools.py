"""The built-in tools of cognitive steps, confined to the run's workspace.

A model working on a step may call four tools: ``read_file``, ``write_file``, ``list_files``
and ``run_command``. Each is a method of :class:`Workspace` and returns a :class:`ToolResult`;
none raises for bad input: a refusal is ``ok=False`` with a reason the model can act on.
:func:`tool_specs` describes the tools for providers (name, description, JSON-Schema
parameters) and :func:`call_tool` checks a call's arguments against that schema and runs it.

Confinement (docs/prompts.md "Tools"):

- **Paths** are resolved by :meth:`Workspace.resolve` one component at a time: ``..`` may not
  climb above the root, an absolute path must lie inside it, and every symlink met on the way
  is followed and must stay inside (a link inside pointing inside is fine). The final open uses
  ``O_NOFOLLOW``, and reads accept only regular files (a FIFO would block forever).
- **Writes** create missing parent folders, inside the workspace only.
- **Protected paths** (:class:`~specs.llm.sandbox.Protected`): the run's state folder is
  neither read, written nor listed; the spec's own files are read, never written.
- **Commands** run with ``/bin/sh -c`` in the workspace, in their own process group, with a
  timeout that kills the whole group and output capped per stream
  (:func:`specs.executors.process.run_process`). The command names of the line are checked
  against ``[llm.tools]`` ``allow``/``deny`` glob patterns (deny wins; with an allow list,
  anything not in it is refused). API keys and other secrets are not passed to commands.
  This is a guard against mistakes, not a sandbox: an allowed interpreter can do anything
  the user running ``specs`` can, unless ``[llm.tools] sandbox = "bwrap"`` confines it
  (:mod:`specs.llm.sandbox`, docs/security.md).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fnmatch
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema

from specs.executors.process import run_process
from specs.llm.commands import check_command, command_names
from specs.llm.sandbox import SANDBOXES, Protected, bwrap_argv, bwrap_problem

__all__ = [
    "TOOL_NAMES",
    "OutsideWorkspace",
    "ToolResult",
    "Workspace",
    "call_tool",
    "command_names",
    "tool_specs",
]

MAX_SYMLINKS = 40
MAX_WALK = 100_000  # entries list_files looks at, at most
#: environment variables never passed to commands (the agent could print them)
SECRET_ENV = re.compile(r"(_API_KEY|_TOKEN|_SECRET|SECRET_KEY|PASSWORD|_PASSWD|_CREDENTIALS)$|"
                        r"^(OPENAI|ANTHROPIC|AWS|AZURE|GOOGLE|GITHUB|HF)_.*(KEY|TOKEN|SECRET)",
                        re.I)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call gives back to the model: ``ok`` and a text to read."""

    ok: bool
    content: str


class OutsideWorkspace(ValueError):
    """A path that does not stay inside the workspace (the message says why)."""


class Workspace:
    """The folder a step's agent may touch, and the limits of its tools.

    ``allow``/``deny``: glob patterns on command names (``None``: no list). ``env``: the
    environment of commands (default: this process's, without secrets). ``protected``: the
    paths no tool touches (the run's state folder) or changes (the spec's files).
    ``sandbox``: ``"bwrap"`` runs commands under bubblewrap (``network`` False: without
    network), ``None``/``"none"`` as they are.
    """

    def __init__(self, root: Path, *, allow: list[str] | None = None,
                 deny: list[str] | None = None, command_timeout: float = 120.0,
                 max_output_bytes: int = 64_000, max_read_bytes: int = 100_000,
                 max_write_bytes: int = 10_000_000, max_entries: int = 500,
                 env: Mapping[str, str] | None = None, protected: Protected | None = None,
                 sandbox: str | None = None, network: bool = True) -> None:
        if not root.is_dir():
            raise NotADirectoryError(f"workspace {root} is not a directory")
        if sandbox not in (None, *SANDBOXES):
            raise ValueError(f"[llm.tools] sandbox must be one of {', '.join(SANDBOXES)}, "
                             f"not {sandbox!r}")
        problem = bwrap_problem() if sandbox == "bwrap" else None
        if problem:
            raise ValueError(problem)
        self.protected = protected or Protected()
        self.sandbox = sandbox if sandbox != "none" else None
        self.network = network
        self.given = Path(os.path.abspath(root))
        self.root = root.resolve()
        self.allow, self.deny = allow, deny
        self.command_timeout = command_timeout
        self.max_output_bytes = max_output_bytes
        self.max_read_bytes, self.max_write_bytes = max_read_bytes, max_write_bytes
        self.max_entries = max_entries
        self.env = dict(env) if env is not None else {
            k: v for k, v in os.environ.items() if not SECRET_ENV.search(k)}

    @classmethod
    def from_config(cls, root: Path, tools: Mapping[str, Any] | None,
                    **kwargs: Any) -> Workspace:
        """A workspace with the settings of ``[llm.tools]`` (``allow``, ``deny``,
        ``timeout_seconds``, ``max_output_bytes``, ``sandbox``, ``network``); raises ValueError
        for a wrong type or a sandbox that cannot run here."""
        tools = tools or {}
        lists: dict[str, list[str] | None] = {}
        for key in ("allow", "deny"):
            value = tools.get(key)
            if value is not None and not (isinstance(value, list)
                                          and all(isinstance(v, str) for v in value)):
                raise ValueError(f"[llm.tools] {key} must be a list of strings")
            lists[key] = value
        for key, name in (("timeout_seconds", "command_timeout"),
                          ("max_output_bytes", "max_output_bytes")):
            value = tools.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ValueError(f"[llm.tools] {key} must be a positive number")
                kwargs.setdefault(name, int(value) if name == "max_output_bytes" else value)
        sandbox = tools.get("sandbox")
        if sandbox is not None and not isinstance(sandbox, str):
            raise ValueError(f"[llm.tools] sandbox must be one of {', '.join(SANDBOXES)}")
        network = tools.get("network", True)
        if not isinstance(network, bool):
            raise ValueError("[llm.tools] network must be true or false")
        if not network and sandbox != "bwrap":
            raise ValueError('[llm.tools] network = false needs sandbox = "bwrap" (without a '
                             "sandbox, commands cannot be kept off the network)")
        return cls(root, allow=lists["allow"], deny=lists["deny"], sandbox=sandbox,
                   network=network, **kwargs)

    # -- paths -------------------------------------------------------------------------------

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """The real path ``path`` names inside the workspace (it need not exist).

        Raises :class:`OutsideWorkspace` when it leaves the workspace by ``..``, an absolute
        path or a symlink, or loops through symlinks.
        """
        raw = os.fspath(path)
        if not raw.strip():
            raise OutsideWorkspace("empty path")
        if "\x00" in raw:
            raise OutsideWorkspace("the path holds a NUL character")
        todo = self._inside_parts(PurePosixPath(raw))
        if todo is None:
            raise OutsideWorkspace(f"{raw}: absolute path outside the workspace; use a path "
                                   "relative to the workspace")
        current, hops = self.root, 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if current == self.root:
                    raise OutsideWorkspace(f"{raw}: '..' leads out of the workspace")
                current = current.parent
                continue
            candidate = current / part
            if not candidate.is_symlink():
                current = candidate
                continue
            hops += 1
            if hops > MAX_SYMLINKS:
                raise OutsideWorkspace(f"{raw}: too many levels of symbolic links")
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                inside = self._inside_parts(target)
                if inside is None:
                    raise OutsideWorkspace(f"{raw}: {self.show(candidate)} is a symlink to "
                                           f"{target}, outside the workspace")
                todo, current = inside + todo, self.root
            else:
                todo = list(target.parts) + todo
        return current

    def _inside_parts(self, path: PurePosixPath) -> list[str] | None:
        """The parts of ``path`` below the root (None: an absolute path outside it)."""
        if not path.is_absolute():
            return list(path.parts)
        for base in (self.root, self.given):
            with contextlib.suppress(ValueError):
                return list(path.relative_to(base).parts)  # ".." is walked, not collapsed
        return None

    def _allowed(self, path: str, *, write: bool) -> Path:
        """:meth:`resolve`, refusing the protected paths (:class:`OutsideWorkspace`)."""
        real = self.resolve(path)
        why = self.protected.refusal(real, write=write)
        if why:
            raise OutsideWorkspace(f"{path}: {why}")
        return real

    def show(self, path: Path) -> str:
        """``path`` as the model sees it: relative to the workspace."""
        with contextlib.suppress(ValueError):
            rel = path.relative_to(self.root).as_posix()
            return rel if rel != "." else "."
        return str(path)

    # -- the tools ---------------------------------------------------------------------------

    def read_file(self, path: str, *, max_bytes: int | None = None,
                  offset: int = 0) -> ToolResult:
        """Up to ``max_bytes`` of a text file (from byte ``offset``), saying what was left."""
        cap = min(max_bytes or self.max_read_bytes, self.max_read_bytes)
        try:
            real = self._allowed(path, write=False)
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OutsideWorkspace as exc:
            return ToolResult(False, f"refused: {exc}")
        except OSError as exc:
            return ToolResult(False, _os_error(path, exc))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            what = "is a directory; use list_files" if stat.S_ISDIR(info.st_mode) else \
                "not a regular file"
            return ToolResult(False, f"{path}: {what}")
        with os.fdopen(fd, "rb") as handle:
            handle.seek(max(0, offset))
            data = handle.read(cap)
        size = info.st_size
        if b"\x00" in data[:8192]:
            return ToolResult(False, f"{path}: a binary file ({size:,} bytes); read_file "
                                     "reads text")
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=False)
        rest = size - max(0, offset) - len(data)
        if rest > 0:
            text += (f"\n[... {rest:,} more bytes not shown; the file has {size:,} bytes: "
                     f"read on with offset={max(0, offset) + len(data)} ...]")
        return ToolResult(True, text)

    def write_file(self, path: str, content: str) -> ToolResult:
        """Create or replace a text file (and its missing parent folders)."""
        data = content.encode("utf-8")
        if len(data) > self.max_write_bytes:
            return ToolResult(False, f"refused: {len(data):,} bytes is more than the "
                                     f"{self.max_write_bytes:,} a write may hold")
        try:
            real = self._allowed(path, write=True)
            if real == self.root or real.is_dir():
                return ToolResult(False, f"{path}: is a directory")
            real.parent.mkdir(parents=True, exist_ok=True)
            if self.resolve(real.parent) != real.parent:  # a link slipped in meanwhile
                raise OutsideWorkspace(f"{path}: its folder changed while writing")
            fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OutsideWorkspace as exc:
            return ToolResult(False, f"refused: {exc}")
        except OSError as exc:
            return ToolResult(False, _os_error(path, exc))
        return ToolResult(True, f"wrote {len(data):,} bytes to {self.show(real)}")

    def list_files(self, path: str = ".", *, pattern: str | None = None,
                   max_entries: int | None = None) -> ToolResult:
        """Files and folders (``name/``) under ``path``, recursively, sorted; ``pattern``
        globs the name (or the relative path, when it holds a ``/``)."""
        cap = min(max_entries or self.max_entries, self.max_entries)
        try:
            real = self._allowed(path, write=False)
        except OutsideWorkspace as exc:
            return ToolResult(False, f"refused: {exc}")
        if not real.exists():
            return ToolResult(False, f"{path}: no such file or directory")
        if not real.is_dir():
            return ToolResult(True, self.show(real))
        entries: list[str] = []
        seen = 0
        for name, is_dir in self._walk(real):
            seen += 1
            if pattern is None or fnmatch.fnmatchcase(
                    name if "/" in pattern else name.rsplit("/", 1)[-1], pattern):
                entries.append(name + "/" * is_dir)
            if seen >= MAX_WALK:
                break
        shown = entries[:cap]
        if len(entries) > cap:
            shown.append(f"[... {len(entries) - cap:,} more entries not shown; narrow the "
                         "path or the pattern ...]")
        if seen >= MAX_WALK:
            shown.append(f"[... stopped after {MAX_WALK:,} entries ...]")
        if not shown:
            where = self.show(real)
            return ToolResult(True, f"(no entries in {where}"
                                    + (f" matching {pattern!r})" if pattern else ")"))
        return ToolResult(True, "\n".join(shown))

    def _walk(self, top: Path) -> list[tuple[str, bool]]:
        """(path relative to the workspace, is a folder) under ``top``, sorted, links not
        followed."""
        out: list[tuple[str, bool]] = []
        hides = self.protected.hides if self.protected.hidden else None
        for folder, dirs, files in os.walk(top, onerror=None, followlinks=False):
            base = Path(folder)
            if hides is not None:  # the state folder is not shown, nor walked
                dirs[:] = [d for d in dirs if not hides(base / d)]
                files = [f for f in files if not hides(base / f)]
            dirs.sort()
            names = sorted([(d, True) for d in dirs] + [(f, False) for f in files])
            out += [(self.show(base / name), is_dir) for name, is_dir in names]
            if len(out) >= MAX_WALK:
                break
        return sorted(out)

    async def run_command(self, command: str, *, timeout: float | None = None) -> ToolResult:
        """``/bin/sh -c command`` in the workspace, if the allow/deny lists permit it."""
        refusal = self.check_command(command)
        if refusal:
            return ToolResult(False, f"refused: {refusal}")
        limit = min(timeout or self.command_timeout, self.command_timeout)
        try:
            argv = ["/bin/sh", "-c", command]
            if self.sandbox == "bwrap":
                argv = bwrap_argv(argv, self.root, self.protected, network=self.network)
            result = await run_process(argv, cwd=self.root, env=dict(self.env),
                                       timeout=limit, cap=self.max_output_bytes)
        except OSError as exc:
            return ToolResult(False, f"could not start the command: {exc}")
        lines = []
        if result.timed_out:
            lines.append(f"timed out after {limit:g} s: the command and everything it started "
                         "were killed")
        else:
            lines.append(f"exit code {result.returncode}")
        out, err = result.stdout.rstrip("\n"), result.stderr.rstrip("\n")
        lines.append(f"--- stdout ---\n{out}" if out else "(no stdout)")
        if err:
            lines.append(f"--- stderr ---\n{err}")
        if result.dropped:
            lines.append(f"[... {result.dropped:,} bytes of output dropped: each stream keeps "
                         f"{self.max_output_bytes:,} bytes ...]")
        return ToolResult(result.returncode == 0 and not result.timed_out, "\n".join(lines))

    def check_command(self, command: str) -> str | None:
        """Why ``command`` may not run, or None (see :func:`specs.llm.commands.check_command`)."""
        return check_command(command, self.allow, self.deny)


def _os_error(path: str, exc: OSError) -> str:
    if exc.errno is not None and exc.errno == getattr(os, "ELOOP", -1):
        return f"refused: {path}: is a symbolic link"
    return f"{path}: {exc.strerror or exc}"


# --- tool specs and calls ------------------------------------------------------------------


def tool_specs() -> list[dict[str, Any]]:
    """The built-in tools as providers want them: name, description, JSON-Schema parameters."""
    return [dict(spec) for spec in _SPECS]


_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "read_file",
     "description": "Read a text file of the workspace. Paths are relative to the workspace; "
                    "long files are cut (the answer says where to read on with offset).",
     "parameters": {"type": "object", "additionalProperties": False, "required": ["path"],
                    "properties": {
                        "path": {"type": "string", "minLength": 1,
                                 "description": "File path, relative to the workspace."},
                        "max_bytes": {"type": "integer", "minimum": 1,
                                      "description": "Read at most this many bytes."},
                        "offset": {"type": "integer", "minimum": 0,
                                   "description": "Start reading at this byte."}}}},
    {"name": "write_file",
     "description": "Create or replace a text file in the workspace (missing folders are "
                    "created).",
     "parameters": {"type": "object", "additionalProperties": False,
                    "required": ["path", "content"],
                    "properties": {
                        "path": {"type": "string", "minLength": 1,
                                 "description": "File path, relative to the workspace."},
                        "content": {"type": "string",
                                    "description": "The whole new content of the file."}}}},
    {"name": "list_files",
     "description": "List the files and folders (ending in /) under a folder of the "
                    "workspace, recursively, sorted.",
     "parameters": {"type": "object", "additionalProperties": False,
                    "properties": {
                        "path": {"type": "string", "minLength": 1, "default": ".",
                                 "description": "Folder, relative to the workspace."},
                        "pattern": {"type": "string", "minLength": 1,
                                    "description": "Glob on the name (e.g. *.py), or on the "
                                                   "relative path when it holds a /."},
                        "max_entries": {"type": "integer", "minimum": 1,
                                        "description": "List at most this many entries."}}}},
    {"name": "run_command",
     "description": "Run a shell command (/bin/sh -c) in the workspace; gives the exit code, "
                    "standard output and standard error. Commands are time-limited and may be "
                    "limited to an allow list.",
     "parameters": {"type": "object", "additionalProperties": False, "required": ["command"],
                    "properties": {
                        "command": {"type": "string", "minLength": 1,
                                    "description": "The command line."},
                        "timeout": {"type": "number", "exclusiveMinimum": 0,
                                    "description": "Seconds before the command is killed "
                                                   "(at most the configured limit)."}}}},
)

TOOL_NAMES: tuple[str, ...] = tuple(spec["name"] for spec in _SPECS)
_VALIDATORS = {spec["name"]: jsonschema.Draft202012Validator(spec["parameters"])
               for spec in _SPECS}


async def call_tool(ws: Workspace, name: str, arguments: Any) -> ToolResult:
    """Run the tool ``name`` with ``arguments`` (a JSON object), checked against its schema."""
    validator = _VALIDATORS.get(name)
    if validator is None:
        return ToolResult(False, f"unknown tool {name!r}; available: {', '.join(TOOL_NAMES)}")
    if not isinstance(arguments, dict):
        return ToolResult(False, f"bad arguments for {name}: expected a JSON object, got "
                                 f"{type(arguments).__name__}")
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        problems = "; ".join(
            (f"{'/'.join(map(str, e.absolute_path))}: " if e.absolute_path else "") + e.message
            for e in errors[:3])
        return ToolResult(False, f"bad arguments for {name}: {problems}")
    args: dict[str, Any] = arguments
    if name == "read_file":
        return await asyncio.to_thread(ws.read_file, args["path"],
                                       max_bytes=args.get("max_bytes"),
                                       offset=args.get("offset", 0))
    if name == "write_file":
        return await asyncio.to_thread(ws.write_file, args["path"], args["content"])
    if name == "list_files":
        return await asyncio.to_thread(ws.list_files, args.get("path", "."),
                                       pattern=args.get("pattern"),
                                       max_entries=args.get("max_entries"))
    return await ws.run_command(args["command"], timeout=args.get("timeout"))
