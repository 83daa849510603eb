"""Events: everything that happens in a run, as typed values.

A run appends events to ``.specs/runs/<run_id>/events.jsonl``
(:class:`specs.engine.journal.EventLog`); that file is the single source of truth. The progress
file, the notepad, the console view and resume are all projections of it
(:mod:`specs.engine.state`). Each event class has a stable kebab-case
``name`` and a flat :meth:`Event.to_dict`; :func:`event_from_dict` reads one back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import orjson

__all__ = ["EVENT_TYPES", "Event", "encode_event", "event_from_dict", "iso", "read_events"]


@dataclass(slots=True, kw_only=True)
class Event:
    """Base of every event: a sequence number and a UTC timestamp (ISO 8601)."""

    name: ClassVar[str] = "event"
    seq: int = 0
    ts: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.name}
        for f in _fields(type(self)):
            out[f] = getattr(self, f)
        return out


_FIELDS: dict[type[Event], tuple[str, ...]] = {}


def _fields(cls: type[Event]) -> tuple[str, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return found


@dataclass(slots=True, kw_only=True)
class RunOpened(Event):
    """A new run: which spec (paths and hashes), the options, the totals."""

    name: ClassVar[str] = "run-opened"
    run_id: str
    descriptor: str
    spec: dict[str, Any]
    options: dict[str, Any]
    totals: dict[str, int]
    engine_version: str = ""


@dataclass(slots=True, kw_only=True)
class RunResumed(Event):
    """A run continues in a new process; ``interrupted`` lists attempts that never ended."""

    name: ClassVar[str] = "run-resumed"
    interrupted: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ValidationSummary(Event):
    """Pre-flight validation: PASS, WARN or FAIL, with the errors and warnings."""

    name: ClassVar[str] = "validation-summary"
    status: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    #: the Art. VI range of critical steps the spec was checked against (fractions), so
    #: projections judge the run by the same rule (spec, then project constitution)
    critical_range: list[float] | None = None


@dataclass(slots=True, kw_only=True)
class ModeSelected(Event):
    """The run mode and who chose it (cli, spec, project or default)."""

    name: ClassVar[str] = "mode-selected"
    mode: str
    selected_by: str
    strategy: str


@dataclass(slots=True, kw_only=True)
class ExecutionPlanned(Event):
    """Sequential or parallel, and why; the plan's shape (phases, width, critical path)."""

    name: ClassVar[str] = "execution-planned"
    parallel: bool
    max_parallel: int
    failure_policy: str
    reason: str
    phases: int = 0
    width: int = 0
    critical_path: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class TaskStarted(Event):
    name: ClassVar[str] = "task-started"
    task: str
    description: str = ""


@dataclass(slots=True, kw_only=True)
class TaskEnded(Event):
    name: ClassVar[str] = "task-ended"
    task: str
    status: str


@dataclass(slots=True, kw_only=True)
class StepStarted(Event):
    """A step begins: its effective mode, what it read, the propagation decision."""

    name: ClassVar[str] = "step-started"
    step: str
    mode: str
    critical: bool
    prior_step_dependencies: list[str] = field(default_factory=list)
    error_propagation_decision: str = "none"
    execution_id: str | None = None
    parallel_group: str | None = None
    slot: int | None = None
    dependencies_satisfied: list[str] | None = None


@dataclass(slots=True, kw_only=True)
class AttemptStarted(Event):
    name: ClassVar[str] = "attempt-started"
    step: str
    method: str
    attempt: int
    guidance: str | None = None


@dataclass(slots=True, kw_only=True)
class AttemptEnded(Event):
    """One try of one method: outcome, the expected-output verdict, and why it failed."""

    name: ClassVar[str] = "attempt-ended"
    step: str
    method: str
    attempt: int
    outcome: str  # success | failure | error
    verdict: str = "unchecked"  # match | partial | mismatch | unchecked
    failure_reason: str | None = None
    transient: bool = False
    duration_ms: float = 0.0
    exit_code: int | None = None
    output_summary: str = ""
    output: Any = None
    escalate: str | None = None
    usage: dict[str, int] | None = None  # cognitive steps: input_tokens, output_tokens
    cost_usd: float | None = None
    cached: bool = False  # cognitive steps: the outcome came from the cache (no call made)
    permanent: bool = False  # no retry of this method can mend it: the next method runs now
    output_truncated: str | None = None  # what of the output was cut at the cap, and the cost


@dataclass(slots=True, kw_only=True)
class RetryScheduled(Event):
    """A transient failure: the next attempt waits ``delay_s`` (backoff)."""

    name: ClassVar[str] = "retry-scheduled"
    step: str
    method: str
    delay_s: float
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class BackupTriggered(Event):
    """The previous method is exhausted; a backup takes over, with its justification."""

    name: ClassVar[str] = "backup-triggered"
    step: str
    backup: int
    trigger: str
    justification: str
    failure_reasons: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class StepEnded(Event):
    """A step reached a final status: completed, failed or skipped."""

    name: ClassVar[str] = "step-ended"
    step: str
    status: str
    method_used: str | None = None
    expected_output_match: bool | None = None
    message: str = ""
    skip_reason: str | None = None
    resolved: bool | None = None


@dataclass(slots=True, kw_only=True)
class StepReopened(Event):
    """A human asked to run a finished step's method ladder again."""

    name: ClassVar[str] = "step-reopened"
    step: str
    reason: str = ""
    start_method: str | None = None


@dataclass(slots=True, kw_only=True)
class FailureResolved(Event):
    """A human resolved a failed step (accept_failure) so propagation stops blocking on it."""

    name: ClassVar[str] = "failure-resolved"
    step: str
    how: str


@dataclass(slots=True, kw_only=True)
class Escalated(Event):
    """A dynamic trigger (or a critical failure) calls for a human decision."""

    name: ClassVar[str] = "escalated"
    step: str | None
    reasons: list[str]
    measurements: dict[str, Any] = field(default_factory=dict)
    from_mode: str = ""
    recommendation: str = ""
    reset: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class GateRequested(Event):
    """The run needs a human decision: before a step, after a failure, or on escalation."""

    name: ClassVar[str] = "gate-requested"
    gate: str
    kind: str  # before_step | education | critical_failure | escalation | human_step
    step: str | None
    prompt: str
    options: list[str]


@dataclass(slots=True, kw_only=True)
class GateAnswered(Event):
    """The human's response (``by``: user at the prompt, cli for approve/reject, auto for --yes)."""

    name: ClassVar[str] = "gate-answered"
    gate: str
    response: str
    by: str = "user"
    guidance: str | None = None


@dataclass(slots=True, kw_only=True)
class GateClosed(Event):
    """The answer's effects are applied."""

    name: ClassVar[str] = "gate-closed"
    gate: str


@dataclass(slots=True, kw_only=True)
class ModeSwitched(Event):
    name: ClassVar[str] = "mode-switched"
    from_mode: str
    to_mode: str
    reason: str
    step: str | None = None


@dataclass(slots=True, kw_only=True)
class NotepadUpdated(Event):
    name: ClassVar[str] = "notepad-updated"
    task: str
    step: str | None = None
    insights: list[str] = field(default_factory=list)
    technical_notes: list[str] = field(default_factory=list)
    ideas: list[str] = field(default_factory=list)
    human: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class TransitionTaken(Event):
    """A ``[[transitions]]`` loop: after ``from_task``, run again from ``to_task``."""

    name: ClassVar[str] = "transition-taken"
    from_task: str
    to_task: str
    iteration: int
    when: str | None = None


@dataclass(slots=True, kw_only=True)
class TransitionLimit(Event):
    """A transition's condition held again, but ``max_iterations`` was reached: go on."""

    name: ClassVar[str] = "transition-limit"
    from_task: str
    to_task: str
    max_iterations: int


@dataclass(slots=True, kw_only=True)
class CompletionVerified(Event):
    """R-DONE: the checks run at the end, the goal status and the gaps."""

    name: ClassVar[str] = "completion-verified"
    checks: dict[str, Any]
    overall_status: str
    goal_achievement_status: str
    gaps: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RunPaused(Event):
    """The run waits for a human decision (exit code 3); ``specs resume`` continues it."""

    name: ClassVar[str] = "run-paused"
    reason: str
    gate: str | None = None


@dataclass(slots=True, kw_only=True)
class RunEnded(Event):
    name: ClassVar[str] = "run-ended"
    status: str
    goal_achievement_status: str | None = None
    reason: str = ""
    step: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls for cls in (
        RunOpened, RunResumed, ValidationSummary, ModeSelected, ExecutionPlanned, TaskStarted,
        TaskEnded,
        StepStarted, AttemptStarted, AttemptEnded, RetryScheduled, BackupTriggered, StepEnded,
        StepReopened, FailureResolved, Escalated, GateRequested, GateAnswered, GateClosed,
        ModeSwitched, NotepadUpdated, TransitionTaken, TransitionLimit, CompletionVerified,
        RunPaused, RunEnded)
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :meth:`Event.to_dict` output (unknown keys are ignored)."""
    cls = EVENT_TYPES[data["event"]]
    names = _fields(cls)
    return cls(**{k: v for k, v in data.items() if k in names})


_ISO_CACHE: list[Any] = [-1, ""]
_ISO_MS: list[Any] = [-1, ""]  # the last millisecond formatted (events come in bursts)


def iso(epoch: float) -> str:
    """``2026-03-01T10:15:00.123Z`` for a Unix time."""
    ms = int(epoch * 1000)
    if ms == _ISO_MS[0]:
        return _ISO_MS[1]  # type: ignore[no-any-return]
    whole = int(epoch)
    if whole != _ISO_CACHE[0]:
        _ISO_CACHE[0], _ISO_CACHE[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S",
                                                           time.gmtime(whole))
    text = f"{_ISO_CACHE[1]}.{int((epoch - whole) * 1000):03d}Z"
    _ISO_MS[0], _ISO_MS[1] = ms, text
    return text


_json_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _encode(data: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # beyond orjson (an integer over 64 bits, deep nesting): json can
        return _json_encode(data).encode()


_AS_DICT: dict[type[Event], Callable[[Event], dict[str, Any]]] = {}


def encode_event(event: Event) -> bytes:
    """One JSON line's bytes (no newline): ``to_dict()`` encoded, through a function made once
    per event class that builds the same dict from the slots without a loop. The event loop's
    hottest path: 0.9 µs an event instead of 1.5 with ``to_dict()``, 4-6 % of the wall time of
    the no-op workloads W1, W2 and W4 (docs/performance.md)."""
    cls = type(event)
    as_dict = _AS_DICT.get(cls)
    if as_dict is None:
        as_dict = _AS_DICT[cls] = _dict_maker(cls)
    data = as_dict(event)
    try:  # string keys (every event's, and nearly every nested dict's): faster without
        return orjson.dumps(data, default=str)  # OPT_NON_STR_KEYS
    except TypeError:
        return _encode(data)


def _dict_maker(cls: type[Event]) -> Callable[[Event], dict[str, Any]]:
    """``lambda e: {"event": <name>, "seq": e.seq, ...}`` for ``cls``, fields in the order of
    :meth:`Event.to_dict` (made with ``exec`` from the field names, as dataclasses make
    ``__init__``; tests/test_events.py checks it against ``to_dict()`` for every class)."""
    items = ", ".join(f"{name!r}: e.{name}" for name in _fields(cls))
    namespace: dict[str, Any] = {}
    exec(f"def as_dict(e):\n    return {{'event': {cls.name!r}, {items}}}\n", namespace)
    return namespace["as_dict"]  # type: ignore[no-any-return]


def read_events(path: Path, damaged: list[int] | None = None) -> Iterator[Event]:
    """The events of a log, in order. A torn last line (a crash mid-write) is skipped; so is a
    whole line that is not an event (damaged on disk, or edited), and its number (1-based) is
    appended to ``damaged`` when given."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.endswith(b"\n"):
                return
            try:
                data = json.loads(raw)
                yield event_from_dict(data)
            except (ValueError, KeyError, TypeError):
                if damaged is not None:
                    damaged.append(number)


# -- judged outputs and the research phase (appended: see EVENT_TYPES.update below) -------------


@dataclass(slots=True, kw_only=True)
class CheckEnded(Event):
    """An expected-output check that is worth its own record: ``kind`` ``llm`` is the LLM judge
    of ``verify_with = "llm"`` (its verdict, reason and reflection, the judge model and the
    tokens it used, which also count in the attempt's ``usage``)."""

    name: ClassVar[str] = "check-ended"
    step: str
    method: str
    attempt: int
    kind: str  # llm
    verdict: str  # match | partial | mismatch
    reason: str = ""
    reflection: str = ""
    model: str = ""
    calls: int = 0
    usage: dict[str, int] | None = None
    cost_usd: float | None = None


@dataclass(slots=True, kw_only=True)
class ResearchStarted(Event):
    """A research-enabled task's research phase begins (reference R-RES), before its first
    step; ``tools`` are the read-only tools the research agent is offered."""

    name: ClassVar[str] = "research-started"
    task: str
    sources: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ResearchEnded(Event):
    """The research phase's outcome: ``done`` with findings, or ``skipped`` / ``failed`` with a
    ``warning`` (the task goes on without findings). Once recorded, it is not run again (a
    resume reuses it)."""

    name: ClassVar[str] = "research-ended"
    task: str
    status: str  # done | skipped | failed
    warning: str = ""
    queries: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    key_findings: list[str] = field(default_factory=list)
    confidence: str | None = None  # low | medium | high
    time_seconds: float = 0.0
    api_calls: int = 0
    tool_calls: int = 0
    usage: dict[str, int] | None = None
    cost_usd: float | None = None


EVENT_TYPES.update({cls.name: cls for cls in (CheckEnded, ResearchStarted, ResearchEnded)})


# -- MCP tools and tool calls (added after the core events; see specs.llm.mcp) ----------------


@dataclass(slots=True, kw_only=True)
class McpToolsVerified(Event):
    """Rule 1.11: which MCP servers of ``[mcp_tools]`` run (``record`` is the progress file's
    ``mcp_tools_verification``); ``warnings`` are the recommended (or tolerated required)
    servers that do not."""

    name: ClassVar[str] = "mcp-tools-verified"
    record: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ToolCalled(Event):
    """One tool call of a cognitive step's agent loop (built-in or MCP): ``arguments`` is a
    bounded summary with secret-looking values masked; ``error`` the reason when not ``ok``."""

    name: ClassVar[str] = "tool-called"
    step: str
    method: str
    attempt: int
    tool: str
    server: str | None = None
    ok: bool = True
    duration_ms: int = 0
    arguments: str = ""
    error: str | None = None


EVENT_TYPES.update({cls.name: cls for cls in (McpToolsVerified, ToolCalled)})


# --- LLM accounting (appended; see docs/providers.md) -------------------------------------------


@dataclass(slots=True, kw_only=True)
class LlmCall(Event):
    """One LLM call of a cognitive attempt ended (tokens were spent, even when the attempt
    never ends: the run's token and cost totals are the sum of these events)."""

    name: ClassVar[str] = "llm-call"
    step: str
    method: str
    attempt: int
    turn: int
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)  # input_tokens, output_tokens
    cost_usd: float | None = None  # None: the model's price is unknown


@dataclass(slots=True, kw_only=True)
class RunWarning(Event):
    """Something went wrong that does not stop the run (a corrupt cache entry)."""

    name: ClassVar[str] = "warning"
    message: str
    step: str | None = None


EVENT_TYPES.update({cls.name: cls for cls in (LlmCall, RunWarning)})
