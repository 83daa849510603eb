"""The state folder (src/specs/api/runs.py): found from any folder of the project, runs listed
newest first with their full ids, a run whose process died shown as interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import specs

SPEC = """\
[meta]
goal_descriptor = "{name}"

[goal]
description = "Sleep a little"

[[tasks]]
id = 1
description = "Sleep"

[[tasks.steps]]
id = 1
description = "Sleep"
expected_output = "nothing"
critical_flag = false
command = "sleep {sleep}"
"""


def spec(root: Path, name: str, sleep: float = 0) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / f"parameters_{name}.toml").write_text(SPEC.format(name=name, sleep=sleep))
    return folder


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SPECS_STATE_DIR"}
    return subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_state_folder_is_found_from_any_folder_below_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    spec(project, "a")
    assert cli("run", "a", "--no-input", cwd=project).returncode == 0
    deep = project / "src" / "deeper"
    deep.mkdir(parents=True)
    assert specs.state_dir(cwd=deep) == project / ".specs"
    listed = cli("runs", cwd=deep)
    assert listed.returncode == 0 and "completed" in listed.stdout, listed.stderr
    assert cli("show-run", "last", cwd=deep).returncode == 0
    assert specs.state_dir(cwd=tmp_path) == Path(".specs")  # none above: made here


def test_runs_are_listed_newest_first_with_full_ids_when_piped(tmp_path: Path) -> None:
    for name in ("first", "second", "third"):
        spec(tmp_path, name)
        assert cli("run", name, "--no-input", cwd=tmp_path).returncode == 0
        time.sleep(0.01)
    out = cli("runs", cwd=tmp_path).stdout.splitlines()
    assert out[0].split()[:3] == ["run", "spec", "status"]
    assert [line.split()[1] for line in out[1:]] == ["third", "second", "first"]
    ids = [line.split()[0] for line in out[1:]]
    assert all(len(i) == len("run_20261207T101419Z_b5ae") for i in ids), ids
    assert ids == [r.run_id for r in specs.list_runs(tmp_path / ".specs")]


def test_a_run_whose_process_died_is_interrupted(tmp_path: Path) -> None:
    spec(tmp_path, "slow", sleep=30)
    env = {k: v for k, v in os.environ.items() if k != "SPECS_STATE_DIR"}
    proc = subprocess.Popen([sys.executable, "-m", "specs", "run", "slow", "--no-input"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / ".specs"
    deadline = time.monotonic() + 30
    while True:
        runs = specs.list_runs(state) if state.is_dir() else []
        if runs and runs[0].status == "running":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    [summary] = specs.list_runs(state)
    assert summary.status == "interrupted"
    assert "interrupted" in cli("runs", cwd=tmp_path).stdout


def test_a_damaged_log_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    spec(tmp_path, "a")
    assert cli("run", "a", "--no-input", cwd=tmp_path).returncode == 0
    [log] = (tmp_path / ".specs").glob("runs/*/events.jsonl")
    lines = log.read_text().splitlines(keepends=True)
    lines.insert(3, "{not json\n")
    log.write_text("".join(lines))
    shown = cli("show-run", "last", cwd=tmp_path)
    assert shown.returncode == 0
    assert "events.jsonl:4: a damaged line (not an event) was skipped" in shown.stderr, \
        shown.stderr


def test_specs_run_records_the_run_in_the_history_as_it_goes(tmp_path: Path) -> None:
    from specs.history import list_runs as history_runs
    from specs.history import open_store

    spec(tmp_path, "recorded")
    assert cli("run", "recorded", "--no-input", cwd=tmp_path).returncode == 0
    store = open_store(tmp_path / ".specs")
    try:
        [row] = history_runs(store)  # written by the live run: no sync, no rebuild
    finally:
        store.close()
    assert (row["descriptor"], row["status"], row["goal"]) == ("recorded", "completed",
                                                               "ACHIEVED")
    filtered = cli("runs", "--status", "halted", cwd=tmp_path)
    assert filtered.returncode == 0 and "recorded" not in filtered.stdout
    assert "recorded" in cli("runs", "--spec", "recorded", "--since", "1d", cwd=tmp_path).stdout
