"""The parallel scheduler against its rules (src/specs/engine/scheduler.py, SPEC_FORMAT.md §1.7
and §2, docs/running.md "Parallel execution"), with real concurrency.

Steps are ``async`` Python callables (``work`` in ``<steps module>_work.py`` beside the spec).
Each records its own start and end (``time.monotonic``) in ``times.jsonl``, sleeps a little
(``sleeps.json``, 0.1 s by default; a cancelled sleep is recorded too) and then behaves as
``test_engine_rules.act`` says (the ``plan.json`` script: ok, fail, transient, a structured
output...). Concurrency facts come from those records (two sleeping siblings overlap; a
dependent starts after its dependencies end; the overlap of steps holding a resource never
exceeds its capacity); ordering facts from event sequence numbers. No test asserts how fast a
run is, except that a cancelled ``sleep 5`` sibling did not run its 5 seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import random
import signal
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from specs import events as ev
from specs.api import runs
from specs.engine.runner import Runner, RunOptions
from specs.engine.state import GateState
from specs.plan.graph import build_plan
from specs.spec.load import load_spec
from test_crash_safety import (
    Background,
    check_log,
    check_progress_file,
    interrupted,
    make_spec,
    progress,
    ran,
    specs,
    wait_events_file,
    wait_for,
)
from test_engine_rules import MOD, Run, SpecDir, _value, step

WORK_PY = '''
import asyncio
import importlib
import json
import pathlib
import time

HERE = pathlib.Path(__file__).parent
act = importlib.import_module(__name__.removesuffix("_work")).act


def _log(record):
    with (HERE / "times.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\\n")


async def work(ctx):
    path = HERE / "sleeps.json"
    sleeps = json.loads(path.read_text()) if path.exists() else {}
    record = {"ref": ctx.ref, "method": ctx.method, "attempt": ctx.attempt,
              "start": time.monotonic()}
    try:
        await asyncio.sleep(sleeps.get(ctx.ref, 0.1))
    except asyncio.CancelledError:
        record.update(end=time.monotonic(), cancelled=True)
        _log(record)
        raise
    record["end"] = time.monotonic()
    _log(record)
    return act(ctx)
'''

PARALLEL = {"parallel_enabled": True, "max_parallel_steps": 4}


def pstep(id: int, **keys: Any) -> dict[str, Any]:
    """A step whose primary method is the timed async callable ``work``."""
    return step(id, execution_method="python", callable=f"{MOD}_work:work", **keys)


class PSpec(SpecDir):
    """A SpecDir with the timed callable beside it and the records it leaves."""

    def __init__(self, root: Path, tasks: list[list[dict[str, Any]]], *,
                 sleeps: dict[str, float] | None = None, **keys: Any) -> None:
        super().__init__(root, tasks, **keys)
        (self.folder / f"{self.module}_work.py").write_text(WORK_PY)
        (self.folder / "sleeps.json").write_text(json.dumps(sleeps or {}))

    @property
    def parameters(self) -> Path:
        return self.folder / "parameters_rules.toml"

    def append(self, text: str) -> None:
        """Add TOML at the end of the parameters file (``@MOD@`` names the steps module)."""
        self.parameters.write_text(self.parameters.read_text() + "\n"
                                   + textwrap.dedent(text).replace(MOD, self.module))

    def task_keys(self, number: int, text: str) -> None:
        """Add keys to ``[[tasks]]`` number ``number`` (e.g. ``depends_on = [1]``)."""
        anchor = f'description = "task {number}"\n'
        content = self.parameters.read_text()
        assert anchor in content
        self.parameters.write_text(content.replace(anchor, anchor + text + "\n", 1))

    def records(self) -> list[dict[str, Any]]:
        log = self.folder / "times.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def spans(self) -> dict[str, tuple[float, float]]:
        """Each step's callable time: first start to last end over its attempts."""
        found: dict[str, tuple[float, float]] = {}
        for r in self.records():
            start, end = found.get(r["ref"], (r["start"], r["end"]))
            found[r["ref"]] = (min(start, r["start"]), max(end, r["end"]))
        return found


@pytest.fixture
def make(tmp_path: Path) -> Any:
    counter = iter(range(1000))

    def build(tasks: list[list[dict[str, Any]]], **keys: Any) -> PSpec:
        root = tmp_path / f"s{next(counter)}"
        root.mkdir()
        return PSpec(root, tasks, **keys)

    return build


# -- what the records say ------------------------------------------------------------------------


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def max_overlap(spans: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t comes before a start at t)."""
    points = sorted([(e, -1) for _, e in spans] + [(s, 1) for s, _ in spans])
    most = current = 0
    for _, change in points:
        current += change
        most = max(most, current)
    return most


def after(spans: dict[str, tuple[float, float]], later: str, *earlier: str) -> bool:
    return all(spans[later][0] >= spans[e][1] for e in earlier)


def ended(run: Run) -> dict[str, tuple[str, str | None]]:
    return {e.step: (e.status, e.skip_reason) for e in run.named("step-ended")
            if isinstance(e, ev.StepEnded)}


def seq_of(run: Run, name: str, ref: str) -> int:
    (found,) = [e.seq for e in run.events if e.name == name and getattr(e, "step", None) == ref]
    return found


def started(run: Run) -> dict[str, ev.StepStarted]:
    return {e.step: e for e in run.events if isinstance(e, ev.StepStarted)}


def planned(run: Run) -> ev.ExecutionPlanned:
    (found,) = [e for e in run.events if isinstance(e, ev.ExecutionPlanned)]
    return found


def statuses(run: Run) -> dict[str, str]:
    return {ref: st.status for ref, st in run.result.state.steps.items()}


# == the graph: diamond, fan-out/fan-in, cross-task and task dependencies ======================


def test_a_diamond_runs_its_middle_steps_side_by_side(make: Any) -> None:
    spec = make([[pstep(1), pstep(2, depends_on=[1]), pstep(3, depends_on=[1]),
                  pstep(4, depends_on=[2, 3])]],
                execution=PARALLEL, sleeps={"1.2": 0.25, "1.3": 0.15})
    run = spec.run()
    assert (run.code, run.result.goal) == (0, "ACHIEVED")
    plan = planned(run)
    assert (plan.parallel, plan.max_parallel, plan.reason) == (
        True, 4, "[execution] parallel_enabled = true")
    assert (plan.phases, plan.width, plan.critical_path) == (3, 2, ["1.1", "1.2", "1.4"])
    t = spec.spans()
    assert overlap(t["1.2"], t["1.3"])
    assert after(t, "1.2", "1.1") and after(t, "1.3", "1.1")
    assert after(t, "1.4", "1.2", "1.3")
    assert seq_of(run, "step-started", "1.4") > max(seq_of(run, "step-ended", "1.2"),
                                                    seq_of(run, "step-ended", "1.3"))
    launch = started(run)
    run_id = run.result.run_id
    assert launch["1.4"].execution_id == f"{run_id}:1.4"
    assert launch["1.4"].dependencies_satisfied == ["1.2", "1.3"]
    assert launch["1.1"].dependencies_satisfied == []
    assert launch["1.2"].slot != launch["1.3"].slot
    assert {s.slot for s in launch.values()} <= {1, 2}
    assert collections.Counter(spec.calls()) == {f"1.{i}:primary": 1 for i in range(1, 5)}
    assert run.result.state.max_running == 2


def test_fan_out_and_fan_in_within_max_parallel(make: Any) -> None:
    spec = make([[pstep(1), *(pstep(i, depends_on=[1]) for i in range(2, 7)),
                  pstep(7, depends_on=[2, 3, 4, 5, 6])]], sleeps={
        f"1.{i}": 0.15 for i in range(2, 7)})
    run = spec.run(parallel=True, max_parallel=3)  # the spec does not enable it: the option does
    assert run.code == 0
    plan = planned(run)
    assert (plan.parallel, plan.max_parallel, plan.reason) == (True, 3, "--parallel")
    t = spec.spans()
    middle = [t[f"1.{i}"] for i in range(2, 7)]
    assert max_overlap(middle) == 3  # five ready siblings, three at a time
    assert all(after(t, f"1.{i}", "1.1") for i in range(2, 7))
    assert after(t, "1.7", *(f"1.{i}" for i in range(2, 7)))
    assert {s.slot for s in started(run).values()} == {1, 2, 3}


def test_cross_task_and_task_level_dependencies(make: Any) -> None:
    spec = make([
        [pstep(1), pstep(2), pstep(3)],
        [pstep(1, depends_on=["1.1"]), pstep(2, depends_on=["1.2", 1])],
        [pstep(1)],
        [pstep(1), pstep(2)],
    ], execution=PARALLEL, sleeps={"1.2": 0.3, "2.1": 0.1, "4.1": 0.15})
    spec.task_keys(3, "depends_on = [1]")
    spec.task_keys(4, "depends_on = []")
    run = spec.run()
    assert run.code == 0
    t = spec.spans()
    assert overlap(t["2.1"], t["1.2"])  # 2.1 needs only 1.1
    assert after(t, "2.1", "1.1")
    assert after(t, "2.2", "1.2", "2.1")  # waits for the long 1.2, not just its own task
    assert after(t, "3.1", "1.3")  # task 3 depends on task 1: after its sink
    assert overlap(t["4.1"], t["1.1"])  # task 4 declares no prerequisites
    assert after(t, "4.2", "4.1")  # inside a task: step order
    assert started(run)["2.2"].dependencies_satisfied == ["1.2", "2.1"]
    assert started(run)["3.1"].dependencies_satisfied == ["1.3"]
    assert all(s == "completed" for s in statuses(run).values())


# == SPECLets ===================================================================================


TEMPLATE_SPECLETS = """
[[speclets]]
id = "a"
description = "first branch"
depends_on = []
tasks = [1]
parallel_allowed = {a}

[[speclets]]
id = "b"
description = "second branch"
depends_on = []
tasks = [2]
parallel_allowed = {b}

[[speclets]]
id = "c"
description = "after both"
depends_on = ["a", "b"]
tasks = [3]
parallel_allowed = true
"""


def nested_speclets(speclets: list[tuple[int, str, list[str], bool]]) -> str:
    """The Dashboard's nested shape: two tasks of two timed steps in every SPECLet."""
    lines = []
    for number, name, deps, allowed in speclets:
        lines += ["[[speclets]]", f"id = {number}", f'name = "{name}"',
                  f'purpose = "the {name} part"', f"dependencies = {_value(deps)}",
                  f"parallel_allowed = {_value(allowed)}"]
        for task in (1, 2):
            lines += ["[[speclets.tasks]]", f"id = {task}", f'name = "{name} task {task}"']
            for table in (pstep(1), pstep(2)):
                lines.append("[[speclets.tasks.steps]]")
                lines += [f"{k} = {_value(v)}" for k, v in table.items() if k != "backups"]
    return "\n".join(lines) + "\n"


def test_template_speclets_run_in_stages_with_independent_ones_side_by_side(make: Any) -> None:
    spec = make([[pstep(1), pstep(2)], [pstep(1), pstep(2)], [pstep(1), pstep(2)]],
                execution=PARALLEL)
    spec.append(TEMPLATE_SPECLETS.format(a="true", b="true"))
    run = spec.run()
    assert run.code == 0, run.flow()
    t = spec.spans()
    first = [t[r] for r in ("1.1", "1.2", "2.1", "2.2")]
    assert overlap(t["1.1"], t["2.1"]) and overlap(t["1.2"], t["2.2"])
    assert after(t, "1.2", "1.1") and after(t, "2.2", "2.1")  # sequential inside a SPECLet
    assert min(t["3.1"][0], t["3.2"][0]) >= max(end for _, end in first)  # stage order
    assert max_overlap(first) == 2


def test_nested_dashboard_speclets_run_in_stages_with_independent_ones_side_by_side(
        make: Any) -> None:
    spec = make([], execution=PARALLEL)
    spec.append(nested_speclets([(1, "backend", [], True), (2, "frontend", [], True),
                                 (3, "glue", ["backend", "frontend"], True)]))
    run = spec.run()
    assert run.code == 0, run.flow()
    t = spec.spans()
    assert set(t) == {f"{s}.{k}.{i}" for s in (1, 2, 3) for k in (1, 2) for i in (1, 2)}
    stage1 = [span for ref, span in t.items() if ref[0] in "12"]
    assert overlap(t["1.1.1"], t["2.1.1"]) and overlap(t["1.2.2"], t["2.2.2"])
    assert max_overlap(stage1) == 2
    order = ["1.1.1", "1.1.2", "1.2.1", "1.2.2"]
    assert all(after(t, b, a) for a, b in itertools.pairwise(order))
    assert min(span[0] for ref, span in t.items() if ref[0] == "3") >= max(
        end for _, end in stage1)


def test_a_speclet_without_parallel_allowed_does_not_run_beside_another(make: Any) -> None:
    spec = make([[pstep(1), pstep(2)], [pstep(1), pstep(2)], [pstep(1)]], execution=PARALLEL)
    spec.append(TEMPLATE_SPECLETS.format(a="true", b="false"))
    run = spec.run()
    assert run.code == 0, run.flow()
    t = spec.spans()
    for a in ("1.1", "1.2"):
        for b in ("2.1", "2.2"):
            assert not overlap(t[a], t[b]), (a, b)
    assert after(t, "3.1", "1.2", "2.2")


# == limits: resources, output files, parallel_safe =============================================


def test_resource_locks_never_exceed_their_capacity(make: Any) -> None:
    steps = [pstep(i, depends_on=[], resources_required=["db"]) for i in range(1, 7)]
    steps += [pstep(i, depends_on=[], resources_required=["gpu"]) for i in range(7, 11)]
    spec = make([steps], execution={"parallel_enabled": True, "max_parallel_steps": 8},
                resources={"db": 2}, sleeps={f"1.{i}": 0.1 for i in range(1, 11)})
    run = spec.run()
    assert run.code == 0
    t = spec.spans()
    db = [t[f"1.{i}"] for i in range(1, 7)]
    gpu = [t[f"1.{i}"] for i in range(7, 11)]
    assert max_overlap(db) == 2  # [resources] db = 2
    assert max_overlap(gpu) == 1  # no capacity given: 1
    assert max_overlap(db + gpu) == 3  # the two resources do not block each other
    assert len(spec.records()) == 10


def test_steps_with_overlapping_output_files_never_run_together(make: Any) -> None:
    files = {1: ["out/a.txt"], 2: ["./out/a.txt"], 3: ["out/*.txt"], 4: ["other.txt"],
             5: ["out/b.txt", "shared.log"], 6: ["shared.log"]}
    spec = make([[pstep(i, depends_on=[], output_files=f) for i, f in files.items()]],
                execution={"parallel_enabled": True, "max_parallel_steps": 6})
    run = spec.run()
    assert run.code == 0
    t = spec.spans()
    clashing = [("1.1", "1.2"), ("1.1", "1.3"), ("1.2", "1.3"), ("1.3", "1.5"), ("1.5", "1.6")]
    for a, b in clashing:
        assert not overlap(t[a], t[b]), (a, b)
    assert overlap(t["1.1"], t["1.4"])  # other files do run together


def test_a_step_that_is_not_parallel_safe_runs_alone(make: Any) -> None:
    spec = make([[pstep(1, depends_on=[]), pstep(2, depends_on=[]),
                  pstep(3, depends_on=[], parallel_safe=False), pstep(4, depends_on=[]),
                  pstep(5, depends_on=[])]], execution=PARALLEL)
    run = spec.run()
    assert run.code == 0
    t = spec.spans()
    assert overlap(t["1.1"], t["1.2"])
    assert not any(overlap(t["1.3"], t[f"1.{i}"]) for i in (1, 2, 4, 5))
    assert after(t, "1.4", "1.3")  # nothing passes a step that must run alone


# == failures: the failure policy and the strategy ==============================================


def alive_groups(run_dir: Path) -> list[int]:
    """The process groups the run's attempts started that still have a live (not zombie)
    process."""
    path = run_dir / "spawned"
    pgids = {int(x) for x in path.read_text().split()} if path.exists() else set()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) in pgids and fields[0] not in ("Z", "X"):
                found.add(int(fields[2]))
    return sorted(found)


@pytest.mark.parametrize("strategy", ["continue_and_log", "halt_on_critical"])
@pytest.mark.parametrize("policy", ["abort_siblings", "finish_siblings"])
def test_a_critical_failure_mid_group(make: Any, policy: str, strategy: str) -> None:
    """1.2 (critical) fails while 1.3 (a shell ``sleep``, same group) and 1.6 (another group)
    run; 1.4 needs 1.2 and 1.3, 1.5 needs 1.3. A halted run is then fixed and resumed."""
    abort = policy == "abort_siblings"
    sleep = 5 if abort else 0.6
    spec = make([[
        pstep(1),
        pstep(2, critical=True, depends_on=[1], parallel_group="g"),
        step(3, depends_on=[1], parallel_group="g",
             command=f"test -f fixed || sleep {sleep}; echo done > marker"),
        pstep(4, depends_on=[2, 3]),
        pstep(5, depends_on=[3]),
        pstep(6, depends_on=[1], parallel_group="h"),
    ]], execution={**PARALLEL, "parallel_failure_policy": policy},
        error_propagation={"propagation_strategy": strategy},
        plan={"1.2:primary": ["fail"]}, sleeps={"1.2": 0.3, "1.6": 0.6})
    began = time.monotonic()
    run = spec.run()
    took = time.monotonic() - began
    marker = spec.folder / "marker"
    state = run.result.state
    s = statuses(run)
    assert s["1.1"] == "completed" and s["1.2"] == "failed"
    if abort:
        assert took < sleep - 0.5, "the cancelled sibling's sleep was not interrupted"
        time.sleep(0.1)
        assert not marker.exists()
        assert alive_groups(run.result.run_dir) == []
        third = state.steps["1.3"]
        assert third.status == "failed" and third.resolved
        assert third.message.startswith("cancelled: critical step 1.2 failed")
        (attempt,) = third.attempts
        assert attempt.outcome == "error" and attempt.failure_reason == third.message
    else:
        assert marker.read_text() == "done\n"
        assert s["1.3"] == "completed"
    if strategy == "continue_and_log":
        assert run.result.status == "completed" and run.code == 1
        assert run.result.goal == "NOT_ACHIEVED"
        assert ended(run)["1.4"] == ("skipped", "upstream_failed")
        assert ended(run)["1.5"] == (("skipped", "upstream_failed") if abort
                                     else ("completed", None))
        assert s["1.6"] == "completed"  # another parallel_group is not cancelled
    else:
        assert run.result.status == "halted" and run.code == 1
        (end,) = run.named("run-ended")
        assert isinstance(end, ev.RunEnded) and end.step == "1.2"
        assert s["1.4"] == s["1.5"] == "pending"  # a halt stops launching
        if abort:  # a halt stops the whole run: every running step is cancelled
            assert s["1.6"] == "failed"
            assert state.steps["1.6"].message.startswith("cancelled: critical step 1.2")
            assert any(r.get("cancelled") for r in spec.records() if r["ref"] == "1.6")
        else:
            assert s["1.6"] == "completed"
    assert not state.running  # nothing is left "started"
    if strategy == "continue_and_log":
        return

    # fix the cause, resume: the halted step runs again, so do the steps the halt cancelled
    (spec.folder / "fixed").touch()
    spec.set_plan({})
    second = spec.resume(run.result.run_dir)
    assert (second.code, second.result.goal) == (0, "ACHIEVED")
    assert set(statuses(second).values()) == {"completed"}
    reopened = {e.step for e in second.named("step-reopened")}
    assert reopened == ({"1.2", "1.3", "1.6"} if abort else {"1.2"})
    again = {e.step for e in second.named("attempt-started") if isinstance(e, ev.AttemptStarted)}
    assert again == reopened | {"1.4", "1.5"}  # nothing that completed ran again
    assert marker.read_text() == "done\n"


@pytest.mark.parametrize("policy", ["abort_siblings", "finish_siblings"])
def test_a_halt_when_a_task_starts_applies_the_policy_to_the_running_steps(
        make: Any, policy: str) -> None:
    """Task 2's condition cannot be evaluated (a critical step fails, halt_on_critical) while
    1.2 runs: the halt still cancels it or lets it finish, as any halt."""
    spec = make([[pstep(1, depends_on=[]), pstep(2, depends_on=[])],
                 [pstep(1, critical=True, depends_on=["1.1"])]],
                execution={**PARALLEL, "parallel_failure_policy": policy},
                error_propagation={"propagation_strategy": "halt_on_critical"},
                sleeps={"1.1": 0.05, "1.2": 0.4})
    spec.task_keys(2, 'condition = "vars.n > 1"')
    run = spec.run(vars={"n": "not a number"})
    assert (run.result.status, run.code) == ("halted", 1)
    state = run.result.state
    assert state.steps["2.1"].status == "failed"
    assert state.steps["2.1"].message.startswith("task condition error")
    assert not state.running
    assert run.flow()[-1][:2] == ("run-ended", "halted")
    if policy == "abort_siblings":
        assert state.steps["1.2"].status == "failed"
        assert state.steps["1.2"].message.startswith("cancelled: critical step 2.1 failed")
        assert any(r.get("cancelled") for r in spec.records() if r["ref"] == "1.2")
    else:
        assert state.steps["1.2"].status == "completed"
        assert seq_of(run, "step-ended", "1.2") < run.events[-1].seq


def test_trigger_rules_in_a_parallel_run(make: Any) -> None:
    spec = make([[pstep(1, depends_on=[]), pstep(2, depends_on=[]),
                  pstep(3, depends_on=[1, 2], trigger_rule="all_done"),
                  pstep(4, depends_on=[1, 2], trigger_rule="one_failed"),
                  pstep(5, depends_on=[2], trigger_rule="one_failed"),
                  pstep(6, depends_on=[1, 2])]],
                execution=PARALLEL, plan={"1.1:primary": ["fail"]},
                sleeps={"1.1": 0.05, "1.2": 0.3})
    run = spec.run()
    t = spec.spans()
    assert overlap(t["1.1"], t["1.2"])
    expected = {"1.3": ("completed", None),  # all_done: whatever happened
                "1.4": ("completed", None),  # one_failed: 1.1 failed
                "1.5": ("skipped", "trigger_rule"),  # one_failed: 1.2 did not fail
                "1.6": ("skipped", "upstream_failed")}  # all_success
    for ref, outcome in expected.items():
        assert ended(run)[ref] == outcome, ref
        # decided only once every dependency settled: 1.1 failed early, 1.2 ended later
        assert seq_of(run, "step-ended", ref) > seq_of(run, "step-ended", "1.2")
        if outcome[0] == "completed":
            assert after(t, ref, "1.1", "1.2")
        else:
            assert ref not in t
    assert run.result.state.steps["1.1"].status == "failed"


# == humans =====================================================================================


def test_a_gate_in_one_branch_lets_the_other_branch_finish(make: Any) -> None:
    spec = make([[pstep(1), pstep(2, mode="collaborative"), pstep(3)],
                 [pstep(1), pstep(2), pstep(3)]], execution=PARALLEL)
    spec.task_keys(2, "depends_on = []")
    first = spec.run()  # headless
    assert (first.code, first.result.status) == (3, "awaiting_human")
    assert first.flow()[-1] == ("run-paused", "before_step:1.2")
    s = statuses(first)
    assert s == {"1.1": "completed", "1.2": "pending", "1.3": "pending",
                 "2.1": "completed", "2.2": "completed", "2.3": "completed"}
    paused_at = seq_of(first, "gate-requested", "1.2")
    assert seq_of(first, "step-ended", "2.3") > paused_at  # branch 2 went on meanwhile

    runs.answer_gate(first.result.run_dir, "1.2", "approve")
    second = spec.resume(first.result.run_dir)
    assert (second.code, second.result.status, second.result.goal) == (
        0, "completed", "ACHIEVED")
    assert [e.step for e in second.named("step-started") if isinstance(e, ev.StepStarted)] == [
        "1.2", "1.3"]
    assert collections.Counter(spec.calls()) == {
        f"{t}.{i}:primary": 1 for t in (1, 2) for i in (1, 2, 3)}  # nothing ran twice
    assert planned(first).parallel and not second.named("execution-planned")


class SlowHuman:
    """Answers ``approve`` after a pause, noting when each question was open."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, float, float]] = []

    async def ask(self, gate: GateState, context: str) -> str:
        start = time.monotonic()
        await asyncio.sleep(0.1)
        self.asked.append((gate.id, start, time.monotonic()))
        return "approve"


def run_with(spec: PSpec, *, project: bool = False, human: Any = None,
             **options: Any) -> Run:
    """Like SpecDir.run, with a given human and (optionally) the project constitution."""
    log: list[ev.Event] = []
    opts = RunOptions(state_dir=spec.state_dir, no_input=human is None, fsync_interval=60,
                      **options)

    async def no_sleep(delay: float) -> None:
        return None

    runner = Runner(load_spec(spec.folder, project=project), opts, human=human,
                    subscribers=[lambda event, state: log.append(event)], sleep=no_sleep,
                    rng=random.Random(0))
    result = asyncio.run(runner.start())
    return Run(result, log, [], None)


def test_parallel_branches_ask_a_human_one_at_a_time(make: Any) -> None:
    spec = make([[pstep(1, mode="collaborative")], [pstep(1, mode="collaborative")],
                 [pstep(1)]], execution=PARALLEL, sleeps={"3.1": 0.15})
    spec.task_keys(2, "depends_on = []")
    spec.task_keys(3, "depends_on = []")
    human = SlowHuman()
    run = run_with(spec, human=human)
    assert (run.code, run.result.goal) == (0, "ACHIEVED")
    assert sorted(g for g, _, _ in human.asked) == ["before_step:1.1", "before_step:2.1"]
    (_, s1, e1), (_, s2, e2) = human.asked
    assert not overlap((s1, e1), (s2, e2))  # the human lock: one question at a time
    t = spec.spans()
    assert overlap(t["3.1"], (s1, e1))  # a branch without a gate ran meanwhile


# == kill -9 during a parallel phase, then resume ===============================================


KILL_STEP = """
[[tasks.steps]]
id = {id}
description = "Step {ref}"
expected_output = "{ref} in ran.log"
critical_flag = false
depends_on = {deps}
command = "{command}"
"""


def kill_spec(sleeper: str = "sleep 1") -> str:
    parts = ['[meta]\ngoal_descriptor = "crash"\n\n[goal]\ndescription = "Each step once"\n\n'
             '[execution]\ndefault_mode = "silent"\n\n[[tasks]]\nid = 1\n'
             'description = "Fan out and in"\n']
    parts.append(KILL_STEP.format(id=1, ref="1.1", deps="[]", command="echo 1.1 >> ran.log"))
    for i in range(2, 7):
        parts.append(KILL_STEP.format(id=i, ref=f"1.{i}", deps="[1]",
                                      command=f"{sleeper}; echo 1.{i} >> ran.log"))
    parts.append(KILL_STEP.format(id=7, ref="1.7", deps="[2, 3, 4, 5, 6]",
                                  command="echo 1.7 >> ran.log"))
    return "".join(parts)


def cleanup(run: Background, folder: Path) -> None:
    """After a failed test: stop the engine's group and what its attempts left running."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(run.proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        run.finish()
    pids = folder / "pids"
    for pid in (pids.read_text().split() if pids.exists() else []):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), signal.SIGKILL)


def open_attempts(found: list[ev.Event]) -> set[str]:
    opened: set[str] = set()
    for e in found:
        if isinstance(e, ev.AttemptStarted):
            opened.add(e.step)
        elif isinstance(e, ev.AttemptEnded):
            opened.discard(e.step)
    return opened


def test_kill_9_during_a_parallel_phase_then_resume(tmp_path: Path) -> None:
    folder, state = make_spec(tmp_path, kill_spec()), tmp_path / "state"
    run = Background("run", folder, "--no-input", "--state-dir", state, "--parallel",
                     "--max-parallel", "3", cwd=tmp_path)
    try:
        path = wait_events_file(state, run)
        wait_for(path, lambda found: len(open_attempts(found)) >= 3, run)
    except BaseException:
        cleanup(run, folder)
        raise
    run.kill9()

    before = check_log(path)
    check_progress_file(folder)
    done = {e.step for e in before if isinstance(e, ev.StepEnded)}
    cut = open_attempts(before)
    assert len(cut) >= 3 and before[-1].name != "run-ended"

    code, _, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    found = check_log(path)
    resumed = found[len(before):]
    assert resumed[0].name == "run-resumed"
    assert interrupted(found) == cut
    again = {e.step for e in resumed if isinstance(e, ev.AttemptStarted)}
    assert not again & done, f"completed steps ran again: {again & done}"
    refs = [f"1.{i}" for i in range(1, 8)]
    finals = collections.Counter(e.step for e in found if isinstance(e, ev.StepEnded))
    assert finals == {ref: 1 for ref in refs}  # every step completed once
    assert all(e.status == "completed" for e in found if isinstance(e, ev.StepEnded))
    counts = ran(folder)
    for ref in refs:
        assert 1 <= counts[ref] <= (2 if ref in cut else 1), (ref, counts)
    end = found[-1]
    assert isinstance(end, ev.RunEnded) and end.status == "completed"
    assert progress(folder)["status"] == "completed"  # valid JSON, up to date
    launched = [e for e in resumed if isinstance(e, ev.StepStarted)]
    assert launched and all(e.slot is not None for e in launched)  # still a parallel run


def test_ctrl_c_during_a_parallel_phase_stops_every_attempt_then_resume(tmp_path: Path) -> None:
    sleeper = "echo $$ >> pids; test -f fixed || sleep 30"
    folder, state = make_spec(tmp_path, kill_spec(sleeper)), tmp_path / "state"
    run = Background("run", folder, "--no-input", "--state-dir", state, "--parallel",
                     "--max-parallel", "3", cwd=tmp_path)
    try:
        path = wait_events_file(state, run)
        wait_for(path, lambda found: len(open_attempts(found)) >= 3, run)
        # wait until every attempt's process group is recorded, i.e. each executor waits on
        # its process: a Ctrl-C landing while asyncio is still spawning a process kills the
        # shell only, and the engine waits for the orphaned `sleep` (the command executor's
        # window, not the scheduler's)
        spawned = path.parent / "spawned"
        deadline = time.monotonic() + 10
        while len(spawned.read_text().split() if spawned.exists() else []) < 4:  # 1.1 + 3
            assert time.monotonic() < deadline, "the sleepers never started"
            time.sleep(0.01)
        os.kill(run.proc.pid, signal.SIGINT)  # the engine only, as a terminal's Ctrl-C
        code, _, err = run.finish()
        assert code == 130, err
        assert "Traceback" not in err
        groups = [int(p) for p in spawned.read_text().split()]
        deadline = time.monotonic() + 5
        while alive_groups(path.parent) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert alive_groups(path.parent) == [], "Ctrl-C left a parallel attempt running"
        assert len(groups) == 4
    except BaseException:
        cleanup(run, folder)
        raise
    before = check_log(path)
    end = before[-1]
    assert isinstance(end, ev.RunEnded) and end.status == "halted"
    cut = open_attempts(before)
    assert len(cut) == 3

    (folder / "fixed").touch()
    code, _, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 0, err
    found = check_log(path)
    assert interrupted(found) == cut
    finals = collections.Counter(e.step for e in found if isinstance(e, ev.StepEnded))
    assert finals == {f"1.{i}": 1 for i in range(1, 8)}
    assert all(n == 1 for n in ran(folder).values()) and len(ran(folder)) == 7


# == --sequential replays the same spec =========================================================


def replay_spec(make: Any) -> PSpec:
    spec: PSpec = make([
        [pstep(1), pstep(2, depends_on=[1]), pstep(3, depends_on=[1]),
         pstep(4, depends_on=[2, 3])],
        [pstep(1, depends_on=["1.1"]), pstep(2), pstep(3, depends_on=[2])],
        [pstep(1), pstep(2, depends_on=[1], trigger_rule="all_done")],
    ], plan={"1.1:primary": [{"n": 1}], "1.2:primary": [{"n": 2}], "1.4:primary": [{"n": 4}],
             "2.2:primary": ["fail"], "3.1:primary": [[3, 1]]},
        sleeps={"1.2": 0.15, "1.3": 0.1, "2.1": 0.1})
    spec.task_keys(3, "depends_on = []")
    return spec


def test_sequential_replays_a_parallel_run_in_plan_order(make: Any) -> None:
    par, seq = replay_spec(make), replay_spec(make)
    fast = par.run(parallel=True, max_parallel=4)
    slow = seq.run(sequential=True)

    def final(run: Run) -> dict[str, tuple[Any, ...]]:
        return {ref: (st.status, st.skip_reason, st.method_used, st.output)
                for ref, st in run.result.state.steps.items()}

    assert final(fast) == final(slow)
    assert final(slow)["2.3"] == ("skipped", "upstream_failed", None, None)
    assert final(slow)["1.4"][3] == {"n": 4}
    assert (fast.result.goal, fast.code) == (slow.result.goal, slow.code)
    assert (planned(fast).parallel, planned(slow).parallel) == (True, False)
    assert planned(slow).reason == "--sequential" and planned(slow).max_parallel == 1
    assert max_overlap(par.spans().values()) >= 2
    order = [e.step for e in slow.named("step-started") if isinstance(e, ev.StepStarted)]
    plan_order = [r for r in build_plan(load_spec(seq.folder, project=False).require()).order
                  if r in order]
    assert order == plan_order
    spans = seq.spans()
    ran_order = sorted(spans, key=lambda r: spans[r][0])
    assert ran_order == [r for r in order if r in spans]
    assert all(spans[b][0] >= spans[a][1] for a, b in itertools.pairwise(ran_order))
    assert max_overlap(spans.values()) == 1
    assert slow.result.state.max_running == 1
    assert {e.slot for e in started(slow).values()} == {1}  # one lane


# == rate limits ================================================================================


@pytest.mark.parametrize("limited", [False, True])
def test_a_rate_limited_step_lowers_the_concurrency(make: Any, limited: bool) -> None:
    spec = make([[pstep(1, retries=2), *(pstep(i, depends_on=[1]) for i in range(2, 8))]],
                execution={"parallel_enabled": True, "max_parallel_steps": 3},
                plan={"1.1:primary": ["transient", "transient", "ok"] if limited else ["ok"]},
                sleeps={"1.1": 0.01, **{f"1.{i}": 0.12 for i in range(2, 8)}})
    run = spec.run()
    assert run.code == 0
    attempts = run.result.state.steps["1.1"].attempts
    assert len(attempts) == (3 if limited else 1)
    if limited:
        assert "rate limited" in (attempts[0].failure_reason or "")
    t = spec.spans()
    fan = [t[f"1.{i}"] for i in range(2, 8)]
    assert max_overlap(fan) == (2 if limited else 3)
    slots = {s.slot for r, s in started(run).items() if r != "1.1"}
    assert slots == ({1, 2} if limited else {1, 2, 3})


def test_the_scheduler_lowers_its_limit_once_per_rate_limited_step(make: Any) -> None:
    """In-process: the scheduler's own counters after a run with two rate-limited steps."""
    from specs.engine import scheduler as sched

    spec = make([[pstep(1, depends_on=[], retries=1), pstep(2, depends_on=[], retries=1),
                  pstep(3, depends_on=[])]],
                execution={"parallel_enabled": True, "max_parallel_steps": 3},
                plan={"1.1:primary": ["transient", "ok"], "1.2:primary": ["transient", "ok"]})
    seen: list[sched.Scheduler] = []
    original = sched.Scheduler.run

    async def spy(self: sched.Scheduler) -> None:
        seen.append(self)
        await original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sched.Scheduler, "run", spy)
        run = spec.run()
    assert run.code == 0
    (scheduler,) = seen
    assert (scheduler.limit, scheduler.throttled, scheduler.max_concurrent) == (1, 2, 3)
    assert scheduler.running == {} and not any(scheduler.held.values())


# == the project constitution ===================================================================


@pytest.mark.parametrize("flag", [None, True])
def test_the_project_constitution_keeps_runs_sequential_unless_parallel_is_asked(
        make: Any, flag: bool | None) -> None:
    spec = make([[pstep(1), pstep(2, depends_on=[1]), pstep(3, depends_on=[1]),
                  pstep(4, depends_on=[2, 3])]], execution=PARALLEL)
    (spec.folder / "project_constitution.toml").write_text(
        "[optional_features]\nparallel_execution = false\n")
    spec.append('[project_constitution]\nconstitution_file = "project_constitution.toml"\n')
    run = run_with(spec, project=True, parallel=flag)
    assert run.code == 0
    plan = planned(run)
    t = spec.spans()
    if flag is None:
        assert (plan.parallel, plan.max_parallel) == (False, 1)
        assert plan.reason == "the project constitution sets parallel_execution = false"
        assert max_overlap(t.values()) == 1
    else:
        assert (plan.parallel, plan.max_parallel) == (True, 4)
        assert plan.reason == ("--parallel (overriding the project constitution's "
                               "parallel_execution = false)")
        assert overlap(t["1.2"], t["1.3"])
