"""A run's rows, drawn from its events: the history's projection of the event stream.

:class:`RunRows` holds one run's rows (a dict per row, every column present) and applies one
event at a time, marking the rows it changed; :meth:`RunRows.take` hands the changed rows over
to be written. It reads nothing but the events, so it projects live runs, finished runs
(``specs history rebuild``) and other machines' ``events.jsonl`` alike, and the same events
always give the same rows. What the events do not say (a step's description, each method's
execution method) comes from :class:`SpecFacts`, drawn from the run's spec when it can be read.

Attempts are keyed by their ordinal within the step over the whole run (a human's retry goes
on counting), which the events give without the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table

from specs import events as ev
from specs.history import schema
from specs.history.classify import failure_class
from specs.spec.model import Spec

__all__ = ["RunRows", "SpecFacts", "blank_row"]

_COLUMNS: dict[str, tuple[str, ...]] = {t.name: tuple(c.name for c in t.columns)
                                        for t in schema.metadata.tables.values()}
_DEFAULTS: dict[str, dict[str, Any]] = {}
for _table in schema.metadata.tables.values():
    _DEFAULTS[_table.name] = {
        c.name: getattr(c.default, "arg", None) for c in _table.columns}


def blank_row(table: Table, **values: Any) -> dict[str, Any]:
    """A row of ``table`` with every column: its default, or None; ``values`` set."""
    row = dict(_DEFAULTS[table.name])
    row.update(values)
    return row


@dataclass(frozen=True)
class SpecFacts:
    """What a run's spec says that its events do not: per step ref, its description and the
    execution method of each method label (``primary``, ``backup_1``...)."""

    descriptions: dict[str, str] = field(default_factory=dict)
    methods: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: Spec) -> SpecFacts:
        descriptions: dict[str, str] = {}
        methods: dict[str, dict[str, str]] = {}
        for task, step in spec.steps():
            ref = f"{task.ref}.{step.id}"
            descriptions[ref] = step.description
            found = {"primary": step.effective_method}
            for backup in step.backups:
                found[f"backup_{backup.id}"] = backup.effective_method
            methods[ref] = found
        return cls(descriptions, methods)


NO_FACTS = SpecFacts()
_ATTEMPT = _DEFAULTS["attempts"]

_TERMINAL = ("completed", "failed", "skipped")


def _ms_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        a = datetime.fromisoformat(start)
        b = datetime.fromisoformat(end)
    except ValueError:
        return None
    return round((b - a).total_seconds() * 1000.0, 3)


class RunRows:
    """The rows of one run; :meth:`apply` one event at a time, :meth:`take` the changed rows."""

    def __init__(self, run_id: str, *, source: str = "events", source_path: str | None = None,
                 facts: SpecFacts = NO_FACTS) -> None:
        self.run_id = run_id
        self.facts = facts
        self.run = blank_row(schema.runs, run_id=run_id, source=source, source_path=source_path)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, dict[str, Any]] = {}
        self.attempts: dict[tuple[str, int], dict[str, Any]] = {}
        self.gates: dict[str, dict[str, Any]] = {}
        self.escalations: dict[int, dict[str, Any]] = {}
        self._open: dict[str, int] = {}  # step ref -> the ordinal of its attempt in progress
        self._dirty: dict[str, set[Any]] = {"tasks": set(), "steps": set(), "attempts": set(),
                                            "gates": set(), "escalations": set()}
        self._dirty_steps = self._dirty["steps"]
        self._run_dirty = True
        self.opened: ev.RunOpened | None = None
        self._last: ev.Event | None = None
        self._handlers: dict[str, Callable[[Any], None]] = {
            "run-opened": self._run_opened, "mode-selected": self._mode_selected,
            "task-started": self._task_started, "task-ended": self._task_ended,
            "step-started": self._step_started, "attempt-started": self._attempt_started,
            "attempt-ended": self._attempt_ended, "backup-triggered": self._backup_triggered,
            "step-ended": self._step_ended, "step-reopened": self._step_reopened,
            "failure-resolved": self._failure_resolved, "escalated": self._escalated,
            "gate-requested": self._gate_requested, "gate-answered": self._gate_answered,
            "gate-closed": self._gate_closed, "llm-call": self._llm_call,
            "run-paused": self._run_paused, "run-resumed": self._run_resumed,
            "run-ended": self._run_ended, "completion-verified": self._completion,
        }

    # -- applying ----------------------------------------------------------------------------

    def apply(self, event: ev.Event) -> None:
        handler = self._handlers.get(event.name)
        if handler is not None:
            handler(event)
        self._last = event
        self._run_dirty = True

    def _run_opened(self, e: ev.RunOpened) -> None:
        self.opened = e
        spec = e.spec or {}
        self.run.update(descriptor=e.descriptor, spec_folder=spec.get("folder"),
                        parameters_path=spec.get("parameters"),
                        parameters_sha256=spec.get("parameters_sha256"), started_at=e.ts,
                        tasks_total=int(e.totals.get("tasks", 0)),
                        steps_total=int(e.totals.get("steps", 0)),
                        engine_version=e.engine_version or None)

    def _mode_selected(self, e: ev.ModeSelected) -> None:
        self.run["mode"] = e.mode

    def _running(self) -> None:
        if self.run["status"] in ("initializing", "awaiting_human", "resumed"):
            self.run["status"] = "running"

    def _task(self, ref: str) -> dict[str, Any]:
        row = self.tasks.get(ref)
        if row is None:
            row = self.tasks[ref] = blank_row(schema.tasks, run_id=self.run_id, task=ref)
        self._dirty["tasks"].add(ref)
        return row

    def _task_started(self, e: ev.TaskStarted) -> None:
        self._running()
        row = self._task(e.task)
        row["description"] = e.description or row["description"]
        row["status"] = "in_progress"
        row["started_at"] = row["started_at"] or e.ts

    def _task_ended(self, e: ev.TaskEnded) -> None:
        row = self._task(e.task)
        row["status"], row["ended_at"] = e.status, e.ts

    def _step(self, ref: str) -> dict[str, Any]:
        row = self.steps.get(ref)
        if row is not None:
            self._dirty_steps.add(ref)
            return row
        methods = self.facts.methods.get(ref)
        row = self.steps[ref] = blank_row(
            schema.steps, run_id=self.run_id, step=ref, task=ref.rpartition(".")[0],
            description=self.facts.descriptions.get(ref),
            execution_method=methods.get("primary") if methods else None)
        self._dirty_steps.add(ref)
        return row

    def _step_started(self, e: ev.StepStarted) -> None:
        if self.run["status"] != "running":
            self._running()
        row = self._step(e.step)
        row["status"] = "started"
        row["mode"] = e.mode
        row["critical"] = e.critical
        if row["started_at"] is None:
            row["started_at"] = e.ts

    def _attempt_started(self, e: ev.AttemptStarted) -> None:
        step = self._step(e.step)
        step["attempts"] += 1
        if e.attempt > 1:
            step["retries"] += 1
        n = step["attempts"]
        methods = self.facts.methods.get(e.step)
        row = dict(_ATTEMPT)
        row["run_id"] = self.run_id
        row["step"] = e.step
        row["n"] = n
        row["method"] = e.method
        row["attempt"] = e.attempt
        row["started_at"] = e.ts
        if methods:
            row["execution_method"] = methods.get(e.method)
        key = (e.step, n)
        self.attempts[key] = row
        self._open[e.step] = n
        self._dirty["attempts"].add(key)
        self.run["attempts"] += 1

    def _attempt_ended(self, e: ev.AttemptEnded) -> None:
        n = self._open.pop(e.step, None)
        if n is None:  # an end without its start (a torn log): record it on its own
            self._attempt_started(ev.AttemptStarted(step=e.step, method=e.method,
                                                    attempt=e.attempt, seq=e.seq, ts=e.ts))
            n = self._open.pop(e.step)
        row = self.attempts[(e.step, n)]
        usage = e.usage
        row["outcome"] = e.outcome
        row["verdict"] = e.verdict
        row["exit_code"] = e.exit_code
        row["duration_ms"] = e.duration_ms
        row["ended_at"] = e.ts
        if e.outcome != "success":
            row["failure_reason"] = e.failure_reason
            row["transient"] = e.transient
            row["failure_class"] = failure_class(e.outcome, e.verdict, e.failure_reason,
                                                 e.exit_code, e.transient)
        if usage:
            row["input_tokens"] = usage.get("input_tokens")
            row["output_tokens"] = usage.get("output_tokens")
        if e.cost_usd is not None:
            row["cost_usd"] = e.cost_usd
        if e.cached:
            row["cached"] = True
        self._dirty["attempts"].add((e.step, n))
        step = self._step(e.step)
        step["duration_ms"] += e.duration_ms or 0.0
        if usage:
            step["tokens"] += int(usage.get("input_tokens", 0)) + \
                int(usage.get("output_tokens", 0))
        if e.cost_usd is not None:
            step["cost_usd"] = (step["cost_usd"] or 0.0) + e.cost_usd

    def _backup_triggered(self, e: ev.BackupTriggered) -> None:
        self._step(e.step)["backups_used"] += 1

    def _step_ended(self, e: ev.StepEnded) -> None:
        row = self._step(e.step)
        row["status"] = e.status
        row["method_used"] = e.method_used
        row["expected_output_match"] = e.expected_output_match
        row["message"] = e.message or None
        row["skip_reason"] = e.skip_reason
        row["ended_at"] = e.ts
        if e.resolved is not None:
            row["resolved"] = e.resolved

    def _step_reopened(self, e: ev.StepReopened) -> None:
        row = self._step(e.step)
        row["status"], row["ended_at"], row["resolved"] = "started", None, False

    def _failure_resolved(self, e: ev.FailureResolved) -> None:
        self._step(e.step)["resolved"] = True

    def _escalated(self, e: ev.Escalated) -> None:
        self.escalations[e.seq] = blank_row(
            schema.escalations, run_id=self.run_id, seq=e.seq, step=e.step,
            reasons=list(e.reasons), from_mode=e.from_mode or None,
            recommendation=e.recommendation or None, ts=e.ts)
        self._dirty["escalations"].add(e.seq)

    def _gate(self, gate: str) -> dict[str, Any] | None:
        row = self.gates.get(gate)
        if row is not None:
            self._dirty["gates"].add(gate)
        return row

    def _gate_requested(self, e: ev.GateRequested) -> None:
        self.gates[e.gate] = blank_row(
            schema.gates, run_id=self.run_id, gate=e.gate, kind=e.kind, step=e.step,
            prompt=e.prompt, options=list(e.options), requested_at=e.ts)
        self._dirty["gates"].add(e.gate)
        self.run["pending_gate"] = e.gate

    def _gate_answered(self, e: ev.GateAnswered) -> None:
        row = self._gate(e.gate)
        if row is not None:
            row.update(response=e.response, answered_by=e.by, guidance=e.guidance,
                       answered_at=e.ts)
        if self.run["pending_gate"] == e.gate:
            self.run["pending_gate"] = None

    def _gate_closed(self, e: ev.GateClosed) -> None:
        if self.run["pending_gate"] == e.gate:
            self.run["pending_gate"] = None

    def _llm_call(self, e: ev.LlmCall) -> None:
        self.run["tokens"] += sum(int(v) for v in e.usage.values())
        self.run["llm_calls"] += 1
        if e.cost_usd is not None:
            self.run["cost_usd"] = round((self.run["cost_usd"] or 0.0) + e.cost_usd, 9)

    def _run_paused(self, e: ev.RunPaused) -> None:
        self.run["status"] = "awaiting_human"

    def _run_resumed(self, e: ev.RunResumed) -> None:
        self.run["status"], self.run["ended_at"] = "running", None

    def _run_ended(self, e: ev.RunEnded) -> None:
        run = self.run
        run["status"], run["ended_at"] = e.status, e.ts
        run["goal"] = e.goal_achievement_status or run["goal"]
        run["duration_ms"] = _ms_between(run["started_at"], e.ts)
        run["pending_gate"] = None

    def _completion(self, e: ev.CompletionVerified) -> None:
        self.run["goal"] = e.goal_achievement_status

    # -- handing over ------------------------------------------------------------------------

    def _counts(self) -> None:
        per_task: dict[str, list[int]] = {}
        totals = {"completed": 0, "failed": 0, "skipped": 0}
        for row in self.steps.values():
            status = row["status"]
            counts = per_task.get(row["task"])
            if counts is None:
                counts = per_task[row["task"]] = [0, 0, 0]
            counts[0] += 1
            if status in totals:
                totals[status] += 1
                if status == "completed":
                    counts[1] += 1
                elif status == "failed":
                    counts[2] += 1
        self.run.update(steps_completed=totals["completed"], steps_failed=totals["failed"],
                        steps_skipped=totals["skipped"])
        for ref in self._dirty["tasks"]:
            total, done, failed = per_task.get(ref, (0, 0, 0))
            self.tasks[ref].update(steps_total=total, steps_completed=done,
                                   steps_failed=failed)

    def take(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        """The rows changed since the last call, by table (the run's row first)."""
        if not self._run_dirty and not any(self._dirty.values()):
            return []
        if self._last is not None:
            self.run["last_seq"] = max(self.run["last_seq"], self._last.seq)
            self.run["last_event_at"] = self._last.ts or self.run["last_event_at"]
        if self._dirty["steps"] or self._dirty["tasks"]:
            self._dirty["tasks"].update(self.steps[r]["task"] for r in self._dirty["steps"]
                                        if self.steps[r]["task"] in self.tasks)
            self._counts()
        out: list[tuple[Table, list[dict[str, Any]]]] = [(schema.runs, [self.run])]
        sources: dict[str, dict[Any, dict[str, Any]]] = {
            "tasks": self.tasks, "steps": self.steps, "attempts": self.attempts,
            "gates": self.gates, "escalations": self.escalations}
        for name, table in (("tasks", schema.tasks), ("steps", schema.steps),
                            ("attempts", schema.attempts), ("gates", schema.gates),
                            ("escalations", schema.escalations)):
            keys = self._dirty[name]
            if keys:
                rows = sources[name]
                out.append((table, [rows[k] for k in keys]))
                keys.clear()
        self._run_dirty = False
        return out

    def all_rows(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        """Every row of the run (for a rebuild or an import)."""
        self._dirty["tasks"].update(self.tasks)
        self._dirty["steps"].update(self.steps)
        self._dirty["attempts"].update(self.attempts)
        self._dirty["gates"].update(self.gates)
        self._dirty["escalations"].update(self.escalations)
        self._run_dirty = True
        return self.take()
