"""Each method's historical win rate at each step of a spec: how often it was tried, and how
often the step completed with it, across the runs of the same spec (the state folder's; the
history database's too when there is one, see :mod:`specs.dashboard.history_pages`).

A run's counts are computed once per version of its event log (its size and mtime), so the
run page's lanes cost one pass over the runs that changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from specs import events as ev
from specs.api.runs import read_run

__all__ = ["MethodWins", "WinRates", "add_wins", "run_wins"]

#: step ref -> method -> [runs in which it was tried, runs in which it won]
WinRates = dict[str, dict[str, list[int]]]
MethodWins = WinRates


def run_wins(events: Iterable[ev.Event]) -> WinRates:
    """One run's counts: a method is *tried* at a step when it had an attempt there, and
    *won* when the step completed with it (its last round)."""
    tried: dict[str, set[str]] = {}
    won: dict[str, str] = {}
    for event in events:
        if isinstance(event, ev.AttemptStarted):
            tried.setdefault(event.step, set()).add(event.method)
        elif isinstance(event, ev.StepEnded):
            if event.status == "completed" and event.method_used:
                won[event.step] = event.method_used
            else:
                won.pop(event.step, None)
    out: WinRates = {}
    for step, methods in tried.items():
        out[step] = {m: [1, int(won.get(step) == m)] for m in methods}
    return out


def add_wins(total: WinRates, part: WinRates) -> None:
    for step, methods in part.items():
        mine = total.setdefault(step, {})
        for method, (tried, won) in methods.items():
            counts = mine.setdefault(method, [0, 0])
            counts[0] += tried
            counts[1] += won


class WinCache:
    """Per-run counts, recomputed when a run's log changed."""

    def __init__(self) -> None:
        self._runs: dict[Path, tuple[tuple[int, int], WinRates]] = {}

    def of(self, folder: Path) -> WinRates:
        stat = (folder / "events.jsonl").stat()
        key = (stat.st_size, stat.st_mtime_ns)
        found = self._runs.get(folder)
        if found is None or found[0] != key:
            found = self._runs[folder] = (key, run_wins(read_run(folder)))
        return found[1]

    def total(self, folders: Iterable[Path]) -> WinRates:
        total: WinRates = {}
        for folder in folders:
            try:
                add_wins(total, self.of(folder))
            except OSError:
                continue
        return total
