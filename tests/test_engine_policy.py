"""Unit tables for the engine's pure rules (src/specs/engine/policy.py).

Each test pins one rule of SPEC_ENGINE_REFERENCE.md §3.3-§3.9 / SPEC_FORMAT.md §1.3-§1.5:
backoff (R-RETRY-2), the method ladder (R-RETRY-2/3/5), gates (R-MODE-2/3, R-EDU), the default
propagation strategy, and the escalation triggers (R-ESC-1..4) over a hand-built RunState.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from specs import events as ev
from specs.engine import policy
from specs.engine.state import AttemptRecord, RunState, StepState
from specs.spec.model import (
    Backup,
    Education,
    ErrorPropagation,
    Execution,
    RetrySection,
    Spec,
    Step,
    Task,
)

# -- next_delay (R-RETRY-2, SPEC_FORMAT §1.3) ------------------------------------------------


def retry(**keys: Any) -> RetrySection:
    return RetrySection(**{"jitter": False, **keys})


@pytest.mark.parametrize(("section", "attempt", "transient", "expected"), [
    # exponential: base x factor^(attempt-1), capped
    (retry(), 1, True, 2.0),
    (retry(), 2, True, 4.0),
    (retry(), 3, True, 8.0),
    (retry(), 6, True, 60.0),  # 64 capped at the default 60 s
    (retry(), 20, True, 60.0),
    (retry(backoff_base_seconds=0.5, backoff_factor=3), 3, True, 4.5),
    (retry(backoff_max_seconds=5), 3, True, 5.0),
    (retry(backoff_max_seconds=0), 1, True, 0.0),
    # fixed: the base every time (still capped)
    (retry(backoff_strategy="fixed"), 1, True, 2.0),
    (retry(backoff_strategy="fixed"), 7, True, 2.0),
    (retry(backoff_strategy="fixed", backoff_base_seconds=90), 1, True, 60.0),
    # none: never waits
    (retry(backoff_strategy="none"), 3, True, 0.0),
    # substantive (non-transient) failures retry at once, whatever the strategy
    (retry(), 1, False, 0.0),
    (retry(backoff_strategy="fixed"), 2, False, 0.0),
    (RetrySection(), 3, False, 0.0),
])
def test_next_delay_table(section: RetrySection, attempt: int, transient: bool,
                          expected: float) -> None:
    assert policy.next_delay(section, attempt, transient) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 7])
def test_next_delay_jitter_stays_within_half_to_full(attempt: int) -> None:
    section = RetrySection()  # exponential, base 2, x2, cap 60, jitter on
    full = min(2.0 * 2 ** (attempt - 1), 60.0)
    rng = random.Random(attempt)
    delays = [policy.next_delay(section, attempt, True, rng) for _ in range(200)]
    assert all(0.5 * full <= d <= full for d in delays)
    assert max(delays) - min(delays) > 0.2 * full  # it really jitters
    # the same seed gives the same delays (tests inject the rng)
    again = random.Random(attempt)
    assert delays == [policy.next_delay(section, attempt, True, again) for _ in range(200)]


# -- ladder / next_attempt (R-RETRY-2/3/5) ---------------------------------------------------


def make_step(max_retries: int = 2, backups: tuple[int | None, ...] = (),
              **keys: Any) -> Step:
    return Step(id=1, description="primary way", expected_output="x", max_retries=max_retries,
                backups=[Backup(id=i + 1, description=f"backup way {i + 1}", max_retries=r)
                         for i, r in enumerate(backups)], **keys)


def test_ladder_rungs_and_tries() -> None:
    rungs = policy.ladder(make_step(max_retries=2, backups=(None, 2)))
    assert [(r.label, r.tries, r.backup_id, r.description) for r in rungs] == [
        ("primary", 3, None, "primary way"),
        ("backup_1", 1, 1, "backup way 1"),
        ("backup_2", 3, 2, "backup way 2"),
    ]
    # backups run in id order whatever the order they are written in
    step = Step(id=1, description="p", max_retries=0,
                backups=[Backup(id=2, description="two"), Backup(id=1, description="one")])
    assert [r.label for r in policy.ladder(step)] == ["primary", "backup_1", "backup_2"]


def step_state(*attempts: tuple[str, str], round: int = 1, start: str | None = None,
               earlier: tuple[tuple[str, str], ...] = ()) -> StepState:
    st = StepState("1.1", "1", 1, True, round=round, start_method=start)
    for rnd, items in ((round - 1, earlier), (round, attempts)):
        counts: dict[str, int] = {}
        for method, outcome in items:
            counts[method] = counts.get(method, 0) + 1
            st.attempts.append(AttemptRecord(method, counts[method], rnd, "t", "t",
                                             outcome.rstrip("!"), permanent=outcome == P))
    return st


F = "failure"
P = "error!"  # an error no retry can mend (command not found): permanent


@pytest.mark.parametrize(("state", "expected"), [
    pytest.param(step_state(), (0, 1), id="fresh: primary attempt 1"),
    pytest.param(step_state(("primary", F)), (0, 2), id="mid-primary"),
    pytest.param(step_state(("primary", F), ("primary", "error")), (0, 3), id="error counts"),
    pytest.param(step_state(*[("primary", F)] * 3), (1, 1), id="primary exhausted: backup_1"),
    pytest.param(step_state(*[("primary", F)] * 3, ("backup_1", F)), (2, 1),
                 id="backup_1 exhausted: backup_2"),
    pytest.param(step_state(*[("primary", F)] * 3, ("backup_1", F), ("backup_2", F)),
                 (2, 2), id="backup_2 retries"),
    pytest.param(step_state(*[("primary", F)] * 3, ("backup_1", F), *[("backup_2", F)] * 3),
                 None, id="everything exhausted"),
    pytest.param(step_state(("primary", "success")), None, id="success stops"),
    pytest.param(step_state(("primary", F), ("primary", "success")), None,
                 id="success after a retry stops"),
    pytest.param(step_state(start="backup_1"), (1, 1), id="chosen start backup_1"),
    pytest.param(step_state(start="backup_2"), (2, 1), id="chosen start backup_2"),
    pytest.param(step_state(("backup_1", F), start="backup_1"), (2, 1),
                 id="chosen start continues down the ladder"),
    pytest.param(step_state(start="primary"), (0, 1), id="chosen primary"),
    pytest.param(step_state(start="nonsense"), (0, 1), id="unknown choice: primary"),
    pytest.param(step_state(round=2, earlier=(("primary", F),) * 3), (0, 1),
                 id="a new round starts over"),
    pytest.param(step_state(("primary", P)), (1, 1), id="permanent: backup_1 at once"),
    pytest.param(step_state(("primary", F), ("primary", P)), (1, 1),
                 id="permanent on a retry: backup_1 at once"),
    pytest.param(step_state(("primary", P), ("backup_1", F)), (2, 1),
                 id="after a permanent primary the ladder goes on"),
    pytest.param(step_state(*[("primary", F)] * 3, ("backup_1", F), ("backup_2", P)), None,
                 id="permanent on the last method: exhausted"),
    pytest.param(step_state(("backup_2", P), start="backup_2"), None,
                 id="permanent on a chosen start"),
    pytest.param(step_state(round=2, earlier=(("primary", P),)), (0, 1),
                 id="a new round tries a permanent failure again"),
])
def test_next_attempt(state: StepState, expected: tuple[int, int] | None) -> None:
    # primary 1 + 2 tries; backup_1 one try; backup_2 1 + 2 tries
    rungs = policy.ladder(make_step(max_retries=2, backups=(None, 2)))
    assert policy.next_attempt(rungs, state) == expected


@pytest.mark.parametrize(("max_retries", "backups", "expected"), [
    (0, (), ["primary:1"]),
    (2, (), ["primary:1", "primary:2", "primary:3"]),
    (1, (None,), ["primary:1", "primary:2", "backup_1:1"]),
    (0, (1, None), ["primary:1", "backup_1:1", "backup_1:2", "backup_2:1"]),
])
def test_next_attempt_walks_the_whole_ladder(max_retries: int, backups: tuple[int | None, ...],
                                             expected: list[str]) -> None:
    rungs = policy.ladder(make_step(max_retries=max_retries, backups=backups))
    st = StepState("1.1", "1", 1, True, round=1)
    walked = []
    while (found := policy.next_attempt(rungs, st)) is not None:
        index, number = found
        walked.append(f"{rungs[index].label}:{number}")
        st.attempts.append(AttemptRecord(rungs[index].label, number, 1, "t", "t", F))
    assert walked == expected


# -- gate_kind (R-MODE-2/3, R-EDU) -----------------------------------------------------------


def gate_for(step_mode: str | None, mode: str, critical: bool, backups: bool,
             pace: str | None) -> str | None:
    step = make_step(backups=(None,) if backups else (), critical_flag=critical,
                     mode=step_mode)
    spec = Spec(education=Education(enabled=True, learning_pace=pace) if pace else None)
    return policy.gate_kind(step, mode, spec)


@pytest.mark.parametrize(("step_mode", "mode", "critical", "backups", "pace", "expected"), [
    # silent and dynamic never gate ...
    (None, "silent", True, True, None, None),
    (None, "dynamic", True, True, None, None),
    ("silent", "dynamic", True, False, None, None),
    # ... except a step whose own mode is collaborative, which always gates
    ("collaborative", "silent", False, False, None, "before_step"),
    ("collaborative", "dynamic", False, False, None, "before_step"),
    ("collaborative", "education", False, False, "fast", "before_step"),
    # collaborative: before every critical step, never before a non-critical one
    (None, "collaborative", True, False, None, "before_step"),
    (None, "collaborative", False, True, None, None),
    ("silent", "collaborative", True, False, None, "before_step"),
    ("dynamic", "collaborative", False, False, None, None),
    # education slow: every step
    (None, "education", False, False, "slow", "education"),
    # moderate: critical steps and steps with backups
    (None, "education", True, False, "moderate", "education"),
    (None, "education", False, True, "moderate", "education"),
    (None, "education", False, False, "moderate", None),
    # fast: only critical steps that have a backup
    (None, "education", True, True, "fast", "education"),
    (None, "education", True, False, "fast", None),
    (None, "education", False, True, "fast", None),
    # no [education] section: the default pace (moderate)
    (None, "education", True, False, None, "education"),
    (None, "education", False, False, None, None),
])
def test_gate_kind_table(step_mode: str | None, mode: str, critical: bool, backups: bool,
                         pace: str | None, expected: str | None) -> None:
    assert gate_for(step_mode, mode, critical, backups, pace) == expected


def rule(step_mode: str | None, mode: str, critical: bool, backups: bool,
         pace: str | None) -> str | None:
    """R-MODE-2/3 and R-EDU written out from the reference's text."""
    if step_mode == "collaborative":
        return "before_step"
    if mode == "collaborative":
        return "before_step" if critical else None
    if mode == "education":
        pace = pace or "moderate"
        wanted = {"slow": True, "moderate": critical or backups,
                  "fast": critical and backups}[pace]
        return "education" if wanted else None
    return None


@pytest.mark.parametrize(("step_mode", "mode"), list(itertools.product(
    [None, "silent", "dynamic", "collaborative", "education"],
    ["silent", "dynamic", "collaborative", "education"])))
def test_gate_kind_full_product(step_mode: str | None, mode: str) -> None:
    for critical, backups, pace in itertools.product(
            [True, False], [True, False], [None, "slow", "moderate", "fast"]):
        assert gate_for(step_mode, mode, critical, backups, pace) == rule(
            step_mode, mode, critical, backups, pace), (critical, backups, pace)


@pytest.mark.parametrize("mode", ["silent", "dynamic", "collaborative", "education"])
def test_a_human_step_has_no_gate_before_it(mode: str) -> None:
    step = make_step(execution_method="human", mode="collaborative")
    assert policy.gate_kind(step, mode, Spec(education=Education(learning_pace="slow"))) is None


# -- default_strategy ------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "strategy"), [
    ("silent", "halt_on_critical"),
    ("dynamic", "collaborative_review"),
    ("collaborative", "collaborative_review"),
    ("education", "collaborative_review"),
])
def test_default_strategy(mode: str, strategy: str) -> None:
    assert policy.default_strategy(mode) == strategy


# -- escalation_reasons (R-ESC-1..4) ---------------------------------------------------------


def esc_spec(tasks: int = 1, steps: int = 12, *, escalation_threshold: int = 3,
             failure_threshold: int = 3, confidence: float | None = None) -> Spec:
    return Spec(
        execution=Execution(escalation_threshold=escalation_threshold,
                            confidence_threshold=confidence),
        error_propagation=ErrorPropagation(failure_threshold=failure_threshold),
        tasks=[Task(id=t, description=f"task {t}", steps=[
            Step(id=s, description=f"step {t}.{s}", expected_output="x",
                 backups=[Backup(id=1, description="b1")]) for s in range(1, steps + 1)])
            for t in range(1, tasks + 1)])


class Script:
    """Drive a RunState by applying events by hand, as the runner would emit them."""

    def __init__(self, spec: Spec, mode: str = "dynamic") -> None:
        self.spec = spec
        self.state = RunState(spec)
        self.apply(ev.ModeSelected(mode=mode, selected_by="cli", strategy="continue_and_log"))

    def apply(self, event: ev.Event) -> None:
        self.state.apply(event)

    def task(self, ref: str) -> None:
        self.apply(ev.TaskStarted(task=ref))

    def step(self, ref: str, status: str, *, retries: int = 0, backup: bool = False,
             match: bool | None = None) -> StepState:
        self.apply(ev.StepStarted(step=ref, mode="dynamic", critical=True))
        for number in range(1, retries + 2):
            self.apply(ev.AttemptStarted(step=ref, method="primary", attempt=number))
            last = number == retries + 1 and not backup
            outcome = "success" if last and status == "completed" else "failure"
            self.apply(ev.AttemptEnded(step=ref, method="primary", attempt=number,
                                       outcome=outcome))
        method = "primary"
        if backup:
            method = "backup_1"
            self.apply(ev.BackupTriggered(step=ref, backup=1, trigger="primary_failure",
                                          justification="primary exhausted"))
            self.apply(ev.AttemptStarted(step=ref, method=method, attempt=1))
            self.apply(ev.AttemptEnded(step=ref, method=method, attempt=1, outcome=(
                "success" if status == "completed" else "failure")))
        self.apply(ev.StepEnded(step=ref, status=status, expected_output_match=match,
                                method_used=method if status == "completed" else None))
        return self.state.steps[ref]

    def reasons(self, mode: str = "dynamic") -> tuple[list[str], dict[str, Any], list[str], str]:
        last = self.state.steps[self.state.resolved[-1]] if self.state.resolved else \
            next(iter(self.state.steps.values()))
        return policy.escalation_reasons(self.state, self.spec, mode, last)


def script(spec: Spec, mode: str = "dynamic") -> Script:
    s = Script(spec, mode)
    s.task("1")
    return s


def test_consecutive_failures_fire_at_the_threshold_in_dynamic_mode() -> None:
    s = script(esc_spec(escalation_threshold=2, failure_threshold=0))
    s.step("1.1", "failed")
    assert s.reasons()[0] == []
    s.step("1.2", "failed")
    reasons, measures, reset, _ = s.reasons()
    assert (reasons, measures, reset) == (
        ["consecutive_failures"], {"consecutive_failures": 2}, ["consecutive_failures"])
    # the escalation resets the counter that fired (R-ESC-7)
    s.apply(ev.Escalated(step="1.2", reasons=reasons, reset=reset))
    assert s.state.consecutive_failures == 0
    assert s.reasons()[0] == []


def test_a_completed_step_resets_consecutive_failures() -> None:
    s = script(esc_spec(escalation_threshold=2, failure_threshold=0))
    s.step("1.1", "failed")
    s.step("1.2", "completed")
    s.step("1.3", "failed")
    assert s.state.consecutive_failures == 1
    assert s.reasons()[0] == []


def test_consecutive_failures_do_not_fire_in_silent_mode() -> None:
    s = script(esc_spec(escalation_threshold=1, failure_threshold=0), mode="silent")
    s.step("1.1", "failed")
    s.step("1.2", "failed")
    assert s.reasons("dynamic")[0] == ["consecutive_failures"]
    assert s.reasons("silent")[0] == []
    assert s.reasons("collaborative")[0] == []


@pytest.mark.parametrize("mode", ["silent", "dynamic"])
def test_failure_threshold_counts_failed_steps_within_the_task(mode: str) -> None:
    s = script(esc_spec(escalation_threshold=0, failure_threshold=3), mode)
    s.step("1.1", "failed")
    s.step("1.2", "completed")  # not consecutive: only the per-task total fires
    s.step("1.3", "failed")
    assert s.reasons(mode)[0] == []
    s.step("1.4", "failed")
    reasons, measures, reset, _ = s.reasons(mode)
    assert (reasons, measures, reset) == (["failure_threshold"], {"task_failures": 3},
                                          ["task_failures"])


def test_both_counters_fire_together_and_both_reset() -> None:
    s = script(esc_spec(escalation_threshold=3, failure_threshold=3))
    for ref in ("1.1", "1.2", "1.3"):
        s.step(ref, "failed")
    reasons, _, reset, _ = s.reasons()
    assert reasons == ["failure_threshold", "consecutive_failures"]
    assert reset == ["consecutive_failures", "task_failures"]


def test_threshold_zero_disables_both_counters() -> None:
    s = script(esc_spec(escalation_threshold=0, failure_threshold=0))
    for i in range(1, 5):
        s.step(f"1.{i}", "failed")
    assert s.reasons("dynamic")[0] == []
    assert s.reasons("silent")[0] == []


def test_counters_reset_at_task_start() -> None:
    s = script(esc_spec(tasks=2, escalation_threshold=2, failure_threshold=2))
    s.step("1.1", "failed")
    s.task("2")
    assert (s.state.consecutive_failures, s.state.task_failures) == (0, 0)
    s.step("2.1", "failed")
    assert s.reasons()[0] == []
    s.step("2.2", "failed")
    assert s.reasons()[0] == ["failure_threshold", "consecutive_failures"]


@pytest.mark.parametrize(("backed", "fires"), [(5, True), (3, True), (2, False)])
def test_backup_depletion_over_a_five_step_window(backed: int, fires: bool) -> None:
    s = script(esc_spec())
    for i in range(1, 6):
        s.step(f"1.{i}", "completed", backup=i <= backed)
    reasons, measures, reset, advice = s.reasons()
    if fires:
        assert reasons == ["backup_depletion"]
        assert measures == {"window_backup_rate": backed / 5}
        assert reset == ["window"]
        assert "backup_1" in advice and "promot" in advice
    else:
        assert (reasons, advice) == ([], "")


def test_window_triggers_need_five_resolved_steps() -> None:
    s = script(esc_spec())
    for i in range(1, 5):
        s.step(f"1.{i}", "completed", backup=True, match=False)
    assert s.reasons()[0] == []
    s.step("1.5", "completed", backup=True, match=False)
    assert s.reasons()[0] == ["backup_depletion", "confidence_degradation"]


def test_the_window_is_the_last_five_steps() -> None:
    s = script(esc_spec())
    for i in range(1, 4):
        s.step(f"1.{i}", "completed", backup=True)
    for i in range(4, 9):
        s.step(f"1.{i}", "completed")
    assert s.reasons()[0] == []


@pytest.mark.parametrize(("mismatches", "threshold", "fires"), [
    (3, None, True),  # the exe rule: >= 50 % of the window
    (2, None, False),
    (1, 0.9, True),  # configured: the match rate 0.8 is below 0.9
    (1, 0.8, False),  # 0.8 is not below 0.8
    (0, 1.0, False),
])
def test_confidence_degradation(mismatches: int, threshold: float | None, fires: bool) -> None:
    s = script(esc_spec(confidence=threshold))
    for i in range(1, 6):
        s.step(f"1.{i}", "completed", match=i > mismatches)
    reasons, measures, reset, _ = s.reasons()
    if fires:
        assert reasons == ["confidence_degradation"]
        assert measures == {"expected_output_match_rate": pytest.approx(1 - mismatches / 5)}
        assert reset == ["window"]
    else:
        assert reasons == []


def test_backup_exhaustion_three_steps_in_a_row() -> None:
    s = script(esc_spec(escalation_threshold=0, failure_threshold=0))
    s.step("1.1", "failed", backup=True)
    s.step("1.2", "failed", backup=True)
    assert s.reasons()[0] == []
    s.step("1.3", "failed", backup=True)
    reasons, measures, reset, _ = s.reasons()
    assert (reasons, measures, reset) == (
        ["backup_exhaustion"], {"steps_exhausting_backups": 3}, ["exhausted_streak"])


def test_backup_exhaustion_streak_is_broken_by_a_failure_without_backups() -> None:
    s = script(esc_spec(escalation_threshold=0, failure_threshold=0))
    s.step("1.1", "failed", backup=True)
    s.step("1.2", "failed", backup=True)
    s.step("1.3", "failed")
    s.step("1.4", "failed", backup=True)
    assert s.reasons()[0] == []


@pytest.mark.parametrize(("before", "after", "fires"), [(1, 2, True), (2, 2, False),
                                                        (0, 3, False)])
def test_retry_growth_needs_ten_steps(before: int, after: int, fires: bool) -> None:
    s = script(esc_spec())
    for i in range(1, 11):
        s.step(f"1.{i}", "completed", retries=before if i <= 5 else after)
    reasons, measures, _, _ = s.reasons()
    if fires:
        assert reasons == ["retry_growth"]
        assert measures == {"average_retries": {"last_5": after, "previous_5": before}}
    else:
        assert reasons == []
