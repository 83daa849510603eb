"""The dashboard's pages (each with its ``.json`` twin) and event streams; see
:mod:`specs.dashboard.app` for the routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from specs.dashboard.graph import dependency_svg, graph_summary
from specs.dashboard.inbox import inbox_items
from specs.dashboard.live import HEARTBEAT, sse
from specs.dashboard.outputs import OutputTail, step_outputs
from specs.dashboard.runs import RunFilter, valid_run_id
from specs.errors import UsageError
from specs.record.timeline import render_html

if TYPE_CHECKING:
    from specs.dashboard.app import Dashboard
    from specs.dashboard.model import RunModel

#: a run with more steps than this opens with its tasks collapsed (the running ones open)
COLLAPSE_AT = 200


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def money(value: float | None) -> str:
    return "" if value is None else f"${value:,.4f}"


def clock(ts: str | None) -> str:
    """``2026-03-01 10:15:00`` of an event timestamp (UTC)."""
    return "" if not ts else ts[:19].replace("T", " ")


def split_format(name: str) -> tuple[str, bool]:
    """``("abc", True)`` for ``abc.json``: the page's JSON twin."""
    return (name[:-5], True) if name.endswith(".json") else (name, False)


def _format(request: Request, name: str) -> tuple[str, bool]:
    return split_format(request.path_params[name])


def _filter(request: Request) -> RunFilter:
    q = request.query_params
    return RunFilter(spec=q.get("spec", "")[:200], status=q.get("status", "")[:40],
                     since=q.get("since", "")[:10], until=q.get("until", "")[:10])


def _rows(dashboard: Dashboard, keep: RunFilter) -> list[dict[str, Any]]:
    return [row.to_dict() for row in dashboard.index.rows(keep)]


# -- runs ----------------------------------------------------------------------------------


async def _runs(dashboard: Dashboard, request: Request, as_json: bool) -> Response:
    keep = _filter(request)
    rows = await asyncio.to_thread(_rows, dashboard, keep)
    statuses = sorted({r["status"] for r in rows} | {"running", "awaiting_human",
                                                      "completed", "failed", "halted",
                                                      "interrupted"})
    return dashboard.page(request, "runs.html", {
        "runs": rows, "filter": keep.to_dict(), "statuses": statuses,
        "state_dir": str(dashboard.config.state_dir),
        "history": dashboard.history.describe() if dashboard.history else None,
        "notifications": dashboard.notifications()}, as_json)


async def runs_page(dashboard: Dashboard, request: Request) -> Response:
    return await _runs(dashboard, request, False)


async def runs_json(dashboard: Dashboard, request: Request) -> Response:
    return await _runs(dashboard, request, True)


def stream_response(chunks: AsyncIterator[bytes]) -> Response:
    """Server-sent events: never cached, never buffered by a proxy."""
    return StreamingResponse(chunks, media_type="text/event-stream", headers={
        "cache-control": "no-store", "x-accel-buffering": "no"})


async def runs_stream(dashboard: Dashboard, request: Request) -> Response:
    keep = _filter(request)
    return stream_response(dashboard.hub.runs_stream(
        keep, lambda k: _rows(dashboard, k)))


# -- one run -------------------------------------------------------------------------------


async def _model(dashboard: Dashboard, run_id: str) -> RunModel:
    if not valid_run_id(run_id):
        raise UsageError(f"no run {run_id!r}")
    return (await dashboard.hub.feed(run_id)).model


def _expanded(model: RunModel, tasks: list[dict[str, Any]]) -> set[str]:
    """The tasks open at first: all of a small run; of a big one those with a step running,
    failed or waiting, else the first."""
    if sum(t["total"] for t in tasks) <= COLLAPSE_AT:
        return {t["ref"] for t in tasks}
    busy = {t["ref"] for t in tasks if t["counts"].get("started") or t["counts"].get("failed")}
    busy |= {g["step"].rpartition(".")[0] for g in model.open_gates() if g["step"]}
    return busy or {tasks[0]["ref"]} if tasks else set()


async def _history_run(dashboard: Dashboard, request: Request, run_id: str,
                       as_json: bool) -> Response | None:
    """The page of a run only the history has (another machine's); its stream is
    :meth:`~specs.dashboard.live.Hub.history_stream`."""
    if dashboard.history is None or not valid_run_id(run_id):
        return None
    data = await asyncio.to_thread(dashboard.history.run_snapshot, run_id)
    if data is None:
        return None
    data["win_rates"] = await asyncio.to_thread(dashboard.history.wins, data["run"]["spec"],
                                                {run_id})
    data["open_tasks"] = [t["ref"] for t in data["tasks"]]
    data["resume"] = {"running": False, "error": None}
    return dashboard.page(request, "run.html", data, as_json)


async def run_page(dashboard: Dashboard, request: Request) -> Response:
    run_id, as_json = _format(request, "run")
    if valid_run_id(run_id) and not (dashboard.config.state_dir / "runs" / run_id
                                     / "events.jsonl").is_file():
        found = await _history_run(dashboard, request, run_id, as_json)
        if found is not None:
            return found
    model = await _model(dashboard, run_id)
    if as_json:
        data = model.snapshot()
        data["win_rates"] = await asyncio.to_thread(dashboard.win_rates, model)
        return dashboard.page(request, "run.html", data, True)
    tasks = model.tasks()
    open_tasks = _expanded(model, tasks)
    data = model.snapshot(open_tasks)
    data["open_tasks"] = sorted(open_tasks)
    data["win_rates"] = await asyncio.to_thread(dashboard.win_rates, model)
    data["resume"] = {"running": run_id in dashboard.resumes
                      and not dashboard.resumes[run_id].done(),
                      "error": dashboard.resume_errors.get(run_id)}
    return dashboard.page(request, "run.html", data, False)


async def run_stream(dashboard: Dashboard, request: Request) -> Response:
    run_id = request.path_params["run"]
    if not valid_run_id(run_id):
        raise UsageError(f"no run {run_id!r}")
    raw = request.headers.get("last-event-id") or request.query_params.get("after")
    try:
        after = int(raw) if raw else None
    except ValueError:
        after = None
    history = dashboard.history
    if history is not None and not (dashboard.config.state_dir / "runs" / run_id
                                    / "events.jsonl").is_file() and (
            await asyncio.to_thread(history.run_snapshot, run_id) is not None):
        return stream_response(dashboard.hub.history_stream(
            run_id, after, lambda: history.run_snapshot(run_id), dashboard.history_poll_s))
    dashboard.index.folder(run_id)
    return stream_response(dashboard.hub.run_stream(run_id, after))


async def task_json(dashboard: Dashboard, request: Request) -> Response:
    task_ref, _ = _format(request, "task")
    model = await _model(dashboard, request.path_params["run"])
    task = model.task(task_ref)
    if task is None:
        raise UsageError(f"no task {task_ref!r} in run {model.run_id}")
    steps = [s for s in (model.step(ref) for ref in task["steps"]) if s is not None]
    return JSONResponse({"ok": True, "task": task, "steps": steps})


async def step_page(dashboard: Dashboard, request: Request) -> Response:
    ref, as_json = _format(request, "step")
    model = await _model(dashboard, request.path_params["run"])
    step = model.step(ref)
    if step is None:
        raise UsageError(f"no step {ref!r} in run {model.run_id}")
    attempts = await asyncio.to_thread(step_outputs, model.run_dir, step,
                                       model.calls.get(ref, []), dashboard.masker)
    return dashboard.page(request, "step.html", {
        "run": model.header(), "step": step, "attempts": attempts}, as_json)


async def step_stream(dashboard: Dashboard, request: Request) -> Response:
    ref = request.path_params["step"]
    feed = await dashboard.hub.feed(request.path_params["run"])
    if feed.model.step(ref) is None:
        raise UsageError(f"no step {ref!r} in run {feed.model.run_id}")
    return stream_response(_follow_step(dashboard, feed.model, ref))


async def _follow_step(dashboard: Dashboard, model: RunModel, ref: str
                       ) -> AsyncIterator[bytes]:
    """A step's output as it grows: a ``reset`` first (the page clears what it showed),
    then its new lines, its new model and tool calls, and ``step`` when its record changed."""
    tail = OutputTail(model.run_dir, ref, dashboard.masker)
    sent_calls = 0
    last_seq = -1
    quiet = 0.0
    yield b"retry: 1000\n\n" + sse({"step": ref}, event="reset")
    while not dashboard.hub.closing:
        step = model.step(ref)
        if step is None:
            return
        attempts = [(e["method"], int(e["attempt"]), e["outcome"] != "running")
                    for e in step["lane"] if e["kind"] in ("primary", "retry", "backup")]
        chunks = await asyncio.to_thread(tail.read, attempts)
        calls = model.calls.get(ref, [])
        for method, attempt, line in calls[sent_calls:]:
            chunks.append({"method": method, "attempt": attempt, "stream": "calls",
                           "text": line + "\n"})
        sent_calls = len(calls)
        if chunks:
            quiet = 0.0
            yield sse({"chunks": chunks}, event="output")
        seq = model.touched.get(ref, 0)
        if seq != last_seq:
            last_seq = seq
            yield sse({"step": step}, event="step")
        await asyncio.sleep(0.1)
        quiet += 0.1
        if quiet >= dashboard.config.heartbeat_s:
            quiet = 0.0
            yield HEARTBEAT


async def timeline_page(dashboard: Dashboard, request: Request) -> Response:
    model = await _model(dashboard, request.path_params["run"])
    data = await asyncio.to_thread(model.timeline_data)
    return HTMLResponse(render_html(data))


async def graph_page(dashboard: Dashboard, request: Request) -> Response:
    model = await _model(dashboard, request.path_params["run"])
    data = await asyncio.to_thread(model.timeline_data)
    svg = dependency_svg(data, dict(model.status_of))
    return Response(svg, media_type="image/svg+xml")


async def graph_json(dashboard: Dashboard, request: Request) -> Response:
    model = await _model(dashboard, request.path_params["run"])
    data = await asyncio.to_thread(model.timeline_data)
    return JSONResponse({"ok": True, **graph_summary(data)})


# -- inbox ---------------------------------------------------------------------------------


async def _inbox(dashboard: Dashboard, request: Request, as_json: bool) -> Response:
    items = await asyncio.to_thread(inbox_items, dashboard.index)
    return dashboard.page(request, "inbox.html", {"items": items}, as_json)


async def inbox_page(dashboard: Dashboard, request: Request) -> Response:
    return await _inbox(dashboard, request, False)


async def inbox_json(dashboard: Dashboard, request: Request) -> Response:
    return await _inbox(dashboard, request, True)


async def inbox_stream(dashboard: Dashboard, request: Request) -> Response:
    """The inbox's items whenever any run changed (the page adds the new ones)."""
    keep = RunFilter()
    return stream_response(dashboard.hub.runs_stream(
        keep, lambda _k: inbox_items(dashboard.index), event="inbox"))


# -- history -------------------------------------------------------------------------------


def history_page(kind: str) -> Callable[[Dashboard, Request], Awaitable[Response]]:
    """The backups, metrics or insights page (and its twin), from the history database."""

    async def handler(dashboard: Dashboard, request: Request) -> Response:
        as_json = request.url.path.endswith(".json")
        view = dashboard.history
        if view is None:
            data: dict[str, Any] = {"available": False, "kind": kind, "charts": [], "spec": None,
                                    "reason": "no history database: runs record one at "
                                    f"{dashboard.config.state_dir}/history.db, or give "
                                    "--database-url"}
        else:
            spec = request.query_params.get("spec", "")[:200] or None
            data = {"available": True, "kind": kind, "reason": "", "spec": spec,
                    **await asyncio.to_thread(view.page, kind, spec)}
        return dashboard.page(request, f"{kind}.html", data, as_json)

    return handler
