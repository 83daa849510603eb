"""Bad input at run time: a command that is missing, hangs past its timeout, prints 100 MB or
exits by signal; a python callable that raises; a state dir that cannot be written.

Each must give a clear message, record the step's outcome, print no traceback and lose no
event. One real ``specs run --no-input --json`` runs a spec holding every bad step (all
non-critical, so the run goes on after each failure); the JSON lines on stdout and the run's
events.jsonl are both checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from specs import events as ev

TIMEOUT = 90.0

BAD_SPEC = """\
[meta]
goal_descriptor = "bad"

[goal]
description = "Survive every kind of bad step and say what went wrong"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Commands that misbehave"

  [[tasks.steps]]
  id = 1
  description = "Run a command that does not exist"
  critical_flag = false
  max_retries = 0
  command = "no-such-command-xyz --flag"

  [[tasks.steps]]
  id = 2
  description = "Hang past the timeout, with a grandchild that would outlive the shell"
  critical_flag = false
  max_retries = 0
  timeout_seconds = 1
  command = '''
  sleep 300 & echo $! > hang.pid
  sh -c 'trap "" TERM; exec sleep 301' >/dev/null 2>&1 & echo $! > immune.pid
  wait'''

  [[tasks.steps]]
  id = 3
  description = "Print 100 MB"
  critical_flag = false
  max_retries = 0
  command = "head -c 100000000 /dev/zero"

[[tasks]]
id = 2
description = "Deaths and exceptions"

  [[tasks.steps]]
  id = 1
  description = "Die by a signal"
  critical_flag = false
  max_retries = 0
  command = "kill -SEGV $$"

  [[tasks.steps]]
  id = 2
  description = "Call a function that raises"
  critical_flag = false
  max_retries = 0
  callable = "bad_steps:explode"

[[tasks]]
id = 3
description = "Python steps that misbehave"  # own task: 3 failures in one would escalate

  [[tasks.steps]]
  id = 1
  description = "Call an async function that calls sys.exit, under a timeout"
  critical_flag = false
  max_retries = 0
  timeout_seconds = 5
  callable = "bad_steps:leave"

  [[tasks.steps]]
  id = 2
  description = "Call a function that raises its own TimeoutError (no step timeout)"
  critical_flag = false
  max_retries = 0
  callable = "bad_steps:socket_timeout"

  [[tasks.steps]]
  id = 3
  description = "Return a number too big for 64 bits"
  critical_flag = false
  max_retries = 0
  callable = "bad_steps:huge"

  [[tasks.steps]]
  id = 4
  description = "A step that works"
  critical_flag = true
  command = "echo still here"
"""

BAD_STEPS_PY = '''\
import sys
def explode(ctx):
    raise ValueError(f"no good value for step {ctx.ref}")
async def leave(ctx):
    sys.exit(3)
def socket_timeout(ctx):
    raise TimeoutError("the socket timed out")
def huge(ctx):
    return {"big": 2 ** 70}
'''


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def specs(*args: str | Path, cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "specs", *map(str, args)], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, errors="replace",
                          timeout=TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def specs_measured(*args: str | Path, cwd: Path) -> tuple[int, str, str, int]:
    """Like :func:`specs`, plus the peak RSS (kB) of that process after it started.

    The peak is read from ``VmHWM`` in /proc while the process runs: unlike ``ru_maxrss`` it
    starts afresh at exec, so the memory of the (big) pytest process it was forked from does
    not count.
    """
    with (cwd / "run.out").open("w+") as out, (cwd / "run.err").open("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "specs", *map(str, args)], cwd=cwd,
                                env=cli_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        status_file = Path(f"/proc/{proc.pid}/status")
        peak, deadline = 0, time.monotonic() + TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                for line in status_file.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.005)
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), peak


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The one real run of the bad spec, with what it left behind."""
    root = tmp_path_factory.mktemp("bad")
    folder = root / "bad"
    folder.mkdir()
    (folder / "parameters_bad.toml").write_text(BAD_SPEC, encoding="utf-8")
    (folder / "bad_steps.py").write_text(BAD_STEPS_PY, encoding="utf-8")
    state = root / "state"
    code, out, err, maxrss_kb = specs_measured(
        "run", folder, "--no-input", "--json", "--state-dir", state, cwd=root)
    (run_dir,) = (state / "runs").iterdir()
    streamed = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {"code": code, "out": out, "err": err, "folder": folder, "run_dir": run_dir,
            "streamed": streamed, "maxrss_kb": maxrss_kb,
            "logged": list(ev.read_events(run_dir / "events.jsonl"))}


def attempt(run: dict[str, Any], ref: str) -> dict[str, Any]:
    found = [e for e in run["streamed"] if e["event"] == "attempt-ended" and e["step"] == ref]
    assert len(found) == 1, f"step {ref}: {len(found)} attempt-ended events"
    event: dict[str, Any] = found[0]
    return event


def step_status(run: dict[str, Any], ref: str) -> str:
    found = [e for e in run["streamed"] if e["event"] == "step-ended" and e["step"] == ref]
    assert len(found) == 1, f"step {ref}: {len(found)} step-ended events"
    status: str = found[0]["status"]
    return status


def test_the_run_survives_and_reports(bad_run: dict[str, Any]) -> None:
    assert bad_run["code"] == 1, bad_run["err"]  # non-critical failures: goal PARTIAL
    assert "Traceback" not in bad_run["out"] + bad_run["err"]
    last = bad_run["streamed"][-1]
    assert last["event"] == "run-ended" and last["status"] == "completed"
    assert last["goal_achievement_status"] == "PARTIAL"
    assert step_status(bad_run, "3.4") == "completed"
    summary = bad_run["err"].strip().splitlines()[-1]
    assert summary.startswith("specs: run ") and "completed, goal PARTIAL" in summary


def test_no_event_is_lost(bad_run: dict[str, Any]) -> None:
    logged = [e.to_dict() for e in bad_run["logged"]]
    assert [e["seq"] for e in logged] == list(range(1, len(logged) + 1))
    assert logged == bad_run["streamed"]  # every event on stdout is in events.jsonl, in order
    raw = (bad_run["run_dir"] / "events.jsonl").read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == len(logged)


def test_missing_command(bad_run: dict[str, Any]) -> None:
    found = attempt(bad_run, "1.1")
    assert found["outcome"] == "error" and found["exit_code"] == 127
    assert found["failure_reason"].startswith("command not found: ")
    assert "no-such-command-xyz" in found["failure_reason"]
    assert step_status(bad_run, "1.1") == "failed"


def test_hang_past_timeout_kills_the_process_group(bad_run: dict[str, Any]) -> None:
    found = attempt(bad_run, "1.2")
    assert found["failure_reason"] == "timed out after 1 s; the process group was killed"
    assert found["transient"] is True
    assert step_status(bad_run, "1.2") == "failed"
    for name in ("hang.pid", "immune.pid"):  # the second one ignores SIGTERM
        grandchild = int((bad_run["folder"] / name).read_text())
        assert not alive(grandchild), f"a background child ({name}) outlived the timeout"
    assert 1000 <= found["duration_ms"] < 10_000


def test_100_mb_of_output_is_capped(bad_run: dict[str, Any]) -> None:
    found = attempt(bad_run, "1.3")
    assert found["outcome"] == "success" and found["exit_code"] == 0
    assert found["failure_reason"] is None  # dropped bytes are mentioned only on failures
    assert len(found["output_summary"]) <= 200
    assert step_status(bad_run, "1.3") == "completed"
    saved = bad_run["run_dir"] / "outputs" / "1.3" / "primary-1.stdout"
    assert saved.is_file() and 0 < saved.stat().st_size <= 1_000_000
    # the engine kept at most the cap in memory: far below the 100 MB that went through
    assert bad_run["maxrss_kb"] < 300 * 1024, f"max RSS {bad_run['maxrss_kb']} kB"
    assert (bad_run["run_dir"] / "events.jsonl").stat().st_size < 200_000


def test_exit_by_signal(bad_run: dict[str, Any]) -> None:
    found = attempt(bad_run, "2.1")
    assert found["failure_reason"] == "killed by signal SIGSEGV"
    assert found["exit_code"] == -11
    assert step_status(bad_run, "2.1") == "failed"


def test_callable_that_raises(bad_run: dict[str, Any]) -> None:
    found = attempt(bad_run, "2.2")
    assert found["outcome"] == "failure"
    assert re.fullmatch(r"ValueError: no good value for step 2\.2 \(bad_steps\.py:3\)",
                        found["failure_reason"]), found["failure_reason"]
    assert step_status(bad_run, "2.2") == "failed"
    progress = json.loads((bad_run["folder"] / "progress_bad.json").read_text())
    steps = {s["ref"]: s for t in progress["tasks"] for s in t["steps"]}
    assert steps["2.2"]["status"] == "failed"
    assert steps["2.2"]["attempts"][0]["failure_reason"] == found["failure_reason"]


def test_state_dir_that_cannot_be_written(tmp_path: Path) -> None:
    """Tests run as root, where chmod does not stop writes: a state dir *under a file* fails
    the same way a read-only one does (here ENOTDIR)."""
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "parameters_ok.toml").write_text(textwrap.dedent("""\
        [meta]
        goal_descriptor = "ok"

        [goal]
        description = "Nothing much"

        [[tasks]]
        id = 1
        description = "One task"

          [[tasks.steps]]
          id = 1
          description = "Say hello"
          command = "echo hello"
        """), encoding="utf-8")
    (tmp_path / "afile").write_text("not a folder")
    state = tmp_path / "afile" / "state"
    code, out, err = specs("run", folder, "--no-input", "--json", "--state-dir", state,
                           cwd=tmp_path)
    assert code in (1, 2), (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(state) in lines[0] and "Not a directory" in lines[0], err
    assert out.strip() == ""
    assert not (folder / "progress_ok.json").exists()


def test_callable_that_calls_sys_exit(bad_run: dict[str, Any]) -> None:
    """sys.exit() in a step (here async, under a timeout: asyncio re-raises SystemExit from a
    task) is a failed attempt, not the end of the engine."""
    found = attempt(bad_run, "3.1")
    assert found["failure_reason"] == "SystemExit: 3 (bad_steps.py:5)"
    assert step_status(bad_run, "3.1") == "failed"


def test_callable_own_timeout_error(bad_run: dict[str, Any]) -> None:
    """A TimeoutError the callable raises is its own failure, not the step's timeout."""
    found = attempt(bad_run, "3.2")
    assert found["failure_reason"] == "TimeoutError: the socket timed out (bad_steps.py:7)"
    assert found["transient"] is True
    assert step_status(bad_run, "3.2") == "failed"


def test_output_beyond_64_bits(bad_run: dict[str, Any]) -> None:
    found = attempt(bad_run, "3.3")
    assert found["outcome"] == "success" and found["output"] == {"big": 2 ** 70}
    logged = [e for e in bad_run["logged"] if isinstance(e, ev.AttemptEnded)
              and e.step == "3.3"]
    assert logged[0].output == {"big": 2 ** 70}
    assert step_status(bad_run, "3.3") == "completed"
