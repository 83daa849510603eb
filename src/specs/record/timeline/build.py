"""Building a timeline from a run's events (see :mod:`specs.record.timeline`).

:func:`build_timeline` reads the events in order: each kind of event has its handler, which
opens or closes a step's bar and its attempts' segments, or places a marker; at the end the
running steps are drawn up to the last event (or to ``now``), the critical path is measured and
the ``parallel_execution_summary`` computed as the progress file computes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from specs import events as ev
from specs.engine.state import RunState
from specs.plan.cache import spec_plan
from specs.record.analysis import goal_status
from specs.record.facts import Span, to_epoch
from specs.record.parallel import measured_critical_path, overlapping, parallel_summary
from specs.record.timeline.model import Bar, Marker, Segment, TaskRow, TimelineData
from specs.spec.model import Spec

__all__ = ["EXECUTION_BEGINS", "build_timeline"]


def build_timeline(events: Iterable[ev.Event], spec: Spec | None = None, *,
                   now: float | None = None) -> TimelineData:
    """The Gantt data of a run from its events; ``spec`` (when it can be loaded) gives the
    rows in plan order with their descriptions, the dependencies and the phases.

    A run that has not ended is drawn as it stands: its running steps and attempts up to
    ``now`` (a Unix time: pass it for a run that is still going on), else up to its last
    event (a run that was interrupted). They count in the makespan and the sums."""
    return _Builder(spec).build(list(events), now)


#: the first of these events is time 0 of the axis (what comes before is pre-flight)
EXECUTION_BEGINS = frozenset({"execution-planned", "task-started", "step-started",
                              "attempt-started", "step-ended", "gate-requested"})


class _Builder:
    def __init__(self, spec: Spec | None) -> None:
        self.data = TimelineData()
        self.tasks: dict[str, TaskRow] = {}
        self.bars: dict[str, Bar] = {}
        self.spec = spec
        self.plan = spec_plan(spec) if spec is not None else None
        self.origin: float | None = None
        self.last = 0.0
        self.now = 0.0  # the Unix time of the event being read
        self.first_start: dict[str, float] = {}  # Unix times, as the progress file measures
        self.last_end: dict[str, float] = {}
        self.running: set[str] = set()
        self.max_running = 0
        self.gates: dict[str, Marker] = {}
        self.pause: Marker | None = None
        self.planned: ev.ExecutionPlanned | None = None
        if self.plan is not None:
            for plan_task in self.plan.tasks:
                self._task(plan_task.ref).description = plan_task.description
                for ref in plan_task.steps:
                    node = self.plan.nodes[ref]
                    bar = self._bar(ref, plan_task.ref)
                    bar.description, bar.critical = node.description, node.critical
                    bar.parallel_group, bar.phase = node.parallel_group, node.phase
                    bar.dependencies = list(node.deps)

    # -- rows ---------------------------------------------------------------------------------

    def _task(self, ref: str) -> TaskRow:
        found = self.tasks.get(ref)
        if found is None:
            found = self.tasks[ref] = TaskRow(ref)
        return found

    def _bar(self, ref: str, task: str | None = None) -> Bar:
        found = self.bars.get(ref)
        if found is None:
            task_ref, _, step_id = ref.rpartition(".")
            task_ref = task or task_ref
            found = self.bars[ref] = Bar(ref, task_ref, step_id)
            self._task(task_ref).bars.append(found)
        return found

    def _t(self, ts: str) -> float:
        found = to_epoch(ts)
        if found is None:
            return self.last
        if self.origin is None:
            self.origin = found
        self.now = found
        self.last = max(self.last, found - self.origin)
        return max(0.0, found - self.origin)

    def _mark(self, kind: str, ts: str, label: str, step: str | None = None) -> Marker:
        marker = Marker(kind, self._t(ts), ts, label, step)
        if step is not None:
            self._bar(step).markers.append(marker)
        else:
            self.data.markers.append(marker)
        return marker

    # -- events -------------------------------------------------------------------------------

    def build(self, events: list[ev.Event], now: float | None = None) -> TimelineData:
        data = self.data
        begun = next((e.ts for e in events if e.name in EXECUTION_BEGINS and to_epoch(e.ts)),
                     None) or next((e.ts for e in events if to_epoch(e.ts)), None)
        if begun is not None:
            self.origin, data.origin_at = to_epoch(begun), begun
        for event in events:
            handler = getattr(self, "_on_" + event.name.replace("-", "_"), None)
            previous = self.last
            if handler is not None:
                handler(event, previous)
            else:
                self._t(event.ts)
        if now is not None and data.ended_at is None and self.origin is not None:
            self.last = max(self.last, now - self.origin)  # a live run: up to now
        if data.goal is None and self.spec is not None and (
                data.ended_at is not None or self.pause is not None):
            data.goal = _goal_as_of_now(self.spec, events)  # stopped before its checks
        self._finish()
        return data

    def _on_run_opened(self, e: ev.RunOpened, _: float) -> None:
        self._t(e.ts)
        self.data.run_id, self.data.descriptor = e.run_id, e.descriptor
        self.data.started_at = self.data.started_at or e.ts

    def _on_execution_planned(self, e: ev.ExecutionPlanned, _: float) -> None:
        self._t(e.ts)
        self.planned = e
        self.data.parallel, self.data.max_parallel = e.parallel, e.max_parallel

    def _on_task_started(self, e: ev.TaskStarted, _: float) -> None:
        self._t(e.ts)
        task = self._task(e.task)
        task.description = task.description or e.description
        task.status = "in_progress"

    def _on_task_ended(self, e: ev.TaskEnded, _: float) -> None:
        self._t(e.ts)
        self._task(e.task).status = e.status

    def _on_step_started(self, e: ev.StepStarted, _: float) -> None:
        t = self._t(e.ts)
        bar = self._bar(e.step)
        if bar.start is None:
            bar.start, bar.started_at = t, e.ts
            self.first_start[e.step] = self.now
        self.last_end.pop(e.step, None)
        if bar.ended_at is not None or bar.round == 0:
            bar.round += 1
        bar.status, bar.critical = "started", e.critical
        bar.end = bar.ended_at = None
        if e.execution_id is not None:
            bar.execution_id = e.execution_id
        if e.slot is not None:
            bar.slot = e.slot
        if e.parallel_group is not None:
            bar.parallel_group = e.parallel_group
        if self.plan is None:  # what the launch waited for, else what the step consulted
            found = e.dependencies_satisfied
            bar.dependencies = list(found if found is not None else e.prior_step_dependencies)
        self.running.add(e.step)
        self.max_running = max(self.max_running, len(self.running))

    def _on_attempt_started(self, e: ev.AttemptStarted, _: float) -> None:
        bar = self._bar(e.step)
        bar.segments.append(Segment(e.method, e.attempt, max(bar.round, 1), self._t(e.ts), None,
                                    e.ts))

    def _on_attempt_ended(self, e: ev.AttemptEnded, _: float) -> None:
        t = self._t(e.ts)
        bar = self._bar(e.step)
        segment = bar.segments[-1] if bar.segments else None
        if segment is None or segment.end is not None:
            return
        segment.end, segment.ended_at, segment.outcome = t, e.ts, e.outcome
        segment.failure_reason, segment.exit_code = e.failure_reason, e.exit_code
        segment.verdict = e.verdict

    def _on_retry_scheduled(self, e: ev.RetryScheduled, _: float) -> None:
        reason = f": {e.reason}" if e.reason else ""
        self._mark("retry", e.ts, f"retry {e.method} in {e.delay_s:g}s{reason}", e.step)

    def _on_backup_triggered(self, e: ev.BackupTriggered, _: float) -> None:
        self._mark("backup", e.ts, f"backup {e.backup} takes over ({e.trigger}): "
                   f"{e.justification}", e.step)

    def _on_step_ended(self, e: ev.StepEnded, previous: float) -> None:
        t = self._t(e.ts)
        bar = self._bar(e.step)
        self._close_open(bar, previous, "interrupted")
        bar.status, bar.method_used = e.status, e.method_used
        bar.skip_reason, bar.message = e.skip_reason, e.message
        if bar.start is not None:
            bar.end, bar.ended_at = t, e.ts
            self.last_end[e.step] = max(self.now, self.first_start[e.step])
        else:
            bar.ended_at = e.ts
            if e.status == "skipped":
                why = e.skip_reason or "skipped"
                self._mark("skipped", e.ts, f"skipped ({why})" + (
                    f": {e.message}" if e.message else ""), e.step)
        self.running.discard(e.step)

    def _on_step_reopened(self, e: ev.StepReopened, _: float) -> None:
        bar = self._bar(e.step)
        self._mark("reopened", e.ts, f"reopened: {e.reason}" if e.reason else "reopened",
                   e.step)
        bar.round += 1
        bar.status, bar.end, bar.ended_at = "started", None, None
        self.last_end.pop(e.step, None)

    def _on_escalated(self, e: ev.Escalated, _: float) -> None:
        label = "escalated: " + ", ".join(e.reasons)
        if e.recommendation:
            label += f" ({e.recommendation})"
        self._mark("escalation", e.ts, label, e.step if e.step in self.bars or (
            e.step and self.plan is None) else None)

    def _on_gate_requested(self, e: ev.GateRequested, _: float) -> None:
        step = e.step if e.step in self.bars or (e.step and self.plan is None) else None
        self.gates[e.gate] = self._mark("gate", e.ts, f"{e.kind} gate: {e.prompt}", step)

    def _on_gate_answered(self, e: ev.GateAnswered, _: float) -> None:
        t = self._t(e.ts)
        marker = self.gates.get(e.gate)
        if marker is not None and marker.end is None:
            marker.end = t
            marker.label += f" -> {e.response} (by {e.by})"

    def _on_mode_switched(self, e: ev.ModeSwitched, _: float) -> None:
        self._mark("mode", e.ts, f"mode {e.from_mode} -> {e.to_mode}: {e.reason}")

    def _on_transition_taken(self, e: ev.TransitionTaken, _: float) -> None:
        self._mark("transition", e.ts, f"loop from task {e.from_task} back to task {e.to_task} "
                   f"(iteration {e.iteration})")

    def _on_run_paused(self, e: ev.RunPaused, previous: float) -> None:
        self.pause = self._mark("pause", e.ts, f"paused: {e.reason}")

    def _on_run_resumed(self, e: ev.RunResumed, previous: float) -> None:
        t = self._t(e.ts)
        for bar in self.bars.values():
            self._close_open(bar, previous, "interrupted")
        if self.pause is not None and self.pause.end is None:
            self.pause.end = t
            self.pause = None
        what = f" ({len(e.interrupted)} interrupted attempts run again)" if e.interrupted else ""
        self._mark("resume", e.ts, "resumed" + what)
        data = self.data  # running again: an earlier end (a halt) decides nothing now
        data.status, data.ended_at, data.goal = "running", None, None

    def _on_completion_verified(self, e: ev.CompletionVerified, _: float) -> None:
        self._t(e.ts)
        self.data.goal = e.goal_achievement_status

    def _on_run_ended(self, e: ev.RunEnded, _: float) -> None:
        self._t(e.ts)
        self.data.status, self.data.ended_at = e.status, e.ts
        self.data.goal = e.goal_achievement_status or self.data.goal

    def _close_open(self, bar: Bar, at: float, outcome: str) -> None:
        for segment in bar.segments:
            if segment.end is None:
                segment.end, segment.outcome = max(segment.start, at), outcome

    # -- the end ------------------------------------------------------------------------------

    def _finish(self) -> None:
        data, last = self.data, self.last
        if data.ended_at is None and data.status in ("initializing", "running") and self.bars:
            data.status = "awaiting_human" if self.pause is not None else "running"
        ended = data.ended_at is not None
        for bar in self.bars.values():
            self._close_open(bar, last, "interrupted" if ended else "running")
        if self.plan is None:  # rows from the events: steps in id order within their task
            for task in self.tasks.values():
                task.bars.sort(key=lambda b: _id_key(b.step_id))
        data.tasks = [t for t in self.tasks.values() if t.bars]
        data.duration = max([last] + [b.end for b in self.bars.values() if b.end is not None])
        spans: dict[str, Span] = {b.ref: (b.start, b.end) for b in self.bars.values()
                                  if b.start is not None and b.end is not None}
        spans.update({b.ref: (b.start, max(b.start, last)) for b in self.bars.values()
                      if b.start is not None and b.end is None and b.running})
        together = overlapping(spans)
        deps = {b.ref: b.dependencies for b in self.bars.values()}
        order = [b.ref for b in data.bars()]
        if self.plan is not None:
            planned: list[str] = list(self.plan.critical_path)
            phases: Sequence[Sequence[str]] = self.plan.phases
            order = list(self.plan.order) + [r for r in order if r not in self.plan.nodes]
        else:
            planned = list(self.planned.critical_path) if self.planned is not None else []
            phases = _phases(order, deps)
        data.planned_critical_path = planned
        measured = measured_critical_path(spans, deps, order)
        data.critical_path = measured or planned
        on_path = set(data.critical_path)
        for bar in self.bars.values():
            bar.on_critical_path = bar.ref in on_path
            bar.parallel_execution = bar.ref in together
        timed = {ref: (self.first_start[ref], end) for ref, end in self.last_end.items()}
        if self.origin is not None:  # running (or cut short): up to the axis's end
            until = self.origin + last
            timed.update({ref: (start, max(start, until))
                          for ref, start in self.first_start.items()
                          if ref not in timed and self.bars[ref].running})
        data.summary = parallel_summary(self.planned, self.max_running, timed, phases,
                                        planned, deps, order)


def _goal_as_of_now(spec: Spec, events: list[ev.Event]) -> str | None:
    """The goal status of a run that stopped before its completion checks (halted, paused):
    what the progress file says (:func:`~specs.record.analysis.goal_status`)."""
    state = RunState(spec)
    try:
        for event in events:
            state.apply(event)
    except KeyError:  # the spec changed since: its steps are not the run's
        return None
    return goal_status(state)


def _id_key(step_id: str) -> tuple[int, float, str]:
    try:
        return 0, float(step_id), step_id
    except ValueError:
        return 1, 0.0, step_id


def _phases(order: list[str], deps: dict[str, list[str]]) -> list[list[str]]:
    """The phases of the recorded dependencies (Kahn's layers), standing in for the plan's when
    no spec is at hand."""
    phase: dict[str, int] = {}

    def depth(ref: str, trail: frozenset[str] = frozenset()) -> int:
        if ref not in phase:
            known = [d for d in deps.get(ref, ()) if d in deps and d not in trail]
            phase[ref] = 1 + max((depth(d, trail | {ref}) for d in known), default=0)
        return phase[ref]

    for ref in order:
        depth(ref)
    phases: list[list[str]] = [[] for _ in range(max(phase.values(), default=0))]
    for ref in order:
        phases[phase[ref] - 1].append(ref)
    return phases
