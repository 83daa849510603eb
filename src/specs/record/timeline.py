"""Timeline: a run's Gantt chart, drawn from its events (reference §5.1, rollout phase 3).

:func:`build_timeline` reads a run's events (and its spec, when it can still be loaded) and
returns :class:`TimelineData`: one :class:`Bar` per step, grouped by task, from its
step-started to its step-ended; inside it one :class:`Segment` per attempt (method, number,
outcome); :class:`Marker` for what happened at a moment (a skipped step, a gate and its answer,
a backup taking over, a retry, an escalation, a pause and its resume, a transition); the
critical path; and the ``parallel_execution_summary`` of the progress file, measured the same
way (:mod:`specs.record.analysis`). Times are seconds since execution began (the execution plan,
after pre-flight validation; ``origin_at``); everything comes from the events, so the same
events always give the same chart.

:func:`render_terminal` draws the chart with Rich (one row per step, a time axis scaled to
the width, primary and backup attempts in different characters and colours, failed attempts
marked, critical-path rows highlighted, a legend). :func:`render_html` writes a self-contained
page with an inline SVG chart (no script, no external resource; hover titles via ``<title>``).
``specs timeline RUN`` (:mod:`specs.cli.timeline`) prints one or the other; docs/timeline.md
shows an example.

Without the spec the chart still draws: rows come from the events (steps in id order within
their task), dependencies from what the launches recorded (``dependencies_satisfied``, else
``prior_step_dependencies``), and the planned critical path from the execution-planned event.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.text import Text

from specs import events as ev
from specs.engine.state import RunState
from specs.record.analysis import (
    Span,
    goal_status,
    measured_critical_path,
    overlapping,
    parallel_summary,
    spec_plan,
    to_epoch,
)
from specs.spec.model import Spec

__all__ = ["Bar", "Marker", "Segment", "TaskRow", "TimelineData", "build_timeline",
           "render_html", "render_terminal"]


@dataclass
class Segment:
    """One attempt of one method inside a step's bar."""

    method: str  # primary | backup_<n>
    attempt: int
    round: int
    start: float
    end: float | None
    started_at: str
    ended_at: str | None = None
    outcome: str = "running"  # success | failure | error | interrupted | running
    failure_reason: str | None = None
    exit_code: int | None = None
    verdict: str = "unchecked"

    @property
    def backup(self) -> bool:
        return self.method != "primary"

    @property
    def failed(self) -> bool:
        return self.outcome in ("failure", "error", "interrupted")


@dataclass
class Marker:
    """Something that happened at a moment; gates and pauses also have an ``end``."""

    kind: str  # skipped | gate | backup | retry | escalation | reopened | pause | resume |
    #            transition | mode
    at: float
    ts: str
    label: str
    step: str | None = None
    end: float | None = None


@dataclass
class Bar:
    """One step: its span, attempts and markers."""

    ref: str
    task: str
    step_id: str
    description: str = ""
    critical: bool = False
    status: str = "pending"
    start: float | None = None
    end: float | None = None
    started_at: str | None = None
    ended_at: str | None = None
    round: int = 0
    execution_id: str | None = None
    slot: int | None = None
    parallel_group: str | None = None
    dependencies: list[str] = field(default_factory=list)
    phase: int | None = None
    method_used: str | None = None
    skip_reason: str | None = None
    message: str = ""
    segments: list[Segment] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    on_critical_path: bool = False
    parallel_execution: bool = False

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    @property
    def running(self) -> bool:
        return self.start is not None and self.status == "started"


@dataclass
class TaskRow:
    ref: str
    description: str = ""
    status: str = "pending"
    bars: list[Bar] = field(default_factory=list)


@dataclass
class TimelineData:
    """What the chart shows; see the module docstring. ``duration`` is the axis length."""

    run_id: str = ""
    descriptor: str = ""
    status: str = "initializing"
    goal: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    origin_at: str | None = None
    """Time 0 of the axis: when execution began (the first event of the run otherwise)."""
    duration: float = 0.0
    parallel: bool = False
    max_parallel: int = 1
    tasks: list[TaskRow] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    critical_path: list[str] = field(default_factory=list)
    """The measured critical path (the chain that set the run's length) once steps ran, the
    planned one before."""
    planned_critical_path: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def bars(self) -> list[Bar]:
        """Every bar, in row order."""
        return [bar for task in self.tasks for bar in task.bars]

    def bar(self, ref: str) -> Bar:
        return next(bar for bar in self.bars() if bar.ref == ref)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (for scripts and other renderers)."""
        return dataclasses.asdict(self)


# -- building ------------------------------------------------------------------------------------


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
            phases = _layers(order, deps)
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


def _layers(order: list[str], deps: dict[str, list[str]]) -> list[list[str]]:
    """Kahn layers of the recorded dependencies (the plan's phases when no spec is at hand)."""
    phase: dict[str, int] = {}

    def depth(ref: str, trail: frozenset[str] = frozenset()) -> int:
        if ref not in phase:
            known = [d for d in deps.get(ref, ()) if d in deps and d not in trail]
            phase[ref] = 1 + max((depth(d, trail | {ref}) for d in known), default=0)
        return phase[ref]

    for ref in order:
        depth(ref)
    layers: list[list[str]] = [[] for _ in range(max(phase.values(), default=0))]
    for ref in order:
        layers[phase[ref] - 1].append(ref)
    return layers


# -- common display helpers ----------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if 0 < value < 0.01:
        return f"{value * 1000:.0f}ms"
    if value < 10:
        return f"{value:.2f}s"
    if value < 120:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m{int(value % 60):02d}s"


def _ticks(duration: float, slots: int) -> tuple[float, list[float]]:
    """A 1-2-5 step giving at most ``slots`` intervals over ``duration``, and the ticks."""
    duration = max(duration, 1e-3)
    raw = duration / max(1, slots)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw - 1e-12)
    count = int(duration / step + 1e-9)
    return step, [i * step for i in range(count + 1)]


def _tick_label(value: float, step: float) -> str:
    if value == 0:
        return "0s"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{value:.{decimals}f}s"


def _outcome_word(bar: Bar) -> str:
    """``✓``, ``✓ backup_1``, ``✗ failed``, ``○ skipped``, ``▸ running``, ``pending``."""
    if bar.status == "completed":
        return "✓" + (f" {bar.method_used}" if bar.method_used not in (None, "primary") else "")
    if bar.status == "skipped":
        return "○ skipped"
    if bar.status == "started":
        return "▸ running"
    if bar.status == "failed":
        return "✗ failed"
    return bar.status


def _info(bar: Bar) -> str:
    took = _seconds(bar.duration) if bar.duration is not None else (
        "" if bar.start is None else "...")
    return f"{took} {_outcome_word(bar)}".strip()


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def _facts(data: TimelineData) -> tuple[str, str]:
    """Two lines: how the run executed, and what parallelism saved."""
    s = data.summary
    mode = (f"parallel run, up to {s.get('max_parallel')} steps at once" if s.get("enabled")
            else "sequential run")
    points = s.get("synchronisation_points", 0)
    return (f"{mode}; {s.get('max_concurrent_steps', 0)} at most at the same time; {points} "
            f"synchronisation point{'s' * (points != 1)}",
            f"makespan {_seconds(s.get('makespan_s'))}, sum of step times "
            f"{_seconds(s.get('sum_of_step_durations_s'))}, saved by running steps together "
            f"{_seconds(s.get('time_saved_s'))}")


# -- terminal ------------------------------------------------------------------------------------

CHAR_PRIMARY, CHAR_BACKUP, CHAR_FAILED, CHAR_WAIT = "█", "▓", "✗", "·"
CHAR_SKIPPED, CHAR_GATE, CHAR_PAUSE, CHAR_RUNNING, CHAR_CRITICAL = "○", "◆", "‖", "▸", "»"
STYLES = {"primary": "green", "backup": "yellow", "failed": "bold red", "running": "cyan",
          "wait": "dim", "skipped": "dim", "gate": "magenta", "pause": "blue",
          "critical": "bold bright_white on grey23", "task": "bold", "axis": "dim"}
LEGEND = (f"{CHAR_PRIMARY} primary attempt   {CHAR_BACKUP} backup attempt   {CHAR_FAILED} "
          f"attempt failed   {CHAR_RUNNING} running   {CHAR_WAIT} waiting (retry, gate)   "
          f"{CHAR_SKIPPED} skipped   {CHAR_GATE} gate   {CHAR_PAUSE} run paused   "
          f"{CHAR_CRITICAL} critical path")


class _Row:
    """One chart row: ``width`` cells of (character, style)."""

    def __init__(self, width: int, scale: float) -> None:
        self.cells: list[tuple[str, str]] = [(" ", "")] * width
        self.width, self.scale = width, scale

    def col(self, t: float) -> int:
        return min(self.width - 1, max(0, int(t * self.scale)))

    def span(self, start: float, end: float) -> range:
        first = self.col(start)
        last = max(first + 1, min(self.width, round(end * self.scale)))
        return range(first, last)

    def fill(self, start: float, end: float, char: str, style: str, *,
             after: int = 0) -> range:
        """Cells ``start``..``end`` (at least one), beginning no earlier than ``after``."""
        cells = self.span(start, end)
        if cells.start < after < self.width:
            cells = range(after, max(after + 1, cells.stop))
        for i in cells:
            self.cells[i] = (char, style)
        return cells

    def put(self, t: float, char: str, style: str) -> None:
        self.cells[self.col(t)] = (char, style)

    def text(self) -> Text:
        out = Text()
        for char, style in self.cells:
            out.append(char, style)
        return out


def _bar_row(bar: Bar, width: int, scale: float) -> _Row:
    row = _Row(width, scale)
    for marker in bar.markers:
        if marker.kind == "gate" and marker.end is not None:
            row.fill(marker.at, marker.end, CHAR_WAIT, STYLES["wait"])
    if bar.start is not None:
        row.fill(bar.start, bar.end if bar.end is not None else bar.start, CHAR_WAIT,
                 STYLES["wait"])
    free = 0  # each attempt gets a cell of its own (a short failure stays visible)
    for segment in bar.segments:
        end = segment.end if segment.end is not None else segment.start
        kind = "backup" if segment.backup else "primary"
        style = STYLES["failed"] if segment.failed else STYLES[
            "running" if segment.outcome == "running" else kind]
        cells = row.fill(segment.start, end, CHAR_BACKUP if segment.backup else CHAR_PRIMARY,
                         style, after=free)
        free = cells.stop
        if segment.failed:
            row.cells[cells[-1]] = (CHAR_FAILED, STYLES["failed"])
        elif segment.outcome == "running":
            row.cells[cells[-1]] = (CHAR_RUNNING, STYLES["running"])
    for marker in bar.markers:
        if marker.kind == "skipped":
            row.put(marker.at, CHAR_SKIPPED, STYLES["skipped"])
        elif marker.kind == "gate":
            row.put(marker.at, CHAR_GATE, STYLES["gate"])
    return row


def _run_row(data: TimelineData, width: int, scale: float) -> _Row | None:
    if not data.markers:
        return None
    row = _Row(width, scale)
    for marker in data.markers:
        if marker.kind == "pause":
            row.fill(marker.at, marker.end if marker.end is not None else data.duration,
                     CHAR_PAUSE, STYLES["pause"])
        elif marker.kind == "gate":
            row.put(marker.at, CHAR_GATE, STYLES["gate"])
        elif marker.kind in ("transition", "mode", "escalation"):
            row.put(marker.at, {"transition": "↺", "mode": "⇄", "escalation": "!"}[marker.kind],
                    STYLES["gate"])
    return row


def render_terminal(data: TimelineData, console_width: int = 100) -> Group:
    """The chart as Rich renderables for a console ``console_width`` columns wide."""
    info_w = 17
    labels = [f"{b.ref} {b.description}".rstrip() for b in data.bars()]
    label_w = max(12, min(max((len(x) for x in labels), default=12), console_width // 4))
    chart_w = max(10, console_width - label_w - info_w - 5)
    scale = chart_w / data.duration if data.duration > 0 else 0.0
    lines: list[Text] = []

    def line(*parts: tuple[str, str] | Text) -> None:
        out = Text(no_wrap=True, overflow="crop")
        for part in parts:
            if isinstance(part, Text):
                out.append_text(part)
            else:
                out.append(*part)
        lines.append(out)

    title = f"Timeline of {data.run_id or 'a run'}"
    title += f" ({data.descriptor})" if data.descriptor else ""
    title += f": {data.status}" + (f", goal {data.goal}" if data.goal else "")
    line((title, "bold"))
    for fact in _facts(data):
        line((fact, ""))
    line(("", ""))
    step, ticks = _ticks(data.duration, max(1, chart_w // 10))
    axis = [" "] * chart_w
    ruler = ["─"] * chart_w
    taken = -1
    for tick in ticks:
        col = min(chart_w - 1, int(tick * scale))
        ruler[col] = "┼"
        label = _tick_label(tick, step)
        begin = max(0, min(col, chart_w - len(label)))
        if begin > taken:
            axis[begin:begin + len(label)] = label
            taken = begin + len(label)
    ruler[0] = "├"
    pad = " " * (label_w + 3)
    line((pad + "".join(axis), STYLES["axis"]))
    line((pad + "".join(ruler), STYLES["axis"]))
    for task in data.tasks:
        status = f"  [{task.status}]" if task.status != "pending" else ""
        line((_short(f"Task {task.ref}  {task.description}", console_width - len(status) - 1)
              + status, STYLES["task"]))
        for bar in task.bars:
            mark = CHAR_CRITICAL if bar.on_critical_path else " "
            label = _short(f"{bar.ref} {bar.description}".rstrip(), label_w)
            style = STYLES["critical"] if bar.on_critical_path else ""
            info = _short(_info(bar), info_w)
            info_style = "red" if bar.status == "failed" else "dim" if bar.status in (
                "skipped", "pending") else ""
            line((f"{mark} ", style), (f"{label:<{label_w}}", style), (" ", ""),
                 _bar_row(bar, chart_w, scale).text(), (" ", ""), (info, info_style))
    run_row = _run_row(data, chart_w, scale)
    if run_row is not None:
        line((f"  {'run':<{label_w}} ", STYLES["task"]), run_row.text())
    line(("", ""))
    if data.critical_path:
        line((_short("Critical path: " + " -> ".join(data.critical_path), console_width),
              STYLES["critical"]))
    words = LEGEND.split("   ")
    current = "Legend: "
    for word in words:
        if len(current) + len(word) + 3 > console_width and current.strip() != "Legend:":
            line((current.rstrip(), "dim"))
            current = "        "
        current += word + "   "
    line((current.rstrip(), "dim"))
    return Group(*lines)


# -- HTML ----------------------------------------------------------------------------------------

LABEL_W, CHART_W, INFO_W = 270, 740, 140
ROW_H, TASK_H, TOP, BOTTOM = 22, 28, 44, 16
BAR_H = 12

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #1f2937; background: #ffffff; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
p.meta { margin: 2px 0; color: #4b5563; font-size: 13px; }
table.summary { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
table.summary td { padding: 2px 12px 2px 0; }
table.summary td:first-child { color: #6b7280; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; margin: 10px 0 14px 0;
          color: #374151; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
svg { font-size: 12px; max-width: 100%; height: auto; }
svg text { fill: #1f2937; }
.grid { stroke: #e5e7eb; stroke-width: 1; }
.axis { fill: #6b7280; font-size: 11px; }
.task { font-weight: 600; font-size: 13px; }
.taskline { stroke: #d1d5db; stroke-width: 1; }
.label { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.info { fill: #4b5563; font-size: 11px; }
.info.failed { fill: #b91c1c; }
.crit-row { fill: #fef3c7; }
.crit .label { font-weight: 700; }
.span { stroke: #9ca3af; stroke-width: 2; stroke-dasharray: 2 2; }
.primary.ok { fill: #2563eb; }
.backup.ok { fill: url(#stripes-backup); stroke: #c2410c; stroke-width: 1; }
.primary.failed { fill: #dc2626; }
.backup.failed { fill: url(#stripes-failed); stroke: #991b1b; stroke-width: 1; }
.running { fill: #06b6d4; }
.fail-mark { fill: #991b1b; font-weight: 700; font-size: 11px; }
.skip { fill: #ffffff; stroke: #6b7280; stroke-width: 1.5; }
.gate { fill: #a21caf; }
.gate-wait { stroke: #a21caf; stroke-width: 1.5; stroke-dasharray: 1 2; }
.backup-mark { fill: #c2410c; }
.pause { fill: #dbeafe; opacity: 0.8; }
.run-mark { fill: #1d4ed8; }
"""

DEFS = """<defs>
<pattern id="stripes-backup" width="6" height="6" patternUnits="userSpaceOnUse" \
patternTransform="rotate(45)"><rect width="6" height="6" fill="#fb923c"/>\
<rect width="3" height="6" fill="#ea580c"/></pattern>
<pattern id="stripes-failed" width="6" height="6" patternUnits="userSpaceOnUse" \
patternTransform="rotate(45)"><rect width="6" height="6" fill="#f87171"/>\
<rect width="3" height="6" fill="#b91c1c"/></pattern>
</defs>"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(ts: str | None) -> str:
    """``10:15:00.123`` of an event time."""
    if not ts or "T" not in ts:
        return ts or "?"
    return ts.split("T", 1)[1].rstrip("Z")


def _segment_title(bar: Bar, s: Segment) -> str:
    took = _seconds(s.end - s.start) if s.end is not None else "-"
    parts = [f"{bar.ref} {s.method} attempt {s.attempt}"
             + (f" (round {s.round})" if s.round > 1 else "") + f": {s.outcome}, {took}",
             f"{_clock(s.started_at)} -> {_clock(s.ended_at)}"]
    if s.failure_reason:
        parts.append(f"reason: {s.failure_reason}")
    if s.exit_code is not None:
        parts.append(f"exit code {s.exit_code}")
    if s.verdict != "unchecked":
        parts.append(f"expected output: {s.verdict}")
    return "\n".join(parts)


def _bar_title(bar: Bar) -> str:
    parts = [f"{bar.ref} {bar.description}".rstrip(),
             f"status {bar.status}" + (f" via {bar.method_used}" if bar.method_used else "")
             + (f", {_seconds(bar.duration)}" if bar.duration is not None else "")]
    if bar.critical:
        parts.append("critical step")
    if bar.on_critical_path:
        parts.append("on the critical path")
    if bar.execution_id:
        parts.append(f"execution {bar.execution_id}"
                     + (f", thread {bar.slot}" if bar.slot is not None else ""))
    if bar.parallel_group:
        parts.append(f"parallel group {bar.parallel_group}")
    if bar.phase is not None:
        parts.append(f"phase {bar.phase}")
    if bar.dependencies:
        parts.append("after " + ", ".join(bar.dependencies))
    if bar.parallel_execution:
        parts.append("ran beside other steps")
    if bar.message:
        parts.append(bar.message)
    return "\n".join(parts)


def render_html(data: TimelineData) -> str:
    """A self-contained HTML page (inline CSS and SVG; no script, nothing fetched)."""
    scale = CHART_W / data.duration if data.duration > 0 else 0.0

    def x(t: float) -> float:
        return round(LABEL_W + max(0.0, t) * scale, 2)

    rows = sum(TASK_H + ROW_H * len(t.bars) for t in data.tasks) + (ROW_H if data.markers else 0)
    height = TOP + rows + BOTTOM
    width = LABEL_W + CHART_W + INFO_W
    svg: list[str] = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
                      'role="img" aria-label="Gantt chart of the run">']
    step, ticks = _ticks(data.duration, 10)
    for tick in ticks:
        tx = x(tick)
        svg.append(f'<line class="grid" x1="{tx}" y1="{TOP - 6}" x2="{tx}" y2="{height - BOTTOM}"'
                   '/>')
        svg.append(f'<text class="axis" x="{tx}" y="{TOP - 12}" text-anchor="middle">'
                   f'{_e(_tick_label(tick, step))}</text>')
    svg.append(f'<text class="axis" x="8" y="{TOP - 12}">seconds since '
               f'{_e(_clock(data.origin_at))}</text>')
    for marker in data.markers:
        if marker.kind == "pause":
            end = marker.end if marker.end is not None else data.duration
            svg.append(f'<rect class="pause" x="{x(marker.at)}" y="{TOP}" '
                       f'width="{max(2.0, round((end - marker.at) * scale, 2))}" '
                       f'height="{rows}"><title>{_e(marker.label)}</title></rect>')
    y = TOP
    for task in data.tasks:
        svg.append(f'<line class="taskline" x1="0" y1="{y + 2}" x2="{width}" y2="{y + 2}"/>')
        svg.append(f'<text class="task" x="4" y="{y + 19}">Task {_e(task.ref)} '
                   f'{_e(_short(task.description, 90))}<title>{_e(task.status)}</title></text>')
        y += TASK_H
        for bar in task.bars:
            svg.append(_svg_bar(bar, y, x, scale, width))
            y += ROW_H
    if data.markers:
        mid = y + ROW_H // 2
        svg.append(f'<text class="task" x="4" y="{mid + 4}">run</text>')
        for marker in data.markers:
            svg.append(_svg_marker(marker, x(marker.at), mid, "run-mark"))
    svg.append("</svg>")
    return _page(data, "\n".join(svg))


def _svg_bar(bar: Bar, y: int, x: Callable[[float], float], scale: float,
             width: int) -> str:
    out: list[str] = [f'<g class="step{" crit" if bar.on_critical_path else ""}">']
    mid = y + ROW_H // 2
    if bar.on_critical_path:
        out.append(f'<rect class="crit-row" x="0" y="{y}" width="{width}" height="{ROW_H}">'
                   '<title>on the critical path</title></rect>')
    label = ("» " if bar.on_critical_path else "") + _short(f"{bar.ref} {bar.description}", 34)
    out.append(f'<text class="label" x="8" y="{mid + 4}">{_e(label)}'
               f'<title>{_e(_bar_title(bar))}</title></text>')
    if bar.start is not None:
        end = bar.end if bar.end is not None else bar.start
        out.append(f'<line class="span" x1="{x(bar.start)}" y1="{mid}" x2="{x(end)}" y2="{mid}">'
                   f'<title>{_e(_bar_title(bar))}</title></line>')
    for marker in bar.markers:
        if marker.kind == "gate" and marker.end is not None:
            out.append(f'<line class="gate-wait" x1="{x(marker.at)}" y1="{mid}" '
                       f'x2="{x(marker.end)}" y2="{mid}"/>')
    for s in bar.segments:
        end = s.end if s.end is not None else s.start
        kind = "backup" if s.backup else "primary"
        state = "running" if s.outcome == "running" else "failed" if s.failed else "ok"
        w = max(2.0, round((end - s.start) * scale, 2))
        out.append(f'<rect class="attempt {kind} {state}" x="{x(s.start)}" y="{mid - BAR_H // 2}"'
                   f' width="{w}" height="{BAR_H}" rx="2"><title>{_e(_segment_title(bar, s))}'
                   '</title></rect>')
        if s.failed:
            out.append(f'<text class="fail-mark" x="{round(x(s.start) + w + 1, 2)}" '
                       f'y="{mid - BAR_H // 2 - 1}">✗</text>')
    for marker in bar.markers:
        out.append(_svg_marker(marker, x(marker.at), mid, ""))
    info = _short(_info(bar), 20)
    failed = " failed" if bar.status == "failed" else ""
    out.append(f'<text class="info{failed}" x="{LABEL_W + CHART_W + 10}" y="{mid + 4}">'
               f'{_e(info)}</text>')
    out.append("</g>")
    return "".join(out)


def _svg_marker(marker: Marker, mx: float, mid: int, extra: str) -> str:
    title = f"<title>{_e(_clock(marker.ts) + ' ' + marker.label)}</title>"
    if marker.kind == "skipped":
        return f'<circle class="skip" cx="{mx}" cy="{mid}" r="5">{title}</circle>'
    if marker.kind == "gate":
        return (f'<path class="gate {extra}" d="M{mx} {mid - 6} L{mx + 6} {mid} L{mx} {mid + 6} '
                f'L{mx - 6} {mid} Z">{title}</path>')
    if marker.kind in ("backup", "retry", "reopened", "escalation"):
        return (f'<path class="backup-mark" d="M{mx} {mid + 6} L{mx + 4} {mid + 11} '
                f'L{mx - 4} {mid + 11} Z">{title}</path>')
    if marker.kind == "pause":
        return (f'<path class="run-mark" d="M{mx - 3} {mid - 6} h2 v12 h-2 Z M{mx + 1} {mid - 6} '
                f'h2 v12 h-2 Z">{title}</path>')
    return f'<circle class="{extra or "run-mark"}" cx="{mx}" cy="{mid}" r="4">{title}</circle>'


def _swatch(css: str, shape: str = "rect") -> str:
    body = (f'<rect class="{css}" x="1" y="1" width="24" height="10" rx="2"/>' if shape == "rect"
            else shape)
    return f'<svg width="26" height="12" viewBox="0 0 26 12">{body}</svg>'


def _page(data: TimelineData, chart: str) -> str:
    title = f"Timeline of {data.run_id or 'a run'}" + (f" ({data.descriptor})"
                                                      if data.descriptor else "")
    status = f"{data.status}" + (f", goal {data.goal}" if data.goal else "")
    s = data.summary
    rows = [
        ("execution", "parallel" if s.get("enabled") else "sequential"),
        ("limit / measured concurrency",
         f"{s.get('max_parallel')} / {s.get('max_concurrent_steps')} steps at once"),
        ("makespan", _seconds(s.get("makespan_s"))),
        ("sum of step times", _seconds(s.get("sum_of_step_durations_s"))),
        ("time saved by parallelism", _seconds(s.get("time_saved_s"))),
        ("synchronisation points", str(s.get("synchronisation_points", 0))),
        ("critical path (measured)", " → ".join(data.critical_path) or "-"),
        ("critical path (plan)", " → ".join(data.planned_critical_path) or "-"),
    ]
    table = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    legend = "".join(f"<span>{_swatch(css, shape)}{_e(text)}</span>" for css, shape, text in (
        ("primary ok", "rect", "primary attempt"),
        ("backup ok", "rect", "backup attempt"),
        ("primary failed", "rect", "failed attempt (✗)"),
        ("running", "rect", "running"),
        ("", '<line class="span" x1="1" y1="6" x2="25" y2="6"/>', "step span (waiting)"),
        ("", '<circle class="skip" cx="13" cy="6" r="4.5"/>', "skipped"),
        ("", '<path class="gate" d="M13 0 L19 6 L13 12 L7 6 Z"/>', "gate"),
        ("", '<path class="backup-mark" d="M13 3 L17 10 L9 10 Z"/>',
         "backup takes over / retry"),
        ("crit-row", "rect", "critical path (»)"),
        ("pause", "rect", "run paused"),
    ))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<svg width="0" height="0" style="position: absolute" aria-hidden="true">{DEFS}</svg>
<h1>{_e(title)}</h1>
<p class="meta">{_e(status)}; opened {_e(data.started_at or "?")}, ended \
{_e(data.ended_at or "(not yet)")}</p>
<p class="meta">{"<br>".join(_e(f) for f in _facts(data))}</p>
<table class="summary">{table}</table>
<div class="legend">{legend}</div>
{chart}
</body>
</html>
"""
