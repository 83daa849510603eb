"""Source positions for TOML documents: where each table, array element and key was written.

``tomllib`` parses a document but forgets where anything came from. :func:`scan_positions`
re-reads the same text and maps every path of the parsed document (the tuple of dict keys and
list indexes that reaches a value, e.g. ``("tasks", 1, "steps", 0, "name")``) to the 1-based
``(line, column)`` where it was written, so diagnostics can say ``file:line:col``.

Approach: one forward pass over the text with a position index ``i`` and compiled regexes
(possessive quantifiers, so nothing backtracks). The scanner is a small state machine rather
than a recursive parser:

- at the top level it reads statements: ``[table]`` / ``[[array]]`` headers (which set the
  current table path) and ``key = value`` lines;
- a value is either skipped whole (strings of all four kinds, numbers, booleans, dates) or, for
  ``{`` and ``[``, pushes a frame on an explicit stack (inline table or array with a running
  element index), so deeply nested or garbage input cannot exhaust the Python stack;
- ``[[a.b]]`` headers are resolved through a counter per array-of-tables path: every prefix
  that names an array of tables is followed by the index of its latest element;
- the common lines (``bare_key = "one-line value"``, simple array items, ``k = v`` in inline
  tables, bare dotted headers) each take one regex match; everything else takes the general
  path. Paths deeper than :data:`MAX_DEPTH` end the scan (quadratic memory otherwise).

Offsets are turned into (line, column) at the end by bisecting the line starts; columns count
characters (the text is a ``str``), line breaks are ``\\n`` (a CRLF's ``\\r`` ends its line). On
text tomllib would reject, the scanner keeps going and returns what it found; it never raises.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate

Path = tuple[str | int, ...]

__all__ = ["MAX_DEPTH", "Path", "scan_positions"]

# Paths longer than this end the scan (every prefix of a path is a path too, so unbounded depth
# would cost quadratic memory on garbage like "[[[[..."). tomllib's recursion limit stops it
# long before this for inline arrays and tables, and real documents are a few levels deep.
MAX_DEPTH = 256

# Whitespace, newlines and comments (a BOM is tolerated as whitespace).
_WS = re.compile(r"(?:[ \t\r\n\ufeff]++|#[^\n]*+)*+")
_HWS = re.compile(r"[ \t]*+")
# A one-line value that needs no frame: a string that is not multi-line, or a scalar.
_SIMPLE = (
    r"""(?:"(?:[^"\\\n]++|\\.)*+"(?!")|'[^'\n]*+'(?!')"""
    r"""|\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d[0-9:.+\-Zz]*+|[0-9A-Za-z_+\-.:]++)"""
)
_GAP = r"(?:[ \t\r\n,]++|#[^\n]*+)*+"  # blanks, comments and commas between array items
# Fast paths inside frames: a simple array element or the closing `]`; in an inline table,
# `bare_key = ` (group 1, with group 2 the value when it is simple) or the closing `}`.
_ELEM = re.compile(_GAP + "(?:(" + _SIMPLE + r")|\])")
_PAIR = re.compile(_GAP + r"(?:([A-Za-z0-9_\-]++)[ \t]*+=[ \t]*+(" + _SIMPLE + r")?|\})")
# A header whose key is bare and dotted, e.g. `[[tasks.steps]]` (group 1 set for `[[`).
_HEADER = re.compile(
    r"\[(\[)?[ \t]*+([A-Za-z0-9_\-]++(?:[ \t]*+\.[ \t]*+[A-Za-z0-9_\-]++)*+)[ \t]*+\]"
)
# Fast path for the common top-level line `bare_key = simple value  # comment`: group 1 is the
# key; group 2 (the line end) matches only when the value is a one-line string or a scalar.
_STMT = re.compile(
    r"""(?:[ \t\r\n]++|#[^\n]*+)*+([A-Za-z0-9_\-]++)[ \t]*+=[ \t]*+"""
    r"""(?:(?:"(?:[^"\\\n]++|\\.)*+"|'[^'\n]*+'|[0-9A-Za-z_+\-.:]++)"""
    r"""[ \t\r]*+(?:#[^\n]*+)?(\n|\Z))?"""
)
# One part of a (possibly dotted) key: bare, "basic" or 'literal', with surrounding blanks.
_KEY = re.compile(r"""[ \t]*+(?:([A-Za-z0-9_\-]++)|"((?:[^"\\\n]++|\\.)*+)"|'([^'\n]*+)')[ \t]*+""")
_BASIC = re.compile(r'"(?:[^"\\\n]++|\\.)*+"')
# A multi-line basic string; the closing """ may be preceded by one or two more quotes.
_ML_BASIC = re.compile(r'"""(?:[^"\\]++|\\[\s\S]|"(?!""))*+"""(?:""?)?')
# Numbers, booleans, inf/nan and date-times (including the "date time" form with a space).
_SCALAR = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d[0-9:.+\-Zz]*+|[0-9A-Za-z_+\-.:]++")
_ESC = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|x([0-9A-Fa-f]{2})|([\s\S]))")
_SIMPLE_ESC = {
    "b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b", '"': '"', "\\": "\\",
}  # fmt: skip
# Characters that cannot start a value: the value is missing; let the caller resynchronise.
_NO_VALUE = frozenset("]},\r\n#")


def scan_positions(text: str) -> dict[Path, tuple[int, int]]:
    """Map each path in the document to (line, col), 1-based.

    - a key ``x = 1`` inside ``[a.b]`` -> ``("a", "b", "x")`` at the key's first character
      (a quoted key at its opening quote); each part of a dotted key ``a.b = 1`` at its own
      first character: ``("a",)`` (the intermediate table) and ``("a", "b")``;
    - a table header ``[a.b]`` -> ``("a", "b")`` (and ``("a",)`` unless defined elsewhere
      first) at the ``[``;
    - the N-th ``[[tasks]]`` -> ``("tasks", N)`` at the ``[[``, and ``("tasks",)`` at the first
      one; ``[[tasks.steps]]`` -> ``("tasks", T, "steps", M)`` where T is the latest task and M
      counts only that task's steps;
    - inline tables and arrays: every key and element, elements at their first character.

    Never raises: on malformed text, returns what was found.
    """
    try:
        return _to_line_col(text, _scan_offsets(text))
    except Exception:  # pragma: no cover - defensive; the scanner is written not to raise
        return {}


def _to_line_col(text: str, offsets: dict[Path, int]) -> dict[Path, tuple[int, int]]:
    starts = [0, *accumulate(len(line) + 1 for line in text.split("\n"))]
    if text.startswith("\ufeff"):
        starts[0] = 1  # a BOM is not a column (offset 0, the BOM itself, is never recorded)
    return {
        path: (line := bisect_right(starts, off), off - starts[line - 1] + 1)
        for path, off in offsets.items()
    }


def _scan_offsets(text: str) -> dict[Path, int]:
    """The scanner proper: map each path to the character offset where it was written."""
    out: dict[Path, int] = {}
    n = len(text)
    i = 0
    table: Path = ()  # the table the current top-level key/value lines belong to
    aot: dict[Path, int] = {}  # array-of-tables path -> number of elements so far
    frame_paths: list[Path] = []  # open inline tables / arrays ...
    frame_index: list[int] = []  # ... with the next element index (-1 for an inline table)
    value_path: Path | None = None  # set when a value starts at i
    stmt = _STMT.match
    elem = _ELEM.match
    pair = _PAIR.match
    setdefault = out.setdefault
    while i < n:
        if value_path is not None:
            c = text[i]
            if c == "{" or c == "[":
                if len(value_path) >= MAX_DEPTH:
                    break
                frame_paths.append(value_path)
                frame_index.append(0 if c == "[" else -1)
                i += 1
            elif c not in _NO_VALUE:
                i = _skip_value(text, i, n)
            value_path = None
            if not frame_paths:
                i = _eol(text, i, n)
            continue
        if not frame_paths:
            m = stmt(text, i)
            if m is not None:  # `key = ...`: done if the value was simple, else value_path
                key, simple = m.group(1, 2)
                path = (*table, key)
                out[path] = m.start(1)  # a new path (unless the document is invalid)
                if simple is None:
                    value_path = path
                i = m.end()
                continue
        else:
            index = frame_index[-1]
            m = elem(text, i) if index >= 0 else pair(text, i)
            if m is not None:
                i = m.end()
                key, simple = m.group(1, 2) if index < 0 else (m.group(1), "")
                if key is None:  # the closing bracket or brace
                    frame_paths.pop()
                    frame_index.pop()
                    if not frame_paths:
                        i = _eol(text, i, n)
                elif index >= 0:
                    out[(*frame_paths[-1], index)] = m.start(1)
                    frame_index[-1] = index + 1
                else:
                    path = (*frame_paths[-1], key)
                    out[path] = m.start(1)
                    if simple is None:
                        value_path = path
                continue
        i = _skip(_WS, text, i)
        if i >= n:
            break
        c = text[i]
        if not frame_paths:  # any other top-level statement
            if c == "[":
                header = _header(text, i, out, aot)
                if header is None:
                    break
                table = header
                i = _eol(text, i, n)
                continue
            parts, j = _keys(text, i)
            if not parts or not text.startswith("=", j):
                i = _eol(text, max(i, j), n)
                continue
            if len(table) + len(parts) > MAX_DEPTH:
                break
            path = table
            for name, pos in parts:
                path += (name,)
                setdefault(path, pos)
            value_path = path
            i = _skip(_HWS, text, j + 1)
            continue
        index = frame_index[-1]
        if c == "]" or c == "}":
            frame_paths.pop()
            frame_index.pop()
            i += 1
            if not frame_paths:
                i = _eol(text, i, n)
        elif c == ",":
            i += 1
        elif index >= 0:  # an array element starts here
            value_path = (*frame_paths[-1], index)
            setdefault(value_path, i)
            frame_index[-1] = index + 1
        else:  # a key/value pair inside an inline table
            parts, j = _keys(text, i)
            if not parts:
                i += 1
                continue
            if len(frame_paths[-1]) + len(parts) > MAX_DEPTH:
                break
            path = frame_paths[-1]
            for name, pos in parts:
                path += (name,)
                setdefault(path, pos)
            if text.startswith("=", j):
                value_path = path
                i = _skip(_HWS, text, j + 1)
            else:
                i = j
    return out


def _skip(pattern: re.Pattern[str], text: str, i: int) -> int:
    """The offset after what ``pattern`` (which may match nothing) matches at ``i``."""
    m = pattern.match(text, i)
    return i if m is None else m.end()


def _eol(text: str, i: int, n: int) -> int:
    """The offset just after the end of the line containing ``i``."""
    j = text.find("\n", i)
    return n if j < 0 else j + 1


def _skip_value(text: str, i: int, n: int) -> int:
    """Skip a string or scalar starting at ``i``; always moves forward."""
    c = text[i]
    if c == '"':
        if text.startswith('"""', i):
            m = _ML_BASIC.match(text, i)
            return m.end() if m else n
        m = _BASIC.match(text, i)
        return m.end() if m else _eol(text, i, n)
    if c == "'":
        if text.startswith("'''", i):
            j = text.find("'''", i + 3)
            if j < 0:
                return n
            j += 3
            for _ in range(2):  # up to two quotes just before the closing ''' are content
                if text.startswith("'", j):
                    j += 1
            return j
        j = text.find("'", i + 1)
        eol = _eol(text, i, n)
        return j + 1 if 0 <= j < eol else eol
    m = _SCALAR.match(text, i)
    return m.end() if m and m.end() > i else i + 1


def _keys(text: str, i: int) -> tuple[list[tuple[str, int]], int]:
    """Read a (dotted) key at ``i``: its parts with their offsets, and the offset after it."""
    parts: list[tuple[str, int]] = []
    m = _KEY.match(text, i)
    while m is not None:
        group = m.lastindex
        if group == 1:
            parts.append((m.group(1), m.start(1)))
        elif group == 2:
            raw = m.group(2)
            parts.append((_unescape(raw) if "\\" in raw else raw, m.start(2) - 1))
        else:
            parts.append((m.group(3), m.start(3) - 1))
        i = m.end()
        if not text.startswith(".", i):
            break
        m = _KEY.match(text, i + 1)
    return parts, i


def _header(text: str, i: int, out: dict[Path, int], aot: dict[Path, int]) -> Path | None:
    """Record a ``[table]`` or ``[[array]]`` header at ``i``; return the table it opens.

    None if the table would be too deep (see MAX_DEPTH).
    """
    m = _HEADER.match(text, i)
    if m is not None:
        is_array = m.group(1) is not None
        dotted = m.group(2)
        names = dotted.split(".")
        if " " in dotted or "\t" in dotted:
            names = [name.strip(" \t") for name in names]
    else:
        is_array = text.startswith("[[", i)
        names = [name for name, _ in _keys(text, i + (2 if is_array else 1))[0]]
    if len(names) >= MAX_DEPTH:
        return None
    path: Path = ()
    last = len(names) - 1
    for k, name in enumerate(names):
        path += (name,)
        if k < last:  # an intermediate table; through an array of tables, its latest element
            out.setdefault(path, i)
            count = aot.get(path, 0)
            if count:
                path += (count - 1,)
        elif is_array:
            out.setdefault(path, i)
            count = aot.get(path, 0)
            aot[path] = count + 1
            path += (count,)
            out[path] = i
        else:
            out[path] = i  # an explicit header wins over an earlier implicit mention
    return path if len(path) < MAX_DEPTH else None


def _unescape_one(m: re.Match[str]) -> str:
    digits = m.group(1) or m.group(2) or m.group(3)
    if digits:
        code = int(digits, 16)
        return chr(code) if code < 0x110000 else m.group(0)
    return _SIMPLE_ESC.get(m.group(4), m.group(0))


def _unescape(raw: str) -> str:
    """Decode the escapes of a basic string's body (unknown escapes are kept as written)."""
    return _ESC.sub(_unescape_one, raw)
