"""The templates library on the command line: ``specs templates`` and its subcommands (show,
check, suggest, update, extract, sync); ``specs new``, ``specs init`` and ``specs draft`` live
in :mod:`specs.cli.templates_new`, imported from here (docs/templates.md).

Registered on :data:`specs.cli.common.app`; see that module for the exit codes. Each command
parses its options, calls :mod:`specs.templates` and prints; questions are asked on a terminal
only (stdin and stderr both a TTY, and no ``--no-input``), else a missing answer is one line
naming the ``--var`` to pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from specs.cli import templates_new  # noqa: F401  (registers specs new, init and draft)
from specs.cli.common import EXIT_INVALID, EXIT_OK, _display, _err, _render, app
from specs.cli.spec import spec_tree
from specs.cli.templates_shared import (
    JsonOpt,
    NoInputOpt,
    VarOpt,
    interactive,
    library_of,
    parse_vars,
    template_of,
    template_record,
    terminal_asker,
)
from specs.diagnostics import Severity
from specs.errors import UsageError
from specs.templates import Template, discover, display, preview

templates_app = typer.Typer(
    name="templates", no_args_is_help=False, add_completion=False, rich_markup_mode=None,
    help="The templates library: list, show, check, suggest, update, extract, sync.")
app.add_typer(templates_app)


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
    library = library_of()
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
    template = template_of(name)
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
    library = library_of()
    targets = [template_of(n, library) for n in names] if names else \
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
    found = suggest(goal, library_of().templates.values(), limit=limit)
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
    source: Annotated[str | None, typer.Option(
        "--from", metavar="TEMPLATE", help="The template to update from, a name or a folder "
        "(default: the one recorded in .specs-template.toml, by name).")] = None,
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
    library = library_of()
    plan = plan_update(path, library, given=parse_vars(var),
                       ask=terminal_asker if interactive(no_input) else None, prefer=prefer,
                       state_dir=default_state_dir(state_dir),
                       template=template_of(source, library) if source else None)
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
