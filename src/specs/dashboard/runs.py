"""The runs the dashboard shows: the state folder's, summarised from their event logs, and
the history database's (runs of other machines sharing it), merged by run id.

A run's summary is recomputed only when its ``events.jsonl`` changed (its size or mtime), so
the runs page and its live stream stay cheap with hundreds of runs; a run that says it is
running but whose process no longer holds its lock is ``interrupted``, as ``specs runs`` says.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.api.runs import RunSummary, read_run, run_dirs, run_is_live, summarize
from specs.errors import UsageError

__all__ = ["RunFilter", "RunIndex", "RunRow", "valid_run_id"]


@dataclass
class RunRow:
    """One line of the runs page (and of ``/runs.json``)."""

    run_id: str
    spec: str
    status: str
    goal: str | None
    started: str
    last: str
    duration_s: float | None
    steps_done: int
    steps_total: int
    tokens: int
    cost_usd: float | None
    pending_gate: str | None
    source: str  # state (this state folder) | history (the database only)
    live: bool = False
    parameters: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunFilter:
    """The runs page's filters: a spec name (a substring), a status, a date range (ISO dates,
    compared with the start)."""

    spec: str = ""
    status: str = ""
    since: str = ""
    until: str = ""

    def keeps(self, row: RunRow) -> bool:
        day = row.started[:10]
        return ((not self.spec or self.spec.lower() in row.spec.lower())
                and (not self.status or row.status == self.status)
                and (not self.since or day >= self.since[:10])
                and (not self.until or day <= self.until[:10]))

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def valid_run_id(name: str) -> bool:
    """A run id as the engine makes them (letters, digits, ``_`` and ``-``): anything else
    (a slash, dots) is never looked up on disk."""
    return bool(name) and len(name) <= 200 and all(c.isalnum() or c in "_-" for c in name)


def duration(start: str, last: str) -> float | None:
    a, b = ev_epoch(start), ev_epoch(last)
    return None if a is None or b is None else round(max(0.0, b - a), 3)


def ev_epoch(ts: str | None) -> float | None:
    """A Unix time of an event timestamp (``2026-03-01T10:15:00.123Z``), None when absent."""
    if not ts:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class RunIndex:
    """The state folder's runs, summarised and cached per event log; the history's rows
    come from ``history_rows`` (None: no history database)."""

    def __init__(self, state_dir: Path,
                 history_rows: Callable[[], list[RunRow]] | None = None,
                 history_mark: Callable[[], tuple[Any, ...]] | None = None) -> None:
        self.state_dir = state_dir
        self.history_rows = history_rows
        self.history_mark = history_mark
        self._cache: dict[Path, tuple[tuple[int, int], RunSummary]] = {}

    def folder(self, run_id: str) -> Path:
        """The folder of the run with exactly this id (no prefixes, no ``last``: a link
        names one run). Raises UsageError (a 404) for anything else."""
        if not valid_run_id(run_id):
            raise UsageError(f"no run {run_id!r}")
        folder = self.state_dir / "runs" / run_id
        if not (folder / "events.jsonl").is_file():
            raise UsageError(f"no run {run_id!r} in {self.state_dir}")
        return folder

    def summary(self, folder: Path) -> RunSummary:
        log = folder / "events.jsonl"
        stat = log.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(folder)
        if cached is None or cached[0] != key:
            cached = self._cache[folder] = (key, summarize(read_run(folder), folder.name))
        summary = cached[1]
        if summary.status in ("initializing", "running") and not run_is_live(folder):
            summary = dataclasses.replace(summary, status="interrupted")
        return summary

    def state_rows(self) -> list[RunRow]:
        rows = []
        for folder in run_dirs(self.state_dir):
            try:
                summary = self.summary(folder)
            except OSError:
                continue  # removed while we looked
            rows.append(row_of(summary, live=summary.status in ("running", "initializing")))
        return rows

    def rows(self, keep: RunFilter | None = None) -> list[RunRow]:
        """Every run, newest first: the state folder's, then the history's others."""
        found = {row.run_id: row for row in self.state_rows()}
        if self.history_rows is not None:
            for row in self.history_rows():
                found.setdefault(row.run_id, row)
        rows = sorted(found.values(), key=lambda r: (r.started, r.run_id), reverse=True)
        return [r for r in rows if keep is None or keep.keeps(r)]

    def fingerprint(self) -> tuple[Any, ...]:
        """What changes when any run changes, in the state folder or in the history (for
        the live runs page)."""
        found: list[Any] = [self.history_mark()] if self.history_mark is not None else []
        runs = self.state_dir / "runs"
        try:
            entries = sorted(os.scandir(runs), key=lambda e: e.name)
        except OSError:
            return tuple(found)
        for entry in entries:
            try:
                stat = os.stat(os.path.join(entry.path, "events.jsonl"))
            except OSError:
                continue
            found.append((entry.name, stat.st_size, stat.st_mtime_ns))
        return tuple(found)


def row_of(summary: RunSummary, *, live: bool = False) -> RunRow:
    return RunRow(
        run_id=summary.run_id, spec=summary.descriptor, status=summary.status,
        goal=summary.goal, started=summary.started, last=summary.last,
        duration_s=duration(summary.started, summary.last), steps_done=summary.steps_done,
        steps_total=summary.steps_total, tokens=summary.tokens, cost_usd=summary.cost_usd,
        pending_gate=summary.pending_gate, source="state", live=live,
        parameters=summary.spec.get("parameters"))
