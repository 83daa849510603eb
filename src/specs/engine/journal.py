"""The journal of a run: its event log on disk, the lock on its folder, and the emitting of
events (number, timestamp, apply to the state, append, notify the subscribers).

Durability: events are buffered in memory only between two side effects. The engine flushes
the buffer (one ``write(2)``) before anything that acts on the world or waits (an executor call,
a check command, a backoff sleep, a human prompt) and right after every step's final status
(grouped: the steps that end in one event-loop iteration share one write at its end), so a
killed process loses no record of work it did: a completed step is never run again on resume,
and an attempt that started is known to have started. ``fsync`` is grouped: at most every
``fsync_interval`` seconds, and always at a pause, a halt and the end of a run
(``fsync_interval=0`` syncs every flush). The periodic fsync runs on a helper thread, so a
slow disk never stalls the event loop (the ``write`` before it stays on the caller's thread,
so a killed process loses nothing either way); the final one, at close, is synchronous. A
line torn by a crash mid-write is ignored by :func:`read_events` and cut off before the next
append.

Group commit: while several branches of a parallel run start attempts in one event-loop
iteration, they share one write at its end (:meth:`Journal.flushed`); a branch running alone
writes at once. Step ends are grouped the same way (one write per iteration for every step
that ended in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Sized
from pathlib import Path

from specs import events as ev
from specs.engine.state import RunState
from specs.engine.stops import WriteFailed
from specs.errors import UsageError
from specs.executors.command import stop_leftovers
from specs.secrets import Masker

__all__ = ["FLUSH_AFTER", "EventLog", "Journal", "RunLock", "SpecLock", "Subscriber"]

Subscriber = Callable[[ev.Event, RunState], None]

#: events after which the log is written at once (a final status must survive a kill -9)
FLUSH_AFTER = frozenset({"step-ended", "step-reopened", "failure-resolved", "gate-requested",
                         "gate-answered", "gate-closed", "task-ended", "run-paused",
                         "run-ended", "mode-switched", "run-opened", "run-resumed"})


class EventLog:
    """Append-only JSON Lines writer for one run's events; see the module docstring."""

    def __init__(self, path: Path, *, fsync_interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.fsync_interval = fsync_interval
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_torn_tail()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size  # the log's whole lines so far
        self._last_sync = clock()
        self._buffer: list[bytes] = []
        self._written = 0  # writes so far
        self._synced = 0  # writes an fsync has covered
        self._fd_lock = threading.Lock()  # one fsync at a time, none after close
        self._wanted = threading.Event()
        self._syncer: threading.Thread | None = None
        self._closing = False

    def _truncate_torn_tail(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, event: ev.Event, *, flush: bool = True) -> None:
        """Add an event; write it now unless ``flush`` is False (then at the next flush)."""
        self._buffer.append(ev.encode_event(event))
        if flush:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events in one ``write(2)``; fsync if the interval has passed
        (on the helper thread; at once when the interval is 0)."""
        self._write_buffer()
        if self._synced < self._written and \
                self._clock() - self._last_sync >= self.fsync_interval:
            if self.fsync_interval <= 0:
                self.sync()
            else:
                self.sync_soon()

    def sync_soon(self) -> None:
        """Write the buffer and have the helper thread fsync it now (the caller goes on: at
        the end of a run, the progress file and notepad are written meanwhile)."""
        self._write_buffer()
        self._last_sync = self._clock()
        if self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_loop, daemon=True,
                                            name=f"fsync {self.path.parent.name}")
            self._syncer.start()
        self._wanted.set()

    def _sync_loop(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            with contextlib.suppress(OSError):
                self._fsync()

    def _fsync(self) -> None:
        with self._fd_lock:
            target = self._written
            if self._fd >= 0 and self._synced < target:
                os.fsync(self._fd)
                self._synced = max(self._synced, target)

    def sync(self) -> None:
        """Write the buffer and fsync now (unless everything written is synced already)."""
        self._write_buffer()
        self._fsync()
        self._last_sync = self._clock()

    def _write_buffer(self) -> None:
        if not self._buffer:
            return
        data = b"\n".join(self._buffer) + b"\n"
        self._buffer.clear()
        size = self._size
        try:
            while data:
                wrote = os.write(self._fd, data)
                data = data[wrote:]
                self._size += wrote
        except OSError:
            # a full disk: what was written of these lines is cut off, so the log ends
            # with whole lines (and the next process can append to it)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
                self._size = size
            raise
        self._written += 1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            if self._syncer is not None:  # let a sync in progress finish, then stop
                self._closing = True
                self._wanted.set()
                self._syncer.join()
                self._syncer = None
            self.sync()
            with self._fd_lock:
                os.close(self._fd)
                self._fd = -1


class RunLock:
    """An exclusive lock on a run folder: one process runs (or answers) a run at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "lock"
        self._fd = -1

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = -1
            raise UsageError(f"run {self.path.parent.name} is in use by another specs "
                             "process; wait for it or stop it first") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class Journal:
    """A run's events, written and handed out; see the module docstring. One per run (or
    resume): :meth:`open` takes the run folder's lock and opens its log, :meth:`close` lets go
    of both."""

    def __init__(self, state: RunState, subscribers: list[Subscriber], *,
                 clock: Callable[[], float] = time.time, fsync_interval: float = 0.2,
                 masker: Masker | None = None) -> None:
        self.state = state
        #: the environment's secrets, replaced in every event before anything sees it
        self.masker = masker if masker is not None else Masker()
        self.subscribers = subscribers
        self.clock = clock
        self.fsync_interval = fsync_interval
        self.seq = 0
        self.log: EventLog | None = None
        self.run_dir = Path()
        #: the running branches of a parallel run (the scheduler's): while more than one
        #: runs, the attempts started in one loop iteration share a write
        self.branches: Sized = ()
        self._lock: RunLock | None = None
        self._flush_pending = False
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._spawned_fd = -1  # <run dir>/spawned, opened at the first process
        self._spawned_lock = threading.Lock()
        #: the first write that failed (the run halts)
        self.failure: WriteFailed | None = None
        #: the first event the log could not take (nothing after it is written)
        self.unlogged_from: int | None = None

    def open(self, run_dir: Path) -> None:
        """Lock ``run_dir`` and open its event log (a second process gets a UsageError)."""
        self.run_dir = run_dir
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._lock = RunLock(run_dir)
            self._lock.acquire()
            self.log = EventLog(run_dir / "events.jsonl", fsync_interval=self.fsync_interval)
        except OSError as exc:
            raise UsageError(f"cannot write the run folder {run_dir}: "
                             f"{exc.strerror or exc}; choose another --state-dir") from None

    def close(self) -> None:
        if self.log is not None:
            try:
                self.log.close()
            except OSError as exc:
                self._log_failed(exc)
        with self._spawned_lock:
            if self._spawned_fd >= 0:
                os.close(self._spawned_fd)
                self._spawned_fd = -1
        if self._lock is not None:
            self._lock.release()

    def emit(self, event: ev.Event) -> None:
        """Number and time ``event``, apply it to the state, log it, tell the subscribers.

        When the log or a subscriber cannot write (:class:`OSError`), the run must stop:
        :class:`~specs.engine.stops.WriteFailed` is raised (once). Events still reach the
        state and the subscribers that can take them; after the log itself failed, nothing
        more is written to it (it keeps what it had, whole: a resume continues from there)."""
        self.seq += 1
        event.seq = self.seq
        event.ts = ev.iso(self.clock())
        if self.masker:
            self.masker.event(event)
        self.state.apply(event)
        log = self.log
        failed: WriteFailed | None = None
        if log is not None and self.unlogged_from is None:
            try:
                self._append(log, event)
            except OSError as exc:
                self.unlogged_from = event.seq
                failed = self._failed("the event log", exc)
        for subscriber in self.subscribers:
            try:
                subscriber(event, self.state)
            except OSError as exc:
                if self.failure is None:
                    failed = self._failed(type(subscriber).__name__, exc)
        if failed is not None:
            raise failed

    def _append(self, log: EventLog, event: ev.Event) -> None:
        name = event.name
        if name == "step-ended" and self._defer_flush():
            log.append(event, flush=False)
        elif name in ("run-ended", "run-paused"):
            # written now, fsync'd by the log's helper thread while the subscribers
            # write the progress file and the notepad; the log's close() waits for it
            log.append(event, flush=False)
            log.sync_soon()
        else:
            log.append(event, flush=name in FLUSH_AFTER)

    def _failed(self, what: str, exc: OSError) -> WriteFailed:
        """Note the first write that failed."""
        error = WriteFailed(what, exc)
        self.failure = self.failure or error
        return error

    def _log_failed(self, exc: OSError) -> WriteFailed:
        if self.unlogged_from is None:
            self.unlogged_from = self.seq + 1
        return self._failed("the event log", exc)

    def flush(self) -> None:
        """Write buffered events before acting on the world or waiting (raises
        :class:`~specs.engine.stops.WriteFailed` when they cannot be written)."""
        if self.unlogged_from is not None and self.failure is not None:
            raise self.failure
        if self.log is not None:
            try:
                self.log.flush()
            except OSError as exc:
                raise self._log_failed(exc) from None

    async def before_acting(self) -> None:
        """Before an attempt acts on the world: its start is on disk. Alone (a chain, a
        sequential run) it is written at once; beside other branches, at the end of this
        loop iteration, in one write for every attempt started in it (group commit)."""
        if len(self.branches) > 1:
            await self._flushed()
        else:
            self.flush()

    def _defer_flush(self) -> bool:
        """Group commit of step ends: one write at the end of this event-loop iteration for
        every step that ended in it (before anything else runs: the next attempt flushes
        first anyway). False outside a loop (the caller then writes at once)."""
        if self._flush_pending:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_pending = True
        loop.call_soon(self._deferred_flush)
        return True

    def _deferred_flush(self) -> None:
        self._flush_pending = False
        if self.log is not None and not self.log.closed and self.unlogged_from is None:
            try:
                self.log.flush()
            except OSError as exc:  # (a callback: the next flush or emit raises it)
                self._log_failed(exc)

    def _flushed(self) -> asyncio.Future[None]:
        """Done once the events buffered so far are written (a future per branch: cancelling
        one branch must not cancel the others)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._flush_waiters:
            loop.call_soon(self._write_for_waiters)
        self._flush_waiters.append(waiter)
        return waiter

    def _write_for_waiters(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        error: Exception | None = None
        try:
            self.flush()
        except Exception as exc:  # e.g. the disk is full: every waiting branch fails with it
            error = exc
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def record_spawn(self, pgid: int) -> None:
        """Note an attempt's process group, so a resume after kill -9 can stop it (called from
        the command executor's worker threads: one appending descriptor, one line a write)."""
        with contextlib.suppress(OSError), self._spawned_lock:
            if self._spawned_fd < 0:
                self._spawned_fd = os.open(self.run_dir / "spawned",
                                           os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._spawned_fd, f"{pgid}\n".encode())

    def stop_leftovers(self) -> None:
        """On resume: stop the process groups an earlier, killed process left running."""
        path = self.run_dir / "spawned"
        with contextlib.suppress(OSError):
            pgids = [int(line) for line in path.read_text().split() if line.isdigit()]
            stop_leftovers(pgids, self.state.run_id)
            path.unlink()


class SpecLock:
    """One live run per spec: an exclusive lock beside the spec's progress file (the files a
    run of the spec writes: progress, notepad, its workspace), held from the run's start (or
    resume) to its end. A second run of the same spec is refused in one line naming the run
    that holds it. Where the lock file cannot be made (a read-only folder), the run goes on
    without it: it could not write its progress file either, and says so."""

    def __init__(self, progress: Path) -> None:
        self.path = progress.with_name(f".{progress.name}.lock")
        self._fd = -1

    def acquire(self, run_id: str) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").split()
            os.close(fd)
            if holder and holder[0] == run_id:  # this very run: the run lock's words
                raise UsageError(f"run {run_id} is in use by another specs process; wait for "
                                 "it or stop it first") from None
            who = f"run {holder[0]} (process {holder[1]})" if len(holder) >= 2 else \
                "another specs process"
            raise UsageError(f"this spec is being run by {who}; wait for it to end or stop it, "
                             "or run a copy of the spec folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{run_id} {os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
