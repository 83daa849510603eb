"""``specs dashboard``: the real-time dashboard in a browser (docs/dashboard.md).

Registered on :data:`specs.cli.common.app`; the application is :mod:`specs.dashboard`.
``--export RUN DIR`` writes a run's static snapshot instead of serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specs.api import state_dir
from specs.cli.common import _err, app


@app.command("dashboard")
def dashboard_cmd(
    host: Annotated[str, typer.Option(
        "--host", help="The address to listen on; any but the loopback needs --token.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="The port (0: a free one).")] = 8765,
    state: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where runs are kept (default: $SPECS_STATE_DIR or ./.specs).")]
    = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="The history database (default: $SPECS_DATABASE_URL, else "
        "the state folder's history.db).", metavar="URL")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="Require this token on every request (default: "
        "$SPECS_DASHBOARD_TOKEN); at least 16 characters.")] = None,
    export: Annotated[tuple[str, Path] | None, typer.Option(
        "--export", help="Write a static snapshot of run RUN (its pages and data) into DIR "
        "and exit.", metavar="RUN DIR")] = None,
) -> None:
    """Watch every run live in a browser: runs, steps with their attempt lanes and output,
    the inbox of pending gates (answer them there), backups, metrics and insights."""
    from specs.dashboard import DashboardConfig, export_run, serve

    root = state_dir(state)
    if export is not None:
        run, folder = export
        index = export_run(root, run, folder)
        typer.echo(str(index))
        return
    if not root.is_dir():
        _err().print(f"specs: no state folder at {root} yet: the dashboard shows runs as "
                     "they start", markup=False)
    config = DashboardConfig.make(root, host=host, port=port, token=token,
                                  database_url=database_url)
    try:
        serve(config, announce=lambda text: _err().print(text, markup=False))
    except KeyboardInterrupt:
        return
