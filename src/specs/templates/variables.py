"""Typed variables: the questions a template asks, and how answers are checked.

Each answer is *coerced* to the variable's type and checked (:func:`coerce`); a bad one raises
:class:`AnswerError` with one line naming the variable and what would be right. Types:

========  =======================================================================
str       text; ``pattern`` (a regular expression the whole answer must match),
          ``min``/``max`` (length); one line unless ``multiline = true``
int       a whole number; ``min``/``max`` (the range)
bool      yes/no, true/false, y/n, 1/0, on/off
path      a file or folder; ``must_exist``; relative answers are read from the working
          directory and rewritten relative to the spec folder (``base = "spec"``, the
          default) or kept as given (``base = "as_given"``: relative to the run's workspace)
choice    one of ``choices`` (case-insensitive; the listed spelling is kept)
list      comma-separated text or a JSON list of strings; ``pattern`` applies to each
          item, ``min``/``max`` to the count
========  =======================================================================

:func:`resolve_answers` walks the questions in order: an answer given (``--var``) is checked;
a question whose ``when`` is false is skipped (its default applies); a secret is read from its
environment variable; otherwise the ``ask`` callback is asked (a terminal), or the default
applies, or resolution fails naming the missing variable and how to pass it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.errors import UsageError
from specs.spec.conditions import ConditionError, Scope, evaluate, parse
from specs.templates.render import Context, render_text

__all__ = ["TYPES", "AnswerError", "Answers", "Asker", "Variable", "coerce", "display",
           "resolve_answers"]

TYPES = ("str", "int", "bool", "path", "choice", "list")
_TRUE = {"y", "yes", "true", "1", "on"}
_FALSE = {"n", "no", "false", "0", "off"}
_INT = re.compile(r"^[-+]?\d{1,30}$")
MAX_ASKS = 10


class AnswerError(UsageError):
    """An answer does not fit its variable (exit code 2)."""


@dataclass(frozen=True)
class Variable:
    """One question of a template.

    ``default`` is the answer when none is given (a variable without one must be answered);
    ``when`` is a condition over earlier answers (``vars.NAME``, the language of
    docs/conditions.md): the question is asked only when it holds, else the default applies.
    A ``secret`` is never asked nor written: it is read from the environment variable ``env``
    (checked like any answer) and rendered as ``${ENV}``, for commands to read at run time.
    """

    name: str
    prompt: str
    type: str = "str"
    default: Any = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    min: int | None = None  # int: the smallest value; str/list: the shortest length
    max: int | None = None
    when: str | None = None
    secret: bool = False
    env: str | None = None
    multiline: bool = False  # str: may the answer hold line breaks
    must_exist: bool = False  # path: must the path exist when answered
    base: str = "spec"  # path: "spec" (rewritten relative to the spec folder) | "as_given"
    help: str = ""
    example: Any = None  # a sample answer (`specs templates check`, docs)
    message: str | None = None  # what a bad answer is told instead of the generic line

    @property
    def required(self) -> bool:
        return self.default is None and not self.secret

    @property
    def env_name(self) -> str:
        return self.env or self.name.upper()


#: ``ask(variable, default_text, error)`` -> the raw answer; ``error`` says why the previous
#: answer was refused (None the first time); an empty answer takes the default
Asker = Callable[[Variable, str | None, str | None], str]


@dataclass
class Answers:
    """The resolved answers: ``values`` render the files, ``secrets`` map a secret variable to
    the environment variable it is rendered as (its value is never kept)."""

    values: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    given: list[str] = field(default_factory=list)  # answered by --var, the terminal or env
    skipped: list[str] = field(default_factory=list)  # `when` was false


def coerce(variable: Variable, raw: Any) -> Any:
    """``raw`` (text from a command line or a terminal, or a TOML value) as the variable's
    type, checked; raises :class:`AnswerError`."""
    kind = variable.type
    if kind == "bool":
        value: Any = _bool(variable, raw)
    elif kind == "int":
        value = _int(variable, raw)
    elif kind == "list":
        value = _list(variable, raw)
    else:
        value = _text(variable, raw)
    return value


def _fail(variable: Variable, why: str, raw: Any = None) -> AnswerError:
    if variable.message:
        why = variable.message
    shown = "" if raw is None or variable.secret else f" (got {_show(raw)})"
    return AnswerError(f"{variable.name}: {why}{shown}")


def _show(raw: Any) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _bool(variable: Variable, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _fail(variable, "must be yes or no", raw)


def _int(variable: Variable, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise _fail(variable, "must be a whole number", raw)
    if isinstance(raw, str) and not _INT.match(raw.strip()):
        raise _fail(variable, "must be a whole number", raw)
    number = int(raw.strip()) if isinstance(raw, str) else int(raw)
    low, high = variable.min, variable.max
    if (low is not None and number < low) or (high is not None and number > high):
        raise _fail(variable, f"must be {_range(low, high)}", raw)
    return number


def _range(low: int | None, high: int | None, unit: str = "") -> str:
    unit = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"between {low} and {high}{unit}"
    return f"at least {low}{unit}" if low is not None else f"at most {high}{unit}"


def _text(variable: Variable, raw: Any) -> str:
    if not isinstance(raw, str) and (isinstance(raw, bool) or not isinstance(raw, int | float)):
        raise _fail(variable, "must be text", raw)
    text = str(raw)
    value = text if variable.multiline else text.strip()
    if "\x00" in value:
        raise _fail(variable, "must not hold a NUL character")
    if ("\n" in value or "\r" in value) and not (variable.multiline and variable.type == "str"):
        raise _fail(variable, "must be one line", raw)
    if variable.type == "choice":
        return _choice(variable, value)
    if variable.type == "path":
        if not value:
            raise _fail(variable, "must name a path", raw)
        value = os.path.expanduser(value)
    if variable.pattern and not re.fullmatch(variable.pattern, value):
        raise _fail(variable, f"must match {variable.pattern}", raw)
    _length(variable, len(value), "characters", raw)
    return value


def _length(variable: Variable, size: int, unit: str, raw: Any) -> None:
    low, high = variable.min, variable.max
    if (low is not None and size < low) or (high is not None and size > high):
        raise _fail(variable, f"must have {_range(low, high, unit)}", raw)


def _choice(variable: Variable, value: str) -> str:
    for choice in variable.choices:
        if choice.lower() == value.lower():
            return choice
    raise _fail(variable, f"must be one of {', '.join(variable.choices)}", value)


def _list(variable: Variable, raw: Any) -> list[str]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except ValueError:
                raise _fail(variable, "is not a JSON list", raw) from None
        else:
            raw = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise _fail(variable, "must be a list of text items", raw)
    for item in raw:
        if "\n" in item or "\x00" in item:
            raise _fail(variable, "items must be one line each", item)
        if variable.pattern and not re.fullmatch(variable.pattern, item):
            raise _fail(variable, f"every item must match {variable.pattern}", item)
    _length(variable, len(raw), "items", raw)
    return list(raw)


def display(variable: Variable, value: Any) -> str:
    """An answer as a user types it (the default shown at a prompt)."""
    if variable.secret:
        return "***"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def resolve_answers(variables: tuple[Variable, ...], given: Mapping[str, Any], *,
                    ask: Asker | None = None, env: Mapping[str, str] | None = None,
                    cwd: Path | None = None, spec_folder: Path | None = None,
                    final: Collection[str] = (), builtins: Mapping[str, Any] | None = None
                    ) -> Answers:
    """Every variable's answer (see the module docstring).

    A text default may hold placeholders (``"reports/{{ descriptor }}"``): they read the
    ``builtins`` and earlier answers. ``final`` names answers already in their rendered form
    (a recorded answer re-used by ``specs templates update``): their paths are not rewritten.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    names = {v.name for v in variables}
    unknown = sorted(set(given) - names)
    if unknown:
        declared = ", ".join(sorted(names)) or "none"
        raise UsageError(f"--var {unknown[0]}: the template has no variable {unknown[0]!r} "
                         f"(it declares: {declared})")
    answers = Answers()
    seen: dict[str, Any] = {}
    for variable in variables:
        if isinstance(variable.default, str) and "{{" in variable.default:
            expanded = render_text(variable.default, Context({**(builtins or {}), **seen}),
                                   kind="text", file=f"the default of {variable.name!r}")
            variable = dataclasses.replace(variable, default=expanded)
        if variable.when is not None and not _holds(variable, seen):
            answers.skipped.append(variable.name)
            if variable.secret:  # still rendered as its environment variable, never checked
                answers.secrets[variable.name] = variable.env_name
                seen[variable.name] = None
                continue
            value = coerce(variable, variable.default)
        elif variable.secret:
            value = _secret(variable, given, env)
            answers.secrets[variable.name] = variable.env_name
            seen[variable.name] = value
            if value is not None:
                answers.given.append(variable.name)
            continue
        elif variable.name in given:
            value = coerce(variable, given[variable.name])
            answers.given.append(variable.name)
        elif ask is not None:
            value = _ask(variable, ask)
            answers.given.append(variable.name)
        elif variable.default is not None:
            value = coerce(variable, variable.default)
        else:
            raise UsageError(f"no answer for {variable.name!r} ({variable.prompt}); pass "
                             f"--var {variable.name}=VALUE (or run on a terminal to be asked)")
        if variable.type == "path" and variable.name not in final:
            value = _place(variable, value, cwd, spec_folder)
        answers.values[variable.name] = value
        seen[variable.name] = value
    return answers


def _holds(variable: Variable, seen: Mapping[str, Any]) -> bool:
    assert variable.when is not None
    try:
        return evaluate(parse(variable.when), Scope(task="", outputs={}, statuses={},
                                                    vars=dict(seen)))
    except ConditionError as exc:
        raise UsageError(f"variable {variable.name!r}: `when` cannot be decided: {exc}") \
            from None


def _secret(variable: Variable, given: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    raw = given.get(variable.name, env.get(variable.env_name))
    if raw is None or raw == "":
        return None
    return coerce(variable, raw)


def _ask(variable: Variable, ask: Asker) -> Any:
    default = None if variable.default is None else display(variable, variable.default)
    error: str | None = None
    for _ in range(MAX_ASKS):
        raw = ask(variable, default, error)
        if not raw.strip() and variable.default is not None:
            return coerce(variable, variable.default)
        try:
            return coerce(variable, raw)
        except AnswerError as exc:
            error = str(exc)
    raise AnswerError(error or f"{variable.name}: no valid answer")


def _place(variable: Variable, value: str, cwd: Path, spec_folder: Path | None) -> str:
    """A path answer checked (``must_exist``) and written the way the spec reads it."""
    path = Path(value)
    absolute = path if path.is_absolute() else cwd / path
    if variable.must_exist and not absolute.exists():
        raise _fail(variable, f"{absolute} does not exist", value)
    if path.is_absolute() or variable.base != "spec" or spec_folder is None:
        return path.as_posix()
    return Path(os.path.relpath(absolute, spec_folder)).as_posix()
