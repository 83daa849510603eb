"""The plan (specs.plan.graph): edges, order, phases, critical path, SPECLet stages, conflicts,
cycles, the four output formats and ``specs plan``. Specs are small documents built here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specs.errors import SpecError
from specs.plan.graph import Plan, PlanError, build_plan
from specs.plan.render import FORMATS, render, render_dot, render_mermaid, render_text, to_json
from specs.spec.load import load_spec, spec_from_document
from specs.spec.model import Spec, Step, Task
from specs.spec.validate import validate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DASHBOARD = CORPUS / "__SPEC_Engine" / "_TOOLSPECs" / "Dashboard_SPEC_Engine"


def step(i: int, **keys: Any) -> dict[str, Any]:
    return {"id": i, "description": f"step {i}", "expected_output": "done", **keys}


def task(i: int, *steps: dict[str, Any], **keys: Any) -> dict[str, Any]:
    return {"id": i, "description": f"task {i}", "steps": list(steps), **keys}


def make(*tasks: dict[str, Any], **sections: Any) -> Spec:
    spec, found = spec_from_document({"goal": {"description": "Plan things"},
                                      "tasks": list(tasks), **sections})
    assert spec is not None, found
    return spec


def chain(n: int) -> list[dict[str, Any]]:
    return [step(i) for i in range(1, n + 1)]


def edges(plan: Plan) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in plan.edges}


def assert_consistent(plan: Plan) -> None:
    """The invariants every plan keeps."""
    position = {ref: i for i, ref in enumerate(plan.order)}
    assert sorted(plan.order) == sorted(plan.nodes)
    if plan.sequential:
        assert plan.phases == tuple((ref,) for ref in plan.order)
    else:
        by_phase = sorted(plan.order, key=lambda r: (plan.nodes[r].phase, position[r]))
        assert [ref for phase in plan.phases for ref in phase] == by_phase
    for ref, node in plan.nodes.items():
        assert all(position[d] < position[ref] for d in node.deps)
        if not plan.sequential:
            assert node.phase == 1 + max((plan.nodes[d].phase for d in node.deps), default=0)
            assert ref in plan.phases[node.phase - 1]
        for dep in node.deps:
            assert ref in plan.dependents[dep]
    if plan.nodes and not plan.sequential:
        assert len(plan.critical_path) == len(plan.phases)
        for a, b in zip(plan.critical_path, plan.critical_path[1:], strict=False):
            assert a in plan.nodes[b].deps


# --- the sequential default --------------------------------------------------------------------


def test_sequential_default_follows_the_ids() -> None:
    plan = build_plan(make(task(1, *chain(3)), task(2, *chain(2)), task(3, step(1))))
    ids = ("1.1", "1.2", "1.3", "2.1", "2.2", "3.1")
    assert plan.order == ids
    assert plan.phases == tuple((ref,) for ref in ids)
    assert plan.critical_path == ids
    assert plan.width == 1
    assert plan.parallel_opportunities == () and plan.conflicts == ()
    assert edges(plan) == {("1.1", "1.2", "step-order"), ("1.2", "1.3", "step-order"),
                           ("1.3", "2.1", "task-order"), ("2.1", "2.2", "step-order"),
                           ("2.2", "3.1", "task-order")}
    assert all(e.implicit for e in plan.edges)
    assert plan.nodes["2.2"].deps == ("2.1",)
    assert plan.nodes["1.1"].phase == 1 and plan.nodes["3.1"].phase == 6
    assert_consistent(plan)


def test_steps_are_ordered_by_id_not_by_position_in_the_file() -> None:
    plan = build_plan(make(task(1, step(3), step(1), step(2))))
    assert plan.order == ("1.1", "1.2", "1.3")
    assert plan.nodes["1.3"].deps == ("1.2",)


def test_node_fields_come_from_the_step() -> None:
    plan = build_plan(make(task(1, step(1, critical_flag=False, parallel_safe=False,
                                          parallel_group="io", resources_required=["db", "db"],
                                          output_files=["a.csv"], trigger_rule="all_done"))))
    node = plan.nodes["1.1"]
    assert (node.ref, node.task, node.step_id, node.deps) == ("1.1", "1", 1, ())
    assert (node.critical, node.parallel_safe, node.parallel_group) == (False, False, "io")
    assert (node.resources, node.output_files, node.trigger_rule) == (("db",), ("a.csv",),
                                                                     "all_done")
    default = build_plan(make(task(1, step(1)))).nodes["1.1"]
    assert (default.parallel_safe, default.trigger_rule, default.critical) == (
        True, "all_success", True)


def test_sequential_flag_runs_one_step_at_a_time() -> None:
    spec = make(task(1, step(1), step(2, depends_on=[]), step(3, depends_on=[1, 2])))
    parallel, sequential = build_plan(spec), build_plan(spec, sequential=True)
    assert parallel.width == 2
    assert sequential.order == parallel.order == ("1.1", "1.2", "1.3")
    assert sequential.phases == (("1.1",), ("1.2",), ("1.3",))
    assert sequential.critical_path == sequential.order and sequential.width == 1
    assert sequential.nodes["1.3"].deps == ("1.1", "1.2")  # real dependencies are kept
    assert sequential.parallel_opportunities == () and sequential.sequential
    assert_consistent(sequential)


# --- step dependencies ------------------------------------------------------------------------


def test_diamond() -> None:
    plan = build_plan(make(task(1, step(1), step(2, depends_on=[1]), step(3, depends_on=["1"]),
                                step(4, depends_on=[2, 3]))))
    assert plan.phases == (("1.1",), ("1.2", "1.3"), ("1.4",))
    assert plan.nodes["1.4"].deps == ("1.2", "1.3")
    assert plan.critical_path == ("1.1", "1.2", "1.4")  # ties go to the earlier step
    assert plan.width == 2
    assert [(o.phase, o.steps) for o in plan.parallel_opportunities] == [(2, ("1.2", "1.3"))]
    assert {e.kind for e in plan.edges} == {"depends_on"}
    assert plan.dependents["1.1"] == ("1.2", "1.3")
    assert_consistent(plan)


def test_fan_out_fan_in() -> None:
    plan = build_plan(make(task(1, step(1), *(step(i, depends_on=[1]) for i in range(2, 6)),
                                step(6, depends_on=[2, 3, 4, 5])), task(2, step(1))))
    assert plan.phases == (("1.1",), ("1.2", "1.3", "1.4", "1.5"), ("1.6",), ("2.1",))
    assert plan.width == 4
    assert plan.nodes["2.1"].deps == ("1.6",)  # the task's only sink
    assert len(plan.critical_path) == 4
    assert_consistent(plan)


def test_a_step_without_depends_on_follows_the_previous_step_even_after_a_branch() -> None:
    plan = build_plan(make(task(1, step(1), step(2, depends_on=[]), step(3))))
    assert plan.nodes["1.2"].deps == ()
    assert plan.nodes["1.3"].deps == ("1.2",)
    assert plan.phases == (("1.1", "1.2"), ("1.3",))
    assert_consistent(plan)


def test_cross_task_step_dependencies() -> None:
    plan = build_plan(make(task(1, *chain(3)), task(2, step(1, depends_on=["1.1"]), step(2))))
    assert plan.nodes["2.1"].deps == ("1.1",)
    assert plan.nodes["2.2"].deps == ("2.1",)  # task 2 declared its place: no task order
    assert plan.phases == (("1.1",), ("1.2", "2.1"), ("1.3", "2.2"))
    assert ("1.1", "2.1", "depends_on") in edges(plan)
    assert not any(e.kind == "task-order" for e in plan.edges)
    assert_consistent(plan)


def test_implicit_edges_only_reach_steps_that_declare_nothing() -> None:
    # 3.2 names a step of task 1 and gets exactly that; 3.1 declares nothing and still
    # follows task 2; 4.1 declares "no dependencies" and may start at once
    plan = build_plan(make(task(1, step(1)), task(2, step(1)),
                           task(3, step(1), step(2, depends_on=["1.1"])),
                           task(4, step(1, depends_on=[]), step(2))))
    assert plan.nodes["3.1"].deps == ("2.1",)
    assert plan.nodes["3.2"].deps == ("1.1",)
    assert plan.nodes["4.1"].deps == ()
    assert plan.nodes["4.2"].deps == ("4.1",)
    assert plan.phases == (("1.1", "4.1"), ("2.1", "3.2", "4.2"), ("3.1",))


def test_forward_references_hoist_the_step_or_task_they_name() -> None:
    plan = build_plan(make(task(1, step(1, depends_on=[3]), step(2), step(3))))
    assert plan.nodes["1.3"].deps == ()  # step 1 waits for it: it starts the task
    assert plan.nodes["1.2"].deps == ("1.1",)
    assert plan.order == ("1.3", "1.1", "1.2")
    plan = build_plan(make(task(1, step(1, depends_on=["2.1"]), step(2)), task(2, *chain(2)),
                           task(3, step(1))))
    assert plan.nodes["2.1"].deps == ()  # task 1 waits for task 2: no implicit 1 -> 2
    assert plan.nodes["3.1"].deps == ("2.2",)  # task 3 still follows task 2
    assert plan.order == ("2.1", "1.1", "1.2", "2.2", "3.1")
    assert_consistent(plan)


# --- task dependencies -------------------------------------------------------------------------


def test_task_depends_on_links_sinks_to_entries() -> None:
    plan = build_plan(make(
        task(1, step(1), step(2, depends_on=[])),                       # two entries, two sinks
        task(2, step(1), step(2, depends_on=[]), depends_on=[1]),
        task(3, step(1), depends_on=[]),                                 # explicitly free
        task(4, step(1))))                                               # follows task 3
    assert plan.nodes["2.1"].deps == ("1.1", "1.2")
    assert plan.nodes["2.2"].deps == ("1.1", "1.2")
    assert {e.kind for e in plan.edges if e.target.startswith("2.")} == {"task"}
    assert plan.nodes["3.1"].deps == ()
    assert plan.nodes["4.1"].deps == ("3.1",)
    assert plan.phases == (("1.1", "1.2", "3.1"), ("2.1", "2.2", "4.1"))
    assert_consistent(plan)


def test_task_depends_on_a_task_with_a_diamond_waits_for_its_single_sink() -> None:
    plan = build_plan(make(
        task(1, step(1), step(2, depends_on=[1]), step(3, depends_on=[1]),
             step(4, depends_on=[2, 3])),
        task(2, step(1), depends_on=[]),
        task(3, step(1), step(2), depends_on=[1, 2])))
    assert plan.nodes["3.1"].deps == ("1.4", "2.1")
    assert plan.nodes["3.2"].deps == ("3.1",)
    assert plan.critical_path == ("1.1", "1.2", "1.4", "3.1", "3.2")
    assert_consistent(plan)


def test_implicit_task_order_can_be_switched_off() -> None:
    spec = make(task(1, *chain(2)), task(2, *chain(2)), task(3, step(1), depends_on=[1]))
    plan = build_plan(spec, implicit_task_order=False)
    assert plan.nodes["2.1"].deps == ()
    assert plan.nodes["3.1"].deps == ("1.2",)
    assert plan.phases == (("1.1", "2.1"), ("1.2", "2.2"), ("3.1",))
    assert not plan.implicit_task_order
    assert build_plan(spec).nodes["2.1"].deps == ("1.2",)


def test_a_task_without_steps_passes_its_order_on() -> None:
    plan = build_plan(make(task(1, *chain(2)), task(2), task(3, step(1))))
    assert plan.nodes["3.1"].deps == ("1.2",)
    assert [t.ref for t in plan.tasks] == ["1", "2", "3"]
    assert plan.tasks[1].steps == ()


# --- SPECLets ----------------------------------------------------------------------------------


TEMPLATE_SPECLETS = [
    {"id": "platform", "description": "core", "depends_on": [], "tasks": [1, 2],
     "parallel_allowed": True},
    {"id": "discovery", "description": "d", "depends_on": ["platform"], "tasks": [3],
     "parallel_allowed": True},
    {"id": "define", "description": "e", "depends_on": ["platform"], "tasks": [4],
     "parallel_allowed": True},
    {"id": "test", "description": "t", "depends_on": ["discovery", "define"], "tasks": [5],
     "parallel_allowed": False},
]


def test_speclets_in_the_template_shape() -> None:
    spec = make(*(task(i, *chain(2)) for i in range(1, 6)), speclets=TEMPLATE_SPECLETS)
    plan = build_plan(spec)
    assert [(s.number, s.speclets, s.parallel, s.tasks) for s in plan.stages] == [
        (1, ("platform",), False, ("1", "2")),
        (2, ("discovery", "define"), True, ("3", "4")),
        (3, ("test",), False, ("5",))]
    assert plan.nodes["2.1"].deps == ("1.2",)        # tasks inside a SPECLet are sequential
    assert plan.nodes["3.1"].deps == ("2.2",)        # the platform SPECLet's sink
    assert plan.nodes["4.1"].deps == ("2.2",)        # not after task 3: another SPECLet
    assert plan.nodes["5.1"].deps == ("3.2", "4.2")  # both SPECLets it depends on
    assert ("2.2", "4.1", "speclet") in edges(plan)
    assert plan.nodes["3.1"].speclet == "discovery"
    assert plan.phases[4:6] == (("3.1", "4.1"), ("3.2", "4.2"))
    assert [o.phase for o in plan.parallel_opportunities] == [5, 6]
    assert plan.speclet_names["platform"] == "core"
    assert_consistent(plan)


def test_speclets_that_do_not_allow_parallel_execution_run_alone() -> None:
    speclets = [dict(s, parallel_allowed=False) if s["id"] == "define" else s
                for s in TEMPLATE_SPECLETS]
    plan = build_plan(make(*(task(i, *chain(2)) for i in range(1, 6)), speclets=speclets))
    assert plan.stages[1].parallel is False
    assert plan.phases[4] == ("3.1", "4.1")  # the graph allows it ...
    assert plan.parallel_opportunities == ()  # ... the SPECLet does not


def test_speclets_in_the_nested_dashboard_shape() -> None:
    def nested(i: int, name: str, deps: list[str], allowed: bool) -> dict[str, Any]:
        return {"id": i, "name": name, "dependencies": deps, "parallel_allowed": allowed,
                "tasks": [task(1, *chain(2)), task(2, *chain(2))]}
    spec = make(speclets=[nested(1, "backend", [], True), nested(2, "frontend", [], True),
                          nested(3, "glue", ["backend", "frontend"], False)])
    plan = build_plan(spec)
    assert plan.order[:2] == ("1.1.1", "1.1.2")
    assert plan.nodes["1.2.1"].deps == ("1.1.2",)
    assert plan.nodes["2.1.1"].deps == ()
    assert plan.nodes["3.1.1"].deps == ("1.2.2", "2.2.2")
    assert plan.nodes["3.1.1"].task == "3.1" and plan.nodes["3.1.1"].speclet == "3"
    assert [(s.speclets, s.parallel) for s in plan.stages] == [(("1", "2"), True),
                                                              (("3",), False)]
    assert plan.phases[0] == ("1.1.1", "2.1.1")
    assert plan.speclet_names == {"1": "backend", "2": "frontend", "3": "glue"}
    assert_consistent(plan)


@pytest.mark.skipif(not DASHBOARD.is_dir(), reason="../shared/corpus is not available")
def test_the_dashboard_toolspec_plans_in_stages() -> None:
    spec = load_spec(DASHBOARD).require()
    plan = build_plan(spec)
    assert len(plan.nodes) == spec.step_count()
    stages = [(s.speclets, s.parallel) for s in plan.stages]
    assert stages[0] == (("1", "2"), True)
    assert stages[-1] == (("8",), False)
    assert len(stages) == 5
    assert plan.phases[0] == ("1.1.1", "2.1.1")
    first_of_3 = plan.nodes["3.1.1"]
    assert set(first_of_3.deps) == {"1.3.5", "2.3.4"}
    assert_consistent(plan)


# --- critical path ----------------------------------------------------------------------------


def test_critical_path_is_the_longest_chain() -> None:
    plan = build_plan(make(task(1, step(1), step(2, depends_on=[]), step(3, depends_on=[2]),
                                step(4, depends_on=[3]), step(5, depends_on=[1, 4]))))
    assert plan.critical_path == ("1.2", "1.3", "1.4", "1.5")
    assert "critical path 4 steps: 1.2 -> 1.3 -> 1.4 -> 1.5" in plan.summary()


def test_critical_path_ties_go_to_the_earlier_chain() -> None:
    plan = build_plan(make(task(1, step(1), step(2, depends_on=[1]), step(3, depends_on=[]),
                                step(4, depends_on=[3]))))
    assert plan.critical_path == ("1.1", "1.2")


def test_an_empty_spec_has_an_empty_plan() -> None:
    plan = build_plan(Spec())
    assert plan.order == () and plan.phases == () and plan.critical_path == ()
    assert plan.width == 0
    assert "0 steps in 0 phases" in plan.summary()
    for fmt in FORMATS:
        assert render(plan, fmt)


# --- conflicts ---------------------------------------------------------------------------------


def test_output_file_and_resource_conflicts_within_a_phase() -> None:
    spec = make(task(1, step(1),
                     step(2, depends_on=[1], output_files=["out/report.csv"],
                          resources_required=["db"]),
                     step(3, depends_on=[1], output_files=["./out/report.csv"],
                          resources_required=["gpu"]),
                     step(4, depends_on=[1], output_files=["out/*.csv"]),
                     step(5, depends_on=[1], resources_required=["db", "pool"]),
                     step(6, depends_on=[1], resources_required=["pool"]),
                     step(7, depends_on=[2], output_files=["out/report.csv"])),
                resources={"pool": 2})
    plan = build_plan(spec)
    found = {(c.first, c.second, c.kind, c.items) for c in plan.conflicts}
    assert found == {
        ("1.2", "1.3", "output_files", ("out/report.csv",)),
        ("1.2", "1.4", "output_files", ("out/report.csv",)),
        ("1.3", "1.4", "output_files", ("out/report.csv",)),
        ("1.2", "1.5", "resources", ("db",)),
    }  # pool has capacity 2; 1.7 comes after 1.2 and runs in a later phase
    opportunity = plan.parallel_opportunities[0]
    assert opportunity.phase == 2 and len(opportunity.conflicts) == 4
    assert "Conflicts" in render_text(plan)


def test_a_phase_whose_steps_all_conflict_is_no_opportunity() -> None:
    plan = build_plan(make(task(1, step(1), step(2, depends_on=[1], output_files=["a"]),
                                step(3, depends_on=[1], output_files=["a"]),
                                step(4, depends_on=[1], parallel_safe=False))))
    assert len(plan.conflicts) == 1
    assert plan.parallel_opportunities == ()
    plan = build_plan(make(task(1, step(1), step(2, depends_on=[1], parallel_safe=False),
                                step(3, depends_on=[1]), step(4, depends_on=[1]))))
    [opportunity] = plan.parallel_opportunities
    assert opportunity.serial == ("1.2",)


# --- cycles ------------------------------------------------------------------------------------


def test_a_cycle_raises_with_its_path() -> None:
    spec = make(task(1, step(1), step(2, depends_on=[3]), step(3, depends_on=[2])))
    with pytest.raises(PlanError) as info:
        build_plan(spec)
    assert info.value.cycle == ["1.2", "1.3", "1.2"]
    assert "dependency cycle: 1.2 -> 1.3 -> 1.2" in str(info.value)
    assert info.value.code == "E-DEP-CYCLE"
    assert isinstance(info.value, SpecError)


def test_a_cross_task_cycle_lists_every_step() -> None:
    spec = make(task(1, step(1, depends_on=["2.2"])),
                task(2, step(1, depends_on=["1.1"]), step(2, depends_on=[1])))
    with pytest.raises(PlanError) as info:
        build_plan(spec)
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] == "1.1"
    assert set(cycle) == {"1.1", "2.1", "2.2"}


def test_a_cycle_through_the_implicit_order_says_so() -> None:
    spec = make(task(1, step(1, depends_on=[3]), step(2), step(3, depends_on=[2])))
    with pytest.raises(PlanError) as info:
        build_plan(spec)
    message = str(info.value)
    assert info.value.cycle == ["1.1", "1.3", "1.2", "1.1"]
    assert "1.2 -> 1.1 is the implicit step order" in message
    assert "declare depends_on" in message


def test_a_speclet_cycle_raises() -> None:
    spec = make(task(1, step(1)), task(2, step(1)), speclets=[
        {"id": "a", "depends_on": ["b"], "tasks": [1]},
        {"id": "b", "depends_on": ["a"], "tasks": [2]}])
    with pytest.raises(PlanError) as info:
        build_plan(spec)
    assert info.value.code == "E-SPECLET-CYCLE"
    assert set(info.value.cycle) == {"a", "b"}


def test_problems_validation_reports_do_not_break_the_plan() -> None:
    spec = make(
        task(1, step(1, depends_on=[9, "7.1", "x", 1, True]), step(1), step(2)),
        task(1, step(5)),                       # duplicate task: the first wins
        task(2, step(1), depends_on=[42, 2]),   # unknown and self
        task(3),                                # no steps
        speclets=[{"id": "s", "depends_on": ["nope"], "tasks": [2, 99]}])
    plan = build_plan(spec)
    assert plan.order == ("1.1", "1.2", "2.1")
    assert plan.nodes["1.1"].deps == ()
    assert_consistent(plan)


# --- properties --------------------------------------------------------------------------------


@st.composite
def random_specs(draw: st.DrawFn) -> Spec:
    tasks = []
    n_tasks = draw(st.integers(1, 5))
    sizes = [draw(st.integers(1, 5)) for _ in range(n_tasks)]
    for t, size in enumerate(sizes, 1):
        steps = []
        for s in range(1, size + 1):
            deps: list[int | str] | None = None
            if draw(st.booleans()):
                deps = draw(st.lists(st.integers(1, size), max_size=2))
                if draw(st.booleans()):
                    other = draw(st.integers(1, n_tasks))
                    deps.append(f"{other}.{draw(st.integers(1, sizes[other - 1]))}")
            steps.append(Step(id=s, description="x", depends_on=deps))
        task_deps = (draw(st.lists(st.integers(1, n_tasks), max_size=2))
                     if draw(st.booleans()) else None)
        tasks.append(Task(id=t, description="t", steps=steps, depends_on=task_deps))
    return Spec(tasks=tasks)


@settings(max_examples=200, deadline=None)
@given(random_specs(), st.booleans())
def test_every_plan_is_consistent_or_names_a_real_cycle(spec: Spec, implicit: bool) -> None:
    try:
        plan = build_plan(spec, implicit_task_order=implicit)
    except PlanError as exc:
        assert exc.cycle[0] == exc.cycle[-1] and len(exc.cycle) >= 3
        refs = {f"{t.ref}.{s.id}" for t, s in spec.steps()}
        assert set(exc.cycle) <= refs
        return
    assert_consistent(plan)
    for t, s in spec.steps():
        node = plan.nodes[f"{t.ref}.{s.id}"]
        for dep in s.depends_on or ():
            text = str(dep)
            ref = text if "." in text else f"{t.ref}.{text}"
            if ref != node.ref:
                assert ref in node.deps
    assert_consistent(build_plan(spec, implicit_task_order=implicit, sequential=True))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=6))
def test_a_spec_without_dependencies_keeps_its_id_order(sizes: list[int]) -> None:
    spec = Spec(tasks=[Task(id=t, description="t", steps=[Step(id=s) for s in range(1, n + 1)])
                       for t, n in enumerate(sizes, 1)])
    plan = build_plan(spec)
    expected = tuple(f"{t}.{s}" for t, n in enumerate(sizes, 1) for s in range(1, n + 1))
    assert plan.order == expected == plan.critical_path
    assert plan.phases == tuple((ref,) for ref in expected)


def test_a_large_spec_plans() -> None:
    # 10,000 steps (no timing assertion: this guards against quadratic work by finishing)
    spec = Spec(tasks=[Task(id=t, description="t", steps=[
        Step(id=s, depends_on=[s - 1, max(1, s - 3)] if s > 1 and t % 2 else None)
        for s in range(1, 11)]) for t in range(1, 1001)])
    plan = build_plan(spec)
    assert len(plan.nodes) == 10_000
    assert_consistent(plan)


# --- the corpus --------------------------------------------------------------------------------


def corpus_files() -> Iterator[Path]:
    if CORPUS.is_dir():
        yield from sorted(CORPUS.rglob("parameters_*.toml"))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not available")
@pytest.mark.parametrize("path", list(corpus_files()),
                         ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_corpus_spec_plans(path: Path) -> None:
    loaded = load_spec(path)
    assert loaded.spec is not None
    plan = build_plan(loaded.spec)
    assert len(plan.nodes) == len({f"{t.ref}.{s.id}" for t, s in loaded.spec.steps()})
    assert_consistent(plan)
    for fmt in FORMATS:
        assert render(plan, fmt)


# --- formats -----------------------------------------------------------------------------------


def sample() -> Plan:
    return build_plan(make(
        task(1, step(1, description='Export "sales" <table> & more'),
             step(2, depends_on=[1], output_files=["a.csv"]),
             step(3, depends_on=[1], output_files=["a.csv"]), step(4, depends_on=[2, 3]),
             step(5, depends_on=[1])),
        task(2, *chain(2))))


def test_text_format() -> None:
    text = render_text(sample())
    for heading in ("Phases", "Critical path (5 steps)", "Parallel opportunities",
                    "Conflicts", "Steps (in order"):
        assert heading in text
    assert "1.1 -> 1.2 -> 1.4 -> 2.1 -> 2.2" in text
    assert "1.2 / 1.3: both write a.csv" in text


def test_mermaid_format() -> None:
    plan = sample()
    text = render_mermaid(plan)
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert sum(line.strip().startswith("subgraph ") for line in lines) == len(plan.tasks)
    assert sum(line.strip() == "end" for line in lines) == len(plan.tasks)
    assert text.count("[") == text.count("]") and text.count('"') % 2 == 0
    for ref in plan.nodes:
        assert re.search(rf'\["{re.escape(ref)} ', text), ref
        assert f"s_{ref.replace('.', '_')}" in text
    assert "s_1_1 ==> s_1_2" in text           # critical path: thick
    assert "s_1_1 --> s_1_3" in text           # declared
    assert "class s_1_1,s_1_2,s_1_4,s_2_1,s_2_2 critical" in text
    assert "#quot;sales#quot; #lt;table#gt; #amp; more" in text


def test_mermaid_groups_tasks_in_speclets_and_dashes_implicit_edges() -> None:
    spec = make(*(task(i, *chain(2)) for i in range(1, 6)), speclets=TEMPLATE_SPECLETS)
    text = render_mermaid(build_plan(spec))
    assert text.count("subgraph ") == 5 + 4
    assert text.count("subgraph ") == sum(line.strip() == "end" for line in text.splitlines())
    assert 'subgraph g_platform["SPECLet platform core"]' in text
    plan = build_plan(make(task(1, step(1), step(2, depends_on=[]), step(3))))
    assert "s_1_2 ==> s_1_3" in render_mermaid(plan)
    plan = build_plan(make(task(1, step(1), step(2), step(3, depends_on=[]), step(4),
                                step(5))))
    assert "s_1_1 -.-> s_1_2" in render_mermaid(plan)


def test_dot_format() -> None:
    plan = sample()
    text = render_dot(plan)
    assert text.startswith("digraph plan {") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    assert text.replace('\\"', "").count('"') % 2 == 0
    assert text.count("subgraph \"cluster_task_") == len(plan.tasks)
    for ref in plan.nodes:
        assert f'"{ref}" [label=' in text
    assert '"1.1" -> "1.2" [style=bold, penwidth=2.5];' in text
    assert '"1.1" -> "1.3";' in text
    assert 'Export \\"sales\\"' in text


def test_json_format_round_trips() -> None:
    plan = sample()
    data = to_json(plan)
    assert json.loads(json.dumps(data)) == data
    assert set(data) >= {"nodes", "edges", "order", "phases", "critical_path", "stages",
                         "parallel_opportunities", "conflicts"}
    assert [n["ref"] for n in data["nodes"]] == list(plan.order)
    assert {"from": "1.1", "to": "1.2", "kind": "depends_on"} in data["edges"]
    assert data["conflicts"] == [{"steps": ["1.2", "1.3"], "kind": "output_files",
                                  "items": ["a.csv"]}]
    assert json.loads(render(plan, "json")) == data


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown plan format"):
        render(sample(), "svg")


# --- the command line --------------------------------------------------------------------------


PLANNED = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather"

[[tasks.steps]]
id = 1
description = "Export the table"
expected_output = "sales.csv"
critical_flag = true

[[tasks.steps.backups]]
id = 1
description = "Copy by hand"
trigger_condition = "primary_failure"

[[tasks.steps]]
id = 2
description = "Check the totals"
expected_output = "a note"
critical_flag = false
depends_on = [1]

[[tasks.steps]]
id = 3
description = "Chart the totals"
expected_output = "chart.png"
critical_flag = false
depends_on = [1]
"""

IMPLICIT_CYCLE = PLANNED.replace('expected_output = "sales.csv"\n',
                                 'expected_output = "sales.csv"\ndepends_on = [3]\n').replace(
    'critical_flag = false\ndepends_on = [1]\n', "critical_flag = false\n", 1).replace(
    "depends_on = [1]\n", "depends_on = [2]\n")


def test_cli_plan_formats(run_cli: Any, write_spec: Any, tmp_path: Path) -> None:
    folder = write_spec(tmp_path, PLANNED)
    code, out, err = run_cli("plan", folder)
    assert code == 0, err
    assert out.startswith("3 steps in 2 phases, width 2")
    code, out, _ = run_cli("plan", folder, "--format", "json")
    assert code == 0 and json.loads(out)["phases"] == [["1.1"], ["1.2", "1.3"]]
    code, out, _ = run_cli("plan", folder, "--format", "mermaid")
    assert code == 0 and out.startswith("flowchart TD")
    code, out, _ = run_cli("plan", folder, "-f", "dot")
    assert code == 0 and out.startswith("digraph plan {")
    code, out, _ = run_cli("plan", folder, "--sequential", "--format", "json")
    assert code == 0 and json.loads(out)["phases"] == [["1.1"], ["1.2"], ["1.3"]]


def test_cli_plan_errors(run_cli: Any, write_spec: Any, tmp_path: Path) -> None:
    good = write_spec(tmp_path, PLANNED, name="good")
    code, _, err = run_cli("plan", good, "--format", "svg")
    assert code == 2 and "--format 'svg'" in err
    code, _, err = run_cli("plan", tmp_path / "missing")
    assert code == 2 and "not found" in err
    invalid = write_spec(tmp_path, PLANNED.replace("depends_on = [1]\n", "depends_on = [7]\n",
                                                   1), name="invalid")
    code, out, err = run_cli("plan", invalid)
    assert code == 1 and out == "" and "E-DEP-UNKNOWN" in err
    cyclic = write_spec(tmp_path, PLANNED.replace("critical_flag = true\n",
                                                  "critical_flag = true\ndepends_on = [2]\n",
                                                  1), name="cyclic")
    code, _, err = run_cli("plan", cyclic)  # validation sees this one
    assert code == 1 and "E-DEP-CYCLE" in err and "1.1" in err


def test_cli_plan_reports_a_cycle_only_the_plan_sees(run_cli: Any, write_spec: Any,
                                                     tmp_path: Path) -> None:
    folder = write_spec(tmp_path, IMPLICIT_CYCLE)
    errors = [d for d in validate(load_spec(folder)) if d.severity.value == "error"]
    assert errors == []  # valid: the cycle runs through the implicit step order
    code, out, err = run_cli("plan", folder, cwd=tmp_path)
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("demo/parameters_demo.toml: error E-DEP-CYCLE dependency cycle: "
                           "1.1 -> 1.3 -> 1.2 -> 1.1")


# -- parallel groups (issue 13 item 14) ----------------------------------------------------------


def test_consecutive_members_of_a_parallel_group_follow_the_step_before_the_group() -> None:
    spec = make(task(1, step(1), step(2, parallel_group="fetch"), step(3, parallel_group="fetch"),
                     step(4, parallel_group="fetch"), step(5)),
                task(2, step(1, parallel_group="fetch"), step(2, parallel_group="fetch")))
    plan = build_plan(spec)
    assert_consistent(plan)
    assert plan.phases == (("1.1",), ("1.2", "1.3", "1.4"), ("1.5",), ("2.1", "2.2"))
    assert {(a, b) for a, b, kind in edges(plan) if kind == "step-order"} == {
        ("1.1", "1.2"), ("1.1", "1.3"), ("1.1", "1.4"),  # each member follows step 1
        ("1.2", "1.5"), ("1.3", "1.5"), ("1.4", "1.5")}  # step 5 waits for the whole group
    # a group that opens a task follows the previous task as one
    assert plan.nodes["2.1"].deps == plan.nodes["2.2"].deps == ("1.5",)
    assert len(plan.parallel_opportunities) == 2


def test_a_group_is_cut_by_another_step_and_depends_on_is_kept() -> None:
    spec = make(task(1, step(1, parallel_group="a"), step(2, parallel_group="a"),
                     step(3), step(4, parallel_group="a"), step(5, parallel_group="b"),
                     step(6, parallel_group="b", depends_on=[1]), step(7, parallel_group="b")))
    plan = build_plan(spec)
    assert_consistent(plan)
    deps = {ref: node.deps for ref, node in plan.nodes.items()}
    assert deps == {"1.1": (), "1.2": (), "1.3": ("1.1", "1.2"), "1.4": ("1.3",),
                    "1.5": ("1.4",), "1.6": ("1.1",), "1.7": ("1.4",)}


def test_specs_plan_shows_a_parallel_group_in_one_phase(run_cli, write_spec, tmp_path) -> None:
    folder = write_spec(tmp_path, """\
        [goal]
        description = "Fetch three sources at once, then merge them"
        [[tasks]]
        id = 1
        description = "Fetch and merge"
        [[tasks.steps]]
        id = 1
        description = "Prepare"
        [[tasks.steps]]
        id = 2
        description = "Fetch A"
        parallel_group = "fetch"
        [[tasks.steps]]
        id = 3
        description = "Fetch B"
        parallel_group = "fetch"
        [[tasks.steps]]
        id = 4
        description = "Merge"
        """)
    code, out, err = run_cli("plan", folder, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["phases"] == [["1.1"], ["1.2", "1.3"], ["1.4"]]


def test_a_condition_may_not_read_a_member_of_its_own_parallel_group() -> None:
    doc = {"goal": {"description": "Read outputs"}, "tasks": [task(
        1, step(1), step(2, parallel_group="g"),
        step(3, parallel_group="g", condition="step2_output.ok == true"),
        step(4, condition="step2_output.ok == true"))]}
    spec, found = spec_from_document(doc)
    assert spec is not None, found
    from specs.spec.files import LoadedSpec

    codes = [(d.code, d.location) for d in validate(LoadedSpec(spec, [], Path(".")))
             if d.code.startswith("E-COND")]
    assert [code for code, _ in codes] == ["E-COND-ORDER"]  # step 3 only: step 4 runs after
