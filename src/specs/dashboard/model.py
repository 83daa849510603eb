"""One run as its page shows it, kept up to date one event at a time: :class:`RunModel`.

The model starts from the run state the library rebuilds from the events
(:func:`specs.api.show_run`) and applies each new event of the log to it (the same
``apply`` the engine and ``specs resume`` use), so the page never disagrees with
``specs show-run``. For each event it says what changed, as a message: the event's
sequence number, a line describing it, the run's header, and the records of the step and
task it touched. It remembers the sequence number at which each step last changed, so a
browser that comes back after seq *n* gets the current records of exactly the steps changed
since (:meth:`RunModel.catch_up`): nothing missed, nothing sent twice.

A run whose spec can no longer be read is drawn from its events alone (the timeline's
builder), rebuilt when new events come (such runs are rarely live).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from specs import events as ev
from specs.api import find_run, open_spec, show_run
from specs.api.logs import call_line
from specs.api.runs import open_gates, run_is_live, summarize
from specs.dashboard import records
from specs.dashboard.runs import row_of
from specs.record.timeline import TimelineData, build_timeline

__all__ = ["LogReader", "RunModel", "describe"]

FINAL = ("completed", "failed", "skipped")


class LogReader:
    """Reads an event log from where it stopped: only complete lines, a torn last line left
    for the next read, damaged lines skipped (as :func:`specs.events.read_events` does)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def grew(self) -> bool:
        try:
            return self.path.stat().st_size > self.offset
        except OSError:
            return False

    def read(self) -> list[ev.Event]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        found = []
        for raw in data[: end + 1].splitlines():
            try:
                found.append(ev.event_from_dict(json.loads(raw)))
            except (ValueError, KeyError, TypeError):
                continue
        return found


def describe(event: ev.Event) -> str:
    """One line for the run page's event list."""
    step = getattr(event, "step", None)
    where = f"{step} " if isinstance(step, str) else ""
    if isinstance(event, ev.AttemptStarted):
        return f"{where}{records.lane_label(event.method, event.attempt)[1]} started"
    if isinstance(event, ev.AttemptEnded):
        how = event.outcome + (f" (exit {event.exit_code})" if event.exit_code is not None
                               else "")
        why = f": {event.failure_reason}" if event.failure_reason else ""
        return f"{where}{records.lane_label(event.method, event.attempt)[1]} {how}{why}"
    if isinstance(event, ev.StepEnded):
        by = f" with {event.method_used}" if event.method_used else ""
        return f"{where}{event.status}{by}"
    if isinstance(event, ev.BackupTriggered):
        return f"{where}backup {event.backup} takes over ({event.trigger})"
    if isinstance(event, ev.GateRequested):
        return f"{where}waits for a human: {event.prompt}"
    if isinstance(event, ev.GateAnswered):
        return f"gate {event.gate} answered {event.response} (by {event.by})"
    if isinstance(event, ev.Escalated):
        return f"{where}escalated: {'; '.join(event.reasons)}"
    if isinstance(event, ev.TaskStarted | ev.TaskEnded):
        return f"task {event.task} " + ("started" if isinstance(event, ev.TaskStarted)
                                        else event.status)
    if isinstance(event, ev.RunEnded):
        return f"run {event.status}" + (f", goal {event.goal_achievement_status}"
                                        if event.goal_achievement_status else "")
    if isinstance(event, ev.RunPaused):
        return f"run paused: {event.reason}"
    return f"{where}{event.name}"


class RunModel:
    """See the module docstring. Build one with :meth:`load`."""

    def __init__(self, run_dir: Path, state: Any, parameters: str | None,
                 events: list[ev.Event]) -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.state = state  # the library's RunState, or None (the spec is gone)
        self.parameters = parameters  # the spec's parameters file, as the run recorded it
        self.events: list[ev.Event] | None = None if state is not None else list(events)
        self.timeline: TimelineData | None = None
        self.reader = LogReader(run_dir / "events.jsonl")
        self.seq = 0
        self.touched: dict[str, int] = {}  # step ref -> seq of its last change
        self.lines: deque[tuple[int, str, str]] = deque(maxlen=200)  # (seq, ts, line)
        self.counts: Counter[str] = Counter()
        self.status_of: dict[str, str] = {}
        self.gate_seq = 0
        self.calls: dict[str, list[tuple[str, int, str]]] = {}  # step -> model/tool calls
        self.summary = summarize(events, run_dir.name)
        self.live = False

    @classmethod
    def load(cls, state_dir: Path, run_id: str) -> RunModel:
        """The run ``run_id`` (an exact id) of the state folder, as of now."""
        run_dir = find_run(state_dir, run_id)
        view = show_run(state_dir, run_dir.name)
        state = view.state
        model = cls(run_dir, state, view.summary.spec.get("parameters"), [])
        events = model.reader.read()
        applied = state.events if state is not None else 0
        model.summary = summarize(events, run_dir.name)
        for index, event in enumerate(events):
            model._note(event, apply=index >= applied)
        if state is None:
            model.events = events
            model._rebuild()
        model._recount()
        model.live = run_is_live(run_dir)
        return model

    # -- applying events ---------------------------------------------------------------------

    def _note(self, event: ev.Event, *, apply: bool) -> None:
        if apply and self.state is not None:
            with contextlib.suppress(KeyError):  # a step the spec no longer has
                self.state.apply(event)
        self.seq = max(self.seq, event.seq)
        step = getattr(event, "step", None)
        if isinstance(step, str):
            self.touched[step] = event.seq
        if isinstance(event, ev.GateRequested | ev.GateAnswered | ev.GateClosed):
            self.gate_seq = event.seq
        elif isinstance(event, ev.LlmCall | ev.ToolCalled):
            self.calls.setdefault(event.step, []).append(
                (event.method, event.attempt, call_line(event)))
        if isinstance(event, ev.TransitionTaken | ev.StepReopened) and self.state is not None:
            for ref in self.state.steps:  # many steps went back to pending
                self.touched[ref] = event.seq
        self.lines.append((event.seq, event.ts, describe(event)))

    def _rebuild(self) -> None:
        assert self.events is not None
        self.timeline = build_timeline(self.events, None,
                                       now=time.time() if self.live else None)

    def _recount(self) -> None:
        self.status_of = {s["ref"]: s["status"] for s in self._all_steps(light=True)}
        self.counts = Counter(self.status_of.values())

    def update(self) -> list[dict[str, Any]]:
        """Read what the log gained since the last call; a message per new event."""
        if not self.reader.grew():
            return []
        events = self.reader.read()
        if not events:
            return []
        self.live = run_is_live(self.run_dir) or not any(
            isinstance(e, ev.RunEnded | ev.RunPaused) for e in events[-3:])
        if self.events is not None:
            self.events.extend(events)
            self.summary = summarize(self.events, self.run_id)
            self._rebuild()
        out = []
        for event in events:
            self._note(event, apply=True)
            out.append(self.message(event))
        return out

    # -- records -----------------------------------------------------------------------------

    def _gates_of(self, ref: str) -> list[Any]:
        assert self.state is not None
        return [g for g in self.state.gates.values() if g.step == ref]

    def _escalations_of(self, ref: str) -> list[Any]:
        assert self.state is not None
        return [e for e in self.state.escalations if e.step == ref]

    def step(self, ref: str) -> dict[str, Any] | None:
        if self.state is not None:
            found = self.state.steps.get(ref)
            if found is None:
                return None
            return records.step_record(found, self._gates_of(ref), self._escalations_of(ref))
        assert self.timeline is not None
        bar = next((b for b in self.timeline.bars() if b.ref == ref), None)
        return None if bar is None else records.step_from_bar(bar)

    def _all_steps(self, *, light: bool = False) -> list[dict[str, Any]]:
        if self.state is not None:
            if light:
                return [{"ref": s.ref, "status": s.status} for s in self.state.steps.values()]
            gates: dict[str, list[Any]] = {}
            for gate in self.state.gates.values():
                gates.setdefault(gate.step or "", []).append(gate)
            escalations: dict[str, list[Any]] = {}
            for escalated in self.state.escalations:
                escalations.setdefault(escalated.step or "", []).append(escalated)
            return [records.step_record(s, gates.get(s.ref, []), escalations.get(s.ref, []))
                    for s in self.state.steps.values()]
        assert self.timeline is not None
        return records.timeline_steps(self.timeline)

    def task_refs(self) -> list[tuple[str, str, str, list[str]]]:
        """(ref, description, status, step refs) of every task, in order."""
        if self.state is not None:
            return [(t.ref, t.description, t.status, list(t.steps))
                    for t in self.state.tasks.values()]
        assert self.timeline is not None
        return [(t.ref, t.description, t.status, [b.ref for b in t.bars])
                for t in self.timeline.tasks]

    def task(self, ref: str) -> dict[str, Any] | None:
        for task_ref, description, status, steps in self.task_refs():
            if task_ref == ref:
                light = [{"ref": r, "status": self.status_of.get(r, "pending")} for r in steps]
                return records.task_record(task_ref, description, status, light)
        return None

    def tasks(self) -> list[dict[str, Any]]:
        out = []
        for ref, description, status, steps in self.task_refs():
            light = [{"ref": r, "status": self.status_of.get(r, "pending")} for r in steps]
            out.append(records.task_record(ref, description, status, light))
        return out

    def header(self) -> dict[str, Any]:
        row = row_of(self.summary)
        state = self.state
        if state is not None:
            usage = state.llm_usage
            status = state.status
            if status in ("initializing", "running") and not self.live:
                status = "interrupted"
            return records.run_header(
                run_id=self.run_id, spec=state.descriptor or row.spec, status=status,
                goal=state.end.goal_achievement_status if state.end else None,
                mode=state.mode, started=state.started_at, last=state.last_event_at,
                ended=state.ended_at, steps_done=sum(self.counts[s] for s in FINAL),
                steps_total=len(state.steps), tokens=int(usage["total_tokens"]),
                cost_usd=round(usage["cost_usd"], 6) if usage["calls"] else None,
                live=self.live, open_gates=len(self.open_gates()), seq=self.seq)
        data = self.timeline
        assert data is not None
        status = data.status if self.live or data.status != "running" else "interrupted"
        return records.run_header(
            run_id=self.run_id, spec=data.descriptor or row.spec, status=status,
            goal=data.goal, mode=None, started=data.started_at, last=row.last,
            ended=data.ended_at, steps_done=sum(self.counts[s] for s in FINAL),
            steps_total=len(self.status_of), tokens=row.tokens, cost_usd=row.cost_usd,
            live=self.live, open_gates=len(self.open_gates()), seq=self.seq)

    def open_gates(self) -> list[dict[str, Any]]:
        if self.state is not None:
            return [{"gate": g.id, "kind": g.kind, "step": g.step, "prompt": g.prompt,
                     "options": list(g.options), "requested_at": g.requested_at}
                    for g in self.state.gates.values() if g.response is None]
        assert self.events is not None
        return [{"gate": g.gate, "kind": g.kind, "step": g.step, "prompt": g.prompt,
                 "options": list(g.options), "requested_at": g.ts}
                for g in open_gates(self.events)]

    # -- messages ----------------------------------------------------------------------------

    def _count(self, ref: str) -> None:
        record_status = None
        if self.state is not None:
            found = self.state.steps.get(ref)
            record_status = found.status if found is not None else None
        if record_status is None:
            return
        old = self.status_of.get(ref)
        if old != record_status:
            if old is not None:
                self.counts[old] -= 1
            self.counts[record_status] += 1
            self.status_of[ref] = record_status

    def message(self, event: ev.Event) -> dict[str, Any]:
        """What the page needs to know after ``event``."""
        step_ref = getattr(event, "step", None)
        if isinstance(event, ev.TransitionTaken | ev.StepReopened) or self.state is None:
            self._recount()
        elif isinstance(step_ref, str):
            self._count(step_ref)
        out: dict[str, Any] = {"seq": event.seq, "event": event.name, "ts": event.ts,
                               "line": describe(event), "run": self.header()}
        if isinstance(step_ref, str):
            step = self.step(step_ref)
            if step is not None:
                out["steps"] = [step]
                task = self.task(step["task"])
                out["tasks"] = [task] if task else []
        task_ref = getattr(event, "task", None)
        if isinstance(task_ref, str) and "tasks" not in out:
            task = self.task(task_ref)
            out["tasks"] = [task] if task else []
        if isinstance(event, ev.TransitionTaken):
            out["tasks"] = self.tasks()
            out["reload"] = True
        if isinstance(event, ev.GateRequested | ev.GateAnswered | ev.GateClosed
                      | ev.RunPaused | ev.RunEnded | ev.RunResumed):
            out["gates"] = self.open_gates()
        return out

    def catch_up(self, after: int) -> dict[str, Any]:
        """One message bringing a page that saw events up to ``after`` to now."""
        changed = [ref for ref, seq in self.touched.items() if seq > after]
        steps = [s for s in (self.step(ref) for ref in changed) if s is not None]
        task_refs = {s["task"] for s in steps}
        return {"seq": self.seq, "event": "catch-up", "after": after, "run": self.header(),
                "steps": steps, "tasks": [t for t in self.tasks() if t["ref"] in task_refs],
                "gates": self.open_gates(),
                "lines": [list(item) for item in self.lines if item[0] > after]}

    def snapshot(self, expanded: set[str] | None = None) -> dict[str, Any]:
        """The whole run as the page (or ``/runs/<id>.json``) starts from: every task, and
        the steps of ``expanded`` tasks (all when None)."""
        tasks = self.tasks()
        if expanded is None:
            steps = self._all_steps()
        else:
            steps = [s for s in (self.step(ref) for t in tasks if t["ref"] in expanded
                                 for ref in t["steps"]) if s is not None]
        return {"run": self.header(), "tasks": tasks, "steps": steps,
                "gates": self.open_gates(), "lines": [list(item) for item in self.lines][-50:],
                "critical_path": self.critical_path(), "spec_readable": self.state is not None}

    def critical_path(self) -> list[str]:
        if self.state is not None and self.state.planned is not None:
            return list(self.state.planned.critical_path)
        if self.timeline is not None:
            return list(self.timeline.critical_path)
        return []

    def all_events(self) -> list[ev.Event]:
        """The log's events, read again (the timeline and the export)."""
        return list(ev.read_events(self.run_dir / "events.jsonl"))

    def timeline_data(self) -> TimelineData:
        """The run's Gantt data, as ``specs timeline`` draws it (with the spec while it
        still loads)."""
        spec = None
        if self.parameters and Path(self.parameters).is_file():
            spec = open_spec(self.parameters).spec
        data = build_timeline(self.all_events(), spec, now=time.time() if self.live else None)
        if not self.live and data.status == "running":
            data.status = "interrupted"
        return data
