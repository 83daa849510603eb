"""Processes of steps and tools: started in a process group of their own, bounded in time and
output, and never left behind.

Each process runs in its own process group (a new session), so a timeout or a Ctrl-C kills the
whole tree the command started, not just the shell, and the :mod:`~specs.executors.watchdog`
ends the group should the engine die. A process started while no other of ours runs (a chain of
commands) is started on the event loop's thread and watched by the loop; the others are started
and waited for on worker threads (a pidfd tells the thread when the process exits; without one
it looks every 50 ms), so many can start at once (see :func:`run_process`). Standard output and
error are read as they come and kept up to ``cap`` bytes each (the rest is counted and dropped,
so a command that prints 100 MB costs no memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from specs.executors import watchdog

__all__ = ["KILL_GRACE_S", "PIPE_GRACE_S", "ProcessResult", "kill_group", "run_process"]

KILL_GRACE_S = 1.0
PIPE_GRACE_S = 0.5


@dataclass(slots=True)
class ProcessResult:
    """How a process ended and what it printed (each stream kept up to the cap)."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    dropped: int  # bytes of output over the cap, both streams
    duration_s: float
    stdout_dropped: int = 0  # of which standard output's


def kill_group(pid: int, sig: int) -> None:
    """``sig`` to the process group ``pid`` (gone or not ours: nothing)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_process(argv: list[str], *, cwd: Path, env: Mapping[str, str],
                      timeout: float | None, cap: int,
                      on_spawn: Callable[[int], None] | None = None,
                      live: tuple[Path, str] | None = None) -> ProcessResult:
    """Run ``argv`` in a new process group; never raises for the command's own failures
    (``OSError`` when it cannot start).

    Two ways, the same rules (output capped per stream, the group killed at the timeout,
    when the shell exits but something it started holds the pipes, and on cancellation; the
    process marked for the :mod:`~specs.executors.watchdog`, which ends it should the engine
    die):

    - no other process of ours running (a chain of commands; Linux 5.3+): started on the
      loop's thread and watched by the loop (:class:`_Watch`: the pipes and a pidfd in its
      selector, timers for the deadlines). Nothing crosses threads: on a small machine a
      hand-off to a worker thread and back costs 0.2-0.7 ms, and a chain pays it every step
      (measured: docs/performance.md, "The command executor's speed tricks").
    - otherwise, or without pidfds: started and waited for on a worker thread
      (:func:`_run_blocking`), so a fan-out's processes start at once while the loop stays
      free (asyncio's own subprocess support cost about five times as much per process).

    ``on_spawn`` is told the process group id as soon as the process exists (the engine
    records it, so a resumed run can stop what a killed engine left running). With ``live``
    (a folder and a file stem), what is kept of each stream is also written, as it comes, to
    ``<folder>/<stem>.stdout`` and ``.stderr`` (made at their first byte), for ``specs logs
    --follow`` and the dashboard. Cancelling the coroutine kills the whole group and waits
    (briefly) for it to be reaped.
    """
    loop = asyncio.get_running_loop()
    if not _LIVE[0] and loop_wait():
        return await _run_on_loop(loop, argv, cwd, env, timeout, cap, on_spawn, live)
    _LIVE[0] += 1
    try:
        box = _Spawn()
        work = loop.run_in_executor(_pool(), _run_blocking, argv, cwd, env, timeout, cap, box,
                                    on_spawn, live)
        return await _until_reaped(lambda: asyncio.shield(work), box.cancel)
    finally:
        _LIVE[0] -= 1


async def _until_reaped(result: Callable[[], Awaitable[ProcessResult]],
                        cancel: Callable[[], int | None]) -> ProcessResult:
    """Await ``result()``. When the caller is cancelled: ``cancel()`` (the process group,
    when there is one yet) is killed, ``result()`` awaited again for a short while (until the
    group is reaped), and the cancellation goes on."""
    try:
        return await result()
    except asyncio.CancelledError:
        pid = cancel()
        if pid is not None:
            kill_group(pid, signal.SIGKILL)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(result(), KILL_GRACE_S + 2 * PIPE_GRACE_S)
        raise


#: processes of ours started and not yet reaped (both ways; one event loop per process)
_LIVE = [0]
#: whether the loop can watch processes (pidfds: Linux 5.3+); None until first asked
LOOP_WAIT: bool | None = None


def loop_wait() -> bool:
    """True when a process can be watched by the event loop (see :func:`run_process`)."""
    global LOOP_WAIT
    if LOOP_WAIT is None:
        probe = _pidfd(os.getpid())
        if probe is not None:
            os.close(probe)
        LOOP_WAIT = probe is not None
    return LOOP_WAIT


async def _run_on_loop(loop: asyncio.AbstractEventLoop, argv: list[str], cwd: Path,
                       env: Mapping[str, str], timeout: float | None, cap: int,
                       on_spawn: Callable[[int], None] | None,
                       live: tuple[Path, str] | None) -> ProcessResult:
    start = time.monotonic()
    _LIVE[0] += 1
    try:
        proc = _popen(argv, cwd, env)
        if on_spawn is not None:
            with contextlib.suppress(Exception):
                on_spawn(proc.pid)
        tee = _Tee(live) if live else None
        exit_fd = _pidfd(proc.pid)
        if exit_fd is None:  # (the probe said yes): a worker waits, as for the others
            work = loop.run_in_executor(_pool(), _wait_blocking, proc, start, timeout, cap, tee)
            return await _until_reaped(lambda: asyncio.shield(work), lambda: proc.pid)
        watch = _Watch(loop, proc, exit_fd, start, timeout, cap, tee)
        try:
            return await _until_reaped(watch.result, lambda: proc.pid)
        finally:
            watch.close()
    finally:
        _LIVE[0] -= 1


class _Watch:
    """One process watched by the event loop: its two pipes and its pidfd are in the loop's
    selector, the deadlines are loop timers. The same rules as :func:`_wait_blocking`: read
    as data comes (``cap`` bytes kept per stream, written to the tee as they come); at the
    timeout SIGTERM to the group and SIGKILL after :data:`KILL_GRACE_S` (again every 50 ms
    until it exits); when the process has exited but something it started holds the pipes
    open, the group is killed after :data:`PIPE_GRACE_S` and the pipes abandoned after as long
    again."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes],
                 exit_fd: int, start: float, timeout: float | None, cap: int,
                 tee: _Tee | None) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.loop, self.proc, self.exit_fd, self.start, self.cap = loop, proc, exit_fd, start, cap
        self.tee = tee
        self.stdout_fd = proc.stdout.fileno()
        self.kept = {self.stdout_fd: bytearray(), proc.stderr.fileno(): bytearray()}
        self.reading = set(self.kept)
        self.dropped = self.stdout_dropped = 0
        self.exited = self.timed_out = self.closed = False
        self.timers: list[asyncio.TimerHandle] = []
        self.waiters: list[asyncio.Future[ProcessResult]] = []
        self.done: ProcessResult | None = None
        for fd in self.kept:  # blocking pipes: one read per readiness returns data or EOF
            loop.add_reader(fd, self._read, fd)
        loop.add_reader(exit_fd, self._exit)
        if timeout is not None:
            self.timers.append(loop.call_later(timeout, self._timeout))

    def result(self) -> asyncio.Future[ProcessResult]:
        waiter: asyncio.Future[ProcessResult] = self.loop.create_future()
        if self.done is not None:
            waiter.set_result(self.done)
        else:
            self.waiters.append(waiter)
        return waiter

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._stop_reading(fd)
            self._check()
            return
        buffer = self.kept[fd]
        room = self.cap - len(buffer)
        if room > 0:
            buffer += chunk[:room]
            if self.tee is not None:
                self.tee.write("stdout" if fd == self.stdout_fd else "stderr", chunk[:room])
        over = max(0, len(chunk) - max(room, 0))
        self.dropped += over
        if fd == self.stdout_fd:
            self.stdout_dropped += over

    def _stop_reading(self, fd: int) -> None:
        if fd in self.reading:
            self.reading.discard(fd)
            self.loop.remove_reader(fd)

    def _exit(self) -> None:
        self.loop.remove_reader(self.exit_fd)
        self.proc.wait()  # it has exited: this reaps it at once
        self.exited = True
        if self.timed_out:
            kill_group(self.proc.pid, signal.SIGKILL)  # what ignored SIGTERM would outlive it
        if self.reading:  # something the command started holds the pipes open
            self.timers.append(self.loop.call_later(
                0 if self.timed_out else PIPE_GRACE_S, self._pipes_held))
        self._check()

    def _pipes_held(self) -> None:
        kill_group(self.proc.pid, signal.SIGKILL)
        self.timers.append(self.loop.call_later(PIPE_GRACE_S, self._abandon))

    def _abandon(self) -> None:
        for fd in list(self.reading):  # give up on pipes that stay open
            self._stop_reading(fd)
        self._check()

    def _timeout(self) -> None:
        if self.exited:
            return
        self.timed_out = True
        kill_group(self.proc.pid, signal.SIGTERM)
        self.timers.append(self.loop.call_later(KILL_GRACE_S, self._kill))

    def _kill(self) -> None:
        if not self.exited:
            kill_group(self.proc.pid, signal.SIGKILL)
            self.timers.append(self.loop.call_later(0.05, self._kill))

    def _check(self) -> None:
        if not self.exited or self.reading or self.done is not None:
            return
        out, err = self.kept.values()
        self.done = ProcessResult(self.proc.returncode, bytes(out).decode("utf-8", "replace"),
                                  bytes(err).decode("utf-8", "replace"), self.timed_out,
                                  self.dropped, time.monotonic() - self.start,
                                  self.stdout_dropped)
        self.close()
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(self.done)
        self.waiters.clear()

    def close(self) -> None:
        """Stop watching: timers, readers, descriptors and the tee (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for timer in self.timers:
            timer.cancel()
        for fd in list(self.reading):
            self._stop_reading(fd)
        if not self.exited:
            self.loop.remove_reader(self.exit_fd)
        os.close(self.exit_fd)
        if self.tee is not None:
            self.tee.close()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self.proc.returncode is None:  # cancelled and not gone within the grace
            kill_group(self.proc.pid, signal.SIGKILL)


def _popen(argv: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    # marked: the watchdog ends its group should the engine die, even by kill -9
    return subprocess.Popen(argv, cwd=str(cwd), env=watchdog.marked(env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


class _Spawn:
    """What the event loop and the worker thread share about one process."""

    __slots__ = ("cancelled", "lock", "pid")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.cancelled = False

    def cancel(self) -> int | None:
        """No process is to start any more; the one that did, if any."""
        with self.lock:
            self.cancelled = True
            return self.pid


_POOL: list[ThreadPoolExecutor] = []
MAX_WORKERS = 512  # processes waited for at once; more wait for a worker


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="specs-process"))
    return _POOL[0]


class _Cancelled(Exception):
    """The attempt was cancelled before its process started."""


def _run_blocking(argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float | None,
                  cap: int, box: _Spawn, on_spawn: Callable[[int], None] | None,
                  live: tuple[Path, str] | None = None) -> ProcessResult:
    """Start, read (capped) and reap one process group, on a worker thread.

    Reads both pipes as data comes (``cap`` bytes kept per stream, the rest counted and
    dropped). At ``timeout``: SIGTERM to the group, SIGKILL after :data:`KILL_GRACE_S`. When
    the process has exited but something it started still holds the pipes open, the group
    is killed after :data:`PIPE_GRACE_S` and the pipes abandoned after as long again.
    """
    start = time.monotonic()
    with box.lock:
        if box.cancelled:
            raise _Cancelled
        proc = _popen(argv, cwd, env)
        box.pid = proc.pid
    if on_spawn is not None:
        with contextlib.suppress(Exception):
            on_spawn(proc.pid)
    return _wait_blocking(proc, start, timeout, cap, _Tee(live) if live else None)


class _Tee:
    """A process's kept output written as it comes (see :func:`run_process`'s ``live``)."""

    def __init__(self, live: tuple[Path, str]) -> None:
        self.folder, self.stem = live
        self.fds: dict[str, int] = {}

    def write(self, stream: str, data: bytes) -> None:
        fd = self.fds.get(stream)
        try:
            if fd is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = self.fds[stream] = os.open(
                    self.folder / f"{self.stem}.{stream}",
                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
        except OSError:
            self.fds.setdefault(stream, -1)  # the output folder is gone: keep the result only

    def close(self) -> None:
        for fd in self.fds.values():
            if fd >= 0:
                os.close(fd)


def _wait_blocking(proc: subprocess.Popen[bytes], start: float, timeout: float | None,
                   cap: int, tee: _Tee | None = None) -> ProcessResult:
    """Read and reap a started process group on a worker thread (see :func:`_run_blocking`)."""
    assert proc.stdout is not None and proc.stderr is not None
    kept = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    dropped = stdout_dropped = 0
    stdout_fd = proc.stdout.fileno()
    poller = select.poll()  # no descriptor of its own, registering is no system call
    for fd in kept:  # blocking pipes: a read after POLLIN returns data or end of file
        poller.register(fd, select.POLLIN)
    exit_fd = _pidfd(proc.pid)
    if exit_fd is not None:
        poller.register(exit_fd, select.POLLIN)
    deadline = start + timeout if timeout is not None else None
    timed_out, term_at, exited_at, pipes_killed_at = False, 0.0, None, None
    open_pipes = 2
    try:
        while open_pipes:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            wait: float | None = None if exit_fd is not None else 0.05
            if exited_at is None:
                if deadline is not None and not timed_out:
                    if now >= deadline:
                        timed_out, term_at = True, now
                        kill_group(proc.pid, signal.SIGTERM)
                    else:
                        wait = _least(wait, deadline - now)
                if timed_out:
                    if now >= term_at + KILL_GRACE_S:
                        kill_group(proc.pid, signal.SIGKILL)
                        wait = _least(wait, 0.05)
                    else:
                        wait = _least(wait, term_at + KILL_GRACE_S - now)
            elif pipes_killed_at is None:
                # after a timeout (what ignored SIGTERM goes now), or when something the
                # command started still holds the pipes open
                if timed_out or now >= exited_at + PIPE_GRACE_S:
                    kill_group(proc.pid, signal.SIGKILL)
                    pipes_killed_at = now
                    wait = PIPE_GRACE_S
                else:
                    wait = exited_at + PIPE_GRACE_S - now
            elif now >= pipes_killed_at + PIPE_GRACE_S:
                break  # give up on pipes that stay open
            else:
                wait = pipes_killed_at + PIPE_GRACE_S - now
            for fd, _ in poller.poll(None if wait is None else wait * 1000):
                if fd == exit_fd:
                    poller.unregister(fd)
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    poller.unregister(fd)
                    open_pipes -= 1
                    continue
                buffer = kept[fd]
                room = cap - len(buffer)
                if room > 0:
                    buffer += chunk[:room]
                    if tee is not None:
                        tee.write("stdout" if fd == stdout_fd else "stderr", chunk[:room])
                over = max(0, len(chunk) - max(room, 0))
                dropped += over
                if fd == stdout_fd:
                    stdout_dropped += over
        # both pipes closed (or abandoned): the process may still run (it closed them itself)
        while True:
            try:
                proc.wait(timeout=None if deadline is None or timed_out
                          else max(0.0, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=KILL_GRACE_S)
                    break
                except subprocess.TimeoutExpired:
                    kill_group(proc.pid, signal.SIGKILL)
        if timed_out:
            kill_group(proc.pid, signal.SIGKILL)  # what ignored SIGTERM would outlive the shell
    finally:
        if tee is not None:
            tee.close()
        if exit_fd is not None:
            os.close(exit_fd)
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode is None:  # an error on the way: do not leave the group running
            kill_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(timeout=KILL_GRACE_S)
    out, err = kept.values()
    return ProcessResult(proc.returncode, bytes(out).decode("utf-8", "replace"),
                         bytes(err).decode("utf-8", "replace"), timed_out, dropped,
                         time.monotonic() - start, stdout_dropped)


def _least(current: float | None, other: float) -> float:
    other = max(0.0, other)
    return other if current is None else min(current, other)


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), else None (the
    worker then looks every 50 ms)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None
