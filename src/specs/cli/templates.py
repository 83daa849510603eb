"""The templates library on the command line: ``specs templates ...``, ``specs new``,
``specs init`` and ``specs draft`` (docs/templates.md).

Registered on :data:`specs.cli.common.app`; see that module for the exit codes. Each command
parses its options, calls :mod:`specs.templates` and prints; questions are asked on a terminal
only (stdin and stderr both a TTY, and no ``--no-input``), else a missing answer is one line
naming the ``--var`` to pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from specs.cli.common import EXIT_INVALID, EXIT_OK, EXIT_USAGE, _display, _err, _render, app
from specs.cli.spec import spec_tree
from specs.diagnostics import Severity
from specs.errors import ProviderError, UsageError
from specs.templates import (
    Created,
    Library,
    SpecExists,
    Template,
    Variable,
    discover,
    display,
    load_template,
    new_spec,
    preview,
)

templates_app = typer.Typer(
    name="templates", no_args_is_help=False, add_completion=False, rich_markup_mode=None,
    help="The templates library: list, show, check, suggest, update, extract, sync.")
app.add_typer(templates_app)

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


def _library() -> Library:
    library = discover()
    for problem in library.problems:
        _err().print(f"specs: warning: {problem}", markup=False)
    return library


def _template(name_or_path: str, library: Library | None = None) -> Template:
    path = Path(name_or_path)
    if ("/" in name_or_path or name_or_path.startswith(".")) and path.is_dir():
        return load_template(path, layer="path", origin=str(path))
    return (library or _library()).get(name_or_path)


# --- specs templates -----------------------------------------------------------------------


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


@templates_app.callback(invoke_without_command=True)
def templates_cmd(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    category: Annotated[str | None, typer.Option(
        "--category", help="Only the templates of this category.")] = None,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="Print the catalog as Markdown (variables, tasks).")] = False,
) -> None:
    """List the templates of every source, and the layer each comes from.

    Layers, highest first: env (SPECS_TEMPLATES), project (.specs/templates/), user (the
    user's configuration folder), extra (templates.toml sources), built-in.
    """
    if ctx.invoked_subcommand is not None:
        return
    library = _library()
    templates = sorted(library.templates.values(), key=lambda t: (t.category, t.name))
    if category is not None:
        templates = [t for t in templates if t.category == category]
    if as_json:
        typer.echo(json.dumps([template_record(t) for t in templates], indent=2))
        return
    if markdown:
        from specs.templates.catalog import catalog_markdown

        typer.echo(catalog_markdown(templates), nl=False)
        return
    if not templates:
        _err().print("no templates" + (f" in category {category!r}" if category else ""))
        return
    width = max(len(t.name) for t in templates)
    for t in templates:
        layer = t.layer + (f", overrides {', '.join(t.shadows)}" if t.shadows else "")
        typer.echo(f"{t.name:<{width}}  {t.version:<7} {t.category:<16} {t.summary or t.title}"
                   f"  [{layer}]")


@templates_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="A template name, or a template folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a template: where it comes from, its variables, and the spec it makes (rendered
    with its examples)."""
    template = _template(name)
    created = preview(template, strict=False)
    if as_json:
        record = template_record(template)
        if created.loaded is not None and created.loaded.spec is not None:
            spec = created.loaded.spec
            record["tasks"] = [{"id": t.id, "description": t.description,
                                "steps": [{"id": s.id, "description": s.description,
                                           "critical": s.critical_flag,
                                           "method": s.effective_method} for s in t.steps]}
                               for t in spec.tasks]
        typer.echo(json.dumps(record, indent=2, default=str))
        return
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"{template.ref}  ({template.category}; {template.layer}: {template.folder})",
              markup=False)
    for line in (template.title, template.summary,
                 f"Pick it for: {template.pick_when}" if template.pick_when else ""):
        if line:
            out.print(line, markup=False)
    if template.variables:
        out.print("\nVariables (--var NAME=VALUE):", markup=False)
    for v in template.variables:
        extra = [f"default {display(v, v.default)!r}" if v.default is not None else
                 ("from $" + v.env_name if v.secret else "required")]
        extra += [f"one of {', '.join(v.choices)}"] if v.choices else []
        extra += [f"matches {v.pattern}"] if v.pattern else []
        extra += [f"min {v.min}"] if v.min is not None else []
        extra += [f"max {v.max}"] if v.max is not None else []
        extra += [f"asked when {v.when}"] if v.when else []
        out.print(f"  {v.name} ({v.type}): {v.prompt} [{'; '.join(extra)}]", markup=False)
    if created.loaded is not None and created.loaded.spec is not None:
        out.print("\nThe spec it makes (with the example answers):", markup=False)
        out.print(spec_tree(created.loaded, created.loaded.spec))
    for d in created.errors:
        _err().print(_render(d), markup=False)


@templates_app.command("check")
def check_cmd(
    names: Annotated[list[str] | None, typer.Argument(
        help="Template names or folders (default: every template).", show_default=False)]
    = None,
    var: VarOpt = None,
) -> None:
    """Render templates with their example answers (and --var) and validate the result with
    --strict: what a template author runs before publishing.

    Exit code 0 when every template renders a valid spec, 1 otherwise.
    """
    library = _library()
    targets = [_template(n, library) for n in names] if names else \
        sorted(library.templates.values(), key=lambda t: t.name)
    given = parse_vars(var)
    failed = 0
    for template in targets:
        answers = {**_examples(template), **{k: v for k, v in given.items()
                                             if template.variable(k) is not None}}
        created = preview(template, answers, strict=True)
        problems = [d for d in created.diagnostics if d.severity is not Severity.INFO]
        failed += bool(created.errors)
        for d in problems:
            typer.echo(_render(d))
        verdict = "invalid" if created.errors else "valid"
        _err().print(f"{template.ref}: {verdict} ({len(created.errors)} errors, "
                     f"{len(problems) - len(created.errors)} warnings)", markup=False)
    raise typer.Exit(EXIT_INVALID if failed else EXIT_OK)


def _examples(template: Template) -> dict[str, Any]:
    return {v.name: v.example for v in template.variables
            if v.example is not None and not v.secret}


@templates_app.command("suggest")
def suggest_cmd(
    goal: Annotated[str, typer.Argument(metavar="GOAL", help="The goal, in a sentence.",
                                        show_default=False)],
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N templates.")] = 5,
) -> None:
    """Rank the templates for a goal, with the reasons for each: keywords, the goal's
    structure, and the original's selection tree (incident -> forensic, broken ->
    troubleshoot, mysterious code -> code_archaeology).

    Exit code 0 when a template fits, 1 when none does.
    """
    from specs.templates.suggest import suggest

    if not goal.strip():
        raise UsageError("the goal is empty; describe what you want to achieve")
    found = suggest(goal, _library().templates.values(), limit=limit)
    if as_json:
        typer.echo(json.dumps([{"name": s.name, "score": s.score, "reasons": list(s.reasons),
                                "layer": s.template.layer, "summary": s.template.summary}
                               for s in found], indent=2))
    for rank, s in enumerate([] if as_json else found, 1):
        typer.echo(f"{rank}. {s.name} ({s.score:g}): {s.template.summary}")
        for reason in s.reasons:
            typer.echo(f"     - {reason}")
    if not found:
        _err().print("specs: no template fits this goal; `specs draft \"GOAL\"` asks the LLM "
                     "for a spec instead", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if not as_json:
        typer.echo(f"next: specs new {found[0].name}")


@templates_app.command("extract")
def extract_cmd(
    path: Annotated[Path, typer.Argument(help="A spec folder (or parameters file).")],
    tasks: Annotated[str | None, typer.Option(
        "--tasks", metavar="IDS", help="Only these tasks, e.g. 1,3.")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="The template's name (default: the spec's descriptor).")] = None,
    to: Annotated[Path | None, typer.Option(
        "--to", help="The template folder to write (default: .specs/templates/NAME in the "
        "project).")] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--var", metavar="NAME=TEXT", help="Replace every TEXT with the variable NAME "
        "(repeatable); its default is TEXT.")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Accept every suggested variable without asking.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the template folder.")]
    = False,
    no_input: NoInputOpt = False,
) -> None:
    """Turn a spec (or some of its tasks) into a template, its specific texts replaced by
    variables you confirm (on a terminal), choose with --var, or accept with --yes.

    With every default kept, `specs new` on the template makes the same spec again.
    """
    from specs.templates.extract import (
        candidates,
        default_destination,
        extract_template,
        parse_tasks,
    )

    folder = path if path.is_dir() else path.parent
    chosen = parse_vars(var)
    if not chosen:
        found = candidates(folder)
        if interactive(no_input) and not yes:
            chosen = _confirm_candidates(found)
        elif yes:
            chosen = {c.name: c.text for c in found}
        elif found:
            hints = " ".join(f"--var {c.name}={c.text}" for c in found[:5])
            _err().print(f"specs: note: no variables chosen; texts that may deserve one: "
                         f"{hints} (or --yes to take them all)", markup=False)
    template = extract_template(folder, to or default_destination(Path.cwd(), name or
                                _descriptor_name(folder)), name=name,
                                tasks=parse_tasks(tasks), variables=chosen, force=force)
    created = preview(template, strict=False)
    for d in created.errors:
        _err().print(_render(d), markup=False)
    where = _display(str(template.folder))
    typer.echo(f"wrote {where}/: template {template.ref} with {len(template.variables)} "
               f"variables; next: specs new {template.name if to is None else where}")
    raise typer.Exit(EXIT_INVALID if created.errors else EXIT_OK)


def _descriptor_name(folder: Path) -> str:
    import re

    from specs.spec.load import load_spec

    return re.sub(r"[^0-9a-z]+", "_", load_spec(folder).descriptor.lower()).strip("_")


def _confirm_candidates(found: list[Any]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    console = _err()
    for candidate in found:
        console.print(f"Make {candidate.text!r} ({candidate.count} times) a variable? "
                      f"[name {candidate.name} / another name / n]: ", markup=False, end="")
        try:
            answer = input().strip()
        except EOFError:
            break
        if answer.lower() in ("n", "no"):
            continue
        chosen[answer if answer and answer.lower() not in ("y", "yes") else candidate.name] = \
            candidate.text
    return chosen


@templates_app.command("sync")
def sync_cmd() -> None:
    """Fetch the git sources of templates.toml again, and list every layer (highest first)
    with the folder it reads."""
    library = discover(sync=True)
    for layer in library.layers:
        where = str(layer.folder) if layer.folder is not None else "-"
        state = f"  ({layer.problem})" if layer.problem else \
            "" if layer.folder is not None and layer.folder.is_dir() else "  (no folder)"
        origin = "" if layer.origin == where else f"  <- {layer.origin}"
        typer.echo(f"{layer.name:<9} {where}{origin}{state}")
    for problem in library.problems:
        _err().print(f"specs: warning: {problem}", markup=False)
    raise typer.Exit(EXIT_INVALID if any(layer.problem for layer in library.layers) else EXIT_OK)


@templates_app.command("update")
def update_cmd(
    path: Annotated[Path, typer.Argument(help="A spec folder made by `specs new`.")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show the merge (a diff) and what would be refused; write nothing.")]
    = False,
    keep_mine: Annotated[bool, typer.Option(
        "--keep-mine", help="Resolve every conflict with your version.")] = False,
    take_template: Annotated[bool, typer.Option(
        "--take-template", help="Resolve every conflict with the new template's version.")]
    = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Remove steps past runs used; go back to an older template version.")]
    = False,
    var: VarOpt = None,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where runs are kept (default: $SPECS_STATE_DIR or ./.specs).")]
    = None,
    no_input: NoInputOpt = False,
) -> None:
    """Re-render a spec from the newer version of its template and merge it with your edits,
    task by task and step by step.

    Your edits are kept, the template's changes applied; a part both changed is a conflict,
    listed and never resolved silently (nothing is written until --keep-mine or
    --take-template decides). Refuses to remove a step a past run used, unless --force.
    Exit code 0 when the spec is updated (or already up to date), 1 when refused.
    """
    from specs.api.runs import state_dir as default_state_dir
    from specs.templates.update import apply_update, plan_update

    if keep_mine and take_template:
        raise UsageError("--keep-mine and --take-template exclude each other")
    prefer: Literal["mine", "theirs"] | None = \
        "mine" if keep_mine else "theirs" if take_template else None
    plan = plan_update(path, _library(), given=parse_vars(var),
                       ask=terminal_asker if interactive(no_input) else None, prefer=prefer,
                       state_dir=default_state_dir(state_dir))
    where = _display(str(plan.folder))
    head = f"{where}: {plan.provenance.ref} -> {plan.template.ref} ({plan.template.layer})"
    for name in plan.dropped_answers:
        _err().print(f"specs: note: {plan.template.ref} no longer asks {name!r}; its answer "
                     "is dropped", markup=False)
    if not plan.changed and not plan.conflicts:
        typer.echo(f"{head}: up to date, nothing to change")
        raise typer.Exit(EXIT_OK)
    typer.echo(head)
    for merge in plan.changed:
        typer.echo(f"  {'removes' if merge.data is None else 'changes'} {merge.path}")
    for conflict in plan.conflicts:
        resolved = f" (kept {'yours' if keep_mine else 'the template' + chr(39) + 's'})" \
            if prefer else ""
        typer.echo(f"  conflict: {conflict.render()}{resolved}")
    for ref in plan.removed:
        runs = plan.history.get(ref)
        typer.echo(f"  removes step {ref}" + (f" (used by runs {', '.join(runs)})"
                                               if runs else ""))
    for d in plan.diagnostics:
        if d.severity is not Severity.INFO:
            _err().print(_render(d), markup=False)
    if dry_run:
        typer.echo(plan.diff(), nl=False)
        refused = plan.errors or (plan.conflicts and not prefer) or (
            (plan.history or plan.older) and not force)
        raise typer.Exit(EXIT_INVALID if refused else EXIT_OK)
    written = apply_update(plan, force=force)
    typer.echo(f"updated {where}: {len(written)} files from {plan.template.ref}")


# --- specs new -----------------------------------------------------------------------------


@app.command("new")
def new_cmd(
    template_name: Annotated[str, typer.Argument(
        metavar="TEMPLATE", help="A template name (see `specs templates`) or folder.")],
    descriptor: Annotated[str | None, typer.Argument(
        help="The new spec's short name (default: the template's).", show_default=False)]
    = None,
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where the spec folder (spec_DESCRIPTOR/) is made.")] = Path("."),
    var: VarOpt = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Render and validate, print what would be written; write nothing.")]
    = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite the files of an existing spec folder.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse the spec when a quality rule fails, too.")] = False,
    no_input: NoInputOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a new spec from a template: answer its variables (asked on a terminal, else
    --var), render, validate, write DIR/spec_DESCRIPTOR/ with a .specs-template.toml.

    Exit code 0 when the spec was written (or would be, with --dry-run), 1 when it does not
    validate or the folder exists (without --force), 2 for a bad answer or option.
    """
    template = _template(template_name)
    ask = terminal_asker if interactive(no_input) else None
    created = new_spec(template, descriptor, directory, parse_vars(var), ask=ask,
                       force=force, dry_run=dry_run, strict=strict)
    _report_created(created, template, dry_run=dry_run, as_json=as_json)
    raise typer.Exit(EXIT_INVALID if created.errors else EXIT_OK)


def _report_created(created: Created, template: Template, *, dry_run: bool, as_json: bool,
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


# --- specs init ----------------------------------------------------------------------------


@app.command("init")
def init_cmd(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where project_constitution.toml goes.")] = Path("."),
    dna_folder: Annotated[bool, typer.Option(
        "--dna-folder", help="Write it in DIR/<DNA code>/ (the original's SPECs/<DNA>/ "
        "layout); another project's code there is avoided.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="The project's name.")] = None,
    purpose: Annotated[str | None, typer.Option(
        "--purpose", help="What the project is trying to achieve.")] = None,
    stack: Annotated[str | None, typer.Option(
        "--stack", help="The required software stack, or flexible.")] = None,
    dependency: Annotated[list[str] | None, typer.Option(
        "--dependency", help="An external dependency (repeatable).")] = None,
    backup_tool: Annotated[list[str] | None, typer.Option(
        "--backup-tool", help="A custom backup tool (repeatable).")] = None,
    autonomy: Annotated[str | None, typer.Option(
        "--autonomy", metavar="silent|dynamic|collaborative",
        help="How autonomous runs are.")] = None,
    risk: Annotated[str | None, typer.Option(
        "--risk", metavar="high|moderate|low", help="Risk tolerance (default: inferred "
        "from the purpose).")] = None,
    testing: Annotated[str | None, typer.Option(
        "--testing", metavar="basic|standard|comprehensive", help="Testing rigour.")] = None,
    user_facing: Annotated[bool | None, typer.Option(
        "--user-facing/--not-user-facing", help="Whether it faces users (default: "
        "inferred).", show_default=False)] = None,
    complexity: Annotated[str | None, typer.Option(
        "--complexity", metavar="simple|moderate|complex", help="Default: inferred.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing constitution (its version history is kept).")]
    = False,
    no_input: NoInputOpt = False,
) -> None:
    """Write project_constitution.toml from a short interview (or these options), with the
    deterministic DNA code of the project's name.

    Asks on a terminal what the options do not say; without a terminal, --name and --purpose
    are needed and the rest has defaults (risk, complexity and user-facing are inferred from
    the purpose). Exit code 0 when written, 1 when the file exists (without --force), 2 for a
    bad answer.
    """
    import tomllib

    from specs.atomic import write_text_atomic
    from specs.templates.dna import constitution_document, dna_code, interview, unique_dna_code

    given: dict[str, Any] = {k: v for k, v in {
        "name": name, "purpose": purpose, "stack": stack, "dependencies": dependency,
        "backup_tools": backup_tool, "autonomy": autonomy, "risk": risk, "testing": testing,
        "user_facing": user_facing, "complexity": complexity}.items() if v is not None}
    answers = interview(given, ask=terminal_asker if interactive(no_input) else None)
    code = unique_dna_code(answers["name"], directory) if dna_folder else \
        dna_code(answers["name"])
    path = (directory / code if dna_folder else directory) / "project_constitution.toml"
    history: list[dict[str, Any]] = []
    if path.exists():
        if not force:
            raise SpecExists(f"{path} already exists; pass --force to replace it (its version "
                             "history is kept)")
        try:
            history = list(tomllib.loads(path.read_text(encoding="utf-8")).get(
                "version_history", []))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            history = []
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, constitution_document(answers, code, history=history))
    inferred = answers["inferred"]
    typer.echo(f"wrote {_display(str(path))}: DNA code {code} for {answers['name']!r}")
    typer.echo(f"  risk {answers['risk']} ({inferred['risk_reason']}), mode "
               f"{answers['autonomy']}, testing {answers['testing']}, complexity "
               f"{answers['complexity']}, user-facing {display_bool(answers['user_facing'])}, "
               f"domain {inferred['domain']}")


# --- specs draft ---------------------------------------------------------------------------


@app.command("draft")
def draft_cmd(
    goal: Annotated[str, typer.Argument(metavar="GOAL", help="The goal, in a sentence.",
                                        show_default=False)],
    template_name: Annotated[str | None, typer.Option(
        "--template", metavar="NAME", help="The template whose shape to follow (default: the "
        "best `specs templates suggest` finds; `none` for none).")] = None,
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where the spec folder (spec_DESCRIPTOR/) is made.")] = Path("."),
    descriptor: Annotated[str | None, typer.Option(
        "--descriptor", help="The spec's short name (default: from the goal).")] = None,
    provider: Annotated[str | None, typer.Option(
        "--provider", metavar="openai|anthropic", help="The LLM provider (openai: any "
        "OpenAI-compatible server, see OPENAI_BASE_URL).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="The LLM model name.")] = None,
    repairs: Annotated[int, typer.Option(
        "--repairs", min=0, max=10, help="Repair rounds after the first answer.")] = 3,
    strict: Annotated[bool, typer.Option(
        "--strict/--no-strict", help="The quality rules must pass too (the default).")] = True,
    record: Annotated[bool, typer.Option(
        "--record", help="Store the exchanges in the draft's folder (exchanges.jsonl).")]
    = False,
    replay: Annotated[str | None, typer.Option(
        "--replay", metavar="DRAFT", help="Answer from that draft's recorded exchanges (no "
        "network).")] = None,
    max_cost: Annotated[float | None, typer.Option(
        "--max-cost", min=0, metavar="USD", help="Stop before a call would cost more.")]
    = None,
    max_tokens: Annotated[int | None, typer.Option(
        "--max-tokens", min=0, metavar="N", help="Stop before a call would use more tokens.")]
    = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Draft and validate, but write no spec.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite the files of an existing spec folder.")] = False,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where drafts are kept (default: $SPECS_STATE_DIR or ./.specs).")]
    = None,
) -> None:
    """Draft a spec for GOAL with the configured LLM, in a template's shape; feed the
    validator's diagnostics back for up to --repairs rounds; write it only when it validates.

    Every answer is kept in .specs/drafts/<id>/. Exit code 0 when the spec validated (and was
    written), 1 when it still has errors after the repairs (nothing written), 2 for a usage or
    provider configuration error.
    """
    import asyncio
    import os
    import secrets
    import time

    from specs.api.runs import state_dir as default_state_dir
    from specs.llm.budget import BudgetTracker
    from specs.llm.providers import RecordingProvider, ReplayProvider, provider_from_settings
    from specs.templates.draft import draft_spec
    from specs.templates.suggest import suggest

    if not goal.strip():
        raise UsageError("the goal is empty; describe what the spec should achieve")
    if record and replay:
        raise UsageError("--record and --replay exclude each other")
    library = _library()
    template: Template | None = None
    if template_name not in (None, "none"):
        template = _template(template_name or "", library)
    elif template_name is None:
        ranked = suggest(goal, library.templates.values(), limit=1)
        template = ranked[0].template if ranked else None
        if template is not None:
            _err().print(f"specs: drafting in the shape of {template.ref} "
                         f"({'; '.join(ranked[0].reasons)}); --template to choose another",
                         markup=False)
    drafts = default_state_dir(state_dir) / "drafts"
    draft_id = f"draft_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}_{secrets.token_hex(2)}"
    record_dir = drafts / draft_id
    if replay:
        cassette = drafts / replay / "exchanges.jsonl"
        if not cassette.is_file():
            raise UsageError(f"--replay {replay}: {cassette} not found (record with --record)")
        llm: Any = ReplayProvider(cassette)
    else:
        try:
            llm = provider_from_settings(None, os.environ, provider=provider, model=model)
        except ProviderError as exc:
            _err().print(f"specs: error: {exc}", markup=False)
            raise typer.Exit(EXIT_USAGE) from None
        if record:
            llm = RecordingProvider(llm, record_dir / "exchanges.jsonl")
    budget = BudgetTracker(max_cost, max_tokens)

    async def go() -> Any:
        try:
            try:
                await llm.check()  # pre-flight: key, server reachable (one line, exit 2)
            except ProviderError as exc:
                _err().print(f"specs: error: {exc}", markup=False)
                raise typer.Exit(EXIT_USAGE) from None
            return await draft_spec(goal, llm, directory=directory, descriptor=descriptor,
                                    template=template, repairs=repairs, strict=strict,
                                    force=force, dry_run=dry_run, budget=budget,
                                    record_dir=record_dir)
        finally:
            await llm.aclose()

    result = asyncio.run(go())
    for round_ in result.rounds:
        state = "validates" if not round_.errors else f"{len(round_.errors)} errors"
        _err().print(f"specs: round {round_.number}: {state}", markup=False)
    where = _display(str(result.folder))
    kept = _display(str(record_dir))
    if not result.valid:
        for d in result.rounds[-1].diagnostics:
            _err().print(f"  {_render(d)}", markup=False)
        _err().print(f"specs: {where} not written: the draft still has "
                     f"{len(result.rounds[-1].errors)} errors after "
                     f"{len(result.rounds) - 1} repairs; the "
                     f"answers are in {kept}/", markup=False)
        raise typer.Exit(EXIT_INVALID)
    created = result.created
    if created is not None and created.errors:
        for d in created.errors:
            _err().print(_render(d), markup=False)
        raise typer.Exit(EXIT_INVALID)
    spent = f"{result.tokens} tokens" + (f", ${result.cost_usd:.4f}" if result.cost_usd else "")
    verb = "drafted (dry run, nothing written)" if dry_run else "wrote"
    typer.echo(f"{verb} {where}/ in {len(result.rounds)} rounds ({spent}; draft {draft_id}); "
               f"next: specs run {where}")
