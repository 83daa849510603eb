"""The history of one spec, in memory, with the runs that do not count left out.

:func:`load` reads a spec's runs (by descriptor: the runs of every machine sharing the history),
their steps and their attempts, oldest first, and decides which runs count:

1. ``since``: runs that started before it are left out;
2. **outages**: a run where most steps failed together is left out, and the report says so. A
   run is an outage when at least 3 steps failed, they are at least half of the steps that ran,
   and most of them are steps that usually succeed (they failed in at most a third of the other
   runs where they ran): the failures came from outside the spec (a network down, a full
   disk), not from its steps. A step that fails in every run is not an outage: it is what
   ``redesign-step`` is for;
3. the **window**: only the newest ``window`` runs that remain count (outages are looked for
   among the newest ``2 x window``; older runs are not read), so recent behaviour
   weighs more than old (a plain window rather than a decay: every count in a suggestion is a
   count of real runs and attempts, which a reader can check);
4. **changes**: when ``specs insights --apply`` changed a step, that step's evidence starts
   again at the change (the runs before it ran another method or another retry count).

Runs imported from original progress files (no attempts recorded) count only for templates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, select

from specs.history import schema
from specs.history.store import HistoryStore
from specs.insights.model import InsightOptions

__all__ = ["Attempt", "History", "Run", "Step", "load"]

EVENT_SOURCES = ("events", "events-import")


@dataclass(slots=True)
class Attempt:
    n: int
    method: str
    attempt: int
    outcome: str | None
    failure_class: str | None
    failure_reason: str | None
    duration_ms: float | None
    ended_at: str | None
    cost_usd: float | None


@dataclass(slots=True)
class Step:
    ref: str
    task: str
    description: str | None
    critical: bool | None
    execution_method: str | None
    status: str
    method_used: str | None
    started_at: str | None
    ended_at: str | None
    duration_ms: float
    cost_usd: float | None
    attempts: list[Attempt] = field(default_factory=list)
    _by_method: dict[str, list[Attempt]] | None = None

    def tries(self, method: str) -> list[Attempt]:
        """The step's attempts of one method, in order."""
        if self._by_method is None:
            found: dict[str, list[Attempt]] = {}
            for attempt in self.attempts:
                found.setdefault(attempt.method, []).append(attempt)
            self._by_method = found
        return self._by_method.get(method, [])


@dataclass(slots=True)
class Run:
    run_id: str
    descriptor: str
    started_at: str
    status: str
    goal: str | None
    compliance_score: int | None
    escalations: int = 0
    steps: dict[str, Step] = field(default_factory=dict)
    _critical: list[tuple[str, str]] | None = None

    @property
    def ran(self) -> list[Step]:
        return [s for s in self.steps.values() if s.status in ("completed", "failed")]

    def critical_failures(self) -> list[tuple[str, str]]:
        """(ended at, ref) of the run's critical steps that failed."""
        if self._critical is None:
            self._critical = [(s.ended_at or "", s.ref) for s in self.steps.values()
                              if s.critical and s.status == "failed"]
        return self._critical


@dataclass
class History:
    """A spec's counted runs (oldest first) and the runs left out, by reason."""

    descriptor: str
    runs: list[Run]
    excluded: dict[str, list[str]]
    changed_at: dict[str, str]  # step ref -> when --apply last changed it
    _by_ref: dict[str, list[tuple[Run, Step]]] | None = None

    def step_runs(self, ref: str) -> list[tuple[Run, Step]]:
        """The counted runs where step ``ref`` has a row (since its last change)."""
        if self._by_ref is None:
            found: dict[str, list[tuple[Run, Step]]] = {}
            changed = self.changed_at
            for run in self.runs:
                for key, step in run.steps.items():
                    if not changed or run.started_at >= changed.get(key, ""):
                        found.setdefault(key, []).append((run, step))
            self._by_ref = found
        return self._by_ref.get(ref, [])

    def refs(self) -> list[str]:
        found: dict[str, None] = {}
        for run in self.runs:
            found.update(dict.fromkeys(run.steps))
        return sorted(found, key=lambda r: [int(p) if p.isdigit() else p for p in r.split(".")])


def load(store: HistoryStore, descriptor: str, options: InsightOptions) -> History:
    runs_t, steps_t, attempts_t = schema.runs, schema.steps, schema.attempts
    chosen = (runs_t.c.descriptor == descriptor) & runs_t.c.source.in_(EVENT_SOURCES)
    if options.since:
        chosen = chosen & (runs_t.c.started_at >= options.since)
    with store.reading() as conn:
        runs = [Run(*row) for row in _rows(conn, select(
            runs_t.c.run_id, runs_t.c.descriptor, runs_t.c.started_at, runs_t.c.status,
            runs_t.c.goal, runs_t.c.compliance_score).where(chosen).order_by(
            runs_t.c.started_at, runs_t.c.run_id))]
        for run in runs:
            run.started_at = run.started_at or ""
        older: list[Run] = []
        if len(runs) > 2 * options.window:  # outages are looked for among the newest 2 x window
            older, runs = runs[:-2 * options.window], runs[-2 * options.window:]
            chosen = chosen & (runs_t.c.started_at >= runs[0].started_at)
        by_id = {r.run_id: r for r in runs}
        for (run_id, ref, *rest) in _rows(conn, select(
                steps_t.c.run_id, steps_t.c.step, steps_t.c.task, steps_t.c.description,
                steps_t.c.critical, steps_t.c.execution_method, steps_t.c.status,
                steps_t.c.method_used, steps_t.c.started_at, steps_t.c.ended_at,
                steps_t.c.duration_ms, steps_t.c.cost_usd)
                .join(runs_t, runs_t.c.run_id == steps_t.c.run_id).where(chosen)):
            owner = by_id.get(run_id)
            if owner is not None:
                step = owner.steps[ref] = Step(ref, *rest)
                step.critical = bool(step.critical) if step.critical is not None else None
                step.duration_ms = step.duration_ms or 0.0
        # attempts that never ended (interrupted) say nothing about a method: left out
        for (run_id, ref, *rest) in _rows(conn, select(
                attempts_t.c.run_id, attempts_t.c.step, attempts_t.c.n, attempts_t.c.method,
                attempts_t.c.attempt, attempts_t.c.outcome, attempts_t.c.failure_class,
                attempts_t.c.failure_reason, attempts_t.c.duration_ms,
                attempts_t.c.ended_at, attempts_t.c.cost_usd)
                .join(runs_t, runs_t.c.run_id == attempts_t.c.run_id)
                .where(chosen & attempts_t.c.outcome.is_not(None))):
            owner = by_id.get(run_id)
            found = owner.steps.get(ref) if owner is not None else None
            if found is not None:
                found.attempts.append(Attempt(*rest))
        esc = schema.escalations
        for (run_id,) in conn.execute(select(esc.c.run_id).join(
                runs_t, runs_t.c.run_id == esc.c.run_id).where(chosen)):
            if run_id in by_id:
                by_id[run_id].escalations += 1
        changes = schema.changes
        changed: dict[str, str] = {}
        for ref, applied_at in conn.execute(select(changes.c.step, changes.c.applied_at).where(
                changes.c.descriptor == descriptor)):
            if ref and applied_at > changed.get(ref, ""):
                changed[ref] = applied_at
    for run in runs:
        for step in run.steps.values():
            step.attempts.sort(key=lambda a: a.n)
    excluded: dict[str, list[str]] = {}
    outages = find_outages(runs)
    if outages:
        excluded["outage"] = [r.run_id for r in runs if r.run_id in outages]
    counted = [r for r in runs if r.run_id not in outages]
    if len(counted) > options.window or older:
        excluded["outside_window"] = [r.run_id for r in older] + \
            [r.run_id for r in counted[:-options.window]]
        counted = counted[-options.window:]
    return History(descriptor, counted, excluded, changed)


def _rows(conn: Connection, stmt: Select[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``stmt`` as the driver's plain tuples (a history of 1,000 runs has some
    100,000 rows: SQLAlchemy's per-row processing would be most of the analysis's time)."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positional:
        params: Any = tuple(compiled.params[k] for k in compiled.positiontup or ())
    else:
        params = compiled.params
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), params)
        while batch := cursor.fetchmany(5000):
            yield from batch
    finally:
        cursor.close()


def find_outages(runs: list[Run]) -> set[str]:
    """The runs where most steps failed together (see the module docstring)."""
    ran: dict[str, int] = {}
    failed: dict[str, int] = {}
    for run in runs:
        for step in run.ran:
            ran[step.ref] = ran.get(step.ref, 0) + 1
            failed[step.ref] = failed.get(step.ref, 0) + (step.status == "failed")
    found = set()
    for run in runs:
        steps = run.ran
        failures = [s for s in steps if s.status == "failed"]
        if len(failures) < 3 or len(failures) * 2 < len(steps):
            continue
        healthy = 0
        for step in failures:
            others = ran[step.ref] - 1
            if others > 0 and (failed[step.ref] - 1) / others <= 1 / 3:
                healthy += 1
        if healthy * 2 > len(failures):
            found.add(run.run_id)
    return found
