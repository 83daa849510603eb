"""The process runner of steps and tools (`specs.executors.process.run_process`): real
processes, watched by the event loop (a process alone) or started and waited for on worker
threads.

Pins the rules the engine relies on: output read as it comes and capped per stream, exit codes
and signals reported, the whole process group killed at the timeout, when the shell exits but
something it started holds the pipes, and when the attempt is cancelled; the process group
reported as soon as it exists. Hang guards use ``signal.alarm``; no timing is asserted.

Every test runs three ways: watched by the event loop (a process started while no other of
ours runs, Linux 5.3+), on a worker thread with a pidfd telling it when the process exits (the
processes of a fan-out), and on a worker thread without one (other systems), where it looks
every 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from specs.executors import process
from specs.executors.process import ProcessResult, run_process


@pytest.fixture(autouse=True, params=["loop", "pidfd", "poll"])
def exit_signal(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(process, "LOOP_WAIT", request.param == "loop")
    if request.param == "poll":
        monkeypatch.setattr(process, "_pidfd", lambda pid: None)
    return str(request.param)


def test_the_way_chosen(exit_signal: str, tmp_path: Path) -> None:
    """A process alone is watched by the loop only when the loop can; with another running
    (a fan-out) both go to worker threads."""
    seen: list[str] = []
    original = process._run_on_loop

    async def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append("loop")
        return await original(*args, **kwargs)

    async def two() -> None:
        process._run_on_loop = spy  # type: ignore[assignment]
        try:
            await run_process(["true"], cwd=tmp_path, env={}, timeout=10, cap=10)
            await asyncio.gather(*(run_process(["true"], cwd=tmp_path, env={}, timeout=10,
                                               cap=10) for _ in range(2)))
        finally:
            process._run_on_loop = original  # type: ignore[assignment]

    asyncio.run(two())
    # alone: the loop (when it can); of the two at once, the first is alone when it starts
    assert seen == (["loop", "loop"] if exit_signal == "loop" else [])


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError("hang guard: run_process did not return")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(25)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def run(script: str, tmp_path: Path, *, timeout: float | None = None, cap: int = 1_000_000,
        on_spawn: list[int] | None = None) -> ProcessResult:
    return asyncio.run(run_process(
        ["/bin/sh", "-c", script], cwd=tmp_path, env=dict(os.environ), timeout=timeout,
        cap=cap, on_spawn=on_spawn.append if on_spawn is not None else None))


def dead(pid: int) -> bool:
    """True once ``pid`` is gone (waits up to 5 s: a killed process takes a moment)."""
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie child of ours (never here: they are reparented) counts as gone
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_output_and_exit_code(tmp_path: Path) -> None:
    spawned: list[int] = []
    result = run("echo out; echo err >&2; exit 3", tmp_path, on_spawn=spawned)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out and result.dropped == 0
    assert len(spawned) == 1 and spawned[0] > 0


def test_each_stream_is_capped_and_the_rest_counted(tmp_path: Path) -> None:
    script = (f"{sys.executable} -c \"import sys; sys.stdout.write('x' * 3_000_000); "
              "sys.stderr.write('y' * 1_000_010)\"")
    result = run(script, tmp_path, cap=1_000_000)
    assert result.returncode == 0
    assert result.stdout == "x" * 1_000_000 and result.stderr == "y" * 1_000_000
    assert (result.dropped, result.stdout_dropped) == (2_000_010, 2_000_000)


def test_a_signal_is_a_negative_code(tmp_path: Path) -> None:
    assert run("kill -SEGV $$", tmp_path).returncode == -signal.SIGSEGV


def test_the_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    result = run("sleep 60 & echo $! > child; trap '' TERM; sleep 60", tmp_path, timeout=0.5)
    assert result.timed_out
    child = int((tmp_path / "child").read_text())
    assert dead(child)  # the background child, and the shell that ignored SIGTERM


def test_pipes_held_by_a_child_do_not_keep_the_step_waiting(tmp_path: Path) -> None:
    """The shell exits at once; a background `sleep` still holds stdout: the runner kills
    the group after a short grace instead of waiting for it (the hang guard would fire)."""
    result = run("sleep 60 & echo $! > child; echo started", tmp_path)
    assert result.returncode == 0 and result.stdout == "started\n" and not result.timed_out
    assert dead(int((tmp_path / "child").read_text()))


def test_a_command_that_closes_its_pipes_still_times_out(tmp_path: Path) -> None:
    result = run("exec >&- 2>&-; sleep 60", tmp_path, timeout=0.5)
    assert result.timed_out and result.returncode is not None and result.returncode < 0


def test_cancelling_the_attempt_kills_the_group(tmp_path: Path) -> None:
    spawned: list[int] = []

    async def main() -> None:
        task = asyncio.ensure_future(run_process(
            ["/bin/sh", "-c", "sleep 60 & echo $! > child; wait"], cwd=tmp_path,
            env=dict(os.environ), timeout=None, cap=1000, on_spawn=spawned.append))
        while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(spawned) == 1
    assert dead(spawned[0]) and dead(int((tmp_path / "child").read_text()))


def test_a_missing_program_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        asyncio.run(run_process([str(tmp_path / "no-such-program")], cwd=tmp_path,
                                env=dict(os.environ), timeout=None, cap=1000))


def test_many_processes_at_once(tmp_path: Path) -> None:
    async def main() -> list[ProcessResult]:
        return await asyncio.gather(*(run_process(
            ["/bin/sh", "-c", f"echo {n}"], cwd=tmp_path, env=dict(os.environ), timeout=None,
            cap=1000) for n in range(60)))

    results = asyncio.run(main())
    assert [r.stdout for r in results] == [f"{n}\n" for n in range(60)]


def test_live_output_is_written_as_it_comes(tmp_path: Path) -> None:
    """With ``live``, what is kept of each stream is in ``<stem>.stdout|.stderr`` while the
    process still runs (specs logs --follow, the dashboard), and the files equal the result."""
    folder = tmp_path / "out"

    async def go() -> tuple[ProcessResult, str]:
        task = asyncio.ensure_future(run_process(
            ["/bin/sh", "-c", "echo one; echo two >&2; sleep 0.6; echo three"], cwd=tmp_path,
            env=dict(os.environ), timeout=10, cap=1000, live=(folder, "primary-1")))
        seen = ""
        for _ in range(100):
            await asyncio.sleep(0.02)
            path = folder / "primary-1.stdout"
            seen = path.read_text() if path.exists() else ""
            if seen:
                break
        return await task, seen

    result, early = asyncio.run(go())
    assert early == "one\n"
    assert (folder / "primary-1.stdout").read_text() == result.stdout == "one\nthree\n"
    assert (folder / "primary-1.stderr").read_text() == result.stderr == "two\n"
