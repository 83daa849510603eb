"""The compatibility corpus (reference §6): every real file the original project wrote must load.

Files are read from ``../shared/corpus`` (never copied into the repository); the whole module is
skipped when the corpus is absent, and rows of the reference's tables whose file is held back
are skipped one by one.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from specs.diagnostics import Diagnostic, Severity
from specs.spec.load import LoadedSpec, load_project, load_spec
from specs.spec.validate import validate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
REPO = Path(__file__).resolve().parents[1]

if not CORPUS.is_dir():
    pytest.skip("../shared/corpus is not available", allow_module_level=True)

PARAMETERS = sorted(CORPUS.rglob("parameters_*.toml"))
PROJECTS = sorted(CORPUS.rglob("project_constitution.toml"))


def rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


@cache
def loaded(path: Path) -> LoadedSpec:
    return load_spec(path)


@cache
def diagnostics(path: Path, strict: bool = False) -> tuple[Diagnostic, ...]:
    return tuple(validate(loaded(path), strict=strict))


def errors(path: Path, strict: bool = False) -> list[Diagnostic]:
    return [d for d in diagnostics(path, strict) if d.severity is Severity.ERROR]


def ids(paths: list[Path]) -> list[str]:
    return [rel(p) for p in paths]


def test_the_corpus_has_parameters_and_project_files() -> None:
    assert len(PARAMETERS) >= 10
    assert len(PROJECTS) >= 5


# -- every parameters file loads and (unless it is a known defect) validates -------------------

#: files with genuine defects and the error codes they must produce (docs/compatibility.md)
KNOWN_DEFECTS: dict[str, set[str]] = {
    "SPECs/ATATGTGG/spec_fart_test/parameters_fart_test.toml": {"E-NO-TASKS", "E-PLACEHOLDER"},
    "__SPEC_Engine/_templates/parameters_template.toml": {"E-PLACEHOLDER"},
    "@filing/Better_SPEC_changes/20251103_192727/originals/parameters_template.toml":
        {"E-PLACEHOLDER"},
}


@pytest.mark.parametrize("path", PARAMETERS, ids=ids(PARAMETERS))
def test_every_parameters_file_loads(path: Path) -> None:
    result = loaded(path)
    assert result.spec is not None, [d.render() for d in result.diagnostics]
    load_errors = [d.render() for d in result.diagnostics if d.severity is Severity.ERROR]
    assert load_errors == []


@pytest.mark.parametrize("path", PARAMETERS, ids=ids(PARAMETERS))
def test_every_real_spec_validates_without_errors(path: Path) -> None:
    expected = KNOWN_DEFECTS.get(rel(path), set())
    found = errors(path)
    assert {d.code for d in found} == expected, [d.render() for d in found]


@pytest.mark.parametrize("path", PARAMETERS, ids=ids(PARAMETERS))
def test_every_diagnostic_has_a_message_and_a_location(path: Path) -> None:
    for diagnostic in diagnostics(path, strict=True):
        assert diagnostic.message.strip()
        assert diagnostic.location.file
        assert diagnostic.location.line >= 0


# -- counts after normalisation (reference §6.1) -------------------------------------------------

#: path -> (tasks, steps, backups, critical % or None)
TABLE_6_1: dict[str, tuple[int, int, int, int | None]] = {
    "SPECs/ATATGTGG/spec_fart_test/parameters_fart_test.toml": (0, 0, 0, None),
    "SPECs/GCATTAGC/spec_innovation_dashboard/parameters_speclet_0_platform.toml":
        (6, 28, 27, 86),
    "SPECs/Testing/ATGCATGC/spec_ecommerce_site/parameters_ecommerce_site.toml": (6, 32, 16, 78),
    "SPECs/Testing/CGATTACG/spec_compliance_checker/parameters_compliance_checker.toml":
        (3, 9, 0, 89),
    "SPECs/Testing/GCTATCGA/spec_encryption/parameters_encryption.toml": (3, 8, 8, 88),
    "SPECs/Testing/TACGCGTA/spec_template_generator/parameters_template_generator.toml":
        (3, 8, 0, 50),
    "SPECs/Testing/TGCAATGC/spec_charity_pos/parameters_charity_pos.toml": (5, 24, 15, 67),
    "SPECs/Testing/TGCAATGC/spec_transaction_processing/parameters_transaction_processing.toml":
        (2, 6, 0, 67),
    "SPECs/Testing/TGCAATGC/spec_transaction_v2/parameters_transaction_v2.toml": (3, 9, 12, 56),
    "SPECs/Testing/TGCAATGC/spec_transaction_v3/parameters_transaction_v3.toml": (4, 12, 13, 83),
    "TGACGTCA/spec_podcast/parameters_podcast.toml": (5, 20, 15, 70),
    "__SPEC_Engine/_TOOLSPECs/Better_SPEC/parameters_Better_SPEC.toml": (11, 53, 9, 68),
    "__SPEC_Engine/_TOOLSPECs/Dashboard_SPEC_Engine/parameters_Dashboard_SPEC_Engine.toml":
        (24, 90, 6, 81),
    "__SPEC_Engine/_TOOLSPECs/Forensic/parameters_Forensic.toml": (5, 19, 19, 79),
    "__SPEC_Engine/_TOOLSPECs/Research_SPEC_Engine/parameters_Research_SPEC_Engine.toml":
        (6, 34, 10, 68),
    "__SPEC_Engine/_TOOLSPECs/Troubleshoot/parameters_Troubleshoot.toml": (5, 33, 19, 73),
    "__SPEC_Engine/_TOOLSPECs/WTF/parameters_WTF.toml": (4, 13, 13, 69),
    "__SPEC_Engine/_templates/parameters_template.toml": (3, 12, 10, 67),
    "@filing/Better_SPEC_changes/20251103_192727/originals/parameters_template.toml":
        (3, 12, 10, 67),
}
REAL = [key for key in TABLE_6_1 if not key.endswith("/parameters_template.toml")]


def counts(path: Path) -> tuple[int, int, int, int | None]:
    spec = loaded(path).spec
    assert spec is not None
    steps = spec.step_count()
    backups = sum(len(step.backups) for _, step in spec.steps())
    critical = sum(step.critical_flag for _, step in spec.steps())
    return len(spec.tasks), steps, backups, round(100 * critical / steps) if steps else None


@pytest.mark.parametrize("relative", list(TABLE_6_1))
def test_counts_match_the_reference_table(relative: str) -> None:
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is held back from this corpus")
    assert counts(path) == TABLE_6_1[relative]


def test_every_corpus_file_is_in_the_reference_table() -> None:
    assert [rel(p) for p in PARAMETERS if rel(p) not in TABLE_6_1] == []


def test_corpus_totals_when_complete() -> None:
    assert len(REAL) == 17
    present = [CORPUS / r for r in REAL if (CORPUS / r).is_file()]
    if len(present) != len(REAL):
        pytest.skip(f"{len(REAL) - len(present)} real parameters files are held back")
    totals = [sum(counts(p)[i] or 0 for p in present) for i in range(3)]
    assert totals == [95, 398, 182]


def test_dashboard_tasks_are_namespaced_by_speclet() -> None:
    path = CORPUS / "__SPEC_Engine/_TOOLSPECs/Dashboard_SPEC_Engine/" \
        "parameters_Dashboard_SPEC_Engine.toml"
    if not path.is_file():
        pytest.skip("Dashboard is held back")
    spec = loaded(path).spec
    assert spec is not None and spec.speclets is not None
    refs = [task.ref for task in spec.tasks]
    assert len(set(refs)) == len(refs) == 24
    assert refs[:4] == ["1.1", "1.2", "1.3", "2.1"]
    assert len(spec.speclets) == 8
    assert all(isinstance(dep, int) for s in spec.speclets for dep in s.depends_on)


# -- P-STACK under --strict ----------------------------------------------------------------------

BUILD_GOAL = re.compile(r"\b(build|create|develop|system|application|app)\b", re.I)
EMPTY_VALUES = {"", "n/a", "not_applicable"}

#: reference §3.2 compatibility note: the real specs P-STACK halts when run strictly
REFERENCE_STACK_HALTS = {
    "parameters_fart_test.toml", "parameters_ecommerce_site.toml",
    "parameters_compliance_checker.toml", "parameters_template_generator.toml",
    "parameters_charity_pos.toml", "parameters_transaction_processing.toml",
    "parameters_transaction_v2.toml", "parameters_Dashboard_SPEC_Engine.toml",
}


def lacks_stack(raw: dict[str, Any]) -> bool:
    """From the raw TOML alone: a build goal whose stack lacks a deployment type or language."""
    goal = raw.get("goal", {})
    text = goal.get("description") or goal.get("statement") or ""
    if not BUILD_GOAL.search(text):
        return False
    stack = raw.get("software_stack", {})
    return any(not isinstance(stack.get(key), str) or stack[key].strip().lower() in EMPTY_VALUES
               for key in ("deployment_type", "primary_language"))


def test_strict_stack_errors_match_an_independent_derivation() -> None:
    derived = {p.name for p in PARAMETERS if lacks_stack(tomllib.loads(p.read_text("utf-8")))}
    found = {p.name for p in PARAMETERS
             if any(d.code == "W-STACK" and "lacks" in d.message for d in errors(p, strict=True))}
    assert found == derived
    present = {p.name for p in PARAMETERS}
    assert derived == REFERENCE_STACK_HALTS & present
    assert {"parameters_compliance_checker.toml", "parameters_transaction_processing.toml",
            "parameters_ecommerce_site.toml", "parameters_charity_pos.toml"} & present <= found


def test_stack_is_only_a_warning_by_default() -> None:
    for path in PARAMETERS:
        stack = [d for d in diagnostics(path) if d.code == "W-STACK"]
        assert all(d.severity is Severity.WARNING and d.strict for d in stack), rel(path)


def test_skeletal_specs_warn_about_missing_expected_outputs() -> None:
    for name in ("spec_compliance_checker", "spec_transaction_processing",
                 "spec_template_generator"):
        found = [p for p in PARAMETERS if p.parent.name == name]
        for path in found:
            missing = [d for d in diagnostics(path) if d.code == "W-EXPECTED-MISSING"]
            spec = loaded(path).spec
            assert spec is not None
            assert len(missing) == spec.step_count()
            assert all(d.severity is Severity.WARNING for d in missing)


# -- project constitutions (reference §6.2) ------------------------------------------------------

REFERENCE_PROJECTS = {
    "SPECs/ATATGTGG/project_constitution.toml", "SPECs/GCATTAGC/project_constitution.toml",
    "SPECs/Testing/ATGCATGC/project_constitution.toml",
    "SPECs/Testing/CGATTACG/project_constitution.toml",
    "SPECs/Testing/GCTATCGA/project_constitution.toml",
    "SPECs/Testing/TACGCGTA/project_constitution.toml",
    "SPECs/Testing/TGCAATGC/project_constitution.toml", "TGACGTCA/project_constitution.toml",
}
REFERENCE_NULLS = {
    "SPECs/Testing/ATGCATGC/project_constitution.toml",
    "SPECs/Testing/TACGCGTA/project_constitution.toml",
    "SPECs/Testing/TGCAATGC/project_constitution.toml",
}
NULL_LINE = re.compile(r"^\s*\w+\s*=\s*null\s*$", re.M)


def test_project_files_are_the_reference_ones() -> None:
    assert {rel(p) for p in PROJECTS} <= REFERENCE_PROJECTS
    assert len(PROJECTS) >= len(REFERENCE_PROJECTS) - 1  # one is held back today


@pytest.mark.parametrize("path", PROJECTS, ids=ids(PROJECTS))
def test_every_project_constitution_loads(path: Path) -> None:
    project = load_project(path)
    assert project is not None
    assert project.doc
    assert [d.render() for d in project.diagnostics if d.severity is Severity.ERROR] == []
    text = path.read_text("utf-8")
    nulls = [d for d in project.diagnostics if d.code == "W-TOML-NULL"]
    assert len(nulls) == len(NULL_LINE.findall(text))
    for warning in nulls:
        line = text.splitlines()[warning.location.line - 1]
        assert re.match(r"\s*\w+\s*=\s*null\s*$", line)


def test_null_warnings_are_where_tomllib_fails() -> None:
    failing = set()
    for path in PROJECTS:
        try:
            tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError:
            failing.add(rel(path))
    warned = set()
    for path in PROJECTS:
        project = load_project(path)
        assert project is not None
        if any(d.code == "W-TOML-NULL" for d in project.diagnostics):
            warned.add(rel(path))
    assert warned == failing == REFERENCE_NULLS & {rel(p) for p in PROJECTS}
    assert len(warned) >= 2


def test_dashboard_schema_project_maps_onto_the_dna_schema() -> None:
    path = CORPUS / "SPECs/ATATGTGG/project_constitution.toml"
    if not path.is_file():
        pytest.skip("held back")
    project = load_project(path)
    assert project is not None
    assert project.get("preferences") is not None
    assert project.risk_level in {"high", "moderate", "low"}


def test_specs_inherit_from_their_project() -> None:
    path = CORPUS / "SPECs/Testing/CGATTACG/spec_compliance_checker/" \
        "parameters_compliance_checker.toml"
    if not path.is_file():
        pytest.skip("held back")
    result = loaded(path)
    spec = result.spec
    assert spec is not None and result.project is not None
    assert result.project.path == CORPUS / "SPECs/Testing/CGATTACG/project_constitution.toml"
    assert spec.execution.escalation_threshold == result.project.get(
        "execution.escalation_threshold")
    assert spec.execution.default_mode == "collaborative"  # the spec's own value


# -- docs/compatibility.md -----------------------------------------------------------------------


def test_compatibility_doc_names_every_corpus_parameters_file() -> None:
    doc = REPO / "docs" / "compatibility.md"
    assert doc.is_file(), "docs/compatibility.md is missing"
    text = doc.read_text("utf-8")
    missing = [rel(p) for p in PARAMETERS if rel(p) not in text]
    assert missing == []
