"""Source maps: where each table and key of a loaded document came from.

A :class:`SourceMap` maps a document path (``("tasks", 0, "steps", 2, "expected_output")``)
to a :class:`~specs.diagnostics.Location`. Positions are computed lazily, the first time a
diagnostic asks for one: a clean spec never pays for the scan. The loader renames and moves
keys while it normalises aliases; instead of rewriting the (large) position table it records
*redirects* from the new path prefix to the old one, resolved only when a diagnostic asks
where something is.
"""

from __future__ import annotations

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
            from specs.tomlsource import scan_positions

            self._positions = scan_positions(self._text or "")
            self._text = None
        return self._positions

    def set(self, path: DocPath, line: int, col: int = 1) -> None:
        self.positions[path] = (line, col)

    def at(self, path: DocPath) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        return self._resolve(path, depth=0)

    def _resolve(self, path: DocPath, depth: int) -> Location:
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if depth < 8 and prefix in self._redirects:
                file, old = self._redirects[prefix]
                target = self if file == self.file else self._others[file]
                return target._resolve(old + path[cut:], depth + 1)
            pos = self.positions.get(prefix)
            if pos is not None:
                return Location(self.file, pos[0], pos[1])
        return Location(self.file, 1, 1) if self.positions else Location(self.file)
