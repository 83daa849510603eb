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
