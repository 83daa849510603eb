"""Run state: the projection of a run's events that the engine decides from.

:class:`RunState` starts from the plan (every task and step, pending) and is changed only by
:meth:`RunState.apply` with one event at a time. The live engine applies each event as it
emits it; ``specs resume`` applies the events of ``events.jsonl`` and continues. Because the
engine reads its decisions' inputs (statuses, attempts, counters, gates) from here and nowhere
else, a resumed run decides exactly as an uninterrupted one would.

Counters (reference §3.8): ``consecutive_failures`` (+1 per finally failed step, 0 on a
completed step and at task start) and ``task_failures`` (failed steps in the current task);
``resolved`` keeps the order in which steps reached a final status, for the escalation window.
A reopened step (a human's retry, a resume after a halt) is not finally failed any more: its
failure is taken back out of the counters and the window, and its task is open again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specs import events as ev
from specs.spec.model import Spec

__all__ = ["RUN_ENDED", "RUN_FINAL", "STEP_FINAL", "TASK_FINAL", "AttemptRecord",
           "GateState", "RunState", "StepState", "TaskState"]

# The status sets, each defined here once (docs/glossary.md: "final status").
#: a step's final statuses: it will not run again unless reopened (a human's retry, a resume
#: after a halt)
STEP_FINAL = ("completed", "failed", "skipped")
#: a task's final statuses
TASK_FINAL = ("completed", "completed_with_failures", "failed", "skipped")
#: a run's final statuses: it stopped. ``halted`` can be resumed; the others have ended
RUN_FINAL = ("completed", "failed", "halted", "halted_validation", "aborted")
#: the final statuses of a run that has ended for good: nothing left to resume
RUN_ENDED = ("completed", "failed", "aborted", "halted_validation")


@dataclass(slots=True)
class AttemptRecord:
    method: str
    attempt: int
    round: int
    started_at: str
    ended_at: str | None = None
    outcome: str | None = None
    verdict: str = "unchecked"
    failure_reason: str | None = None
    transient: bool = False
    permanent: bool = False  # no retry of this method can mend it: the ladder moves on
    duration_ms: float = 0.0
    exit_code: int | None = None
    output_summary: str = ""
    guidance: str | None = None
    escalate: str | None = None
    usage: dict[str, int] | None = None
    cost_usd: float | None = None
    cached: bool = False
    judge: dict[str, Any] | None = None  # the LLM judge's check-ended, as a dict


@dataclass(slots=True)
class StepState:
    """What is known about one step; ``round`` counts ladder runs (a human retry adds one)."""

    ref: str
    task: str
    id: int
    critical: bool
    description: str = ""
    status: str = "pending"
    mode: str | None = None
    round: int = 0
    attempts: list[AttemptRecord] = field(default_factory=list)
    method_used: str | None = None
    expected_output_match: bool | None = None
    message: str = ""
    skip_reason: str | None = None
    resolved: bool = False
    started_at: str | None = None
    ended_at: str | None = None
    backups_triggered: list[int] = field(default_factory=list)
    justification: dict[str, Any] = field(default_factory=dict)
    prior_step_dependencies: list[str] = field(default_factory=list)
    error_propagation_decision: str = "none"
    output: Any = None
    output_summary: str = ""
    start_method: str | None = None
    guidance: str | None = None
    retries_scheduled: int = 0
    consecutive_failure_count: int = 0
    launch: dict[str, Any] = field(default_factory=dict)
    llm_usage: dict[str, Any] | None = None  # totals of the step's LLM calls (usage_totals)

    def round_attempts(self) -> list[AttemptRecord]:
        """The attempts of the current round (a copy; every attempt before any reopen)."""
        if not self.round:
            return self.attempts[:]  # rounds only grow: round 0 holds every attempt
        return [a for a in self.attempts if a.round == self.round]

    @property
    def open_attempt(self) -> AttemptRecord | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.ended_at is None else None

    @property
    def retry_count(self) -> int:
        if len(self.attempts) < 2:
            return 0
        primary = [a for a in self.round_attempts() if a.method == "primary" and a.ended_at]
        return max(0, len(primary) - 1)

    @property
    def needed_backup(self) -> bool:
        return bool(self.backups_triggered)


@dataclass(slots=True)
class TaskState:
    ref: str
    description: str
    steps: list[str]
    status: str = "pending"
    started_at: str | None = None
    completed_at: str | None = None


@dataclass(slots=True)
class GateState:
    id: str
    kind: str
    step: str | None
    prompt: str
    options: list[str]
    requested_at: str
    response: str | None = None
    by: str | None = None
    guidance: str | None = None
    answered_at: str | None = None
    closed: bool = False


class RunState:
    """The state of one run, rebuilt by applying its events in order."""

    def __init__(self, spec: Spec) -> None:
        self.run_id = ""
        self.descriptor = ""
        self.opened: ev.RunOpened | None = None
        self.status = "initializing"
        self.run_mode = "dynamic"  # M, the run mode (reference R-MODE-1)
        self.mode = "dynamic"  # the mode in force (differs from M after a switch)
        self.selected_by = "default"
        self.mode_selected_at: str | None = None
        self.strategy = "collaborative_review"
        self.started_at: str | None = None
        self.ended_at: str | None = None
        self.end: ev.RunEnded | None = None
        self.validation: ev.ValidationSummary | None = None
        self.completion: ev.CompletionVerified | None = None
        self.mcp_verification: ev.McpToolsVerified | None = None
        self.tasks: dict[str, TaskState] = {}
        self.steps: dict[str, StepState] = {}
        for task in spec.tasks:
            refs = []
            for step in task.steps:
                ref = f"{task.ref}.{step.id}"
                refs.append(ref)
                self.steps[ref] = StepState(ref, task.ref, step.id, step.critical_flag,
                                            step.description)
            self.tasks[task.ref] = TaskState(task.ref, task.description, refs)
        self.current_task: str | None = None
        self.current_step: str | None = None
        self.consecutive_failures = 0
        self.task_failures = 0
        self.resolved: list[str] = []
        self.last_ended: str | None = None  # the last step that completed or failed
        self.unresolved: dict[str, None] = {}  # critical failures, in order; may hold stale refs
        self.exhausted_streak = 0
        self.gates: dict[str, GateState] = {}
        self.escalations: list[ev.Escalated] = []
        self.mode_switches: list[dict[str, Any]] = []
        self.notes: list[ev.NotepadUpdated] = []
        self.resumes: list[dict[str, Any]] = []
        self.transitions: list[ev.TransitionTaken] = []
        self.transition_limits: list[ev.TransitionLimit] = []
        self.paused: ev.RunPaused | None = None
        self.planned: ev.ExecutionPlanned | None = None
        self.running: set[str] = set()
        self.max_running = 0
        self.events = 0
        self.last_event_at: str | None = None
        self.llm_usage = usage_totals()  # the run's LLM calls: tokens and cost
        self.research: dict[str, ev.ResearchEnded] = {}  # by task ref: the research phase
        self.research_started: dict[str, str] = {}  # by task ref: when it began

    # -- queries -----------------------------------------------------------------------------

    def open_gates(self) -> list[GateState]:
        return [g for g in self.gates.values() if not g.closed]

    def unresolved_critical_failures(self, refs: list[str] | None = None) -> list[str]:
        """Critical steps finally failed and not resolved by a human (all, or among ``refs``)."""
        if refs is None:
            return [r for r in self.unresolved if self.steps[r].status == "failed"
                    and not self.steps[r].resolved]
        return [r for r in refs if (s := self.steps.get(r)) is not None and s.critical
                and s.status == "failed" and not s.resolved]

    # -- apply -------------------------------------------------------------------------------

    def apply(self, event: ev.Event) -> None:
        self.events += 1
        self.last_event_at = event.ts
        handler = _HANDLERS.get(event.name)
        if handler is not None:
            handler(self, event)


def usage_totals() -> dict[str, Any]:
    """Empty LLM totals: calls, tokens in and out, cost (of the calls whose price is known),
    calls of unknown price, attempts answered from the cache."""
    return {"calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
            "cost_usd": 0.0, "unpriced_calls": 0, "cached_attempts": 0}


def add_call(totals: dict[str, Any], e: ev.LlmCall) -> None:
    add_usage(totals, e.usage, e.cost_usd, 1)


def add_usage(totals: dict[str, Any], usage: dict[str, int], cost_usd: float | None,
              calls: int) -> None:
    inp, out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    totals["calls"] += calls
    totals["input_tokens"] += inp
    totals["output_tokens"] += out
    totals["total_tokens"] += inp + out
    if cost_usd is None:
        totals["unpriced_calls"] += calls
    else:
        totals["cost_usd"] += cost_usd


def sum_totals(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several totals added up (a task's steps)."""
    out = usage_totals()
    for part in parts:
        for key in out:
            out[key] += part.get(key, 0)
    return out


# -- how each event changes the state ------------------------------------------------------


def _run_opened(state: RunState, e: ev.RunOpened) -> None:
    state.opened = e
    state.run_id, state.descriptor = e.run_id, e.descriptor
    state.started_at = e.ts
    state.status = "initializing"


def _run_resumed(state: RunState, e: ev.RunResumed) -> None:
    state.status = "resumed"
    state.paused = None
    state.resumes.append({"at": e.ts, "interrupted_attempts": e.interrupted})
    for step in state.steps.values():
        attempt = step.open_attempt
        if attempt is not None:
            step.attempts.remove(attempt)


def _validation(state: RunState, e: ev.ValidationSummary) -> None:
    state.validation = e
    if e.status != "FAIL":
        state.status = "ready_for_execution"


def _mode_selected(state: RunState, e: ev.ModeSelected) -> None:
    state.run_mode = state.mode = e.mode
    state.selected_by, state.strategy = e.selected_by, e.strategy
    state.mode_selected_at = e.ts


def _planned(state: RunState, e: ev.ExecutionPlanned) -> None:
    state.planned = e


def _task_started(state: RunState, e: ev.TaskStarted) -> None:
    task = state.tasks[e.task]
    task.status, task.started_at = "in_progress", task.started_at or e.ts
    state.current_task, state.status = e.task, "running"
    state.consecutive_failures = state.task_failures = 0


def _task_ended(state: RunState, e: ev.TaskEnded) -> None:
    task = state.tasks[e.task]
    task.status, task.completed_at = e.status, e.ts


def _step_started(state: RunState, e: ev.StepStarted) -> None:
    step = state.steps[e.step]
    step.status, step.mode = "started", e.mode
    step.started_at = step.started_at or e.ts
    step.round = max(step.round, 1)
    step.prior_step_dependencies = e.prior_step_dependencies
    step.error_propagation_decision = e.error_propagation_decision
    step.launch = {"execution_id": e.execution_id, "parallel_group": e.parallel_group,
                   "slot": e.slot, "dependencies_satisfied": e.dependencies_satisfied}
    state.running.add(e.step)
    state.max_running = max(state.max_running, len(state.running))
    state.current_step, state.status = e.step, "running"


def _attempt_started(state: RunState, e: ev.AttemptStarted) -> None:
    step = state.steps[e.step]
    step.attempts.append(AttemptRecord(e.method, e.attempt, step.round, e.ts,
                                       guidance=e.guidance))


def _attempt_ended(state: RunState, e: ev.AttemptEnded) -> None:
    step = state.steps[e.step]
    record = step.open_attempt
    if record is None:
        return
    record.ended_at, record.outcome, record.verdict = e.ts, e.outcome, e.verdict
    record.failure_reason, record.transient = e.failure_reason, e.transient
    record.permanent = e.permanent
    record.duration_ms, record.exit_code = e.duration_ms, e.exit_code
    record.output_summary, record.escalate = e.output_summary, e.escalate
    if e.usage is not None or e.cached:
        record.usage, record.cost_usd, record.cached = e.usage, e.cost_usd, e.cached
        if e.cached:
            state.llm_usage["cached_attempts"] += 1
            if step.llm_usage is None:
                step.llm_usage = usage_totals()
            step.llm_usage["cached_attempts"] += 1
    if e.outcome == "success":
        step.output, step.output_summary = e.output, e.output_summary


def _retry(state: RunState, e: ev.RetryScheduled) -> None:
    state.steps[e.step].retries_scheduled += 1


def _backup(state: RunState, e: ev.BackupTriggered) -> None:
    step = state.steps[e.step]
    if e.backup not in step.backups_triggered:
        step.backups_triggered.append(e.backup)
    step.justification.update({
        "trigger": e.trigger, "backup_justification": e.justification,
        f"backup_{e.backup}_justification": e.justification,
        **{f"{k}_failure_reason": v for k, v in e.failure_reasons.items()}})


def _step_ended(state: RunState, e: ev.StepEnded) -> None:
    step = state.steps[e.step]
    state.running.discard(e.step)
    step.status, step.ended_at = e.status, e.ts
    step.method_used, step.expected_output_match = e.method_used, e.expected_output_match
    step.message, step.skip_reason = e.message, e.skip_reason
    step.resolved = bool(e.resolved)
    if e.status == "completed":
        state.consecutive_failures = 0
        state.exhausted_streak = 0
    elif e.status == "failed":
        if step.critical and not step.resolved:
            state.unresolved[e.step] = None
        state.consecutive_failures += 1
        state.task_failures += 1
        state.exhausted_streak = state.exhausted_streak + 1 if step.backups_triggered else 0
    if e.status in ("completed", "failed"):
        state.resolved.append(e.step)
        state.last_ended = e.step
    step.consecutive_failure_count = state.consecutive_failures
    state.current_step = None


def _step_reopened(state: RunState, e: ev.StepReopened) -> None:
    step = state.steps[e.step]
    if step.status == "failed":
        state.task_failures = max(0, state.task_failures - 1)
        if state.last_ended == e.step:  # the streaks counted it (unless an escalation reset)
            state.consecutive_failures = max(0, state.consecutive_failures - 1)
            if step.backups_triggered:
                state.exhausted_streak = max(0, state.exhausted_streak - 1)
        if e.step in state.resolved:
            state.resolved.remove(e.step)
    state.tasks[step.task].status = "in_progress"
    step.status, step.round = "started", step.round + 1
    step.method_used, step.resolved, step.ended_at = None, False, None
    step.backups_triggered, step.justification = [], {}
    step.start_method = e.start_method
    state.current_step = e.step


def _failure_resolved(state: RunState, e: ev.FailureResolved) -> None:
    state.steps[e.step].resolved = True


def _escalated(state: RunState, e: ev.Escalated) -> None:
    state.escalations.append(e)
    for counter in e.reset:
        if counter == "consecutive_failures":
            state.consecutive_failures = 0
        elif counter == "task_failures":
            state.task_failures = 0
        elif counter == "window":
            state.resolved.clear()
        elif counter == "exhausted_streak":
            state.exhausted_streak = 0


def _gate_requested(state: RunState, e: ev.GateRequested) -> None:
    state.gates[e.gate] = GateState(e.gate, e.kind, e.step, e.prompt, e.options, e.ts)


def _gate_answered(state: RunState, e: ev.GateAnswered) -> None:
    gate = state.gates.get(e.gate)
    if gate is not None and gate.response is None:
        gate.response, gate.by, gate.guidance, gate.answered_at = (
            e.response, e.by, e.guidance, e.ts)
        verb, _, arg = e.response.partition(":")
        step = state.steps.get(gate.step or "")
        if verb == "choose" and step is not None and gate.kind in ("before_step",
                                                                    "education"):
            step.start_method = arg  # the first round starts at the chosen method


def _gate_closed(state: RunState, e: ev.GateClosed) -> None:
    gate = state.gates.get(e.gate)
    if gate is not None:
        gate.closed = True


def _mode_switched(state: RunState, e: ev.ModeSwitched) -> None:
    state.mode_switches.append({"timestamp": e.ts, "from": e.from_mode, "to": e.to_mode,
                               "reason": e.reason, "step": e.step})
    state.mode = e.to_mode


def _notepad(state: RunState, e: ev.NotepadUpdated) -> None:
    state.notes.append(e)


def _transition(state: RunState, e: ev.TransitionTaken) -> None:
    """Tasks ``to_task`` .. ``from_task`` (in spec order) run again: back to pending."""
    state.transitions.append(e)
    refs = list(state.tasks)
    if e.to_task not in refs or e.from_task not in refs:
        return
    for ref in refs[refs.index(e.to_task): refs.index(e.from_task) + 1]:
        task = state.tasks[ref]
        task.status, task.completed_at = "pending", None
        for step_ref in task.steps:
            step = state.steps[step_ref]
            step.status, step.round = "pending", step.round + 1
            step.method_used, step.resolved, step.ended_at = None, False, None
            step.skip_reason, step.backups_triggered, step.start_method = None, [], None


def _transition_limit(state: RunState, e: ev.TransitionLimit) -> None:
    state.transition_limits.append(e)


def _completion(state: RunState, e: ev.CompletionVerified) -> None:
    state.completion = e


def _paused(state: RunState, e: ev.RunPaused) -> None:
    state.paused, state.status = e, "awaiting_human"


def _run_ended(state: RunState, e: ev.RunEnded) -> None:
    state.end, state.status, state.ended_at = e, e.status, e.ts
    state.current_task = state.current_step = None


def _check_ended(state: RunState, e: ev.CheckEnded) -> None:
    record = state.steps[e.step].open_attempt
    if record is not None and e.kind == "llm":
        record.judge = {"verdict": e.verdict, "reason": e.reason,
                        "reflection": e.reflection, "model": e.model, "calls": e.calls,
                        "usage": e.usage, "cost_usd": e.cost_usd}
    if e.usage is not None:  # the judge's calls count in the LLM totals too
        step = state.steps[e.step]
        if step.llm_usage is None:
            step.llm_usage = usage_totals()
        for totals in (state.llm_usage, step.llm_usage):
            add_usage(totals, e.usage, e.cost_usd, max(1, e.calls))


def _research_started(state: RunState, e: ev.ResearchStarted) -> None:
    state.research_started[e.task] = e.ts


def _research_ended(state: RunState, e: ev.ResearchEnded) -> None:
    state.research[e.task] = e


def _llm_call(state: RunState, e: ev.LlmCall) -> None:
    step = state.steps.get(e.step)
    add_call(state.llm_usage, e)
    if step is not None:
        if step.llm_usage is None:
            step.llm_usage = usage_totals()
        add_call(step.llm_usage, e)


_HANDLERS: dict[str, Any] = {
    "run-opened": _run_opened, "run-resumed": _run_resumed,
    "validation-summary": _validation, "mode-selected": _mode_selected,
    "execution-planned": _planned, "task-started": _task_started,
    "task-ended": _task_ended,
    "step-started": _step_started, "attempt-started": _attempt_started,
    "attempt-ended": _attempt_ended, "retry-scheduled": _retry,
    "backup-triggered": _backup, "step-ended": _step_ended,
    "step-reopened": _step_reopened, "failure-resolved": _failure_resolved,
    "escalated": _escalated, "gate-requested": _gate_requested,
    "gate-answered": _gate_answered, "gate-closed": _gate_closed,
    "mode-switched": _mode_switched, "notepad-updated": _notepad,
    "transition-taken": _transition, "transition-limit": _transition_limit,
    "completion-verified": _completion, "run-paused": _paused,
    "run-ended": _run_ended, "llm-call": _llm_call,
    "check-ended": _check_ended, "research-started": _research_started,
    "research-ended": _research_ended,
}
_HANDLERS["mcp-tools-verified"] = lambda state, e: setattr(state, "mcp_verification", e)
