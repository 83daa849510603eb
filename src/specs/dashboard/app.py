"""The dashboard's web application: :func:`create_app` (Starlette; served by uvicorn).

Every page is server-rendered (Jinja2, autoescaped) and also served as JSON at the same path
plus ``.json``: ``{"ok": true, ...}`` with the page's data, or the one error shape
``{"ok": false, "error": "...", "status": N}`` (:func:`~specs.dashboard.security.error_body`),
which the HTML pages show as text. Routes:

==========================================  =============================================
``/runs`` ``/runs.json``                    every run, filtered (``spec``, ``status``,
                                            ``since``, ``until``); ``/runs/stream`` live
``/runs/RUN`` ``/runs/RUN.json``            one run: tasks, steps and attempt lanes;
                                            ``/runs/RUN/stream`` live (SSE)
``/runs/RUN/tasks/TASK.json``               a task's step records (a task opened)
``/runs/RUN/steps/STEP`` (``.json``)        a step's attempts with their output;
                                            ``/runs/RUN/steps/STEP/stream`` while it runs
``/runs/RUN/timeline``                      the Gantt chart of ``specs timeline --html``
``/runs/RUN/graph`` (``.json``)             the dependency graph (SVG)
``POST /runs/RUN/gates/GATE``               answer a gate (``{"response": "approve"}``)
``POST /runs/RUN/resume``                   continue a paused run in the dashboard
``/inbox`` ``/inbox.json``                  every pending gate; ``/inbox/stream`` live
``/backups`` ``/metrics`` ``/insights``     from the history database (and ``.json``)
``/static/NAME``                            the page's own CSS and JS (nothing else)
==========================================  =============================================
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from specs.dashboard import actions, pages
from specs.dashboard.config import DashboardConfig
from specs.dashboard.history_pages import FRESH_S, HistoryView
from specs.dashboard.listen import HistoryListener
from specs.dashboard.live import Hub
from specs.dashboard.model import RunModel
from specs.dashboard.runs import RunIndex
from specs.dashboard.security import Guard, error_body
from specs.dashboard.stats import WinCache, WinRates, add_wins
from specs.errors import SpecsError, UsageError
from specs.history.store import CHANNEL
from specs.secrets import Masker
from specs.version import __version__

__all__ = ["Dashboard", "create_app", "render"]

#: how often the history is polled while its notifications are heard (the fallback)
LISTENING_POLL_S = 15.0
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def script_json(value: Any) -> Markup:
    """JSON to write inside ``<script type="application/json">``: no ``<``, ``>`` or
    ``&`` left as such, so no text in it can end the element or open a comment."""
    text = orjson.dumps(value, default=str).decode()
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace(
        "&", "\\u0026"))


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("specs.dashboard", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    env.filters["json"] = script_json
    env.filters["seconds"] = pages.seconds
    env.filters["money"] = pages.money
    env.filters["clock"] = pages.clock
    return env


def _static() -> dict[str, bytes]:
    """The page assets, read once: the only files the dashboard serves by name."""
    folder = resources.files("specs.dashboard").joinpath("static")
    return {item.name: item.read_bytes() for item in folder.iterdir()
            if item.name.rsplit(".", 1)[-1] in ("css", "js")}


class Dashboard:
    """What the routes share: the settings, the runs, the live hub, the templates."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.history = HistoryView.open(config.state_dir, config.database_url)
        self.index = RunIndex(config.state_dir, self.history.rows if self.history else None,
                              self.history.fingerprint if self.history else None)
        self.hub = Hub(config, self.index)
        self.listener: HistoryListener | None = None
        if self.history is not None and self.history.store.dialect == "postgresql":
            self.listener = HistoryListener(self.history.store.url, self.history_changed)
            self.history.poll_s = self.history_poll_s
        self.templates = _templates()
        self.static = _static()
        self.masker = Masker()
        self.resumes: dict[str, asyncio.Task[Any]] = {}
        self.resume_errors: dict[str, str] = {}
        self.wins = WinCache()

    def history_poll_s(self) -> float:
        """How often the history is polled: rarely while its notifications are heard."""
        if self.config.history_poll_s is not None:
            return self.config.history_poll_s
        listening = self.listener is not None and self.listener.connected
        return LISTENING_POLL_S if listening else FRESH_S

    def history_changed(self, run_id: str | None) -> None:
        """A notification of the history database (see :mod:`specs.dashboard.listen`)."""
        if self.history is not None:
            self.history.changed(run_id)
        self.hub.history_changed(run_id)

    def notifications(self) -> dict[str, Any] | None:
        """The listener's state (None: the history is not PostgreSQL), for ``/runs.json``."""
        if self.listener is None:
            return None
        return {"channel": CHANNEL, "connected": self.listener.connected,
                "connects": self.listener.connects, "received": self.listener.notices,
                "error": self.listener.error, "poll_s": self.history_poll_s()}

    def win_rates(self, model: RunModel) -> WinRates:
        """The methods' win rates at each step of the run's spec, over its other runs."""
        spec = model.header()["spec"]
        folders = [self.index.state_dir / "runs" / row.run_id
                   for row in self.index.state_rows()
                   if row.spec == spec and row.run_id != model.run_id]
        rates = self.wins.total(folders)
        if self.history is not None:
            add_wins(rates, self.history.wins(spec, {model.run_id, *(f.name for f in folders)}))
        return rates

    def page(self, request: Request, template: str, data: dict[str, Any],
             as_json: bool, status: int = 200) -> Response:
        if as_json:
            return JSONResponse({"ok": True, **data}, status_code=status)
        return HTMLResponse(render(self, template, request, data), status_code=status)


def render(dashboard: Dashboard, template: str, request: Request | None,
           data: dict[str, Any], *, static_inline: bool = False) -> str:
    """A page's HTML (``static_inline``: CSS and JS written into it, for the export)."""
    return dashboard.templates.get_template(template).render(
        **data, version=__version__, action_token=dashboard.config.action_token,
        exported=static_inline, inline=(
            {name: body.decode() for name, body in dashboard.static.items()}
            if static_inline else {}),
        path=request.url.path if request is not None else "")


Handler = Callable[[Dashboard, Request], Awaitable[Response]]


def _route(path: str, handler: Handler, methods: tuple[str, ...] = ("GET", "HEAD")) -> Route:
    async def endpoint(request: Request) -> Response:
        return await handler(request.app.state.dashboard, request)

    return Route(path, endpoint, methods=list(methods))


def _wants_json(request: Request) -> bool:
    return (request.url.path.endswith(".json") or request.method == "POST"
            or "text/html" not in request.headers.get("accept", "text/html")
            or request.url.path.endswith("/stream"))


async def _error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
        if status == 404:
            message = f"nothing at {request.url.path}"
    elif isinstance(exc, UsageError):
        status, message = 404 if "no run" in str(exc) or "no step" in str(exc) \
            or "no task" in str(exc) else 409, str(exc)
    elif isinstance(exc, SpecsError):
        status, message = 409, str(exc)
    else:
        status, message = 500, f"internal error: {exc.__class__.__name__}"
    if _wants_json(request):
        return JSONResponse(error_body(status, message), status_code=status)
    dashboard: Dashboard = request.app.state.dashboard
    return HTMLResponse(render(dashboard, "error.html", request,
                               {"status": status, "message": message}), status_code=status)


async def _static_file(dashboard: Dashboard, request: Request) -> Response:
    name = request.path_params["name"]
    body = dashboard.static.get(name)
    if body is None:
        raise HTTPException(404)
    return Response(body, media_type=STATIC_TYPES[Path(name).suffix],
                    headers={"cache-control": "no-cache"})


async def _home(dashboard: Dashboard, request: Request) -> Response:
    return RedirectResponse("/runs", status_code=307)


async def _no_icon(dashboard: Dashboard, request: Request) -> Response:
    return Response(status_code=204)


def create_app(config: DashboardConfig) -> Starlette:
    """The dashboard of ``config.state_dir`` (and its history database), guarded as
    :mod:`specs.dashboard.security` says."""
    dashboard = Dashboard(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if dashboard.listener is not None:
            dashboard.listener.start()
        yield
        await dashboard.hub.close()
        if dashboard.listener is not None:
            await dashboard.listener.close()
        for task in dashboard.resumes.values():
            task.cancel()

    routes = [
        _route("/", _home),
        _route("/static/{name}", _static_file),
        _route("/favicon.ico", _no_icon),
        _route("/runs.json", pages.runs_json),
        _route("/runs", pages.runs_page),
        _route("/runs/stream", pages.runs_stream),
        _route("/inbox", pages.inbox_page),
        _route("/inbox.json", pages.inbox_json),
        _route("/inbox/stream", pages.inbox_stream),
        _route("/runs/{run}", pages.run_page),
        _route("/runs/{run}/stream", pages.run_stream),
        _route("/runs/{run}/timeline", pages.timeline_page),
        _route("/runs/{run}/graph", pages.graph_page),
        _route("/runs/{run}/graph.json", pages.graph_json),
        _route("/runs/{run}/tasks/{task}", pages.task_json),
        _route("/runs/{run}/steps/{step}", pages.step_page),
        _route("/runs/{run}/steps/{step}/stream", pages.step_stream),
        _route("/runs/{run}/gates/{gate}", actions.answer, ("POST",)),
        _route("/runs/{run}/resume", actions.resume, ("POST",)),
        _route("/backups", pages.history_page("backups")),
        _route("/backups.json", pages.history_page("backups")),
        _route("/metrics", pages.history_page("metrics")),
        _route("/metrics.json", pages.history_page("metrics")),
        _route("/insights", pages.history_page("insights")),
        _route("/insights.json", pages.history_page("insights")),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={Exception: _error, HTTPException: _error,
                                        SpecsError: _error})
    app.state.dashboard = dashboard
    app.add_middleware(Guard, config=config)
    return app
