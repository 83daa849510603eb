"""The examples in examples/ run end to end through the real CLI (docs point at them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(tmp_path: Path, name: str, *args: str) -> tuple[int, list[dict[str, object]],
                                                                  str]:
    folder = tmp_path / name
    source = ROOT / "examples" / name
    if "/" in name:  # a spec inside a folder of specs (composition): copy them all
        shutil.copytree(source.parent, folder.parent)
    else:
        shutil.copytree(source, folder)
    proc = subprocess.run(
        [sys.executable, "-m", "specs", "run", str(folder), "--no-input", "--json",
         "--state-dir", str(tmp_path / "state"), *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, events, proc.stderr


def ended(events: list[dict[str, object]]) -> dict[object, tuple[object, object]]:
    return {e["step"]: (e["status"], e["skip_reason"])
            for e in events if e["event"] == "step-ended"}


def test_hello_runs_to_achieved(tmp_path: Path) -> None:
    code, events, err = run_example(tmp_path, "hello")
    assert code == 0, err
    assert events[-1]["event"] == "run-ended" and events[-1]["goal_achievement_status"] == \
        "ACHIEVED"
    assert (tmp_path / "hello" / "build" / "report.md").read_text().startswith("# Report")


def test_conditions_example_runs_and_skips_what_it_says(tmp_path: Path) -> None:
    code, events, err = run_example(tmp_path, "conditions")
    assert code == 0, err
    statuses = ended(events)
    assert statuses["1.2"] == ("completed", None)  # 0.72 < 0.8
    assert statuses["1.3"] == ("skipped", "condition_false")  # no errors
    assert all(status in ("completed", "skipped") for status, _ in statuses.values())


def test_conditions_example_follows_a_var_from_the_command_line(tmp_path: Path) -> None:
    default = ended(run_example(tmp_path / "a", "conditions")[1])
    changed = ended(run_example(tmp_path / "b", "conditions", "--var",
                                "report_format=markdown")[1])
    assert default != changed
    flipped = [ref for ref in default if default[ref] != changed[ref]]
    assert flipped and all(changed[ref] == ("skipped", "condition_false") for ref in flipped)


def test_composed_example_runs_included_specs_in_their_own_folders(tmp_path: Path) -> None:
    code, events, err = run_example(tmp_path, "composed/summary")
    assert code == 0, err
    steps = [e["step"] for e in events if e["event"] == "step-ended"]
    assert any(not str(ref)[0].isdigit() for ref in steps)  # namespaced: "<alias>.<task>.<step>"
    assert events[-1]["goal_achievement_status"] == "ACHIEVED"


@pytest.mark.parametrize("name", ["hello", "conditions"])
def test_examples_run_in_parallel_too(tmp_path: Path, name: str) -> None:
    code, events, err = run_example(tmp_path, name, "--parallel")
    assert code == 0, err
    planned = next(e for e in events if e["event"] == "execution-planned")
    assert planned["parallel"] is True
