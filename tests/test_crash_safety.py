"""Crash safety: kill -9 (and Ctrl-C) a real ``specs run`` at several points, then resume.

Acceptance criterion: completed steps run 0 more times on resume (an attempt that had started
but not ended runs again: at-least-once), the final progress file equals the one of an
uninterrupted run (timestamps, durations, run ids and paths aside) and ``events.jsonl`` never
holds a torn line that breaks the reader.

Every step appends its ref to ``ran.log`` in the spec folder, so the test counts how often each
step really ran. Step 1.3 sleeps (once) while a file ``sleep_once`` exists, to give a window
to interrupt *during* an attempt; it records its shell's pid (the leader of the attempt's own
process group) in ``sleeper.pid``.

A process killed with SIGKILL cannot kill the attempt it was running (that runs in its own
session): the test kills that orphan itself, as an operator would.

Kill points that cannot be timed across processes (the middle of a progress write, any event
boundary) are covered two ways: random kills in a loop of resumes, and a library test that
resumes from *every* line prefix of a finished run's events.jsonl (each event is written with
whole-line writes, so after a kill -9 the log is always such a prefix, maybe plus a torn tail).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from specs import events as ev
from specs.engine.runner import Runner, RunOptions
from specs.spec.load import load_spec

NAME = "crash"
TIMEOUT = 60.0

STEP = """
  [[tasks.steps]]
  id = {id}
  description = "Write {ref} to ran.log"
  expected_output = "a line {ref} in ran.log"
  critical_flag = {critical}
  command = "{command}"
"""
SLEEPER = ("if [ -f sleep_once ]; then rm sleep_once; echo $$ > sleeper.pid; sleep 30; fi; "
           "echo 1.3 >> ran.log")


def spec_toml(tasks: int = 2, steps: int = 3, sleeper: bool = True) -> str:
    parts = [textwrap.dedent(f"""\
        [meta]
        goal_descriptor = "{NAME}"

        [goal]
        description = "Append the ref of every step to ran.log exactly once"

        [execution]
        default_mode = "silent"
        """)]
    for t in range(1, tasks + 1):
        parts.append(f'\n[[tasks]]\nid = {t}\ndescription = "Part {t} of the log"\n')
        for s in range(1, steps + 1):
            ref = f"{t}.{s}"
            command = SLEEPER if sleeper and ref == "1.3" else f"echo {ref} >> ran.log"
            parts.append(STEP.format(id=s, ref=ref, critical=str(s % 2 == 1).lower(),
                                     command=command.replace('"', '\\"')))
    return "".join(parts)


def make_spec(parent: Path, text: str) -> Path:
    folder = parent / NAME
    folder.mkdir(parents=True)
    (folder / f"parameters_{NAME}.toml").write_text(text, encoding="utf-8")
    return folder


# -- processes -------------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    return env


def specs(*args: str | Path, cwd: Path) -> tuple[int, str, str]:
    """Run ``python -m specs ARGS`` to the end: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "specs", *map(str, args)], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class Background:
    """``python -m specs ARGS`` started in its own session (so its group can be killed)."""

    def __init__(self, *args: str | Path, cwd: Path) -> None:
        stem = cwd / f"bg-{time.monotonic_ns()}"
        self.out = stem.with_suffix(".out").open("w+")
        self.err = stem.with_suffix(".err").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "specs", *map(str, args)], cwd=cwd, env=cli_env(),
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err, start_new_session=True)

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the engine's whole process group (not the attempt: its own session)."""
        if self.running():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.finish()

    def finish(self) -> tuple[int, str, str]:
        code = self.proc.wait(TIMEOUT)
        self.out.seek(0)
        self.err.seek(0)
        out, err = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        return code, out, err


def wait_for(events_path: Path, ready: Callable[[list[ev.Event]], bool],
             proc: Background | None = None, timeout: float = 30.0) -> list[ev.Event]:
    """Poll the run's events until ``ready(events)``; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(ev.read_events(events_path)) if events_path.is_file() else []
        if ready(found):
            return found
        if proc is not None and not proc.running():
            code, _, err = proc.finish()
            pytest.fail(f"specs ended ({code}) before the kill point: {err[-2000:]}")
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for events in {events_path}")


def count(name: str, step: str | None = None) -> Callable[[list[ev.Event]], int]:
    return lambda found: sum(1 for e in found if e.name == name
                             and (step is None or getattr(e, "step", None) == step))


def events_file(state: Path) -> Path:
    runs = [p for p in (state / "runs").iterdir() if p.is_dir()] if (state / "runs").is_dir() \
        else []
    return runs[0] / "events.jsonl" if len(runs) == 1 else state / "runs" / "?" / "events.jsonl"


def wait_events_file(state: Path, proc: Background) -> Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        path = events_file(state)
        if path.is_file():
            return path
        if not proc.running():
            code, _, err = proc.finish()
            pytest.fail(f"specs ended ({code}) before opening its run: {err[-2000:]}")
        time.sleep(0.005)
    pytest.fail("the run folder never appeared")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def sleeper_pid(folder: Path) -> int:
    """The pid of step 1.3's shell (the leader of the attempt's process group)."""
    pid_file = folder / "sleeper.pid"
    deadline = time.monotonic() + 10
    while not pid_file.is_file() or not pid_file.read_text().strip().isdigit():
        assert time.monotonic() < deadline, "step 1.3 never started sleeping"
        time.sleep(0.01)
    return int(pid_file.read_text())


def kill_sleeper(folder: Path) -> None:
    """The attempt orphaned by a kill -9 of the engine: kill its process group too."""
    pid = sleeper_pid(folder)
    assert alive(pid), "a kill -9 of the engine does not reach the attempt's own session"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# -- what a run leaves ---------------------------------------------------------------------------


def ran(folder: Path) -> collections.Counter[str]:
    log = folder / "ran.log"
    return collections.Counter(log.read_text().split()) if log.is_file() else \
        collections.Counter()


def all_refs(tasks: int, steps: int) -> list[str]:
    return [f"{t}.{s}" for t in range(1, tasks + 1) for s in range(1, steps + 1)]


DROP_EXACT = {"run_id", "resumes", "mode_selection_timestamp", "spec_files",
              # measured times of the parallel fields (reference §5.1 item 7)
              "phase_start", "phase_end", "phase_duration_ms", "sum_of_step_durations_s",
              "makespan_s"}


def dropped(key: str) -> bool:
    return (key.endswith("_at") or "time" in key or key.startswith(("timestamp", "duration"))
            or key in DROP_EXACT)


def normalise(doc: Any, folder: Path | None = None) -> Any:
    """A progress document without what differs between two equal runs: times, durations, run
    ids, resumes, file paths (the spec folder in a message becomes ``<spec>``)."""
    if isinstance(doc, dict):
        return {k: normalise(v, folder) for k, v in doc.items() if not dropped(k)}
    if isinstance(doc, list):
        return [normalise(v, folder) for v in doc]
    if isinstance(doc, str):
        if folder is not None:
            doc = doc.replace(str(folder.resolve()), "<spec>").replace(str(folder), "<spec>")
        return re.sub(r"run_\d{8}T\d{6}Z_[0-9a-f]{4}", "<run>", doc)
    return doc


def progress(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / f"progress_{NAME}.json").read_text())
    return data


def check_log(path: Path) -> list[ev.Event]:
    """events.jsonl reads with read_events, every complete line is an event, seq is 1..n."""
    found = list(ev.read_events(path))
    complete = path.read_bytes().count(b"\n")
    assert len(found) == complete, "a complete line of events.jsonl did not read back"
    assert [e.seq for e in found] == list(range(1, len(found) + 1))
    return found


def check_progress_file(folder: Path) -> None:
    path = folder / f"progress_{NAME}.json"
    if path.exists():
        json.loads(path.read_text())  # atomic replace: never half a file


def interrupted(found: list[ev.Event]) -> set[str]:
    return {text.split()[0] for e in found if isinstance(e, ev.RunResumed)
            for text in e.interrupted}


def assert_ran_once(folder: Path, refs: list[str], rerun: set[str]) -> None:
    counts = ran(folder)
    for ref in refs:
        limit = 2 if ref in rerun else 1
        assert 1 <= counts[ref] <= limit, f"step {ref} ran {counts[ref]} times: {counts}"


# -- baselines: the same specs run without interruption -------------------------------------------


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    cache: dict[str, Any] = {}

    def get(text: str) -> Any:
        if text not in cache:
            parent = tmp_path_factory.mktemp("baseline")
            folder = make_spec(parent, text)
            code, _, err = specs("run", folder, "--no-input", "--state-dir", parent / "state",
                                 cwd=parent)
            assert code == 0, err
            assert all(n == 1 for n in ran(folder).values())
            cache[text] = normalise(progress(folder), folder)
        return cache[text]

    return get


def final_checks(folder: Path, state: Path, expected: Any, refs: list[str]) -> list[ev.Event]:
    found = check_log(events_file(state))
    end = found[-1]
    assert isinstance(end, ev.RunEnded) and end.status == "completed", end
    assert_ran_once(folder, refs, interrupted(found))
    assert normalise(progress(folder), folder) == expected
    return found


# -- kill -9 between steps, and a torn line -------------------------------------------------------


def test_kill_between_steps_with_a_torn_line_then_resume(
        tmp_path: Path, baseline: Callable[[str], Any]) -> None:
    text = spec_toml()
    folder, state = make_spec(tmp_path, text), tmp_path / "state"
    run = Background("run", folder, "--no-input", "--state-dir", state, cwd=tmp_path)
    path = wait_events_file(state, run)
    wait_for(path, lambda found: count("step-ended")(found) >= 2, run)
    run.kill9()

    before = check_log(path)
    done = {e.step for e in before if isinstance(e, ev.StepEnded)}
    assert {"1.1", "1.2"} <= done and before[-1].name != "run-ended"
    check_progress_file(folder)
    # a line torn by a crash mid-write: the reader skips it, the next append cuts it off
    with path.open("ab") as handle:
        handle.write(b'{"event": "step-ended", "seq": 999, "ts": "2026-')
    assert [e.seq for e in ev.read_events(path)] == [e.seq for e in before]

    code, _, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    found = final_checks(folder, state, baseline(text), all_refs(2, 3))
    resumed = found[len(before):]
    assert resumed[0].name == "run-resumed"
    again = {e.step for e in resumed if isinstance(e, ev.AttemptStarted)}
    assert not again & done, f"completed steps ran again: {again & done}"

    # a kill just after run-ended can leave the progress file behind: resuming the ended run
    # refuses (exit 2) and rewrites the progress file from the events
    (folder / f"progress_{NAME}.json").write_text('{"status": "running"}')
    code, _, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 2 and "nothing to resume" in err and len(err.strip().splitlines()) == 1, err
    assert normalise(progress(folder), folder) == baseline(text)
    assert check_log(path) == found


# -- kill -9 during an attempt; a second process meanwhile --------------------------------------


def test_kill_during_attempt_and_second_process_refused(
        tmp_path: Path, baseline: Callable[[str], Any]) -> None:
    text = spec_toml()
    folder, state = make_spec(tmp_path, text), tmp_path / "state"
    (folder / "sleep_once").touch()
    run = Background("run", folder, "--no-input", "--state-dir", state, cwd=tmp_path)
    path = wait_events_file(state, run)
    wait_for(path, lambda found: count("attempt-started", "1.3")(found) >= 1, run)

    # a second process may not run (or answer) the same run while it is active
    code, out, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 2, (out, err)
    message = [line for line in err.splitlines() if "in use" in line]
    assert len(message) == 1 and path.parent.name in message[0], err
    assert "Traceback" not in err
    assert run.running()

    # kill -9 of the engine *and* its watchdog (which would end the attempt otherwise,
    # tests/test_watchdog.py): what is left is for the resume to stop
    watchdogs = [pid for pid in children(run.proc.pid) if b"SPECS_WATCHDOG" in
                 Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(watchdogs) == 1
    os.kill(watchdogs[0], signal.SIGKILL)
    run.kill9()
    leftover = sleeper_pid(folder)
    assert alive(leftover)  # the attempt runs in its own session: kill -9 of the engine misses it
    before = check_log(path)
    assert isinstance(before[-1], ev.AttemptStarted) and before[-1].step == "1.3"

    code, _, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 0, err
    deadline = time.monotonic() + 5
    while alive(leftover) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(leftover), "resume must stop the attempt a killed engine left running"
    found = final_checks(folder, state, baseline(text), all_refs(2, 3))
    resumed = next(e for e in found if isinstance(e, ev.RunResumed))
    assert resumed.interrupted == ["1.3 primary attempt 1"]
    assert ran(folder)["1.3"] == 1  # the killed attempt never reached its echo


# -- Ctrl-C, then a changed spec ---------------------------------------------------------------


def interrupt_during_sleep(tmp_path: Path, text: str,
                           sig: signal.Signals) -> tuple[Path, Path, str]:
    """Start a run, send ``sig`` to the engine process while step 1.3 sleeps; check the
    interruption was clean. Returns (spec folder, state dir, run id)."""
    folder, state = make_spec(tmp_path, text), tmp_path / "state"
    (folder / "sleep_once").touch()
    run = Background("run", folder, "--no-input", "--state-dir", state, cwd=tmp_path)
    path = wait_events_file(state, run)
    wait_for(path, lambda found: count("attempt-started", "1.3")(found) >= 1, run)
    sleeper = sleeper_pid(folder)

    os.kill(run.proc.pid, sig)  # the process only, as a terminal's Ctrl-C would
    code, _, err = run.finish()
    assert code == 130, err
    assert "Traceback" not in err
    run_id = path.parent.name
    hint = [line for line in err.splitlines() if "specs resume" in line]
    assert hint == [f"specs: interrupted; continue with `specs resume {run_id}`"], err
    assert err.strip().splitlines()[-1] == hint[0]
    deadline = time.monotonic() + 5
    while alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(sleeper), f"{sig.name} left the attempt's process running"
    found = check_log(path)
    assert isinstance(found[-1], ev.RunEnded) and found[-1].status == "halted"
    document = progress(folder)
    assert document["status"] == "halted"
    # as of the halt: the critical step 1.3 had not completed (a resume can change it)
    assert document["goal_achievement_status"] == "NOT_ACHIEVED"
    assert document["completion_verification"]["provisional"] is True
    return folder, state, run_id


def test_ctrl_c_then_changed_spec_needs_force(tmp_path: Path,
                                              baseline: Callable[[str], Any]) -> None:
    text = spec_toml()
    folder, state, run_id = interrupt_during_sleep(tmp_path, text, signal.SIGINT)

    # the parameters file changed since the run started: refuse, unless --force
    parameters = folder / f"parameters_{NAME}.toml"
    parameters.write_text(text + "\n# edited after the run started\n", encoding="utf-8")
    code, out, err = specs("resume", run_id, "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "--force" in err, err
    assert "Traceback" not in err

    code, _, err = specs("resume", run_id, "--no-input", "--force", "--state-dir", state,
                         cwd=tmp_path)
    assert code == 0, err
    final_checks(folder, state, baseline(text), all_refs(2, 3))
    assert ran(folder)["1.3"] == 1


# -- kill -9 at random moments, many times -------------------------------------------------------


def test_random_kills_then_resume(tmp_path: Path, baseline: Callable[[str], Any]) -> None:
    """Kills at random moments (some land in a progress write or between two events): the
    progress file always parses (atomic replace) and events.jsonl always reads."""
    # each step takes ~30 ms, so a kill aimed between two step ends lands before the run ends
    # (the engine's own overhead alone is too small to aim at reliably)
    text = spec_toml(tasks=2, steps=10, sleeper=False).replace(
        'command = "echo', 'command = "sleep 0.03; echo')
    folder, state = make_spec(tmp_path, text), tmp_path / "state"
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    args: tuple[str | Path, ...] = ("run", folder, "--no-input", "--state-dir", state)
    path: Path | None = None
    kills = 0
    for target in (2, 6, 10, 14, 17):
        run = Background(*args, cwd=tmp_path)
        path = path or wait_events_file(state, run)
        goal = target + rng.randrange(3)

        def ready(found: list[ev.Event], goal: int = goal) -> bool:
            return count("step-ended")(found) >= goal or bool(
                found and found[-1].name == "run-ended")

        found = wait_for(path, ready, run)
        if found[-1].name == "run-ended":
            run.finish()
            break
        time.sleep(rng.uniform(0, 0.03))
        run.kill9()
        kills += 1
        found = check_log(path)
        check_progress_file(folder)
        if found[-1].name == "run-ended":  # the kill came just after the end
            break
        args = ("resume", "last", "--no-input", "--state-dir", state)
    assert kills >= 3, f"seed {seed}: the run finished too soon to be killed"
    assert path is not None
    # resume once more: it finishes the run, or (killed after the end) refreshes the records
    code, _, err = specs("resume", "last", "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 0 or (code == 2 and "nothing to resume" in err), f"seed {seed}: {err}"
    final_checks(folder, state, baseline(text), all_refs(2, 10))


# -- every event boundary, in-process ------------------------------------------------------------


def test_resume_from_every_event_boundary(tmp_path: Path) -> None:
    """A kill -9 leaves events.jsonl as a prefix of whole lines. Resume from each prefix of a
    finished run: the steps that had finished do not run again, every other step runs once, and
    the progress document equals the uninterrupted one."""
    from specs.record.progress import progress_document

    folder = make_spec(tmp_path, spec_toml(tasks=2, steps=2, sleeper=False))
    state = tmp_path / "state"

    def runner(run_id: str | None = None) -> Runner:
        return Runner(load_spec(folder), RunOptions(state_dir=state, no_input=True,
                                                    run_id=run_id, fsync_interval=60))

    first = runner("full")
    result = asyncio.run(first.start())
    assert result.status == "completed" and result.exit_code == 0
    spec = first.spec
    expected = normalise(progress_document(spec, first.state), folder)
    lines = (result.run_dir / "events.jsonl").read_bytes().splitlines(keepends=True)
    problems: list[str] = []
    for cut in range(1, len(lines)):
        run_dir = state / "runs" / f"cut{cut:03d}"
        run_dir.mkdir(parents=True)
        (run_dir / "events.jsonl").write_bytes(b"".join(lines[:cut]))
        replay = list(ev.read_events(run_dir / "events.jsonl"))
        # finished: a step-ended, or an attempt that ended in success (its step-ended was lost)
        done = {e.step for e in replay if isinstance(e, ev.StepEnded)
                or (isinstance(e, ev.AttemptEnded) and e.outcome == "success")}
        opened = replay[0]
        assert isinstance(opened, ev.RunOpened)
        again = runner(opened.run_id)
        outcome = asyncio.run(again.resume(run_dir, replay))
        new = list(ev.read_events(run_dir / "events.jsonl"))[len(replay):]
        attempts = collections.Counter(e.step for e in new if isinstance(e, ev.AttemptStarted))
        wrong = []
        if outcome.status != "completed" or outcome.exit_code != 0:
            wrong.append(f"ended {outcome.status} ({outcome.exit_code})")
        if set(attempts) & done:
            wrong.append(f"ran finished steps again: {sorted(set(attempts) & done)}")
        missing = [r for r in spec_refs(spec) if r not in done and attempts[r] != 1]
        if missing:
            wrong.append(f"steps not run exactly once: {missing}")
        doc = normalise(progress_document(spec, again.state), folder)
        if doc != expected:
            wrong.append("progress differs in " + ", ".join(
                k for k in expected if expected[k] != doc.get(k)))
        if wrong:
            problems.append(f"cut after line {cut} ({replay[-1].name}): {'; '.join(wrong)}")
        shutil.rmtree(run_dir)
    assert not problems, "\n".join(problems)


def spec_refs(spec: Any) -> list[str]:
    return [f"{t.ref}.{s.id}" for t, s in spec.steps()]


def test_sigterm_stops_like_ctrl_c(tmp_path: Path, baseline: Callable[[str], Any]) -> None:
    """SIGTERM (CI cancel, docker stop, timeout(1)) halts the run cleanly, not mid-air."""
    text = spec_toml()
    folder, state, run_id = interrupt_during_sleep(tmp_path, text, signal.SIGTERM)
    code, _, err = specs("resume", run_id, "--no-input", "--state-dir", state, cwd=tmp_path)
    assert code == 0, err
    final_checks(folder, state, baseline(text), all_refs(2, 3))
    assert ran(folder)["1.3"] == 1
