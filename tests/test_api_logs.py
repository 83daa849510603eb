"""``specs logs`` (src/specs/api/logs.py, src/specs/cli/logs.py): a run's attempt outputs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SPEC = """\
[meta]
goal_descriptor = "loud"

[goal]
description = "Print things"

[[tasks]]
id = 1
description = "Print"

[[tasks.steps]]
id = 1
description = "Fail once, then succeed"
expected_output = "hello"
critical_flag = false
max_retries = 1
command = "if [ -f once ]; then echo hello; else touch once; echo nope >&2; exit 4; fi"

[[tasks.steps]]
id = 2
description = "Print slowly"
expected_output = "three lines"
critical_flag = false
command = "echo one; sleep {pause}; echo two; echo three"
"""


def make(tmp_path: Path, pause: float = 0) -> Path:
    folder = tmp_path / "loud"
    folder.mkdir()
    (folder / "parameters_loud.toml").write_text(SPEC.format(pause=pause))
    return folder


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SPECS_STATE_DIR"}
    return subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_logs_show_every_attempt_with_its_output(tmp_path: Path) -> None:
    make(tmp_path)
    assert cli("run", "loud", "--no-input", cwd=tmp_path).returncode == 0
    out = cli("logs", "last", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "== 1.1 primary attempt 1: failure (exit 4)" in text
    assert "--- stderr ---\nnope" in text
    assert "== 1.1 primary attempt 2: success (exit 0) ==\n--- stdout ---\nhello" in text
    assert "one\ntwo\nthree" in text
    only = cli("logs", "last", "1.2", cwd=tmp_path).stdout
    assert "1.1" not in only and "three" in only
    bad = cli("logs", "last", "9.9", cwd=tmp_path)
    assert bad.returncode == 2 and "no step '9.9'" in bad.stderr


def test_follow_prints_while_the_run_goes_on_and_stops_with_it(tmp_path: Path) -> None:
    make(tmp_path, pause=1.5)
    env = {k: v for k, v in os.environ.items() if k != "SPECS_STATE_DIR"}
    run = subprocess.Popen([sys.executable, "-m", "specs", "run", "loud", "--no-input"],
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list((tmp_path / ".specs").glob("runs/*/events.jsonl")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    followed = cli("logs", "last", "--follow", cwd=tmp_path)
    assert run.wait(timeout=60) == 0
    assert followed.returncode == 0, followed.stderr
    lines = followed.stdout.splitlines()
    assert "== 1.2 primary attempt 1: success (exit 0) ==" in lines
    assert lines.index("three") < lines.index("== 1.2 primary attempt 1: success (exit 0) ==")


def test_a_running_commands_output_is_on_disk_as_it_comes(tmp_path: Path) -> None:
    """The kept output is written while the process runs (for --follow and the dashboard)."""
    import json

    make(tmp_path, pause=3)
    env = {k: v for k, v in os.environ.items() if k != "SPECS_STATE_DIR"}
    run = subprocess.Popen([sys.executable, "-m", "specs", "run", "loud", "--no-input"],
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    seen_while_running = False
    while time.monotonic() < deadline and not seen_while_running:
        found = list((tmp_path / ".specs").glob("runs/*/outputs/1.2/primary-1.stdout"))
        if found and found[0].read_text() == "one\n":
            [log] = (tmp_path / ".specs").glob("runs/*/events.jsonl")
            ended = [json.loads(line) for line in log.read_text().splitlines()
                     if '"attempt-ended"' in line and '"1.2"' in line]
            seen_while_running = not ended
        time.sleep(0.05)
    assert run.wait(timeout=60) == 0
    assert seen_while_running
    [final] = (tmp_path / ".specs").glob("runs/*/outputs/1.2/primary-1.stdout")
    assert final.read_text() == "one\ntwo\nthree\n"
