"""Alias resolution (reference §2.3): every spelling the original accepts becomes one canonical key.

Each test builds a small document by hand, runs it through
:func:`specs.spec.load.spec_from_document`
(or :func:`specs.spec.load.load_spec` when a line number matters) and checks the canonical model.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from specs.diagnostics import Diagnostic, Severity
from specs.spec.load import LoadedSpec, load_spec, spec_from_document
from specs.spec.model import Spec

# -- helpers -------------------------------------------------------------------------------------


def step(**keys: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": 1, "description": "do it", "expected_output": "done",
                            "critical_flag": False}
    base.update(keys)
    return {k: v for k, v in base.items() if v is not None}


def document(*, steps: list[dict[str, Any]] | None = None, task: dict[str, Any] | None = None,
             **sections: Any) -> dict[str, Any]:
    """A minimal valid document; ``sections`` replace or add top-level entries."""
    task_table: dict[str, Any] = {"id": 1, "description": "the task",
                                  "steps": steps if steps is not None else [step()]}
    task_table.update(task or {})
    doc: dict[str, Any] = {"goal": {"description": "Summarise the figures"},
                           "tasks": [task_table]}
    doc.update(sections)
    return {k: v for k, v in doc.items() if v is not None}


def load(doc: dict[str, Any]) -> tuple[Spec, list[Diagnostic]]:
    spec, diagnostics = spec_from_document(doc)
    assert spec is not None, [d.render() for d in diagnostics]
    return spec, diagnostics


def codes(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


def write_spec(tmp_path: Path, toml: str, name: str = "demo") -> LoadedSpec:
    folder = tmp_path / f"spec_{name}"
    folder.mkdir()
    (folder / f"parameters_{name}.toml").write_text(textwrap.dedent(toml).lstrip(), "utf-8")
    return load_spec(folder, markdown=False, project=False)


def line_of(loaded: LoadedSpec, needle: str) -> int:
    assert loaded.parameters_path is not None
    lines = loaded.parameters_path.read_text("utf-8").splitlines()
    matches = [i + 1 for i, line in enumerate(lines) if line.strip().startswith(needle)]
    assert len(matches) == 1, (needle, matches)
    return matches[0]


def only(diagnostics: list[Diagnostic], code: str) -> Diagnostic:
    found = [d for d in diagnostics if d.code == code]
    assert len(found) == 1, [d.render() for d in diagnostics]
    return found[0]


# -- goal, run mode ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goal", "expected", "conflict"),
    [
        ({"description": "canonical"}, "canonical", False),
        ({"statement": "from statement"}, "from statement", False),
        ({"description": "wins", "statement": "loses"}, "wins", True),
        ({"description": "same", "statement": "same"}, "same", False),
    ],
)
def test_goal_statement_alias(goal: dict[str, Any], expected: str, conflict: bool) -> None:
    spec, diagnostics = load(document(goal=goal))
    assert spec.goal.description == expected
    assert "statement" not in spec.goal.unknown_keys
    assert ("W-ALIAS-CONFLICT" in codes(diagnostics)) is conflict


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        (None, "dynamic"),
        ({"default_mode": "silent"}, "silent"),
        ({"mode": "collaborative"}, "collaborative"),
        ({"mode": "Silent"}, "silent"),
        ({"default_mode": "education", "mode": "silent"}, "education"),
    ],
)
def test_execution_mode_alias(execution: dict[str, Any] | None, expected: str) -> None:
    spec, _ = load(document(execution=execution))
    assert spec.execution.default_mode == expected
    assert "mode" not in spec.execution.unknown_keys


# -- step keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_keys", "step_keys", "expected", "missing_warning"),
    [
        ({}, {"critical_flag": False}, False, False),
        ({}, {"critical_flag": None, "critical": False}, False, False),
        ({}, {"critical_flag": None, "critical": True}, True, False),
        ({}, {"critical_flag": True, "critical": False}, True, False),  # canonical key wins
        ({"critical": False}, {"critical_flag": None}, False, False),  # task-level default
        ({"critical": False}, {"critical_flag": True}, True, False),  # the step's own wins
        ({"critical": True}, {"critical_flag": None, "critical": False}, False, False),
        ({}, {"critical_flag": None}, True, True),  # missing: true + W-CRIT-MISSING
    ],
)
def test_critical_aliases(task_keys: dict[str, Any], step_keys: dict[str, Any], expected: bool,
                          missing_warning: bool) -> None:
    spec, diagnostics = load(document(steps=[step(**step_keys)], task=task_keys))
    only_step = spec.tasks[0].steps[0]
    assert only_step.critical_flag is expected
    assert "critical" not in only_step.unknown_keys
    assert ("W-CRIT-MISSING" in codes(diagnostics)) is missing_warning


@pytest.mark.parametrize(
    ("step_keys", "expected"),
    [
        ({"description": "what"}, "what"),
        ({"description": None, "action": "via action"}, "via action"),
        ({"description": "wins", "action": "loses"}, "wins"),
    ],
)
def test_action_alias(step_keys: dict[str, Any], expected: str) -> None:
    spec, _ = load(document(steps=[step(**step_keys)]))
    assert spec.tasks[0].steps[0].description == expected
    assert "action" not in spec.tasks[0].steps[0].unknown_keys


def test_primary_method_is_kept_beside_description() -> None:
    spec, _ = load(document(steps=[step(description="what", primary_method="how")]))
    assert (spec.tasks[0].steps[0].description, spec.tasks[0].steps[0].primary_method) == (
        "what", "how")


def test_inline_backup_strings_become_backup_tables() -> None:
    spec, diagnostics = load(document(steps=[step(
        critical_flag=True, backup_2="second way", backup_1="first way")]))
    backups = spec.tasks[0].steps[0].backups
    assert [(b.id, b.description, b.trigger_condition) for b in backups] == [
        (1, "first way", "primary_failure"), (2, "second way", "backup_1_failure")]
    assert not any(k.startswith("backup_") for k in spec.tasks[0].steps[0].unknown_keys)
    assert not [d for d in diagnostics if d.severity is not Severity.INFO]


def test_inline_backups_are_appended_to_tables_with_a_warning() -> None:
    spec, diagnostics = load(document(steps=[step(
        backups=[{"id": 1, "description": "table one"}], backup_2="inline two")]))
    backups = spec.tasks[0].steps[0].backups
    assert [(b.id, b.description) for b in backups] == [(1, "table one"), (2, "inline two")]
    assert "W-BACKUP-FORMS" in codes(diagnostics)


def test_backup_methods_list_becomes_cognitive_backups() -> None:
    spec, _ = load(document(steps=[step(backup_methods=["plan b", "plan c"])]))
    the_step = spec.tasks[0].steps[0]
    assert [(b.id, b.description, b.trigger_condition, b.execution_method)
            for b in the_step.backups] == [
        (1, "plan b", "primary_failure", "cognitive"),
        (2, "plan c", "backup_1_failure", "cognitive")]
    assert "backup_methods" not in the_step.unknown_keys


def test_backup_tables_win_over_backup_methods() -> None:
    spec, _ = load(document(steps=[step(
        backups=[{"id": 1, "description": "table"}], backup_methods=["list"])]))
    assert [b.description for b in spec.tasks[0].steps[0].backups] == ["table"]


def test_backup_trigger_condition_given_is_kept() -> None:
    spec, _ = load(document(steps=[step(backups=[
        {"id": 1, "description": "x", "trigger_condition": "primary_failure"},
        {"id": 2, "description": "y"}])]))
    assert [b.trigger_condition for b in spec.tasks[0].steps[0].backups] == [
        "primary_failure", "backup_1_failure"]


@pytest.mark.parametrize(
    ("step_keys", "depends_on", "parallel_safe"),
    [
        ({"dependencies": [1], "parallel_enabled": True}, [1], True),
        ({"depends_on": [2], "dependencies": [1]}, [2], None),
    ],
)
def test_step_dependency_and_parallel_aliases(step_keys: dict[str, Any], depends_on: list[int],
                                              parallel_safe: bool | None) -> None:
    spec, _ = load(document(steps=[step(id=1), step(id=2, **step_keys)]))
    second = spec.tasks[0].steps[1]
    assert second.depends_on == depends_on
    assert second.parallel_safe is parallel_safe


# -- error propagation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ep", "strategy", "enabled", "warning"),
    [
        ({"propagation_strategy": "continue_and_log"}, "continue_and_log", True, None),
        ({"strategy": "collaborative_review"}, "collaborative_review", True, None),
        ({"strategy": "HALT_ON_CRITICAL"}, "halt_on_critical", True, None),
        ({"propagation_strategy": "continue_and_log", "strategy": "halt_on_critical"},
         "continue_and_log", True, "W-ALIAS-CONFLICT"),
        ({"halt_on_critical": True}, "halt_on_critical", True, None),
        ({"halt_on_critical": False}, None, True, None),
        ({"strategy": "collaborative_review", "halt_on_critical": True},
         "collaborative_review", True, "W-STRATEGY-CONFLICT"),
        ({"strategy": "halt_on_critical", "halt_on_critical": True},
         "halt_on_critical", True, None),
        ({"propagation_enabled": False}, None, False, None),
        ({"enabled": True, "propagation_enabled": True}, None, True, None),
        ({"enabled": False, "propagation_enabled": True}, None, False, "W-ALIAS-CONFLICT"),
    ],
)
def test_error_propagation_aliases(ep: dict[str, Any], strategy: str | None, enabled: bool,
                                   warning: str | None) -> None:
    spec, diagnostics = load(document(error_propagation=ep))
    assert spec.error_propagation.propagation_strategy == strategy
    assert spec.error_propagation.enabled is enabled
    assert not {"strategy", "propagation_enabled"} & set(spec.error_propagation.unknown_keys)
    warnings = [c for c in codes(diagnostics) if c.startswith("W-")]
    assert warnings == ([warning] if warning else [])


def test_strategy_conflict_points_at_halt_on_critical(tmp_path: Path) -> None:
    loaded = write_spec(tmp_path, """
        [goal]
        description = "Summarise"
        [error_propagation]
        strategy = "collaborative_review"
        halt_on_critical = true
        [[tasks]]
        id = 1
        description = "t"
        [[tasks.steps]]
        id = 1
        description = "s"
        critical_flag = false
        """)
    found = only(loaded.diagnostics, "W-STRATEGY-CONFLICT")
    assert found.location.line == line_of(loaded, "halt_on_critical")
    assert loaded.spec is not None
    assert loaded.spec.error_propagation.propagation_strategy == "collaborative_review"


# -- progress path, notepad path, escalation threshold -----------------------------------------

PROGRESS_ALIASES: list[tuple[str, str]] = [
    ("logging", "output_file"),
    ("progress_tracking", "progress_file"),
    ("meta", "log_output"),
    ("logging", "log_file"),
    ("progress_log", "file"),
    ("progress_tracking", "log_file"),
]


@pytest.mark.parametrize("first", range(len(PROGRESS_ALIASES)))
def test_progress_path_first_alias_present_wins(first: int) -> None:
    sections: dict[str, dict[str, Any]] = {}
    for index, (section, key) in enumerate(PROGRESS_ALIASES[first:], start=first):
        sections.setdefault(section, {})[key] = f"progress_from_{index}.json"
    spec, _ = load(document(**sections))
    assert spec.logging.output_file == f"progress_from_{first}.json"


@pytest.mark.parametrize("alias", range(len(PROGRESS_ALIASES)))
def test_progress_path_each_alias_alone(alias: int) -> None:
    section, key = PROGRESS_ALIASES[alias]
    spec, _ = load(document(**{section: {key: "mine.json"}}))
    assert spec.logging.output_file == "mine.json"


def test_progress_path_from_metadata_log_output() -> None:
    spec, _ = load(document(metadata={"log_output": "meta.json"},
                            progress_log={"file": "later.json"}))
    assert spec.logging.output_file == "meta.json"


def test_progress_path_absent_stays_none() -> None:
    spec, _ = load(document())
    assert spec.logging.output_file is None


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"knowledge_capture": {"notepad_path": "kc.md"}, "meta": {"notepad_output": "m.md"}},
         "kc.md"),
        ({"meta": {"notepad_output": "m.md"}}, "m.md"),
        ({"metadata": {"notepad_output": "md.md"}}, "md.md"),
        ({}, None),
    ],
)
def test_notepad_path_alias(sections: dict[str, Any], expected: str | None) -> None:
    spec, _ = load(document(**sections))
    assert spec.knowledge_capture.notepad_path == expected


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"execution": {"escalation_threshold": 1,
                        "dynamic_escalation": {"trigger_consecutive_failures": 2}},
          "constraints": {"max_consecutive_failures": 4}}, 1),
        ({"execution": {"dynamic_escalation": {"trigger_consecutive_failures": 2}},
          "constraints": {"max_consecutive_failures": 4}}, 2),
        ({"constraints": {"max_consecutive_failures": 4}}, 4),
        ({"execution": {"escalation_threshold": 0},
          "constraints": {"max_consecutive_failures": 4}}, 0),
        ({}, 3),
    ],
)
def test_consecutive_failure_threshold_aliases(sections: dict[str, Any], expected: int) -> None:
    spec, _ = load(document(**sections))
    assert spec.execution.escalation_threshold == expected


# -- completion, meta, descriptor ----------------------------------------------------------------


def test_definition_of_complete_becomes_completion_criteria() -> None:
    spec, _ = load(document(definition_of_complete={
        "primary_deliverable": "a report", "quality_standards": ["accurate"],
        "core_features": ["charts"]}))
    criteria = spec.completion_criteria
    assert criteria is not None
    assert criteria.primary_deliverable == "a report"
    assert criteria.quality_standards == ["accurate"]
    assert criteria.core_features == ["charts"]
    assert "definition_of_complete" not in spec.unknown_keys


def test_completion_criteria_wins_over_definition_of_complete() -> None:
    spec, _ = load(document(
        completion_criteria={"primary_deliverable": "canonical"},
        definition_of_complete={"primary_deliverable": "alias", "verification_method": "tests"}))
    criteria = spec.completion_criteria
    assert criteria is not None
    assert criteria.primary_deliverable == "canonical"
    assert criteria.verification_method == "tests"


def test_metadata_table_becomes_meta() -> None:
    spec, _ = load(document(metadata={
        "descriptor": "dash", "spec_version": "1.3", "speclet_id": 2,
        "experimental_speclet": True}))
    assert spec.meta.goal_descriptor == "dash"
    assert spec.meta.spec_version == "1.3"
    assert spec.meta.speclet_id == 2
    assert spec.meta.experimental_speclet is True
    assert "metadata" not in spec.unknown_keys


def test_top_level_version_and_descriptor_become_meta() -> None:
    spec, diagnostics = load(document(version="2.0", last_updated="2025-11-03",
                                      descriptor="Better_SPEC"))
    assert (spec.meta.version, spec.meta.last_updated, spec.meta.goal_descriptor) == (
        "2.0", "2025-11-03", "Better_SPEC")
    assert not {"version", "last_updated", "descriptor"} & set(spec.unknown_keys)
    assert "I-UNKNOWN-KEY" not in codes(diagnostics)


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"meta": {"goal_descriptor": "meta"}, "metadata": {"descriptor": "metadata"},
          "descriptor": "top"}, "meta"),
        ({"metadata": {"descriptor": "metadata"}, "descriptor": "top"}, "metadata"),
        ({"descriptor": "top"}, "top"),
        ({}, None),
    ],
)
def test_descriptor_precedence(sections: dict[str, Any], expected: str | None) -> None:
    spec, diagnostics = load(document(**sections))
    assert spec.meta.goal_descriptor == expected
    assert "I-UNKNOWN-KEY" not in codes(diagnostics)
    losers = len(sections) - 1 if sections else 0
    assert codes(diagnostics).count("W-ALIAS-CONFLICT") == losers


def test_descriptor_falls_back_to_file_name(tmp_path: Path) -> None:
    loaded = write_spec(tmp_path, """
        [goal]
        description = "Summarise"
        [[tasks]]
        id = 1
        description = "t"
        [[tasks.steps]]
        id = 1
        description = "s"
        critical_flag = false
        """, name="weekly_report")
    assert loaded.descriptor == "weekly_report"


# -- tasks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_keys", "expected"),
    [
        ({"description": "canonical", "name": "n", "purpose": "p"}, "canonical"),
        ({"description": None, "name": "by name", "purpose": "p"}, "by name"),
        ({"description": None, "purpose": "by purpose"}, "by purpose"),
    ],
)
def test_task_name_and_purpose_aliases(task_keys: dict[str, Any], expected: str) -> None:
    doc = document(task=task_keys)
    doc["tasks"][0] = {k: v for k, v in doc["tasks"][0].items() if v is not None}
    spec, _ = load(doc)
    assert spec.tasks[0].description == expected


def test_task_ids_given_as_strings_become_ints() -> None:
    spec, diagnostics = load(document(task={"id": "7"}, steps=[step(id="2")]))
    assert (spec.tasks[0].id, spec.tasks[0].steps[0].id) == (7, 2)
    assert not [d for d in diagnostics if d.severity is Severity.ERROR]


# -- the Dashboard's nested SPECLets ------------------------------------------------------------


def nested_speclets() -> dict[str, Any]:
    def nested_task(tid: int, name: str) -> dict[str, Any]:
        return {"id": tid, "name": name, "purpose": f"why {name}", "steps": [
            {"id": 1, "description": f"{name} first", "expected_output": "ok",
             "critical": True, "backup_methods": ["other way"]},
            {"id": 2, "description": f"{name} second", "expected_output": "ok",
             "critical": False}]}

    return {
        "goal": {"statement": "Provide a dashboard"},
        "speclets": [
            {"id": 1, "name": "platform_foundation", "purpose": "infrastructure",
             "dependencies": [], "parallel_allowed": True, "critical": True,
             "tasks": [nested_task(1, "api"), nested_task(2, "db")]},
            {"id": 2, "name": "frontend", "purpose": "the UI",
             "dependencies": ["platform_foundation"], "parallel_allowed": False,
             "critical": True,
             "tasks": [nested_task(1, "app"), nested_task(2, "routing")]},
        ],
    }


def test_nested_speclets_are_flattened() -> None:
    spec, diagnostics = load(nested_speclets())
    assert [t.ref for t in spec.tasks] == ["1.1", "1.2", "2.1", "2.2"]
    assert [t.speclet for t in spec.tasks] == [1, 1, 2, 2]
    assert [t.description for t in spec.tasks] == ["api", "db", "app", "routing"]
    assert [t.purpose for t in spec.tasks] == ["why api", "why db", "why app", "why routing"]
    assert spec.step_count() == 8
    first = spec.tasks[0].steps[0]
    assert first.critical_flag is True
    assert [(b.id, b.description, b.trigger_condition) for b in first.backups] == [
        (1, "other way", "primary_failure")]
    assert spec.tasks[0].steps[1].critical_flag is False
    assert spec.speclets is not None
    platform, frontend = spec.speclets
    assert platform.tasks == [1, 2] and frontend.tasks == [1, 2]
    assert platform.depends_on == [] and frontend.depends_on == [1]  # by name -> by id
    assert (platform.description, frontend.description) == ("infrastructure", "the UI")
    assert (platform.name, frontend.parallel_allowed) == ("platform_foundation", False)
    assert not [d for d in diagnostics if d.severity is not Severity.INFO]


def test_nested_speclets_validate_without_structural_errors(tmp_path: Path) -> None:
    from specs.spec.tomlio import to_toml
    from specs.spec.validate import validate

    folder = tmp_path / "spec_dash"
    folder.mkdir()
    (folder / "parameters_dash.toml").write_text(to_toml(nested_speclets()), "utf-8")
    loaded = load_spec(folder, markdown=False, project=False)
    errors = [d for d in validate(loaded) if d.severity is Severity.ERROR]
    assert errors == []


def test_nested_speclet_step_diagnostic_points_into_the_nested_table(tmp_path: Path) -> None:
    loaded = write_spec(tmp_path, """
        [goal]
        statement = "Provide a dashboard"

        [[speclets]]
        id = 1
        name = "one"
        dependencies = []

        [[speclets.tasks]]
        id = 1
        name = "first"

        [[speclets.tasks.steps]]
        id = 1
        description = "a"
        critical = "nope"
        """)
    found = only(loaded.diagnostics, "E-TYPE")
    assert found.location.line == line_of(loaded, "critical =")


# -- diagnostics still point at the line the user wrote ----------------------------------------

BASE = """
[goal]
{goal}

[execution]
{execution}

[[tasks]]
id = 1
{task}

[[tasks.steps]]
id = 1
expected_output = "done"
{step}
"""

DEFAULT_PARTS = {"goal": 'description = "Summarise"', "execution": "",
                 "task": 'description = "t"', "step": 'description = "do"'}


@pytest.mark.parametrize(
    ("parts", "needle"),
    [
        ({"step": 'description = "do"\ncritical = "x"'}, "critical ="),
        ({"step": "action = 5"}, "action ="),
        ({"goal": "statement = 42"}, "statement ="),
        ({"execution": 'mode = "turbo"'}, "mode ="),
        ({"task": "name = 3"}, "name ="),
        ({"step": 'description = "do"\ndependencies = "one"'}, "dependencies ="),
        ({"step": 'description = "do"\nparallel_enabled = "sometimes"'}, "parallel_enabled ="),
    ],
)
def test_type_error_on_moved_key_points_at_original_line(tmp_path: Path, parts: dict[str, str],
                                                         needle: str) -> None:
    loaded = write_spec(tmp_path, BASE.format(**{**DEFAULT_PARTS, **parts}))
    found = only(loaded.diagnostics, "E-TYPE")
    assert found.severity is Severity.ERROR
    assert found.location.line == line_of(loaded, needle)
    assert loaded.spec is not None  # the bad key is dropped, the rest loads


def test_moved_inline_backup_diagnostic_points_at_backup_key(tmp_path: Path) -> None:
    from specs.spec.validate import validate

    loaded = write_spec(tmp_path, """
        [goal]
        description = "Summarise"
        [[tasks]]
        id = 1
        description = "t"
        [[tasks.steps]]
        id = 1
        description = "do"
        expected_output = "done"
        critical = true
        backup_1 = "retry the same thing"
        """)
    found = only(validate(loaded), "W-BACKUP-RETRY")
    assert found.location.line == line_of(loaded, "backup_1")


def test_moved_backup_methods_diagnostic_points_at_the_list(tmp_path: Path) -> None:
    from specs.spec.validate import validate

    loaded = write_spec(tmp_path, """
        [goal]
        description = "Summarise"
        [[tasks]]
        id = 1
        description = "t"
        [[tasks.steps]]
        id = 1
        description = "do"
        expected_output = "done"
        critical_flag = true
        backup_methods = [
            "fine alternative",
            "TODO",
        ]
        """)
    found = only(validate(loaded), "E-PLACEHOLDER")
    assert found.location.line == line_of(loaded, '"TODO"')


def test_moved_metadata_descriptor_points_at_metadata_line(tmp_path: Path) -> None:
    loaded = write_spec(tmp_path, """
        [metadata]
        descriptor = "demo"
        version = 7
        [goal]
        description = "Summarise"
        [[tasks]]
        id = 1
        description = "t"
        [[tasks.steps]]
        id = 1
        description = "s"
        critical_flag = false
        """)
    found = only(loaded.diagnostics, "E-TYPE")
    assert found.location.line == line_of(loaded, "version")


def test_moved_progress_alias_type_error_points_at_alias(tmp_path: Path) -> None:
    loaded = write_spec(tmp_path, """
        [goal]
        description = "Summarise"
        [execution]
        [execution.dynamic_escalation]
        trigger_consecutive_failures = -1
        [[tasks]]
        id = 1
        description = "t"
        [[tasks.steps]]
        id = 1
        description = "s"
        critical_flag = false
        """)
    lines = {d.location.line for d in loaded.diagnostics if d.code == "E-TYPE"}
    assert lines == {line_of(loaded, "trigger_consecutive_failures")}


def test_normalising_a_canonical_document_changes_nothing() -> None:
    spec, _ = load(nested_speclets())
    again, diagnostics = load(spec.model_dump(by_alias=True, exclude_none=True))
    assert again == spec
    assert not [d for d in diagnostics if d.severity is not Severity.INFO]
