"""``specs timeline RUN``: a run's Gantt chart, in the terminal or as an HTML page.

Registered on :data:`specs.cli.common.app`; the chart is :mod:`specs.record.timeline`. The run is
found as ``specs show-run`` finds it (an id, a unique prefix or ``last``; exit code 2 when there
is no such run); its spec is loaded from the path the run recorded when it is still there, and
the chart is drawn from the events alone when it is not. A damaged line of the event log is
named on stderr (and skipped). A run that has not ended is drawn as it stands: up to now while
its process still holds the run's lock, else up to its last event, as ``interrupted``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from specs import events as ev
from specs.api.runs import find_run, read_run, run_is_live, state_dir
from specs.cli.common import _err, app
from specs.errors import UsageError
from specs.spec.load import load_spec
from specs.spec.model import Spec


def run_spec(events: list[ev.Event]) -> Spec | None:
    """The spec a run recorded in its run-opened event, when it still loads."""
    opened = next((e for e in events if isinstance(e, ev.RunOpened)), None)
    parameters = opened.spec.get("parameters") if opened else None
    if not parameters or not Path(parameters).is_file():
        return None
    return load_spec(Path(parameters)).spec


@app.command("timeline")
def timeline_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    html: Annotated[Path | None, typer.Option(
        "--html", help="Write a self-contained HTML page (inline SVG) to FILE instead.",
        metavar="FILE")] = None,
    state: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where runs are kept (default: $SPECS_STATE_DIR or ./.specs).")]
    = None,
    width: Annotated[int | None, typer.Option(
        "--width", min=40, help="Chart width in columns (default: the terminal's).")] = None,
) -> None:
    """A run's Gantt chart: one row per step, its attempts (primary, backups, failures),
    skipped steps, gates and pauses, and the critical path."""
    from specs.atomic import write_text_atomic
    from specs.record.timeline import build_timeline, render_html, render_terminal

    run_dir = find_run(state_dir(state), run)
    events = read_run(run_dir, lambda text: _err().print(f"specs: warning: {text}",
                                                          markup=False))
    spec = run_spec(events)
    if spec is None:
        _err().print(f"specs: the spec of run {run_dir.name} is no longer readable; drawing "
                     "from the events alone", markup=False)
    ended = False  # the last run-ended came after the last resume
    for event in events:
        if isinstance(event, ev.RunEnded | ev.RunResumed):
            ended = isinstance(event, ev.RunEnded)
    live = not ended and run_is_live(run_dir)
    data = build_timeline(events, spec, now=time.time() if live else None)
    if not ended and not live and data.status == "running":
        data.status = "interrupted"  # no process runs it: `specs resume` continues it
    if html is not None:
        try:
            write_text_atomic(html, render_html(data))
        except OSError as exc:
            raise UsageError(f"cannot write {html}: {exc.strerror or exc}") from None
        typer.echo(str(html))
        return
    columns = width or shutil.get_terminal_size((100, 24)).columns
    console = Console(highlight=False, width=columns)
    console.print(render_terminal(data, columns))
