"""Reading spec files safely, parsing TOML with locations, and writing a Spec back as TOML.

Everything here turns bad input into :class:`~specs.diagnostics.Diagnostic` values: a missing,
empty, binary, non-UTF-8 or oversized file, input beyond :mod:`specs.spec.limits`, and TOML
syntax errors (with the parser's line and column). One parser, ``tomllib``, reads every file
whatever its size. ``null`` is not TOML, but three real project constitutions use it: with
``null_tolerant=True`` a failed parse is retried once with those keys treated as absent, and a
warning names each one (reference §6.2).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from specs.diagnostics import Diagnostic, Location, Severity
from specs.spec.limits import input_limits
from specs.spec.sources import SourceMap

MAX_FILE_MB_DEFAULT = 16.0
_NULL_LINE = re.compile(r"^([ \t]*)([A-Za-z0-9_\-\"']+)[ \t]*=[ \t]*null[ \t]*(#.*)?$", re.M)
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def max_file_bytes() -> int:
    """Largest spec file we read: ``SPECS_MAX_FILE_MB`` (default 16 MB)."""
    try:
        mb = float(os.environ.get("SPECS_MAX_FILE_MB", MAX_FILE_MB_DEFAULT))
    except ValueError:
        mb = MAX_FILE_MB_DEFAULT
    return int(mb * 1024 * 1024)


def _error(code: str, message: str, where: Location, hint: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, where, hint)


def read_text(path: Path, what: str = "file") -> tuple[str | None, list[Diagnostic]]:
    """Read a UTF-8 text file; on any problem return ``None`` and one error diagnostic."""
    where = Location(str(path))
    try:
        size = path.stat().st_size
        limit = max_file_bytes()
        if size > limit:
            return None, [_error(
                "E-FILE-SIZE",
                f"{what} is {size / 1048576:.1f} MB, larger than the {limit / 1048576:.0f} MB "
                "that specs reads",
                where, "split the spec with [composition] includes, or raise SPECS_MAX_FILE_MB")]
        data = path.read_bytes()
    except IsADirectoryError:
        return None, [_error("E-FILE-READ", f"{what} is a directory, not a file", where)]
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return None, [_error("E-FILE-READ", f"cannot read {what}: {reason}", where)]
    if b"\x00" in data[:65536] or b"\x00" in data[-65536:]:
        return None, [_error("E-FILE-BINARY", f"{what} is a binary file, not text", where,
                             "point specs at the spec's parameters_*.toml")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [_error("E-FILE-ENCODING",
                             f"{what} is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                             Location(str(path), line, col), "save the file as UTF-8")]
    return text, []


def parse_toml(
    text: str, file: str, *, null_tolerant: bool = False
) -> tuple[dict[str, Any] | None, SourceMap, list[Diagnostic]]:
    """Parse TOML text; return the document, its source map and diagnostics."""
    diagnostics: list[Diagnostic] = []
    if not text.strip():
        return None, SourceMap(file), [_error(
            "E-TOML-EMPTY", "file is empty", Location(file, 1, 1),
            "add [goal] and [[tasks]] tables, or start from a template: `specs new TEMPLATE` "
            "(see `specs templates`)")]
    refused = input_limits(text, file)
    if refused:
        return None, SourceMap(file), refused
    try:
        doc = _loads(text)
    except tomllib.TOMLDecodeError as exc:
        nulls = list(_NULL_LINE.finditer(text)) if null_tolerant else []
        if not nulls:
            return None, SourceMap(file), [_syntax_error(exc, file)]
        for match in nulls:
            line = text.count("\n", 0, match.start()) + 1
            diagnostics.append(Diagnostic(
                Severity.WARNING, "W-TOML-NULL",
                f"'{match.group(2)} = null' is not TOML; the key is treated as absent",
                Location(file, line, len(match.group(1)) + 1),
                "delete the line, or give the key a value"))
        text = _NULL_LINE.sub(lambda m: m.group(1) + "# " + m.group(0).lstrip(), text)
        try:
            doc = _loads(text)
        except tomllib.TOMLDecodeError as exc2:
            return None, SourceMap(file), [_syntax_error(exc2, file)]
        except _Unparsable as exc2:
            return None, SourceMap(file), [exc2.diagnostic(file)]
    except _Unparsable as exc:
        return None, SourceMap(file), [exc.diagnostic(file)]
    return doc, SourceMap(file, text=text), diagnostics


class _Unparsable(Exception):
    """The parser failed in a way :func:`input_limits` should have prevented (a safety net:
    one diagnostic instead of an internal error)."""

    def diagnostic(self, file: str) -> Diagnostic:
        return _error("E-TOML-LIMIT", f"the TOML parser gave up: {self}", Location(file),
                      "simplify the file (docs/validation.md, Limits)")


def _loads(text: str) -> dict[str, Any]:
    try:
        return _parse(text)
    except tomllib.TOMLDecodeError:
        raise
    except (RecursionError, OverflowError, ValueError, MemoryError) as exc:
        raise _Unparsable(f"{exc.__class__.__name__}: {str(exc)[:120]}") from exc


def _parse(text: str) -> dict[str, Any]:
    """The one TOML parser, for every file and size (bench/bench_load.py --parsers measured a
    second, faster one: it saved a few milliseconds on real specs, not worth two parsers)."""
    return tomllib.loads(text)


def _syntax_error(exc: tomllib.TOMLDecodeError, file: str) -> Diagnostic:
    message = str(exc)
    match = _TOML_POS.search(message)
    line, col = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    message = _TOML_POS.sub("", message).strip().rstrip(".")
    return _error("E-TOML-SYNTAX", f"TOML syntax error: {message}", Location(file, line, col),
                  "fix the TOML at that position")


def to_toml(data: dict[str, Any]) -> str:
    """Serialise a plain document (dicts, lists, scalars) as TOML text."""
    return tomlkit.dumps(data)
