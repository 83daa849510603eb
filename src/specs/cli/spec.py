"""The commands that read a spec: validate, show, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.tree import Tree

from specs.cli.common import EXIT_INVALID, EXIT_OK, _display, _err, _render, app
from specs.diagnostics import Diagnostic, Severity
from specs.spec.load import LoadedSpec, load_spec
from specs.spec.model import Spec
from specs.spec.validate import validate as run_checks


@app.command("validate")
def validate_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Spec folders or parameters files.",
                                                show_default=False)],
    strict: Annotated[bool, typer.Option(
        "--strict", help="Treat the constitution's quality rules as errors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print diagnostics as JSON.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print errors and warnings only (no info).")] = False,
) -> None:
    """Load and check specs; print every problem as file:line:col: severity CODE message.

    Exit code 0 when every spec is valid, 1 when any has an error, 2 for a missing path.
    """
    results = []
    for path in paths:
        loaded = load_spec(path)
        results.append((path, loaded, run_checks(loaded, strict=strict)))
    failed = any(d.severity is Severity.ERROR for _, _, found in results for d in found)
    if as_json:
        payload = [{"path": str(path), "valid": not any(d.severity is Severity.ERROR
                                                         for d in found),
                    "descriptor": loaded.descriptor,
                    "diagnostics": [d.to_dict() for d in found]}
                   for path, loaded, found in results]
        typer.echo(json.dumps(payload if len(payload) > 1 else payload[0], indent=2))
    else:
        for _, _, found in results:
            for d in found:
                if not (quiet and d.severity is Severity.INFO):
                    typer.echo(_render(d))
        _err().print(validate_summary([found for _, _, found in results]))
    raise typer.Exit(EXIT_INVALID if failed else EXIT_OK)


def validate_summary(results: list[list[Diagnostic]]) -> str:
    """The one line ``specs validate`` ends with: how many specs are invalid out of how many,
    then the counts (``1 of 3 specs invalid: 2 errors, 5 warnings, 0 info``)."""
    invalid = sum(any(d.severity is Severity.ERROR for d in found) for found in results)
    total = len(results)
    specs = f"{total} spec{'s' * (total != 1)}"
    if not invalid:
        verdict = f"{specs} valid"
    elif total == 1:
        verdict = f"{specs} invalid"
    else:
        verdict = f"{invalid} of {specs} invalid"
    counts = {s: sum(d.severity is s for found in results for d in found) for s in Severity}
    errors, warnings = counts[Severity.ERROR], counts[Severity.WARNING]
    return (f"{verdict}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}, {counts[Severity.INFO]} info")


@app.command("show")
def show_cmd(
    path: Annotated[Path, typer.Argument(help="A spec folder or parameters file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the loaded model as JSON.")] =
    False,
    expanded: Annotated[bool, typer.Option(
        "--expanded", help="Show the tasks of included specs, each with the file and alias it "
        "comes from.")] = False,
) -> None:
    """Show the tasks/steps/backups tree with critical flags, modes, retries and actions.

    An included spec is one line (its alias, file and task count) unless --expanded is given.
    --json always holds every task (with its namespace and folder) and the included specs.
    A spec with errors is shown as far as it loaded, its errors follow on stderr (and under
    "errors" in --json), and the exit code is 1.
    """
    loaded = load_spec(path)
    errors = [d for d in run_checks(loaded) if d.severity is Severity.ERROR]
    spec = loaded.spec
    if spec is None:  # nothing to show: say why
        for d in errors or loaded.diagnostics:
            _err().print(_render(d), markup=False)
        raise typer.Exit(EXIT_INVALID)
    if as_json:
        document = show_document(loaded, spec)
        document["errors"] = [d.to_dict() for d in errors]
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        console = Console(highlight=False, soft_wrap=False)
        console.print(spec_tree(loaded, spec, expanded=expanded))
    for d in errors:
        _err().print(_render(d), markup=False)
    raise typer.Exit(EXIT_INVALID if errors else EXIT_OK)


def show_document(loaded: LoadedSpec, spec: Spec) -> dict[str, Any]:
    return {
        "descriptor": loaded.descriptor,
        "files": {"folder": str(loaded.folder), "parameters": str(loaded.parameters_path),
                  "markdown": str(loaded.markdown_path) if loaded.markdown_path else None,
                  "exe": str(loaded.exe_path) if loaded.exe_path else None,
                  "project_constitution": str(loaded.project.path) if loaded.project else None,
                  "progress": str(loaded.progress_path), "notepad": str(loaded.notepad_path)},
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "includes": [record.to_dict() for record in loaded.composition.included]
        if loaded.composition else [],
    }


def spec_tree(loaded: LoadedSpec, spec: Spec, expanded: bool = False) -> Tree:
    """The Rich tree that ``specs show`` prints (``expanded``: included specs' tasks too)."""
    mode = spec.execution.default_mode
    title = f"[bold]{loaded.descriptor}[/bold]: {_esc(spec.goal.description) or '(no goal)'}"
    tree = Tree(title)
    composed = loaded.composition
    tree.add(f"mode {mode} · strategy {spec.error_propagation.propagation_strategy or 'by mode'}"
             f" · {len(spec.tasks)} tasks · {spec.step_count()} steps"
             + (f" · {len(composed.included)} included specs" if composed else "")
             + (f" · project {loaded.project.path.parent.name}" if loaded.project else ""))
    if composed is not None and expanded:
        includes = tree.add("[bold]Includes[/bold]")
        for record in composed.included:
            where = f"{_display(record.location.file)}:{record.location.line}"
            also = [a for a in record.aliases if a != record.namespace]
            source = _display(str(record.loaded.parameters_path))
            includes.add(f"{record.namespace} ← {_esc(source)} [dim](included at {_esc(where)}"
                         + (f"; also as {', '.join(also)}" if also else "") + ")[/dim]"
                         + (f" goal: {_esc(record.goal)}" if record.goal else ""))
    collapsed: set[str] = set()
    for task in spec.tasks:
        origin = composed.origin(task) if composed is not None else None
        if origin is not None and not expanded:
            top = (task.namespace or "").split(".")[0]
            if top not in collapsed:
                collapsed.add(top)
                _include_node(tree, loaded, top)
            continue
        node = tree.add(f"[bold]Task {task.ref}[/bold] {_esc(task.description)}"
                        + (" [research]" if task.research_enabled else "")
                        + (f" depends on {task.depends_on}" if task.depends_on else "")
                        + (f" [dim]← {origin.namespace}: "
                           f"{_esc(_display(str(origin.loaded.parameters_path)))}[/dim]"
                           if origin is not None else ""))
        for step in task.steps:
            flags = ["critical" if step.critical_flag else "non-critical",
                     step.mode or f"{mode} (run)", f"retries {step.max_retries}",
                     step.effective_method]
            if step.depends_on:
                flags.append(f"after {', '.join(map(str, step.depends_on))}")
            label = f"Step {task.ref}.{step.id} {_esc(step.description)}"
            child = node.add(f"{'[red]●[/red]' if step.critical_flag else '○'} {label} "
                             f"[dim]({', '.join(flags)})[/dim]")
            if step.command:
                child.add(f"[dim]$ {_esc(step.command)}[/dim]")
            if step.expected_output:
                child.add(f"[dim]expect:[/dim] {_esc(step.expected_output)}")
            for backup in step.backups:
                child.add(f"backup {backup.id} [dim]({backup.effective_method}, on "
                          f"{backup.trigger_condition})[/dim] {_esc(backup.description)}")
    return tree


def _include_node(tree: Tree, loaded: LoadedSpec, top: str) -> None:
    """One line for the included spec ``top`` (and what it includes), as ``show`` collapses it."""
    included = loaded.composition.included if loaded.composition else []
    record = next((r for r in included if r.namespace == top), None)
    tasks = [ref for r in included if r.namespace == top or r.namespace.startswith(f"{top}.")
             for ref in r.tasks]
    source = _display(str(record.loaded.parameters_path)) if record else "?"
    tree.add(f"[bold]Include {top}[/bold] ← {_esc(source)} [dim]({len(tasks)} tasks: "
             f"{', '.join(tasks)}; --expanded shows them)[/dim]"
             + (f" {_esc(record.goal)}" if record and record.goal else ""))


def _esc(text: str) -> str:
    return text.replace("[", r"\[")


@app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of parameters files (for Taplo, VS Code's TOML extensions)."""
    typer.echo(json.dumps(json_schema(), indent=2))


def json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://specs-engine.dev/schema/parameters.json",
            "title": "SPEC Engine parameters file (specs)", **schema}
