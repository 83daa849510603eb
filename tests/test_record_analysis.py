"""The run's computed sections: the measures against plain reference versions, and the facts
read from the spec once per spec object."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from record_scenario import DOC, make_spec, replay, scenario
from specs import events as ev
from specs.plan.cache import spec_plan
from specs.record.analysis import consecutive_counts, verification
from specs.record.facts import Span, spec_facts
from specs.record.parallel import measured_critical_path, overlapping


def overlapping_reference(spans: Mapping[str, Span]) -> set[str]:
    """Every pair compared: a span overlaps another that starts before it ends, and v.v."""
    return {a for a, (s1, e1) in spans.items() for b, (s2, e2) in spans.items()
            if a != b and s1 < e2 and s2 < e1}


def critical_path_reference(spans: Mapping[str, Span], deps: Mapping[str, Sequence[str]],
                            order: Sequence[str]) -> list[str]:
    """The measured critical path as documented, with max() over the full keys."""
    if not spans:
        return []
    rank = {ref: i for i, ref in enumerate(order)}

    def key(ref: str) -> tuple[float, int, str]:
        return spans[ref][1], rank.get(ref, len(rank)), ref

    node = max(spans, key=key)
    path, seen = [node], {node}
    while True:
        found, stack, visited = [], list(deps.get(node, ())), set()
        while stack:  # the dependencies that ran, looking through those that did not
            dep = stack.pop()
            if dep in visited or dep in seen:
                continue
            visited.add(dep)
            if dep in spans:
                found.append(dep)
            else:
                stack.extend(deps.get(dep, ()))
        if not found:
            return path[::-1]
        node = max(found, key=key)
        path.append(node)
        seen.add(node)


def random_run(rng: random.Random, n: int) -> tuple[dict[str, Span], dict[str, list[str]],
                                                    list[str]]:
    """A random DAG over ``n`` steps, some of which did not run; ends on a coarse grid so
    that ties happen."""
    order = [f"1.{i}" for i in range(1, n + 1)]
    deps = {ref: rng.sample(order[:i], k=min(i, rng.randint(0, 3)))
            for i, ref in enumerate(order)}
    spans = {}
    for ref in order:
        if rng.random() < 0.8:
            start = rng.randint(0, 20) / 4
            spans[ref] = (start, start + rng.randint(0, 8) / 4)
    return spans, deps, order


def test_overlapping_matches_the_pairwise_reference() -> None:
    rng = random.Random(7)
    for n in (0, 1, 2, 5, 30, 200):
        for _ in range(20):
            spans, _, _ = random_run(rng, n)
            assert overlapping(spans) == overlapping_reference(spans)


def test_measured_critical_path_matches_the_reference_and_breaks_ties_by_order() -> None:
    rng = random.Random(11)
    for n in (1, 2, 6, 40, 300):
        for _ in range(20):
            spans, deps, order = random_run(rng, n)
            expected = critical_path_reference(spans, deps, order)
            assert measured_critical_path(spans, deps, order) == expected
            assert measured_critical_path(spans, deps, order[::-1]) == \
                critical_path_reference(spans, deps, order[::-1])
    tied = {"a": (0.0, 1.0), "b": (0.0, 1.0), "c": (1.0, 2.0)}
    deps = {"c": ["a", "b"]}
    assert measured_critical_path(tied, deps, ["a", "b", "c"]) == ["b", "c"]
    assert measured_critical_path(tied, deps, ["b", "a", "c"]) == ["a", "c"]
    assert measured_critical_path({"x": (0.0, math.inf)}, {}) == ["x"]


def test_consecutive_counts_replay_step_ends_in_time_order() -> None:
    spec = make_spec()
    assert consecutive_counts(replay(spec, scenario())) == {
        "1.1": 0, "1.2": 0, "1.3": 1, "2.1": 0}
    events: list[ev.Event] = [ev.TaskStarted(seq=1, ts="2026-03-01T10:00:00.000Z", task="1")]
    same = "2026-03-01T10:00:01.000Z"  # three ends in the same millisecond: spec order
    for seq, (ref, status) in enumerate((("1.1", "failed"), ("1.2", "failed"),
                                         ("1.3", "completed")), start=3):
        events += [ev.StepStarted(seq=seq, ts=same, step=ref, mode="dynamic", critical=True),
                   ev.StepEnded(seq=seq, ts=same, step=ref, status=status)]
    assert consecutive_counts(replay(spec, events)) == {"1.1": 1, "1.2": 2, "1.3": 0}


def test_spec_facts_are_read_once_per_spec_object() -> None:
    spec = make_spec()
    facts = spec_facts(spec)
    assert spec_facts(spec) is facts and facts.plan is spec_plan(spec)
    assert spec_facts(make_spec()) is not facts  # another spec object: its own facts
    assert facts.declared["1.2"][0].description == "Copy the cached export"
    assert facts.declared["1.1"] == []
    assert facts.backup_ids == [1]
    assert facts.backup_texts == {("1.2", 1): "Copy the cached export"}
    assert [number for number, _ in facts.task_phases["1"]] == sorted(
        number for number, _ in facts.task_phases["1"])
    assert sorted(ref for _, refs in facts.task_phases["1"] for ref in refs) == [
        "1.1", "1.2", "1.3"]


def test_spec_facts_qualify_task_local_dependencies() -> None:
    doc: dict[str, Any] = {**DOC, "tasks": [
        {**DOC["tasks"][0]},
        {**DOC["tasks"][1], "steps": [
            {**DOC["tasks"][1]["steps"][0], "depends_on": ["1.3"]},
            {**DOC["tasks"][1]["steps"][1], "depends_on": [1]}]}]}
    facts = spec_facts(make_spec(doc))
    assert ("2.1", ["1.3"]) in facts.depends_on and ("2.2", ["2.1"]) in facts.depends_on


def test_the_critical_balance_follows_the_project_constitution_as_the_validator_does(
        tmp_path: Any) -> None:
    """One rule for the Art. VI range: a project constitution's ``quality.critical_percentage``
    is what the validator checks against, and the run's analysis reports the same range."""
    import asyncio
    import shutil
    from pathlib import Path

    from specs.engine.runner import Runner, RunOptions
    from specs.record.progress import progress_document
    from specs.spec.load import load_spec
    from specs.spec.validate import validate

    project = Path(tmp_path) / "project"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "hello", project / "hello")
    (project / "project_constitution.toml").write_text(
        '[quality]\ncritical_percentage = "10-20%"\n')
    loaded = load_spec(project / "hello")
    warned = [d for d in validate(loaded) if d.code == "W-CRIT-BALANCE"]
    assert warned and "10" in warned[0].message and "20" in warned[0].message
    result = asyncio.run(Runner(loaded, RunOptions(state_dir=Path(tmp_path) / "state")).start())
    document = progress_document(loaded.require(), result.state)
    review = document["post_execution_analysis"]["constitutional_compliance_review"]
    assert review["article_vi_critical_balance"]["range"] == [0.1, 0.2]
    assert review["article_vi_critical_balance"]["compliant"] is False
    assert result.state.validation is not None


# -- a skipped critical step and the goal --------------------------------------------------------


def _all_done_but_2_1(skip_reason: str) -> list[ev.Event]:
    from record_scenario import Script

    s = Script()
    s.add(ev.RunOpened, run_id="r", descriptor="demo", spec={}, options={}, totals={})
    s.add(ev.ModeSelected, mode="dynamic", selected_by="default",
          strategy="collaborative_review")
    for task, refs in (("1", ("1.1", "1.2", "1.3")), ("2", ("2.1", "2.2"))):
        s.add(ev.TaskStarted, task=task)
        for ref in refs:
            if ref == "2.1":
                s.add(ev.StepEnded, step=ref, status="skipped", skip_reason=skip_reason)
                continue
            s.add(ev.StepStarted, step=ref, mode="dynamic", critical=ref != "1.3")
            s.attempt(ref, "primary", 1, "success")
            s.add(ev.StepEnded, step=ref, status="completed")
        s.add(ev.TaskEnded, task=task, status="completed")
    return s.events


def test_a_critical_step_skipped_by_its_condition_is_no_gap(tmp_path: Any) -> None:
    """docs/running.md: a skipped critical step means PARTIAL, except a false condition's
    skip; the completion check and the progress file's verification say the same."""
    import asyncio

    from specs.engine.completion import verify_completion

    spec = make_spec()
    for reason, goal in (("condition_false", "ACHIEVED"), ("human", "PARTIAL")):
        state = replay(spec, _all_done_but_2_1(reason))
        result = asyncio.run(verify_completion(spec, state, tmp_path, {}))
        assert result["goal_achievement_status"] == goal, reason
        assert result["checks"]["critical_steps_completed"] is (goal == "ACHIEVED")
        check = verification(spec, state)
        assert check["skipped_steps"] == ["2.1"]
        assert ("steps_skipped" in check["partial_completion_reasons"]) is (goal == "PARTIAL")
        assert check["critical_steps_skipped"] == ([] if goal == "ACHIEVED" else ["2.1"])
