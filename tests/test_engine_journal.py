"""The journal when writing fails (src/specs/engine/journal.py): a full disk or an unwritable
spec folder halts the run with one line, the log stays whole, and a resume continues."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

STEPS = 40


def spec(folder: Path, logging: str = "") -> Path:
    folder.mkdir()
    steps = "".join(f"""
[[tasks.steps]]
id = {i}
description = "Count {i}"
expected_output = "a line in ran.txt"
critical_flag = false
command = "echo {i} >> ran.txt"
""" for i in range(1, STEPS + 1))
    (folder / "parameters_disk.toml").write_text(f"""\
[meta]
goal_descriptor = "disk"

[goal]
description = "Write one line per step"
{logging}
[[tasks]]
id = 1
description = "Count"
{steps}""")
    return folder


def specs_cli(*args: str, cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, preexec_fn=small_disk)


def log_lines(state: Path) -> list[dict[str, object]]:
    [log] = list((state / "runs").glob("*/events.jsonl"))
    raw = log.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.splitlines()]  # every line whole


def test_a_full_disk_halts_the_run_in_one_line_and_a_resume_finishes_it(tmp_path: Path) -> None:
    folder = spec(tmp_path / "disk")
    state = tmp_path / "state"
    done = specs_cli("run", str(folder), "--no-input", "--state-dir", str(state), cwd=tmp_path,
                     limit=6000)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert " halted" in last and "cannot write" in last and "File too large" in last, last
    written = log_lines(state)
    assert written[0]["event"] == "run-opened"
    assert not any(e["event"] == "run-ended" for e in written)  # it did not get that far
    again = specs_cli("resume", "last", "--no-input", "--state-dir", str(state), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    ran = (folder / "ran.txt").read_text().split()
    assert sorted(set(ran), key=int) == [str(i) for i in range(1, STEPS + 1)]
    ended = {e["step"] for e in written if e["event"] == "step-ended"}
    assert all(ran.count(ref.split(".")[1]) == 1 for ref in ended)  # not run again


SLOW = """\
[meta]
goal_descriptor = "slow"

[goal]
description = "Two steps, the first slow enough for the progress file to be written"

[logging]
output_file = "busy"

[[tasks]]
id = 1
description = "Work"

[[tasks.steps]]
id = 1
description = "Slow"
expected_output = "a line"
critical_flag = false
command = "sleep 0.8; echo 1 >> ran.txt"

[[tasks.steps]]
id = 3
description = "Slow too"
expected_output = "a line"
critical_flag = false
command = "sleep 0.8; echo 3 >> ran.txt"

[[tasks.steps]]
id = 4
description = "Quick"
expected_output = "a line"
critical_flag = false
command = "echo 2 >> ran.txt"
"""


def test_an_unwritable_progress_file_halts_the_run_without_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "parameters_slow.toml").write_text(SLOW)
    (folder / "busy").mkdir()  # the progress file's place is taken by a folder
    state = tmp_path / "state"
    done = specs_cli("run", str(folder), "--no-input", "--state-dir", str(state), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert " halted" in last and "cannot write" in last and "busy" in last, last
    assert log_lines(state)[-1]["event"] == "run-ended"  # the log took the halt
    os.rmdir(folder / "busy")
    again = specs_cli("resume", "last", "--no-input", "--state-dir", str(state), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((folder / "busy").read_text())["goal_achievement_status"] == "ACHIEVED"
    assert sorted((folder / "ran.txt").read_text().split()) == ["1", "2", "3"]


def test_a_progress_file_that_fails_only_at_the_end_leaves_the_run_completed(
        tmp_path: Path) -> None:
    """Everything ran and the log has the end: the run is not halted, but the user is told
    that the progress file is stale and how to rewrite it."""
    folder = spec(tmp_path / "disk", logging='\n[logging]\noutput_file = "busy"\n')
    (folder / "busy").mkdir()
    state = tmp_path / "state"
    done = specs_cli("run", str(folder), "--no-input", "--state-dir", str(state), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "completed, goal ACHIEVED" in last and "cannot write" in last, last
    assert "specs resume" in last
    os.rmdir(folder / "busy")
    again = specs_cli("resume", "last", "--no-input", "--state-dir", str(state), cwd=tmp_path)
    assert again.returncode == 2 and "brought up to date" in again.stderr, again.stderr
    assert json.loads((folder / "busy").read_text())["goal_achievement_status"] == "ACHIEVED"


def test_a_second_run_of_a_spec_that_is_running_is_refused(tmp_path: Path) -> None:
    import time

    folder = tmp_path / "slow"
    folder.mkdir()
    waits = SLOW.replace('output_file = "busy"', "").replace(
        'command = "sleep 0.8; echo 1 >> ran.txt"',
        'command = "while [ ! -f go ]; do sleep 0.05; done; echo 1 >> ran.txt"')
    (folder / "parameters_slow.toml").write_text(waits)  # step 1 waits for the test
    state = tmp_path / "state"
    first = subprocess.Popen([sys.executable, "-m", "specs", "run", str(folder), "--no-input",
                              "--state-dir", str(state)], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (folder / "ran.txt").exists() and not list(state.glob("runs/*/events.jsonl")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = specs_cli("run", str(folder), "--no-input", "--state-dir", str(tmp_path / "other"),
                       cwd=tmp_path)
    (folder / "go").touch()
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 2, second.stderr
    [line] = second.stderr.strip().splitlines()
    assert "this spec is being run by run run_" in line and "process" in line, line
    assert not (tmp_path / "other").exists()  # the refused run left nothing behind
    assert sorted((folder / "ran.txt").read_text().split()) == ["1", "2", "3"]  # once each
    again = specs_cli("run", str(folder), "--no-input", "--state-dir", str(state), cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # the lock went with the first run
