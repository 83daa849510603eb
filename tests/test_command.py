"""The command executor (`run_command`): the child's environment, its working directory,
errors before the process starts, and structured output read from standard output."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from specs.executors.base import Outcome, StepContext
from specs.executors.command import run_command, run_tool, step_env
from specs.spec.model import Action


def context(tmp_path: Path, **changes: Any) -> StepContext:
    fields: dict[str, Any] = {
        "spec": None, "task": None, "step": None, "ref": "1.2", "method": "primary",
        "attempt": 3, "workspace": tmp_path, "spec_folder": tmp_path, "run_id": "run-7",
        "vars": {"region": "eu"}}
    fields.update(changes)
    return StepContext(**fields)


def run(command: str, ctx: StepContext, **action: Any) -> Outcome:
    return asyncio.run(run_command(Action(command=command, **action), ctx))


def child_env(ctx: StepContext, **action: Any) -> dict[str, str]:
    outcome = run(f"{sys.executable} -c 'import json, os; print(json.dumps(dict(os.environ)))'",
                  ctx, **action)
    assert outcome.ok, outcome.failure_reason
    env = outcome.output
    assert isinstance(env, dict)
    return env


def test_the_child_gets_the_engines_environment_and_the_steps_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECS_TEST_OUTER", "one")
    env = child_env(context(tmp_path), env={"SPECS_VAR_REGION": "us", "EXTRA": "x"})
    assert env["SPECS_TEST_OUTER"] == "one"
    assert (env["SPECS_RUN_ID"], env["SPECS_STEP"], env["SPECS_METHOD"],
            env["SPECS_ATTEMPT"]) == ("run-7", "1.2", "primary", "3")
    assert env["SPECS_VAR_REGION"] == "us" and env["EXTRA"] == "x"  # the action's env wins


def test_a_change_to_the_engines_environment_reaches_the_next_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECS_TEST_CHANGING", "before")
    assert child_env(context(tmp_path))["SPECS_TEST_CHANGING"] == "before"
    monkeypatch.setenv("SPECS_TEST_CHANGING", "after")
    assert child_env(context(tmp_path))["SPECS_TEST_CHANGING"] == "after"
    monkeypatch.delenv("SPECS_TEST_CHANGING")
    assert "SPECS_TEST_CHANGING" not in child_env(context(tmp_path))
    assert "SPECS_TEST_CHANGING" not in step_env(context(tmp_path), Action(command="true"))


def test_step_env_returns_a_fresh_copy(tmp_path: Path) -> None:
    first = step_env(context(tmp_path), Action(command="true"))
    first["SPECS_TEST_SCRIBBLE"] = "x"
    assert "SPECS_TEST_SCRIBBLE" not in step_env(context(tmp_path), Action(command="true"))
    assert "SPECS_TEST_SCRIBBLE" not in os.environ


def test_a_missing_working_directory_is_named(tmp_path: Path) -> None:
    outcome = run("true", context(tmp_path / "gone"))
    assert outcome.status == "error"
    assert outcome.failure_reason == f"working directory {tmp_path / 'gone'} does not exist"


def test_a_missing_program_cannot_start(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    missing = asyncio.run(run_tool(Action(tool_path=str(tmp_path / "nope")), ctx))
    assert missing.status == "error"
    assert (missing.failure_reason or "").startswith(f"cannot start {tmp_path / 'nope'}: ")


def test_stdout_is_structured_output_only_when_it_is_a_json_object(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    assert run("echo '  {\"n\": 1}  '", ctx).output == {"n": 1}
    assert run("echo '[1, 2]'", ctx).output is None
    assert run("echo '{not json}'", ctx).output is None
    assert run("echo hello", ctx).text == "hello\n"
    assert json.loads(run("echo '{\"a\": {\"b\": 2}}'", ctx).text) == {"a": {"b": 2}}


# -- failures no retry can mend (permanent) and output over the cap -------------------------------


@pytest.mark.parametrize(("command", "what"), [
    ("specs-no-such-program-xyz", "command not found"),
    ("touch plain.sh && ./plain.sh", "not executable")])
def test_not_found_and_not_executable_are_permanent(tmp_path: Path, command: str,
                                                    what: str) -> None:
    outcome = run(command, context(tmp_path))
    assert outcome.status == "error" and outcome.permanent and not outcome.transient
    assert (outcome.failure_reason or "").startswith(what)


def test_a_code_the_step_retries_on_is_not_permanent(tmp_path: Path) -> None:
    outcome = run("specs-no-such-program-xyz", context(tmp_path), retry_on_exit_codes=[127])
    assert outcome.status == "failed" and outcome.transient and not outcome.permanent


def test_what_cannot_start_is_permanent(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    for outcome in (asyncio.run(run_tool(Action(tool_path=str(tmp_path / "nope")), ctx)),
                    run("true", context(tmp_path / "gone")),
                    asyncio.run(run_command(Action(), ctx))):
        assert outcome.status == "error" and outcome.permanent, outcome


def test_an_ordinary_failure_is_not_permanent(tmp_path: Path) -> None:
    outcome = run("exit 3", context(tmp_path))
    assert outcome.status == "failed" and not outcome.permanent and not outcome.transient


def test_json_stdout_over_the_cap_says_it_was_cut(tmp_path: Path) -> None:
    ctx = context(tmp_path, max_output_bytes=1000)
    script = f"{sys.executable} -c \"import json; print(json.dumps({{'x': 'y' * 5000}}))\""
    outcome = run(script, ctx)
    assert outcome.ok and outcome.output is None
    assert outcome.truncated == ("standard output cut at 1,000 bytes (4,010 more dropped): "
                                 "its JSON could not be read, so the step has no structured "
                                 "output")
    small = run("echo '{\"n\": 1}'", ctx)
    assert small.output == {"n": 1} and small.truncated is None
    text = run(f"{sys.executable} -c \"print('z' * 5000)\"", ctx)
    assert text.truncated == "standard output cut at 1,000 bytes (4,001 more dropped)"


# -- through the engine (the runner records what the outcome says) ------------------------------

LADDER = """\
[meta]
goal_descriptor = "demo"

[goal]
description = "Build"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Build"

[[tasks.steps]]
id = 1
description = "Build it"
command = "specs-no-such-program-xyz --build"
max_retries = 3

[[tasks.steps.backups]]
id = 1
description = "Build it another way"
command = "echo built"
"""


def run_spec(tmp_path: Path, text: str) -> list[Any]:
    from specs.engine.runner import Runner, RunOptions
    from specs.spec.load import load_spec

    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "parameters_demo.toml").write_text(text, encoding="utf-8")
    events: list[Any] = []
    runner = Runner(load_spec(folder), RunOptions(state_dir=tmp_path / "state"),
                    subscribers=[lambda e, s: events.append(e)])
    asyncio.run(runner.start())
    return [e for e in events if e.name == "attempt-ended"]


def test_command_not_found_goes_to_the_backup_at_once(tmp_path: Path) -> None:
    ended = run_spec(tmp_path, LADDER)
    assert [(e.method, e.outcome, e.permanent) for e in ended] == [
        ("primary", "error", True), ("backup_1", "success", False)]
    assert ended[0].failure_reason.startswith("command not found")


def test_the_cut_of_json_stdout_is_recorded(tmp_path: Path) -> None:
    text = LADDER.replace('command = "specs-no-such-program-xyz --build"', (
        f"command = '''{sys.executable} -c \"import json; print(json.dumps({{'x': 'y' * "
        "2000000}))\"'''"))
    ended = run_spec(tmp_path, text)
    assert ended[0].output is None
    assert ended[0].output_truncated.startswith("standard output cut at 1,000,000 bytes")
