"""Diagnostics: what the loader and the validator say about a spec.

A :class:`Diagnostic` is one problem (or note) with a severity, a stable code, a one-sentence
message a user can act on, and a :class:`Location` (file, 1-based line and column). Loading and
validation never raise on bad input: they collect diagnostics and return them all at once.

Severities, from most to least serious:

- ``error``: the spec cannot run as written (structural problems, unreadable files).
- ``warning``: the constitution's quality rules; ``--strict`` turns them into errors.
- ``info``: worth knowing, never blocking (unknown keys kept, exe file not interpreted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How serious a diagnostic is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return RANKS[self._value_]


#: severity value -> rank (0 most serious), the order diagnostics are listed in
RANKS: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


# Diagnostics are made by the thousand on big specs (one per step for some rules), so Location
# and Diagnostic write their slots through the slots' own descriptors: a frozen dataclass's
# generated __init__ goes through object.__setattr__ once per field, twice as slow. The
# dataclass still supplies the fields, repr, equality, hashing and immutability.

@dataclass(frozen=True, slots=True, init=False)
class Location:
    """Where something is: a file and a 1-based line and column (0 when unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __init__(self, file: str, line: int = 0, col: int = 0) -> None:
        _set_file(self, file)
        _set_line(self, line)
        _set_col(self, col)

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        if self.col <= 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.col}"


_set_file, _set_line, _set_col = (vars(Location)[name].__set__ for name in ("file", "line", "col"))

#: the default of ``Diagnostic.extra``: never stored, a fresh dict takes its place
_NO_EXTRA: dict[str, Any] = {}


@dataclass(frozen=True, slots=True, init=False)
class Diagnostic:
    """One finding: severity, stable code (e.g. ``E-DUP-STEP``), message and location.

    ``strict`` marks a warning that ``--strict`` raises to an error (the constitution's quality
    rules); ``hint`` is an optional sentence on how to fix it; ``excerpt`` optional lines of
    source (e.g. a condition with a caret under the problem), rendered indented under the line.
    """

    severity: Severity
    code: str
    message: str
    location: Location
    hint: str = ""
    strict: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    excerpt: str = ""

    def __init__(self, severity: Severity, code: str, message: str, location: Location,
                 hint: str = "", strict: bool = False, extra: dict[str, Any] = _NO_EXTRA,
                 excerpt: str = "") -> None:
        _set_severity(self, severity)
        _set_code(self, code)
        _set_message(self, message)
        _set_location(self, location)
        _set_hint(self, hint)
        _set_strict(self, strict)
        _set_extra(self, {} if extra is _NO_EXTRA else extra)
        _set_excerpt(self, excerpt)

    def render(self) -> str:
        """``file:line:col: severity CODE message`` (the CLI's one-line form), then the
        excerpt's lines, if any, indented by four spaces."""
        loc = self.location  # str(loc), inlined: the summary of a big run renders thousands
        where = loc.file if loc.line <= 0 else f"{loc.file}:{loc.line}" if loc.col <= 0 else \
            f"{loc.file}:{loc.line}:{loc.col}"
        if self.hint:
            text = f"{where}: {self.severity._value_} {self.code} {self.message} ({self.hint})"
        else:
            text = f"{where}: {self.severity._value_} {self.code} {self.message}"
        if not self.excerpt:
            return text
        return text + "".join(f"\n    {line}" for line in self.excerpt.splitlines())

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "file": self.location.file,
            "line": self.location.line,
            "col": self.location.col,
            "excerpt": self.excerpt,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnostic:
        """The diagnostic :meth:`to_dict` gave (``strict`` and ``extra`` are not kept)."""
        return cls(Severity(data["severity"]), data["code"], data["message"],
                   Location(data["file"], data.get("line", 0), data.get("col", 0)),
                   data.get("hint", ""), excerpt=data.get("excerpt", ""))

    def escalated(self) -> Diagnostic:
        """The same diagnostic as an error (``--strict`` applied)."""
        return Diagnostic(Severity.ERROR, self.code, self.message, self.location,
                          self.hint, self.strict, self.extra, self.excerpt)


(_set_severity, _set_code, _set_message, _set_location, _set_hint, _set_strict, _set_extra,
 _set_excerpt) = (vars(Diagnostic)[name].__set__ for name in (
    "severity", "code", "message", "location", "hint", "strict", "extra", "excerpt"))
