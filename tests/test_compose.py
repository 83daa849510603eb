"""Spec composition (docs/composition.md): ``[composition] includes`` and SPECLets' ``spec``.

Each test writes small spec folders side by side (``tmp/<name>/parameters_<name>.toml`` and,
unless told otherwise, a ``spec_<name>.md`` that mirrors it) and loads the first with
:func:`specs.spec.load.load_spec`, which composes it.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import RunCli
from specs.diagnostics import Diagnostic, Severity
from specs.spec.compose import Composed, IncludedSpec, task_folder, task_workspace
from specs.spec.load import LoadedSpec, load_spec, spec_from_document
from specs.spec.model import Task
from specs.spec.tomlio import to_toml
from specs.spec.validate import validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "composed"
CORPUS = ROOT.parent / "shared" / "corpus"
DASHBOARD = CORPUS / "SPECs" / "GCATTAGC" / "spec_innovation_dashboard"

Doc = dict[str, Any]


# -- writing specs -------------------------------------------------------------------------------


def task(tid: int, text: str, **keys: Any) -> Doc:
    """A clean task: a critical step with a backup and a non-critical one (no diagnostics)."""
    steps: list[Doc] = [
        {"id": 1, "description": f"{text}: do it", "expected_output": f"{text}: done",
         "critical_flag": True, "command": "true",
         "backups": [{"id": 1, "description": f"{text}: another way", "command": ":"}]},
        {"id": 2, "description": f"{text}: check it", "expected_output": f"{text}: checked",
         "critical_flag": False, "command": "true"}]
    out: Doc = {"id": tid, "description": text, "steps": steps}
    out.update(keys)
    return out


def markdown(goal: str, tasks: list[Doc]) -> str:
    lines = ["# Spec", "", "## Goal", "", goal, "", "## Tasks", ""]
    for t in tasks:
        lines += [f"### Task {t['id']}: {t['description']}", ""]
        for s in t["steps"]:
            lines.append(f"- **Step {t['id']}.{s['id']}:** {s['description']}")
        lines.append("")
    return "\n".join(lines)


def write(root: Path, name: str, *tasks: Doc, header: str = "", md: bool = True,
          goal: str | None = None, folder: str | None = None) -> Path:
    """``root/<folder or name>/parameters_<name>.toml`` (+ ``spec_<name>.md``): the folder."""
    goal = goal or f"Summarise the {name} figures in a short note"
    made = list(tasks) or [task(1, f"{name} first"), task(2, f"{name} second")]
    where = root / (folder or name)
    where.mkdir(parents=True, exist_ok=True)
    text = (f'[meta]\ngoal_descriptor = "{name}"\n\n[goal]\ndescription = "{goal}"\n\n'
            f"{textwrap.dedent(header)}\n{to_toml({'tasks': made})}")
    (where / f"parameters_{name}.toml").write_text(text, "utf-8")
    if md:
        (where / f"spec_{name}.md").write_text(markdown(goal, made), "utf-8")
    return where


def composed(loaded: LoadedSpec) -> Composed:
    assert loaded.composition is not None, [d.render() for d in loaded.diagnostics]
    return loaded.composition


def refs(loaded: LoadedSpec) -> list[str]:
    assert loaded.spec is not None
    return [t.ref for t in loaded.spec.tasks]


def by_ref(loaded: LoadedSpec, ref: str) -> Task:
    assert loaded.spec is not None
    return next(t for t in loaded.spec.tasks if t.ref == ref)


def found(loaded: LoadedSpec, code: str, strict: bool = False) -> list[Diagnostic]:
    return [d for d in validate(loaded, strict=strict) if d.code == code]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def rendered(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.render() for d in diagnostics]


# -- what an entry may name ------------------------------------------------------------------------


def test_a_spec_without_includes_is_not_composed(tmp_path: Path) -> None:
    loaded = load_spec(write(tmp_path, "plain"))
    assert loaded.composition is None
    assert loaded.markdown is not None
    assert refs(loaded) == ["1", "2"]
    assert all(t.namespace is None and t.folder is None for t in loaded.spec.tasks)  # type: ignore[union-attr]


@pytest.mark.parametrize("entry", [
    "../child",                              # a spec folder
    "../child/parameters_child.toml",        # a parameters file
    "../child/spec_child.md",                # the original's Markdown name, next to the file
    "../child/",
])
def test_an_include_names_a_folder_a_parameters_file_or_a_markdown_spec(
        tmp_path: Path, entry: str) -> None:
    write(tmp_path, "child")
    parent = write(tmp_path, "parent", task(1, "Publish"),
                   header=f'[composition]\nincludes = ["{entry}"]\n')
    loaded = load_spec(parent)
    assert refs(loaded) == ["child.1", "child.2", "1"]
    assert rendered(validate(loaded)) == []


def test_a_bare_markdown_name_is_found_next_to_the_file(tmp_path: Path) -> None:
    """Two specs in one folder (like the SPECLet folder of the corpus): pass the parameters file."""
    folder = write(tmp_path, "main", task(1, "Publish"),
                   header='[composition]\nincludes = ["spec_part.md"]\n')
    write(tmp_path, "part", folder="main")
    loaded = load_spec(folder / "parameters_main.toml")
    assert refs(loaded) == ["part.1", "part.2", "1"]
    assert composed(loaded).included[0].loaded.parameters_path == folder / "parameters_part.toml"


def test_a_bare_markdown_name_falls_back_to_the_sibling_spec_folder(tmp_path: Path) -> None:
    """The original's layout: SPECs/<DNA>/spec_<d>/spec_<d>.md beside the including spec."""
    write(tmp_path, "analysis", folder="spec_analysis")
    parent = write(tmp_path, "main", task(1, "Publish"), folder="spec_main",
                   header='[composition]\nincludes = ["spec_analysis.md"]\n')
    loaded = load_spec(parent)
    assert refs(loaded) == ["analysis.1", "analysis.2", "1"]
    assert rendered(validate(loaded)) == []


def test_missing_include_is_an_error_at_the_entry(tmp_path: Path) -> None:
    parent = write(tmp_path, "parent", task(1, "Publish"), header='''\
        [composition]
        includes = [
            "../nowhere",
        ]
        ''')
    loaded = load_spec(parent)
    assert loaded.spec is not None and refs(loaded) == ["1"]
    [missing] = found(loaded, "E-INCLUDE-MISSING")
    assert missing.severity is Severity.ERROR
    assert "'../nowhere'" in missing.message
    toml = parent / "parameters_parent.toml"
    assert (missing.location.file, missing.location.line) == (
        str(toml), line_of(toml, '"../nowhere"'))
    assert missing in loaded.errors  # a load error: the runner's require() refuses the spec


def test_a_folder_without_a_spec_is_reported_at_the_entry(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    parent = write(tmp_path, "parent", task(1, "Publish"),
                   header='[composition]\nincludes = ["../empty"]\n')
    loaded = load_spec(parent)
    [problem] = found(loaded, "E-SPEC-NO-PARAMS")
    assert "included spec '../empty'" in problem.message
    assert problem.location.line == line_of(parent / "parameters_parent.toml", "../empty")


# -- aliases and namespaces ------------------------------------------------------------------------


def test_alias_table_and_default_alias(tmp_path: Path) -> None:
    write(tmp_path, "alpha")
    write(tmp_path, "beta")
    parent = write(tmp_path, "parent", task(1, "Publish"), header='''\
        [composition]
        includes = ["../alpha", {path = "../beta", as = "b"}]
        ''')
    loaded = load_spec(parent)
    assert refs(loaded) == ["alpha.1", "alpha.2", "b.1", "b.2", "1"]
    assert [(r.alias, r.namespace, r.descriptor) for r in composed(loaded).included] == [
        ("alpha", "alpha", "alpha"), ("b", "b", "beta")]
    step_refs = [f"{t.ref}.{s.id}" for t, s in loaded.spec.steps()]  # type: ignore[union-attr]
    assert step_refs[:3] == ["alpha.1.1", "alpha.1.2", "alpha.2.1"]


def test_duplicate_alias_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "alpha")
    write(tmp_path, "beta")
    parent = write(tmp_path, "parent", task(1, "Publish"), header='''\
        [composition]
        includes = [
            {path = "../alpha", as = "x"},
            {path = "../beta", as = "x"},
        ]
        ''')
    loaded = load_spec(parent)
    [duplicate] = found(loaded, "E-INCLUDE-ALIAS")
    assert "'x'" in duplicate.message
    assert duplicate.location.line == line_of(parent / "parameters_parent.toml", "../beta")
    assert refs(loaded) == ["x.1", "x.2", "1"]  # the second is left out: no duplicate refs
    assert not found(loaded, "E-DUP-TASK")


@pytest.mark.parametrize("alias", ["a.b", "has space", ""])
def test_invalid_alias_is_an_error(tmp_path: Path, alias: str) -> None:
    write(tmp_path, "alpha")
    parent = write(tmp_path, "parent", task(1, "Publish"),
                   header=f'[composition]\nincludes = [{{path = "../alpha", as = "{alias}"}}]\n')
    loaded = load_spec(parent)
    [invalid] = found(loaded, "E-INCLUDE-ALIAS")
    assert repr(alias) in invalid.message
    assert all("." not in (t.namespace or "") for t in loaded.spec.tasks)  # type: ignore[union-attr]


def test_nested_includes_get_nested_namespaces(tmp_path: Path) -> None:
    write(tmp_path, "leaf")
    write(tmp_path, "middle", task(1, "Middle work"),
          header='[composition]\nincludes = [{path = "../leaf", as = "l"}]\n')
    parent = write(tmp_path, "top", task(1, "Publish"),
                   header='[composition]\nincludes = [{path = "../middle", as = "m"}]\n')
    loaded = load_spec(parent)
    assert refs(loaded) == ["m.l.1", "m.l.2", "m.1", "1"]
    assert by_ref(loaded, "m.l.1").namespace == "m.l"
    assert by_ref(loaded, "m.l.1").folder == str((tmp_path / "leaf").resolve())
    assert [r.namespace for r in composed(loaded).included] == ["m", "m.l"]
    # middle has one task of its own, but three as it runs (with leaf's): no W-COUNT-TASKS
    assert rendered(validate(loaded)) == []


# -- diamonds and cycles -------------------------------------------------------------------------


def test_a_diamond_is_loaded_once_under_its_first_alias(tmp_path: Path) -> None:
    write(tmp_path, "base")
    write(tmp_path, "report", task(1, "Count", depends_on=["base.2"]),
          task(2, "Tabulate", depends_on=[1]),
          header='[composition]\nincludes = ["../base"]\n')
    parent = write(tmp_path, "main", task(1, "Publish", depends_on=["rep.2", "b2.1"]), header='''\
        [composition]
        includes = ["../base", {path = "../report", as = "rep"},
                    {path = "../base/parameters_base.toml", as = "b2"}]
        ''')
    loaded = load_spec(parent)
    assert refs(loaded) == ["base.1", "base.2", "rep.1", "rep.2", "1"]
    record = composed(loaded).included[0]
    assert record.namespace == "base"
    assert record.aliases == ["base", "rep.base", "b2"]
    assert len(composed(loaded).included) == 2
    # refs through the other aliases name the one namespace
    assert by_ref(loaded, "rep.1").depends_on == ["base.2"]
    assert by_ref(loaded, "1").depends_on == ["rep.2", "base.1"]
    shared = found(loaded, "I-INCLUDE-SHARED")
    assert len(shared) == 2 and all(d.severity is Severity.INFO for d in shared)
    assert {Path(d.location.file).name for d in shared} == {
        "parameters_report.toml", "parameters_main.toml"}
    assert "already included as 'base'" in shared[0].message
    assert [d for d in validate(loaded) if d.severity is not Severity.INFO] == []


def test_a_cycle_is_an_error_that_prints_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "b", header='[composition]\nincludes = ["../a"]\n')
    parent = write(tmp_path, "a", task(1, "Publish"),
                   header='[composition]\nincludes = ["../b"]\n')
    loaded = load_spec(parent)
    [cycle] = found(loaded, "E-INCLUDE-CYCLE")
    assert "include cycle: a -> b -> a" in cycle.message
    b_toml = tmp_path / "b" / "parameters_b.toml"
    assert (cycle.location.file, cycle.location.line) == (str(b_toml), line_of(b_toml, "../a"))
    assert cycle in loaded.errors
    assert refs(loaded) == ["b.1", "b.2", "1"]  # everything but the cycle still loads


def test_a_longer_cycle_below_the_root(tmp_path: Path) -> None:
    write(tmp_path, "y", header='[composition]\nincludes = ["../z"]\n')
    write(tmp_path, "z", header='[composition]\nincludes = ["../x"]\n')
    write(tmp_path, "x", header='[composition]\nincludes = ["../y"]\n')
    loaded = load_spec(write(tmp_path, "top", task(1, "Publish"),
                             header='[composition]\nincludes = ["../x"]\n'))
    [cycle] = found(loaded, "E-INCLUDE-CYCLE")
    assert cycle.message == "include cycle: x -> y -> z -> x"
    assert Path(cycle.location.file).name == "parameters_z.toml"


def test_a_spec_that_includes_itself(tmp_path: Path) -> None:
    loaded = load_spec(write(tmp_path, "self", header='[composition]\nincludes = ["."]\n'))
    [cycle] = found(loaded, "E-INCLUDE-CYCLE")
    assert cycle.message == "include cycle: self -> self"


# -- dependencies, folders, settings -------------------------------------------------------------


def test_dependencies_inside_an_included_spec_are_rewritten(tmp_path: Path) -> None:
    child_tasks = [
        task(1, "Collect"),
        task(2, "Combine", depends_on=[1]),
    ]
    child_tasks[1]["steps"][0]["depends_on"] = ["1.1"]
    child_tasks[1]["steps"][1]["depends_on"] = [1, "1", "1.2"]
    write(tmp_path, "lib", *child_tasks)
    parent = write(tmp_path, "main", task(1, "Publish", depends_on=["lib.2"]),
                   header='[composition]\nincludes = ["../lib"]\n')
    loaded = load_spec(parent)
    combine = by_ref(loaded, "lib.2")
    assert combine.depends_on == ["lib.1"]
    assert combine.steps[0].depends_on == ["lib.1.1"]
    assert combine.steps[1].depends_on == [1, "1", "lib.1.2"]  # plain step ids stay
    assert by_ref(loaded, "1").depends_on == ["lib.2"]
    assert [d for d in validate(loaded) if d.code.startswith("E-")] == []


def test_conditions_inside_an_included_spec_are_rewritten(tmp_path: Path) -> None:
    combine = task(2, "Combine", condition='steps["1.2"].status == "completed"')
    combine["steps"][0]["condition"] = 'IF steps["1.1"].status == "completed"'
    combine["steps"][1]["condition"] = "task1_step1_output.ok == true and step1_output.n > 0"
    lib = write(tmp_path, "lib", task(1, "Collect"), combine)
    assert [d for d in validate(load_spec(lib)) if d.code.startswith("E-")] == []
    publish = task(1, "Publish", condition='steps["again.2.1"].status == "completed"')
    loaded = load_spec(write(tmp_path, "main", publish, header=(
        '[composition]\nincludes = ["../lib", {path = "../lib", as = "again"}]\n')))
    rewritten = by_ref(loaded, "lib.2")
    assert rewritten.condition == 'steps["lib.1.2"].status == "completed"'
    assert rewritten.steps[0].condition == 'IF steps["lib.1.1"].status == "completed"'
    assert rewritten.steps[1].condition == (
        'steps["lib.1.1"].output.ok == true and step1_output.n > 0')  # same-task form stays
    assert by_ref(loaded, "1").condition == 'steps["lib.2.1"].status == "completed"'
    assert [d for d in validate(loaded) if d.code.startswith(("E-", "W-COND"))] == []


def test_an_unknown_dependency_in_an_included_spec_points_at_its_file(tmp_path: Path) -> None:
    write(tmp_path, "lib", task(1, "Collect", depends_on=[9]), task(2, "Combine"))
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"),
                             header='[composition]\nincludes = ["../lib"]\n'))
    [unknown] = found(loaded, "E-DEP-UNKNOWN")
    assert "task lib.1 depends on task lib.9" in unknown.message
    lib_toml = tmp_path / "lib" / "parameters_lib.toml"
    assert unknown.location.file == str(lib_toml)
    assert unknown.location.line == line_of(lib_toml, "depends_on")


def test_a_dependency_cycle_across_specs_is_found(tmp_path: Path) -> None:
    write(tmp_path, "lib")
    parent_task = task(1, "Publish", depends_on=["lib.2"])
    parent_task["steps"][0]["depends_on"] = ["lib.1.1"]
    loaded = load_spec(write(tmp_path, "main", parent_task,
                             header='[composition]\nincludes = ["../lib"]\n'))
    assert not found(loaded, "E-DEP-CYCLE")
    assert not found(loaded, "E-DEP-UNKNOWN")


def test_included_tasks_keep_their_own_folder(tmp_path: Path) -> None:
    lib_task = task(1, "Count")
    lib_task["steps"][0].update(command="wc -w < spec_lib.md > words.txt", cwd=".")
    write(tmp_path, "lib", lib_task, task(2, "Report"))
    parent = write(tmp_path, "main", task(1, "Publish"),
                   header='[composition]\nincludes = ["../lib"]\n')
    loaded = load_spec(parent)
    included, own = by_ref(loaded, "lib.1"), by_ref(loaded, "1")
    assert included.folder == str((tmp_path / "lib").resolve())
    assert own.folder is None and own.namespace is None
    assert task_folder(loaded, included) == (tmp_path / "lib").resolve()
    assert task_folder(loaded, own) == parent
    assert task_workspace(loaded, included) == (tmp_path / "lib").resolve()
    assert (task_folder(loaded, included) / "spec_lib.md").is_file()


def test_the_parents_workspace_is_every_tasks_workspace(tmp_path: Path) -> None:
    write(tmp_path, "lib")
    parent = write(tmp_path, "main", task(1, "Publish"), header='''\
        [execution]
        workspace = "work"

        [composition]
        includes = ["../lib"]
        ''')
    loaded = load_spec(parent)
    assert task_workspace(loaded, by_ref(loaded, "lib.1")) == parent / "work"
    assert task_folder(loaded, by_ref(loaded, "lib.1")) == (tmp_path / "lib").resolve()


def test_the_parents_goal_and_settings_win(tmp_path: Path) -> None:
    write(tmp_path, "lib", header='''\
        [execution]
        default_mode = "collaborative"
        escalation_threshold = 9

        [error_propagation]
        propagation_strategy = "continue_and_log"

        [vars]
        region = "north"
        ''', goal="Clean the north region's figures")
    parent = write(tmp_path, "main", task(1, "Publish"), header='''\
        [execution]
        default_mode = "silent"

        [error_propagation]
        propagation_strategy = "halt_on_critical"

        [composition]
        includes = ["../lib"]
        ''', goal="Publish the quarterly report")
    loaded = load_spec(parent)
    spec = loaded.spec
    assert spec is not None
    assert spec.goal.description == "Publish the quarterly report"
    assert spec.execution.default_mode == "silent"
    assert spec.execution.escalation_threshold == 3
    assert spec.error_propagation.propagation_strategy == "halt_on_critical"
    assert spec.vars is None
    assert loaded.descriptor == "main"
    assert loaded.progress_path == parent / "progress_main.json"
    [record] = composed(loaded).included
    assert record.goal == "Clean the north region's figures"  # kept in the record
    assert by_ref(loaded, "lib.1").description == "lib first"  # tasks keep their own text


def test_composition_section_and_speclet_spec_are_kept(tmp_path: Path) -> None:
    write(tmp_path, "lib")
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"),
                             header='[composition]\nincludes = ["../lib"]\n'))
    assert loaded.spec is not None and loaded.spec.composition is not None
    assert loaded.spec.composition.includes == ["../lib"]


# -- diagnostics of included specs ---------------------------------------------------------------


def test_included_specs_are_validated_with_their_own_paths(tmp_path: Path) -> None:
    broken = task(1, "Collect")
    del broken["steps"][1]["expected_output"]
    lib = write(tmp_path, "lib", broken, task(2, "Combine"), md=False)
    (lib / "exe_lib.md").write_text("# exe\n", "utf-8")
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"),
                             header='[composition]\nincludes = ["../lib"]\n'))
    lib_toml = str(lib / "parameters_lib.toml")
    found_all = validate(loaded)
    by_code = {d.code: d for d in found_all}
    assert by_code["W-EXPECTED-MISSING"].location.file == lib_toml
    assert "step lib.1.2 has no expected output" in by_code["W-EXPECTED-MISSING"].message
    assert by_code["W-FILE-MD-MISSING"].location.file == lib_toml
    assert by_code["I-EXE-PRESENT"].location.file == str(lib / "exe_lib.md")
    # reported once, not once for the composed spec and once for the included one
    assert len([d for d in found_all if d.code == "W-EXPECTED-MISSING"]) == 1
    assert len(set(found_all)) == len(found_all)


def test_a_broken_included_file_is_an_error_of_the_parent(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "parameters_lib.toml").write_text("[goal\ndescription = 1\n", "utf-8")
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"),
                             header='[composition]\nincludes = ["../lib"]\n'))
    [syntax] = [d for d in loaded.errors if d.code == "E-TOML-SYNTAX"]
    assert syntax.location.file == str(lib / "parameters_lib.toml")
    assert refs(loaded) == ["1"]


def test_markdown_is_compared_with_each_specs_own_tasks(tmp_path: Path) -> None:
    """The parent's Markdown does not list included steps: no W-BRIDGE for them. A drift in
    the included spec's own Markdown is reported in that file."""
    lib = write(tmp_path, "lib")
    md = (lib / "spec_lib.md").read_text() + "- **Step 2.3:** an extra step\n"
    (lib / "spec_lib.md").write_text(md, "utf-8")
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"),
                             header='[composition]\nincludes = ["../lib"]\n'))
    [bridge] = found(loaded, "W-BRIDGE")
    assert bridge.location.file == str(lib / "spec_lib.md")
    assert "2.3" in bridge.message


def test_the_parents_own_markdown_drift_is_still_reported(tmp_path: Path) -> None:
    write(tmp_path, "lib")
    parent = write(tmp_path, "main", task(1, "Publish"),
                   header='[composition]\nincludes = ["../lib"]\n')
    md = parent / "spec_main.md"
    md.write_text(md.read_text().replace("Summarise the main", "Summarize a different"), "utf-8")
    loaded = load_spec(parent)
    [drift] = found(loaded, "W-GOAL-DRIFT")
    assert drift.location.file == str(parent / "parameters_main.toml")


def test_quality_rules_apply_to_the_composed_run(tmp_path: Path) -> None:
    write(tmp_path, "lib", *[task(i, f"Part {i}") for i in (1, 2, 3)])
    loaded = load_spec(write(tmp_path, "main", *[task(i, f"Own {i}") for i in (1, 2, 3)],
                             header='[composition]\nincludes = ["../lib"]\n'))
    [count] = found(loaded, "W-COUNT-TASKS")
    assert "6 tasks" in count.message
    assert next(d for d in validate(loaded, strict=True)
                if d.code == "W-COUNT-TASKS").severity is Severity.ERROR


# -- SPECLets: one spec per SPECLet (the MASTER pattern) -------------------------------------------


MASTER = '''\
[[speclets]]
id = "discovery"
spec = "../discovery"
parallel_allowed = true

[[speclets]]
id = "define"
description = "Frame the problem"
spec = "../define/parameters_define.toml"
depends_on = ["discovery"]
parallel_allowed = true
'''


def test_a_speclet_with_spec_owns_that_specs_tasks(tmp_path: Path) -> None:
    write(tmp_path, "discovery", goal="Interview five clients about their workflow")
    write(tmp_path, "define", task(1, "Frame", depends_on=[]), task(2, "Agree"))
    loaded = load_spec(write(tmp_path, "master", task(1, "Roll up"), md=False, header=MASTER))
    spec = loaded.spec
    assert spec is not None and spec.speclets is not None
    assert refs(loaded) == ["discovery.1", "discovery.2", "define.1", "define.2", "1"]
    discovery, define = spec.speclets
    assert discovery.tasks == ["discovery.1", "discovery.2"]
    assert discovery.description == "Interview five clients about their workflow"
    assert define.tasks == ["define.1", "define.2"]
    assert define.description == "Frame the problem"
    assert [r.speclet for r in composed(loaded).included] == ["discovery", "define"]
    # the parent's own task belongs to no SPECLet: the usual SPECLet rule says so
    assert [d.message for d in found(loaded, "E-SPECLET-ASSIGN")] == [
        "task 1 belongs to 0 SPECLets; each task belongs to exactly one"]


def test_a_master_spec_of_speclets_validates(tmp_path: Path) -> None:
    write(tmp_path, "discovery")
    write(tmp_path, "define")
    master = write(tmp_path, "master", md=False, header=MASTER)
    text = (master / "parameters_master.toml").read_text()
    (master / "parameters_master.toml").write_text(text.split("[[tasks]]")[0], "utf-8")
    loaded = load_spec(master, markdown=False)
    assert refs(loaded) == ["discovery.1", "discovery.2", "define.1", "define.2"]
    assert [d for d in validate(loaded) if d.severity is not Severity.INFO] == []


@pytest.mark.skipif(not DASHBOARD.is_dir(), reason="the corpus is not beside the checkout")
def test_the_innovation_dashboard_speclet_as_a_child(tmp_path: Path) -> None:
    """SPECLet 0 of the real one-spec-per-SPECLet project, included from a MASTER spec."""
    platform = DASHBOARD / "parameters_speclet_0_platform.toml"
    master = tmp_path / "master"
    master.mkdir()
    (master / "parameters_master.toml").write_text(textwrap.dedent(f'''\
        [meta]
        goal_descriptor = "master"

        [goal]
        description = "Deliver the innovation consultancy dashboard, SPECLet by SPECLet"

        [[speclets]]
        id = 0
        spec = "{platform}"
        '''), "utf-8")
    loaded = load_spec(master)
    [record] = composed(loaded).included
    assert record.speclet == "0" and record.descriptor == "platform"
    assert record.loaded.markdown_path == DASHBOARD / "speclet_0_platform.md"
    assert loaded.spec is not None and loaded.spec.speclets is not None
    assert loaded.spec.speclets[0].tasks == record.tasks
    assert record.tasks and all(ref.startswith("0.") for ref in record.tasks)
    assert loaded.spec.speclets[0].description == record.goal
    found_all = validate(loaded)
    assert not [d for d in found_all if d.severity is Severity.ERROR], rendered(found_all)
    assert any(d.location.file == str(platform) for d in found_all)


# -- round trip ----------------------------------------------------------------------------------


def test_a_composed_spec_dumped_as_one_toml_loads_to_an_equal_model(tmp_path: Path) -> None:
    write(tmp_path, "base")
    write(tmp_path, "report", task(1, "Count", depends_on=["base.2"]),
          header='[composition]\nincludes = ["../base"]\n')
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish", depends_on=["rep.1"]),
                             header='''\
        [composition]
        includes = ["../base", {path = "../report", as = "rep"}]
        '''))
    spec = loaded.spec
    assert spec is not None
    text = to_toml(spec.model_dump(by_alias=True, exclude_none=True))
    again, diagnostics = spec_from_document(tomllib.loads(text))
    assert not [d for d in diagnostics if d.severity is Severity.ERROR]
    assert again == spec
    # and written out as a spec file elsewhere, it is not composed a second time
    out = tmp_path / "elsewhere" / "flat"
    out.mkdir(parents=True)
    (out / "parameters_main.toml").write_text(text, "utf-8")
    flat = load_spec(out, markdown=False)
    assert flat.composition is None
    assert flat.spec == spec


# -- the refs API ----------------------------------------------------------------------------------


def test_resolve_maps_refs_written_inside_an_included_spec(tmp_path: Path) -> None:
    write(tmp_path, "base")
    write(tmp_path, "report", header='[composition]\nincludes = ["../base"]\n')
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"), header='''\
        [composition]
        includes = ["../base", {path = "../report", as = "rep"}]
        '''))
    comp = composed(loaded)
    assert comp.resolve("rep", "1") == "rep.1"
    assert comp.resolve("rep", "base.2") == "base.2"
    assert comp.resolve(None, "rep.base.2") == "base.2"
    assert comp.resolve(None, "1") == "1"
    assert comp.resolve_step("rep", "base.2.1") == "base.2.1"
    assert comp.resolve_step("rep", "2.1") == "rep.2.1"
    origin = comp.origin(by_ref(loaded, "rep.1"))
    assert isinstance(origin, IncludedSpec) and origin.descriptor == "report"
    assert comp.origin(by_ref(loaded, "1")) is None


def test_provenance_and_locations_follow_the_tasks(tmp_path: Path) -> None:
    """A step text filled from the included spec's Markdown keeps its origin and location."""
    skeletal = task(1, "Collect")
    del skeletal["steps"][1]["description"]
    lib = write(tmp_path, "lib", skeletal, task(2, "Combine"), md=False)
    (lib / "spec_lib.md").write_text(markdown("Summarise the lib figures in a short note", [
        task(1, "Collect"), task(2, "Combine")]), "utf-8")
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"),
                             header='[composition]\nincludes = ["../lib"]\n'))
    assert by_ref(loaded, "lib.1").steps[1].description == "Collect: check it"
    assert loaded.provenance[("tasks", 0, "steps", 1, "description")] == "markdown"
    where = loaded.sources.at(("tasks", 0, "steps", 1, "description"))
    assert where.file == str(lib / "spec_lib.md")
    assert loaded.sources.at(("tasks", 2)).file == str(
        tmp_path / "main" / "parameters_main.toml")


# -- the command line ------------------------------------------------------------------------------


def test_show_expanded_prints_where_each_task_comes_from(run_cli: RunCli) -> None:
    code, out, err = run_cli("show", "--expanded", EXAMPLE / "summary", cwd=ROOT)
    assert code == 0, err
    assert "Includes" in out
    assert "prepare ← examples/composed/prepare/parameters_prepare.toml" in out
    assert "also as rep.prepare" in out
    assert "Task rep.1 Count the words and lines" in out
    assert "← rep: examples/composed/report/parameters_report.toml" in out
    assert "Step rep.2.1 Write the counts table" in out
    assert "Task 1 Publish the summary" in out


def test_show_collapses_includes_unless_expanded(run_cli: RunCli) -> None:
    code, out, err = run_cli("show", EXAMPLE / "summary", cwd=ROOT)
    assert code == 0, err
    assert "Include rep ← examples/composed/report/parameters_report.toml" in out
    assert "2 tasks: rep.1, rep.2" in out
    assert "Step rep.1.1" not in out
    assert "Task 1 Publish the summary" in out


def test_show_json_holds_namespaces_folders_and_includes(run_cli: RunCli) -> None:
    code, out, err = run_cli("show", "--json", EXAMPLE / "summary", cwd=ROOT)
    assert code == 0, err
    document = json.loads(out)
    tasks = document["spec"]["tasks"]
    assert [(t.get("namespace"), t["id"]) for t in tasks] == [
        ("prepare", 1), ("prepare", 2), ("rep", 1), ("rep", 2), (None, 1)]
    assert tasks[0]["folder"] == str((EXAMPLE / "prepare").resolve())
    assert "folder" not in tasks[4]
    includes = {i["namespace"]: i for i in document["includes"]}
    assert includes["prepare"]["aliases"] == ["prepare", "rep.prepare"]
    assert includes["rep"]["descriptor"] == "report"
    assert includes["rep"]["goal"].startswith("Count the words")


def test_validate_reports_a_cycle_with_its_chain(tmp_path: Path, run_cli: RunCli) -> None:
    write(tmp_path, "b", header='[composition]\nincludes = ["../a"]\n')
    write(tmp_path, "a", task(1, "Publish"), header='[composition]\nincludes = ["../b"]\n')
    code, out, _ = run_cli("validate", tmp_path / "a")
    assert code == 1
    b_toml = tmp_path / "b" / "parameters_b.toml"
    assert f":{line_of(b_toml, '../a')}:" in out
    assert "error E-INCLUDE-CYCLE include cycle: a -> b -> a" in out


# -- the example -----------------------------------------------------------------------------------


def test_the_example_validates_without_errors_or_warnings(run_cli: RunCli) -> None:
    for name in ("summary", "prepare", "report"):
        loaded = load_spec(EXAMPLE / name)
        diagnostics = validate(loaded, strict=True)
        assert [d for d in diagnostics if d.severity is not Severity.INFO] == [], rendered(
            diagnostics)
    loaded = load_spec(EXAMPLE / "summary")
    assert refs(loaded) == ["prepare.1", "prepare.2", "rep.1", "rep.2", "1"]
    assert [d.code for d in validate(loaded)] == ["I-INCLUDE-SHARED"]
    code, _, err = run_cli("validate", EXAMPLE / "summary")
    assert code == 0 and "0 errors, 0 warnings" in err


def test_the_example_runs_offline(tmp_path: Path, run_cli: RunCli) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "composed")
    work = tmp_path / "composed"
    code, _, err = run_cli("run", "summary", "--no-input", "--state-dir", tmp_path / "state",
                           cwd=work, timeout=120)
    assert code == 0, err
    summary = (work / "summary" / "out" / "summary.md").read_text()
    for name in ("prepare", "report", "summary"):
        assert f"../{name}/spec_{name}.md" in summary


# -- known gap, outside this module ----------------------------------------------------------------


def test_an_included_output_schema_file_is_found_in_its_own_folder(tmp_path: Path) -> None:
    schema_task = task(1, "Collect")
    schema_task["steps"][0]["output_schema"] = "schema.json"
    lib = write(tmp_path, "lib", schema_task, task(2, "Combine"))
    (lib / "schema.json").write_text("{}", "utf-8")
    assert not found(load_spec(lib), "E-SCHEMA-MISSING")  # on its own: fine
    loaded = load_spec(write(tmp_path, "main", task(1, "Publish"),
                             header='[composition]\nincludes = ["../lib"]\n'))
    assert not found(loaded, "E-SCHEMA-MISSING")
