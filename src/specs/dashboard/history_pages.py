"""The history database's pages (backups, metrics, insights) and its runs on the runs page:
:class:`HistoryView`, or None when there is no history database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specs.dashboard.runs import RunRow

__all__ = ["HistoryView"]


class HistoryView:
    """Reads the history database for the dashboard."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def open(cls, state_dir: Path, url: str | None) -> HistoryView | None:
        return None

    def describe(self) -> str:
        return self.url

    def rows(self) -> list[RunRow]:
        return []

    def wins(self, spec: str, exclude: set[str]) -> dict[str, dict[str, list[int]]]:
        return {}

    def page(self, kind: str, spec: str | None) -> dict[str, Any]:
        return {"charts": []}
