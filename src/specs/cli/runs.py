"""The commands that inspect and answer runs: ``specs approve``, ``specs reject``, ``specs runs``
and ``specs show-run``.

Registered on :data:`specs.cli.common.app`; see that module for the exit codes. The runs are read
from the state folder (:mod:`specs.api.runs`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from specs.api.runs import answer_gate, find_run, list_runs, show_run, state_dir
from specs.cli.common import EXIT_USAGE, app

if TYPE_CHECKING:
    from specs.engine.state import RunState


def _warn(text: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"specs: warning: {text}",
                                                                markup=False)


StateDir = Annotated[Path | None, typer.Option(
    "--state-dir", help="Where runs are kept (default: $SPECS_STATE_DIR or ./.specs).")]


def spent(state: RunState) -> str:
    """``, 3 LLM calls, 1,234 tokens, $0.0012`` (empty when the run made no LLM call)."""
    from specs.llm.budget import format_cost
    usage = state.llm_usage
    parts = []
    if usage["calls"]:
        calls = usage["calls"]
        parts.append(f"{calls} LLM call{'s' if calls != 1 else ''}, "
                     f"{usage['total_tokens']:,} tokens")
        if usage["calls"] > usage["unpriced_calls"]:
            parts.append(format_cost(usage["cost_usd"])
                         + (" (some calls of unknown price)" if usage["unpriced_calls"] else ""))
        else:
            parts.append("cost unknown")
    if usage["cached_attempts"]:
        parts.append(f"{usage['cached_attempts']} attempts from the cache")
    return "".join(f", {p}" for p in parts)


def _answer(run: str, step: str | None, response: str, state: Path | None) -> None:
    run_dir = find_run(state_dir(state), run)
    answer = answer_gate(run_dir, step, response)
    if answer.live:
        typer.echo(f"{run_dir.name}: {answer.gate} answered '{answer.response}'; the run, "
                   "waiting at it, goes on")
    else:
        typer.echo(f"{run_dir.name}: {answer.gate} answered '{answer.response}'; continue "
                   f"with `specs resume {run_dir.name}`")


@app.command("approve")
def approve_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    step: Annotated[str | None, typer.Argument(help="The step ref, e.g. 2.1.")] = None,
    guidance: Annotated[str | None, typer.Option(
        "--guidance", help="Approve with guidance added to the step's context.")] = None,
    state: StateDir = None,
) -> None:
    """Approve a paused run's pending decision (optionally with guidance)."""
    _answer(run, step, f"guidance:{guidance}" if guidance else "approve", state)


@app.command("reject")
def reject_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    step: Annotated[str | None, typer.Argument(help="The step ref, e.g. 2.1.")] = None,
    state: StateDir = None,
) -> None:
    """Reject a pending decision: skip the step before it runs; abort after a failure."""
    _answer(run, step, "reject", state)


@app.command("runs")
def runs_cmd(
    state: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
    spec: Annotated[str | None, typer.Option(
        "--spec", help="Only the runs of this spec (its descriptor or folder).")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="Only the runs with this status (completed, halted, ...).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only the runs started since: a date, an ISO time, or 7d, 12h.")]
    = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", metavar="URL", help="The run history database (default: "
        "$SPECS_DATABASE_URL, else history.db in the state folder).")] = None,
) -> None:
    """List the runs of the run history (with the state folder's, the nearest .specs),
    newest first, with their full ids; a run whose process died shows as interrupted
    (continue it with `specs resume`)."""
    from specs.llm.budget import format_cost
    rows = list_runs(state_dir(state), spec=spec, status=status, since=since,
                     database_url=database_url)
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    header = ("run", "spec", "status", "goal", "steps", "started", "tokens", "cost",
              "waiting for")
    cells = [(r.run_id, r.descriptor, r.status, r.goal or "", f"{r.steps_done}/{r.steps_total}",
              r.started, f"{r.tokens:,}" if r.llm_calls else "",
              format_cost(r.cost_usd) if r.cost_usd is not None else "", r.pending_gate or "")
             for r in rows]
    if not sys.stdout.isatty():  # piped: plain columns, nothing cut
        widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
        for row in [header, *cells]:
            typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))
                       .rstrip())
        return
    table = Table(*header)
    table.columns[0].no_wrap = True  # the id is what approve and resume need, whole
    table.columns[0].min_width = max((len(c[0]) for c in cells), default=3)
    for row in cells:
        table.add_row(*row)
    Console(highlight=False).print(table)


@app.command("show-run")
def show_run_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    state: StateDir = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the run's progress document as JSON.")] = False,
) -> None:
    """One run: its steps, attempts and decisions, rebuilt from its events."""
    view = show_run(state_dir(state), run, _warn)
    if view.document is None or view.state is None:
        summary = view.summary
        typer.echo(json.dumps(summary.__dict__, indent=2) if as_json else
                   f"{summary.run_id}: {summary.status} ({view.spec_problem})")
        raise typer.Exit(0 if view.spec_problem == "the spec is no longer there" else EXIT_USAGE)
    document, run_state = view.document, view.state
    if as_json:
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    console = Console(highlight=False)
    console.print(f"[bold]{run_state.run_id}[/bold] {run_state.descriptor}: {run_state.status}"
                  + (f", goal {document.get('goal_achievement_status')}"
                     if document.get("goal_achievement_status") else ""))
    if run_state.llm_usage["calls"] or run_state.llm_usage["cached_attempts"]:
        console.print("LLM:" + spent(run_state).removeprefix(","), markup=False)
    for task in document.get("tasks", []):
        console.print(f"Task {task.get('ref')} {task.get('description')}: {task.get('status')}",
                      markup=False)
        for step in task.get("steps", []):
            console.print(f"  {step.get('ref')} {step.get('status'):<9} "
                          f"{step.get('method_used') or '':<12} "
                          f"{len(step.get('attempts') or [])} attempts  "
                          f"{step.get('description')}", markup=False)
            for attempt in step.get("attempts") or []:
                if attempt.get("outcome") is None:
                    console.print(f"      {attempt.get('method')} #{attempt.get('attempt')}: "
                                  f"started {attempt.get('started_at')}, not ended",
                                  markup=False, style="dim")
                elif attempt.get("outcome") != "success":
                    console.print(f"      {attempt.get('method')} #{attempt.get('attempt')}: "
                                  f"{attempt.get('outcome')}: {attempt.get('failure_reason')}",
                                  markup=False, style="dim")
