"""``specs dashboard --export RUN DIR``: a run's pages and data as a static snapshot that
opens from disk (to attach to a bug report or a review).

``DIR/index.html`` is the run page with its stylesheet, its script and all its data written
into it: every task and step with its attempt lane, each step's attempts with their output
and failure reasons (what the step's panel shows), the event list, the dependency graph;
``DIR/timeline.html`` is the Gantt chart of ``specs timeline --html``; ``DIR/run.json`` is
the data of the run page's ``.json`` twin. Nothing in it loads anything from elsewhere, and
nothing in it acts: the answer buttons are disabled. Outputs are masked as the dashboard
masks them (the exporting process's secrets).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from specs.api import find_run
from specs.atomic import write_text_atomic
from specs.dashboard.app import Dashboard, render
from specs.dashboard.config import DashboardConfig
from specs.dashboard.graph import dependency_svg
from specs.dashboard.model import RunModel
from specs.dashboard.outputs import step_outputs
from specs.dashboard.pages import _expanded
from specs.errors import UsageError
from specs.record.timeline import render_html

__all__ = ["export_run"]


def export_run(state_dir: Path, run: str, out: Path) -> Path:
    """Write the snapshot of run ``run`` (an id, a unique prefix, or ``last``) of the state
    folder into the folder ``out`` (made if need be); returns its ``index.html``."""
    run_dir = find_run(state_dir, run)
    dashboard = Dashboard(DashboardConfig(state_dir=state_dir))
    model = RunModel.load(state_dir, run_dir.name)
    snapshot = model.snapshot()
    details = {step["ref"]: {"step": step, "attempts": step_outputs(
        run_dir, step, model.calls.get(step["ref"], []), dashboard.masker)}
        for step in snapshot["steps"]}
    timeline = model.timeline_data()
    win_rates = dashboard.win_rates(model)
    page = render(dashboard, "run.html", None, {
        **snapshot, "open_tasks": sorted(_expanded(model, snapshot["tasks"])),
        "win_rates": win_rates, "details": details, "resume": None,
        "graph_svg": dependency_svg(timeline, dict(model.status_of))}, static_inline=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "index.html", page)
        write_text_atomic(out / "timeline.html", render_html(timeline))
        write_text_atomic(out / "run.json", orjson.dumps(
            {"ok": True, **snapshot, "win_rates": win_rates, "details": details},
            default=str, option=orjson.OPT_INDENT_2).decode())
    except OSError as exc:
        raise UsageError(f"cannot write the snapshot to {out}: {exc.strerror or exc}") \
            from None
    return out / "index.html"
