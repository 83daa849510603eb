"""The engine's rules as pure functions: the method ladder, backoff, modes, gates, escalation.

Nothing here does I/O or keeps state; the run loop (:mod:`specs.engine.runner`) asks and
applies. Each function implements one rule of the reference (§3.3-§3.9) with the decisions of
SPEC_FORMAT.md §1, and is tested with a table of cases.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from specs.engine.state import RunState, StepState
from specs.spec.model import Action, RetrySection, Spec, Step

__all__ = [
    "Method",
    "default_strategy",
    "escalation_reasons",
    "gate_kind",
    "ladder",
    "next_attempt",
    "next_delay",
    "primary",
]


@dataclass(frozen=True, slots=True)
class Method:
    """One rung of the ladder: ``primary`` or ``backup_<n>``, its action and its tries."""

    label: str
    action: Action
    tries: int
    description: str
    backup_id: int | None = None


def primary(step: Step) -> Method:
    """The ladder's first rung: the step's own method, ``1 + max_retries`` attempts."""
    return Method("primary", step, 1 + step.max_retries, step.primary_method or step.description)


def ladder(step: Step) -> list[Method]:
    """R-RETRY-2/3: the primary gets ``1 + max_retries`` attempts; backups follow in id order,
    each ``1 + backup.max_retries`` (default one attempt)."""
    rungs = [primary(step)]
    for backup in sorted(step.backups, key=lambda b: b.id):
        rungs.append(Method(f"backup_{backup.id}", backup, 1 + (backup.max_retries or 0),
                            backup.description, backup.id))
    return rungs


def next_attempt(rungs: list[Method], state: StepState) -> tuple[int, int] | None:
    """The next (rung index, attempt number) for this round of the step, or None if exhausted.

    Attempts of the current round are counted per method; a round may start at a method a
    human chose (``start_method``). A method whose attempt failed ``permanent`` (a program
    not found: no retry can mend it) has no tries left.
    """
    if not state.attempts and state.start_method is None:
        return (0, 1) if rungs[0].tries > 0 else _first_with_tries(rungs)
    done: dict[str, int] = {}
    last_index = -1
    labels = [r.label for r in rungs]
    for attempt in state.round_attempts():
        done[attempt.method] = done.get(attempt.method, 0) + 1
        if attempt.permanent:
            done[attempt.method] = UNLIMITED
        if attempt.method in labels:
            last_index = max(last_index, labels.index(attempt.method))
        if attempt.outcome == "success":
            return None
    start = labels.index(state.start_method) if state.start_method in labels else 0
    for index in range(max(start, last_index, 0), len(rungs)):
        used = done.get(rungs[index].label, 0)
        if used < rungs[index].tries:
            return index, used + 1
    return None


UNLIMITED = 1 << 62  # more tries than any method has: "none left"


def _first_with_tries(rungs: list[Method]) -> tuple[int, int] | None:
    return next(((index, 1) for index, rung in enumerate(rungs) if rung.tries > 0), None)


def next_delay(policy: RetrySection, attempt: int, transient: bool,
               rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` of the same method (SPEC_FORMAT.md §1.3).

    Substantive failures (expected output not met) retry at once; transient ones back off
    exponentially (base x factor^(attempt-1), capped) with jitter in [50 %, 100 %].
    """
    if not transient or policy.backoff_strategy == "none":
        return 0.0
    if policy.backoff_strategy == "fixed":
        delay = policy.backoff_base_seconds
    else:
        delay = policy.backoff_base_seconds * policy.backoff_factor ** max(0, attempt - 1)
    delay = min(delay, policy.backoff_max_seconds)
    if policy.jitter:
        delay *= 0.5 + 0.5 * (rng or random).random()
    return delay


def default_strategy(mode: str) -> str:
    """Template comment: silent -> halt_on_critical, otherwise collaborative_review."""
    return "halt_on_critical" if mode == "silent" else "collaborative_review"


def gate_kind(step: Step, mode: str, spec: Spec) -> str | None:
    """R-MODE-2/3: does this step need a human before it runs, and which kind of gate?"""
    if step.effective_method == "human":
        return None  # the human step's own confirmation is its gate
    if step.mode == "collaborative":
        return "before_step"
    if mode == "collaborative" and step.critical_flag:
        return "before_step"
    if mode == "education":
        pace = spec.education.learning_pace if spec.education else "moderate"
        has_backups = bool(step.backups)
        if (pace == "slow" or (pace == "moderate" and (step.critical_flag or has_backups))
                or (pace == "fast" and step.critical_flag and has_backups)):
            return "education"
    return None


def escalation_reasons(state: RunState, spec: Spec, mode: str,
                       last: StepState) -> tuple[list[str], dict[str, Any], list[str], str]:
    """R-ESC-1..4: which triggers fire after ``last`` reached a final status.

    Returns (reasons, measurements, counters to reset, recommendation). Dynamic mode evaluates
    every trigger; silent mode only the per-task failure threshold (R-ESC-4).
    """
    reasons: list[str] = []
    measures: dict[str, Any] = {}
    reset: list[str] = []
    advice = ""
    threshold = spec.error_propagation.failure_threshold
    if mode in ("silent", "dynamic") and threshold and state.task_failures >= threshold:
        reasons.append("failure_threshold")
        measures["task_failures"] = state.task_failures
        reset.append("task_failures")
    if mode != "dynamic":
        return reasons, measures, reset, advice
    limit = spec.execution.escalation_threshold
    if limit and state.consecutive_failures >= limit:
        reasons.append("consecutive_failures")
        measures["consecutive_failures"] = state.consecutive_failures
        reset.append("consecutive_failures")
    window = [state.steps[r] for r in state.resolved[-5:]]
    if len(window) == 5:
        backed = sum(s.needed_backup for s in window)
        if backed / 5 >= 0.6:
            reasons.append("backup_depletion")
            measures["window_backup_rate"] = backed / 5
            reset.append("window")
        winners: dict[str, int] = {}
        for s in window:
            if s.status == "completed" and (s.method_used or "").startswith("backup_"):
                winners[s.method_used or ""] = winners.get(s.method_used or "", 0) + 1
        best = max(winners.items(), key=lambda kv: kv[1], default=("", 0))
        if best[1] >= 3:
            advice = f"{best[0]} succeeded {best[1]} times in the last 5 steps: consider " \
                     "promoting it to the primary method"
        mismatches = sum(s.expected_output_match is False for s in window)
        confidence = spec.execution.confidence_threshold
        rate = 1 - mismatches / 5
        if (confidence is not None and rate < confidence) or (
                confidence is None and mismatches / 5 >= 0.5):
            reasons.append("confidence_degradation")
            measures["expected_output_match_rate"] = rate
            reset.append("window")
    if state.exhausted_streak >= 3:
        reasons.append("backup_exhaustion")
        measures["steps_exhausting_backups"] = state.exhausted_streak
        reset.append("exhausted_streak")
    history = [state.steps[r] for r in state.resolved[-10:]]
    if len(history) >= 10:
        recent = sum(len(s.round_attempts()) - 1 for s in history[-5:]) / 5
        before = sum(len(s.round_attempts()) - 1 for s in history[-10:-5]) / 5
        if before > 0 and recent >= 1.5 * before:
            reasons.append("retry_growth")
            measures["average_retries"] = {"last_5": recent, "previous_5": before}
            reset.append("window")
    return reasons, measures, sorted(set(reset)), advice
