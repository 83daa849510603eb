"""Runs on disk: the state folder, finding a run, reading its events, answering its gates.

Layout (SPEC_FORMAT.md §3)::

    <state dir>/                     --state-dir, SPECS_STATE_DIR, default ./.specs
      runs/<run_id>/events.jsonl     the run's events: the single source of truth
      runs/<run_id>/outputs/<ref>/   captured stdout/stderr of each attempt
      runs/<run_id>/lock             held by the process running (or answering) the run

A run is named by its id, or by any unique prefix of it, or by ``last`` (the newest run).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specs import events as ev
from specs.atomic import write_text_atomic
from specs.engine.human import inbox_file, parse_response
from specs.engine.journal import EventLog, RunLock
from specs.engine.state import RunState
from specs.errors import UsageError
from specs.record.progress import progress_document
from specs.spec.load import load_spec

if TYPE_CHECKING:
    pass


def state_dir(option: Path | None = None, *, cwd: Path | None = None) -> Path:
    """The state folder: ``option``, else ``$SPECS_STATE_DIR``, else the nearest ``.specs``
    folder in the current folder or its parents (as git finds ``.git``), else ``./.specs``
    (made by the first run)."""
    if option is not None:
        return option
    if os.environ.get("SPECS_STATE_DIR"):
        return Path(os.environ["SPECS_STATE_DIR"])
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".specs").is_dir():
            return folder / ".specs" if folder != here else Path(".specs")
    return Path(".specs")


def run_dirs(root: Path) -> list[Path]:
    runs = root / "runs"
    if not runs.is_dir():
        return []
    return sorted(p for p in runs.iterdir() if (p / "events.jsonl").is_file())


def find_run(root: Path, name: str) -> Path:
    """The folder of run ``name`` (an id, a unique prefix, or ``last``)."""
    found = run_dirs(root)
    if not found:
        raise UsageError(f"no runs in {root}; start one with `specs run PATH`")
    if name == "last":
        return max(found, key=lambda p: (p / "events.jsonl").stat().st_mtime)
    exact = [p for p in found if p.name == name]
    matches = exact or [p for p in found if p.name.startswith(name)]
    if not matches:
        raise UsageError(f"no run {name!r} in {root}; `specs runs` lists them")
    if len(matches) > 1:
        raise UsageError(f"run {name!r} is ambiguous: {', '.join(p.name for p in matches[:5])}")
    return matches[0]


def list_runs(root: Path | None = None, *, spec: str | None = None,
              status: str | None = None, since: str | None = None,
              database_url: str | None = None, history: bool = True) -> list[RunSummary]:
    """The runs, newest first: those of the run history (the state folder's ``history.db``,
    or the database ``database_url`` / ``$SPECS_DATABASE_URL``, brought up to date with the
    state folder ``root`` first), else (``history=False``) those of the state folder alone.
    Filters: ``spec`` (a descriptor or a spec path), ``status``, ``since`` (a date, an ISO
    time or an age such as ``7d``). A run of this machine whose process died without
    recording an end shows as ``interrupted``."""
    from specs.history import parse_since
    root = root or state_dir(None)
    if history:
        found = _from_history(root, spec, status, since, database_url)
    else:
        found = [summarize(read_run(d), d.name) for d in run_dirs(root)]
        found = [s for s in found if (not spec or spec in (s.descriptor, s.spec.get("folder"),
                                                           s.spec.get("parameters")))
                 and (not status or s.status == status)
                 and (not since or s.started >= parse_since(since))]
    for summary in found:
        folder = root / "runs" / summary.run_id
        if summary.status in ("initializing", "running", "resumed") and folder.is_dir() \
                and not run_is_live(folder):
            summary.status = "interrupted"
    return sorted(found, key=lambda s: (s.started, s.run_id), reverse=True)


def _from_history(root: Path, spec: str | None, status: str | None, since: str | None,
                  url: str | None) -> list[RunSummary]:
    from specs.history import list_runs as history_runs
    from specs.history import open_store, parse_since, sync
    store = open_store(root, url)
    try:
        sync(store, root)
        rows = history_runs(store, spec=spec, status=status,
                            since=parse_since(since) if since else None)
    finally:
        store.close()
    return [RunSummary(
        run_id=r["run_id"], descriptor=r["descriptor"], status=r["status"], goal=r["goal"],
        started=r["started_at"] or "", last=r["last_event_at"] or "",
        steps_done=r["steps_completed"] + r["steps_failed"] + r["steps_skipped"],
        steps_total=r["steps_total"], pending_gate=r["pending_gate"],
        spec={"folder": r["spec_folder"], "parameters": r["parameters_path"]},
        llm_calls=r["llm_calls"], tokens=r["tokens"], cost_usd=r["cost_usd"],
        source=r["source"]) for r in rows]


def run_is_live(run_dir: Path) -> bool:
    """Whether a process holds the run's lock now (it is running, or being answered)."""
    try:
        fd = os.open(run_dir / "lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_run(run_dir: Path, warn: Callable[[str], None] | None = None) -> list[ev.Event]:
    """The run's events; ``warn`` is told of each damaged line that was skipped."""
    damaged: list[int] = []
    path = run_dir / "events.jsonl"
    events = list(ev.read_events(path, damaged))
    if warn is not None:
        for number in damaged:
            warn(f"{path}:{number}: a damaged line (not an event) was skipped")
    return events


@dataclass
class RunSummary:
    run_id: str
    descriptor: str
    status: str
    goal: str | None
    started: str
    last: str
    steps_done: int
    steps_total: int
    pending_gate: str | None
    spec: dict[str, Any]
    llm_calls: int = 0
    tokens: int = 0
    cost_usd: float | None = None  # None: no LLM call had a known price
    #: where the run is known from: ``events`` (a run's log) or an imported progress file
    source: str = "events"


def summarize(events: list[ev.Event], name: str) -> RunSummary:
    """A quick summary without loading the spec (for `specs runs`)."""
    opened = next((e for e in events if isinstance(e, ev.RunOpened)), None)
    status, goal, done = "initializing", None, set()
    gates: dict[str, bool] = {}
    calls = tokens = 0
    cost: float | None = None
    for event in events:
        if isinstance(event, ev.LlmCall):
            calls += 1
            tokens += sum(int(v) for v in event.usage.values())
            if event.cost_usd is not None:
                cost = (cost or 0.0) + event.cost_usd
        elif isinstance(event, ev.StepEnded):
            done.add(event.step)
        elif isinstance(event, ev.StepReopened):
            done.discard(event.step)
        elif isinstance(event, ev.GateRequested):
            gates[event.gate] = False
        elif isinstance(event, ev.GateAnswered | ev.GateClosed) and event.gate in gates:
            gates[event.gate] = True
        elif isinstance(event, ev.RunPaused):
            status = "awaiting_human"
        elif isinstance(event, ev.RunEnded):
            status, goal = event.status, event.goal_achievement_status
        elif isinstance(event, ev.RunResumed | ev.StepStarted | ev.TaskStarted):
            status = "running"
    pending = next((g for g, answered in gates.items() if not answered), None)
    return RunSummary(
        run_id=opened.run_id if opened else name, descriptor=opened.descriptor if opened else "",
        status=status, goal=goal, started=opened.ts if opened else "",
        last=events[-1].ts if events else "", steps_done=len(done),
        steps_total=opened.totals.get("steps", 0) if opened else 0,
        pending_gate=pending, spec=opened.spec if opened else {}, llm_calls=calls,
        tokens=tokens, cost_usd=None if cost is None else round(cost, 6))


@dataclass(frozen=True)
class Answer:
    """An answer given to a run's gate: ``live`` when the run was waiting at it and takes it
    now (else it is in the run's log, for ``specs resume``)."""

    gate: str
    response: str
    live: bool
    by: str = "cli"
    seq: int | None = None  # its number in the log (a paused run's answer)


def answer_gate(run_dir: Path, step: str | None, response: str, *,
                by: str = "cli") -> Answer:
    """Answer a run's pending gate (the first, or the one of ``step``), as ``specs approve``
    / ``specs reject`` do: a run waiting at it now (a terminal, ``--wait``, an API handle)
    takes the answer from its inbox and goes on; a paused run gets it in its log, for
    ``specs resume``. ``by`` says who answered (``cli``, ``dashboard``). Raises UsageError
    when no gate is pending (at ``step``) or the response does not fit it."""
    if run_is_live(run_dir):
        gate = _pending_gate(read_run(run_dir), step, run_dir)
        text = _checked(response, gate)
        path = inbox_file(run_dir, gate.gate)
        write_text_atomic(path, json.dumps({"response": text, "by": by}))
        return Answer(gate.gate, text, live=True, by=by)
    lock = RunLock(run_dir)
    lock.acquire()
    try:
        events = read_run(run_dir)
        gate = _pending_gate(events, step, run_dir)
        text = _checked(response, gate)
        verb, _, arg = text.partition(":")
        answer = ev.GateAnswered(gate=gate.gate, response=text, by=by,
                                 guidance=arg if verb == "guidance" else None)
        answer.seq = (events[-1].seq if events else 0) + 1
        answer.ts = ev.iso(time.time())
        log = EventLog(run_dir / "events.jsonl", fsync_interval=0)
        log.append(answer)
        log.close()
        return Answer(gate.gate, text, live=False, by=by, seq=answer.seq)
    finally:
        lock.release()


def open_gates(events: list[ev.Event]) -> list[ev.GateRequested]:
    """The gates of a run that wait for an answer, in the order they were asked."""
    requested: dict[str, ev.GateRequested] = {}
    for event in events:
        if isinstance(event, ev.GateRequested):
            requested[event.gate] = event
        elif isinstance(event, ev.GateAnswered | ev.GateClosed):
            requested.pop(event.gate, None)
    return list(requested.values())


def _pending_gate(events: list[ev.Event], step: str | None, run_dir: Path) -> ev.GateRequested:
    waiting = [g for g in open_gates(events) if step is None or g.step == step]
    if not waiting:
        where = f" at step {step}" if step else ""
        raise UsageError(f"run {run_dir.name} has no pending decision{where}")
    return waiting[0]


def _checked(response: str, gate: ev.GateRequested) -> str:
    verb, arg = parse_response(response, gate.options)
    return f"{verb}:{arg}" if arg else verb


@dataclass
class RunView:
    """One run as ``specs show-run`` shows it: its state rebuilt from its events and its
    progress document; ``document`` and ``state`` are None when the run's spec can no longer
    be read (``summary`` is always there)."""

    run_dir: Path
    summary: RunSummary
    state: RunState | None
    document: dict[str, Any] | None
    spec_problem: str | None = None  # why the spec could not be read


def show_run(root: Path, name: str, warn: Callable[[str], None] | None = None) -> RunView:
    """The run ``name`` (an id, a unique prefix or ``last``) of the state folder ``root``;
    ``warn`` is told of damaged lines of its log."""
    run_dir = find_run(root, name)
    events = read_run(run_dir, warn)
    summary = summarize(events, run_dir.name)
    if summary.status in ("initializing", "running") and not run_is_live(run_dir):
        summary.status = "interrupted"
    opened = next((e for e in events if isinstance(e, ev.RunOpened)), None)
    parameters = opened.spec.get("parameters") if opened else None
    if not parameters or not Path(parameters).is_file():
        return RunView(run_dir, summary, None, None, "the spec is no longer there")
    loaded = load_spec(Path(parameters))
    if loaded.spec is None:
        return RunView(run_dir, summary, None, None, "the spec is no longer readable")
    state = RunState(loaded.spec)
    for event in events:
        state.apply(event)
    return RunView(run_dir, summary, state, progress_document(loaded.spec, state))
