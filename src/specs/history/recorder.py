"""The history recorder: a subscriber of the engine's events that writes the history database.

``recorder(event, state)`` only appends the event to a queue (one ``deque.append``: the engine's
hot path pays nothing more). A helper thread opens the database (migrations applied), turns the
events into rows (:class:`~specs.history.projection.RunRows`) and writes the rows they changed
in one transaction per batch (on PostgreSQL with one notification per run it changed, see
:meth:`~specs.history.store.HistoryStore.notify`): at most every ``interval`` seconds (0.1 by
default), at once when the run pauses or ends, and when :meth:`HistoryRecorder.flush` or
:meth:`HistoryRecorder.close` is called (both return when everything recorded so far is
committed). A batch that cannot be written is tried again with the next one, so a locked or
briefly unreachable database loses nothing while the process lives; what it never could write
is in the run's ``events.jsonl``, from which ``specs history rebuild`` adds it.

A run resumed in a new process starts its projection from the run's ``events.jsonl`` (the events
before the resume were recorded by the process before, or not at all: either way the rows come
out whole). The history never stops a run: an error is kept in :attr:`HistoryRecorder.error`
(one line, for the caller to print as a warning).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specs import events as ev
from specs.engine.state import RunState
from specs.history.ingest import compliance_score, facts_for
from specs.history.projection import RunRows, SpecFacts
from specs.history.store import HistoryError, HistoryStore, database_url
from specs.spec.model import Spec

__all__ = ["HistoryRecorder", "recorder_for"]

_NOW = frozenset({"run-ended", "run-paused"})


class HistoryRecorder:
    """Subscriber ``(event, state) -> None`` that records runs in the history; see the module
    docstring. ``open_store`` is called once, on the helper thread."""

    def __init__(self, open_store: Callable[[], HistoryStore], *, state_dir: Path,
                 spec: Spec | None = None, interval: float = 0.1,
                 owns_store: bool = True) -> None:
        self.state_dir = state_dir
        self.spec = spec
        self.interval = interval
        self.error: str | None = None
        self.batches = 0
        self._open_store = open_store
        self._owns_store = owns_store
        self._store: HistoryStore | None = None
        self._queue: collections.deque[tuple[ev.Event, RunState]] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Condition()
        self._queued = 0  # events queued so far (written by the caller's thread only)
        self._written = 0  # events whose rows are committed (written by the helper only)
        self._closing = False
        self._thread: threading.Thread | None = None
        self._runs: dict[str, RunRows] = {}
        self._unwritten: set[str] = set()  # runs whose last batch failed: written whole next
        self._ended: dict[str, RunState] = {}

    def __call__(self, event: ev.Event, state: RunState) -> None:
        self._queue.append((event, state))
        self._queued += 1
        if self._thread is None:
            self._start()
        if event.name in _NOW:
            self._wake.set()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="history")
        self._thread.start()

    # -- waiting -----------------------------------------------------------------------------

    def flush(self, state: RunState | None = None, timeout: float = 120.0) -> None:
        """Return once every event recorded so far is committed (or the writer failed)."""
        if self._thread is None:
            return
        target = self._queued
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._written < target and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    self.error = self.error or "the history database did not answer in time"
                    return
                self._lock.wait(min(left, 0.5))
                self._wake.set()

    def close(self) -> None:
        """Flush, stop the helper thread and close the database."""
        self.flush()
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join(timeout=30)
            self._thread = None
        if self._store is not None and self._owns_store:
            self._store.close()
        self._store = None

    # -- the helper thread -------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            self._store = self._open_store()
        except HistoryError as exc:
            self.error = f"the run is not in the history: {exc}"
        except Exception as exc:  # an unexpected driver error must not reach the run
            self.error = f"the run is not in the history: {exc.__class__.__name__}: {exc}"
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            closing = self._closing
            taken = self._drain()
            if self._store is not None:
                self._write()
            with self._lock:
                self._written += taken
                self._lock.notify_all()
            if closing and not self._queue:
                return

    def _drain(self) -> int:
        queue, taken = self._queue, 0
        while True:
            try:
                event, state = queue.popleft()
            except IndexError:
                return taken
            taken += 1
            rows = self._rows_for(event, state)
            rows.apply(event)
            if event.name == "run-ended":
                self._ended[rows.run_id] = state

    def _rows_for(self, event: ev.Event, state: RunState) -> RunRows:
        if isinstance(event, ev.RunOpened):
            rows = self._runs[event.run_id] = RunRows(
                event.run_id, source_path=str(self._events_path(event.run_id)),
                facts=self._facts(event))
            return rows
        run_id = state.run_id
        found = self._runs.get(run_id)
        if found is None:  # a resumed run: what came before is in its events.jsonl
            found = self._runs[run_id] = self._resumed(run_id, event.seq)
        return found

    def _events_path(self, run_id: str) -> Path:
        return (self.state_dir / "runs" / run_id / "events.jsonl").resolve()

    def _facts(self, opened: ev.RunOpened) -> SpecFacts:
        if self.spec is not None and self.spec.descriptor == opened.descriptor:
            return SpecFacts.of(self.spec)
        return facts_for(opened)

    def _resumed(self, run_id: str, seq: int) -> RunRows:
        path = self._events_path(run_id)
        earlier = [e for e in ev.read_events(path) if e.seq < seq] if path.is_file() else []
        opened = next((e for e in earlier if isinstance(e, ev.RunOpened)), None)
        rows = RunRows(run_id, source_path=str(path),
                       facts=self._facts(opened) if opened is not None else SpecFacts())
        for event in earlier:
            rows.apply(event)
        self._unwritten.add(run_id)  # its rows from before may be missing: write them all
        return rows

    def _write(self) -> None:
        store = self._store
        assert store is not None
        batch: list[tuple[str, list[Any]]] = []
        for run_id, rows in self._runs.items():
            state = self._ended.pop(run_id, None)
            if state is not None and rows.run["compliance_score"] is None:
                rows.run["compliance_score"] = compliance_score(self.spec, rows, state)
            taken = rows.all_rows() if run_id in self._unwritten else rows.take()
            if taken:
                batch.append((run_id, taken))
        if not batch:
            return
        try:
            with store.writing() as conn:
                for _run_id, taken in batch:
                    for table, items in taken:
                        store.upsert(conn, table, items)
                store.notify(conn, (run_id for run_id, _ in batch))
        except Exception as exc:  # HistoryError, or a driver error: try again next batch
            self.error = f"the history database could not be written: {exc}"
            self._unwritten.update(run_id for run_id, _ in batch)
            return
        self.batches += 1
        self.error = None
        for run_id, _ in batch:
            self._unwritten.discard(run_id)


_STORES: dict[str, HistoryStore] = {}
_STORES_LOCK = threading.Lock()


def shared_store(url: str) -> HistoryStore:
    """The process's store of ``url`` (opened, migrations applied, once per process): the
    recorders of successive runs in one process share its connection pool."""
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            store = _STORES[url] = HistoryStore(url)
        return store


def recorder_for(state_dir: Path, database_url_: str | None = None, *,
                 spec: Spec | None = None, interval: float = 0.1) -> HistoryRecorder:
    """The history recorder of runs in ``state_dir``: SQLite at ``<state_dir>/history.db``, or
    the database of ``database_url_`` / ``$SPECS_DATABASE_URL``. ``spec`` (the run's spec, when
    the caller has it) spares loading it again for the steps' descriptions and execution
    methods. The URL is checked now (a bad one raises :class:`~specs.errors.UsageError`); the
    database is opened on the helper thread."""
    url = database_url(state_dir, database_url_)
    if url not in _STORES and not url.startswith("sqlite:"):
        # the URL and its driver, checked now (the state folder's SQLite file is made by the
        # first write: a run refused before it starts leaves nothing behind)
        HistoryStore(url, migrate=False).close()
    return HistoryRecorder(lambda: shared_store(url), state_dir=state_dir, spec=spec,
                           interval=interval, owns_store=False)
