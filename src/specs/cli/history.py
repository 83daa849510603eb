"""``specs history ...``: the run history database (docs/history.md).

``rebuild`` projects the state folder's runs again from their events; ``import`` adds
events.jsonl and the original project's progress_*.json files; ``runs`` and ``show`` read the
history (the same answers ``specs runs`` and ``specs show-run`` give from it: :func:`print_runs`
and :func:`print_run` render both); ``changes`` lists the edits ``specs insights --apply`` made.
The database is ``<state dir>/history.db`` (SQLite), or ``--database-url`` /
``$SPECS_DATABASE_URL``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from specs.api.runs import state_dir
from specs.cli.common import _err, app
from specs.errors import PathNotFound

if TYPE_CHECKING:
    from specs.history import (
        RunDetail,
    )


history_app = typer.Typer(name="history", no_args_is_help=True, rich_markup_mode=None,
                          help="The run history database: rebuild, import, list, show.")
app.add_typer(history_app)

StateDir = Annotated[Path | None, typer.Option(
    "--state-dir", help="Where runs are kept (default: $SPECS_STATE_DIR or ./.specs).")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", metavar="URL", help="The history database (SQLAlchemy URL; default: "
    "$SPECS_DATABASE_URL, else SQLite at <state dir>/history.db).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


@history_app.command("rebuild")
def rebuild_cmd(state: StateDir = None, database_url: DatabaseUrl = None,
                as_json: AsJson = False) -> None:
    """Project every run of the state folder again from its events.jsonl (other rows kept)."""
    from specs.history import open_store, rebuild
    root = state_dir(state)
    store = open_store(root, database_url)
    try:
        results = rebuild(store, root)
    finally:
        store.close()
    if as_json:
        typer.echo(_dumps([r.__dict__ for r in results]))
        return
    done = [r for r in results if r.kind != "skipped"]
    for result in results:
        if result.kind == "skipped":
            _err().print(f"{result.path}: skipped: {result.message}", markup=False)
    typer.echo(f"rebuilt {len(done)} runs from {root / 'runs'}")


@history_app.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(
        help="events.jsonl or progress_*.json files, or folders holding them.")],
    state: StateDir = None, database_url: DatabaseUrl = None, as_json: AsJson = False,
) -> None:
    """Import runs' events.jsonl and the original project's progress_*.json (best effort)."""
    from specs.history import import_paths, open_store
    for path in paths:
        if not path.exists():
            raise PathNotFound(path)
    store = open_store(state_dir(state), database_url)
    try:
        results = import_paths(store, paths)
    finally:
        store.close()
    if as_json:
        typer.echo(_dumps([r.__dict__ for r in results]))
        return
    for r in results:
        what = f"{r.kind} {r.run_id}" if r.run_id else r.kind
        typer.echo(f"{r.path}: {what}" + (f": {r.message}" if r.message else ""))
    imported = sum(r.kind != "skipped" for r in results)
    typer.echo(f"imported {imported} of {len(results)} files")


def print_runs(rows: list[dict[str, Any]], as_json: bool) -> None:
    """The runs as a table (full ids, newest first) or JSON."""
    if as_json:
        typer.echo(_dumps(rows))
        return
    table = Table("run", "spec", "status", "goal", "steps", "started", "duration", "source")
    for r in rows:
        seconds = f"{r['duration_ms'] / 1000:.1f} s" if r.get("duration_ms") is not None else ""
        table.add_row(r["run_id"], r["descriptor"], r["status"], r["goal"] or "",
                      f"{r['steps_completed']}/{r['steps_total']}", r["started_at"] or "",
                      seconds, r["source"])
    Console(highlight=False, width=max(160, Console().width)).print(table)


def print_run(detail: RunDetail, as_json: bool) -> None:
    """One run's steps and their failed attempts, or its rows as JSON."""
    if as_json:
        typer.echo(_dumps(detail.to_dict()))
        return
    run = detail.run
    console = Console(highlight=False)
    goal = f", goal {run['goal']}" if run["goal"] else ""
    console.print(f"{run['run_id']} {run['descriptor']}: {run['status']}{goal} "
                  f"({run['source']})", markup=False)
    attempts: dict[str, list[dict[str, Any]]] = {}
    for attempt in detail.attempts:
        attempts.setdefault(attempt["step"], []).append(attempt)
    for step in detail.steps:
        mine = attempts.get(step["step"], [])
        console.print(f"  {step['step']} {step['status']:<9} {step['method_used'] or '':<10} "
                      f"{len(mine)} attempts  {step['description'] or ''}", markup=False)
        for a in mine:
            if a["outcome"] not in ("success", None):
                console.print(f"      {a['method']} #{a['attempt']}: {a['failure_class']}: "
                              f"{a['failure_reason']}", markup=False, style="dim")
    for gate in detail.gates:
        console.print(f"  gate {gate['gate']} ({gate['kind']}, step {gate['step']}): "
                      f"{gate['response'] or 'waiting'}", markup=False)


@history_app.command("runs")
def runs_cmd(
    spec: Annotated[str | None, typer.Option(
        "--spec", help="Only this spec: a descriptor, or a spec folder or parameters file.")] =
    None,
    status: Annotated[str | None, typer.Option(
        "--status", help="Only runs with this status (completed, failed, halted, "
        "awaiting_human...).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only runs started since: a date, an ISO time, or an age (7d, 12h).")] =
    None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N runs.")] = None,
    state: StateDir = None, database_url: DatabaseUrl = None, as_json: AsJson = False,
) -> None:
    """The runs in the history, newest first, with their full ids (the state folder's runs
    that the history lacks are added first)."""
    from specs.history import list_runs, open_store, parse_since, sync
    root = state_dir(state)
    store = open_store(root, database_url)
    try:
        sync(store, root)
        rows = list_runs(store, spec=spec, status=status,
                         since=parse_since(since) if since else None, limit=limit)
    finally:
        store.close()
    print_runs(rows, as_json)


@history_app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    state: StateDir = None, database_url: DatabaseUrl = None, as_json: AsJson = False,
) -> None:
    """One run from the history: its steps, attempts and gates."""
    from specs.history import open_store, run_detail, sync
    root = state_dir(state)
    store = open_store(root, database_url)
    try:
        sync(store, root)
        detail = run_detail(store, run)
    finally:
        store.close()
    print_run(detail, as_json)


@history_app.command("changes")
def changes_cmd(
    spec: Annotated[str | None, typer.Option(
        "--spec", help="Only this spec: a descriptor, or a parameters file.")] = None,
    state: StateDir = None, database_url: DatabaseUrl = None, as_json: AsJson = False,
) -> None:
    """The edits `specs insights --apply` made to parameters files, newest first."""
    from specs.history import list_changes, open_store
    store = open_store(state_dir(state), database_url)
    try:
        rows = list_changes(store, spec=spec)
    finally:
        store.close()
    if as_json:
        typer.echo(_dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['applied_at']} {r['suggestion_id']} ({r['kind']}) "
                   f"{r['parameters_path']}: {r['summary']}")
    if not rows:
        typer.echo("no changes applied by `specs insights --apply`")
