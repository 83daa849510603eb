"""The progress file: ``progress_<descriptor>.json``, a snapshot of a run drawn from its events.

``events.jsonl`` is the run's append-only truth; the progress file is a *projection* of it
(reference §3.13, A31): :func:`progress_document` turns a :class:`~specs.engine.state.RunState`
(the events applied in order) into the document the original engine wrote and its dashboard
reads, in the shape of the synthesised example of reference §4.3: the run header, one record
per task and step (every attempt, the retry count, the backups tried and why), the human
interactions, the escalations and mode switches, and the end-of-run sections
(``execution_summary``, ``verification``, ``post_execution_analysis``,
``completion_verification``, ``constitutional_compliance``; see :mod:`specs.record.analysis`).
Parallel execution (reference §5.1 item 7) adds per step ``execution_id``, ``parallel_group``,
``thread_id``, ``launched_at``, ``completed_at``, ``execution_time_ms``, ``parallel_execution``
and ``dependencies_satisfied``, per task ``phases[]``, and ``parallel_execution_summary``.

The document is a pure function of (spec, state): no clock is read, every time comes from an
event, so replaying the same events gives the same document byte for byte. Statuses are written
from the canonical sets of reference §4.2 only.

:class:`ProgressWriter` subscribes to the engine's events and rewrites the file with
:func:`write_atomic` (temp file, fsync, ``os.replace``): at most every ``interval`` seconds, and
always at the moments a reader must see (a task ended, a gate waits, the run paused or ended).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specs import events as ev
from specs.atomic import (
    AtomicFile,
    dumps_bytes,
    gc_paused,
    preserve_foreign,
)
from specs.engine.state import (
    RUN_FINAL,
    GateState,
    RunState,
    StepState,
    TaskState,
    sum_totals,
)
from specs.record.analysis import (
    TASK_STATUSES,
    canonical,
    completion,
    compliance,
    consecutive_counts,
    execution_summary,
    goal_status,
    post_execution_analysis,
    run_end,
    run_status,
    task_id,
    verification,
)
from specs.record.facts import to_epoch
from specs.record.parallel import ParallelFacts
from specs.record.step_record import (
    StepRecords,
    kept_step_record,
    step_record,
    step_status,
    usage_record,
)
from specs.spec.model import Spec

__all__ = ["ProgressWriter", "progress_document"]


def progress_document(spec: Spec, state: RunState, *,
                      spec_files: dict[str, Any] | None = None,
                      records: StepRecords | None = None,
                      now: float | None = None) -> dict[str, Any]:
    """The progress document of a run as it stands after the events applied to ``state``.

    ``now`` (a Unix time), given by a writer of a live run, is the moment the document
    describes: the ``running_steps`` have run until then, and the makespan reaches it.
    Without it (a replay), and once the run ended, that moment is the last event's time, so
    the same events give the same document.

    ``records``, kept by the caller between documents of the same run (the
    :class:`ProgressWriter` does), holds the records of steps in a final status: one is used
    again while nothing it is built from has changed
    (:func:`~specs.record.step_record.kept_step_record`), so a long run's rewrites cost what
    changed since the last one (a rebuild of a 1,000-step run's document is about 30 %
    cheaper). The records are shared between documents: they must not be changed.
    """
    status = run_status(state)
    focus = _focus_step(state)
    end = run_end(state)
    if end is not None:
        now = None  # an ended run's document depends on its events alone
    parallel = ParallelFacts(spec, state, now)
    tasks = _tasks(state, parallel, records)
    doc: dict[str, Any] = {
        "generated_by": "specs",
        "run_id": state.run_id,
        "descriptor": state.descriptor or spec.descriptor,
        "dna_code": spec.meta.dna_code or spec.meta.project_dna,
        "spec_files": _spec_files(state, spec_files),
        "status": status,
        "execution_mode": state.run_mode,
        "current_mode": state.mode,
        "mode_selected_by": state.selected_by,
        "mode_selection_timestamp": state.mode_selected_at,
        "start_time": state.started_at,
        "end_time": end.ts if end is not None else None,
        "current_task": state.current_task,
        "current_step": state.current_step,
        "step_status": step_status(focus) if focus else None,
        "method_used": _focus_method(focus) if focus else None,
        "snapshot_at": ev.iso(now) if now is not None else state.last_event_at,
        "running_steps": _running_steps(state, parallel.now),
        "total_tasks": len(state.tasks),
        "total_steps": len(state.steps),
        "validation": _validation(state),
        "tasks": tasks,
        "mode_switches": copy.deepcopy(state.mode_switches),
        "human_interactions": [_interaction(g) for g in state.gates.values()],
        "escalations": [_escalation(e) for e in state.escalations],
        "execution_summary": execution_summary(spec, state),
        "parallel_execution_summary": parallel.summary(),
        "constitutional_compliance": compliance(spec, state),
        "verification": verification(spec, state),
        "post_execution_analysis": post_execution_analysis(spec, state),
        "completion_verification": _completion(state),
        "goal_achievement_status": goal_status(state),
        "run_complete": end is not None and status in RUN_FINAL,
        "resumes": copy.deepcopy(state.resumes),
        "llm_usage": usage_record(state.llm_usage),
    }
    if state.mcp_verification is not None:  # rule 1.11 (reference §3.13 "MCP")
        doc["mcp_tools_verification"] = copy.deepcopy(state.mcp_verification.record)
    return doc


# -- header --------------------------------------------------------------------------------------


def _spec_files(state: RunState, given: dict[str, Any] | None) -> dict[str, Any]:
    if given is not None:
        return dict(given)
    return copy.deepcopy(state.opened.spec) if state.opened is not None else {}


def _validation(state: RunState) -> dict[str, Any] | None:
    found = state.validation
    if found is None:
        return None
    return {"status": found.status, "errors": list(found.errors),
            "warnings": list(found.warnings)}


def _focus_step(state: RunState) -> StepState | None:
    """The step a dashboard shows: the current one, else the one that moved last."""
    if state.current_step is not None:
        return state.steps.get(state.current_step)
    found, latest = None, ""
    for step in state.steps.values():  # the first of the latest, as max() would pick
        moved = step.ended_at or step.started_at
        if moved and (found is None or moved > latest):
            found, latest = step, moved
    return found


def _running_steps(state: RunState, now: float | None) -> list[dict[str, Any]]:
    """The steps running at ``now`` (the document's ``snapshot_at``), in plan order, each with
    how long it has run and which attempt of which method it is in. A run that paused or
    ended runs nothing (a step it left ``started`` is orphaned: see ``verification``)."""
    if run_end(state) is not None or state.paused is not None or not state.running:
        return []
    out = []
    for ref, step in state.steps.items():
        if ref not in state.running or step.started_at is None:
            continue
        attempt = step.open_attempt
        out.append({
            "ref": ref, "step_id": step.id, "task_id": task_id(step.task),
            "started_at": step.started_at, "elapsed_s": _since(step.started_at, now),
            "method": attempt.method if attempt else None,
            "attempt": attempt.attempt if attempt else None,
            "attempt_started_at": attempt.started_at if attempt else None,
            "attempt_elapsed_s": _since(attempt.started_at, now) if attempt else None})
    return out


def _since(ts: str, now: float | None) -> float | None:
    start = to_epoch(ts)
    if start is None or now is None:
        return None
    return round(max(0.0, now - start), 3)


def _focus_method(step: StepState) -> str | None:
    """The method that won, or while the step runs, the method being tried."""
    if step.method_used or step.status != "started" or not step.attempts:
        return step.method_used
    return step.attempts[-1].method


# -- tasks and steps -----------------------------------------------------------------------------


def _tasks(state: RunState, parallel: ParallelFacts,
           records: StepRecords | None) -> list[dict[str, Any]]:
    counts = consecutive_counts(state)
    notes = _note_counts(state)
    return [_task(task, state, counts, notes, parallel, records)
            for task in state.tasks.values()]


def _task(task: TaskState, state: RunState, counts: dict[str, int],
          notes: dict[tuple[str, str | None], dict[str, Any]],
          parallel: ParallelFacts, records: StepRecords | None) -> dict[str, Any]:
    all_steps, run_id = state.steps, state.run_id
    if records is None:
        steps = [step_record(all_steps[ref], counts.get(ref), notes.get((task.ref, ref)), parallel,
                       run_id) for ref in task.steps]
    else:
        steps = [kept_step_record(all_steps[ref], counts.get(ref), notes.get((task.ref, ref)),
                            parallel, run_id, records) for ref in task.steps]
    record: dict[str, Any] = {
        "task_id": task_id(task.ref),
        "ref": task.ref,
        "description": task.description,
        "status": canonical(task.status, TASK_STATUSES, "in_progress"),
        "started_at": task.started_at,
        "completed_at": task.completed_at,
        "steps": steps,
        "summary": _task_summary(task, steps, state),
    }
    if (task.ref, None) in notes:
        record["notepad_update"] = notes[(task.ref, None)]
    if task.ref in state.research:
        record.update(research_records(state.research[task.ref],
                                       state.research_started.get(task.ref)))
    used = [u for ref in task.steps if (u := state.steps[ref].llm_usage) is not None]
    if used:
        record["llm_usage"] = usage_record(sum_totals(used))
    record["phases"] = parallel.task_phases(task)
    return record


def research_records(found: ev.ResearchEnded, started: str | None) -> dict[str, Any]:
    """``research_phase`` and ``research_cost`` of a task (reference §3.10 R-RES)."""
    tokens = sum((found.usage or {}).values())
    return {
        "research_phase": {
            "enabled": True, "triggered": found.status != "skipped", "status": found.status,
            "timestamp_start": started or found.ts, "timestamp_end": found.ts,
            "queries_performed": list(found.queries), "sources_consulted": list(found.sources),
            "key_findings": list(found.key_findings), "confidence_level": found.confidence,
            "warning": found.warning or None},
        "research_cost": {"time_seconds": found.time_seconds, "api_calls": found.api_calls,
                          "tool_calls": found.tool_calls, "tokens_used": tokens,
                          "cost_usd": found.cost_usd},
    }


def _task_summary(task: TaskState, steps: list[dict[str, Any]],
                  state: RunState) -> dict[str, int]:
    """Counts over the task's step records (R-LOOP-4 task summary)."""
    statuses = [s["status"] for s in steps]
    return {
        "steps_succeeded": statuses.count("completed"),
        "steps_failed": statuses.count("failed"),
        "steps_skipped": statuses.count("skipped"),
        "retries": sum([s["retry_count"] for s in steps]),
        "backups_used": sum([len(s["backup_attempts"]) for s in steps]),
        "mode_switches": sum(m.get("step") in task.steps for m in state.mode_switches),
    }


def _note_counts(state: RunState) -> dict[tuple[str, str | None], dict[str, Any]]:
    """R-NOTE-3: the latest notepad update of each task (or step), as counts."""
    out: dict[tuple[str, str | None], dict[str, Any]] = {}
    for note in state.notes:
        out[(note.task, note.step)] = {
            "timestamp": note.ts, "insights_captured": len(note.insights),
            "technical_notes": len(note.technical_notes), "ideas": len(note.ideas),
            "human_observations": len(note.human)}
    return out


# -- people, escalations, completion -------------------------------------------------------------


def _interaction(gate: GateState) -> dict[str, Any]:
    return {
        "gate": gate.id, "kind": gate.kind, "step": gate.step, "prompt": gate.prompt,
        "options": list(gate.options), "response": gate.response, "by": gate.by,
        "guidance": gate.guidance, "requested_at": gate.requested_at,
        "answered_at": gate.answered_at, "closed": gate.closed,
    }


def _escalation(event: ev.Escalated) -> dict[str, Any]:
    return {
        "timestamp": event.ts, "step": event.step, "reasons": list(event.reasons),
        "measurements": copy.deepcopy(event.measurements), "from_mode": event.from_mode,
        "recommendation": event.recommendation, "reset": list(event.reset),
    }


def _completion(state: RunState) -> dict[str, Any] | None:
    """``completion_verification`` (R-DONE): the checks' verdict, or the provisional one of a
    run that stopped before them (``provisional: true``; see :func:`completion`)."""
    found = completion(state)
    if found is None:
        return None
    out: dict[str, Any] = copy.deepcopy(found["checks"])
    out.update(overall_status=canonical(found["overall_status"].upper(), ("PASS", "FAIL"),
                                        "FAIL"),
               goal_achievement_status=goal_status(state), gaps=list(found["gaps"]),
               timestamp=found["timestamp"])
    if found.get("provisional"):
        out["provisional"] = True
    return out


# -- writing -------------------------------------------------------------------------------------


def _is_ours_json(text: str) -> bool:
    return '"generated_by": "specs' in text[:4096]


class ProgressWriter:
    """Subscriber that keeps ``progress_<d>.json`` current while the run goes on.

    Called as ``writer(event, state)`` after ``state.apply(event)``. It writes at once when
    the run waits for a human, pauses or ends (when people and dashboards read the file), and
    otherwise on its own timer: every ``interval`` seconds it rewrites the file when an event
    arrived since the last write or a step is running (whose ``elapsed_s`` has grown), so a
    step that runs for a minute without an event still shows, and the last events before a
    quiet spell are never left unwritten. The first timed write comes ``interval`` seconds
    after the first event: a run shorter than that writes its document once, at its end.

    The timer is a ``call_later`` on the event loop the events arrive on: it runs between
    events, on the engine's thread, so it reads a consistent state, and an event costs only
    noting it (no clock read). Outside an event loop the writer falls back to checking the
    clock at each event. A big run's document takes long to build and encode, so the gap
    between timed writes grows to keep them under :attr:`MAX_SHARE` of the run's time. The
    timed writes are built on the engine's thread and written, fsync'd and renamed into place
    on a helper thread (:class:`AtomicFile`); the others, and :meth:`flush`, are on disk when
    the call returns. The timer stops at the run's end or pause (the last document is that
    one) and at :meth:`close`.
    """

    ALWAYS = frozenset({"gate-requested", "run-paused", "run-ended"})
    FINAL = frozenset({"run-paused", "run-ended"})
    MAX_SHARE = 0.1

    def __init__(self, spec: Spec, path: Path, *, interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 spec_files: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.path = path
        self.interval = interval
        self.spec_files = spec_files
        self.writes = 0
        self._clock = clock
        self._wall = wall
        self._first: float | None = None  # when the first event came (the fallback's clock)
        self._last = float("-inf")
        self._gap = interval
        self._state: RunState | None = None
        self._dirty = False  # an event came since the last write
        self._timer: asyncio.TimerHandle | None = None
        self._error: OSError | None = None  # a timed write's failure, raised at the next event
        self._checked = False
        self._file = AtomicFile(path)
        self._records: StepRecords = {}  # finished steps' records, kept between writes

    def __call__(self, event: ev.Event, state: RunState) -> None:
        self._state = state
        self._dirty = True
        if event.name in self.ALWAYS:
            if event.name in self.FINAL:
                self.close()
            self._error = None  # this write replaces the failed one (or fails in its turn)
            self._write(state, self._clock())
            return
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._timer is not None:
            return  # the timer writes
        if self._first is None:
            self._first = self._clock()
            if self._start_timer():
                return
        now = self._clock()
        if now - max(self._last, self._first) >= self._gap:  # no event loop: at events only
            self._write(state, now, later=True)

    def flush(self, state: RunState | None = None) -> None:
        """Write now (the given state, else the last one seen); no-op before any event."""
        if state is None:
            state = self._state
        if state is not None:
            self._write(state, self._clock())

    def close(self) -> None:
        """Stop the timer (the run ended, or its engine stopped without ending it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def wait(self) -> None:
        """Until the timed writes handed to the helper thread are on disk."""
        self._file.wait()

    def _start_timer(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._timer = loop.call_later(self.interval, self._tick)
        return True

    def _tick(self) -> None:
        """The timer: write when something changed (or runs) and the gap has passed."""
        state, now = self._state, self._clock()
        due = self._last + self._gap
        if state is not None and now >= due and (self._dirty or state.running):
            try:
                self._write(state, now, later=True)
            except OSError as exc:  # the engine sees it at its next event, as without a timer
                self._error = exc
            due = self._last + self._gap
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(due - self._clock(), self.interval / 10), self._tick)

    def _write(self, state: RunState, now: float, *, later: bool = False) -> None:
        if state.mode_selected_at is None:
            return  # the run never started (validation failed): the spec folder is untouched
        if not self._checked:
            preserve_foreign(self.path, _is_ours_json)
            self._checked = True
        self._dirty = False
        # the document is a tree: its thousands of dicts need no collector, which would scan
        # the run's state again and again (a first build of 1,000-5,000 steps: 21-30 % cheaper)
        with gc_paused():
            data = dumps_bytes(progress_document(self.spec, state, spec_files=self.spec_files,
                                                 records=self._records, now=self._wall()))
            if later:
                self._file.later(data)
            else:
                self._file.now(data)
        self.writes += 1
        done = self._clock()
        spent = done - now
        self._gap = max(self.interval, spent / self.MAX_SHARE - spent)
        self._last = done
