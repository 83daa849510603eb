"""The run loop against the reference's rules, one test (or table) per rule.

Each test writes a small spec into ``tmp_path`` whose steps are Python callables from a
``steps_<uuid>.py`` beside it. The callable ``act`` follows a *plan* (``plan.json``): for each
``"<ref>:<method>"`` a list of behaviours, one per call (the last one repeats), and logs every
call to ``calls.jsonl`` (so a test can count invocations across processes and runs). The
runner gets an injected ``sleep`` (backoff delays are recorded, never slept) and a seeded rng.

Rules: SPEC_ENGINE_REFERENCE.md §3.3-§3.9 (R-MODE, R-LOOP, R-RETRY, R-CRIT, R-EP, R-ESC, R-EDU),
§3.12 R-VER-1 / R-DONE, and SPEC_FORMAT.md §1.3-§1.5.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from specs import events as ev
from specs.api import runs
from specs.engine.human import ScriptedHuman
from specs.engine.runner import Runner, RunOptions, RunResult
from specs.spec.load import load_spec

STEPS_PY = '''
import json
import pathlib

from specs.executors.base import Outcome

HERE = pathlib.Path(__file__).parent


def act(ctx):
    key = f"{ctx.ref}:{ctx.method}"
    log = HERE / "calls.jsonl"
    seen = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    n = sum(1 for call in seen if call["key"] == key)
    with log.open("a") as handle:
        handle.write(json.dumps({"key": key, "attempt": ctx.attempt, "guidance": ctx.guidance,
                                 "reasons": dict(ctx.failure_reasons)}) + "\\n")
    plan = json.loads((HERE / "plan.json").read_text())
    script = plan.get(key) or ["ok"]
    do = script[min(n, len(script) - 1)]
    if isinstance(do, (dict, list)):
        return do
    verb, _, arg = do.partition(":")
    if verb == "ok":
        return Outcome("ok", text=f"{key} done")
    if verb == "fail":
        return Outcome("failed", failure_reason=f"{key} broke")
    if verb == "transient":
        return Outcome("failed", failure_reason=f"{key} rate limited", transient=True)
    if verb == "partial":
        return Outcome("ok", verdict="partial", failure_reason=f"{key} half done")
    if verb == "escalate":
        return Outcome("ok", escalate=arg)
    if verb == "fail_escalate":
        return Outcome("failed", failure_reason=f"{key} unsure", escalate=arg)
    if verb == "touch":
        (ctx.workspace / arg).write_text("content")
        return Outcome("ok")
    if verb == "raise":
        raise RuntimeError(f"{key} exploded")
    raise AssertionError(do)
'''

MOD = "@MOD@"


def step(id: int, *, critical: bool = False, retries: int = 0,
         backups: int | list[dict[str, Any]] = 0, **keys: Any) -> dict[str, Any]:
    """A step table: a python callable by default, ``command=...`` for a shell step."""
    table: dict[str, Any] = {"id": id, "description": f"do step {id}", "expected_output": "done",
                             "critical_flag": critical, "max_retries": retries}
    if "command" not in keys and "execution_method" not in keys:
        table.update(execution_method="python", callable=f"{MOD}:act")
    table.update(keys)
    extra = [{}] * backups if isinstance(backups, int) else backups
    table["backups"] = [
        {"id": n, "description": f"backup way {n}",
         "trigger_condition": "primary_failure" if n == 1 else f"backup_{n - 1}_failure",
         "execution_method": "python", "callable": f"{MOD}:act", **more}
        for n, more in enumerate(extra, start=1)]
    return table


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def to_toml(sections: dict[str, dict[str, Any]], tasks: list[list[dict[str, Any]]]) -> str:
    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_value(v)}" for k, v in table.items()]
    for number, steps in enumerate(tasks, start=1):
        lines += ["[[tasks]]", f"id = {number}", f'description = "task {number}"']
        for table in steps:
            lines.append("[[tasks.steps]]")
            lines += [f"{k} = {_value(v)}" for k, v in table.items() if k != "backups"]
            for backup in table["backups"]:
                lines.append("[[tasks.steps.backups]]")
                lines += [f"{k} = {_value(v)}" for k, v in backup.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Run:
    result: RunResult
    events: list[ev.Event]
    sleeps: list[float]
    human: ScriptedHuman | None

    @property
    def code(self) -> int:
        return self.result.exit_code

    def named(self, *names: str) -> list[ev.Event]:
        return [e for e in self.events if e.name in names]

    def flow(self, *names: str) -> list[tuple[Any, ...]]:
        """The events (all but bookkeeping, or only ``names``) as short tuples."""
        skip = ("run-opened", "validation-summary", "mode-selected", "execution-planned",
                "gate-closed",
                "notepad-updated", "run-resumed")
        return [brief(e) for e in self.events
                if (e.name in names if names else e.name not in skip)]


def brief(e: ev.Event) -> tuple[Any, ...]:
    """One event as a tuple of the fields the rules are about."""
    match e:
        case ev.TaskStarted():
            return ("task-started", e.task)
        case ev.TaskEnded():
            return ("task-ended", e.task, e.status)
        case ev.StepStarted():
            return ("step-started", e.step, e.error_propagation_decision)
        case ev.AttemptStarted():
            return ("attempt-started", e.step, e.method, e.attempt)
        case ev.AttemptEnded():
            return ("attempt-ended", e.step, e.method, e.attempt, e.outcome, e.verdict)
        case ev.RetryScheduled():
            return ("retry-scheduled", e.step, e.method)
        case ev.BackupTriggered():
            return ("backup-triggered", e.step, e.backup, e.trigger)
        case ev.StepEnded():
            return ("step-ended", e.step, e.status, e.method_used)
        case ev.StepReopened():
            return ("step-reopened", e.step, e.start_method)
        case ev.FailureResolved():
            return ("failure-resolved", e.step, e.how)
        case ev.Escalated():
            return ("escalated", e.step, tuple(e.reasons))
        case ev.GateRequested():
            return ("gate-requested", e.kind, e.step)
        case ev.GateAnswered():
            return ("gate-answered", e.gate, e.response, e.by)
        case ev.ModeSwitched():
            return ("mode-switched", e.from_mode, e.to_mode)
        case ev.CompletionVerified():
            return ("completion-verified", e.goal_achievement_status)
        case ev.RunPaused():
            return ("run-paused", e.gate)
        case ev.RunEnded():
            return ("run-ended", e.status, e.goal_achievement_status)
    return (e.name,)


class SpecDir:
    """A spec folder with its steps module, plan and call log; runs and resumes it."""

    def __init__(self, root: Path, tasks: list[list[dict[str, Any]]], *, mode: str = "silent",
                 plan: dict[str, list[Any]] | None = None,
                 **sections: dict[str, Any]) -> None:
        self.module = f"steps_{uuid.uuid4().hex}"
        self.folder = root / "spec"
        self.folder.mkdir()
        self.state_dir = root / ".specs"
        base: dict[str, dict[str, Any]] = {
            "meta": {"goal_descriptor": "rules"},
            "goal": {"description": "Exercise the engine's rules"},
            "execution": {"default_mode": mode},
            "knowledge_capture": {"enabled": False},
            "retry": {"backoff_base_seconds": 2.0},
        }
        for name, table in sections.items():
            base[name] = {**base.get(name, {}), **table}
        text = to_toml(base, tasks).replace(MOD, self.module)
        (self.folder / "parameters_rules.toml").write_text(text)
        (self.folder / f"{self.module}.py").write_text(STEPS_PY)
        self.set_plan(plan or {})

    def set_plan(self, plan: dict[str, list[Any]]) -> None:
        (self.folder / "plan.json").write_text(json.dumps(plan))

    def calls(self) -> list[str]:
        log = self.folder / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line)["key"] for line in log.read_text().splitlines()]

    def call_records(self) -> list[dict[str, Any]]:
        log = self.folder / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()]

    def _runner(self, answers: list[str] | None, options: dict[str, Any],
                log: list[ev.Event], sleeps: list[float]) -> tuple[Runner, ScriptedHuman | None]:
        human = ScriptedHuman(answers) if answers is not None else None
        opts = RunOptions(state_dir=self.state_dir, no_input=human is None, fsync_interval=60,
                          **options)

        async def fake_sleep(delay: float) -> None:
            sleeps.append(delay)

        runner = Runner(load_spec(self.folder, project=False), opts, human=human,
                        subscribers=[lambda event, state: log.append(event)],
                        sleep=fake_sleep, rng=random.Random(0))
        return runner, human

    def run(self, answers: list[str] | None = None, **options: Any) -> Run:
        """A new run; ``answers`` makes it interactive (a ScriptedHuman), else headless."""
        log: list[ev.Event] = []
        sleeps: list[float] = []
        runner, human = self._runner(answers, options, log, sleeps)
        result = asyncio.run(runner.start())
        if human is not None:
            assert human.answers == [], f"unused answers: {human.answers}"
        return Run(result, log, sleeps, human)

    def resume(self, run_dir: Path, answers: list[str] | None = None, **options: Any) -> Run:
        """Continue a run in a new Runner on a freshly loaded spec (as `specs resume`)."""
        log: list[ev.Event] = []
        sleeps: list[float] = []
        runner, human = self._runner(answers, options, log, sleeps)
        result = asyncio.run(runner.resume(run_dir, runs.read_run(run_dir)))
        return Run(result, log, sleeps, human)


@pytest.fixture
def make(tmp_path: Path) -> Any:
    counter = iter(range(1000))

    def build(tasks: list[list[dict[str, Any]]], **keys: Any) -> SpecDir:
        root = tmp_path / f"s{next(counter)}"
        root.mkdir()
        return SpecDir(root, tasks, **keys)

    return build


# == R-RETRY: the method ladder ===============================================================


def attempts(run: Run) -> list[tuple[str, int, str]]:
    return [(e.method, e.attempt, e.outcome) for e in run.named("attempt-ended")]


def test_ladder_without_backups_primary_gets_one_plus_max_retries(make: Any) -> None:
    spec = make([[step(1, retries=2)]], plan={"1.1:primary": ["fail"]})
    run = spec.run()
    assert run.flow() == [
        ("task-started", "1"),
        ("step-started", "1.1", "none"),
        ("attempt-started", "1.1", "primary", 1),
        ("attempt-ended", "1.1", "primary", 1, "failure", "unchecked"),
        ("attempt-started", "1.1", "primary", 2),
        ("attempt-ended", "1.1", "primary", 2, "failure", "unchecked"),
        ("attempt-started", "1.1", "primary", 3),
        ("attempt-ended", "1.1", "primary", 3, "failure", "unchecked"),
        ("step-ended", "1.1", "failed", None),
        ("task-ended", "1", "completed_with_failures"),
        ("completion-verified", "PARTIAL"),
        ("run-ended", "completed", "PARTIAL"),
    ]
    assert spec.calls() == ["1.1:primary"] * 3
    assert run.code == 1
    assert run.result.state.steps["1.1"].retry_count == 2


def test_ladder_with_one_backup(make: Any) -> None:
    spec = make([[step(1, retries=1, backups=1)]],
                plan={"1.1:primary": ["fail"], "1.1:backup_1": ["ok"]})
    run = spec.run()
    assert run.flow("attempt-ended", "backup-triggered", "step-ended") == [
        ("attempt-ended", "1.1", "primary", 1, "failure", "unchecked"),
        ("attempt-ended", "1.1", "primary", 2, "failure", "unchecked"),
        ("backup-triggered", "1.1", 1, "primary_failure"),
        ("attempt-ended", "1.1", "backup_1", 1, "success", "unchecked"),
        ("step-ended", "1.1", "completed", "backup_1"),
    ]
    (trigger,) = run.named("backup-triggered")
    assert isinstance(trigger, ev.BackupTriggered)
    assert trigger.failure_reasons == {"primary": "1.1:primary broke"}
    assert "primary" in trigger.justification and "1.1:primary broke" in trigger.justification
    st = run.result.state.steps["1.1"]
    assert (st.method_used, st.retry_count, st.backups_triggered) == ("backup_1", 1, [1])
    assert st.justification["primary_failure_reason"] == "1.1:primary broke"
    assert run.code == 0 and run.result.goal == "ACHIEVED"


def test_ladder_with_two_backups_each_with_its_own_retries(make: Any) -> None:
    spec = make([[step(1, retries=0, backups=[{"max_retries": 1}, {}])]],
                plan={"1.1:primary": ["fail"], "1.1:backup_1": ["fail"],
                      "1.1:backup_2": ["ok"]})
    run = spec.run()
    assert run.flow("attempt-ended", "backup-triggered", "step-ended") == [
        ("attempt-ended", "1.1", "primary", 1, "failure", "unchecked"),
        ("backup-triggered", "1.1", 1, "primary_failure"),
        ("attempt-ended", "1.1", "backup_1", 1, "failure", "unchecked"),
        ("attempt-ended", "1.1", "backup_1", 2, "failure", "unchecked"),
        ("backup-triggered", "1.1", 2, "backup_1_failure"),
        ("attempt-ended", "1.1", "backup_2", 1, "success", "unchecked"),
        ("step-ended", "1.1", "completed", "backup_2"),
    ]
    second = run.named("backup-triggered")[1]
    assert isinstance(second, ev.BackupTriggered)
    # R-RETRY-4: the justification lists every earlier failure reason
    assert second.failure_reasons == {"primary": "1.1:primary broke",
                                      "backup_1": "1.1:backup_1 broke"}
    assert "backup_1" in second.justification and "1.1:backup_1 broke" in second.justification
    st = run.result.state.steps["1.1"]
    first = run.named("backup-triggered")[0]
    assert isinstance(first, ev.BackupTriggered)
    # every backup's justification is kept; the latest is also under backup_justification
    assert st.justification == {
        "trigger": "backup_1_failure", "backup_justification": second.justification,
        "backup_1_justification": first.justification,
        "backup_2_justification": second.justification,
        "primary_failure_reason": "1.1:primary broke",
        "backup_1_failure_reason": "1.1:backup_1 broke"}
    assert (st.method_used, st.retry_count) == ("backup_2", 0)
    # the failure reasons reach the next attempt's context
    records = spec.call_records()
    assert records[-1]["reasons"] == {"primary": "1.1:primary broke",
                                      "backup_1": "1.1:backup_1 broke"}


def test_every_method_failing_fails_the_step(make: Any) -> None:
    spec = make([[step(1, retries=1, backups=2)]],
                plan={"1.1:primary": ["fail"], "1.1:backup_1": ["fail"],
                      "1.1:backup_2": ["fail"]})
    run = spec.run()
    assert spec.calls() == ["1.1:primary", "1.1:primary", "1.1:backup_1", "1.1:backup_2"]
    (ended,) = run.named("step-ended")
    assert isinstance(ended, ev.StepEnded)
    assert (ended.status, ended.method_used) == ("failed", None)
    assert "backup_2" in ended.message and "1.1:backup_2 broke" in ended.message


def test_the_primary_succeeding_on_a_retry(make: Any) -> None:
    spec = make([[step(1, retries=3, backups=1)]], plan={"1.1:primary": ["fail", "fail", "ok"]})
    run = spec.run()
    st = run.result.state.steps["1.1"]
    assert (st.status, st.method_used, st.retry_count, st.backups_triggered) == (
        "completed", "primary", 2, [])
    assert spec.calls() == ["1.1:primary"] * 3
    assert run.named("backup-triggered") == []


# == R-RETRY-2 / SPEC_FORMAT §1.3: backoff only for transient failures ========================


def test_transient_failures_back_off_exponentially_with_jitter(make: Any) -> None:
    spec = make([[step(1, retries=3)]],
                plan={"1.1:primary": ["transient", "transient", "transient", "ok"]},
                retry={"backoff_base_seconds": 2.0, "backoff_factor": 2.0,
                       "backoff_max_seconds": 60.0})
    run = spec.run()
    assert run.flow("attempt-ended", "retry-scheduled", "step-ended") == [
        ("attempt-ended", "1.1", "primary", 1, "failure", "unchecked"),
        ("retry-scheduled", "1.1", "primary"),
        ("attempt-ended", "1.1", "primary", 2, "failure", "unchecked"),
        ("retry-scheduled", "1.1", "primary"),
        ("attempt-ended", "1.1", "primary", 3, "failure", "unchecked"),
        ("retry-scheduled", "1.1", "primary"),
        ("attempt-ended", "1.1", "primary", 4, "success", "unchecked"),
        ("step-ended", "1.1", "completed", "primary"),
    ]
    assert len(run.sleeps) == 3
    for delay, full in zip(run.sleeps, [2.0, 4.0, 8.0], strict=True):
        assert 0.5 * full <= delay <= full
    scheduled = [e.delay_s for e in run.named("retry-scheduled")
                 if isinstance(e, ev.RetryScheduled)]
    assert scheduled == [round(d, 3) for d in run.sleeps]
    assert all(e.transient for e in run.named("attempt-ended")[:3]
               if isinstance(e, ev.AttemptEnded))


def test_backoff_is_capped(make: Any) -> None:
    spec = make([[step(1, retries=3)]], plan={"1.1:primary": ["transient"]},
                retry={"backoff_base_seconds": 10.0, "backoff_factor": 10.0,
                       "backoff_max_seconds": 30.0, "jitter": False})
    run = spec.run()
    assert run.sleeps == [10.0, 30.0, 30.0]  # no wait after the last attempt


def test_substantive_failure_retries_at_once_with_the_reason_in_context(make: Any) -> None:
    # attempt 1: transient (backoff); attempt 2: the expected file is missing (a check
    # mismatch: retried at once); attempt 3 writes the file
    spec = make([[step(1, retries=2, expected_files=["out.txt"])]],
                plan={"1.1:primary": ["transient", "ok", "touch:out.txt"]})
    run = spec.run()
    assert run.flow("attempt-ended", "retry-scheduled", "step-ended") == [
        ("attempt-ended", "1.1", "primary", 1, "failure", "unchecked"),
        ("retry-scheduled", "1.1", "primary"),
        ("attempt-ended", "1.1", "primary", 2, "failure", "mismatch"),
        ("attempt-ended", "1.1", "primary", 3, "success", "match"),
        ("step-ended", "1.1", "completed", "primary"),
    ]
    assert len(run.sleeps) == 1
    reason = "expected file missing or empty: out.txt"
    assert spec.call_records()[2]["reasons"] == {"primary": reason}


def test_a_transient_failure_on_the_last_try_moves_on_without_waiting(make: Any) -> None:
    spec = make([[step(1, retries=0, backups=1)]],
                plan={"1.1:primary": ["transient"], "1.1:backup_1": ["ok"]})
    run = spec.run()
    assert run.sleeps == []
    assert run.result.state.steps["1.1"].method_used == "backup_1"


@pytest.mark.parametrize(("code", "transient"), [(75, True), (3, False)])
def test_retry_on_exit_codes_marks_transient_failures(make: Any, code: int,
                                                      transient: bool) -> None:
    spec = make([[step(1, retries=1, command=f"exit {code}", retry_on_exit_codes=[75])]])
    run = spec.run()
    assert [(e.exit_code, e.transient) for e in run.named("attempt-ended")
            if isinstance(e, ev.AttemptEnded)] == [(code, transient)] * 2
    assert len(run.named("retry-scheduled")) == (1 if transient else 0)
    assert len(run.sleeps) == (1 if transient else 0)


# == R-VER-1: expected-output checks ==========================================================


def test_verify_commands_drive_the_retry(make: Any) -> None:
    spec = make([[step(1, retries=1, verify=["test -f flag"])]],
                plan={"1.1:primary": ["ok", "touch:flag"]})
    run = spec.run()
    ended = [e for e in run.named("attempt-ended") if isinstance(e, ev.AttemptEnded)]
    assert [(e.outcome, e.verdict) for e in ended] == [("failure", "mismatch"),
                                                       ("success", "match")]
    assert ended[0].failure_reason is not None
    assert ended[0].failure_reason.startswith("verify `test -f flag` failed (exit code 1)")
    assert run.sleeps == []
    st = run.result.state.steps["1.1"]
    assert (st.status, st.expected_output_match) == ("completed", True)


def test_expected_files_mismatch_exhausts_to_the_backup(make: Any) -> None:
    spec = make([[step(1, retries=0, backups=1, expected_files=["a.txt"])]],
                plan={"1.1:primary": ["ok"], "1.1:backup_1": ["touch:a.txt"]})
    run = spec.run()
    assert run.flow("attempt-ended", "step-ended") == [
        ("attempt-ended", "1.1", "primary", 1, "failure", "mismatch"),
        ("attempt-ended", "1.1", "backup_1", 1, "success", "match"),
        ("step-ended", "1.1", "completed", "backup_1"),
    ]


SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def test_output_schema_checks_a_callables_structured_output(make: Any) -> None:
    spec = make([[step(1, retries=2, output_schema=SCHEMA)]],
                plan={"1.1:primary": [{"n": "one"}, {"m": 1}, {"n": 1}]})
    run = spec.run()
    ended = [e for e in run.named("attempt-ended") if isinstance(e, ev.AttemptEnded)]
    assert [(e.outcome, e.verdict) for e in ended] == [
        ("failure", "mismatch"), ("failure", "mismatch"), ("success", "match")]
    assert "at n" in (ended[0].failure_reason or "")
    assert "'n' is a required property" in (ended[1].failure_reason or "")
    st = run.result.state.steps["1.1"]
    assert (st.status, st.expected_output_match, st.output) == ("completed", True, {"n": 1})


def test_partial_verdict_completes_with_expected_output_match_false(make: Any) -> None:
    spec = make([[step(1, retries=2, backups=1)]], plan={"1.1:primary": ["partial"]})
    run = spec.run()
    assert run.flow("attempt-ended", "step-ended") == [
        ("attempt-ended", "1.1", "primary", 1, "success", "partial"),
        ("step-ended", "1.1", "completed", "primary"),
    ]
    (ended,) = run.named("step-ended")
    assert isinstance(ended, ev.StepEnded) and ended.expected_output_match is False
    assert run.result.goal == "ACHIEVED"


# == R-CRIT: critical vs non-critical failures, per strategy and mode ========================


HALT, CONTINUE, GATE = "halt", "continue", "gate"


@pytest.mark.parametrize(("mode", "strategy", "expected"), [
    ("silent", None, HALT),  # silent defaults to halt_on_critical
    ("silent", "halt_on_critical", HALT),
    ("silent", "continue_and_log", CONTINUE),
    ("silent", "collaborative_review", GATE),
    ("dynamic", None, GATE),  # dynamic defaults to collaborative_review
    ("dynamic", "halt_on_critical", HALT),
    ("dynamic", "continue_and_log", CONTINUE),
    ("collaborative", None, GATE),
    ("collaborative", "halt_on_critical", GATE),  # collaborative/education always escalate
    ("collaborative", "continue_and_log", GATE),
    ("education", None, GATE),
    ("education", "halt_on_critical", GATE),
    ("education", "continue_and_log", GATE),
])
def test_a_critical_failure_under_each_strategy_and_mode(make: Any, mode: str,
                                                         strategy: str | None,
                                                         expected: str) -> None:
    ep = {"propagation_strategy": strategy} if strategy else {}
    spec = make([[step(1, critical=True), step(2)], [step(1)]], mode=mode,
                plan={"1.1:primary": ["fail"]}, error_propagation=ep)
    run = spec.run(yes=True)  # --yes passes the approval gates, never a failure decision
    tail = run.flow()[run.flow().index(("step-ended", "1.1", "failed", None)) + 1:]
    if expected == HALT:
        assert tail == [("escalated", "1.1", ("critical_failure",)),
                        ("run-ended", "halted", "NOT_ACHIEVED")]  # as of the halt
        assert (run.code, run.result.status) == (1, "halted")
        assert spec.calls() == ["1.1:primary"]
    elif expected == CONTINUE:
        assert ("step-started", "1.2", "continue_with_warning") in tail
        assert ("step-started", "2.1", "continue_with_warning") in tail
        assert ("task-ended", "1", "failed") in tail
        assert tail[-2:] == [("completion-verified", "NOT_ACHIEVED"),
                             ("run-ended", "completed", "NOT_ACHIEVED")]
        assert not run.named("gate-requested", "escalated")
        assert run.code == 1
        assert spec.calls() == ["1.1:primary", "1.2:primary", "2.1:primary"]
    else:
        assert tail == [("gate-requested", "critical_failure", "1.1"),
                        ("run-paused", "critical_failure:1.1:1")]
        assert (run.code, run.result.status) == (3, "awaiting_human")
        assert spec.calls() == ["1.1:primary"]


@pytest.mark.parametrize(("mode", "strategy"), [
    ("silent", "halt_on_critical"), ("dynamic", "collaborative_review"),
    ("collaborative", None), ("education", None), ("silent", "continue_and_log"),
])
def test_a_non_critical_failure_is_logged_and_the_run_goes_on(make: Any, mode: str,
                                                              strategy: str | None) -> None:
    ep = {"propagation_strategy": strategy} if strategy else {}
    spec = make([[step(1), step(2, critical=True)]], mode=mode,
                plan={"1.1:primary": ["fail"]}, error_propagation=ep)
    run = spec.run(yes=True)
    assert not run.named("escalated", "run-paused")
    assert [g for g in run.flow("gate-requested") if g[1] == "critical_failure"] == []
    assert run.flow("step-started", "step-ended") == [
        ("step-started", "1.1", "none"), ("step-ended", "1.1", "failed", None),
        ("step-started", "1.2", "none"), ("step-ended", "1.2", "completed", "primary")]
    assert (run.result.goal, run.code) == ("PARTIAL", 1)
    assert run.result.state.tasks["1"].status == "completed_with_failures"


# == R-MODE: gates per mode ===================================================================


GATE_STEPS = [step(1, critical=True), step(2, backups=1), step(3), step(4, critical=True,
              backups=1), step(5, mode="collaborative")]


@pytest.mark.parametrize(("mode", "pace", "gated"), [
    ("silent", None, [("before_step", "1.5")]),
    ("dynamic", None, [("before_step", "1.5")]),
    ("collaborative", None, [("before_step", "1.1"), ("before_step", "1.4"),
                             ("before_step", "1.5")]),
    ("education", "slow", [("education", "1.1"), ("education", "1.2"), ("education", "1.3"),
                           ("education", "1.4"), ("before_step", "1.5")]),
    ("education", "moderate", [("education", "1.1"), ("education", "1.2"),
                               ("education", "1.4"), ("before_step", "1.5")]),
    ("education", "fast", [("education", "1.4"), ("before_step", "1.5")]),
])
def test_gates_in_each_mode(make: Any, mode: str, pace: str | None,
                            gated: list[tuple[str, str]]) -> None:
    edu = {"education": {"enabled": True, "learning_pace": pace}} if pace else {}
    spec = make([GATE_STEPS], mode=mode, **edu)
    run = spec.run(yes=True)
    assert run.result.state.run_mode == mode
    # each gate comes just before its step starts, and --yes approves it
    flow = run.flow("gate-requested", "gate-answered", "step-started")
    expected: list[tuple[Any, ...]] = []
    for n in range(1, 6):
        ref = f"1.{n}"
        kind = next((k for k, r in gated if r == ref), None)
        if kind:
            expected += [("gate-requested", kind, ref),
                         ("gate-answered", f"{kind}:{ref}", "approve", "auto")]
        expected.append(("step-started", ref, "none"))
    assert flow == expected
    assert (run.code, run.result.goal) == (0, "ACHIEVED")


def test_education_is_the_mode_when_education_is_enabled_without_a_default_mode(
        make: Any) -> None:
    spec = make([[step(1, critical=True, backups=1)]], education={"enabled": True})
    text = (spec.folder / "parameters_rules.toml").read_text()
    (spec.folder / "parameters_rules.toml").write_text(
        text.replace('default_mode = "silent"\n', ""))
    run = spec.run(yes=True)
    (selected,) = [e for e in run.events if isinstance(e, ev.ModeSelected)]
    assert (selected.mode, selected.selected_by) == ("education", "spec")
    assert run.flow("gate-requested") == [("gate-requested", "education", "1.1")]


def test_headless_collaborative_run_pauses_before_the_first_critical_step(make: Any) -> None:
    spec = make([[step(1), step(2, critical=True)]], mode="collaborative")
    run = spec.run()
    assert run.flow()[-3:] == [("step-ended", "1.1", "completed", "primary"),
                               ("gate-requested", "before_step", "1.2"),
                               ("run-paused", "before_step:1.2")]
    assert (run.code, run.result.status) == (3, "awaiting_human")
    assert spec.calls() == ["1.1:primary"]


RESPONSE_STEPS = [step(1, critical=True, backups=1), step(2, critical=True)]


@pytest.mark.parametrize(("answers", "calls", "method", "status"), [
    (["approve", "approve"], ["1.1:primary", "1.2:primary"], "primary", "completed"),
    (["guidance:use the CSV export", "approve"], ["1.1:primary", "1.2:primary"],
     "human_guided", "completed"),
    (["choose:backup_1", "approve"], ["1.1:backup_1", "1.2:primary"], "backup_1",
     "completed"),
    (["skip", "approve"], ["1.2:primary"], None, "skipped"),
    (["switch_mode:silent"], ["1.1:primary", "1.2:primary"], "primary", "completed"),
    (["abort"], [], None, "pending"),
])
def test_responses_at_a_gate_before_a_step(make: Any, answers: list[str], calls: list[str],
                                           method: str | None, status: str) -> None:
    spec = make([RESPONSE_STEPS], mode="collaborative")
    run = spec.run(answers)
    st = run.result.state.steps["1.1"]
    assert spec.calls() == calls
    assert (st.status, st.method_used) == (status, method)
    answered = [e.response for e in run.named("gate-answered")
                if isinstance(e, ev.GateAnswered)]
    assert answered == answers
    verb = answers[0].partition(":")[0]
    if verb == "guidance":
        assert spec.call_records()[0]["guidance"] == "use the CSV export"
        (started,) = [e for e in run.named("attempt-started")
                      if isinstance(e, ev.AttemptStarted) and e.step == "1.1"]
        assert started.guidance == "use the CSV export"
    if verb == "choose":
        assert run.flow("backup-triggered", "attempt-ended")[:2] == [
            ("backup-triggered", "1.1", 1, "human_choice"),
            ("attempt-ended", "1.1", "backup_1", 1, "success", "unchecked")]
    if verb == "skip":
        (ended,) = [e for e in run.named("step-ended")
                    if isinstance(e, ev.StepEnded) and e.step == "1.1"]
        assert (ended.skip_reason, ended.resolved) == ("human", True)
        assert run.result.goal == "PARTIAL"  # a critical step skipped counts against completion
    if verb == "switch_mode":
        assert run.flow("mode-switched", "gate-requested") == [
            ("gate-requested", "before_step", "1.1"),
            ("mode-switched", "collaborative", "silent")]  # and no gate before 1.2
        assert run.result.state.mode == "silent"
    if verb == "abort":
        assert run.flow()[-1] == ("run-ended", "aborted", "NOT_ACHIEVED")
        assert run.code == 1
    elif verb != "skip":
        assert (run.code, run.result.goal) == (0, "ACHIEVED")


def test_a_collaborative_step_gates_even_in_a_silent_run(make: Any) -> None:
    spec = make([[step(1, critical=True), step(2, mode="collaborative")]], mode="silent")
    run = spec.run(["guidance:check the totals twice"])
    assert run.flow("gate-requested") == [("gate-requested", "before_step", "1.2")]
    assert run.result.state.steps["1.2"].method_used == "human_guided"
    assert spec.call_records()[1]["guidance"] == "check the totals twice"


AFTER_STEPS = [step(1, critical=True, backups=1), step(2)]


@pytest.mark.parametrize(("answer", "plan", "calls", "status", "method", "goal"), [
    ("retry", {"1.1:primary": ["fail", "ok"]},
     ["1.1:primary", "1.1:backup_1", "1.1:primary", "1.2:primary"], "completed", "primary",
     "ACHIEVED"),
    ("guidance:read the manual", {"1.1:primary": ["fail", "ok"]},
     ["1.1:primary", "1.1:backup_1", "1.1:primary", "1.2:primary"], "completed",
     "human_guided", "ACHIEVED"),
    ("choose:backup_1", {"1.1:backup_1": ["fail", "ok"]},
     ["1.1:primary", "1.1:backup_1", "1.1:backup_1", "1.2:primary"], "completed", "backup_1",
     "ACHIEVED"),
    ("accept_failure", {}, ["1.1:primary", "1.1:backup_1", "1.2:primary"], "failed", None,
     "NOT_ACHIEVED"),
    ("skip", {}, ["1.1:primary", "1.1:backup_1", "1.2:primary"], "skipped", None, "PARTIAL"),
    ("abort", {}, ["1.1:primary", "1.1:backup_1"], "failed", None, "NOT_ACHIEVED"),
])
def test_responses_after_a_critical_failure(make: Any, answer: str, plan: dict[str, Any],
                                            calls: list[str], status: str,
                                            method: str | None, goal: str | None) -> None:
    plan = {"1.1:primary": ["fail"], "1.1:backup_1": ["fail"], **plan}
    spec = make([AFTER_STEPS], mode="dynamic", plan=plan)
    run = spec.run([answer])
    assert spec.calls() == calls
    st = run.result.state.steps["1.1"]
    assert (st.status, st.method_used, run.result.goal) == (status, method, goal)
    assert run.code == (0 if goal == "ACHIEVED" else 1)
    flow = run.flow()
    gate = flow.index(("gate-requested", "critical_failure", "1.1"))
    assert flow[gate + 1] == ("gate-answered", "critical_failure:1.1:1", answer, "user")
    verb, _, arg = answer.partition(":")
    if verb in ("retry", "guidance", "choose"):
        assert flow[gate + 2] == ("step-reopened", "1.1", arg if verb == "choose" else None)
        assert st.round == 2
        reopened = flow[gate + 2:]
        assert next(e for e in reopened if e[0] == "attempt-started") == (
            "attempt-started", "1.1", "backup_1" if verb == "choose" else "primary", 1)
    if verb == "choose":  # the record says a human chose the backup, not that primary failed
        assert run.flow("backup-triggered") == [("backup-triggered", "1.1", 1, "primary_failure"),
                                                ("backup-triggered", "1.1", 1, "human_choice")]
    if verb == "guidance":
        assert spec.call_records()[2]["guidance"] == "read the manual"
    if verb == "accept_failure":
        assert flow[gate + 2] == ("failure-resolved", "1.1", "accept_failure")
        assert ("step-started", "1.2", "none") in flow  # resolved: no longer blocking
        assert run.result.state.tasks["1"].status == "completed_with_failures"
    if verb == "abort":
        assert flow[-1] == ("run-ended", "aborted", "NOT_ACHIEVED")


def test_retry_after_a_chosen_backup_runs_the_whole_ladder_again(make: Any) -> None:
    spec = make([[step(1, critical=True, backups=1)]], mode="collaborative",
                plan={"1.1:backup_1": ["fail"], "1.1:primary": ["ok"]})
    run = spec.run(["choose:backup_1", "retry"])
    assert spec.calls() == ["1.1:backup_1", "1.1:primary"]
    assert run.result.state.steps["1.1"].method_used == "primary"


def test_yes_approves_gates_but_not_a_critical_failure_decision(make: Any) -> None:
    spec = make([[step(1, critical=True), step(2)]], mode="collaborative",
                plan={"1.1:primary": ["fail"]})
    run = spec.run(yes=True)
    assert run.flow("gate-requested", "gate-answered", "run-paused") == [
        ("gate-requested", "before_step", "1.1"),
        ("gate-answered", "before_step:1.1", "approve", "auto"),
        ("gate-requested", "critical_failure", "1.1"),
        ("run-paused", "critical_failure:1.1:1"),
    ]
    assert run.code == 3


# == R-ESC: escalation ========================================================================


def escalations(run: Run) -> list[tuple[Any, ...]]:
    return run.flow("escalated", "gate-requested", "gate-answered", "run-paused")


def test_consecutive_failures_escalate_in_dynamic_mode(make: Any) -> None:
    spec = make([[step(1), step(2), step(3)]], mode="dynamic",
                plan={"1.1:primary": ["fail"], "1.2:primary": ["fail"]},
                execution={"escalation_threshold": 2}, error_propagation={"failure_threshold": 0})
    run = spec.run()
    assert run.flow()[-4:] == [
        ("step-ended", "1.2", "failed", None),
        ("escalated", "1.2", ("consecutive_failures",)),
        ("gate-requested", "escalation", "1.2"),
        ("run-paused", "escalation:1"),
    ]
    (escalated,) = run.named("escalated")
    assert isinstance(escalated, ev.Escalated)
    assert escalated.measurements == {"consecutive_failures": 2}
    assert escalated.reset == ["consecutive_failures"] and escalated.from_mode == "dynamic"
    assert run.code == 3
    # answered, the run goes on in the run mode
    again = make([[step(1), step(2), step(3)]], mode="dynamic",
                 plan={"1.1:primary": ["fail"], "1.2:primary": ["fail"]},
                 execution={"escalation_threshold": 2},
                 error_propagation={"failure_threshold": 0}).run(["approve"])
    assert escalations(again) == [("escalated", "1.2", ("consecutive_failures",)),
                                  ("gate-requested", "escalation", "1.2"),
                                  ("gate-answered", "escalation:1", "approve", "user")]
    assert again.result.state.steps["1.3"].status == "completed"
    assert again.result.state.mode == "dynamic"


def test_consecutive_failures_do_not_escalate_in_silent_mode(make: Any) -> None:
    spec = make([[step(1), step(2), step(3)]], mode="silent",
                plan={"1.1:primary": ["fail"], "1.2:primary": ["fail"]},
                execution={"escalation_threshold": 2}, error_propagation={"failure_threshold": 0})
    run = spec.run()
    assert escalations(run) == []
    assert run.result.goal == "PARTIAL"


def test_failure_threshold_per_task_escalates_in_silent_mode(make: Any) -> None:
    spec = make([[step(1), step(2), step(3), step(4)]], mode="silent",
                plan={"1.1:primary": ["fail"], "1.3:primary": ["fail"]},
                error_propagation={"failure_threshold": 2})
    run = spec.run(["switch_mode:dynamic"])
    assert escalations(run) == [
        ("escalated", "1.3", ("failure_threshold",)),
        ("gate-requested", "escalation", "1.3"),
        ("gate-answered", "escalation:1", "switch_mode:dynamic", "user"),
    ]
    assert run.flow("mode-switched") == [("mode-switched", "silent", "dynamic")]
    assert run.result.state.steps["1.4"].mode == "dynamic"


def test_threshold_zero_disables_the_counters(make: Any) -> None:
    spec = make([[step(n) for n in range(1, 5)]], mode="dynamic",
                plan={f"1.{n}:primary": ["fail"] for n in range(1, 5)},
                execution={"escalation_threshold": 0}, error_propagation={"failure_threshold": 0})
    run = spec.run()
    assert escalations(run) == []
    assert run.result.state.consecutive_failures == 4


def test_counters_reset_at_task_start(make: Any) -> None:
    spec = make([[step(1), step(2)], [step(1), step(2)]], mode="dynamic",
                plan={"1.2:primary": ["fail"], "2.1:primary": ["fail"]},
                execution={"escalation_threshold": 2}, error_propagation={"failure_threshold": 2})
    run = spec.run()
    assert escalations(run) == []
    assert run.code == 1 and run.result.goal == "PARTIAL"


def test_backup_depletion_over_the_five_step_window(make: Any) -> None:
    spec = make([[step(n, backups=1) for n in range(1, 7)]], mode="dynamic",
                plan={f"1.{n}:primary": ["fail"] for n in range(1, 7)})
    run = spec.run(yes=True)
    assert escalations(run) == [
        ("escalated", "1.5", ("backup_depletion",)),
        ("gate-requested", "escalation", "1.5"),
        ("gate-answered", "escalation:1", "approve", "auto"),
    ]  # the window resets after it fired: 1.6 alone does not fire again
    (escalated,) = run.named("escalated")
    assert isinstance(escalated, ev.Escalated)
    assert escalated.measurements == {"window_backup_rate": 1.0}
    assert "backup_1" in escalated.recommendation
    assert run.result.goal == "ACHIEVED"


def test_confidence_degradation_over_the_five_step_window(make: Any) -> None:
    spec = make([[step(n) for n in range(1, 6)]], mode="dynamic",
                plan={f"1.{n}:primary": ["partial"] for n in (1, 3, 5)})
    run = spec.run(["approve"])
    assert escalations(run) == [
        ("escalated", "1.5", ("confidence_degradation",)),
        ("gate-requested", "escalation", "1.5"),
        ("gate-answered", "escalation:1", "approve", "user"),
    ]
    (escalated,) = run.named("escalated")
    assert isinstance(escalated, ev.Escalated)
    assert escalated.measurements == {"expected_output_match_rate": pytest.approx(0.4)}


@pytest.mark.parametrize(("raised", "fires"), [("ambiguous_intent", True), ("other", False)])
def test_a_named_escalation_trigger(make: Any, raised: str, fires: bool) -> None:
    spec = make([[step(1), step(2)]], mode="dynamic",
                plan={"1.1:primary": [f"escalate:{raised}"]},
                execution={"escalation_triggers": ["ambiguous_intent"]})
    run = spec.run()
    if fires:
        assert run.flow()[-3:] == [("escalated", "1.1", ("trigger:ambiguous_intent",)),
                                   ("gate-requested", "escalation", "1.1"),
                                   ("run-paused", "escalation:1")]
        assert run.code == 3
    else:
        assert escalations(run) == []
        assert run.code == 0


def test_a_retried_step_is_evaluated_for_escalation_once(make: Any) -> None:
    # 1.1 fails, the human retries it, the second round raises a named trigger: one
    # escalation (the re-run is one step, not two)
    spec = make([[step(1, critical=True), step(2)]], mode="dynamic",
                plan={"1.1:primary": ["fail", "escalate:ambiguous_intent"]},
                execution={"escalation_triggers": ["ambiguous_intent"]})
    run = spec.run(["retry", "approve"])
    assert escalations(run) == [
        ("gate-requested", "critical_failure", "1.1"),
        ("gate-answered", "critical_failure:1.1:1", "retry", "user"),
        ("escalated", "1.1", ("trigger:ambiguous_intent",)),
        ("gate-requested", "escalation", "1.1"),
        ("gate-answered", "escalation:1", "approve", "user"),
    ]
    assert run.code == 0


def test_a_reopened_step_counts_once_toward_the_failure_counters(make: Any) -> None:
    spec = make([[step(1, critical=True), step(2)]], mode="dynamic",
                plan={"1.1:primary": ["fail"], "1.2:primary": ["fail"]},
                execution={"escalation_threshold": 3}, error_propagation={"failure_threshold": 0})
    run = spec.run(["retry", "accept_failure"])
    # 1.1 failed twice (two rounds) and 1.2 once: two failed steps, below the threshold
    assert run.result.state.consecutive_failures == 2
    assert run.named("escalated") == []


# == R-MODE-5: headless pause and resume ======================================================


def test_headless_pause_approve_resume(make: Any) -> None:
    spec = make([[step(1), step(2, critical=True), step(3)]], mode="collaborative")
    first = spec.run()
    assert (first.code, first.result.status) == (3, "awaiting_human")
    assert first.flow()[-1] == ("run-paused", "before_step:1.2")
    run_dir = first.result.run_dir
    assert runs.summarize(runs.read_run(run_dir), run_dir.name).status == "awaiting_human"

    answer = runs.answer_gate(run_dir, "1.2", "approve")
    assert (answer.gate, answer.response, answer.by) == ("before_step:1.2", "approve", "cli")

    second = spec.resume(run_dir)
    assert second.flow() == [
        ("step-started", "1.2", "none"),
        ("attempt-started", "1.2", "primary", 1),
        ("attempt-ended", "1.2", "primary", 1, "success", "unchecked"),
        ("step-ended", "1.2", "completed", "primary"),
        ("step-started", "1.3", "none"),
        ("attempt-started", "1.3", "primary", 1),
        ("attempt-ended", "1.3", "primary", 1, "success", "unchecked"),
        ("step-ended", "1.3", "completed", "primary"),
        ("task-ended", "1", "completed"),
        ("completion-verified", "ACHIEVED"),
        ("run-ended", "completed", "ACHIEVED"),
    ]
    assert (second.code, second.result.status) == (0, "completed")
    assert spec.calls() == ["1.1:primary", "1.2:primary", "1.3:primary"]  # nothing twice
    # the log continues the first run's numbering
    assert second.events[0].seq == answer.seq + 1


def test_resume_after_a_critical_gate_decides_as_an_uninterrupted_run(make: Any) -> None:
    def build() -> SpecDir:
        return make([[step(1), step(2, critical=True), step(3)]], mode="dynamic",
                    plan={"1.1:primary": ["fail"], "1.2:primary": ["fail"]},
                    execution={"escalation_threshold": 2},
                    error_propagation={"failure_threshold": 0})

    live = build().run(["accept_failure", "approve"])

    spec = build()
    first = spec.run()
    assert first.flow()[-1] == ("run-paused", "critical_failure:1.2:1")
    runs.answer_gate(first.result.run_dir, "1.2", "accept_failure")
    second = spec.resume(first.result.run_dir)
    assert second.flow()[-1] == ("run-paused", "escalation:1")
    runs.answer_gate(first.result.run_dir, "1.2", "approve")
    third = spec.resume(first.result.run_dir)
    assert third.code == live.code == 1

    def decisions(events: list[ev.Event]) -> list[tuple[Any, ...]]:
        keep = ("step-ended", "escalated", "gate-requested", "failure-resolved", "run-ended")
        return [brief(e) for e in events if e.name in keep]

    assert decisions(first.events + second.events + third.events) == decisions(live.events)
    assert spec.calls() == ["1.1:primary", "1.2:primary", "1.3:primary"]


def test_resume_after_halt_on_critical_reopens_the_failed_step(make: Any) -> None:
    spec = make([[step(1), step(2, critical=True), step(3)]], mode="silent",
                plan={"1.2:primary": ["fail", "ok"]})
    first = spec.run()
    assert first.flow()[-2:] == [("escalated", "1.2", ("critical_failure",)),
                                 ("run-ended", "halted", "NOT_ACHIEVED")]
    assert first.code == 1
    second = spec.resume(first.result.run_dir)
    assert second.flow()[:4] == [
        ("step-reopened", "1.2", None),
        ("attempt-started", "1.2", "primary", 1),
        ("attempt-ended", "1.2", "primary", 1, "success", "unchecked"),
        ("step-ended", "1.2", "completed", "primary"),
    ]
    assert (second.code, second.result.goal) == (0, "ACHIEVED")
    assert spec.calls() == ["1.1:primary", "1.2:primary", "1.2:primary", "1.3:primary"]
    assert second.result.state.steps["1.2"].round == 2


def test_resume_reopens_a_failed_step_of_an_earlier_task(make: Any) -> None:
    # 1.1 fails; at its gate the human switches to silent, whose halt_on_critical then stops
    # the run before 2.1 (R-EP-3 "halt ... handles resume"); resuming re-runs 1.1
    spec = make([[step(1, critical=True)], [step(1)]], mode="dynamic",
                plan={"1.1:primary": ["fail", "ok"]})
    first = spec.run(["switch_mode:silent"])
    assert first.flow()[-3:] == [("task-ended", "1", "failed"), ("task-started", "2"),
                                 ("run-ended", "halted", "NOT_ACHIEVED")]
    second = spec.resume(first.result.run_dir)
    assert second.flow() == [
        ("step-reopened", "1.1", None),
        ("attempt-started", "1.1", "primary", 1),
        ("attempt-ended", "1.1", "primary", 1, "success", "unchecked"),
        ("step-ended", "1.1", "completed", "primary"),
        ("task-ended", "1", "completed"),
        ("step-started", "2.1", "none"),
        ("attempt-started", "2.1", "primary", 1),
        ("attempt-ended", "2.1", "primary", 1, "success", "unchecked"),
        ("step-ended", "2.1", "completed", "primary"),
        ("task-ended", "2", "completed"),
        ("completion-verified", "ACHIEVED"),
        ("run-ended", "completed", "ACHIEVED"),
    ]
    assert spec.calls() == ["1.1:primary", "1.1:primary", "2.1:primary"]


# == R-DONE: completion =======================================================================


@pytest.mark.parametrize(("plan", "checks", "answers", "goal", "code"), [
    ({}, [{"criterion": "the workspace exists", "command": "test -d ."}], None, "ACHIEVED", 0),
    ({"1.2:primary": ["fail"]}, [], None, "PARTIAL", 1),
    ({}, [{"criterion": "the flag file exists", "command": "test -f flag"}], None, "PARTIAL",
     1),
    ({"1.1:primary": ["fail"]}, [], ["accept_failure"], "NOT_ACHIEVED", 1),
])
def test_completion_status_and_exit_code(make: Any, plan: dict[str, Any],
                                         checks: list[dict[str, str]],
                                         answers: list[str] | None, goal: str,
                                         code: int) -> None:
    criteria = {"completion_criteria": {"checks": checks}} if checks else {}
    spec = make([[step(1, critical=True), step(2)]], mode="dynamic", plan=plan, **criteria)
    run = spec.run(answers)
    (verified,) = run.named("completion-verified")
    assert isinstance(verified, ev.CompletionVerified)
    assert verified.goal_achievement_status == goal
    assert verified.overall_status == ("PASS" if goal == "ACHIEVED" else "FAIL")
    assert run.flow()[-1] == ("run-ended", "completed", goal)
    assert (run.code, run.result.goal, run.result.status) == (code, goal, "completed")
    if checks:
        (result,) = verified.checks["criteria_checks"]
        assert result["passed"] is (goal == "ACHIEVED")
    if goal == "PARTIAL" and checks:
        assert verified.gaps == ["criterion not met: the flag file exists"]
    if goal == "NOT_ACHIEVED":
        assert "critical step 1.1 failed" in verified.gaps
        assert run.result.state.steps["1.1"].resolved  # accepted, still against completion
