"""A **template**: a spec folder plus an optional ``template.toml`` that says what to ask.

A template folder holds a complete spec file set (``parameters_<d>.toml``, ``spec_<d>.md``,
any scripts it needs) whose text may carry placeholders (``{{ name }}``,
:mod:`specs.templates.render`), and ``template.toml``::

    [template]
    name = "bug_fix"            # default: the folder's name
    version = "1.0.0"
    title = "Bug fix"
    summary = "Reproduce, fix and verify one bug"
    category = "development"
    keywords = ["bug", "fix", "regression"]
    pick_when = "a specific defect you can describe and reproduce"
    descriptor = "bug_fix"      # the spec's default descriptor

    [variables.bug]             # one table per question, asked in this order
    prompt = "Describe the bug in one sentence"
    type = "str"                # str | int | bool | path | choice | list
    example = "the login page crashes when the password is empty"

A folder without ``template.toml`` is a template too (any spec folder, such as a TOOLSPEC of
the original): it has no questions, its name is the folder's and its version ``0``.

Problems in ``template.toml`` raise :class:`TemplateError`: one line naming file:line:col.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.spec.conditions import ConditionError, parse
from specs.spec.files import descriptor_of
from specs.spec.sources import DocPath, SourceMap
from specs.spec.tomlio import parse_toml, read_text
from specs.templates.errors import TemplateError
from specs.templates.variables import TYPES, AnswerError, Variable, coerce

__all__ = ["BUILTIN_NAMES", "CATEGORIES", "TEMPLATE_FILE", "TYPES", "Template", "TemplateError",
           "Variable", "load_template"]

TEMPLATE_FILE = "template.toml"
#: the library's categories (the original's workflow library groups, reference §5.6)
CATEGORIES = ("development", "quality", "problem_solving", "research", "knowledge", "other")
#: names every template can use without declaring them (see :mod:`specs.templates.render`)
BUILTIN_NAMES = ("descriptor", "date", "template", "template_version")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VARIABLE_KEYS = {"prompt", "type", "default", "choices", "pattern", "min", "max", "when",
                  "secret", "env", "multiline", "must_exist", "base", "help", "example",
                  "message"}
_TEMPLATE_KEYS = {"name", "version", "title", "summary", "category", "keywords", "pick_when",
                  "descriptor", "render_exclude"}


@dataclass(frozen=True)
class Template:
    """A template found in a source folder: its files, its questions, where it came from."""

    name: str
    folder: Path
    version: str = "0"
    title: str = ""
    summary: str = ""
    category: str = "other"
    keywords: tuple[str, ...] = ()
    pick_when: str = ""
    descriptor: str = ""  # the descriptor its files are named with (parameters_<d>.toml)
    default_descriptor: str = ""
    variables: tuple[Variable, ...] = ()
    render_exclude: tuple[str, ...] = ()  # globs copied verbatim
    has_manifest: bool = False  # a template.toml was there
    layer: str = ""  # the source layer it was found in (specs.templates.sources)
    origin: str = ""  # the layer's folder, or the git URL it was cloned from
    shadows: tuple[str, ...] = field(default=(), compare=False)  # lower layers it overrides

    @property
    def ref(self) -> str:
        """``name@version``, as provenance records it."""
        return f"{self.name}@{self.version}"

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)


def load_template(folder: Path, *, layer: str = "", origin: str = "") -> Template:
    """The template in ``folder``; raises :class:`TemplateError` (file:line:col) when its
    ``template.toml`` is malformed or the folder holds no ``parameters_*.toml``."""
    folder = Path(folder)
    parameters = sorted(folder.glob("parameters_*.toml"))
    if len(parameters) != 1:
        found = "no" if not parameters else f"{len(parameters)}"
        raise TemplateError(f"{folder}: a template folder holds one parameters_*.toml "
                            f"({found} found)")
    descriptor = descriptor_of(parameters[0])
    manifest = folder / TEMPLATE_FILE
    if not manifest.is_file():
        return Template(name=folder.name, folder=folder, descriptor=descriptor,
                        default_descriptor=descriptor, layer=layer, origin=origin)
    text, problems = read_text(manifest, TEMPLATE_FILE)
    if text is None:
        raise TemplateError(problems[0].render() if problems else f"{manifest}: unreadable")
    doc, sources, problems = parse_toml(text, str(manifest))
    if doc is None:
        raise TemplateError(problems[0].render() if problems else f"{manifest}: empty")
    return _from_document(doc, _Where(sources), folder, descriptor, layer, origin)


class _Where:
    """file:line:col of a path in template.toml, for the one-line errors."""

    def __init__(self, sources: SourceMap) -> None:
        self.sources = sources

    def fail(self, path: DocPath, message: str) -> TemplateError:
        at = self.sources.at(path)
        where = f"{at.file}:{at.line}:{at.col}" if at.line else at.file
        return TemplateError(f"{where}: {message}")


def _from_document(doc: dict[str, Any], where: _Where, folder: Path, descriptor: str,
                   layer: str, origin: str) -> Template:
    head = doc.get("template", {})
    if not isinstance(head, dict):
        raise where.fail(("template",), "[template] must be a table")
    unknown = sorted(set(doc) - {"template", "variables"}) + sorted(
        f"template.{k}" for k in set(head) - _TEMPLATE_KEYS)
    if unknown:
        first = unknown[0].split(".")
        raise where.fail(tuple(first), f"unknown key {unknown[0]!r} (template.toml knows "
                         "[template] and [variables.NAME])")
    name = _text(head, "name", where, ("template",)) or folder.name
    if not NAME.match(name):
        raise where.fail(("template", "name"), f"template name {name!r} must be lower-case "
                         "letters, digits and _ (starting with a letter)")
    category = _text(head, "category", where, ("template",)) or "other"
    if category not in CATEGORIES:
        raise where.fail(("template", "category"), f"category {category!r} is not one of "
                         f"{', '.join(CATEGORIES)}")
    default_descriptor = _text(head, "descriptor", where, ("template",)) or descriptor
    version = head.get("version", "0")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        raise where.fail(("template", "version"), "version must be a string like \"1.2.0\"")
    variables = _variables(doc.get("variables", {}), where)
    return Template(
        name=name, folder=folder, version=str(version),
        title=_text(head, "title", where, ("template",)),
        summary=_text(head, "summary", where, ("template",)),
        category=category, keywords=_strings(head, "keywords", where, ("template",)),
        pick_when=_text(head, "pick_when", where, ("template",)),
        descriptor=descriptor, default_descriptor=default_descriptor,
        variables=variables,
        render_exclude=_strings(head, "render_exclude", where, ("template",)),
        has_manifest=True, layer=layer, origin=origin)


def _variables(table: Any, where: _Where) -> tuple[Variable, ...]:
    if not isinstance(table, dict):
        raise where.fail(("variables",), "[variables] must hold one table per variable")
    found: list[Variable] = []
    for name, spec in table.items():
        path: DocPath = ("variables", name)
        if not NAME.match(name) or name in BUILTIN_NAMES:
            why = "is built in" if name in BUILTIN_NAMES else \
                "must be lower-case letters, digits and _ (starting with a letter)"
            raise where.fail(path, f"variable name {name!r} {why}")
        if not isinstance(spec, dict):
            raise where.fail(path, f"[variables.{name}] must be a table")
        unknown = sorted(set(spec) - _VARIABLE_KEYS)
        if unknown:
            raise where.fail((*path, unknown[0]), f"[variables.{name}] has unknown key "
                             f"{unknown[0]!r} (known: {', '.join(sorted(_VARIABLE_KEYS))})")
        found.append(_variable(name, spec, path, where))
    return tuple(found)


def _variable(name: str, spec: dict[str, Any], path: DocPath, where: _Where) -> Variable:
    kind = spec.get("type", "str")
    if kind not in TYPES:
        raise where.fail((*path, "type"), f"variable {name!r}: type {kind!r} is not one of "
                         f"{', '.join(TYPES)}")
    choices = tuple(str(c) for c in spec.get("choices", []) or [])
    if kind == "choice" and not choices:
        raise where.fail(path, f"variable {name!r} is a choice but lists no choices")
    for key in ("min", "max"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise where.fail((*path, key), f"variable {name!r}: {key} must be an integer")
    pattern = spec.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise where.fail((*path, "pattern"), f"variable {name!r}: pattern is not a "
                             f"regular expression: {exc}") from None
    base = spec.get("base", "spec")
    if base not in ("spec", "as_given"):
        raise where.fail((*path, "base"), f"variable {name!r}: base must be \"spec\" or "
                         "\"as_given\"")
    when = spec.get("when")
    if when is not None:
        _check_when(str(when), name, (*path, "when"), where)
    default = spec.get("default")
    if when is not None and default is None and not spec.get("secret", False):
        raise where.fail((*path, "when"), f"variable {name!r} has `when` but no default (the "
                         "default is its value when the question is not asked)")
    secret = bool(spec.get("secret", False))
    if secret and default is not None:
        raise where.fail((*path, "default"), f"variable {name!r} is secret: it cannot have a "
                         "default (it comes from the environment)")
    env = spec.get("env")
    if env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(env)):
        raise where.fail((*path, "env"), f"variable {name!r}: env {env!r} is not an "
                         "environment variable name")
    variable = Variable(
        name=name, prompt=str(spec.get("prompt") or name.replace("_", " ")), type=kind,
        default=default, choices=choices, pattern=str(pattern) if pattern else None,
        min=spec.get("min"), max=spec.get("max"), when=str(when) if when else None,
        secret=secret, env=str(env) if env else None,
        multiline=bool(spec.get("multiline", False)),
        must_exist=bool(spec.get("must_exist", False)), base=base,
        help=str(spec.get("help", "")), example=spec.get("example"),
        message=str(spec["message"]) if spec.get("message") else None)
    for key in ("default", "example"):
        value = spec.get(key)
        if value is None or (variable.type == "path" and variable.must_exist):
            continue
        try:
            coerce(variable, value)
        except AnswerError as exc:
            raise where.fail((*path, key), f"the {key} of variable {name!r} is not a valid "
                             f"answer: {exc}") from None
    return variable


def _check_when(text: str, name: str, path: DocPath, where: _Where) -> None:
    try:
        parsed = parse(text)
    except ConditionError as exc:
        raise where.fail(path, f"variable {name!r}: `when` does not parse: {exc}") from None
    for ref in parsed.references():
        if ref.kind != "var":
            raise where.fail(path, f"variable {name!r}: `when` reads only earlier answers "
                             f"(vars.NAME), not {ref.source()}")


def _text(table: Mapping[str, Any], key: str, where: _Where, path: DocPath) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise where.fail((*path, key), f"{key} must be a string")
    return value.strip()


def _strings(table: Mapping[str, Any], key: str, where: _Where, path: DocPath
             ) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.fail((*path, key), f"{key} must be a list of strings")
    return tuple(value)
