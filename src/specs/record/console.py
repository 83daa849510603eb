"""The human view of a running spec: event subscribers that draw the run on a console.

Every view is a subscriber ``view(event, state)`` called by the engine after it has applied
``event`` to the :class:`~specs.engine.state.RunState`; each also has ``start()``/``stop()``.

* :class:`LiveView` - a Rich ``Live`` display for terminals: goal and run id, a progress bar
  (steps finished / total, elapsed time), each task with its status (finished tasks collapse to
  one line with counts) and, under the running task, each step with a glyph (``·`` pending, a
  spinner or ``▶`` running, ``✓`` completed, ``✗`` failed, ``↷`` skipped), its critical marker,
  attempt and method, elapsed time and the last failure reason while it retries. Open gates,
  escalations and mode switches get a highlighted line. The frame is drawn by Live's own refresh
  thread (at most ``refresh_per_second`` times a second) from the state at that moment, so an
  event costs a set lookup and a few assignments (about a microsecond); it never renders. What
  ``__call__`` keeps for the frame is replaced, never mutated, so the refresh thread reads it
  safely. ``pause()``/``resume()`` let a terminal prompt be written below the frame.
* :class:`PlainView` - for a stderr that is not a terminal: one plain line per meaningful event
  (``[12:00:01] step 1.2 backup_1 triggered``), no colours, no cursor movement; the time is the
  event's own ``ts`` (UTC).
* :class:`JsonLinesView` - each event as one flushed JSON line (``specs run --json``).

:func:`make_view` picks the views for a console.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol, TextIO

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.text import Text

from specs import events as ev
from specs.engine.state import STEP_FINAL, RunState, StepState, TaskState
from specs.record.analysis import goal_status

__all__ = ["JsonLinesView", "LiveView", "PlainView", "View", "make_view"]

MARKS = {"pending": ("·", "dim"), "started": ("▶", "cyan"), "in_progress": ("▶", "cyan"),
         "completed": ("✓", "green"), "failed": ("✗", "red"), "skipped": ("↷", "yellow")}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
APPROVABLE = ("before_step", "education", "human_step")
Row = tuple[Text, Text, Text, Text]
BAR = 40  # progress bar width
WATCHED = frozenset({"attempt-started", "step-started", "step-reopened", "step-ended",
                     "retry-scheduled", "task-started", "task-ended", "gate-requested",
                     "gate-closed", "escalated", "mode-switched", "run-opened", "run-ended",
                     "research-ended"})


class View(Protocol):
    """An event subscriber with a lifetime."""

    def __call__(self, event: ev.Event, state: RunState) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


# -- wording shared by the views -------------------------------------------------------------


def one_line(text: str) -> str:
    """Whitespace (newlines too) collapsed: multi-line reasons stay on one line."""
    return " ".join(text.split())


def tail(text: str | None, before: str = ": ", after: str = "") -> str:
    """``before + text + after``, or nothing when ``text`` is empty."""
    return f"{before}{text}{after}" if text else ""


def gate_text(kind: str, step: str | None, run_id: str, options: list[str]) -> str:
    """``gate before step 2.1: awaiting a human decision (specs approve RUN 2.1)``."""
    at = tail(step, " at step ")
    label = {"before_step": f"gate before step {step}",
             "education": f"education gate before step {step}",
             "critical_failure": f"gate after critical step {step} failed",
             "human_step": f"human step {step}",
             "escalation": f"escalation gate{at}"}.get(kind, f"{kind} gate{at}")
    if kind in APPROVABLE and step:
        how = f" (specs approve {run_id or 'RUN'} {step})"
    else:
        how = f" (options: {', '.join(options)})" if options else ""
    return f"{label}: awaiting a human decision{how}"


def escalation_text(e: ev.Escalated) -> str:
    return (f"escalated{tail(e.step, ' at step ')}: "
            f"{', '.join(e.reasons) or 'human decision needed'}{tail(e.recommendation, ' (', ')')}")


def mode_text(e: ev.ModeSwitched) -> str:
    return f"mode switched: {e.from_mode} -> {e.to_mode}{tail(e.reason, ' (', ')')}"


def end_text(e: ev.RunEnded, goal: str | None = None) -> str:
    """``run ended: halted at step 1.2, goal NOT_ACHIEVED: <reason>``; ``goal`` (the run's
    goal status, :func:`~specs.record.analysis.goal_status`) when the event has none."""
    return (f"run ended: {e.status}{tail(e.step, ' at step ')}"
            f"{tail(e.goal_achievement_status or goal, ', goal ')}{tail(e.reason)}")


def how_completed(step: StepState) -> str:
    """`` via backup_1 (2 retries)``; empty for a first-try primary success."""
    via = f" via {step.method_used}" if step.method_used not in (None, "primary") else ""
    n = step.retry_count
    return via + (f" ({n} {'retry' if n == 1 else 'retries'})" if n else "")


def counts_text(state: RunState, task: TaskState) -> str:
    counts = Counter(state.steps[ref].status for ref in task.steps)
    return ", ".join(f"{counts[s]} {s}" for s in (*STEP_FINAL, "pending") if counts[s])


# -- plain lines -------------------------------------------------------------------------------


class PlainView:
    """One uncoloured line per meaningful event, stamped with the event's time (HH:MM:SS)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def __call__(self, event: ev.Event, state: RunState) -> None:
        line = self.line(event, state)
        if line is not None:
            stamp = event.ts[11:19] or "--:--:--"
            self.console.out(f"[{stamp}] {one_line(line)}", highlight=False)

    def line(self, e: ev.Event, state: RunState) -> str | None:
        """The text for one event (without the time), or None to stay quiet."""
        if isinstance(e, ev.RunOpened):
            return f"run {e.run_id} opened: {e.descriptor}"
        if isinstance(e, ev.RunResumed):
            return f"run {state.run_id} resumed ({len(e.interrupted)} interrupted attempts)"
        if isinstance(e, ev.ValidationSummary):
            # (the errors themselves are printed once, after the run, by `specs run`)
            return f"validation {e.status} ({len(e.errors)} errors, {len(e.warnings)} warnings)"
        if isinstance(e, ev.ModeSelected):
            return f"mode {e.mode} (selected by {e.selected_by}, strategy {e.strategy})"
        if isinstance(e, ev.ExecutionPlanned):
            if not e.parallel:
                return f"sequential run ({e.reason})"
            return (f"parallel run, up to {e.max_parallel} steps at once ({e.reason}); "
                    f"{e.phases} phases, critical path {len(e.critical_path)} steps")
        if isinstance(e, ev.TransitionTaken):
            return f"loop: after task {e.from_task}, back to task {e.to_task} " \
                   f"(iteration {e.iteration})"
        if isinstance(e, ev.TransitionLimit):
            return f"warning: the loop from task {e.from_task} to task {e.to_task} reached " \
                   f"max_iterations = {e.max_iterations}; going on"
        if isinstance(e, ev.TaskStarted):
            return f"task {e.task} started: {e.description or state.tasks[e.task].description}"
        if isinstance(e, ev.TaskEnded):
            return f"task {e.task} {e.status}: {counts_text(state, state.tasks[e.task])}"
        if isinstance(e, ev.StepStarted):
            return f"step {e.step} started: {state.steps[e.step].description}"
        if isinstance(e, ev.AttemptStarted):
            guided = tail(e.guidance, " with guidance: ")
            return f"step {e.step} attempt {e.attempt} ({e.method}) started{guided}" \
                if e.attempt > 1 else None
        if isinstance(e, ev.AttemptEnded):
            if e.outcome == "success":
                return None
            word = "errored" if e.outcome == "error" else "failed"
            return f"step {e.step} attempt {e.attempt} ({e.method}) {word}: " \
                + (e.failure_reason or e.output_summary or f"output {e.verdict}")
        if isinstance(e, ev.RetryScheduled):
            return f"step {e.step} {e.method} retry in {e.delay_s:.1f}s{tail(e.reason)}"
        if isinstance(e, ev.BackupTriggered):
            return f"step {e.step} backup_{e.backup} triggered"
        if isinstance(e, ev.StepEnded):
            step = state.steps[e.step]
            if e.status == "completed":
                miss = ", output did not match" if e.expected_output_match is False else ""
                return f"step {e.step} completed{how_completed(step)}{miss}"
            return f"step {e.step} {e.status}" + tail(
                e.skip_reason if e.status == "skipped" else e.message)
        if isinstance(e, ev.StepReopened):
            return f"step {e.step} reopened{tail(e.reason)}"
        if isinstance(e, ev.FailureResolved):
            return f"step {e.step} failure resolved: {e.how}"
        if isinstance(e, ev.Escalated):
            return escalation_text(e)
        if isinstance(e, ev.GateRequested):
            return gate_text(e.kind, e.step, state.run_id, e.options)
        if isinstance(e, ev.GateAnswered):
            gate = state.gates.get(e.gate)
            what = f"gate at step {gate.step}" if gate is not None and gate.step else "gate"
            return f"{what} answered: {e.response} (by {e.by})"
        if isinstance(e, ev.ModeSwitched):
            return mode_text(e)
        if isinstance(e, ev.CompletionVerified):
            return f"completion {e.overall_status}, goal {e.goal_achievement_status}" \
                + tail("; ".join(e.gaps), "; gaps: ")
        if isinstance(e, ev.RunPaused):
            return f"run paused: {e.reason} (specs resume {state.run_id})"
        if isinstance(e, ev.RunEnded):
            return end_text(e, goal_status(state))
        if isinstance(e, ev.CheckEnded):
            return f"step {e.step} attempt {e.attempt} ({e.method}) LLM judge: {e.verdict}" \
                + tail(e.reason)
        if isinstance(e, ev.ResearchStarted):
            return f"task {e.task} research started ({', '.join(e.sources)})"
        if isinstance(e, ev.ResearchEnded):
            if e.status != "done":
                return f"warning: {e.warning}"
            return f"task {e.task} research done: {len(e.key_findings)} findings, " \
                   f"confidence {e.confidence}"
        if isinstance(e, ev.McpToolsVerified):
            tools = e.record.get("available_tools") or {}
            running = ", ".join(f"{name} ({len(found)} tools)" for name, found in tools.items())
            return f"MCP check {e.record.get('verification_status', '?')}" \
                + tail(running, ": ") \
                + tail(f"{len(e.warnings)} warning{'s' * (len(e.warnings) > 1)}"
                       if e.warnings else "", "; ")
        if isinstance(e, ev.ToolCalled) and not e.ok:
            return f"step {e.step} tool {e.tool} failed: {e.error or 'error'}"
        if isinstance(e, ev.RunWarning):
            return f"warning: {e.message}"
        return None


# -- JSON lines --------------------------------------------------------------------------------


class JsonLinesView:
    """Each event as one JSON line on ``stream``, flushed at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.stream.flush()

    def __call__(self, event: ev.Event, state: RunState) -> None:
        self.stream.write(json.dumps(event.to_dict(), default=str) + "\n")
        self.stream.flush()


# -- live display ------------------------------------------------------------------------------


def duration(seconds: float, short: bool = False) -> str:
    """``0:01:05``, or with ``short`` ``3.2s`` / ``1m05s`` (an hour or more: ``1:00:00``)."""
    whole = int(seconds)
    if short and whole < 60:
        return f"{seconds:.1f}s"
    if short and whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class LiveView:
    """A Rich ``Live`` display of the run on ``console`` (stderr by default).

    ``__call__`` only notes the times of starts and ends (with ``get_time``), open gates and
    notices; the frame is built by ``__rich_console__`` when Live's refresh thread draws it.
    ``redirect_stdout`` stays off so that stdout (``--json``, a pipe) is never sent to stderr.
    """

    def __init__(self, console: Console | None = None, *, goal: str = "",
                 get_time: Callable[[], float] = time.monotonic,
                 refresh_per_second: float = 8.0, spinner: bool = True,
                 redirect_stdout: bool = False) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.goal, self.get_time, self.spinner = goal, get_time, spinner
        self.state: RunState | None = None
        self._t0 = get_time()
        self._t_end: float | None = None
        self._began: dict[str, float] = {}  # step ref or "task:<ref>" -> time
        self._ended: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        # open gates; the last three escalations and mode switches (replaced, never mutated:
        # the refresh thread reads them)
        self._gates: dict[str, ev.GateRequested] = {}
        self._notices: tuple[ev.Escalated | ev.ModeSwitched | ev.ResearchEnded, ...] = ()
        self._refresh, self._redirect_stdout = refresh_per_second, redirect_stdout
        self._live = Live(console=self.console)
        self._paused = False

    def start(self) -> None:
        if not self._live.is_started:  # a fresh Live: a restarted one would draw over the text
            self._live = Live(self, console=self.console, refresh_per_second=self._refresh,
                              redirect_stdout=self._redirect_stdout)  # printed since it stopped
            self._live.start(refresh=True)

    def stop(self) -> None:
        """Stop refreshing and leave the final frame on screen (idempotent)."""
        self._paused = False
        self._live.stop()

    def pause(self) -> None:
        """Stop refreshing, the frame staying, so that a prompt can be written below it
        (``TerminalHuman(before_prompt=view)`` calls this and :meth:`resume`)."""
        if self._live.is_started:
            self._live.stop()
            self._paused = True

    def resume(self) -> None:
        """Start a new display below whatever was written while paused."""
        if self._paused:
            self._paused = False
            self.start()

    def __call__(self, event: ev.Event, state: RunState) -> None:
        """Note the time of starts and ends and the notice lines; never render here."""
        self.state = state
        if event.name not in WATCHED:
            return
        now = self.get_time()
        match event:
            case ev.AttemptStarted(step=ref):
                self._retry_at.pop(ref, None)
            case ev.StepStarted(step=ref) | ev.StepReopened(step=ref):
                self._began[ref] = now
                self._ended.pop(ref, None)
                self._ended.pop("task:" + state.steps[ref].task, None)  # reopened: open again
            case ev.StepEnded(step=ref):
                self._ended[ref] = now
                self._retry_at.pop(ref, None)
            case ev.RetryScheduled(step=ref, delay_s=delay):
                self._retry_at[ref] = now + delay
            case ev.TaskStarted(task=ref):
                self._began["task:" + ref] = now
            case ev.TaskEnded(task=ref):
                self._ended["task:" + ref] = now
            case ev.GateRequested(gate=gate):
                self._gates = {**self._gates, gate: event}
            case ev.GateClosed(gate=gate):
                self._gates = {k: v for k, v in self._gates.items() if k != gate}
            case ev.Escalated() | ev.ModeSwitched():
                self._notices = (*self._notices[-2:], event)
            case ev.ResearchEnded(warning=warning) if warning:
                self._notices = (*self._notices[-2:], event)
            case ev.RunOpened():
                self._t0, self._t_end = now, None
            case ev.RunEnded():
                self._t_end = now

    def renderable(self) -> Group:
        """The current frame (what Live draws), e.g. for ``console.print``."""
        return Group(self)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        state = self.state
        if state is None:
            yield Text("waiting for the run to start…", "dim")
            return
        now = self.get_time()
        title = Text(state.descriptor or "spec", "bold")
        title.append(f" · run {state.run_id or '-'} · {state.mode} · {state.status}", "dim")
        head = [title, self._progress(state, (now if self._t_end is None else self._t_end)
                                      - self._t0)]
        if self.goal:
            head.insert(1, Text("Goal: " + self.goal, overflow="ellipsis", no_wrap=True))
        foot = [Text("⏸ " + gate_text(g.kind, g.step, state.run_id, g.options)
                     + tail(next(iter(g.prompt.splitlines()), ""), "\n  "),
                     "bold black on yellow")
                for g in list(self._gates.values())]
        if state.paused is not None and not foot:
            foot.append(Text(f"⏸ paused: {state.paused.reason} (specs resume {state.run_id})",
                             "bold yellow"))
        for notice in self._notices:
            if isinstance(notice, ev.Escalated):
                foot.append(Text("⚠ " + escalation_text(notice), "bold magenta"))
            elif isinstance(notice, ev.ResearchEnded):
                foot.append(Text("⚠ " + notice.warning, "yellow"))
            else:
                foot.append(Text("↻ " + mode_text(notice), "bold blue"))
        if state.end is not None:
            good = state.end.status == "completed"
            foot.append(Text(end_text(state.end, goal_status(state)),
                             "bold green" if good else "bold red"))
        room = options.size.height - 1 - len(head) - sum(len(t.plain.split("\n")) for t in foot)
        yield from head
        yield from columns(self._task_rows(state, now, max(4, room)), options.max_width)
        yield from foot

    def _progress(self, state: RunState, elapsed: float) -> Text:
        total = len(state.steps)
        done = sum(s.status in STEP_FINAL for s in state.steps.values())
        failed = sum(s.status == "failed" for s in state.steps.values())
        filled = round(BAR * done / total) if total else BAR
        line = Text.assemble(("━" * filled, "magenta"), ("━" * (BAR - filled), "grey23"))
        line.append(f" {done}/{total} steps" + tail(f"{failed} failed" if failed else "", " (", ")")
                    + f" · {duration(elapsed)}")
        return line

    def _glyph(self, status: str, now: float) -> Text:
        if status in ("started", "in_progress") and self.spinner:
            return Text(SPINNER[int(now * 12.5) % len(SPINNER)], "cyan")
        return Text(*MARKS.get(status, ("•", "")))

    def _elapsed(self, key: str, now: float) -> Text:
        began = self._began.get(key)
        return Text("") if began is None else \
            Text(duration(self._ended.get(key, now) - began, short=True), "dim")

    def _task_rows(self, state: RunState, now: float, room: int) -> list[Row]:
        done: list[Row] = []
        current: list[Row] = []
        upcoming: list[Row] = []
        for task in list(state.tasks.values()):
            key = "task:" + task.ref
            head = (self._glyph(task.status, now) + Text(f" Task {task.ref}", "bold"),
                    Text(one_line(task.description)))
            if task.status == "pending":
                upcoming.append((*head, Text(f"{len(task.steps)} steps", "dim"), Text("")))
            elif task.status == "in_progress":
                current.append((*head, Text(""), self._elapsed(key, now)))
                current.extend(self._step_rows(state, task, now, room - 3))
            else:
                counts = Text(f"{task.status} · {counts_text(state, task)}", "dim")
                done.append((*head, counts, self._elapsed(key, now)))
        return trim(done, current, upcoming, room, "tasks")

    def _step_rows(self, state: RunState, task: TaskState, now: float, room: int) -> list[Row]:
        steps = [state.steps[ref] for ref in task.steps]
        first = next((i for i, s in enumerate(steps) if s.status not in STEP_FINAL), len(steps))
        last = max((i for i, s in enumerate(steps) if s.status != "pending"), default=-1)
        rows = [self._step_row(s, now) for s in steps]
        done = [r[0] for r in rows[:first]]
        current = [line for r in rows[first:max(first, last + 1)] for line in r]
        upcoming = [r[0] for r in rows[max(first, last + 1):]]
        return trim(done, current, upcoming, room, "steps", indent="  ")

    def _step_row(self, step: StepState, now: float) -> list[Row]:
        detail = Text()
        if step.critical:
            detail.append("critical ", "red")
        reason = None
        if step.status == "started":
            attempts = step.round_attempts()
            if attempts:
                detail.append(f"attempt {attempts[-1].attempt} · {attempts[-1].method}")
                failed = [a for a in attempts if a.ended_at and a.outcome != "success"]
                reason = failed[-1].failure_reason if failed else None
            retry_at = self._retry_at.get(step.ref)
            if retry_at is not None:
                detail.append(f" · retry in {max(0.0, retry_at - now):.0f}s", "yellow")
        elif step.status == "completed":
            detail.append(how_completed(step).strip(), "dim")
        elif step.status == "failed":
            detail.append(f"failed after {len(step.round_attempts())} attempts", "red")
        elif step.status == "skipped" and step.skip_reason:
            detail.append(one_line(step.skip_reason), "dim")
        row: Row = (Text("  ") + self._glyph(step.status, now) + " " + step.ref,
                    Text(one_line(step.description)), detail, self._elapsed(step.ref, now))
        if reason:
            return [row, (Text(""), Text("↳ " + one_line(reason), "dim"), Text(""), Text(""))]
        return [row]


def trim(done: list[Row], current: list[Row], upcoming: list[Row], room: int, noun: str,
         indent: str = "") -> list[Row]:
    """Keep ``current`` and as many neighbours as fit in ``room`` rows, summarising the rest."""
    if len(done) + len(current) + len(upcoming) <= room:
        return done + current + upcoming
    spare = max(0, room - len(current) - 2)
    keep_up = min(len(upcoming), spare // 2)
    keep_done = min(len(done), spare - keep_up)
    keep_up = min(len(upcoming), spare - keep_done)

    def summary(count: int, where: str) -> list[Row]:
        line = (Text(indent + "…", "dim"), Text(f"{count} {where} {noun}", "dim"), Text(""))
        return [(*line, Text(""))] if count else []

    return (summary(len(done) - keep_done, "earlier")
            + (done[len(done) - keep_done:] if keep_done else []) + current
            + upcoming[:keep_up] + summary(len(upcoming) - keep_up, "more"))


def columns(rows: list[Row], width: int) -> list[Text]:
    """Lay rows out as lines of four columns; the second (descriptions) takes what is left."""
    widths = [max((row[i].cell_len for row in rows), default=0) for i in range(4)]
    widths[2], widths[3] = max(widths[2], 30), max(widths[3], 6)  # steady from frame to frame
    widths[1] = max(8, width - widths[0] - widths[2] - widths[3] - 3)
    lines = []
    for row in rows:
        row[0].align("left", widths[0])
        row[1].truncate(widths[1], overflow="ellipsis", pad=True)
        row[2].align("left", widths[2])
        row[3].align("right", widths[3])
        lines.append(Text(" ", no_wrap=True, overflow="ellipsis").join(row))
    return lines


def make_view(console: Console, *, json_stream: TextIO | None = None, live: bool | None = None,
              goal: str = "", get_time: Callable[[], float] = time.monotonic,
              refresh_per_second: float = 8.0) -> list[View]:
    """The views for ``console``: live on a terminal (unless ``live`` is False), else plain;
    plus JSON lines on ``json_stream`` when given."""
    views: list[View] = []
    if console.is_terminal and live is not False:
        views.append(LiveView(console, goal=goal, get_time=get_time,
                              refresh_per_second=refresh_per_second))
    else:
        views.append(PlainView(console))
    if json_stream is not None:
        views.append(JsonLinesView(json_stream))
    return views
