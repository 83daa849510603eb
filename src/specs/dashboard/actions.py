"""The dashboard's actions (POSTs, guarded by :mod:`specs.dashboard.security`).

- ``POST /runs/RUN/gates/GATE`` ``{"response": "approve"}`` answers a gate exactly as
  ``specs approve|reject`` do (:func:`specs.api.answer_gate`, ``by="dashboard"``): a run
  waiting at it now takes the answer and goes on; a paused run gets it in its log, and the
  answer says so (``live: false``) with the command that continues it.
- ``POST /runs/RUN/resume`` continues a paused (halted, interrupted) run inside the
  dashboard's process, as ``specs resume RUN --wait`` would: its later gates wait for an
  answer from the inbox instead of pausing it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from specs.api import RunOptions, answer_gate, resume_run
from specs.api.runs import open_gates
from specs.dashboard.runs import valid_run_id
from specs.errors import SpecsError, UsageError
from specs.events import read_events
from specs.secrets import Masker

if TYPE_CHECKING:
    from specs.dashboard.app import Dashboard

__all__ = ["answer", "resume"]

MAX_BODY = 64 * 1024


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(413, "the request body is too large")
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise HTTPException(400, "the request body is not JSON: send "
                                 "{\"response\": \"approve\"}") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    return data


def _bad(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message, "status": status}, status_code=status)


async def answer(dashboard: Dashboard, request: Request) -> Response:
    run_id, gate_id = request.path_params["run"], request.path_params["gate"]
    folder = dashboard.index.folder(run_id)
    data = await _body(request)
    response = data.get("response")
    if not isinstance(response, str) or not response.strip():
        return _bad(400, "give the answer as {\"response\": \"approve\"} (approve, reject, "
                         "skip, guidance:TEXT, ...)")
    pending = open_gates(list(read_events(folder / "events.jsonl")))
    gate = next((g for g in pending if g.gate == gate_id), None)
    if gate is None:
        return _bad(409, f"gate {gate_id} of run {run_id} is not waiting for an answer "
                         "(answered already?)")
    first = next((g for g in pending if gate.step is None or g.step == gate.step), None)
    if first is not None and first.gate != gate.gate:
        return _bad(409, f"answer gate {first.gate} of run {run_id} first")
    try:
        given = answer_gate(folder, gate.step, response.strip(), by="dashboard")
    except UsageError as exc:
        return _bad(400, str(exc))
    dashboard.hub.poke(run_id)
    how = ("the run, waiting at it, goes on" if given.live else
           f"the run is paused: resume it here or with `specs resume {run_id}`")
    return JSONResponse({"ok": True, "run_id": run_id, "gate": given.gate,
                         "response": given.response, "live": given.live, "message": how,
                         "resume": None if given.live else f"specs resume {run_id}"})


async def resume(dashboard: Dashboard, request: Request) -> Response:
    run_id = request.path_params["run"]
    if not valid_run_id(run_id):
        raise UsageError(f"no run {run_id!r}")
    dashboard.index.folder(run_id)
    running = dashboard.resumes.get(run_id)
    if running is not None and not running.done():
        return _bad(409, f"run {run_id} is being resumed already")
    if dashboard.index.summary(dashboard.index.folder(run_id)).status in ("running",
                                                                          "initializing"):
        return _bad(409, f"run {run_id} is running in another process")
    options = RunOptions(state_dir=dashboard.config.state_dir, no_input=True)
    try:
        handle = resume_run(run_id, options, wait=True)
    except SpecsError as exc:
        return _bad(409, str(exc))
    dashboard.resume_errors.pop(run_id, None)
    masker = Masker()

    async def finish() -> None:
        try:
            await handle
        except Exception as exc:  # shown on the run page: the server goes on
            dashboard.resume_errors[run_id] = masker.text(f"{exc.__class__.__name__}: {exc}")

    dashboard.resumes[run_id] = asyncio.get_running_loop().create_task(finish())
    with contextlib.suppress(UsageError):
        dashboard.hub.poke(run_id)
    return JSONResponse({"ok": True, "run_id": run_id, "resumed": True,
                         "message": f"run {run_id} goes on in the dashboard; its gates wait "
                                    "in the inbox"}, status_code=202)
