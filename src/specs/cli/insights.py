"""``specs insights [PATH]``: suggestions to improve a spec, with evidence (docs/insights.md).

Without ``--diff``/``--apply`` it analyses the history (the spec at PATH, or every spec) and
saves the analysis; ``--diff ID`` prints the edit suggestion ID would make and what it would
have changed in past runs; ``--apply ID`` makes it (refused when the file changed since the
analysis). Nothing is applied without ``--apply``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from specs.api.runs import state_dir
from specs.cli.common import app
from specs.cli.history import DatabaseUrl, StateDir
from specs.errors import PathNotFound, UsageError

if TYPE_CHECKING:
    from specs.insights import Report


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in evidence.items():
        if key in ("candidate", "tasks"):
            continue
        if isinstance(value, dict) and "interval95" in value:
            label = f"{value.get('method')} " if value.get("method") else ""
            rate = value["rate"]
            low, high = value["interval95"]
            shown = f"{rate:.0%}" if rate is not None else "-"
            text = f"{label}{value['count']}/{value['of']} = {shown} (95 % CI {low:.0%}-{high:.0%})"
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            text = "; ".join(f"{v.get('count')}x {v.get('example')}" for v in value)
        elif isinstance(value, list):
            text = ", ".join(map(str, value[:10])) + (" ..." if len(value) > 10 else "")
        else:
            text = json.dumps(value) if isinstance(value, dict) else str(value)
        lines.append(f"    {key}: {text}")
    return lines


def _print_report(report: Report) -> None:
    console = Console(highlight=False, soft_wrap=True)
    what = report.descriptor or "every spec in the history"
    console.print(f"insights for {what}: {report.runs_considered} runs counted", markup=False)
    for reason, ids in report.runs_excluded.items():
        console.print(f"  left out ({reason.replace('_', ' ')}): {len(ids)} runs: "
                      f"{', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}", markup=False)
    if not report.suggestions:
        console.print("no suggestion: not enough evidence for any (see --min-runs, "
                      "--min-tries)", markup=False)
    for s in report.suggestions:
        console.print(f"\n{s.id}  [{s.kind}]" + (f" step {s.step}" if s.step else ""),
                      markup=False, style="bold")
        console.print(f"  {s.message}", markup=False)
        for line in _evidence_lines(s.evidence):
            console.print(line, markup=False)
        if s.impact:
            console.print(f"    would have changed: {s.impact}", markup=False)
        if s.kind == "template" and s.evidence.get("candidate"):
            console.print("    candidate template:", markup=False)
            for line in str(s.evidence["candidate"]).splitlines():
                console.print(f"      {line}", markup=False)
        if s.patch is not None and report.parameters_path:
            console.print(f"    see the edit: specs insights PATH --diff {s.id}", markup=False)


@app.command("insights")
def insights_cmd(
    path: Annotated[Path | None, typer.Argument(
        help="A spec folder or parameters file (default: every spec in the history).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only runs started since: a date, an ISO time, or an age (30d).")] =
    None,
    min_runs: Annotated[int, typer.Option(
        "--min-runs", min=1, help="Runs a run-level suggestion needs (default 5).")] = 5,
    min_tries: Annotated[int, typer.Option(
        "--min-tries", min=1, help="Tries of each method a comparison needs (default 10).")] =
    10,
    window: Annotated[int, typer.Option(
        "--window", min=1, help="Only the newest N runs of a spec count (default 100).")] = 100,
    show_diff: Annotated[str | None, typer.Option(
        "--diff", metavar="ID", help="Print the edit suggestion ID makes to the parameters "
        "file, and what it would have changed.")] = None,
    apply_id: Annotated[str | None, typer.Option(
        "--apply", metavar="ID", help="Make the edit of suggestion ID (comments and layout "
        "kept) and record it in the history.")] = None,
    state: StateDir = None, database_url: DatabaseUrl = None,
) -> None:
    """Suggestions to improve a spec from its run history, each with its evidence."""
    from specs.history import open_store, parse_since
    from specs.insights import InsightOptions, analyse, apply, diff, save_report
    if path is not None and not path.exists():
        raise PathNotFound(path)
    root = state_dir(state)
    if show_diff or apply_id:
        if path is None:
            raise UsageError("--diff and --apply need the spec's PATH")
        if show_diff and apply_id:
            raise UsageError("give --diff or --apply, not both")
    if show_diff:
        text, found = diff(root, path, show_diff)  # type: ignore[arg-type]
        typer.echo(text, nl=False)
        typer.echo(f"# {found.id}: {found.message}")
        if found.impact:
            typer.echo(f"# would have changed: {found.impact}")
        return
    store = open_store(root, database_url)
    try:
        if apply_id:
            summary, found = apply(root, store, path, apply_id)  # type: ignore[arg-type]
            typer.echo(f"applied {found.id}: {summary}; recorded in the history "
                       "(`specs history changes`)")
            return
        options = InsightOptions(min_runs=min_runs, min_tries=min_tries, window=window,
                                 since=parse_since(since) if since else None)
        report = analyse(store, path, options)
    finally:
        store.close()
    save_report(root, report)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        _print_report(report)
