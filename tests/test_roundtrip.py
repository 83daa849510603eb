"""Round trip: a loaded spec dumped to TOML and loaded again is the same spec.

``normalize`` promises that normalising a canonical document changes nothing, and the model
promises that a dump of it loads into an equal model. Checked on every corpus file and on random
specs written in any of the spellings the loader accepts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specs.diagnostics import Severity
from specs.spec.load import load_spec, spec_from_document
from specs.spec.model import Spec
from specs.spec.tomlio import to_toml

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PARAMETERS = sorted(CORPUS.rglob("parameters_*.toml")) if CORPUS.is_dir() else []


def reload(spec: Spec) -> Spec | None:
    text = to_toml(spec.model_dump(by_alias=True, exclude_none=True))
    again, diagnostics = spec_from_document(tomllib.loads(text))
    assert not [d for d in diagnostics if d.severity is Severity.ERROR], [
        d.render() for d in diagnostics]
    return again


@pytest.mark.skipif(not PARAMETERS, reason="../shared/corpus is not available")
@pytest.mark.parametrize(
    "path", PARAMETERS, ids=[p.relative_to(CORPUS).as_posix() for p in PARAMETERS])
def test_corpus_spec_survives_dump_and_reload(path: Path) -> None:
    spec = load_spec(path).spec
    assert spec is not None
    assert reload(spec) == spec


# -- random specs --------------------------------------------------------------------------------

TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.sampled_from(['"', "'", '"""', "'''", "\\", "\\n", "a\nb", "\r\n", "\t", "é", "日本語",
                     "🚀", "\x00", "\x7f", "\u2028", "[Insert x]", "# not a comment", "a = 1",
                     "[[tasks]]", ""]),
)
INT = st.integers(min_value=-(2**63), max_value=2**63 - 1)
UNKNOWN_VALUE = st.one_of(TEXT, INT, st.booleans(),
                          st.lists(st.one_of(TEXT, INT, st.booleans()), max_size=3))
UNKNOWN_KEYS = st.dictionaries(st.from_regex(r"x_[a-z][a-z0-9_]{0,8}", fullmatch=True),
                               UNKNOWN_VALUE, max_size=2)
MODES = st.sampled_from(["silent", "collaborative", "dynamic", "Silent", "DYNAMIC"])
RETRIES = st.integers(min_value=0, max_value=6)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def backups(draw: st.DrawFn, step: dict[str, Any]) -> None:
    """Add 0-2 backups in one of the three forms the loader accepts."""
    count = draw(st.integers(min_value=0, max_value=2))
    if not count:
        return
    form = draw(st.sampled_from(["tables", "inline", "methods"]))
    texts = [draw(TEXT) for _ in range(count)]
    if form == "inline":
        for number, text in enumerate(texts, start=1):
            step[f"backup_{number}"] = text
    elif form == "methods":
        step["backup_methods"] = texts
    else:
        tables = []
        for number, text in enumerate(texts, start=1):
            table: dict[str, Any] = {"id": number, "description": text}
            if draw(st.booleans()):
                table["trigger_condition"] = (
                    "primary_failure" if number == 1 else f"backup_{number - 1}_failure")
            if draw(st.booleans()):
                table["max_retries"] = draw(RETRIES)
            if draw(st.booleans()):
                table["execution_method"] = draw(st.sampled_from(["cognitive", "tool", "script"]))
            table.update(draw(UNKNOWN_KEYS))
            tables.append(table)
        step["backups"] = tables


@st.composite
def steps(draw: st.DrawFn, task_id: int, step_id: int, earlier: list[str]) -> dict[str, Any]:
    step: dict[str, Any] = {"id": step_id}
    step[draw(st.sampled_from(["description", "action"]))] = draw(TEXT)
    for key, strategy in [("expected_output", TEXT), ("mode", MODES), ("max_retries", RETRIES),
                          ("primary_method", TEXT), ("parallel_group", TEXT)]:
        value = draw(maybe(strategy))
        if value is not None:
            step[key] = value
    critical = draw(maybe(st.booleans()))
    if critical is not None:
        step[draw(st.sampled_from(["critical_flag", "critical"]))] = critical
    parallel = draw(maybe(st.booleans()))
    if parallel is not None:
        step[draw(st.sampled_from(["parallel_safe", "parallel_enabled"]))] = parallel
    if earlier and draw(st.booleans()):
        refs = draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True))
        step[draw(st.sampled_from(["depends_on", "dependencies"]))] = [
            int(ref.split(".")[1]) if ref.startswith(f"{task_id}.") and draw(st.booleans())
            else ref for ref in refs]
    draw(backups(step))
    step.update(draw(UNKNOWN_KEYS))
    return step


@st.composite
def tasks(draw: st.DrawFn, task_id: int, earlier: list[str]) -> dict[str, Any]:
    task: dict[str, Any] = {"id": task_id}
    task[draw(st.sampled_from(["description", "name", "purpose"]))] = draw(TEXT)
    for key, strategy in [("critical", st.booleans()), ("mode", MODES),
                          ("max_retries", RETRIES), ("research_enabled", st.booleans())]:
        if draw(st.booleans()):
            task[key] = draw(strategy)
    count = draw(st.integers(min_value=0, max_value=4))
    step_ids = draw(st.lists(st.integers(min_value=0, max_value=9), min_size=count,
                             max_size=count, unique=True))
    task["steps"] = []
    for step_id in step_ids:
        task["steps"].append(draw(steps(task_id, step_id, list(earlier))))
        earlier.append(f"{task_id}.{step_id}")
    task.update(draw(UNKNOWN_KEYS))
    return task


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    doc["goal"] = {draw(st.sampled_from(["description", "statement"])): draw(TEXT)}
    if draw(st.booleans()):
        doc["execution"] = {draw(st.sampled_from(["default_mode", "mode"])): draw(MODES)}
    if draw(st.booleans()):
        doc["error_propagation"] = {
            draw(st.sampled_from(["propagation_strategy", "strategy"])): draw(st.sampled_from(
                ["halt_on_critical", "continue_and_log", "collaborative_review"])),
            draw(st.sampled_from(["enabled", "propagation_enabled"])): draw(st.booleans())}
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["metadata", "meta"]))] = {"version": draw(TEXT)}
    if draw(st.booleans()):
        doc["descriptor"] = draw(TEXT)
    count = draw(st.integers(min_value=0, max_value=4))
    task_ids = draw(st.lists(st.integers(min_value=0, max_value=20), min_size=count,
                             max_size=count, unique=True))
    earlier: list[str] = []
    doc["tasks"] = [draw(tasks(task_id, earlier)) for task_id in task_ids]
    doc.update(draw(UNKNOWN_KEYS))
    return doc


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_specs_survive_dump_and_reload(doc: dict[str, Any]) -> None:
    spec, diagnostics = spec_from_document(doc)
    assert spec is not None, [d.render() for d in diagnostics]
    assert not [d for d in diagnostics if d.severity is Severity.ERROR], [
        d.render() for d in diagnostics]
    again = reload(spec)
    assert again == spec
    assert reload(again) == spec  # and it stays put


@settings(max_examples=40, deadline=None)
@given(documents())
def test_random_specs_keep_their_unknown_keys(doc: dict[str, Any]) -> None:
    spec, _ = spec_from_document(doc)
    assert spec is not None
    top = {k: v for k, v in doc.items() if k.startswith("x_")}
    assert spec.unknown_keys == top
    for task_doc, task in zip(doc["tasks"], spec.tasks, strict=True):
        assert task.unknown_keys == {k: v for k, v in task_doc.items() if k.startswith("x_")}
        for step_doc, step in zip(task_doc["steps"], task.steps, strict=True):
            assert step.unknown_keys == {
                k: v for k, v in step_doc.items() if k.startswith("x_")}
            wanted = [b.get("description") for b in step_doc.get("backups", [])] or [
                step_doc[k] for k in sorted(step_doc) if k.startswith("backup_")
                and k[7:].isdigit()] or step_doc.get("backup_methods", [])
            assert [b.description for b in step.backups] == wanted
