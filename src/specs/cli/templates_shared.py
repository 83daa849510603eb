"""What the template commands share: option types, --var parsing, the terminal's questions,
finding a template, and reporting a new spec (specs.cli.templates, specs.cli.templates_new)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from specs.cli.common import _display, _err, _render
from specs.cli.spec import spec_tree
from specs.diagnostics import Severity
from specs.errors import UsageError
from specs.templates import Created, Library, Template, Variable, discover, load_template

VarOpt = Annotated[list[str] | None, typer.Option(
    "--var", metavar="NAME=VALUE", help="Answer a template variable (repeatable).")]
NoInputOpt = Annotated[bool, typer.Option(
    "--no-input", help="Never ask: a missing answer is an error.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def parse_vars(items: list[str] | None) -> dict[str, str]:
    """``--var NAME=VALUE`` options as a dict (the value stays text: the variable's type
    reads it)."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var {item!r}: write NAME=VALUE")
        out[name.strip()] = value
    return out


def display_bool(value: bool) -> str:
    return "yes" if value else "no"


def interactive(no_input: bool) -> bool:
    return not no_input and sys.stdin.isatty() and sys.stderr.isatty()


def terminal_asker(variable: Variable, default: str | None, error: str | None) -> str:
    """Ask one question on the terminal (stderr), read the answer from stdin."""
    console = _err()
    if error:
        console.print(f"  {error}", markup=False, style="red")
    hint = f" ({', '.join(variable.choices)})" if variable.type == "choice" else \
        " (yes/no)" if variable.type == "bool" else \
        " (comma-separated)" if variable.type == "list" else ""
    if variable.help and error is None:
        console.print(f"  {variable.help}", markup=False, style="dim")
    shown = f" [{default}]" if default not in (None, "") else ""
    console.print(f"{variable.prompt}{hint}{shown}: ", markup=False, end="")
    try:
        return input()
    except EOFError:
        raise UsageError(f"no answer for {variable.name!r} (end of input); pass --var "
                         f"{variable.name}=VALUE") from None


def library_of() -> Library:
    library = discover()
    for problem in library.problems:
        _err().print(f"specs: warning: {problem}", markup=False)
    return library


def template_of(name_or_path: str, library: Library | None = None) -> Template:
    path = Path(name_or_path)
    if ("/" in name_or_path or name_or_path.startswith(".")) and path.is_dir():
        return load_template(path, layer="path", origin=str(path))
    return (library or library_of()).get(name_or_path)


def template_record(template: Template) -> dict[str, Any]:
    return {"name": template.name, "version": template.version, "title": template.title,
            "summary": template.summary, "category": template.category,
            "keywords": list(template.keywords), "pick_when": template.pick_when,
            "layer": template.layer, "origin": template.origin,
            "folder": str(template.folder), "overrides": list(template.shadows),
            "descriptor": template.default_descriptor,
            "variables": [_variable_record(v) for v in template.variables]}


def _variable_record(v: Variable) -> dict[str, Any]:
    record: dict[str, Any] = {"name": v.name, "prompt": v.prompt, "type": v.type,
                              "default": v.default, "required": v.required}
    for key in ("choices", "pattern", "min", "max", "when", "env", "help", "example"):
        value = getattr(v, key)
        if value not in (None, (), ""):
            record[key] = list(value) if isinstance(value, tuple) else value
    if v.secret:
        record["secret"] = True
        record["env"] = v.env_name
    return record


def report_created(created: Created, template: Template, *, dry_run: bool, as_json: bool,
                    what: str = "from ") -> None:
    if as_json:
        typer.echo(json.dumps({
            "folder": str(created.folder), "template": template.ref, "written": created.written,
            "files": created.files, "secrets": created.rendered.answers.secrets
            if created.rendered else {},
            "diagnostics": [d.to_dict() for d in created.diagnostics]}, indent=2))
        return
    for d in created.diagnostics:
        if d.severity is not Severity.INFO:
            _err().print(_render(d), markup=False)
    where = _display(str(created.folder))
    if created.errors:
        _err().print(f"specs: {where} not written: the rendered spec has "
                     f"{len(created.errors)} errors", markup=False)
        return
    out = Console(highlight=False, soft_wrap=True)
    if dry_run:
        out.print(f"{where}/ (dry run: nothing written)", markup=False)
        for name in created.files:
            out.print(f"  {name}", markup=False)
        if created.loaded is not None and created.loaded.spec is not None:
            out.print(spec_tree(created.loaded, created.loaded.spec))
    else:
        out.print(f"wrote {where}/ {what}{template.ref} ({len(created.files)} files); "
                  f"next: specs run {where}", markup=False)
    answers = created.rendered.answers if created.rendered else None
    for name, env in (answers.secrets.items() if answers else ()):
        _err().print(f"specs: note: {name} is read from ${env} when the spec runs; it was not "
                     "written anywhere", markup=False)
