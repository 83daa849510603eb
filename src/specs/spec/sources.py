"""Source maps: where each table and key of a loaded document came from.

A :class:`SourceMap` maps a document path (``("tasks", 0, "steps", 2, "expected_output")``)
to a :class:`~specs.diagnostics.Location`. Positions are computed lazily, the first time a
diagnostic asks for one: a clean spec never pays for the scan. The loader renames and moves
keys while it normalises aliases; instead of rewriting the (large) position table it records
*redirects* from the new path prefix to the old one, resolved only when a diagnostic asks
where something is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from specs.diagnostics import Location

DocPath = tuple[str | int, ...]


class SourceMap:
    """Positions of one file's paths, plus redirects for keys the loader moved."""

    def __init__(self, file: str, positions: Mapping[DocPath, tuple[int, int]] | None = None,
                 text: str | None = None):
        self.file = file
        self._positions: dict[DocPath, tuple[int, int]] | None = (
            dict(positions or {}) if text is None else None)
        self._text = text
        self._redirects: dict[DocPath, tuple[str, DocPath]] = {}
        self._others: dict[str, SourceMap] = {}
        self._headers: dict[DocPath, tuple[int, int, int, int]] | None = None

    def redirect(self, new: DocPath, old: DocPath, source: SourceMap | None = None) -> None:
        """Say that what now lives at ``new`` came from ``old`` (in ``source``, default self)."""
        src = source or self
        if src is not self:
            self._others[src.file] = src
        self._redirects[new] = (src.file, old)

    @property
    def positions(self) -> dict[DocPath, tuple[int, int]]:
        """Path -> (line, col); scanned from the text on first use (only diagnostics need it)."""
        if self._positions is None:
            from specs.spec.tomlsource import scan_positions

            self._positions = scan_positions(self._text or "")
            self._text = None
        return self._positions

    def set(self, path: DocPath, line: int, col: int = 1) -> None:
        self.positions[path] = (line, col)

    def at(self, path: DocPath) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        text = self._text
        if text is not None and self._positions is None and not self._redirects:
            # the quick path's first answer, inlined: a big spec asks for one per step
            headers = self._headers
            if headers is None:
                headers = self._headers = _header_index(text)
            found = headers.get(path)
            if found is not None:
                return Location(self.file, found[2], found[3])
        return self._resolve(path, depth=0)

    def _resolve(self, path: DocPath, depth: int) -> Location:
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if depth < 8 and prefix in self._redirects:
                file, old = self._redirects[prefix]
                target = self if file == self.file else self._others[file]
                return target._resolve(old + path[cut:], depth + 1)
            if self._positions is None and (quick := self._quick(prefix)) is not None:
                return Location(self.file, quick[0], quick[1])
            pos = self.positions.get(prefix)
            if pos is not None:
                return Location(self.file, pos[0], pos[1])
        return Location(self.file, 1, 1) if self.positions else Location(self.file)

    # -- the quick path: headers and their keys, without the full scan ---------------------------

    def _quick(self, path: DocPath) -> tuple[int, int] | None:
        """(line, col) of a table, array-of-tables element or one of their plain keys, from an
        index of header lines; None when that cannot say (the full scan then decides).

        A few diagnostics on a big spec need a few positions; scanning every key of a 3 MB
        file for them would cost more than loading it. Multi-line strings could hide lines
        that look like headers, so a text with any falls back to the full scan.
        """
        text = self._text
        if text is None:
            return None
        if self._headers is None:
            self._headers = _header_index(text)
        found = self._headers.get(path)
        if found is not None:
            return found[2], found[3]
        if len(path) < 2 or not isinstance(path[-1], str) or path[:-1] not in self._headers:
            return None
        start, end, line, _ = self._headers[path[:-1]]
        key = re.compile(rf"^[ \t]*{re.escape(path[-1])}[ \t]*=", re.M)
        match = key.search(text, start, end)
        if not match:
            return None
        offset = match.start() + len(match.group(0)) - len(match.group(0).lstrip())
        return line + text.count("\n", start, offset), _col(text, offset)


# A header: "[" (or "[[") first on its line after blanks, a dotted key, "]" (or "]]"). The
# pattern starts at the bracket, which the regex engine finds by a fast literal scan (a "^"
# would be tried at every character of a big file); the code checks what precedes it.
_HEADER = re.compile(
    r"(\[)(\[)?[ \t]*([A-Za-z0-9_\-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_\-]+)*)[ \t]*\]\]?")


def _header_index(text: str) -> dict[DocPath, tuple[int, int, int, int]]:
    """Table path -> (offset of its header, offset where its body ends, the header's 1-based
    line and column); empty when the text has multi-line strings (a header-looking line could
    be inside one). Lines are counted once, between consecutive headers, so a lookup costs
    O(1); a header's match starts its line, so its column is a subtraction."""
    if '"""' in text or "'''" in text:
        return {}
    found: dict[DocPath, tuple[int, int, int, int]] = {}
    counts: dict[DocPath, int] = {}
    arrays: set[DocPath] = set()
    order: list[tuple[DocPath, int, int, int]] = []
    split: dict[str, list[str]] = {}  # a header's dotted key -> its names (keys repeat)
    line, counted = 1, 0
    for match in _HEADER.finditer(text):
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        if line_start < start and text[line_start:start].strip(" \t"):
            continue  # not first on its line: a value such as depends_on = [1]
        line += text.count("\n", counted, start)
        counted = start
        col = start - line_start + 1
        key = match.group(3)
        names = split.get(key)
        if names is None:
            names = split[key] = [part.strip() for part in key.split(".")]
        path: tuple[str | int, ...] = ()
        for index, name in enumerate(names):
            path = (*path, name)
            last = index == len(names) - 1
            if last and match.group(2):
                number = counts.get(path, 0)
                counts[path] = number + 1
                arrays.add(path)
                if path not in found:
                    found[path] = (start, start, line, col)
                path = (*path, number)
            elif path in arrays:
                path = (*path, counts[path] - 1)
        order.append((path, start, line, col))
    ends = [start for _, start, _, _ in order[1:]] + ([len(text)] if order else [])
    for (path, start, at, col), end in zip(order, ends, strict=True):
        found[path] = (start, end, at, col)
    return found


def _col(text: str, offset: int) -> int:
    return offset - (text.rfind("\n", 0, offset) + 1) + 1
