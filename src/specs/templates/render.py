"""Rendering: a template's text with its placeholders replaced by answers.

The syntax is small on purpose (no loops, no code: a template cannot run anything)::

    {{ name }}                  the answer of variable ``name`` (or a built-in name)
    {{ name | shell }}          through filters, left to right
    {{ '{{' }}                  a literal: how to write ``{{`` itself

Built-in names: ``descriptor`` (the new spec's), ``date`` (today, YYYY-MM-DD), ``template``
and ``template_version``. Filters:

=========  ==================================================================================
lower      lower case (each item of a list)
upper      upper case
snake      snake_case: runs of anything but letters and digits become ``_``
shell      quoted for ``/bin/sh`` (a list: each item quoted, joined with spaces; a secret:
           ``"${ENV}"``, so the shell reads it at run time)
bullets    a Markdown list, one ``- item`` per line
=========  ==================================================================================

**Escaping follows where the placeholder stands.** In a ``.toml`` file the text is scanned as
TOML: inside a basic string (``"..."``) the answer is escaped for it (``\\``, ``\\"``, line
breaks as ``\\n``); inside a multi-line basic string (``\"\"\"...\"\"\"``) backslashes and
quotes are escaped and line breaks kept; as a bare value (``max_retries = {{ retries }}``) it
becomes a TOML value of its type (a string is quoted, a list an array, a bool ``true``/``false``,
an int a number); in a comment line breaks become spaces. A placeholder inside a literal string
(``'...'``) or in a key is a template error: literal strings cannot hold every answer. In any
other file (Markdown, scripts) the answer is written as it is; a multi-line answer keeps its
line breaks only when the placeholder is alone on its line (indented like it), else they
become spaces, so one answer cannot break a heading or a bullet.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from specs.templates.errors import TemplateError

__all__ = ["FILTERS", "Context", "render_text", "toml_basic", "toml_value"]

FILTERS = ("lower", "upper", "snake", "shell", "bullets")
Kind = Literal["toml", "text"]
_EXPR = re.compile(r"""^\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<name>[A-Za-z_]\w*)
                      (?P<filters>(?:\s*\|\s*[A-Za-z_]\w*)*))\s*$""", re.X)


@dataclass(frozen=True)
class Context:
    """What placeholders read: ``values`` by name; ``secrets`` map a name to the environment
    variable it is rendered as."""

    values: Mapping[str, Any]
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Secret:
    env: str

    def __str__(self) -> str:
        return "${" + self.env + "}"


def render_text(text: str, context: Context, *, kind: Kind, file: str) -> str:
    """``text`` with every placeholder replaced; raises :class:`TemplateError` (file:line:col)
    for an unknown name or filter, an unclosed ``{{``, or a placeholder where it cannot be
    escaped."""
    return _Renderer(text, context, kind, file).run()


class _Renderer:
    def __init__(self, text: str, context: Context, kind: Kind, file: str) -> None:
        self.text, self.context, self.kind, self.file = text, context, kind, file

    def fail(self, at: int, message: str) -> TemplateError:
        line = self.text.count("\n", 0, at) + 1
        col = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return TemplateError(f"{self.file}:{line}:{col}: {message}")

    def run(self) -> str:
        text, out, i, state = self.text, [], 0, "normal"
        if "{{" not in text:
            return text
        size = len(text)
        while i < size:
            if text.startswith("{{", i):
                end = text.find("}}", i + 2)
                newline = text.find("\n", i + 2)
                if end < 0 or (0 <= newline < end):
                    raise self.fail(i, "'{{' is not closed by '}}' on the same line")
                out.append(self.placeholder(i, end + 2, state))
                i = end + 2
                continue
            if self.kind == "toml":
                step, state = _toml_step(text, i, state)
            else:
                step = 1
            out.append(text[i:i + step])
            i += step
        return "".join(out)

    def placeholder(self, start: int, end: int, state: str) -> str:
        match = _EXPR.match(self.text[start + 2:end - 2])
        if match is None:
            raise self.fail(start, f"cannot read the placeholder {self.text[start:end]!r} "
                            "(write {{ name }} or {{ name | filter }})")
        if match["single"] is not None or match["double"] is not None:
            value: Any = match["single"] if match["single"] is not None else match["double"]
        else:
            value = self.lookup(start, match["name"])
            for name in [f.strip() for f in match["filters"].split("|") if f.strip()]:
                value = self.filter(start, name, value)
        return self.place(start, end, state, value)

    def lookup(self, at: int, name: str) -> Any:
        if name in self.context.secrets:
            return _Secret(self.context.secrets[name])
        if name not in self.context.values:
            known = ", ".join(sorted([*self.context.values, *self.context.secrets]))
            raise self.fail(at, f"unknown variable {name!r} (known: {known})")
        return self.context.values[name]

    def filter(self, at: int, name: str, value: Any) -> Any:
        if name not in FILTERS:
            raise self.fail(at, f"unknown filter {name!r} (filters: {', '.join(FILTERS)})")
        if name == "shell":
            if isinstance(value, _Secret):
                return f'"{value}"'
            items = value if isinstance(value, list) else [_plain(value)]
            return " ".join(shlex.quote(item) for item in items)
        if name == "bullets":
            items = value if isinstance(value, list) else [_plain(value)]
            return "\n".join(f"- {item}" for item in items)
        if isinstance(value, _Secret):
            return value
        if isinstance(value, list):
            return [_word(name, item) for item in value]
        return _word(name, _plain(value))

    def place(self, start: int, end: int, state: str, value: Any) -> str:
        if self.kind == "text":
            return self.in_text(start, end, _plain(value))
        if state == "normal":
            if self.in_key(start, end):
                raise self.fail(start, "a placeholder cannot stand in a key or table header")
            return toml_value(str(value) if isinstance(value, _Secret) else value)
        if state == "basic":
            return toml_basic(_plain(value))
        if state == "mlbasic":
            return _toml_multiline(_plain(value))
        if state == "comment":
            return " ".join(_plain(value).split())
        raise self.fail(start, "a placeholder cannot stand in a literal string ('...'): "
                        "use a basic string (\"...\") so the answer can be escaped")

    def in_key(self, start: int, end: int) -> bool:
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", end)
        before = self.text[line_start:start]
        after = self.text[end:line_end if line_end >= 0 else len(self.text)]
        if before.lstrip().startswith("["):
            return "=" not in before
        return "=" not in before and "=" in after.split("#", 1)[0]

    def in_text(self, start: int, end: int, value: str) -> str:
        if "\n" not in value:
            return value
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", end)
        before = self.text[line_start:start]
        after = self.text[end:line_end if line_end >= 0 else len(self.text)]
        if before.strip() or after.strip():
            return " ".join(value.split())
        return value.replace("\n", "\n" + before)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _word(name: str, text: str) -> str:
    if name == "lower":
        return text.lower()
    if name == "upper":
        return text.upper()
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()


def toml_basic(text: str) -> str:
    """``text`` escaped for the inside of a TOML basic string (``"..."``)."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def _toml_multiline(text: str) -> str:
    return "\n".join(toml_basic(line) for line in text.split("\n"))


def toml_value(value: Any) -> str:
    """``value`` as a TOML value: a quoted string, a number, a bool, an array of strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(f'"{toml_basic(str(item))}"' for item in value) + "]"
    return f'"{toml_basic(str(value))}"'


def _toml_step(text: str, i: int, state: str) -> tuple[int, str]:
    """How many characters to copy at ``i`` and the TOML lexical state after them."""
    char = text[i]
    if state == "normal":
        if char == "#":
            return 1, "comment"
        if text.startswith('"""', i):
            return 3, "mlbasic"
        if text.startswith("'''", i):
            return 3, "mlliteral"
        if char == '"':
            return 1, "basic"
        if char == "'":
            return 1, "literal"
        return 1, "normal"
    if state == "comment":
        return 1, "normal" if char == "\n" else "comment"
    if state in ("basic", "mlbasic") and char == "\\":
        return 2, state
    if state == "basic":
        return 1, "normal" if char in '"\n' else "basic"
    if state == "mlbasic":
        return (3, "normal") if text.startswith('"""', i) else (1, "mlbasic")
    if state == "literal":
        return 1, "normal" if char in "'\n" else "literal"
    return (3, "normal") if text.startswith("'''", i) else (1, "mlliteral")
