"""Typed variables: every type, the validators, ``when``, secrets, defaults that read other
answers, and bad answers refused with one line (library and CLI)."""

from __future__ import annotations

import os
import textwrap
import tomllib
from pathlib import Path

import pytest

from conftest import RunCli
from specs.templates import AnswerError, TemplateError, Variable, coerce, load_template
from specs.templates.variables import resolve_answers


def var(**kw: object) -> Variable:
    return Variable(name=str(kw.pop("name", "v")), prompt="the question", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("variable", "raw", "value"), [
    (var(), "  text  ", "text"),
    (var(multiline=True), "two\nlines", "two\nlines"),
    (var(pattern=r"[a-z]+"), "abc", "abc"),
    (var(type="int", min=1, max=5), " 3 ", 3),
    (var(type="int"), 7, 7),
    (var(type="bool"), "Yes", True),
    (var(type="bool"), "off", False),
    (var(type="bool"), True, True),
    (var(type="path"), "src/x.py", "src/x.py"),
    (var(type="choice", choices=("fast", "Slow")), "slow", "Slow"),
    (var(type="list"), "a, b ,, c", ["a", "b", "c"]),
    (var(type="list"), '["a,1", "b"]', ["a,1", "b"]),
    (var(type="list", pattern=r"\w+", min=1, max=2), ["x", "y"], ["x", "y"]),
])
def test_answers_are_read_as_their_type(variable: Variable, raw: object, value: object) -> None:
    assert coerce(variable, raw) == value


@pytest.mark.parametrize(("variable", "raw", "message"), [
    (var(), "two\nlines", "v: must be one line (got 'two\\nlines')"),
    (var(pattern=r"[a-z]+"), "ABC", "v: must match [a-z]+ (got 'ABC')"),
    (var(min=3), "ab", "v: must have at least 3 characters (got 'ab')"),
    (var(type="int", min=1, max=5), "9", "v: must be between 1 and 5 (got '9')"),
    (var(type="int"), "3.5", "v: must be a whole number (got '3.5')"),
    (var(type="int"), True, "v: must be a whole number (got 'true')"),
    (var(type="bool"), "maybe", "v: must be yes or no (got 'maybe')"),
    (var(type="choice", choices=("a", "b")), "c", "v: must be one of a, b (got 'c')"),
    (var(type="list", max=1), "a, b", "v: must have at most 1 items"),
    (var(type="list", pattern=r"\d+"), "1, x", "v: every item must match \\d+ (got 'x')"),
    (var(type="list"), "[1, 2]", "v: must be a list of text items"),
    (var(type="path"), "  ", "v: must name a path"),
    (var(message="give a branch name"), 3.5, None),
    (var(pattern="x", message="give a branch name"), "y", "v: give a branch name (got 'y')"),
])
def test_bad_answers_are_one_clear_line(variable: Variable, raw: object,
                                        message: str | None) -> None:
    if message is None:
        assert coerce(variable, raw) == "3.5"  # a number is fine as text
        return
    with pytest.raises(AnswerError) as caught:
        coerce(variable, raw)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_secret_answer_is_never_echoed_in_an_error() -> None:
    with pytest.raises(AnswerError) as caught:
        coerce(var(secret=True, pattern=r"tok_\w+"), "hunter2")
    assert "hunter2" not in str(caught.value)


def test_when_skips_a_question_and_its_default_applies() -> None:
    variables = (var(name="tests", type="bool", default=True),
                 var(name="cmd", default="pytest", when="vars.tests"))
    asked: list[str] = []

    def ask(v: Variable, default: str | None, error: str | None) -> str:
        asked.append(v.name)
        return "no" if v.name == "tests" else "make test"

    answers = resolve_answers(variables, {}, ask=ask)
    assert answers.values == {"tests": False, "cmd": "pytest"}
    assert asked == ["tests"] and answers.skipped == ["cmd"]
    answers = resolve_answers(variables, {"tests": "yes"}, ask=ask)
    assert answers.values == {"tests": True, "cmd": "make test"}


def test_a_terminal_is_asked_again_after_a_bad_answer() -> None:
    replies = iter(["nine", "12", "4"])
    errors: list[str | None] = []

    def ask(v: Variable, default: str | None, error: str | None) -> str:
        errors.append(error)
        return next(replies)

    answers = resolve_answers((var(type="int", max=5),), {}, ask=ask)
    assert answers.values == {"v": 4}
    assert errors == [None, "v: must be a whole number (got 'nine')",
                      "v: must be at most 5 (got '12')"]


def test_an_empty_answer_at_a_prompt_takes_the_default() -> None:
    answers = resolve_answers((var(default="x"),), {}, ask=lambda v, d, e: "")
    assert answers.values == {"v": "x"}


def test_missing_and_unknown_answers_name_the_option_to_pass() -> None:
    with pytest.raises(Exception, match=r"no answer for 'v' \(the question\); pass --var v="):
        resolve_answers((var(),), {})
    with pytest.raises(Exception, match=r"--var w: the template has no variable 'w' "
                                        r"\(it declares: v\)"):
        resolve_answers((var(default="x"),), {"w": "1"})


def test_secrets_come_from_the_environment_and_are_kept_apart() -> None:
    variables = (var(name="token", secret=True, env="API_TOKEN", pattern=r"tok_\w+"),)
    answers = resolve_answers(variables, {}, env={"API_TOKEN": "tok_abc"})
    assert answers.values == {} and answers.secrets == {"token": "API_TOKEN"}
    with pytest.raises(AnswerError):
        resolve_answers(variables, {}, env={"API_TOKEN": "nope"})
    assert resolve_answers(variables, {}, env={}).secrets == {"token": "API_TOKEN"}


def test_paths_are_rewritten_relative_to_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    variables = (var(name="ws", type="path", must_exist=True),
                 var(name="out", type="path", base="as_given"))
    answers = resolve_answers(variables, {"ws": "repo", "out": "reports"}, cwd=tmp_path,
                              spec_folder=tmp_path / "repo" / "specs" / "spec_x")
    assert answers.values == {"ws": "../..", "out": "reports"}
    with pytest.raises(AnswerError, match="does not exist"):
        resolve_answers(variables[:1], {"ws": "nope"}, cwd=tmp_path)


def test_a_default_may_read_the_builtins_and_earlier_answers() -> None:
    variables = (var(name="area", default="core"),
                 var(name="out", default="reports/{{ descriptor }}/{{ area }}"))
    answers = resolve_answers(variables, {"area": "ui"}, builtins={"descriptor": "d"})
    assert answers.values["out"] == "reports/d/ui"


def _template(folder: Path, manifest: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "template.toml").write_text(textwrap.dedent(manifest))
    (folder / "parameters_t.toml").write_text("[goal]\ndescription = \"{{ x }}\"\n")
    return folder


@pytest.mark.parametrize(("manifest", "message"), [
    ('[variables.x]\ntype = "colour"\n', r"template\.toml:2:1: variable 'x': type 'colour'"),
    ('[variables.x]\ntype = "choice"\n', r"template\.toml:1:1: variable 'x' is a choice but"),
    ('[variables.x]\npattern = "("\n', r"template\.toml:2:1: variable 'x': pattern is not"),
    ('[variables.x]\nwhen = "vars.y"\n', r"template\.toml:2:1: variable 'x' has `when` but no"),
    ('[variables.x]\nwhen = "steps[\'1.1\'].status"\ndefault = 1\n', r"reads only earlier"),
    ('[variables.x]\ntype = "int"\ndefault = "many"\n', r"the default of variable 'x' is not"),
    ('[variables.x]\ncolour = 1\n', r"template\.toml:2:1: \[variables\.x\] has unknown key"),
    ('[variables.date]\n', r"variable name 'date' is built in"),
    ('[template]\ncategory = "fun"\n', r"template\.toml:2:1: category 'fun' is not one of"),
    ('[variables.x]\nsecret = true\ndefault = "a"\n', r"is secret: it cannot have a default"),
])
def test_a_bad_template_toml_is_one_line_with_its_location(tmp_path: Path, manifest: str,
                                                           message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(_template(tmp_path / "t", manifest))


TEMPLATE = """\
[template]
name = "typed"
version = "2.0.0"

[variables.title]
prompt = "A title"
type = "str"
multiline = true

[variables.count]
prompt = "How many"
type = "int"
default = 2
min = 1
max = 5

[variables.strict]
prompt = "Strict?"
type = "bool"
default = false

[variables.area]
prompt = "Which area"
type = "choice"
choices = ["core", "ui"]
default = "core"

[variables.tags]
prompt = "Tags"
type = "list"
default = ["a"]

[variables.root]
prompt = "Where"
type = "path"
default = "."

[variables.note]
prompt = "A note for the strict mode"
default = "careful"
when = "vars.strict"

[variables.token]
prompt = "The API token"
secret = true
env = "TYPED_TOKEN"
"""

PARAMETERS = """\
[meta]
goal_descriptor = "{{ descriptor }}"

[goal]
description = "Summarise {{ title }} in {{ count }} parts"

[execution]
default_mode = "silent"
workspace = "{{ root }}"

[vars]
strict = {{ strict }}
tags = {{ tags }}
area = "{{ area }}"
note = "{{ note }}"

[[tasks]]
id = 1
description = "Summarise"

  [[tasks.steps]]
  id = 1
  description = "Write the summary of {{ title }}"
  expected_output = "summary.md"
  critical_flag = false
  command = "echo {{ title | shell }} > summary.md && test -n {{ token | shell }}"
"""


@pytest.fixture
def typed(tmp_path: Path) -> Path:
    folder = tmp_path / "templates" / "typed"
    folder.mkdir(parents=True)
    (folder / "template.toml").write_text(TEMPLATE)
    (folder / "parameters_typed.toml").write_text(PARAMETERS)
    (folder / "spec_typed.md").write_text("# {{ descriptor }}\n\n## Goal\n\nSummarise "
                                          "{{ title }} in {{ count }} parts\n")
    return folder


def test_specs_new_reads_every_type_from_the_command_line(typed: Path, tmp_path: Path,
                                                          run_cli: RunCli) -> None:
    work = tmp_path / "work"
    work.mkdir()
    title = 'the "Q3" report\\draft\nsecond line'
    code, out, err = run_cli("new", str(typed), "q3", "--var", f"title={title}",
                             "--var", "count=3", "--var", "strict=yes", "--var", "area=UI",
                             "--var", "tags=x, y", "--no-input", cwd=work)
    assert code == 0, err
    folder = work / "spec_q3"
    doc = tomllib.loads((folder / "parameters_q3.toml").read_text())
    assert doc["goal"]["description"] == f"Summarise {title} in 3 parts"
    assert doc["vars"] == {"strict": True, "tags": ["x", "y"], "area": "ui", "note": "careful"}
    assert doc["execution"]["workspace"] == ".."
    assert doc["tasks"][0]["steps"][0]["command"].endswith('test -n "${TYPED_TOKEN}"')
    provenance = tomllib.loads((folder / ".specs-template.toml").read_text())
    assert provenance["template"] == "typed@2.0.0"
    assert provenance["answers"]["title"] == title
    assert provenance["secrets"] == {"token": "TYPED_TOKEN"}
    assert "token" not in provenance["answers"]
    assert "TYPED_TOKEN is read" not in out
    assert "token is read from $TYPED_TOKEN" in err


def test_a_secret_value_is_never_written_to_any_file(typed: Path, tmp_path: Path,
                                                     run_cli: RunCli) -> None:
    os.environ["TYPED_TOKEN"] = "s3cr3t-value"
    try:
        code, _, err = run_cli("new", str(typed), "--var", "title=x", "--no-input",
                               cwd=tmp_path)
    finally:
        del os.environ["TYPED_TOKEN"]
    assert code == 0, err
    for path in (tmp_path / "spec_typed").rglob("*"):
        assert b"s3cr3t-value" not in path.read_bytes(), path


@pytest.mark.parametrize(("option", "message"), [
    ("count=9", "specs: error: count: must be between 1 and 5 (got '9')"),
    ("count=two", "specs: error: count: must be a whole number (got 'two')"),
    ("area=mobile", "specs: error: area: must be one of core, ui (got 'mobile')"),
    ("strict=perhaps", "specs: error: strict: must be yes or no (got 'perhaps')"),
    ("colour=red", "specs: error: --var colour: the template has no variable 'colour'"),
    ("novalue", "specs: error: --var 'novalue': write NAME=VALUE"),
])
def test_a_bad_answer_on_the_command_line_is_one_line_and_exit_2(
        typed: Path, tmp_path: Path, run_cli: RunCli, option: str, message: str) -> None:
    code, _out, err = run_cli("new", str(typed), "--var", "title=x", "--var", option,
                             "--no-input", cwd=tmp_path)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "spec_typed").exists()
