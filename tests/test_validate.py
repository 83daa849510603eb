"""Pre-flight checks (reference §3.2, SPEC_FORMAT.md §1.2): one test per diagnostic code.

Each case takes a clean spec, breaks it in one way and checks that the code fires; then applies
the correction and checks that the code is gone. The clean specs themselves validate without a
single diagnostic, so every code below is caused by the change the case makes.
"""

from __future__ import annotations

import copy
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from specs.diagnostics import Diagnostic, Severity
from specs.spec.load import LoadedSpec, load_spec
from specs.spec.tomlio import to_toml
from specs.spec.validate import placeholder, validate

Doc = dict[str, Any]

# -- clean specs ---------------------------------------------------------------------------------


def step(sid: int, text: str, critical: bool, backup: str | None = None, **keys: Any) -> Doc:
    out: Doc = {"id": sid, "description": text, "expected_output": f"{text}: done",
                "critical_flag": critical}
    if backup is not None:
        out["backups"] = [{"id": 1, "description": backup, "trigger_condition": "primary_failure"}]
    out.update(keys)
    return out


def task(tid: int, text: str) -> Doc:
    return {"id": tid, "description": text, "steps": [
        step(1, f"{text}: collect the inputs", True, f"{text}: ask a colleague for them"),
        step(2, f"{text}: check the result", False)]}


def base() -> Doc:
    """A plain (non-build) goal, 2 tasks of 2 steps, 50 % critical, every critical step backed."""
    return {"goal": {"description": "Summarise the quarterly sales figures in a one-page report"},
            "tasks": [task(1, "Gather"), task(2, "Report")]}


def build() -> Doc:
    """A build goal with everything Art. XIV asks for."""
    doc = base()
    doc["goal"]["description"] = "Build a command-line tool that summarises the sales figures"
    doc["software_stack"] = {"deployment_type": "cli", "primary_language": "python",
                             "packaging_method": "pipx"}
    doc["completion_criteria"] = {"acceptance_criteria": [
        "prints the summary", "exits 0 on valid input", "has a --help page"]}
    return doc


def web_app() -> Doc:
    doc = build()
    doc["software_stack"] = {"deployment_type": "web_app", "primary_language": "typescript"}
    doc["deployment"] = {"target_platform": "web", "installation_type": "web_url",
                         "startup_method": "open_url"}
    return doc


def for_users() -> Doc:
    doc = base()
    doc["goal"]["description"] = "Summarise the quarterly figures for the sales managers"
    doc["user_interface"] = {"required": True, "interface_type": "web",
                             "target_users": "sales managers", "skill_level": "basic"}
    return doc


def speclets() -> Doc:
    """Four tasks in two SPECLets (b depends on a)."""
    doc = base()
    doc["tasks"] = [task(1, "Gather"), task(2, "Clean"), task(3, "Chart"), task(4, "Report")]
    doc["speclets"] = [
        {"id": "a", "description": "data", "depends_on": [], "tasks": [1, 2],
         "parallel_allowed": True},
        {"id": "b", "description": "output", "depends_on": ["a"], "tasks": [3, 4],
         "parallel_allowed": False}]
    return doc


MARKDOWN = """
## Goal
Summarise the quarterly sales figures in a one-page report

## Task 1: Gather
- **Step 1:** Gather: collect the inputs
- **Step 2:** Gather: check the result

## Task 2: Report
- **Step 1:** Report: collect the inputs
- **Step 2:** Report: check the result
"""


# -- running -------------------------------------------------------------------------------------


@dataclass
class Setup:
    """A spec on disk: parameters, optional Markdown, project constitution and extra files."""

    doc: Doc
    md: str | None = None
    project: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)


def write_setup(root: Path, setup: Setup) -> LoadedSpec:
    folder = root / "spec_demo"
    folder.mkdir(parents=True)
    (folder / "parameters_demo.toml").write_text(to_toml(setup.doc), "utf-8")
    if setup.md is not None:
        (folder / "spec_demo.md").write_text(textwrap.dedent(setup.md), "utf-8")
    if setup.project is not None:
        (root / "project_constitution.toml").write_text(textwrap.dedent(setup.project), "utf-8")
    for name, text in setup.files.items():
        (folder / name).write_text(text, "utf-8")
    for name in setup.dirs:
        (folder / name).mkdir(parents=True, exist_ok=True)
    return load_spec(folder, markdown=setup.md is not None, project=setup.project is not None)


def check(root: Path, doc: Doc | Setup, strict: bool = False) -> list[Diagnostic]:
    setup = doc if isinstance(doc, Setup) else Setup(doc)
    loaded = write_setup(root, setup)
    assert loaded.spec is not None, [d.render() for d in loaded.diagnostics]
    return validate(loaded, strict=strict)


def codes(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


def rendered(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.render() for d in diagnostics]


# -- the clean specs are clean -------------------------------------------------------------------


@pytest.mark.parametrize("make", [base, build, web_app, for_users, speclets])
def test_clean_specs_have_no_diagnostics(tmp_path: Path, make: Callable[[], Doc]) -> None:
    assert rendered(check(tmp_path, make())) == []


def test_clean_spec_with_markdown_has_no_diagnostics(tmp_path: Path) -> None:
    assert rendered(check(tmp_path, Setup(base(), md=MARKDOWN))) == []


# -- one case per code: (code, severity, strict-marked, broken spec, corrected spec) ------------

Mutation = Callable[[], Doc | Setup]


def edit(make: Callable[[], Doc], *changes: Callable[[Doc], Any]) -> Mutation:
    def apply() -> Doc:
        doc = make()
        for change in changes:
            change(doc)
        return doc
    return apply


def with_setup(mutation: Mutation, **options: Any) -> Mutation:
    def apply() -> Setup:
        made = mutation()
        doc = made.doc if isinstance(made, Setup) else made
        return Setup(copy.deepcopy(doc), **options)
    return apply


def s(doc: Doc, ti: int = 0, si: int = 0) -> Doc:
    """The step ``si`` of task ``ti``."""
    return doc["tasks"][ti]["steps"][si]  # type: ignore[no-any-return]


def b(doc: Doc, ti: int = 0, si: int = 0, bi: int = 0) -> Doc:
    return s(doc, ti, si)["backups"][bi]  # type: ignore[no-any-return]


def cond(si: int, text: str) -> Callable[[Doc], None]:
    """Give step ``si`` of task 1 the condition ``text``."""
    return lambda doc: s(doc, 0, si).update(condition=text)


def schema(closed: bool) -> Callable[[Doc], None]:
    """An inline output_schema on step 1.1 (``additionalProperties = false`` when closed)."""
    props = {"score": {"type": "number"}, "name": {"type": "string"}}
    extra = {"additionalProperties": False} if closed else {}
    return lambda doc: s(doc).update(output_schema={"type": "object", "properties": props,
                                                    **extra})


def two_backups(doc: Doc) -> None:
    s(doc)["backups"].append({"id": 2, "description": "phone the branch offices",
                              "trigger_condition": "backup_1_failure"})


def many_tasks(n: int) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["tasks"] = [task(i, f"Task {i}") for i in range(1, n + 1)]
    return change


def steps_in_first_task(n: int) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["tasks"][0]["steps"] = [
            step(i, f"part {i}", i % 2 == 1, f"part {i} by another route" if i % 2 else None)
            for i in range(1, n + 1)]
    return change


def chain(length: int) -> Callable[[Doc], None]:
    """SPECLets a <- b <- c ... of ``length`` (the extra ones are empty)."""
    def change(doc: Doc) -> None:
        names = "abcdefg"[:length]
        for i, name in enumerate(names[2:], start=2):
            doc["speclets"].append({"id": name, "description": name, "depends_on": [names[i - 1]],
                                    "tasks": [], "spec": f"../{name}"})
    return change


@dataclass
class Case:
    code: str
    severity: Severity
    strict: bool
    broken: Mutation
    fixed: Mutation
    message: str = ""  # a fragment the message must contain

    @property
    def id(self) -> str:
        return self.code


E, W = Severity.ERROR, Severity.WARNING

CASES: list[tuple[str, Case]] = [
    # 1.4 goal, 1.5 tasks
    ("goal-empty", Case("E-GOAL-MISSING", E, False,
                        edit(base, lambda d: d["goal"].update(description="  ")), base)),
    ("goal-absent", Case("E-GOAL-MISSING", E, False, edit(base, lambda d: d.pop("goal")), base)),
    ("no-tasks", Case("E-NO-TASKS", E, False, edit(base, lambda d: d.update(tasks=[])), base)),
    ("dup-task", Case("E-DUP-TASK", E, False,
                      edit(base, lambda d: d["tasks"][1].update(id=1)), base, "task id 1")),
    ("task-desc", Case("E-TASK-DESC", E, False,
                       edit(base, lambda d: d["tasks"][1].update(description="")), base)),
    ("task-empty", Case("E-TASK-EMPTY", E, False,
                        edit(base, lambda d: d["tasks"][1].update(steps=[])), base, "task 2")),
    ("tasks-many", Case("W-TASKS-MANY", W, True, edit(base, many_tasks(21)),
                        edit(base, many_tasks(20)), "21 tasks")),
    # 1.6 steps
    ("dup-step", Case("E-DUP-STEP", E, False, edit(base, lambda d: s(d, 0, 1).update(id=1)),
                      base, "step id 1")),
    ("step-action", Case("E-STEP-ACTION", E, False,
                         edit(base, lambda d: s(d, 0, 1).update(description=" ")),
                         edit(base, lambda d: s(d, 0, 1).update(description="",
                                                                 command="echo hi")),
                         "step 1.2")),
    ("expected-missing", Case("W-EXPECTED-MISSING", W, True,
                              edit(base, lambda d: s(d, 1, 1).pop("expected_output")), base,
                              "step 2.2")),
    ("expected-off", Case("W-EXPECTED-MISSING", W, True,
                          edit(base, lambda d: s(d, 1, 1).pop("expected_output")),
                          edit(base, lambda d: s(d, 1, 1).pop("expected_output"),
                               lambda d: d.update(verification={
                                   "check_expected_outputs": False})))),
    # actions
    ("action-command", Case("E-ACTION", E, False,
                            edit(base, lambda d: s(d, 0, 1).update(execution_method="command")),
                            edit(base, lambda d: s(d, 0, 1).update(execution_method="command",
                                                                   command="make report")),
                            "no command")),
    ("action-python", Case("E-ACTION", E, False,
                           edit(base, lambda d: s(d, 0, 1).update(execution_method="python")),
                           edit(base, lambda d: s(d, 0, 1).update(execution_method="python",
                                                                  callable="pkg.mod:run")),
                           "no callable")),
    ("action-callable", Case("E-ACTION", E, False,
                             edit(base, lambda d: s(d, 0, 1).update(callable="pkg.mod.run")),
                             edit(base, lambda d: s(d, 0, 1).update(callable="pkg.mod:run")),
                             "module:function")),
    ("action-backup", Case("E-ACTION", E, False,
                           edit(base, lambda d: b(d).update(execution_method="command")),
                           edit(base, lambda d: b(d).update(execution_method="command",
                                                            command="curl -O x")),
                           "1.1 backup 1")),
    ("action-tool", Case("W-ACTION-TOOL", W, False,
                         edit(base, lambda d: s(d, 0, 1).update(execution_method="tool")),
                         edit(base, lambda d: s(d, 0, 1).update(execution_method="tool",
                                                                tool_path="bin/report")))),
    ("schema-missing", Case("E-SCHEMA-MISSING", E, False,
                            edit(base, lambda d: s(d).update(output_schema="schema.json")),
                            with_setup(edit(base, lambda d: s(d).update(
                                output_schema="schema.json")), files={"schema.json": "{}"}))),
    # 1.7 backups
    ("dup-backup", Case("E-DUP-BACKUP", E, False,
                        edit(base, two_backups, lambda d: b(d, bi=1).update(id=1)),
                        edit(base, two_backups), "backup id 1")),
    ("backup-desc", Case("E-BACKUP-DESC", E, False,
                         edit(base, lambda d: b(d).update(description="")), base)),
    ("backup-trigger", Case("E-BACKUP-TRIGGER", E, False,
                            edit(base, lambda d: b(d).update(trigger_condition="on_failure")),
                            base, "'primary_failure'")),
    ("backup-trigger-2", Case("E-BACKUP-TRIGGER", E, False,
                              edit(base, two_backups, lambda d: b(d, bi=1).update(
                                  trigger_condition="primary_failure")),
                              edit(base, two_backups), "'backup_1_failure'")),
    ("backup-retry", Case("W-BACKUP-RETRY", W, False,
                          edit(base, lambda d: b(d).update(description="Try again later")),
                          base)),
    ("backup-same", Case("W-BACKUP-RETRY", W, False,
                         edit(base, lambda d: b(d).update(description=s(d)["description"])),
                         base)),
    ("backups-many", Case("W-BACKUPS-MANY", W, True,
                          edit(base, two_backups, lambda d: s(d)["backups"].append(
                              {"id": 3, "description": "estimate from last year",
                               "trigger_condition": "backup_2_failure"})),
                          edit(base, two_backups), "3 backups")),
    ("crit-no-backup", Case("W-CRIT-NO-BACKUP", W, True,
                            edit(base, lambda d: s(d).pop("backups")), base, "step 1.1")),
    ("crit-no-backup-off", Case("W-CRIT-NO-BACKUP", W, True,
                                edit(base, lambda d: s(d).pop("backups")),
                                edit(base, lambda d: s(d).pop("backups"),
                                     lambda d: d.update(verification={
                                         "validate_backup_coverage": False})))),
    # Art. V placeholders
    ("placeholder-insert", Case("E-PLACEHOLDER", E, False,
                                edit(base, lambda d: s(d).update(description="[Insert step]")),
                                base, "[Insert step]")),
    ("placeholder-todo", Case("E-PLACEHOLDER", E, False,
                              edit(base, lambda d: s(d).update(expected_output="TODO: later")),
                              edit(base, lambda d: s(d).update(
                                  expected_output="a TODO list of the FIXME/HACK/TODO comments")),
                              "TODO")),
    ("placeholder-whole", Case("E-PLACEHOLDER", E, False,
                               edit(base, lambda d: s(d).update(expected_output="<output>")),
                               edit(base, lambda d: s(d).update(
                                   expected_output="report.md with a <table> of results")),
                               "<output>")),
    ("placeholder-goal", Case("E-PLACEHOLDER", E, False,
                              edit(base, lambda d: d["goal"].update(
                                  description="[Insert goal description]")), base)),
    ("placeholder-backup", Case("E-PLACEHOLDER", E, False,
                                edit(base, lambda d: b(d).update(
                                    description="[Backup method 1 if primary fails]")), base)),
    # dependencies
    ("dep-unknown-step", Case("E-DEP-UNKNOWN", E, False,
                              edit(base, lambda d: s(d, 0, 1).update(depends_on=[9])),
                              edit(base, lambda d: s(d, 0, 1).update(depends_on=[1])),
                              "step 1.2 depends on 9")),
    ("dep-unknown-ref", Case("E-DEP-UNKNOWN", E, False,
                             edit(base, lambda d: s(d, 1, 0).update(depends_on=["3.1"])),
                             edit(base, lambda d: s(d, 1, 0).update(depends_on=["1.2"])))),
    ("dep-unknown-task", Case("E-DEP-UNKNOWN", E, False,
                              edit(base, lambda d: d["tasks"][1].update(depends_on=[7])),
                              edit(base, lambda d: d["tasks"][1].update(depends_on=[1])),
                              "task 2 depends on task 7")),
    ("dep-self", Case("E-DEP-SELF", E, False,
                      edit(base, lambda d: s(d, 0, 1).update(depends_on=[2])),
                      edit(base, lambda d: s(d, 0, 1).update(depends_on=[1])), "step 1.2")),
    ("dep-cycle", Case("E-DEP-CYCLE", E, False,
                       edit(base, lambda d: s(d, 0, 0).update(depends_on=[2]),
                            lambda d: s(d, 0, 1).update(depends_on=[1])),
                       edit(base, lambda d: s(d, 0, 1).update(depends_on=[1])),
                       "1.1 -> 1.2 -> 1.1")),
    # SPECLets
    ("speclet-dup", Case("E-DUP-SPECLET", E, False,
                         edit(speclets, lambda d: d["speclets"][1].update(id="a", depends_on=[])),
                         speclets)),
    ("speclet-self", Case("E-SPECLET-SELF", E, False,
                          edit(speclets, lambda d: d["speclets"][1].update(depends_on=["b"])),
                          speclets)),
    ("speclet-unknown", Case("E-SPECLET-UNKNOWN", E, False,
                             edit(speclets, lambda d: d["speclets"][1].update(depends_on=["z"])),
                             speclets, "'z'")),
    ("speclet-cycle", Case("E-SPECLET-CYCLE", E, False,
                           edit(speclets, lambda d: d["speclets"][0].update(depends_on=["b"])),
                           speclets)),
    ("speclet-task", Case("E-SPECLET-TASK", E, False,
                          edit(speclets, lambda d: d["speclets"][1]["tasks"].append(9)),
                          speclets, "task 9")),
    ("speclet-assign-two", Case("E-SPECLET-ASSIGN", E, False,
                                edit(speclets, lambda d: d["speclets"][1]["tasks"].insert(0, 2)),
                                speclets, "task 2 belongs to 2")),
    ("speclet-assign-none", Case("E-SPECLET-ASSIGN", E, False,
                                 edit(speclets, lambda d: d["speclets"][1]["tasks"].remove(4)),
                                 speclets, "task 4 belongs to 0")),
    ("speclet-empty", Case("W-SPECLET-EMPTY", W, False,
                           edit(speclets, lambda d: d["speclets"].append(
                               {"id": "c", "description": "later", "depends_on": ["b"]})),
                           edit(speclets, lambda d: d["speclets"].append(
                               {"id": "c", "description": "later", "depends_on": ["b"],
                                "spec": "../later"})))),
    ("speclet-single", Case("W-SPECLET-SINGLE", W, False,
                            edit(speclets, lambda d: d["speclets"].pop(),
                                 lambda d: d["speclets"][0].update(tasks=[1, 2, 3, 4])),
                            speclets)),
    ("speclet-serial", Case("W-SPECLET-SERIAL", W, False,
                            edit(speclets,
                                 lambda d: d["speclets"][0].update(parallel_allowed=False)),
                            speclets)),
    ("speclet-deep", Case("W-SPECLET-DEEP", W, False, edit(speclets, chain(5)),
                          edit(speclets, chain(4)), "5 deep")),
    ("speclet-count", Case("W-COUNT-TASKS", W, True,
                           edit(speclets, lambda d: d["tasks"].append(task(5, "Send")),
                                lambda d: d["speclets"][1]["tasks"].extend([5]),
                                lambda d: d["speclets"].append(
                                    {"id": "c", "description": "x", "depends_on": [],
                                     "tasks": [1]}),
                                lambda d: d["speclets"][0].update(tasks=[2])),
                           speclets, "SPECLet")),
    # transitions, includes
    ("transition", Case("E-TRANSITION-TASK", E, False,
                        edit(base, lambda d: d.update(transitions=[
                            {"from_task": 2, "to_task": 9}])),
                        edit(base, lambda d: d.update(transitions=[
                            {"from_task": 2, "to_task": 1}])), "'9'")),
    ("include", Case("E-INCLUDE-MISSING", E, False,
                     edit(base, lambda d: d.update(composition={"includes": ["../other"]})),
                     with_setup(edit(base, lambda d: d.update(
                         composition={"includes": ["../other"]})), dirs=["../other"]),
                     "'../other'")),
    ("include-table", Case("E-INCLUDE-MISSING", E, False,
                           edit(base, lambda d: d.update(composition={"includes": [
                               {"path": "sub", "as": "s"}]})),
                           with_setup(edit(base, lambda d: d.update(composition={"includes": [
                               {"path": "sub", "as": "s"}]})), dirs=["sub"]))),
    # Art. XIV build goals
    ("stack-missing", Case("W-STACK", W, True, edit(build, lambda d: d.pop("software_stack")),
                           build, "'Build'")),
    ("stack-na", Case("W-STACK", W, True,
                      edit(build, lambda d: d["software_stack"].update(primary_language="n/a")),
                      build, "primary_language")),
    ("stack-packaging", Case("W-STACK", W, True,
                             edit(build, lambda d: d["software_stack"].pop("packaging_method")),
                             build, "packaging_method")),
    ("stack-word", Case("W-STACK", W, True,
                        edit(build, lambda d: d.pop("software_stack"),
                             lambda d: d["goal"].update(description="An app to sum figures")),
                        edit(build, lambda d: d.pop("software_stack"),
                             lambda d: d["goal"].update(
                                 description="Summarise figures for the apple growers' report")),
                        "'app'")),
    ("deployment", Case("W-DEPLOYMENT", W, True, edit(web_app, lambda d: d.pop("deployment")),
                        web_app, "target_platform")),
    ("deployment-partial", Case("W-DEPLOYMENT", W, True,
                                edit(web_app, lambda d: d["deployment"].pop("startup_method")),
                                web_app, "startup_method")),
    ("completion-missing", Case("W-COMPLETION", W, True,
                                edit(build, lambda d: d.pop("completion_criteria")), build)),
    ("completion-few", Case("W-COMPLETION", W, True,
                            edit(build, lambda d: d["completion_criteria"][
                                "acceptance_criteria"].pop()),
                            edit(build, lambda d: d["completion_criteria"][
                                "acceptance_criteria"].pop(),
                                 lambda d: d["completion_criteria"].update(
                                     functional_complete=True)), "2 criteria")),
    ("completion-interface", Case("W-COMPLETION", W, True,
                                  edit(build, lambda d: d.update(user_interface={
                                      "required": True, "interface_type": "cli",
                                      "target_users": "analysts", "skill_level": "basic"})),
                                  edit(build, lambda d: d.update(user_interface={
                                      "required": True, "interface_type": "cli",
                                      "target_users": "analysts", "skill_level": "basic"}),
                                       lambda d: d["completion_criteria"].update(
                                           interface_complete=True)), "interface_complete")),
    ("completion-api", Case("W-COMPLETION", W, True,
                            edit(build, lambda d: d["goal"].update(
                                description="Build a tool that pulls figures from the CRM API")),
                            edit(build, lambda d: d["goal"].update(
                                description="Build a tool that pulls figures from the CRM API"),
                                 lambda d: d["completion_criteria"].update(
                                     production_ready=True)), "production_ready")),
    # UI rule
    ("ui-users", Case("W-UI-USERS", W, True, edit(for_users, lambda d: d.pop("user_interface")),
                      for_users, "for the sales managers")),
    ("ui-not-required", Case("W-UI-USERS", W, True,
                             edit(for_users, lambda d: d["user_interface"].update(
                                 required=False)), for_users)),
    ("ui-fields", Case("W-UI-FIELDS", W, True,
                       edit(for_users, lambda d: d["user_interface"].pop("skill_level")),
                       for_users, "skill_level")),
    # Art. II counts
    ("count-tasks-one", Case("W-COUNT-TASKS", W, True, edit(base, many_tasks(1)),
                             edit(base, many_tasks(2)), "1 tasks")),
    ("count-tasks-six", Case("W-COUNT-TASKS", W, True, edit(base, many_tasks(6)),
                             edit(base, many_tasks(5)), "6 tasks")),
    ("count-steps", Case("W-COUNT-STEPS", W, True, edit(base, steps_in_first_task(6)),
                         edit(base, steps_in_first_task(4)), "6 steps")),
    # Art. VI critical balance
    ("crit-balance-high", Case("W-CRIT-BALANCE", W, True,
                               edit(base, lambda d: s(d, 0, 1).update(critical_flag=True),
                                    lambda d: s(d, 0, 1).update(backups=[
                                        {"id": 1, "description": "spot-check a sample"}])),
                               base, "3 of 4 steps are critical (75%); the range is 40%-60%")),
    ("crit-balance-low", Case("W-CRIT-BALANCE", W, True,
                              edit(base, lambda d: s(d, 0, 0).update(critical_flag=False),
                                   lambda d: s(d, 1, 0).update(critical_flag=False)),
                              base, "0 of 4")),
    ("crit-balance-compliance", Case("W-CRIT-BALANCE", W, True,
                                     edit(base, lambda d: d.update(constitutional_compliance={
                                         "article_vi_critical_balance_min": 0.6,
                                         "article_vi_critical_balance_max": 0.8})),
                                     edit(base, lambda d: d.update(constitutional_compliance={
                                         "article_vi_critical_balance_min": 0.4,
                                         "article_vi_critical_balance_max": 0.5})),
                                     "60%-80%")),
    ("crit-balance-inline", Case("W-CRIT-BALANCE", W, True,
                                 edit(base, lambda d: d.update(constitution={
                                     "critical_percentage_target": "20-40"})),
                                 edit(base, lambda d: d.update(constitution={
                                     "critical_percentage_target": "50-70"})), "20%-40%")),
    ("crit-task", Case("W-CRIT-TASK", W, True,
                       edit(base, lambda d: s(d, 1, 0).update(critical_flag=False)),
                       edit(base, lambda d: s(d, 1, 0).update(critical_flag=False),
                            lambda d: d["tasks"][1]["steps"].pop()),  # single step: allowed
                       "task 2: none of its 2")),
    ("crit-task-all", Case("W-CRIT-TASK", W, True,
                           edit(base, lambda d: s(d, 1, 1).update(critical_flag=True, backups=[
                               {"id": 1, "description": "ask a colleague to read it"}])),
                           base, "task 2: all of its 2")),
    # bridging, self-reported stats, modes, notepad, files
    ("bridge-md-only", Case("W-BRIDGE", W, True,
                            lambda: Setup(base(), md=MARKDOWN + "- **Step 3:** Report: send it\n"),
                            lambda: Setup(base(), md=MARKDOWN), "2.3 are in the Markdown")),
    ("bridge-toml-only", Case("W-BRIDGE", W, True,
                              lambda: Setup(base(), md=MARKDOWN.replace(
                                  "- **Step 2:** Report: check the result\n", "")),
                              lambda: Setup(base(), md=MARKDOWN), "2.2 are in the TOML")),
    ("goal-drift", Case("W-GOAL-DRIFT", W, False,
                        lambda: Setup(base(), md=MARKDOWN.replace("one-page", "two-page")),
                        lambda: Setup(base(), md=MARKDOWN.replace("one-page report",
                                                                  "one-page **report**")))),
    ("stats", Case("W-STATS", W, False,
                   edit(base, lambda d: d.update(validation={"total_steps": 10,
                                                             "critical_steps": 2})),
                   edit(base, lambda d: d.update(validation={"total_steps": 4,
                                                             "critical_steps": 2})),
                   "total_steps = 10, but the spec has 4")),
    ("stats-critical", Case("W-STATS", W, False,
                            edit(base, lambda d: d.update(validation={"critical_steps": 3})),
                            edit(base, lambda d: d.update(validation={"critical_steps": 2})),
                            "critical_steps = 3")),
    ("edu-disabled", Case("W-EDU-DISABLED", W, False,
                          edit(base, lambda d: d.update(execution={"default_mode": "education"},
                                                        education={"enabled": False})),
                          edit(base, lambda d: d.update(execution={"default_mode": "education"},
                                                        education={"enabled": True})))),
    ("art-viii", Case("W-ART-VIII", W, False,
                      edit(base, lambda d: d.update(error_propagation={"enabled": False})),
                      edit(base, lambda d: d.update(error_propagation={"enabled": True})))),
    ("art-viii-read", Case("W-ART-VIII", W, False,
                           edit(base, lambda d: d.update(error_propagation={
                               "read_prior_steps": False})), base)),
    ("art-xv", Case("W-ART-XV", W, False,
                    edit(base, lambda d: d.update(knowledge_capture={"enabled": False})),
                    edit(base, lambda d: d.update(knowledge_capture={"enabled": True})))),
    # [mcp_tools] (docs/mcp.md; tests/test_mcp.py starts real servers)
    ("mcp-unconfigured", Case("W-MCP-UNCONFIGURED", W, False,
                              edit(base, lambda d: d.update(mcp_tools={"required": ["search"]})),
                              edit(base, lambda d: d.update(mcp_tools={
                                  "required": ["search"],
                                  "config": {"search": {"command": "search-server"}}})),
                              "required MCP server 'search'")),
    ("mcp-unconfigured-halt-off", Case(
        "I-MCP-UNCONFIGURED", Severity.INFO, False,
        edit(base, lambda d: d.update(mcp_tools={
            "required": ["search"], "verification": {"halt_if_required_missing": False}})),
        edit(base, lambda d: d.update(mcp_tools={
            "required": ["search"], "verification": {"halt_if_required_missing": False},
            "config": {"search": {"command": "search-server"}}})))),
    ("mcp-recommended", Case("I-MCP-UNCONFIGURED", Severity.INFO, False,
                             edit(base, lambda d: d.update(mcp_tools={"recommended": ["gh"]})),
                             edit(base, lambda d: d.update(mcp_tools={
                                 "recommended": ["gh"], "config": {"gh": {"command": "gh"}}})),
                             "recommended MCP server 'gh'")),
    ("mcp-config", Case("E-MCP-CONFIG", E, False,
                        edit(base, lambda d: d.update(mcp_tools={"config": {
                            "calc": {"command": "calc", "args": "--fast"}}})),
                        edit(base, lambda d: d.update(mcp_tools={"config": {
                            "calc": {"command": "calc", "args": ["--fast"]}}})),
                        "args must be a list of strings")),
    ("mcp-config-timeout", Case("E-MCP-CONFIG", E, False,
                                edit(base, lambda d: d.update(mcp_tools={"config": {
                                    "calc": {"command": "calc", "timeout_seconds": 0}}})),
                                edit(base, lambda d: d.update(mcp_tools={"config": {
                                    "calc": {"command": "calc", "timeout_seconds": 5}}})),
                                "timeout_seconds must be a positive number")),
    ("exe", Case("I-EXE-PRESENT", Severity.INFO, False,
                 with_setup(base, files={"exe_demo.md": "# exe\n"}),
                 with_setup(base, files={"exe_other.md": "# exe\n"}))),
    # conditions (docs/conditions.md; tests/test_conditions.py checks the columns)
    ("cond-syntax", Case("E-COND-SYNTAX", E, False, edit(base, cond(1, "step1_output.x <> 1")),
                         edit(base, cond(1, "step1_output.x != 1")), "use '!='")),
    ("cond-ref", Case("E-COND-REF", E, False, edit(base, cond(1, "steps['3.9'].status == 'x'")),
                      edit(base, cond(1, "steps['2.1'].status == 'x'")),
                      "step 3.9, which does not exist")),
    ("cond-order", Case("E-COND-ORDER", E, False, edit(base, cond(0, "step2_output.x == 1")),
                        edit(base, cond(1, "step1_output.x == 1")), "does not run before")),
    ("cond-field", Case("E-COND-FIELD", E, False,
                        edit(base, schema(closed=True), cond(1, "step1_output.scor < 1")),
                        edit(base, schema(closed=True), cond(1, "step1_output.score < 1")),
                        "does not allow 'scor'")),
    ("cond-field-open", Case("W-COND-FIELD", W, False,
                             edit(base, schema(closed=False), cond(1, "step1_output.scor < 1")),
                             edit(base, schema(closed=False), cond(1, "step1_output.score < 1")),
                             "does not list 'scor'")),
    ("cond-type", Case("E-COND-TYPE", E, False,
                       edit(base, schema(closed=True), cond(1, "step1_output.name < 3")),
                       edit(base, schema(closed=True), cond(1, "step1_output.name < 'm'")))),
    ("cond-var", Case("W-COND-VAR", W, False, edit(base, cond(1, "vars.mode == 'fast'")),
                      edit(base, cond(1, "vars.mode == 'fast'"),
                           lambda d: d.update(vars={"mode": "slow"})), "vars.mode")),
]


FILE_LEVEL = {"I-EXE-PRESENT"}  # about a whole file: no line


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[name for name, _ in CASES])
def test_check_fires_and_correction_clears_it(tmp_path: Path, case: Case) -> None:
    broken = check(tmp_path / "broken", case.broken())
    found = [d for d in broken if d.code == case.code]
    assert found, rendered(broken)
    for diagnostic in found:
        assert diagnostic.severity is case.severity, diagnostic.render()
        assert diagnostic.strict is case.strict, diagnostic.render()
        assert diagnostic.message.strip()
        whole_file = diagnostic.code in FILE_LEVEL
        assert diagnostic.location.line >= (0 if whole_file else 1), diagnostic.render()
    assert any(case.message in d.message for d in found), rendered(found)
    fixed = check(tmp_path / "fixed", case.fixed())
    assert case.code not in codes(fixed), rendered(fixed)


def test_every_code_in_validate_py_has_a_case() -> None:
    package = Path(__file__).resolve().parents[1] / "src" / "specs" / "spec" / "validate"
    source = "".join(path.read_text() for path in sorted(package.glob("*.py")))
    assert "def validate" in source
    import re

    in_source = set(re.findall(r'"([EWI]-[A-Z]+(?:-[A-Z]+)*)"', source))
    covered = {case.code for _, case in CASES}
    assert in_source - covered == set()


# -- locations -----------------------------------------------------------------------------------


def line_of(loaded: LoadedSpec, needle: str, occurrence: int = 0) -> int:
    assert loaded.parameters_path is not None
    hits = [i + 1 for i, line in enumerate(loaded.parameters_path.read_text().splitlines())
            if line.strip().startswith(needle)]
    return hits[occurrence]


def test_diagnostics_point_at_the_offending_key(tmp_path: Path) -> None:
    doc = base()
    s(doc, 1, 0).update(depends_on=[9])
    b(doc).update(trigger_condition="on_failure")
    loaded = write_setup(tmp_path, Setup(doc))
    found = {d.code: d for d in validate(loaded)}
    assert found["E-DEP-UNKNOWN"].location.line == line_of(loaded, "depends_on")
    assert found["E-BACKUP-TRIGGER"].location.line == line_of(loaded, "trigger_condition")
    assert found["E-DEP-UNKNOWN"].location.col >= 1


def test_dependency_cycle_across_tasks_prints_a_closed_path(tmp_path: Path) -> None:
    doc = base()
    doc["tasks"][0]["depends_on"] = [2]
    doc["tasks"][1]["depends_on"] = [1]
    cycle = [d for d in check(tmp_path, doc) if d.code == "E-DEP-CYCLE"]
    assert len(cycle) == 1
    path = cycle[0].message.split(": ", 1)[1].split(" -> ")
    assert path[0] == path[-1]
    assert {"task 1", "task 2"} <= set(path)


def test_dependency_cycle_across_tasks_by_step_refs(tmp_path: Path) -> None:
    doc = base()
    s(doc, 0, 0)["depends_on"] = ["2.1"]
    s(doc, 1, 0)["depends_on"] = ["1.1"]
    cycle = [d for d in check(tmp_path, doc) if d.code == "E-DEP-CYCLE"]
    assert [d.message for d in cycle] in (["dependency cycle: 1.1 -> 2.1 -> 1.1"],
                                          ["dependency cycle: 2.1 -> 1.1 -> 2.1"])


def test_valid_dependencies_are_accepted(tmp_path: Path) -> None:
    doc = base()
    s(doc, 0, 1)["depends_on"] = [1]
    s(doc, 1, 0)["depends_on"] = ["1.2", "1.1"]
    s(doc, 1, 1)["depends_on"] = ["1"]
    doc["tasks"][1]["depends_on"] = [1]
    assert rendered(check(tmp_path, doc)) == []


# -- strictness ----------------------------------------------------------------------------------


def mixed() -> Doc:
    """A spec with strict-marked warnings, plain warnings, info and an error."""
    doc = base()
    s(doc, 0, 1).update(critical_flag=True)  # W-CRIT-BALANCE, W-CRIT-TASK, W-CRIT-NO-BACKUP
    b(doc, 1, 0).update(description="retry the draft")  # W-BACKUP-RETRY (not strict)
    doc["error_propagation"] = {"enabled": False}  # W-ART-VIII (not strict)
    doc["validation"] = {"total_steps": 9}  # W-STATS (not strict)
    doc["x_custom"] = 1  # I-UNKNOWN-KEY
    s(doc, 1, 1)["depends_on"] = [7]  # E-DEP-UNKNOWN
    return doc


def as_counter(diagnostics: list[Diagnostic]) -> Counter[tuple[str, str, str, int]]:
    return Counter((d.severity.value, d.code, d.message, d.location.line) for d in diagnostics)


def expected_strict(default: list[Diagnostic]) -> list[Diagnostic]:
    return [d.escalated() if d.strict and d.severity is Severity.WARNING else d for d in default]


def test_strict_escalates_exactly_the_strict_marked_warnings(tmp_path: Path) -> None:
    loaded = write_setup(tmp_path, Setup(mixed()))
    default = validate(loaded)
    strict = validate(loaded, strict=True)
    by_code = {d.code: d for d in default}
    assert {"W-CRIT-BALANCE", "W-CRIT-TASK", "W-CRIT-NO-BACKUP"} <= {
        d.code for d in default if d.strict}
    assert {"W-BACKUP-RETRY", "W-ART-VIII", "W-STATS"} <= {
        d.code for d in default if d.severity is Severity.WARNING and not d.strict}
    assert by_code["I-UNKNOWN-KEY"].severity is Severity.INFO
    assert as_counter(strict) == as_counter(expected_strict(default))
    strict_codes = {d.code: d.severity for d in strict}
    assert strict_codes["W-CRIT-BALANCE"] is Severity.ERROR
    assert strict_codes["W-BACKUP-RETRY"] is Severity.WARNING
    assert strict_codes["W-ART-VIII"] is Severity.WARNING
    assert strict_codes["I-UNKNOWN-KEY"] is Severity.INFO
    assert strict_codes["E-DEP-UNKNOWN"] is Severity.ERROR


def test_strict_marks_the_loaders_quality_warnings_too(tmp_path: Path) -> None:
    doc = base()
    s(doc, 0, 1).pop("critical_flag")
    s(doc, 0, 1)["backups"] = [{"id": 1, "description": "spot-check a sample"}]
    doc["tasks"][0]["steps"].append(step(3, "file it", False))
    loaded = write_setup(tmp_path, Setup(doc))
    default = {d.code: d.severity for d in validate(loaded)}
    strict = {d.code: d.severity for d in validate(loaded, strict=True)}
    assert default["W-CRIT-MISSING"] is Severity.WARNING
    assert strict["W-CRIT-MISSING"] is Severity.ERROR


def test_project_validation_strict_escalates_like_the_flag(tmp_path: Path) -> None:
    plain = write_setup(tmp_path / "plain", Setup(mixed()))
    strict_project = write_setup(tmp_path / "project", Setup(
        mixed(), project="[validation]\nstrict = true\n"))
    by_flag = validate(plain, strict=True)
    by_project = validate(strict_project)
    assert as_counter(by_project) == as_counter(by_flag)
    not_strict = write_setup(tmp_path / "lenient", Setup(
        mixed(), project="[validation]\nstrict = false\n"))
    assert as_counter(validate(not_strict)) == as_counter(validate(plain))


def test_backup_trigger_check_can_be_switched_off(tmp_path: Path) -> None:
    doc = base()
    b(doc).update(trigger_condition="whenever")
    assert "E-BACKUP-TRIGGER" in codes(check(tmp_path / "on", doc))
    doc["verification"] = {"validate_backup_trigger_conditions": False}
    off = check(tmp_path / "off", doc)
    assert rendered(off) == []


def test_backup_trigger_order_follows_ids_not_position(tmp_path: Path) -> None:
    doc = base()
    s(doc)["backups"] = [
        {"id": 2, "description": "phone the branches", "trigger_condition": "backup_1_failure"},
        {"id": 1, "description": "ask finance", "trigger_condition": "primary_failure"}]
    assert rendered(check(tmp_path, doc)) == []


def test_project_backup_limit(tmp_path: Path) -> None:
    doc = base()
    two_backups(doc)
    assert "W-BACKUPS-MANY" not in codes(check(tmp_path / "two", doc))
    limited = check(tmp_path / "one", Setup(doc, project="[backups]\nmax_backups_per_step = 1\n"))
    assert "W-BACKUPS-MANY" in codes(limited)


@pytest.mark.parametrize(
    ("critical_percentage", "fires"),
    [("60-80", True), ("40-60", False), ("20-50", False), ("10-40", True)],
)
def test_critical_balance_uses_the_project_range(tmp_path: Path, critical_percentage: str,
                                                 fires: bool) -> None:
    project = f'[quality]\ncritical_percentage = "{critical_percentage}"\n'
    found = check(tmp_path, Setup(base(), project=project))
    assert ("W-CRIT-BALANCE" in codes(found)) is fires, rendered(found)


@pytest.mark.parametrize(
    ("applies", "fires"),
    [(None, True), (["quality.critical_percentage"], True), (["execution.default_mode"], False),
     ([], False)],
)
def test_critical_range_respects_applies_settings(tmp_path: Path, applies: list[str] | None,
                                                  fires: bool) -> None:
    doc = base()
    if applies is not None:
        doc["project_constitution"] = {"applies_settings": applies}
    project = '[quality]\ncritical_percentage = "60-80"\n'
    found = check(tmp_path, Setup(doc, project=project))
    assert ("W-CRIT-BALANCE" in codes(found)) is fires, rendered(found)


def test_critical_balance_uses_the_projects_risk_level(tmp_path: Path) -> None:
    found = check(tmp_path, Setup(base(), project='[project]\nrisk_level = "high"\n'))
    balance = [d for d in found if d.code == "W-CRIT-BALANCE"]
    assert len(balance) == 1 and "60%-80%" in balance[0].message


# -- ordering and duplicates ---------------------------------------------------------------------


def sort_key(d: Diagnostic) -> tuple[str, int, int, int, str]:
    return (d.location.file, d.location.line, d.location.col, d.severity.rank, d.code)


def test_diagnostics_are_sorted_and_never_duplicated(tmp_path: Path) -> None:
    doc = mixed()
    s(doc, 0, 0)["depends_on"] = [9, 9]  # the same problem twice: reported once
    doc["tasks"].append({"id": 3, "description": "", "steps": []})
    found = check(tmp_path, Setup(doc, md=MARKDOWN + "## Task 4: Extra\n- **Step 1:** x\n",
                                  files={"exe_demo.md": "x"}))
    assert len(found) > 10
    assert found == sorted(found, key=sort_key)
    assert len(set(found)) == len(found)
    assert len({(d.code, d.message, d.location) for d in found}) == len(found)
    unknown = [d for d in found if d.code == "E-DEP-UNKNOWN" and "1.1" in d.message]
    assert len(unknown) == 1
    assert len({d.location.file for d in found}) == 3  # parameters, markdown, exe


def test_validate_does_not_change_the_loaded_spec(tmp_path: Path) -> None:
    loaded = write_setup(tmp_path, Setup(mixed()))
    before = list(loaded.diagnostics)
    spec = loaded.spec
    first = validate(loaded)
    assert validate(loaded) == first
    assert loaded.diagnostics == before
    assert loaded.spec is spec


# -- big specs: the cheap common-case paths hide nothing ------------------------------------------


def big(n: int = 60, chain_deps: bool = True) -> Doc:
    """One task of ``n`` plain steps; each depends on the one before (or all on step 1)."""
    steps = [step(i, f"part {i}", i % 2 == 0, f"part {i} by another route" if i % 2 == 0
                  else None, depends_on=[] if i == 1 else [i - 1] if chain_deps else [1])
             for i in range(1, n + 1)]
    return {"goal": {"description": "Summarise the sales figures"},
            "tasks": [{"id": 1, "description": "Big", "steps": steps},
                      task(2, "Report")]}


def at30(**keys: Any) -> Callable[[Doc], None]:
    return lambda doc: s(doc, 0, 29).update(keys)


BIG_CASES: list[tuple[str, Callable[[Doc], Any], str, str]] = [
    # (name, change, code, message fragment)
    ("dep-unknown", at30(depends_on=[99]), "E-DEP-UNKNOWN", "step 1.30 depends on 99"),
    ("dep-self", at30(depends_on=[30]), "E-DEP-SELF", "step 1.30 depends on itself"),
    ("dep-cycle", lambda d: s(d, 0, 9).update(depends_on=[40]), "E-DEP-CYCLE", "1.10"),
    ("dep-str-unknown", at30(depends_on=["1.99"]), "E-DEP-UNKNOWN", "'1.99'"),
    ("dup-step", at30(id=29), "E-DUP-STEP", "step id 29"),
    ("no-action", at30(description=" "), "E-STEP-ACTION", "step 1.30"),
    ("no-expected", lambda d: s(d, 0, 29).pop("expected_output"), "W-EXPECTED-MISSING",
     "step 1.30"),
    ("python", at30(execution_method="python"), "E-ACTION", "1.30: execution_method"),
    ("command", at30(execution_method="command"), "E-ACTION", "1.30: execution_method"),
    ("callable", at30(callable="pkg.mod.run"), "E-ACTION", "'pkg.mod.run'"),
    ("tool", at30(execution_method="tool"), "W-ACTION-TOOL", "1.30"),
    ("schema", at30(output_schema="missing.json"), "E-SCHEMA-MISSING", "'missing.json'"),
    ("todo", at30(description="TODO: part 30"), "E-PLACEHOLDER", "'TODO:'"),
    ("insert", at30(expected_output="[Insert the figures]"), "E-PLACEHOLDER", "[Insert"),
    ("backup", lambda d: b(d, 0, 29).update(description="[Backup method: ask]"),
     "E-PLACEHOLDER", "[Backup method"),
]


@pytest.mark.parametrize("name,change,code,fragment", BIG_CASES,
                         ids=[name for name, *_ in BIG_CASES])
def test_a_big_spec_reports_a_problem_in_any_one_step(
        tmp_path: Path, name: str, change: Callable[[Doc], Any], code: str,
        fragment: str) -> None:
    clean = check(tmp_path / "clean", big())
    assert code not in codes(clean), rendered(clean)
    doc = big()
    change(doc)
    found = [d for d in check(tmp_path / "broken", doc) if d.code == code]
    assert len(found) == 1, rendered(found)
    assert fragment in found[0].message, found[0].render()


def test_a_big_spec_may_depend_forward_or_across_tasks(tmp_path: Path) -> None:
    doc = big(chain_deps=False)
    s(doc, 0, 29)["depends_on"] = [40]  # a later step, but no cycle
    s(doc, 0, 30)["depends_on"] = ["1.5", 2]
    s(doc, 1, 1)["depends_on"] = ["1.60"]
    assert [c for c in codes(check(tmp_path, doc)) if c.startswith("E-")] == []


def big_markdown(n: int = 60, skip: int | None = None) -> str:
    lines = ["## Goal", "Summarise the sales figures", "", "## Task 1: Big"]
    lines += [f"- **Step {i}:** part {i}" for i in range(1, n + 1) if i != skip]
    lines += ["", "## Task 2: Report", "- **Step 1:** Report: collect the inputs",
              "- **Step 2:** Report: check the result", ""]
    return "\n".join(lines)


def test_a_big_spec_and_its_markdown_are_compared_step_by_step(tmp_path: Path) -> None:
    same = check(tmp_path / "same", Setup(big(), md=big_markdown()))
    assert "W-BRIDGE" not in codes(same), rendered(same)
    missing = check(tmp_path / "missing", Setup(big(), md=big_markdown(skip=30)))
    assert [d.message for d in missing if d.code == "W-BRIDGE"] == [
        "steps 1.30 are in the TOML but not in the Markdown (Art. III)"]


def test_equal_diagnostics_are_kept_once_in_the_order_found() -> None:
    from specs.diagnostics import Location
    from specs.spec.validate import _sorted_unique

    def diag(line: int, message: str, extra: dict[str, Any] | None = None) -> Diagnostic:
        return Diagnostic(E, "E-X", message, Location("p.toml", line, 1),
                          extra=extra if extra is not None else {})

    first, other, again = diag(1, "one", {"n": 1}), diag(1, "two"), diag(1, "one", {"n": 2})
    late = diag(5, "late")
    out = _sorted_unique([late, first, other, again, diag(5, "late")])
    assert out == [first, other, late]
    assert out[0] is first and out[2] is late  # the first of equals stays


# -- placeholders only in the forms a template leaves (issue 13 item 15) -------------------------

PROSE_NOT_PLACEHOLDERS = [
    "Search comments for FIXME/HACK/TODO and list them",
    "TODO list app for small teams",
    "A report with a <table> of results and a [1] footnote",
    "Wait... then check progress_[descriptor].json",
    "Write Troubleshooting_Report_[PROJECT_CODE].md",
    "Compare a < b and c > d",
]
LEFT_BY_A_TEMPLATE = {
    "[Insert goal description]": "[Insert goal description]",
    "Do [Step 1 action] first": "[Step 1 action]",
    "TODO: write the step": "TODO:",
    "fixme: later": "fixme:",
    "TODO": "TODO",
    "TBD": "TBD",
    "...": "...",
    "[descriptor]": "[descriptor]",
    "<goal>": "<goal>",
    "Save it to <insert path here>": "<insert path here>",
}


@pytest.mark.parametrize("text", PROSE_NOT_PLACEHOLDERS)
def test_a_word_in_prose_is_no_placeholder(text: str) -> None:
    assert placeholder(text) is None


@pytest.mark.parametrize("text,found", LEFT_BY_A_TEMPLATE.items())
def test_a_template_slot_is_a_placeholder(text: str, found: str) -> None:
    assert placeholder(text) == found


def test_a_real_step_about_todo_comments_validates_and_shows(run_cli, write_spec, tmp_path):
    folder = write_spec(tmp_path, """\
        [goal]
        description = "Clean up the code base"
        [[tasks]]
        id = 1
        description = "Find the loose ends"
        [[tasks.steps]]
        id = 1
        description = "Search comments for FIXME/HACK/TODO"
        expected_output = "a list of every FIXME/HACK/TODO comment with its file and line"
        critical_flag = false
        """)
    code, out, err = run_cli("validate", "-q", folder, cwd=tmp_path)
    assert code == 0 and "E-PLACEHOLDER" not in out, out + err
    code, out, err = run_cli("show", folder, cwd=tmp_path)
    assert code == 0 and "Search comments for FIXME/HACK/TODO" in out, out + err
