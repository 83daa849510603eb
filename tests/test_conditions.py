"""The condition language (docs/conditions.md): parsing, evaluation, security, validation.

Tables first: expressions and their values, syntax errors with their offsets, run-time errors,
inputs that try to escape the language. Then fuzzing (only ConditionError ever escapes) and the
checks ``specs validate`` runs on conditions, with their file:line:col.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specs.cli.common import _render
from specs.diagnostics import Diagnostic, Location, Severity
from specs.errors import SpecError
from specs.spec import conditions
from specs.spec.conditions import (
    ConditionError,
    Reference,
    Scope,
    evaluate,
    excerpt,
    parse,
    rebase,
    step_ref,
)
from specs.spec.load import load_spec
from specs.spec.validate import validate

ROOT = Path(__file__).resolve().parents[1]

OUTPUTS: dict[str, Any] = {
    "1.1": {"performance_score": 0.72, "metrics": {"p95": 340, "errors": 0, "p-99": 900},
            "tags": ["fast", "beta"], "name": "model-a", "ok": True, "none": None,
            "rows": [{"id": 1}, {"id": 2}], "empty": [], "by_index": {"0": "zero"}},
    "1.2": {"performance_score": 0.91},
    "2.1.3": {"count": 3},
    "3.1": "plain text output",
    "3.2": [1, 2, 3],
}
STATUSES = {"1.1": "completed", "1.2": "completed", "1.3": "failed", "2.1.3": "completed",
            "3.1": "completed", "3.2": "completed"}
VARS: dict[str, Any] = {"threshold": 0.8, "mode": "B", "limits": {"max": 10}, "list": [1, 2]}


def run(text: str, task: str = "1", outputs: dict[str, Any] | None = None,
        statuses: dict[str, str] | None = None, variables: dict[str, Any] | None = None) -> bool:
    scope = Scope(task=task, outputs=OUTPUTS if outputs is None else outputs,
                  statuses=STATUSES if statuses is None else statuses,
                  vars=VARS if variables is None else variables)
    return evaluate(parse(text), scope)


# -- values --------------------------------------------------------------------------------------

VALUES: list[tuple[str, bool]] = [
    # the seed's form, with and without IF, in any case
    ("IF step1_output.performance_score < 0.8", True),
    ("if step2_output.performance_score < 0.8", False),
    ("If step1_output.performance_score < vars.threshold", True),
    ("step1_output.performance_score < 0.8", True),
    # every reference form
    ("task1_step2_output.performance_score > 0.9", True),
    ('steps["1.2"].output.performance_score == 0.91', True),
    ("steps['1.2'].output.performance_score == 0.91", True),
    ('steps["2.1.3"].output.count == 3', True),
    ('steps["2"].output.performance_score == 0.91', True),  # "N": the same task
    ('steps["1.1"].status == "completed"', True),
    ('steps["1.3"].status == "failed"', True),
    ('steps["1.4"].status == "pending"', True),  # not reached yet
    ('steps["3.1"].output == "plain text output"', True),
    ('steps["3.2"].output[1] == 2', True),
    ("vars.mode == 'B'", True),
    ('vars["mode"] == "B"', True),
    ("vars.limits.max == 10", True),
    ("vars.list[-1] == 2", True),
    # deeper paths and indexes
    ("step1_output.metrics.p95 > 300", True),
    ('step1_output.metrics["p-99"] == 900', True),
    ("step1_output.tags[0] == 'fast'", True),
    ("step1_output.tags[-1] == 'beta'", True),
    ("step1_output.rows[1].id == 2", True),
    ("step1_output.by_index[0] == 'zero'", True),
    # comparisons, chained like Python
    ("1 == 1", True), ("1 != 1", False), ("1 < 2", True), ("2 <= 2", True), ("3 > 2", True),
    ("2 >= 3", False), ("'a' < 'b'", True), ("0 < step1_output.performance_score < 1", True),
    ("0 < step1_output.performance_score < 0.5", False), ("1 < 2 < 3 < 4", True),
    ("3 > 2 > 2", False), ("1 == 1.0", True), ("true == 1", False), ("'1' == 1", False),
    ("null == null", True), ("step1_output.none == null", True), ("[1, [2]] == [1, [2.0]]", True),
    ("[1, 2] != [2, 1]", True), ("(1 < 2) == true", True),
    # and / or / not, and precedence
    ("true and false", False), ("true or false", True), ("not true", False),
    ("not 1 == 2", True), ("not (1 == 1)", False), ("false or true and false", False),
    ("(false or true) and false", False), ("true or true and false", True),
    ("not not true", True), ("not false and false", False), ("True and not False", True),
    ("false or null or 0 or '' or []", False),
    # `and`/`or` stop early: the missing field on the right is never read
    ("false and step1_output.missing > 1", False),
    ("true or step1_output.missing > 1", True),
    ("exists(step1_output.missing) and step1_output.missing > 1", False),
    # arithmetic
    ("-2 * 3 + 1 == -5", True), ("1 + 2 * 3 == 7", True), ("(1 + 2) * 3 == 9", True),
    ("10 - 2 - 3 == 5", True), ("7 / 2 == 3.5", True), ("7 % 3 == 1", True),
    ("-7 % 3 == 2", True), ("2 * -3 == -6", True), ("- -3 == 3", True), ("+3 == 3", True),
    ("-step1_output.metrics.p95 == -340", True), ("8 / 2 / 2 == 2", True),
    ("'ab' + 'cd' == 'abcd'", True), ("[1] + [2] == [1, 2]", True),
    ("step1_output.metrics.p95 / 1000 > 0.3", True), ("1.5e3 == 1500", True),
    # in / not in
    ("2 in [1, 2, 3]", True), ("4 not in [1, 2, 3]", True), ("'fast' in step1_output.tags", True),
    ("'ta' in 'beta'", True), ("'p95' in step1_output.metrics", True),
    ("'x' not in step1_output.metrics", True),
    ('steps["1.3"].status in ["failed", "skipped"]', True),
    ("[1] in [[1], [2]]", True),
    # functions
    ("len(step1_output.tags) == 2", True), ("len('abc') == 3", True),
    ("len(step1_output.metrics) == 3", True), ("len([]) == 0", True),
    ("exists(step1_output.metrics.p95)", True), ("exists(step1_output.metrics.p50)", False),
    ("exists(step3_output.x)", False), ("exists(vars.mode)", True), ("exists(vars.nope)", False),
    ("exists(step1_output.tags[5])", False), ("not exists(step1_output.none.x)", True),
    # truthiness of a bare value
    ("step1_output.ok", True), ("step1_output.empty", False), ("step1_output.none", False),
    ("step1_output.tags", True), ("0", False), ("0.0", False), ("''", False), ("'x'", True),
    ("[0]", True), ("step1_output.metrics.errors", False), ("null", False),
    # strings and escapes
    ('"a\\"b" == \'a"b\'', True), ("'tab\\there' != 'tab here'", True), ("len('\\n') == 1", True),
    # whitespace and newlines are free
    ("\n  step1_output.ok\n  and true\n", True),
]


@pytest.mark.parametrize(("text", "expected"), VALUES, ids=[t for t, _ in VALUES])
def test_value(text: str, expected: bool) -> None:
    assert run(text) is expected


def test_task_scope_decides_the_same_task_forms() -> None:
    assert run("step3_output.count == 3", task="2.1")  # step 3 of the SPECLet task 2.1
    assert run('steps["3"].output.count == 3', task="2.1")
    assert not run("exists(step1_output.x)", task="2.1")


def test_a_step_without_output_says_why() -> None:
    with pytest.raises(ConditionError, match=r"step 1\.3 has no output \(its status is failed\)"):
        run("step3_output.x")
    with pytest.raises(ConditionError, match=r"step 1\.5 has no output \(it has not completed\)"):
        run("step5_output.x")


# -- syntax errors: (text, message fragment, offset) -------------------------------------------

SYNTAX: list[tuple[str, str, int | None]] = [
    ("", "the condition is empty", 0),
    ("IF", "the condition is empty", 2),
    ("   ", "the condition is empty", 3),
    ("1 +", "ends too early", 3),
    ("(1 + 2", "expected ')'", 6),
    ("1 + 2)", "unmatched ')'", 5),
    ("[1, 2", "expected ',' or ']'", 5),
    ("'abc", "unterminated string", 0),
    ("'a\\qb'", "unknown escape", 2),
    ("step1_output.x <> 1", "use '!='", 15),
    ("step1_output.x = 1", "use '=='", 15),
    ("a && b", "use 'and' instead of '&&'", 2),
    ("step1_output.x || true", "use 'or' instead of '||'", 15),
    ("!step1_output.x", "use 'not' instead of '!'", 0),
    ("2 ** 3", "'**' is not supported", 2),
    ("7 // 2", "'//' is not supported", 2),
    ("step1_output.x is None", "use '==' instead of 'is'", 15),
    ("step1_output.x == None", "use null instead of None", 18),
    ("1 if true else 2", "'if' is only allowed at the start", 2),
    ("step1_output.x step2_output.y", "expected an operator", 15),
    ("step1_output.x not 1", "expected 'in' after 'not'", 19),
    ("and true", "expected a value before 'and'", 0),
    ("score < 0.8", "unknown name 'score'", 0),
    ("step_output.x", "unknown name 'step_output'", 0),
    ("steps[1].output", 'steps["T.N"]', 6),
    ('steps["a"].output', 'steps["T.N"]', 6),
    ('steps["1.2"]', "steps[\"T.N\"].output or", 12),
    ('steps["1.2"].result', "steps[\"T.N\"].output or", 13),
    ('steps["1.2"].status.x', "a status is a string", 0),
    ("vars", "write vars.NAME", 4),
    ("vars[0]", "a variable name is a string", 0),
    ("step1_output.", "expected a field name", 13),
    ("step1_output.1", "expected a field name", 13),
    ("step1_output[1.5]", "an index is an integer or a string", 13),
    ("step1_output[vars.i]", "an index is an integer or a string", 13),
    ("len(1, 2)", "len() takes one argument", 5),
    ("len 3", "len is a function", 4),
    ("exists(1 + 1)", "exists() takes a reference", 0),
    ("'abc'.upper", "only references", 5),
    ("(1)(2)", "only len() and exists() can be called", 3),
    ("step1_output.x()", "only len() and exists() can be called", 14),
    ("1 @ 2", "unexpected character '@'", 2),
    ("{'a': 1}", "unexpected character '{'", 0),
    ("1" * 101, "number too long", 0),
    ("1e400", "number too large", 0),
    ("x" * 2001, "too long (2001 characters", None),
]


@pytest.mark.parametrize(("text", "fragment", "offset"), SYNTAX, ids=[t[:30] for t, _, _ in SYNTAX])
def test_syntax_error(text: str, fragment: str, offset: int | None) -> None:
    with pytest.raises(ConditionError) as info:
        parse(text)
    assert fragment in str(info.value)
    assert info.value.offset == offset
    assert info.value.text == text
    assert "\n" not in str(info.value)


def test_condition_error_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        parse("1 +")


# -- run-time errors -----------------------------------------------------------------------------

RUNTIME: list[tuple[str, str]] = [
    ("step1_output.missing > 1", "step 1.1's output has no field 'missing' (its fields: by_index"),
    ("step1_output.metrics.p50 > 1", "step 1.1's output.metrics has no field 'p50'"),
    ("step1_output.tags[5] == 1", "step 1.1's output.tags has 2 items; [5] is out of range"),
    ("step1_output.tags.first == 1", "step 1.1's output.tags is a list; it has no field 'first'"),
    ("step1_output.metrics[0] == 1", "has no field 0"),
    ("step1_output.name.first", "is a string ('model-a'); it has no field 'first'"),
    ("step1_output.none.x", "is null; it has no field 'x'"),
    ("step9_output.x", "step 1.9 has no output"),
    ('steps["7.1"].output == 1', "step 7.1 has no output"),
    ("vars.nope == 1", "vars.nope is not set"),
    ("vars.limits.min == 1", "vars.limits has no field 'min'"),
    ("step1_output.name < 0.8",
     "cannot compare a string ('model-a') with a number (0.8) using '<'"),
    ("null < 1", "cannot compare null with a number (1)"),
    ("[1] < [2]", "cannot compare a list with a list"),
    ("true > false", "cannot compare a bool (true) with a bool (false)"),
    ("'a' + 1", "cannot use '+' on a string ('a') and a number (1)"),
    ("'ab' * 3", "cannot use '*' on a string ('ab') and a number (3)"),
    ("true + 1", "cannot use '+' on a bool (true)"),
    ("null - 1", "cannot use '-' on null"),
    ("-'a' == 1", "cannot apply unary '-' to a string ('a')"),
    ("-true == 1", "cannot apply unary '-' to a bool"),
    ("1 in 5", "cannot look for a number (1) in a number (5)"),
    ("1 in 'abc'", "cannot look for a number (1) in a string ('abc')"),
    ("1 in step1_output.metrics", "cannot look for a number (1) in an object"),
    ("1 / 0", "division by zero"),
    ("1 % 0.0", "division by zero"),
    ("step1_output.performance_score / (step1_output.metrics.errors)", "division by zero"),
    ("len(3) > 1", "len() of a number (3)"),
    ("len(null) > 1", "len() of null"),
    ("0 < 1 < 'a'", "cannot compare a number (1) with a string ('a')"),
]


@pytest.mark.parametrize(("text", "fragment"), RUNTIME, ids=[t for t, _ in RUNTIME])
def test_runtime_error(text: str, fragment: str) -> None:
    cond = parse(text)  # each parses: the problem is in the data or the types
    with pytest.raises(ConditionError) as info:
        evaluate(cond, Scope("1", OUTPUTS, STATUSES, VARS))
    assert fragment in str(info.value)
    assert info.value.offset is not None and 0 <= info.value.offset <= len(text)


def test_runtime_error_offsets_point_at_the_operator_or_reference() -> None:
    with pytest.raises(ConditionError) as info:
        run("1 + 1 == 2 and 5 / 0 > 1")
    assert info.value.offset == 17
    with pytest.raises(ConditionError) as info:
        run("true and step1_output.nope")
    assert info.value.offset == 9


def test_non_json_data_is_refused() -> None:
    outputs = {"1.1": {"when": object(), "ok": 1}}
    with pytest.raises(ConditionError, match="is a Python object, not JSON data"):
        run("step1_output.when == 1", outputs=outputs)
    assert run("step1_output.ok == 1", outputs=outputs)


# -- the API -------------------------------------------------------------------------------------


def test_references_and_step_ref() -> None:
    text = ('IF step2_output.a.b[0]["c d"] < vars.t and steps["x.1.2"].status == "ok" '
            "or task3_step1_output or steps['4'].output")
    refs = parse(text).references()
    assert refs == [
        Reference("output", None, 2, ("a", "b", 0, "c d"), 3),
        Reference("var", None, None, ("t",), text.index("vars")),
        Reference("status", "x.1", 2, (), text.index("steps")),
        Reference("output", "3", 1, (), text.index("task3")),
        Reference("output", None, 4, (), text.index("steps['4']")),
    ]
    assert [step_ref(r, "7") for r in refs] == ["7.2", None, "x.1.2", "3.1", "7.4"]
    assert [r.source() for r in refs] == ['step2_output.a.b[0]["c d"]', "vars.t",
                                          'steps["x.1.2"].status', 'steps["3.1"].output',
                                          "step4_output"]


def test_the_tree_is_frozen() -> None:
    cond = parse("1 < 2")
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError
        cond.text = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cond.root.first = None  # type: ignore[union-attr]
    ref = parse("step1_output.x").references()[0]
    with pytest.raises(AttributeError):
        ref.step = 2  # type: ignore[misc]


def test_evaluate_returns_a_bool() -> None:
    assert run("step1_output.tags") is True
    assert run("len(step1_output.tags)") is True
    assert run("step1_output.empty") is False


def test_rebase_prefixes_explicit_task_refs() -> None:
    text = ("IF task1_step2_output.x < 1 and steps['1.3'].status == 'ok' and step2_output.y "
            "and steps['2'].output and steps['9.1'].output.steps and vars.steps == 'steps'")
    rebased = rebase(text, lambda t: None if t == "9" else f"a.{t}")
    assert rebased == ('IF steps["a.1.2"].output.x < 1 and steps["a.1.3"].status == \'ok\' and '
                       "step2_output.y and steps['2'].output and steps['9.1'].output.steps and "
                       "vars.steps == 'steps'")
    with pytest.raises(ConditionError):
        rebase("1 +", lambda t: t)


@pytest.mark.parametrize(("text", "expected"), VALUES, ids=[t for t, _ in VALUES])
def test_rebase_to_the_same_names_changes_no_value(text: str, expected: bool) -> None:
    assert run(rebase(text, lambda t: t)) is expected


def test_excerpt_draws_a_caret() -> None:
    assert excerpt("IF step1_output.x <> 3", 18) == "IF step1_output.x <> 3\n                  ^"
    assert excerpt("a\nbb <> c", 5) == "bb <> c\n   ^"
    long = "x" * 50 + " <> " + "y" * 100
    shown, caret = excerpt(long, 51).split("\n")
    assert shown.startswith("...") and shown.endswith("...")
    assert shown[len(caret) - 1:len(caret) + 1] == "<>"


# -- security ------------------------------------------------------------------------------------

ESCAPES: list[tuple[str, str]] = [
    ("__import__('os').system('true')", "cannot reach Python attributes"),
    ("step1_output.__class__", "cannot reach Python attributes"),
    ("step1_output.__class__.__mro__", "cannot reach Python attributes"),
    ("().__class__.__bases__[0].__subclasses__()", "expected a value, got ')'"),
    ("''.__class__", "only references"),
    ("[].__class__", "only references"),
    ("lambda: 1", "lambda is not supported"),
    ("(lambda x: x)(1)", "lambda is not supported"),
    ("[x for x in step1_output.tags]", "comprehensions are not supported"),
    ("import os", "import is not supported"),
    ("os.environ['HOME']", "unknown name 'os'"),
    ("open('/etc/passwd').read()", "unknown name 'open'"),
    ("eval('1')", "unknown name 'eval'"),
    ("exec('1')", "unknown name 'exec'"),
    ("getattr(step1_output, 'x')", "unknown name 'getattr'"),
    ("globals()", "unknown name 'globals'"),
    ("vars()", "write vars.NAME"),
    ("step1_output.keys()", "only len() and exists() can be called"),
    ("len.__call__", "len is a function"),
    ("9**9**9", "'**' is not supported"),
    ("9" * 150, "number too long"),
    ("1e999 > 1", "number too large"),
    ("(" * 10_000 + "1" + ")" * 10_000, "too long"),
    ("(" * 900 + "1" + ")" * 900, "nested too deeply"),
    ("not " * 490 + "true", "nested too deeply"),
    ("- " * 900 + "1", "nested too deeply"),
    ("[" * 1000 + "]" * 1000, "nested too deeply"),
    ("len(" * 300 + "'a'" + ")" * 300, "nested too deeply"),
    ("step1_output" + ".a" * 500, "the field path is too long"),
    ("1" + " + 1" * 499, ""),  # long but flat: fine
]


@pytest.mark.parametrize(("text", "fragment"), ESCAPES, ids=[t[:40] for t, _ in ESCAPES])
def test_escapes_are_rejected(text: str, fragment: str) -> None:
    if not fragment:
        assert run(text) is True
        return
    with pytest.raises(ConditionError) as info:
        run(text)
    assert fragment in str(info.value)


def test_63_levels_of_nesting_are_fine() -> None:
    assert run("(" * 63 + "1" + ")" * 63)
    assert run("not " * 62 + "true")


ARITHMETIC_BOMBS = [
    ("99999999999999999999999999999999999999999999999999 * "
     "99999999999999999999999999999999999999999999999999 * 99", "number too large"),
    ("1e300 * 1e300 > 1", "number too large"),
    ("vars.big * vars.big > 1", "number too large"),
    ("vars.huge / 3 > 1", "number too large"),
    ("vars.huge + 0.5 > 1", "number too large"),
    ("len(vars.s + vars.s + vars.s) > 1", "result too long"),
    ("len(vars.l + vars.l + vars.l) > 1", "result too long"),
]


@pytest.mark.parametrize(("text", "fragment"), ARITHMETIC_BOMBS)
def test_results_are_bounded(text: str, fragment: str) -> None:
    big = {"big": 10**60, "huge": 10**400, "s": "x" * 400_000, "l": [0] * 400_000}
    with pytest.raises(ConditionError, match=re.escape(fragment)):
        run(text, variables=big)


def test_the_module_never_uses_eval() -> None:
    package = ROOT / "src" / "specs" / "spec" / "conditions"
    source = "".join(path.read_text() for path in sorted(package.glob("*.py")))
    assert "def parse" in source and "def evaluate" in source
    assert not re.search(r"(?<![\w.])(eval|exec|compile|getattr|__import__)\(|literal_eval|"
                         r"import ast|importlib", source)


# -- fuzzing: only ConditionError escapes --------------------------------------------------------

PIECES = [*"()[]{}.,'\"!=<>+-*/%&|@#:; \t\n_0123456789abxyzIF", "and", "or", "not", "in",
          "step1_output", "step2_output", "task1_step1_output", 'steps["1.1"]', "steps['3.2']",
          ".output", ".status", "vars", ".threshold", ".metrics", ".tags", "[0]", "[-1]",
          '["p-99"]',
          "len(", "exists(", "true", "false", "null", "None", "lambda", "__class__", "1e308",
          "9" * 60, "0.8", "'text'", "==", "<=", ">=", "!=", "**", "//", "not in", "if"]
SCRAMBLED = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
VALID = [text for text, _ in VALUES] + [text for text, _ in RUNTIME]
FUZZ_DATA = {**OUTPUTS, "1.2": {"x": [[[[]]]], "nan": float("nan"), "inf": float("inf"),
                                "huge": 10**400, "s": "é🚀"}}


def outcome(text: str) -> None:
    try:
        cond = parse(text)
    except ConditionError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(text)
        return
    for task in ("1", "2.1", "9"):
        with contextlib.suppress(ConditionError):
            assert evaluate(cond, Scope(task, FUZZ_DATA, STATUSES, VARS)) in (True, False)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=120), SCRAMBLED))
def test_fuzz_random_text(text: str) -> None:
    outcome(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        i = draw(st.integers(min_value=0, max_value=len(text)))
        j = draw(st.integers(min_value=i, max_value=min(len(text), i + 6)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "replace"]))
        piece = draw(st.sampled_from(PIECES))
        text = {"delete": text[:i] + text[j:], "insert": text[:i] + piece + text[i:],
                "duplicate": text[:j] + text[i:j] + text[j:],
                "replace": text[:i] + piece + text[j:]}[op]
    return text


@settings(max_examples=600, deadline=None)
@given(mutated())
def test_fuzz_mutated_expressions(text: str) -> None:
    outcome(text)


# -- validation: every code, at its line and column ----------------------------------------------

SPEC = '''\
[goal]
description = "Check the conditions of a small spec"

[vars]
limit = 3

[[tasks]]
id = 1
description = "Measure"
{t1}

  [[tasks.steps]]
  id = 1
  description = "Measure the score"
  command = "echo"

    [tasks.steps.output_schema]
    type = "object"
    additionalProperties = false

      [tasks.steps.output_schema.properties]
      score = {{ type = "number" }}
      name = {{ type = "string" }}
      tags = {{ type = "array", items = {{ type = "string" }} }}

  [[tasks.steps]]
  id = 2
  description = "Maybe optimise"
  command = "echo"
  {s12}
  output_schema = {{ type = "object", properties = {{ size = {{ type = "integer" }} }} }}

  [[tasks.steps]]
  id = 3
  description = "Later"
  command = "echo"
  {s13}

[[tasks]]
id = 2
description = "Report"
{t2}

  [[tasks.steps]]
  id = 1
  description = "Report"
  command = "echo"
  depends_on = ["1.3"]
  {s21}
{extra}'''


def check(tmp_path: Path, **slots: str) -> tuple[list[Diagnostic], list[str]]:
    """Validate SPEC with ``slots`` filled in; the condition diagnostics and the TOML lines."""
    values = {key: "" for key in ("t1", "s12", "s13", "t2", "s21", "extra")} | slots
    text = SPEC.format(**values)
    folder = tmp_path / "spec"
    folder.mkdir(parents=True)
    (folder / "parameters_demo.toml").write_text(text, encoding="utf-8")
    loaded = load_spec(folder)
    assert loaded.spec is not None, [d.render() for d in loaded.diagnostics]
    found = [d for d in validate(loaded) if "-COND-" in d.code]
    return found, text.split("\n")


def where(lines: list[str], needle: str, marker: str | None) -> tuple[int, int]:
    """(line, col) of ``marker`` on the line holding ``needle``: the key's when None, the
    closing quote (the end of the condition) for ``END``."""
    line = next(i for i, text in enumerate(lines, start=1) if needle in text)
    text = lines[line - 1]
    if marker is None:
        return line, len(text) - len(text.lstrip()) + 1
    return line, (text.rindex('"') if marker == "END" else text.index(marker)) + 1


# (slot, TOML line, code, severity, message fragment, the character the column points at)
VALIDATION: list[tuple[str, str, str, Severity, str, str | None]] = [
    ("s12", 'condition = "IF step1_output.score <> 0.8"', "E-COND-SYNTAX", Severity.ERROR,
     "use '!='", "<>"),
    ("s12", "condition = 'step1_output.score && 1'", "E-COND-SYNTAX", Severity.ERROR,
     "use 'and'", "&&"),
    ("s12", 'condition = "step1_output.name == \\"a\\" &&"', "E-COND-SYNTAX", Severity.ERROR,
     "use 'and'", None),  # escapes: the column is the key's
    ("t1", 'condition = "vars.limit >"', "E-COND-SYNTAX", Severity.ERROR, "ends too early",
     "END"),
    ("s12", "condition = \"steps['3.9'].status == 'done'\"", "E-COND-REF", Severity.ERROR,
     "condition refers to step 3.9, which does not exist", "steps"),
    ("s13", 'condition = "step1_output.score > 1 or step7_output.x"', "E-COND-REF",
     Severity.ERROR, "step 1.7, which does not exist", "step7"),
    ("s12", 'condition = "step3_output.x == 1"', "E-COND-ORDER", Severity.ERROR,
     "step 1.3, which does not run before step 1.2", "step3"),
    ("s12", 'condition = "step2_output.size > 1"', "E-COND-ORDER", Severity.ERROR,
     "step 1.2, which is the step itself", "step2"),
    ("s12", 'condition = "task2_step1_output.x == 1"', "E-COND-ORDER", Severity.ERROR,
     "step 2.1, which does not run before step 1.2", "task2"),
    ("t1", 'condition = "step1_output.score > 1"', "E-COND-ORDER", Severity.ERROR,
     "step 1.1, which is not in an earlier task", "step1"),
    ("t2", "condition = \"steps['2.1'].status == 'completed'\"", "E-COND-ORDER", Severity.ERROR,
     "step 2.1, which is not in an earlier task", "steps"),
    ("s12", 'condition = "step1_output.scor < 0.8"', "E-COND-FIELD", Severity.ERROR,
     "condition reads step1_output.scor, but step 1.1's output_schema does not allow 'scor'",
     "step1"),
    ("s13", 'condition = "step1_output.score.value < 0.8"', "E-COND-FIELD", Severity.ERROR,
     "does not allow 'value'", "step1"),
    ("s13", 'condition = "step1_output.tags.first == 1"', "E-COND-FIELD", Severity.ERROR,
     "does not allow 'first'", "step1"),
    ("s13", 'condition = "step2_output.sise > 1"', "W-COND-FIELD", Severity.WARNING,
     "step 1.2's output_schema does not list 'sise'", "step2"),
    ("s13", 'condition = "step1_output.name < 3"', "E-COND-TYPE", Severity.ERROR,
     "'<' cannot work on string and number", "<"),
    ("s13", 'condition = "step1_output.score + \'a\' > 1"', "E-COND-TYPE", Severity.ERROR,
     "'+' cannot work on number and string", "+"),
    ("s13", 'condition = "len(step1_output.score) > 1"', "E-COND-TYPE", Severity.ERROR,
     "len() cannot work on number", "len"),
    ("s13", "condition = \"steps['1.1'].status > 1\"", "E-COND-TYPE", Severity.ERROR,
     "'>' cannot work on string and number", ">"),
    ("s13", 'condition = "vars.nope == 1"', "W-COND-VAR", Severity.WARNING,
     "condition reads vars.nope, which [vars] does not define", "vars"),
]


@pytest.mark.parametrize(("slot", "line", "code", "severity", "fragment", "marker"), VALIDATION,
                         ids=[f"{c}:{line[12:40]}" for _, line, c, *_ in VALIDATION])
def test_validation_code_and_location(tmp_path: Path, slot: str, line: str, code: str,
                                      severity: Severity, fragment: str,
                                      marker: str | None) -> None:
    found, lines = check(tmp_path, **{slot: line})
    assert [d.code for d in found] == [code], [d.render() for d in found]
    diagnostic = found[0]
    assert diagnostic.severity is severity
    assert fragment in diagnostic.message, diagnostic.message
    assert (diagnostic.location.line, diagnostic.location.col) == where(lines, line, marker)
    condition = re.sub(r"\\(.)", r"\1", line.split("=", 1)[1].strip()[1:-1])
    shown, caret = diagnostic.excerpt.split("\n")
    assert shown == condition
    if marker and marker != "END":
        assert shown[len(caret) - 1:].startswith(marker)


def test_what_runs_before_is_accepted(tmp_path: Path) -> None:
    found, _ = check(
        tmp_path,
        s12='condition = "IF step1_output.score < 0.8 and vars.limit > 1"',
        s13="condition = \"step2_output.size > 1 and steps['1.1'].status == 'completed'\"",
        t2="condition = \"task1_step3_output.x == 1 or steps['1.2'].status == 'skipped'\"",
        s21="condition = \"steps['1.3'].output.x == 1 and exists(task1_step1_output)\"",
    )
    assert found == [], [d.render() for d in found]


def test_depends_on_makes_a_later_step_readable(tmp_path: Path) -> None:
    found, _ = check(tmp_path, s12='depends_on = [3]\n  condition = "step3_output.x == 1"')
    assert found == [], [d.render() for d in found]
    # transitively: 2.1 depends on 1.3; 1.2 depends on 2.1, so it may read 2.1 and 1.3
    found, _ = check(tmp_path / "b", s12='depends_on = ["2.1"]\n  condition = '
                     '"task2_step1_output.x == 1 and step3_output.y == 2"')
    assert [d.code for d in found if d.code == "E-COND-ORDER"] == []


def test_transition_when_is_checked(tmp_path: Path) -> None:
    extra = textwrap.dedent('''
        [[transitions]]
        from_task = 1
        to_task = 1
        when = "step1_output.score <"
        ''')
    found, lines = check(tmp_path, extra=extra)
    assert [d.code for d in found] == ["E-COND-SYNTAX"]
    assert (found[0].location.line, found[0].location.col) == where(lines, "when =", "END")
    ok = extra.replace('step1_output.score <"', "steps['1.1'].output.score < 1\"")
    found, _ = check(tmp_path / "ok", extra=ok)
    assert found == [], [d.render() for d in found]


def test_excerpt_is_rendered_kept_by_the_cli_and_in_json(tmp_path: Path) -> None:
    found, _ = check(tmp_path, s12='condition = "IF step1_output.score <> 0.8"')
    diagnostic = found[0]
    lines = diagnostic.render().split("\n")
    assert re.match(r".+:\d+:\d+: error E-COND-SYNTAX condition: use '!='", lines[0])
    assert lines[1:] == ["    IF step1_output.score <> 0.8", "    " + " " * 22 + "^"]
    assert _render(diagnostic).split("\n")[1:] == lines[1:]
    assert diagnostic.to_dict()["excerpt"] == "IF step1_output.score <> 0.8\n" + " " * 22 + "^"
    assert diagnostic.escalated().excerpt == diagnostic.excerpt
    plain = Diagnostic(Severity.ERROR, "E-X", "m", Location("f", 1, 1))
    assert plain.render() == "f:1:1: error E-X m" and plain.to_dict()["excerpt"] == ""


def test_every_condition_code_has_a_validation_case() -> None:
    source = (ROOT / "src" / "specs" / "spec" / "validate" / "condition_checks.py").read_text()
    in_source = set(re.findall(r'"([EW]-COND-[A-Z]+)"', source))
    assert in_source == {code for _, _, code, *_ in VALIDATION}


def test_the_example_validates_without_errors() -> None:
    loaded = load_spec(ROOT / "examples" / "conditions")
    found = validate(loaded)
    assert [d.render() for d in found if d.severity is not Severity.INFO] == []
    assert loaded.spec is not None
    texts = [s.condition for _, s in loaded.spec.steps() if s.condition]
    assert "IF step1_output.performance_score < 0.8" in texts
    assert all(conditions.parse(t) for t in texts)
