"""Command, tool and script executors: real subprocesses, bounded in time and output.

Each attempt runs in its own process group (a new session), so a timeout or a Ctrl-C kills the
whole tree the command started, not just the shell. Processes are started and waited for on
worker threads (see :func:`run_process`). Standard output and error are read as they
come and kept up to ``max_output_bytes`` each (the rest is counted and dropped, so a command that
prints 100 MB costs no memory); both are saved in the run's output folder when there is one.

Structured output: the JSON object in the file named by ``output_file``, else standard output
when it is a JSON object. Exit code 0 is success; a code listed in ``retry_on_exit_codes`` is a
transient failure; 126/127 (not executable / not found) are errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.executors.base import Outcome, StepContext
from specs.model import Action

KILL_GRACE_S = 1.0
PIPE_GRACE_S = 0.5


@dataclass(slots=True)
class ProcessResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    dropped: int
    duration_s: float


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_process(argv: list[str], *, cwd: Path, env: Mapping[str, str],
                      timeout: float | None, cap: int,
                      on_spawn: Callable[[int], None] | None = None) -> ProcessResult:
    """Run ``argv`` in a new process group; never raises for the command's own failures
    (``OSError`` when it cannot start).

    When no other process is running (a chain of command steps), the process is started on
    the event loop's thread (``subprocess.Popen`` vforks on Linux: a fraction of a
    millisecond) and followed there: its pipes and a pidfd are loop readers and its timeout
    a loop timer (:class:`_Watch`), so the step costs no thread hand-off. Otherwise a worker
    thread starts it and waits for it (:func:`_run_blocking`): many children at once make
    each ``vfork`` wait for a CPU, and threads overlap those waits (so does the loop's own
    work: every system call there would otherwise wait for the GIL). Where the system has
    no pidfds (not Linux) or the loop no readers, a worker thread waits as well. Either way
    output is read as it comes and kept up to ``cap`` bytes per stream (the rest counted
    and dropped); at ``timeout`` the group gets SIGTERM, then SIGKILL after
    :data:`KILL_GRACE_S`; when the process has exited but something it started still holds
    the pipes open, the group is killed after :data:`PIPE_GRACE_S` and the pipes abandoned
    after as long again. ``on_spawn`` is told the process group id as soon as the process
    exists (the engine records it, so a resumed run can stop what a killed engine left
    running). Cancelling the coroutine kills the whole group and waits (briefly) for it to
    be reaped.
    """
    loop = asyncio.get_running_loop()
    box = _Spawn()
    with _LIVE_LOCK:
        alone = not _LIVE[0]
        _LIVE[0] += 1
    try:
        if alone:
            proc, start = _spawn(argv, cwd, env, box, on_spawn)
            done = _follow(loop, proc, start, timeout, cap)
        else:
            done = loop.run_in_executor(_pool(), _run_blocking, argv, cwd, env, timeout, cap,
                                        box, on_spawn)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            with box.lock:
                box.cancelled = True
                pid = box.pid
            if pid is not None:
                _kill_group(pid, signal.SIGKILL)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(done), KILL_GRACE_S + 2 * PIPE_GRACE_S)
            raise
    finally:
        with _LIVE_LOCK:
            _LIVE[0] -= 1


_LIVE = [0]  # processes being started or waited for, all loops together
_LIVE_LOCK = threading.Lock()


class _Spawn:
    """What the event loop and a spawning worker thread share about one process."""

    __slots__ = ("cancelled", "lock", "pid")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.cancelled = False


class _Cancelled(Exception):
    """The attempt was cancelled before its process started."""


def _spawn(argv: list[str], cwd: Path, env: Mapping[str, str], box: _Spawn,
           on_spawn: Callable[[int], None] | None) -> tuple[subprocess.Popen[bytes], float]:
    start = time.monotonic()
    with box.lock:
        if box.cancelled:
            raise _Cancelled
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        box.pid = proc.pid
    if on_spawn is not None:
        with contextlib.suppress(Exception):
            on_spawn(proc.pid)
    return proc, start


def _follow(loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], start: float,
            timeout: float | None, cap: int) -> asyncio.Future[ProcessResult]:
    """Wait for ``proc`` on the loop (:class:`_Watch`), else on a worker thread."""
    try:
        watch = _Watch.follow(loop, proc, start, timeout, cap)
    except BaseException:
        _abandon(proc)
        raise
    if watch is not None:
        return watch.done
    return loop.run_in_executor(_pool(), _wait_blocking, proc, start, timeout, cap)


class _Watch:
    """One process followed on the event loop (see :func:`run_process`): a small state
    machine driven by its pipes, its pidfd and one timer. ``done`` gets the result once both
    pipes are closed (or abandoned) and the process is reaped."""

    __slots__ = ("buffers", "cap", "done", "dropped", "exit_fd", "loop", "open", "proc",
                 "start", "timed_out", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes],
                 exit_fd: int, start: float, cap: int) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.loop, self.proc, self.exit_fd, self.start, self.cap = \
            loop, proc, exit_fd, start, cap
        self.buffers = (bytearray(), bytearray())  # stdout, stderr
        self.open = {proc.stdout.fileno(): self.buffers[0],
                     proc.stderr.fileno(): self.buffers[1]}  # pipes not yet at end of file
        self.dropped = 0
        self.timed_out = False
        self.timer: asyncio.TimerHandle | None = None
        self.done: asyncio.Future[ProcessResult] = loop.create_future()

    @classmethod
    def follow(cls, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes],
               start: float, timeout: float | None, cap: int) -> _Watch | None:
        """Start following ``proc`` on ``loop``; None when this system or loop cannot."""
        exit_fd = _pidfd(proc.pid)
        if exit_fd is None:
            return None
        watch = cls(loop, proc, exit_fd, start, cap)
        try:
            loop.add_reader(exit_fd, watch._guard, watch._exited)
        except NotImplementedError:  # a loop without readers (e.g. the proactor)
            os.close(exit_fd)
            return None
        for fd in watch.open:
            os.set_blocking(fd, False)
            loop.add_reader(fd, watch._guard, watch._read, fd)
        if timeout is not None:
            watch._later(timeout, watch._deadline)
        return watch

    def _guard(self, step: Callable[..., None], *args: Any) -> None:
        """Run one transition; an unexpected error ends the watch with that error (the
        group killed), as it would end a blocking wait."""
        try:
            step(*args)
        except Exception as exc:
            self._finish(exc)

    def _later(self, delay: float, step: Callable[[], None]) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(delay, self._guard, step)

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self.loop.remove_reader(fd)
            del self.open[fd]
            if not self.open and self.proc.returncode is not None:
                self._finish()
            return
        buffer = self.open[fd]
        room = self.cap - len(buffer)
        if room > 0:
            buffer += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    def _exited(self) -> None:
        """The pidfd is readable: the process has exited (reap it)."""
        self.loop.remove_reader(self.exit_fd)
        self.proc.poll()
        if not self.open:
            self._finish()
        elif self.timed_out:  # what ignored SIGTERM goes now
            _kill_group(self.proc.pid, signal.SIGKILL)
            self._later(PIPE_GRACE_S, self._finish)
        else:  # something the command started may hold the pipes open
            self._later(PIPE_GRACE_S, self._pipes_held)

    def _pipes_held(self) -> None:
        _kill_group(self.proc.pid, signal.SIGKILL)
        self._later(PIPE_GRACE_S, self._finish)  # give up on pipes that stay open

    def _deadline(self) -> None:
        self.timed_out = True
        _kill_group(self.proc.pid, signal.SIGTERM)
        self._later(KILL_GRACE_S, self._kill)

    def _kill(self) -> None:
        _kill_group(self.proc.pid, signal.SIGKILL)
        self._later(0.05, self._kill)  # until the pidfd says it is gone

    def _finish(self, error: Exception | None = None) -> None:
        if self.done.done():
            return
        if self.timer is not None:
            self.timer.cancel()
        proc = self.proc
        for fd in (*self.open, self.exit_fd):
            self.loop.remove_reader(fd)
        os.close(self.exit_fd)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
        if error is not None or self.timed_out:
            # after a timeout: what ignored SIGTERM would outlive the shell; after an
            # error: do not leave the group running
            _kill_group(proc.pid, signal.SIGKILL)
        if error is not None:
            if proc.returncode is None:
                with contextlib.suppress(Exception):
                    proc.wait(timeout=KILL_GRACE_S)
            self.done.set_exception(error)
            return
        out, err = self.buffers
        self.done.set_result(ProcessResult(
            proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
            self.timed_out, self.dropped, time.monotonic() - self.start))


def _abandon(proc: subprocess.Popen[bytes]) -> None:
    """An error before the process could be followed: kill its group, close its pipes,
    reap it."""
    _kill_group(proc.pid, signal.SIGKILL)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    with contextlib.suppress(Exception):
        proc.wait(timeout=KILL_GRACE_S)


_POOL: list[ThreadPoolExecutor] = []
MAX_WORKERS = 512  # processes waited for at once by threads; more wait for a worker


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="specs-process"))
    return _POOL[0]


def _run_blocking(argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float | None,
                  cap: int, box: _Spawn,
                  on_spawn: Callable[[int], None] | None) -> ProcessResult:
    """Start and wait for one process group on a worker thread."""
    proc, start = _spawn(argv, cwd, env, box, on_spawn)
    return _wait_blocking(proc, start, timeout, cap)


def _wait_blocking(proc: subprocess.Popen[bytes], start: float, timeout: float | None,
                   cap: int) -> ProcessResult:
    """Read (capped) and reap one process group on a worker thread, with the rules of
    :func:`run_process` (used where the event loop cannot follow the process itself)."""
    assert proc.stdout is not None and proc.stderr is not None
    kept = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    dropped = 0
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
                        _kill_group(proc.pid, signal.SIGTERM)
                    else:
                        wait = _least(wait, deadline - now)
                if timed_out:
                    if now >= term_at + KILL_GRACE_S:
                        _kill_group(proc.pid, signal.SIGKILL)
                        wait = _least(wait, 0.05)
                    else:
                        wait = _least(wait, term_at + KILL_GRACE_S - now)
            elif pipes_killed_at is None:
                # after a timeout (what ignored SIGTERM goes now), or when something the
                # command started still holds the pipes open
                if timed_out or now >= exited_at + PIPE_GRACE_S:
                    _kill_group(proc.pid, signal.SIGKILL)
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
                dropped += max(0, len(chunk) - max(room, 0))
        # both pipes closed (or abandoned): the process may still run (it closed them itself)
        while True:
            try:
                proc.wait(timeout=None if deadline is None or timed_out
                          else max(0.0, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=KILL_GRACE_S)
                    break
                except subprocess.TimeoutExpired:
                    _kill_group(proc.pid, signal.SIGKILL)
        if timed_out:
            _kill_group(proc.pid, signal.SIGKILL)  # what ignored SIGTERM would outlive the shell
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode is None:  # an error on the way: do not leave the group running
            _kill_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(timeout=KILL_GRACE_S)
    out, err = kept.values()
    return ProcessResult(proc.returncode, bytes(out).decode("utf-8", "replace"),
                         bytes(err).decode("utf-8", "replace"), timed_out, dropped,
                         time.monotonic() - start)


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


def step_env(ctx: StepContext, action: Action) -> dict[str, str]:
    env = environ_copy()
    env.update({"SPECS_RUN_ID": ctx.run_id, "SPECS_STEP": ctx.ref, "SPECS_METHOD": ctx.method,
                "SPECS_ATTEMPT": str(ctx.attempt), "SPECS_SPEC_DIR": str(ctx.spec_folder)})
    if ctx.output_dir is not None:
        env["SPECS_OUTPUT_DIR"] = str(ctx.output_dir)
    if ctx.guidance:
        env["SPECS_GUIDANCE"] = ctx.guidance
    for key, value in (ctx.vars or {}).items():
        env[f"SPECS_VAR_{key}".upper()] = str(value)
    env.update(action.env or {})
    return env


def environ_copy() -> dict[str, str]:
    """``dict(os.environ)``, from a copy kept while ``os.environ`` does not change.

    Copying ``os.environ`` decodes every entry (about 1 µs each, per step); its raw store
    (bytes, or str on Windows) compares in well under a microsecond, so the decoded copy is
    reused until a step or a library changes the environment.
    """
    data = getattr(os.environ, "_data", None)  # CPython's raw store
    if not isinstance(data, dict):
        return dict(os.environ)
    cached = _ENVIRON[0] if _ENVIRON else None
    if cached is None or cached[0] != data:
        cached = (dict(data), dict(os.environ))
        _ENVIRON[:] = [cached]
    return cached[1].copy()


_ENVIRON: list[tuple[dict[Any, Any], dict[str, str]]] = []  # (raw store, decoded copy)


def working_dir(ctx: StepContext, action: Action) -> Path:
    return (ctx.spec_folder / action.cwd) if action.cwd else ctx.workspace


async def run_command(action: Action, ctx: StepContext) -> Outcome:
    """``execution_method = "command"``: ``/bin/sh -c COMMAND``."""
    if not action.command:
        return Outcome("error", failure_reason="no command to run")
    return await _execute(["/bin/sh", "-c", action.command], action, ctx)


async def run_tool(action: Action, ctx: StepContext) -> Outcome:
    """``tool`` / ``script``: ``tool_path`` with ``tool_args`` split as a shell would."""
    if not action.tool_path:
        return Outcome("error", failure_reason="no tool_path to run")
    path = Path(action.tool_path)
    if not path.is_absolute() and (ctx.spec_folder / path).exists():
        path = ctx.spec_folder / path
    try:
        args = shlex.split(action.tool_args or "")
    except ValueError as exc:
        return Outcome("error", failure_reason=f"tool_args cannot be split: {exc}")
    argv = [str(path), *args]
    if path.suffix == ".py" and not os.access(path, os.X_OK):
        argv = [sys.executable, *argv]
    elif path.suffix == ".sh" and not os.access(path, os.X_OK):
        argv = ["/bin/sh", *argv]
    return await _execute(argv, action, ctx)


async def _execute(argv: list[str], action: Action, ctx: StepContext) -> Outcome:
    cwd = working_dir(ctx, action)
    try:
        result = await run_process(argv, cwd=cwd, env=step_env(ctx, action),
                                   timeout=ctx.timeout, cap=ctx.max_output_bytes,
                                   on_spawn=ctx.on_spawn)
    except OSError as exc:  # the working directory is checked only then (a stat per step)
        if not cwd.is_dir():
            return Outcome("error", failure_reason=f"working directory {cwd} does not exist")
        return Outcome("error", failure_reason=f"cannot start {argv[0]}: {exc.strerror or exc}")
    _save(ctx, result)
    return _outcome(result, action, ctx, cwd)


def _save(ctx: StepContext, result: ProcessResult) -> None:
    """Keep non-empty captured output in the run's output folder (``<method>-<n>.stdout``)."""
    if ctx.output_dir is None or not (result.stdout or result.stderr):
        return
    with contextlib.suppress(OSError):
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{ctx.method}-{ctx.attempt}"
        for suffix, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            if text:
                (ctx.output_dir / f"{stem}.{suffix}").write_text(text)


def _outcome(result: ProcessResult, action: Action, ctx: StepContext, cwd: Path) -> Outcome:
    code = result.returncode
    note = f" ({result.dropped} bytes of output dropped)" if result.dropped else ""
    base: dict[str, Any] = {"text": result.stdout, "stderr": result.stderr, "exit_code": code}
    if result.timed_out:
        return Outcome("failed", failure_reason=f"timed out after {ctx.timeout:g} s; the "
                       f"process group was killed{note}", transient=True, **base)
    if code is not None and code < 0:
        name = _signal_name(-code)
        return Outcome("failed", failure_reason=f"killed by signal {name}{note}", **base)
    if code == 127:
        return Outcome("error", failure_reason=f"command not found: {_last_line(result.stderr)}",
                       **base)
    if code == 126:
        return Outcome("error", failure_reason=f"not executable: {_last_line(result.stderr)}",
                       **base)
    if code != 0:
        transient = code in (action.retry_on_exit_codes or [])
        detail = _last_line(result.stderr) or _last_line(result.stdout)
        return Outcome("failed", failure_reason=f"exit code {code}"
                       + (f": {detail}" if detail else "") + note, transient=transient, **base)
    output, problem = structured_output(result.stdout, action, cwd)
    if problem:
        return Outcome("failed", failure_reason=problem, **base)
    return Outcome("ok", output=output, **base)


def structured_output(stdout: str, action: Action, cwd: Path) -> tuple[Any, str | None]:
    """The step's structured output: ``output_file`` JSON, else a JSON object on stdout."""
    if action.output_file:
        path = cwd / action.output_file
        try:
            return json.loads(path.read_text(encoding="utf-8")), None
        except FileNotFoundError:
            return None, f"output_file {action.output_file} was not written"
        except (OSError, ValueError) as exc:
            return None, f"output_file {action.output_file} is not valid JSON: {exc}"
    text = stdout.strip()
    if text.startswith("{") and text.endswith("}"):
        with contextlib.suppress(ValueError):
            return json.loads(text), None
    return None, None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = lines[-1].strip() if lines else ""
    return line if len(line) <= 300 else line[:299] + "…"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def stop_leftovers(pgids: list[int], run_id: str) -> list[int]:
    """Kill the process groups a killed engine left running (their processes carry
    ``SPECS_RUN_ID=<run_id>`` in their environment, so a reused id is never hit).

    Linux only (reads /proc); elsewhere nothing is done. Returns the groups killed.
    """
    proc = Path("/proc")
    if not run_id or not proc.is_dir():
        return []
    marker = f"SPECS_RUN_ID={run_id}".encode()
    wanted, killed = set(pgids), []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pgid = os.getpgid(int(entry.name))
            if pgid in wanted and pgid not in killed and \
                    marker in (entry / "environ").read_bytes().split(b"\0"):
                _kill_group(pgid, signal.SIGKILL)
                killed.append(pgid)
        except (OSError, ValueError):
            continue
    return killed
