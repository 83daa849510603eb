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
3. the **window**: only the newest ``window`` runs that remain count, so recent behaviour
   weighs more than old (a plain window rather than a decay: every count in a suggestion is a
   count of real runs and attempts, which a reader can check);
4. **changes**: when ``specs insights --apply`` changed a step, that step's evidence starts
   again at the change (the runs before it ran another method or another retry count).

Runs imported from original progress files (no attempts recorded) count only for templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

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

    @property
    def ran(self) -> list[Step]:
        return [s for s in self.steps.values() if s.status in ("completed", "failed")]


@dataclass
class History:
    """A spec's counted runs (oldest first) and the runs left out, by reason."""

    descriptor: str
    runs: list[Run]
    excluded: dict[str, list[str]]
    changed_at: dict[str, str]  # step ref -> when --apply last changed it

    def step_runs(self, ref: str) -> list[tuple[Run, Step]]:
        """The counted runs where step ``ref`` has a row (since its last change)."""
        since = self.changed_at.get(ref, "")
        return [(run, run.steps[ref]) for run in self.runs
                if ref in run.steps and run.started_at >= since]

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
        runs = [Run(r.run_id, r.descriptor, r.started_at or "", r.status, r.goal,
                    r.compliance_score) for r in conn.execute(
            select(runs_t.c.run_id, runs_t.c.descriptor, runs_t.c.started_at, runs_t.c.status,
                   runs_t.c.goal, runs_t.c.compliance_score).where(chosen).order_by(
                runs_t.c.started_at, runs_t.c.run_id))]
        by_id = {r.run_id: r for r in runs}
        step_rows = conn.execute(
            select(steps_t.c.run_id, steps_t.c.step, steps_t.c.task, steps_t.c.description,
                   steps_t.c.critical, steps_t.c.execution_method, steps_t.c.status,
                   steps_t.c.method_used, steps_t.c.started_at, steps_t.c.ended_at,
                   steps_t.c.duration_ms, steps_t.c.cost_usd)
            .join(runs_t, runs_t.c.run_id == steps_t.c.run_id).where(chosen))
        for r in step_rows:  # type: Any
            run = by_id.get(r.run_id)
            if run is not None:
                run.steps[r.step] = Step(r.step, r.task, r.description, r.critical,
                                         r.execution_method, r.status, r.method_used,
                                         r.started_at, r.ended_at, r.duration_ms or 0.0,
                                         r.cost_usd)
        attempt_rows = conn.execute(
            select(attempts_t.c.run_id, attempts_t.c.step, attempts_t.c.n, attempts_t.c.method,
                   attempts_t.c.attempt, attempts_t.c.outcome, attempts_t.c.failure_class,
                   attempts_t.c.failure_reason, attempts_t.c.duration_ms,
                   attempts_t.c.ended_at, attempts_t.c.cost_usd)
            .join(runs_t, runs_t.c.run_id == attempts_t.c.run_id).where(chosen))
        for r in attempt_rows:  # type: Any
            run = by_id.get(r.run_id)
            step = run.steps.get(r.step) if run is not None else None
            if step is not None:
                step.attempts.append(Attempt(r.n, r.method, r.attempt, r.outcome,
                                             r.failure_class, r.failure_reason, r.duration_ms,
                                             r.ended_at, r.cost_usd))
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
    if len(counted) > options.window:
        excluded["outside_window"] = [r.run_id for r in counted[:-options.window]]
        counted = counted[-options.window:]
    return History(descriptor, counted, excluded, changed)


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
