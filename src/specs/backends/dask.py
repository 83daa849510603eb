"""The Dask backend: step attempts run on the workers of a Dask distributed cluster.

``specs run PATH --backend dask --scheduler tcp://HOST:8786`` connects to a running scheduler;
``--backend dask`` alone starts a :class:`distributed.LocalCluster` of worker *processes* on
this machine for the length of the run. docs/distributed.md shows a two-worker setup.

What runs where. The engine (this process) keeps everything that decides: the plan and the
scheduler, retries and backoff, backups, expected-output checks, gates, events, the progress
file, the notepad. Only the attempt itself travels: :meth:`DaskBackend.submit` sends one
picklable :class:`RemoteAttempt` (the local executor to call, by reference; the action; a copy
of the :class:`~specs.executors.base.StepContext` with absolute paths and a snapshot of earlier
outputs) to a worker, where :func:`run_attempt_remote` runs the *same* local executor code
(:func:`~specs.executors.command.run_command`, :func:`~specs.executors.python.run_python`...)
on a private event loop and returns the :class:`~specs.executors.base.Outcome`. Workers read
and write the spec folder, the workspace and the run's output folder at the engine's paths:
they must see the same files at the same paths (one machine, or a shared filesystem).

Cancellation. When the engine cancels an attempt (``abort_siblings``, Ctrl-C, SIGTERM) the
Dask future is cancelled; on the worker a watcher thread sees its task leave the ``executing``
state and cancels the attempt's coroutine, so a running command's process group is killed
(SIGKILL) as it is locally. A worker that shuts down kills the groups it still runs
(:class:`KillOnTeardown`).

Failures at the boundary (the worker died, the scheduler went away, the attempt could not be
sent) come back as ``Outcome("error", transient=True)``: the engine's backoff and retry rules
apply to them as to any transient failure. Dask's own re-runs are turned off on the local
cluster (``allowed-failures = 0``), so a step never runs twice without the engine knowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import dask
import distributed
from distributed import Client, LocalCluster

from specs.errors import SpecsError, UsageError
from specs.executors import python as python_executor
from specs.executors.base import Executor, Outcome, StepContext
from specs.executors.command import run_command, run_tool
from specs.spec.model import Action

CONNECT_TIMEOUT_S = 10.0  # reaching the scheduler
WORKERS_TIMEOUT_S = 10.0  # a scheduler with no worker yet: how long to wait for one
CANCEL_TIMEOUT_S = 5.0  # telling the scheduler an attempt is cancelled
WATCH_INTERVAL_S = 0.2  # how often a worker looks whether its attempt was cancelled
NO_WORKERS_S = 30.0  # mid-run: an attempt waiting this long with no worker at all gives up
LOCAL_WORKERS = 2
LOCAL_THREADS = 4  # attempts mostly wait (subprocesses, network): a few per worker process

#: the local executors, by execution method, that run on the workers
LOCAL_EXECUTORS: dict[str, Executor] = {
    "command": run_command, "tool": run_tool, "script": run_tool,
    "python": python_executor.run_python}
#: executors that keep a command's captured output in the run's output folder themselves
_SAVES_OUTPUT = (run_command, run_tool)
#: worker task states that mean "the client no longer wants this attempt"
_GONE = frozenset({"cancelled", "released", "forgotten"})


@dataclass(slots=True)
class RemoteAttempt:
    """Everything a worker needs for one attempt (pickled to the worker)."""

    executor: Executor  # a module-level function: pickled by reference
    action: Action
    context: StepContext  # see portable_context: absolute paths, plain mappings
    key: str  # the Dask key, which the worker watches for a cancellation


# -- the engine's side ---------------------------------------------------------------------


class DaskBackend:
    """Submit step attempts to a Dask cluster; an async context manager around the run.

    ``address`` is a scheduler's (``tcp://HOST:8786``); None starts a local cluster of
    ``n_workers`` worker processes with ``threads_per_worker`` attempts each at most.
    """

    def __init__(self, address: str | None = None, *, n_workers: int = LOCAL_WORKERS,
                 threads_per_worker: int = LOCAL_THREADS,
                 connect_timeout: float = CONNECT_TIMEOUT_S,
                 no_workers_timeout: float = NO_WORKERS_S) -> None:
        self.address = address
        self.n_workers, self.threads_per_worker = n_workers, threads_per_worker
        self.connect_timeout, self.no_workers_timeout = connect_timeout, no_workers_timeout
        self.client: Client | None = None
        self.cluster: LocalCluster | None = None
        self._reconnecting: asyncio.Lock | None = None
        self._inflight: set[asyncio.Task[Any]] = set()  # tasks awaiting an attempt
        self._closing = False

    @property
    def where(self) -> str:
        return self.address or "a local Dask cluster"

    async def __aenter__(self) -> DaskBackend:
        self._closing = False
        try:
            await self._connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    async def _connect(self) -> None:
        if self.address is None:
            try:
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = await LocalCluster(
                        n_workers=self.n_workers, threads_per_worker=self.threads_per_worker,
                        processes=True, asynchronous=True, dashboard_address="127.0.0.1:0",
                        silence_logs=logging.ERROR)
                self.client = await Client(self.cluster, asynchronous=True,
                                           set_as_default=False)
                await _resolved(self.client.register_plugin(
                    IgnoreInterrupts(), name="specs-ignore-interrupts"))
            except Exception as exc:
                raise SpecsError(f"cannot start a local Dask cluster: {_describe(exc)}") \
                    from None
        else:
            try:
                self.client = await Client(self.address, asynchronous=True,
                                           timeout=self.connect_timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {self.address}: "
                                 f"{_describe(exc)}; start one with `dask scheduler` or check "
                                 "the address") from None
        try:
            await _resolved(self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S))
        except (TimeoutError, OSError) as exc:
            raise UsageError(f"the Dask scheduler at {self.where} has no workers "
                             f"({_describe(exc)}); start some with `dask worker "
                             f"{self.address or 'ADDRESS'}`") from None
        await self._plugins(self.client)

    async def _plugins(self, client: Client) -> None:
        with contextlib.suppress(Exception):  # best effort: an old worker may refuse plugins
            await _resolved(client.register_plugin(KillOnTeardown(),
                                                   name="specs-kill-on-teardown"))

    async def _live_client(self) -> Client | str:
        """The client, connected again if the scheduler went away and came back (a scheduler
        restart mid-run costs the attempts it was running, not the run); else why not."""
        client = self.client
        if client is None:
            return "the Dask backend is not connected"
        if client.status not in ("closing", "closed") or self.address is None:
            return client
        if self._reconnecting is None:
            self._reconnecting = asyncio.Lock()
        async with self._reconnecting:  # parallel attempts reconnect once
            if self.client is not client and self.client is not None:
                return self.client
            try:
                fresh: Client = await Client(self.address, asynchronous=True,
                                             timeout=self.connect_timeout,
                                             set_as_default=False)
            except Exception as exc:
                return f"lost the connection to the Dask cluster at {self.address} " \
                       f"({_describe(exc)})"
            await self._plugins(fresh)
            self.client = fresh
            return fresh

    async def close(self) -> None:
        """Cancel the attempts still in flight (their tasks end cancelled, as local attempts
        do when the run is interrupted: nothing more is recorded), then disconnect."""
        self._closing = True
        current = asyncio.current_task()
        pending = [t for t in self._inflight if t is not current and not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CANCEL_TIMEOUT_S)
        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        if client is not None:
            with contextlib.suppress(Exception):
                await _resolved(client.close())
        if cluster is not None:
            with contextlib.suppress(Exception):
                await _resolved(cluster.close())

    def executors(self, extra: Mapping[str, Executor] | None = None) -> dict[str, Executor]:
        """Executors for :class:`~specs.engine.runner.Runner` (``executors=``): the local ones
        (and ``extra``, e.g. a future ``cognitive`` executor: module-level functions), each
        running its attempts on the cluster."""
        return {name: self.remote(fn) for name, fn in {**LOCAL_EXECUTORS, **(extra or {})}.items()}

    def remote(self, executor: Executor) -> Executor:
        """``executor``, run on a worker: an executor for the engine."""

        async def remote_executor(action: Action, ctx: StepContext) -> Outcome:
            return await self.submit(executor, action, ctx)

        remote_executor.__name__ = f"dask_{getattr(executor, '__name__', 'executor')}"
        return remote_executor

    async def submit(self, executor: Executor, action: Action, ctx: StepContext) -> Outcome:
        """Run one attempt on a worker; its outcome, or a boundary failure as an outcome."""
        task = asyncio.current_task()
        if self._closing or task is None:
            raise asyncio.CancelledError  # the backend is closing: the run is over
        self._inflight.add(task)
        try:
            return await self._submit(executor, action, ctx, task)
        finally:
            self._inflight.discard(task)

    async def _submit(self, executor: Executor, action: Action, ctx: StepContext,
                      task: asyncio.Task[Any]) -> Outcome:
        client = await self._live_client()
        if isinstance(client, str):
            return Outcome("error", failure_reason=client, transient=True)
        key = f"{ctx.ref}-{ctx.method}-{ctx.attempt}-{uuid.uuid4().hex[:12]}"
        attempt = RemoteAttempt(executor, action, portable_context(ctx), key)
        try:
            future = client.submit(run_attempt_remote, attempt, key=key, pure=False,
                                   retries=0)
        except Exception as exc:
            return boundary_outcome(exc, self.where)
        try:
            outcome = await self._result(client, future)
        except asyncio.CancelledError:
            await self._cancel(client, future)
            if task.cancelling() or self._closing:
                raise  # the engine cancelled the attempt: the future is cancelled too
            return Outcome("error", failure_reason=f"the attempt was cancelled on {self.where}",
                           transient=True)
        except Exception as exc:
            if self._closing:  # the client closed under the attempt: the run is over
                raise asyncio.CancelledError from None
            return boundary_outcome(exc, self.where)
        finally:
            with contextlib.suppress(Exception):
                future.release()
        if not isinstance(outcome, Outcome):
            return Outcome("error", failure_reason=f"the worker returned a "
                           f"{type(outcome).__name__}, not an outcome")
        if executor in _SAVES_OUTPUT:
            keep_output(ctx, outcome)
        return outcome

    async def _result(self, client: Client, future: distributed.Future[Any]) -> Any:
        """The attempt's result; a cluster left with no worker for ``no_workers_timeout`` is a
        transient error (it waits in the queue as long as some worker is there)."""
        waiting = asyncio.ensure_future(_resolved(future.result()))
        alone = 0.0
        step = min(5.0, self.no_workers_timeout)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=step)
                if done:
                    return waiting.result()
                alone = 0.0 if await self._has_workers(client) else alone + step
                if alone >= self.no_workers_timeout:
                    await self._cancel(client, future)
                    return Outcome("error", transient=True, failure_reason=f"the Dask cluster "
                                   f"at {self.where} has had no worker for {alone:g} s")
        finally:
            waiting.cancel()

    @staticmethod
    async def _has_workers(client: Client) -> bool:
        try:
            found = await asyncio.wait_for(_resolved(client.nthreads()), CANCEL_TIMEOUT_S)
        except Exception:
            return False
        return bool(found)

    async def _cancel(self, client: Client, future: distributed.Future[Any]) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_resolved(client.cancel([future], force=True)),
                                   CANCEL_TIMEOUT_S)


async def _resolved(value: Any) -> Any:
    """A Dask client method's result: awaited in asynchronous mode (where it is a coroutine
    or a future), as is otherwise."""
    return await value if inspect.isawaitable(value) else value


def portable_context(ctx: StepContext) -> StepContext:
    """The context to send: absolute paths (a worker's working directory is its own), the
    outputs of earlier steps as a plain dict, no engine callbacks."""
    return replace(
        ctx, workspace=ctx.workspace.resolve(), spec_folder=ctx.spec_folder.resolve(),
        output_dir=ctx.output_dir.resolve() if ctx.output_dir is not None else None,
        outputs=dict(ctx.outputs), failure_reasons=dict(ctx.failure_reasons),
        vars=dict(ctx.vars), on_spawn=None)


def keep_output(ctx: StepContext, outcome: Outcome) -> None:
    """A worker on another machine saved the captured output where the engine cannot see
    it: keep the engine's copy (``<method>-<n>.stdout``/``.stderr``) as the local run would."""
    if ctx.output_dir is None:
        return
    stem = f"{ctx.method}-{ctx.attempt}"
    with contextlib.suppress(OSError):
        for suffix, text in (("stdout", outcome.text), ("stderr", outcome.stderr)):
            path = ctx.output_dir / f"{stem}.{suffix}"
            if text and not path.exists():
                ctx.output_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(text)


def boundary_outcome(exc: BaseException, where: str) -> Outcome:
    """A failure between the engine and the worker, as an outcome (transient when trying
    again may work: a dead worker, a lost connection)."""
    if isinstance(exc, distributed.KilledWorker):
        last = getattr(getattr(exc, "last_worker", None), "address", None)
        return Outcome("error", transient=True, failure_reason="the Dask worker running the "
                       "attempt died or was lost" + (f" ({last})" if last else ""))
    lost = isinstance(exc, distributed.client.ClosedClientError) or (
        isinstance(exc, distributed.client.FutureCancelledError)
        and "connection" in str(getattr(exc, "reason", "") or ""))
    if lost:
        return Outcome("error", transient=True, failure_reason="lost the connection to the "
                       f"Dask cluster at {where} during the attempt")
    if isinstance(exc, distributed.client.FutureCancelledError):
        return Outcome("error", transient=True,
                       failure_reason=f"the attempt was cancelled on {where} ({_describe(exc)})")
    if isinstance(exc, OSError | TimeoutError):  # CommClosedError is an OSError
        return Outcome("error", transient=True, failure_reason="lost the connection to the "
                       f"Dask cluster at {where} ({_describe(exc)})")
    if isinstance(exc, pickle.PicklingError | TypeError | AttributeError) and \
            "pickle" in str(exc).lower():
        return Outcome("error", failure_reason=f"the attempt cannot be sent to a Dask worker: "
                       f"{_describe(exc)}")
    return Outcome("error", failure_reason=f"Dask backend: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    try:
        text = " ".join(str(exc).split())
    except Exception:  # an exception whose message cannot be made
        text = ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


# -- the worker's side ---------------------------------------------------------------------

_GROUPS: dict[str, int] = {}  # attempt key -> process group running on this worker
_IMPORT_LOCK = threading.Lock()
_IMPORTED: dict[tuple[str, str], str] = {}  # (spec folder, top module) -> run id it serves


def run_attempt_remote(attempt: RemoteAttempt) -> Outcome:
    """On a worker: run one attempt with the local executor and return its outcome.

    Runs in a worker thread on a private event loop (never waiting for stray threads: a
    timed-out plain-function callable keeps its thread, as it does locally). A watcher thread
    cancels the attempt when the engine cancels its future.
    """
    ctx = replace(attempt.context, on_spawn=lambda pgid: _GROUPS.__setitem__(attempt.key, pgid))
    if attempt.executor is python_executor.run_python and attempt.action.callable:
        fresh_imports(attempt.action.callable, str(ctx.spec_folder), ctx.run_id)
    worker = _current_worker()
    loop = asyncio.new_event_loop()
    done = threading.Event()
    try:
        asyncio.set_event_loop(loop)
        task = loop.create_task(_call(attempt.executor, attempt.action, ctx))
        if worker is not None:
            threading.Thread(target=_watch, args=(worker, attempt.key, loop, task, done),
                             name=f"specs-watch-{attempt.key}", daemon=True).start()
        try:
            outcome = loop.run_until_complete(task)
        except asyncio.CancelledError:
            outcome = Outcome("error", failure_reason="cancelled by the engine")
        except Exception as exc:  # an executor bug: the step's error, never the worker's
            outcome = Outcome("error", failure_reason=f"executor error on {_host()}: "
                              f"{_describe(exc)}")
    finally:
        done.set()
        _GROUPS.pop(attempt.key, None)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
    if outcome.status == "error" and outcome.failure_reason and \
            outcome.failure_reason.startswith("working directory "):
        outcome.failure_reason += f" on {_host()} (workers need the spec folder at the " \
            "same path: a shared filesystem)"
    return portable_outcome(outcome)


async def _call(executor: Executor, action: Action, ctx: StepContext) -> Outcome:
    return await executor(action, ctx)


def _current_worker() -> distributed.Worker | None:
    try:
        return distributed.get_worker()
    except ValueError:  # called outside a Dask task (tests, a thread pool)
        return None


def _watch(worker: distributed.Worker, key: str, loop: asyncio.AbstractEventLoop,
           task: asyncio.Task[Outcome], done: threading.Event) -> None:
    """Cancel ``task`` once the worker stops wanting ``key`` (the client cancelled it, or
    went away): ``run_process`` then kills the command's process group."""
    tasks = getattr(getattr(worker, "state", None), "tasks", None)
    if not isinstance(tasks, Mapping):
        return  # an unknown Dask: the attempt runs to its end or its timeout
    while not done.wait(WATCH_INTERVAL_S):
        state = tasks.get(key)
        if state is None or getattr(state, "state", None) in _GONE:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
            return


def _host() -> str:
    return f"worker {socket.gethostname()} (pid {os.getpid()})"


def fresh_imports(target: str, folder: str, run_id: str) -> None:
    """Import a step's module as a new engine process would: from *its* spec folder, and
    afresh for each run. A long-lived worker serves many runs and spec folders; without this,
    two specs with a ``steps.py`` each would share the first one imported, and an edited
    module would not be seen until the worker restarts."""
    top = target.partition(":")[0].split(".")[0]
    root = Path(folder)
    if not top or not ((root / f"{top}.py").is_file() or (root / top).is_dir()):
        return  # not the spec folder's own module (an installed package): leave it be
    with _IMPORT_LOCK:
        new_run = _IMPORTED.get((folder, top)) != run_id
        _IMPORTED[(folder, top)] = run_id
        inside = folder.rstrip(os.sep) + os.sep
        family = [name for name in sys.modules if name == top or name.startswith(top + ".")]
        stale = [name for name in family if new_run
                 or not (getattr(sys.modules[name], "__file__", None) or "").startswith(inside)]
        for name in stale:
            del sys.modules[name]
        if stale:
            for cached in [k for k in python_executor._CACHE
                           if k[0].partition(":")[0].split(".")[0] == top]:
                del python_executor._CACHE[cached]
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        with contextlib.suppress(Exception, SystemExit):  # the executor reports the error
            python_executor.resolve(target, folder)


def portable_outcome(outcome: Outcome) -> Outcome:
    """The outcome as it can travel back: an output that does not pickle becomes its repr."""
    try:
        pickle.dumps(outcome)
        return outcome
    except Exception:
        return replace(outcome, output=repr(outcome.output),
                       artifacts=[str(a) for a in outcome.artifacts],
                       verdict=None if outcome.verdict is None else str(outcome.verdict),
                       escalate=None if outcome.escalate is None else str(outcome.escalate))


class IgnoreInterrupts(distributed.WorkerPlugin):
    """For the workers of the engine's own local cluster: a Ctrl-C at the terminal reaches
    the engine's whole process group, workers included. The engine handles it (it cancels the
    attempts, which kills their commands, then closes the cluster); the workers ignore it."""

    def setup(self, worker: distributed.Worker) -> None:
        with contextlib.suppress(ValueError):  # not the main thread: nothing to do
            signal.signal(signal.SIGINT, signal.SIG_IGN)


class KillOnTeardown(distributed.WorkerPlugin):
    """When a worker shuts down, kill the process groups of the attempts it still runs (they
    run in their own sessions, so they would outlive the worker otherwise).

    Every engine that connects registers it again, which tears the previous copy down on a
    *running* worker: that must not touch the attempts of the runs going on."""

    def teardown(self, worker: distributed.Worker) -> None:
        if getattr(getattr(worker, "status", None), "name", "") in ("running", "paused"):
            return  # replaced by a newer copy, not a worker shutting down
        for pgid in list(_GROUPS.values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
