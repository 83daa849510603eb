"""``specs logs RUN [STEP] [--follow]``: what a run's attempts printed.

Registered on :data:`specs.cli.common.app`; the outputs are read by :mod:`specs.api.logs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specs.api.logs import attempt_logs, follow
from specs.api.runs import find_run, read_run, state_dir
from specs.cli.common import app
from specs.errors import UsageError


@app.command("logs")
def logs_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    step: Annotated[str | None, typer.Argument(help="Only this step, e.g. 1.2.")] = None,
    follow_: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing as the run goes on, until it stops.")] = False,
    state: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where runs are kept (default: the nearest .specs).")] = None,
) -> None:
    """Print each attempt's output: a command's stdout and stderr, a cognitive step's model
    and tool calls and its answer's summary; with --follow, as they appear."""
    run_dir = find_run(state_dir(state), run)
    events = read_run(run_dir)
    refs = {getattr(e, "step", None) for e in events}
    if step is not None and step not in refs:
        raise UsageError(f"run {run_dir.name} has no step {step!r} that ran; see `specs "
                         f"show-run {run_dir.name}`")
    if follow_:
        for line in follow(run_dir, step):
            typer.echo(line)
        return
    for attempt in attempt_logs(run_dir, events, step):
        typer.echo(f"== {attempt.title} ==")
        for line in attempt.calls:
            typer.echo(f"  {line}")
        for stream in ("stdout", "stderr"):
            text = attempt.read(stream)
            if text:
                typer.echo(f"--- {stream} ---")
                typer.echo(text.rstrip("\n"))
        if not attempt.files and attempt.ended is not None and attempt.ended.output_summary:
            typer.echo(attempt.ended.output_summary)
