"""Starting, watching, answering and resuming runs: the library API's run half (docs/api.md).

:func:`start_run` and :func:`resume_run` wire a run once (:mod:`specs.api.wiring`) and return a
:class:`Run`: await it (``await run`` or ``await run.wait()``) for its
:class:`~specs.engine.runner.RunResult`; iterate ``run.events()`` for its events as they
happen; answer its pending gate with :meth:`Run.answer` (or :meth:`Run.approve`,
:meth:`Run.reject`) when it was started with ``answers=True``; :meth:`Run.cancel` stops it
(``halted``, resumable, as Ctrl-C). Both must be called with an event loop running (the run is a
task on it); :func:`run_spec` is the synchronous one-call form.

Without ``answers=True`` or a ``human``, a gate pauses the run (status ``awaiting_human``, exit
code 3), as ``specs run --no-input`` does; it is answered later with
:func:`specs.api.runs.answer_gate` (``specs approve``/``reject``) and continued with
:func:`resume_run`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from pathlib import Path
from typing import Any

from specs import backends
from specs import events as ev
from specs.api.runs import find_run, read_run
from specs.api.wiring import LlmChoice, assemble, make_provider, mcp_hub, projections, services
from specs.engine.human import Human, parse_response
from specs.engine.journal import Subscriber
from specs.engine.runner import Runner, RunOptions, RunResult, file_sha256, new_run_id
from specs.engine.state import GateState, RunState
from specs.errors import UsageError
from specs.history import recorder_for
from specs.spec.files import LoadedSpec
from specs.spec.fingerprint import spec_fingerprint
from specs.spec.load import load_spec

__all__ = ["Run", "resume_run", "run_spec", "start_run"]

#: what ``on_event`` and ``run.events()`` get
OnEvent = Callable[[ev.Event, RunState], None]


class _Answers:
    """The :class:`~specs.engine.human.Human` of a run answered through its :class:`Run`
    handle: a gate waits until :meth:`Run.answer` gives its answer."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[str]] = {}

    async def ask(self, gate: GateState, context: str) -> str:
        future = self.waiting.get(gate.id)
        if future is None:
            future = self.waiting[gate.id] = asyncio.get_running_loop().create_future()
        try:
            return await future
        finally:
            self.waiting.pop(gate.id, None)


class Run:
    """A run in progress; see the module docstring."""

    def __init__(self, runner: Runner, start: Callable[[], Awaitable[RunResult]],
                 answers: _Answers | None, warn: Callable[[str], None] | None = None) -> None:
        self.runner = runner
        self._warn = warn
        self._answers = answers
        self._queues: list[asyncio.Queue[ev.Event | None]] = []
        runner.subscribers.append(self._publish)
        self._task: asyncio.Task[RunResult] = asyncio.ensure_future(self._go(start))

    async def _go(self, start: Callable[[], Awaitable[RunResult]]) -> RunResult:
        try:
            return await start()
        finally:
            for queue in self._queues:
                queue.put_nowait(None)
            for subscriber in self.runner.subscribers:  # (closed with the run)
                error = getattr(subscriber, "error", None)
                if error and self._warn is not None:
                    self._warn(f"the run history was not fully recorded: {error}")

    def _publish(self, event: ev.Event, state: RunState) -> None:
        for queue in self._queues:
            queue.put_nowait(event)

    @property
    def run_id(self) -> str:
        return self.runner.state.run_id or self.runner.options.run_id or ""

    @property
    def state(self) -> RunState:
        """The run's state as of now (read-only: it changes only by the run's events)."""
        return self.runner.state

    @property
    def done(self) -> bool:
        return self._task.done()

    async def wait(self) -> RunResult:
        """The run's result once it has ended, paused or been halted. Cancelling the wait
        cancels the run (as :meth:`cancel`)."""
        return await self._task

    def __await__(self) -> Generator[Any, None, RunResult]:
        return self.wait().__await__()

    async def events(self) -> AsyncIterator[ev.Event]:
        """The run's events from now on, as they are emitted, until it stops. (The events
        before are in ``run.state`` and the run's events.jsonl.)"""
        queue: asyncio.Queue[ev.Event | None] = asyncio.Queue()
        if self._task.done():
            return
        self._queues.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.remove(queue)

    def pending(self) -> list[GateState]:
        """The gates waiting for an answer now."""
        return [g for g in self.runner.state.open_gates() if g.response is None]

    async def answer(self, response: str, gate: str | None = None) -> None:
        """Answer a pending gate (the only one, or ``gate``) with a response a gate accepts:
        approve, guidance:TEXT, choose:METHOD, retry, accept_failure, skip, abort,
        switch_mode:MODE, reject (:mod:`specs.engine.human`). Raises UsageError when no gate
        waits, the gate is unknown, or the response does not fit it."""
        if self._answers is None:
            raise UsageError("this run was started without answers=True: its gates pause it; "
                             "answer with specs.api.runs.answer_gate, then resume_run")
        for _ in range(100):  # a gate just requested may not be waiting yet: let it
            if self._answers.waiting:
                break
            await asyncio.sleep(0)
        waiting = {gid: f for gid, f in self._answers.waiting.items() if not f.done()}
        if gate is None and len(waiting) > 1:
            raise UsageError(f"{len(waiting)} gates wait ({', '.join(sorted(waiting))}); name "
                             "one")
        target = gate if gate is not None else next(iter(waiting), None)
        if target is None or target not in waiting:
            raise UsageError(f"no gate {target!r} is waiting" if target else
                             "no gate is waiting for an answer")
        parse_response(response, self.runner.state.gates[target].options)
        waiting[target].set_result(response)

    async def approve(self, gate: str | None = None, *, guidance: str | None = None) -> None:
        await self.answer(f"guidance:{guidance}" if guidance else "approve", gate)

    async def reject(self, gate: str | None = None) -> None:
        await self.answer("reject", gate)

    def cancel(self) -> None:
        """Stop the run as Ctrl-C does: its processes are killed, it ends ``halted``
        (resumable); awaiting it then raises :class:`asyncio.CancelledError`."""
        self._task.cancel()


def _subscribers(loaded: LoadedSpec, on_event: OnEvent | Iterable[Subscriber] | None,
                 write_files: bool, state: Path, history: bool | str) -> list[Subscriber]:
    found = projections(loaded) if write_files else []
    if history:  # True: the state folder's history.db, or $SPECS_DATABASE_URL; or a URL
        found.append(recorder_for(state, history if isinstance(history, str) else None,
                                  spec=loaded.spec))
    if callable(on_event):
        found.append(on_event)
    elif on_event is not None:
        found.extend(on_event)
    return found


def start_run(loaded: LoadedSpec | Path | str, options: RunOptions | None = None, *,
              llm: LlmChoice | None = None, human: Human | None = None,
              answers: bool = False, on_event: OnEvent | Iterable[Subscriber] | None = None,
              backend: str | None = None, scheduler: str | None = None,
              write_files: bool = True, environ: Mapping[str, str] | None = None,
              warn: Callable[[str], None] | None = None, wait: bool = False,
              history: bool | str = True) -> Run:
    """Start a run of a spec (a :class:`LoadedSpec`, or the path of a spec folder or
    parameters file) on the running event loop; see the module docstring.

    ``llm`` chooses the provider, model, recording, replay and cache (else the spec and the
    environment decide); ``human`` answers gates (e.g. a
    :class:`~specs.engine.human.TerminalHuman`), or ``answers=True`` lets the returned
    handle answer them; ``on_event`` is called with every event and the run state (or give
    a list of such subscribers); ``backend``/``scheduler`` run the attempts on Dask;
    ``write_files`` keeps progress_X.json and notepad_X.md (the default); ``wait`` makes a
    gate wait for an answer from another process (``specs approve``, the dashboard) instead
    of pausing the run; ``warn`` gets the warnings of the MCP servers' check; ``environ``
    replaces ``os.environ`` for the LLM settings; ``history`` records the run in the history
    database (the state folder's ``history.db``, or ``$SPECS_DATABASE_URL``; a string is a
    database URL; False: not at all).

    Raises :class:`~specs.errors.SpecLoadError` for a spec that does not load,
    :class:`~specs.errors.ProviderError` for a provider that cannot be configured,
    :class:`~specs.errors.UsageError` for a bad choice. The run's own problems (an invalid
    spec at pre-flight, failed steps, a missing MCP server) come with its result or from
    awaiting it.
    """
    loaded = loaded if isinstance(loaded, LoadedSpec) else load_spec(Path(loaded))
    loaded.require()
    options = dataclasses.replace(options or RunOptions())
    options.run_id = options.run_id or new_run_id(time.time())
    choice = llm or LlmChoice()
    remote = backends.select(backend, scheduler)  # an unreachable scheduler stops us here
    provider = make_provider(loaded, options.state_dir, options.run_id, choice, environ)
    hub = mcp_hub(loaded)
    handle = _Answers() if answers and human is None else None
    runner = assemble(loaded, options, llm=provider, hub=hub, cache=choice.cache,
                      human=human or handle, backend=remote, wait=wait,
                      subscribers=_subscribers(loaded, on_event, write_files,
                                               options.state_dir, history))
    start = services(runner, provider, hub, runner.start, warn=warn or _ignore, backend=remote)
    return Run(runner, start, handle, warn)


def resume_run(run: str, options: RunOptions | None = None, *, force: bool = False,
               llm: LlmChoice | None = None, human: Human | None = None,
               answers: bool = False, on_event: OnEvent | Iterable[Subscriber] | None = None,
               backend: str | None = None, scheduler: str | None = None,
               write_files: bool = True, environ: Mapping[str, str] | None = None,
               warn: Callable[[str], None] | None = None, wait: bool = False,
               history: bool | str = True) -> Run:
    """Continue a paused, halted, interrupted or crashed run (its id, a unique prefix, or
    ``last``, in ``options.state_dir``) from its events; the other arguments as for
    :func:`start_run`. ``options`` gives ``yes``, ``no_input``, ``decision`` (the answer to
    the pending gate), ``max_cost_usd``/``max_tokens``; mode, strictness and variables are
    the run's own.

    The spec must be where the run found it and unchanged, unless ``force`` (a change in
    ``[budget]`` only is accepted: a raised budget continues a run its budget halted).
    A run that has ended is not continued: UsageError (its progress file and notepad are
    brought up to date first, in case a crash stopped them just before the end).
    """
    given = options or RunOptions()
    say = warn or _ignore
    run_dir = find_run(given.state_dir, run)
    events = read_run(run_dir, say)
    opened = next((e for e in events if isinstance(e, ev.RunOpened)), None)
    if opened is None:
        raise UsageError(f"run {run_dir.name} has no run-opened event; it cannot be resumed")
    parameters = opened.spec.get("parameters")
    if not parameters or not Path(parameters).is_file():
        raise UsageError(f"the spec of run {run_dir.name} is gone ({parameters})")
    loaded = load_spec(Path(parameters))
    loaded.require()
    changed = [name for name, key, path in (
        ("parameters", "parameters_sha256", loaded.parameters_path),
        ("markdown", "markdown_sha256", loaded.markdown_path))
        if opened.spec.get(key) and file_sha256(path) != opened.spec.get(key)]
    if changed == ["parameters"] and not force and _only_budget_changed(opened, loaded):
        say(f"only [budget] changed in {loaded.parameters_path}; resuming with the new budget")
        changed = []
    if changed and not force:
        raise UsageError(f"the spec changed since run {run_dir.name} started "
                         f"({', '.join(changed)}); use --force to resume anyway")
    recorded = _recorded_budget(events)
    options = dataclasses.replace(
        given, run_id=opened.run_id, mode=opened.options.get("mode"),
        strict=bool(opened.options.get("strict")), vars=dict(opened.options.get("vars") or {}),
        force=force,
        max_cost_usd=given.max_cost_usd if given.max_cost_usd is not None
        else recorded.get("max_cost_usd"),
        max_tokens=given.max_tokens if given.max_tokens is not None
        else recorded.get("max_tokens"))
    choice = dataclasses.replace(llm or LlmChoice(), replay=None)
    remote = backends.select(backend, scheduler)
    provider = make_provider(loaded, options.state_dir, opened.run_id, choice, environ)
    hub = mcp_hub(loaded)
    handle = _Answers() if answers and human is None else None
    subscribers = _subscribers(loaded, on_event, write_files, options.state_dir, history)
    runner = assemble(loaded, options, llm=provider, hub=hub, cache=choice.cache,
                      human=human or handle, subscribers=subscribers, backend=remote,
                      wait=wait)

    async def resume() -> RunResult:
        try:
            return await runner.resume(run_dir, events)
        except UsageError as exc:
            if runner.state.end is None:
                raise
            for writer in subscribers:  # ended: bring the projections up to date
                flush = getattr(writer, "flush", None)
                if callable(flush):
                    flush(runner.state)
            raise UsageError(f"{exc} (its progress file and notepad were brought up to "
                             "date)") from None

    return Run(runner, services(runner, provider, hub, resume, warn=say, backend=remote),
               handle, warn)


def run_spec(path: LoadedSpec | Path | str, options: RunOptions | None = None,
             **kwargs: Any) -> RunResult:
    """Run a spec to its end (or pause) and return the result: :func:`start_run` and wait,
    in a new event loop (the call blocks; not for use inside a running loop)."""

    async def go() -> RunResult:
        return await start_run(path, options, **kwargs)

    return asyncio.run(go())


def _ignore(_: str) -> None:
    return None


def _only_budget_changed(opened: ev.RunOpened, loaded: LoadedSpec) -> bool:
    """The parameters file differs from the run's only in ``[budget]``."""
    recorded = opened.spec.get("fingerprint_without_budget")
    return bool(recorded) and loaded.spec is not None and \
        spec_fingerprint(loaded.spec) == recorded


def _recorded_budget(events: list[ev.Event]) -> dict[str, Any]:
    """The max_cost_usd / max_tokens the run was last started or resumed with."""
    found: dict[str, Any] = {}
    for event in events:
        if isinstance(event, ev.RunOpened | ev.RunResumed):
            found.update({k: v for k, v in event.options.items()
                          if k in ("max_cost_usd", "max_tokens")})
    return found
