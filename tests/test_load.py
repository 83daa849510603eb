"""Loading: project constitution precedence, step defaults, skeletal specs, unknown keys, paths.

Every spec here is written by hand into ``tmp_path``; the corpus tests at the end read the real
files from ``../shared/corpus`` and are skipped when it is absent.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from specs.diagnostics import Diagnostic, Severity
from specs.errors import PathNotFound
from specs.spec.load import LoadedSpec, load_project, load_spec
from specs.spec.validate import validate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

SPEC = """
[goal]
description = "Summarise the quarterly figures"
{extra}

[[tasks]]
id = 1
description = "Gather"
{task}

[[tasks.steps]]
id = 1
description = "Collect the spreadsheets"
expected_output = "three CSV files"
{step}

[[tasks.steps]]
id = 2
description = "Clean the data"
expected_output = "one tidy table"
critical_flag = false
"""

# -- helpers -------------------------------------------------------------------------------------


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text), "utf-8")
    return path


def spec_folder(root: Path, *, extra: str = "", task: str = "", step: str = "critical_flag = true",
                name: str = "demo", md: str | None = None) -> Path:
    folder = root / f"spec_{name}"
    write(folder / f"parameters_{name}.toml", SPEC.format(extra=extra, task=task, step=step))
    if md is not None:
        write(folder / f"spec_{name}.md", md)
    return folder


def codes(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


def only(diagnostics: list[Diagnostic], code: str) -> Diagnostic:
    found = [d for d in diagnostics if d.code == code]
    assert len(found) == 1, [d.render() for d in diagnostics]
    return found[0]


def line_in(path: Path, needle: str) -> int:
    hits = [i + 1 for i, line in enumerate(path.read_text("utf-8").splitlines())
            if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def loaded_spec(folder: Path, **options: bool) -> LoadedSpec:
    loaded = load_spec(folder, **options)
    assert loaded.spec is not None, [d.render() for d in loaded.diagnostics]
    return loaded


# -- project constitution precedence: built-in < project < spec ---------------------------------

PROJECT = """
[metadata]
dna_code = "ATGCATGC"
project_name = "demo"

[project]
risk_level = "moderate"

[execution]
default_mode = "silent"
escalation_threshold = 0
confidence_threshold = 0.6

[error_handling]
propagation_strategy = "continue_and_log"
failure_threshold = 5

[retry]
max_retries = 4
backoff_strategy = "fixed"

[optional_features]
research_enabled = true
"""


def test_builtin_defaults_without_a_project(tmp_path: Path) -> None:
    loaded = loaded_spec(spec_folder(tmp_path), markdown=False)
    spec = loaded.spec
    assert spec is not None and loaded.project is None
    assert spec.execution.default_mode == "dynamic"
    assert spec.execution.escalation_threshold == 3
    assert spec.error_propagation.propagation_strategy is None
    assert spec.error_propagation.failure_threshold == 3
    assert spec.tasks[0].steps[0].max_retries == 2
    assert spec.tasks[0].research_enabled is False


def test_spec_without_default_mode_inherits_the_project(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    loaded = loaded_spec(spec_folder(tmp_path), markdown=False)
    spec = loaded.spec
    assert spec is not None
    assert loaded.project is not None
    assert loaded.project.path == tmp_path / "project_constitution.toml"
    assert spec.execution.default_mode == "silent"
    assert loaded.provenance[("execution", "default_mode")] == "project:execution.default_mode"
    assert spec.execution.escalation_threshold == 0
    assert spec.execution.confidence_threshold == 0.6
    assert spec.error_propagation.propagation_strategy == "continue_and_log"
    assert spec.error_propagation.failure_threshold == 5
    assert spec.retry.max_retries == 4
    assert spec.retry.backoff_strategy == "fixed"
    assert [s.max_retries for s in spec.tasks[0].steps] == [4, 4]
    assert loaded.provenance[("tasks", 0, "steps", 0, "max_retries")] == "project"
    assert spec.tasks[0].research_enabled is True


@pytest.mark.parametrize(
    ("extra", "mode"),
    [
        ('[execution]\ndefault_mode = "collaborative"', "collaborative"),
        ('[execution]\nmode = "education"', "education"),
        ('[execution]\ndefault_mode = "dynamic"', "dynamic"),
    ],
)
def test_the_specs_own_value_wins_over_the_project(tmp_path: Path, extra: str, mode: str) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    loaded = loaded_spec(spec_folder(tmp_path, extra=extra), markdown=False)
    assert loaded.spec is not None
    assert loaded.spec.execution.default_mode == mode
    assert ("execution", "default_mode") not in loaded.provenance


def test_spec_values_win_key_by_key(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    extra = """
[error_propagation]
strategy = "halt_on_critical"

[retry]
max_retries = 1
"""
    loaded = loaded_spec(spec_folder(tmp_path, extra=extra), markdown=False)
    spec = loaded.spec
    assert spec is not None
    assert spec.error_propagation.propagation_strategy == "halt_on_critical"
    assert spec.error_propagation.failure_threshold == 5  # not in the spec: project value
    assert spec.retry.max_retries == 1
    assert [s.max_retries for s in spec.tasks[0].steps] == [1, 1]


def test_risk_level_gives_strategy_and_threshold(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", """
        [project]
        risk_level = "high"
        """)
    spec = loaded_spec(spec_folder(tmp_path), markdown=False).spec
    assert spec is not None
    assert spec.error_propagation.propagation_strategy == "halt_on_critical"
    assert spec.error_propagation.failure_threshold == 2


def test_applies_settings_limits_what_is_inherited(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    extra = """
[project_constitution]
constitution_file = "../project_constitution.toml"
dna_code = "ATGCATGC"
applies_settings = ["execution.default_mode", "error_handling.failure_threshold"]
"""
    loaded = loaded_spec(spec_folder(tmp_path, extra=extra), markdown=False)
    spec = loaded.spec
    assert spec is not None
    assert spec.execution.default_mode == "silent"
    assert spec.error_propagation.failure_threshold == 5
    # everything else stays at the built-in default
    assert spec.execution.escalation_threshold == 3
    assert spec.execution.confidence_threshold is None
    assert spec.error_propagation.propagation_strategy is None
    assert spec.retry.max_retries is None
    assert [s.max_retries for s in spec.tasks[0].steps] == [2, 2]
    assert spec.tasks[0].research_enabled is False


@pytest.mark.parametrize(
    ("features", "applies", "expected"),
    [
        ("research_enabled = true", None, True),
        ("research_enabled_default = true", None, True),
        ("research_enabled = false\nresearch_enabled_default = true", None, False),
        ("research_enabled_default = true", '["optional_features.research_enabled_default"]',
         True),
        ("research_enabled_default = true", '["optional_features.research_enabled"]', True),
        ("research_enabled_default = true", '["execution.default_mode"]', False),
    ],
)
def test_research_default_and_its_spelling(tmp_path: Path, features: str, applies: str | None,
                                           expected: bool) -> None:
    write(tmp_path / "project_constitution.toml", f"[optional_features]\n{features}\n")
    extra = f"[project_constitution]\napplies_settings = {applies}" if applies else ""
    spec = loaded_spec(spec_folder(tmp_path, extra=extra), markdown=False).spec
    assert spec is not None
    assert spec.tasks[0].research_enabled is expected


def test_task_research_flag_wins_over_the_project(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", "[optional_features]\nresearch_enabled = true\n")
    spec = loaded_spec(spec_folder(tmp_path, task="research_enabled = false"),
                       markdown=False).spec
    assert spec is not None
    assert spec.tasks[0].research_enabled is False


def test_empty_applies_settings_inherits_nothing(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    extra = "[project_constitution]\napplies_settings = []"
    spec = loaded_spec(spec_folder(tmp_path, extra=extra), markdown=False).spec
    assert spec is not None
    assert spec.execution.default_mode == "dynamic"
    assert spec.retry.max_retries is None


def test_constitution_file_names_the_project(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)  # the nearest one
    named = write(tmp_path / "elsewhere" / "project_constitution.toml", """
        [execution]
        default_mode = "collaborative"
        """)
    extra = '[project_constitution]\nconstitution_file = "../elsewhere/project_constitution.toml"'
    loaded = loaded_spec(spec_folder(tmp_path, extra=extra), markdown=False)
    assert loaded.project is not None
    assert loaded.project.path.resolve() == named.resolve()
    assert loaded.spec is not None
    assert loaded.spec.execution.default_mode == "collaborative"
    assert loaded.spec.retry.max_retries is None  # nothing from the nearest one


def test_missing_constitution_file_warns_and_falls_back(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    extra = '[project_constitution]\nconstitution_file = "../nowhere.toml"'
    folder = spec_folder(tmp_path, extra=extra)
    loaded = loaded_spec(folder, markdown=False)
    warning = only(loaded.diagnostics, "W-PROJECT-MISSING")
    assert warning.location.line == line_in(folder / "parameters_demo.toml", "constitution_file")
    assert loaded.project is not None
    assert loaded.spec is not None
    assert loaded.spec.execution.default_mode == "silent"


def test_nearest_constitution_in_parent_folders(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    deep = tmp_path / "a" / "b"
    loaded = loaded_spec(spec_folder(deep), markdown=False)
    assert loaded.project is not None
    assert loaded.project.path == tmp_path / "project_constitution.toml"
    assert loaded.spec is not None and loaded.spec.execution.default_mode == "silent"

    write(tmp_path / "a" / "project_constitution.toml", """
        [execution]
        default_mode = "collaborative"
        """)
    nearer = loaded_spec(deep / "spec_demo", markdown=False)
    assert nearer.project is not None
    assert nearer.project.path == tmp_path / "a" / "project_constitution.toml"
    assert nearer.spec is not None and nearer.spec.execution.default_mode == "collaborative"


def test_project_false_ignores_the_constitution(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", PROJECT)
    loaded = loaded_spec(spec_folder(tmp_path), markdown=False, project=False)
    assert loaded.project is None
    assert loaded.spec is not None and loaded.spec.execution.default_mode == "dynamic"


def test_null_in_the_project_is_tolerated_with_a_warning(tmp_path: Path) -> None:
    project = write(tmp_path / "project_constitution.toml", """
        [constraints]
        software_stack = "python"
        language = null
        frameworks = []

        [execution]
        default_mode = "silent"
        """)
    loaded = loaded_spec(spec_folder(tmp_path), markdown=False)
    warning = only(loaded.diagnostics, "W-TOML-NULL")
    assert warning.severity is Severity.WARNING
    assert warning.location.file == str(project)
    assert warning.location.line == line_in(project, "language = null")
    assert "language" in warning.message
    assert loaded.spec is not None and loaded.spec.execution.default_mode == "silent"
    assert loaded.project is not None
    assert loaded.project.get("constraints.language") is None
    assert loaded.project.get("constraints.software_stack") == "python"


def test_load_project_reports_null_and_syntax_errors(tmp_path: Path) -> None:
    good = write(tmp_path / "good" / "project_constitution.toml", '[execution]\nx = null\n')
    project = load_project(good)
    assert project is not None
    assert codes(project.diagnostics) == ["W-TOML-NULL"]
    bad = write(tmp_path / "bad" / "project_constitution.toml", "[execution\n")
    broken = load_project(bad)
    assert broken is not None
    assert codes(broken.diagnostics) == ["E-TOML-SYNTAX"]
    assert broken.doc == {}


@pytest.mark.parametrize(
    ("autonomy", "tolerance", "mode", "strategy"),
    [
        ("low", "high", "collaborative", "halt_on_critical"),
        ("medium", "medium", "dynamic", "collaborative_review"),
        ("high", "low", "silent", "continue_and_log"),
        ("HIGH", None, "silent", None),
    ],
)
def test_dashboard_schema_constitution(tmp_path: Path, autonomy: str, tolerance: str | None,
                                       mode: str, strategy: str | None) -> None:
    preferences = f'autonomy_level = "{autonomy}"\ntesting = "basic"\n'
    if tolerance:
        preferences += f'risk_tolerance = "{tolerance}"\n'
    write(tmp_path / "project_constitution.toml",
          f'[metadata]\nversion = "1.0"\n[project]\nname = "x"\n[preferences]\n{preferences}')
    spec = loaded_spec(spec_folder(tmp_path), markdown=False).spec
    assert spec is not None
    assert spec.execution.default_mode == mode
    assert spec.error_propagation.propagation_strategy == strategy


def test_inline_constitution_block_is_a_project_layer(tmp_path: Path) -> None:
    extra = '[constitution]\ndna_code = "ATGCATGC"\nrisk_level = "low"'
    spec = loaded_spec(spec_folder(tmp_path, extra=extra), markdown=False,
                       project=True).spec
    assert spec is not None
    assert spec.error_propagation.propagation_strategy == "continue_and_log"
    assert spec.error_propagation.failure_threshold == 5


# -- step defaults (A4, A28) ---------------------------------------------------------------------


def test_task_level_defaults_apply_to_steps(tmp_path: Path) -> None:
    task = 'critical = false\nmode = "collaborative"\nmax_retries = 4'
    loaded = loaded_spec(spec_folder(tmp_path, task=task, step=""), markdown=False)
    spec = loaded.spec
    assert spec is not None
    first, second = spec.tasks[0].steps
    assert (first.critical_flag, first.mode, first.max_retries) == (False, "collaborative", 4)
    assert (second.critical_flag, second.mode, second.max_retries) == (False, "collaborative", 4)
    assert loaded.provenance[("tasks", 0, "steps", 0, "critical_flag")] == "task"
    assert loaded.provenance[("tasks", 0, "steps", 0, "mode")] == "task"
    assert loaded.provenance[("tasks", 0, "steps", 0, "max_retries")] == "task"
    assert ("tasks", 0, "steps", 1, "critical_flag") not in loaded.provenance  # its own
    assert "W-CRIT-MISSING" not in codes(loaded.diagnostics)


def test_step_values_win_over_task_level(tmp_path: Path) -> None:
    task = 'critical = false\nmode = "collaborative"\nmax_retries = 4'
    step = 'critical = true\nmode = "silent"\nmax_retries = 0'
    spec = loaded_spec(spec_folder(tmp_path, task=task, step=step), markdown=False).spec
    assert spec is not None
    first = spec.tasks[0].steps[0]
    assert (first.critical_flag, first.mode, first.max_retries) == (True, "silent", 0)


def test_task_level_retries_win_over_the_project(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", "[retry]\nmax_retries = 5\n")
    spec = loaded_spec(spec_folder(tmp_path, task="max_retries = 1"), markdown=False).spec
    assert spec is not None
    assert [s.max_retries for s in spec.tasks[0].steps] == [1, 1]


def test_project_retries_are_the_step_default(tmp_path: Path) -> None:
    write(tmp_path / "project_constitution.toml", "[retry]\nmax_retries = 5\n")
    loaded = loaded_spec(spec_folder(tmp_path, step="critical_flag = true\nmax_retries = 3"),
                         markdown=False)
    assert loaded.spec is not None
    assert [s.max_retries for s in loaded.spec.tasks[0].steps] == [3, 5]
    assert loaded.provenance[("tasks", 0, "steps", 1, "max_retries")] == "project"


def test_missing_critical_flag_is_true_with_a_warning(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path, step="")
    loaded = loaded_spec(folder, markdown=False)
    assert loaded.spec is not None
    assert loaded.spec.tasks[0].steps[0].critical_flag is True
    assert loaded.provenance[("tasks", 0, "steps", 0, "critical_flag")] == "default"
    warning = only(loaded.diagnostics, "W-CRIT-MISSING")
    assert warning.severity is Severity.WARNING and warning.strict
    assert "1.1" in warning.message
    params = folder / "parameters_demo.toml"
    step_lines = [i + 1 for i, line in enumerate(params.read_text().splitlines())
                  if line.strip() == "[[tasks.steps]]"]
    assert warning.location.line == step_lines[0]


# -- skeletal TOML filled from the Markdown ------------------------------------------------------

SKELETAL = """
[goal]
description = "Summarise the quarterly figures"

[[tasks]]
id = 1
[[tasks.steps]]
id = 1
critical_flag = true
[[tasks.steps]]
id = 2
critical_flag = false

[[tasks]]
id = 2
description = "The TOML's own title"
[[tasks.steps]]
id = 1
critical_flag = false
description = "The TOML's own step"
[[tasks.steps]]
id = 2
"""

SKELETAL_MD = """
# Quarterly summary

## Goal
Summarise the quarterly figures

## Task 1: Gather the data
- **Step 1:** Collect the spreadsheets (critical)
  - **Primary method:** Download them from the shared drive
  - **Expected output:** Three CSV files
  - **Backup 1:** Ask finance for an export
- **Step 2:** Clean the data
  - **Expected output:** One tidy table

## Task 2: Write the report
- **Step 1:** Draft the text
  - **Expected output:** A draft
- **Step 2:** TODO: decide the layout (non-critical)
  - **Mode:** collaborative
"""


def skeletal(tmp_path: Path) -> tuple[Path, LoadedSpec]:
    folder = tmp_path / "spec_demo"
    write(folder / "parameters_demo.toml", SKELETAL)
    write(folder / "spec_demo.md", SKELETAL_MD)
    return folder, loaded_spec(folder, project=False)


def test_skeletal_steps_are_filled_from_the_markdown(tmp_path: Path) -> None:
    folder, loaded = skeletal(tmp_path)
    spec = loaded.spec
    assert spec is not None
    assert loaded.markdown_path == folder / "spec_demo.md"
    gather, report = spec.tasks
    assert gather.description == "Gather the data"
    assert report.description == "The TOML's own title"  # the TOML wins
    collect, clean = gather.steps
    assert collect.description == "Collect the spreadsheets"
    assert collect.primary_method == "Download them from the shared drive"
    assert collect.expected_output == "Three CSV files"
    assert collect.critical_flag is True
    assert [(b.id, b.description, b.trigger_condition) for b in collect.backups] == [
        (1, "Ask finance for an export", "primary_failure")]
    assert (clean.description, clean.expected_output) == ("Clean the data", "One tidy table")
    draft, layout = report.steps
    assert draft.description == "The TOML's own step"
    assert draft.expected_output == "A draft"
    assert layout.description == "TODO: decide the layout"
    assert layout.critical_flag is False  # from "(non-critical)"
    assert layout.mode == "collaborative"
    assert "W-CRIT-MISSING" not in codes(loaded.diagnostics)
    for path in [("tasks", 0, "description"), ("tasks", 0, "steps", 0, "description"),
                 ("tasks", 0, "steps", 0, "primary_method"),
                 ("tasks", 0, "steps", 0, "expected_output"),
                 ("tasks", 0, "steps", 0, "backups"),
                 ("tasks", 1, "steps", 0, "expected_output"),
                 ("tasks", 1, "steps", 1, "critical_flag")]:
        assert loaded.provenance[path] == "markdown", path
    assert ("tasks", 1, "description") not in loaded.provenance
    assert ("tasks", 1, "steps", 0, "description") not in loaded.provenance


def test_markdown_filled_field_diagnostic_points_into_the_markdown(tmp_path: Path) -> None:
    folder, loaded = skeletal(tmp_path)
    md = folder / "spec_demo.md"
    found = only(validate(loaded), "E-PLACEHOLDER")
    assert found.location.file == str(md)
    assert found.location.line == line_in(md, "TODO: decide the layout")


def test_markdown_fills_a_missing_goal(tmp_path: Path) -> None:
    folder = tmp_path / "spec_demo"
    write(folder / "parameters_demo.toml", SKELETAL.replace(
        'description = "Summarise the quarterly figures"', ""))
    write(folder / "spec_demo.md", SKELETAL_MD)
    loaded = loaded_spec(folder, project=False)
    assert loaded.spec is not None
    assert loaded.spec.goal.description == "Summarise the quarterly figures"
    assert loaded.provenance[("goal", "description")] == "markdown"


def test_without_markdown_skeletal_steps_stay_empty(tmp_path: Path) -> None:
    folder = tmp_path / "spec_demo"
    write(folder / "parameters_demo.toml", SKELETAL)
    loaded = loaded_spec(folder, project=False)
    assert loaded.spec is not None
    assert loaded.spec.tasks[0].steps[0].description == ""
    assert "W-FILE-MD-MISSING" in codes(loaded.diagnostics)
    assert "E-STEP-ACTION" in codes(validate(loaded))


SKELETAL_CORPUS = [
    "SPECs/Testing/CGATTACG/spec_compliance_checker",
    "SPECs/Testing/TGCAATGC/spec_transaction_processing",
    "SPECs/Testing/TACGCGTA/spec_template_generator",  # held back from the corpus today
]


@pytest.mark.parametrize("relative", SKELETAL_CORPUS)
def test_corpus_skeletal_specs_get_their_text_from_the_markdown(relative: str) -> None:
    folder = CORPUS / relative
    if not folder.is_dir():
        pytest.skip(f"{relative} is not in the corpus")
    loaded = loaded_spec(folder)
    spec = loaded.spec
    assert spec is not None
    assert spec.step_count() > 0
    for ti, task in enumerate(spec.tasks):
        assert task.description.strip(), task.id
        for si, step in enumerate(task.steps):
            assert step.description.strip(), (task.id, step.id)
            assert loaded.provenance[("tasks", ti, "steps", si, "description")] == "markdown"
    assert "E-STEP-ACTION" not in codes(validate(loaded))


# -- unknown keys --------------------------------------------------------------------------------


def test_unknown_keys_are_kept_and_reported_with_their_line(tmp_path: Path) -> None:
    extra = '[custom_section]\nanswer = 42\n\n[execution]\nturbo = true'
    folder = spec_folder(tmp_path, extra=extra, task='owner = "ana"',
                         step='critical_flag = true\nx_cost = [1, 2]')
    loaded = loaded_spec(folder, markdown=False)
    spec = loaded.spec
    assert spec is not None
    assert spec.model_extra == {"custom_section": {"answer": 42}}
    assert spec.execution.unknown_keys == {"turbo": True}
    assert spec.tasks[0].model_extra == {"owner": "ana"}
    assert spec.tasks[0].steps[0].model_extra == {"x_cost": [1, 2]}
    params = folder / "parameters_demo.toml"
    infos = {d.message.split("'")[1]: d for d in loaded.diagnostics if d.code == "I-UNKNOWN-KEY"}
    assert set(infos) == {"custom_section", "execution.turbo", "tasks.0.owner",
                          "tasks.0.steps.0.x_cost"}
    assert all(d.severity is Severity.INFO for d in infos.values())
    assert infos["custom_section"].location.line == line_in(params, "[custom_section]")
    assert infos["execution.turbo"].location.line == line_in(params, "turbo")
    assert infos["tasks.0.owner"].location.line == line_in(params, "owner")
    assert infos["tasks.0.steps.0.x_cost"].location.line == line_in(params, "x_cost")
    assert not [d for d in validate(loaded) if d.severity is Severity.ERROR]


def test_wrong_type_is_reported_and_the_rest_loads(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path, step='critical_flag = true\nmax_retries = "many"')
    loaded = load_spec(folder, markdown=False)
    assert loaded.spec is not None
    error = only(loaded.diagnostics, "E-TYPE")
    assert error.location.line == line_in(folder / "parameters_demo.toml", "max_retries")
    assert loaded.spec.tasks[0].steps[0].max_retries == 2


# -- paths ---------------------------------------------------------------------------------------


def test_progress_and_notepad_default_paths(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path)
    loaded = loaded_spec(folder, markdown=False)
    assert loaded.progress_path == folder / "progress_demo.json"
    assert loaded.notepad_path == folder / "notepad_demo.md"


def test_descriptor_from_meta_names_the_default_paths(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path, extra='[meta]\ngoal_descriptor = "quarterly"')
    loaded = loaded_spec(folder, markdown=False)
    assert loaded.descriptor == "quarterly"
    assert loaded.progress_path == folder / "progress_quarterly.json"
    assert loaded.notepad_path == folder / "notepad_quarterly.md"


@pytest.mark.parametrize(
    ("extra", "progress", "notepad"),
    [
        ('[logging]\noutput_file = "out/p.json"', "out/p.json", "notepad_demo.md"),
        ('[logging]\nlog_file = "log.json"', "log.json", "notepad_demo.md"),
        ('[progress_log]\nfile = "pl.json"', "pl.json", "notepad_demo.md"),
        ('[progress_tracking]\nprogress_file = "pt.json"\nlog_file = "no.json"', "pt.json",
         "notepad_demo.md"),
        ('[meta]\nlog_output = "m.json"\nnotepad_output = "n.md"', "m.json", "n.md"),
        ('[knowledge_capture]\nnotepad_path = "notes/k.md"', "progress_demo.json",
         "notes/k.md"),
        ('descriptor = "top"', "progress_top.json", "notepad_top.md"),
    ],
)
def test_progress_and_notepad_path_aliases(tmp_path: Path, extra: str, progress: str,
                                           notepad: str) -> None:
    if extra.startswith("descriptor"):
        folder = tmp_path / "spec_demo"
        write(folder / "parameters_demo.toml", extra + "\n" + SPEC.format(
            extra="", task="", step="critical_flag = true"))
    else:
        folder = spec_folder(tmp_path, extra=extra)
    loaded = loaded_spec(folder, markdown=False)
    assert loaded.progress_path == folder / progress
    assert loaded.notepad_path == folder / notepad


# -- finding files -------------------------------------------------------------------------------


def test_missing_path_raises_path_not_found(tmp_path: Path) -> None:
    with pytest.raises(PathNotFound):
        load_spec(tmp_path / "nope")


def test_folder_without_parameters_is_an_error(tmp_path: Path) -> None:
    loaded = load_spec(tmp_path)
    assert loaded.spec is None
    assert codes(loaded.diagnostics) == ["E-SPEC-NO-PARAMS"]


def test_folder_with_two_parameters_files_is_ambiguous(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path)
    write(folder / "parameters_other.toml", SPEC.format(extra="", task="", step=""))
    loaded = load_spec(folder)
    assert loaded.spec is None
    assert codes(loaded.diagnostics) == ["E-SPEC-AMBIGUOUS"]


def test_parameters_file_path_and_markdown_path_both_load(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path, md="## Goal\nSummarise the quarterly figures\n")
    by_file = loaded_spec(folder / "parameters_demo.toml", project=False)
    by_md = loaded_spec(folder / "spec_demo.md", project=False)
    assert by_file.spec == by_md.spec
    assert by_file.markdown_path == folder / "spec_demo.md"


def test_syntax_error_gives_no_spec_and_a_located_error(tmp_path: Path) -> None:
    folder = tmp_path / "spec_demo"
    write(folder / "parameters_demo.toml", '[goal]\ndescription = "x"\n[[tasks]\nid = 1\n')
    loaded = load_spec(folder, markdown=False)
    assert loaded.spec is None
    error = only(loaded.diagnostics, "E-TOML-SYNTAX")
    assert error.location.line == 3


# -- one TOML parser whatever the size (issue 12 item 4) -----------------------------------------

# TOML 1.1 forms that tomllib (TOML 1.0) rejects and other parsers accept: a file must not load
# or fail depending on its size
NOT_TOML_1_0 = ["x = { b = 1, }", "x = { b = 1\n}", 'x = "\\x41"', "x = 07:32",
                "x = 1979-05-27T07:32Z"]


@pytest.mark.parametrize("line", NOT_TOML_1_0)
def test_a_file_parses_the_same_small_or_big(line: str) -> None:
    from specs.spec.tomlio import parse_toml

    small = '[goal]\ndescription = "Count"\n' + line + "\n"
    big = small + "# padding\n" * 20_000  # 200 KB
    verdicts = []
    for text in (small, big):
        doc, _, found = parse_toml(text, "parameters_x.toml")
        verdicts.append((doc, [(d.code, d.location.line) for d in found]))
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][0] is None and verdicts[0][1] == [("E-TOML-SYNTAX", 3)]
