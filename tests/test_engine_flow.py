"""The run loop's flow beyond the single step: trigger rules over declared dependencies and
``[[transitions]]`` loops (reference §5.3 (c); Airflow's trigger rule names)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from specs import events as ev
from specs.api import runs
from test_engine_rules import SpecDir, step


@pytest.fixture
def make(tmp_path: Path) -> Any:
    counter = iter(range(1000))

    def build(tasks: list[list[dict[str, Any]]], **keys: Any) -> SpecDir:
        root = tmp_path / f"s{next(counter)}"
        root.mkdir()
        return SpecDir(root, tasks, **keys)

    return build


def statuses(run: Any) -> dict[str, tuple[str, str | None]]:
    return {e.step: (e.status, e.skip_reason) for e in run.named("step-ended")}


@pytest.mark.parametrize(("rule", "expected"), [
    ("all_success", ("skipped", "upstream_failed")),
    ("all_done", ("completed", None)),
    ("none_failed_min_one_success", ("skipped", "upstream_failed")),
    ("one_failed", ("completed", None)),
])
def test_trigger_rules_when_a_dependency_failed(make: Any, rule: str,
                                                expected: tuple[str, str | None]) -> None:
    spec: SpecDir = make([[step(1), step(2), step(3, depends_on=[1, 2], trigger_rule=rule)]],
                         plan={"1.1:primary": ["fail"]})
    run = spec.run()
    assert statuses(run)["1.3"] == expected
    assert ("1.3:primary" in spec.calls()) == (expected[0] == "completed")


def test_one_failed_skips_when_nothing_failed(make: Any) -> None:
    spec: SpecDir = make([[step(1), step(2, depends_on=[1], trigger_rule="one_failed")]])
    run = spec.run()
    assert statuses(run)["1.2"] == ("skipped", "trigger_rule")
    assert run.code == 0  # a skipped non-critical step does not lower the goal


@pytest.mark.parametrize(("skip_ok", "expected"), [
    (True, ("completed", None)), (False, ("skipped", "upstream_skipped"))])
def test_a_skipped_dependency_counts_as_success_only_with_skip_ok(
        make: Any, skip_ok: bool, expected: tuple[str, str | None]) -> None:
    spec: SpecDir = make([[step(1), step(2, depends_on=[1], skip_ok=skip_ok),
                           step(3, depends_on=[2])]], plan={"1.1:primary": ["fail"]})
    run = spec.run()
    assert statuses(run)["1.2"] == ("skipped", "upstream_failed")
    assert statuses(run)["1.3"] == expected


def test_steps_run_after_the_steps_they_depend_on(make: Any) -> None:
    """A sequential run follows the plan's order, across tasks too."""
    # plan order (docs/plan.md): 1.3 first (1.1 waits for it, so it does not follow 1.2),
    # then 1.1, then 1.2, which follows the previous step by id
    spec: SpecDir = make([[step(1, depends_on=[3]), step(2), step(3)]])
    run = spec.run()
    started = [e.step for e in run.named("step-started")]
    assert started == ["1.3", "1.1", "1.2"]
    assert run.code == 0


def with_transition(spec: SpecDir, **table: Any) -> None:
    path = spec.folder / "parameters_rules.toml"
    lines = ["", "[[transitions]]"] + [f"{k} = {v!r}".replace("'", '"')
                                       for k, v in table.items()]
    path.write_text(path.read_text() + "\n".join(lines) + "\n")


def test_a_transition_loops_back_until_its_limit(make: Any) -> None:
    spec: SpecDir = make([[step(1)], [step(1)], [step(1)]])
    with_transition(spec, from_task=2, to_task=1, max_iterations=2)
    run = spec.run()
    assert run.code == 0
    calls = collections.Counter(spec.calls())
    assert calls == {"1.1:primary": 3, "2.1:primary": 3, "3.1:primary": 1}
    assert [(e.from_task, e.to_task, e.iteration) for e in run.named("transition-taken")] == [
        ("2", "1", 1), ("2", "1", 2)]
    (limit,) = run.named("transition-limit")
    assert isinstance(limit, ev.TransitionLimit) and limit.max_iterations == 2
    assert [e.task for e in run.named("task-started")] == ["1", "2", "1", "2", "1", "2", "3"]
    # the final state: every task completed once more, attempts of every round kept
    state = run.result.state
    assert all(t.status == "completed" for t in state.tasks.values())
    assert [a.round for a in state.steps["1.1"].attempts] == [1, 2, 3]


def test_a_transition_survives_a_crash_and_resume(make: Any) -> None:
    spec: SpecDir = make([[step(1)], [step(1)], [step(1)]])
    with_transition(spec, from_task=2, to_task=1, max_iterations=2)
    full = spec.run()
    events_file = full.result.run_dir / "events.jsonl"
    lines = events_file.read_bytes().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if b'"transition-taken"' in line) + 1
    (spec.folder / "calls.jsonl").unlink()
    crashed = full.result.run_dir.parent / "crashed"
    crashed.mkdir()
    (crashed / "events.jsonl").write_bytes(b"".join(lines[:cut]))
    replay = runs.read_run(crashed)
    resumed = spec.resume(crashed)
    assert resumed.code == 0
    assert len(replay) == cut
    taken = [e for e in runs.read_run(crashed) if isinstance(e, ev.TransitionTaken)]
    assert [e.iteration for e in taken] == [1, 2]
    # after the cut, tasks 1 and 2 ran twice more (iterations 2 and 3), task 3 once
    assert collections.Counter(spec.calls()) == {
        "1.1:primary": 2, "2.1:primary": 2, "3.1:primary": 1}


def test_a_sequential_step_waits_for_a_later_task_it_depends_on(make: Any) -> None:
    spec: SpecDir = make([[step(1, depends_on=["2.1"])], [step(1)]])
    run = spec.run()
    assert [e.step for e in run.named("step-started")] == ["2.1", "1.1"]
    assert run.code == 0
