"""The library API (specs.api, re-exported by specs): what the CLI, the dashboard and
``specs mcp`` use. Runs here are real: commands in subprocesses, a cognitive step against the
local LLM server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import specs
from llm_server import LlmServer, openai_chat
from llm_server import llm_server_fixture as llm_server_fixture  # the llm_server fixture
from specs import events as ev
from specs.errors import UsageError

GATED = """\
[meta]
goal_descriptor = "gated"

[goal]
description = "Write two files, the second after a person approves"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Write the files"

[[tasks.steps]]
id = 1
description = "Write a.txt"
expected_output = "a.txt exists"
critical_flag = false
command = "echo a > a.txt"

[[tasks.steps]]
id = 2
description = "Write b.txt once approved"
expected_output = "b.txt exists"
critical_flag = false
mode = "collaborative"
command = "echo b > b.txt"
"""

COGNITIVE = """\
[meta]
goal_descriptor = "hello"

[goal]
description = "Write a friendly greeting for the team"

[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Choose the greeting words"
expected_output = "one short greeting line"
critical_flag = false
"""

SLOW = """\
[meta]
goal_descriptor = "slow"

[goal]
description = "Do two things, one of them slowly"

[[tasks]]
id = 1
description = "Work"

[[tasks.steps]]
id = 1
description = "Quick"
expected_output = "done"
critical_flag = false
command = "echo quick >> log.txt"

[[tasks.steps]]
id = 2
description = "Slow"
expected_output = "done"
critical_flag = false
command = "sleep 30; echo slow >> log.txt"
"""


def spec_folder(tmp_path: Path, text: str, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"parameters_{name}.toml").write_text(textwrap.dedent(text))
    return folder


def options(tmp_path: Path, **kwargs: Any) -> specs.RunOptions:
    return specs.RunOptions(state_dir=tmp_path / "state", **kwargs)


# -- the package's face ---------------------------------------------------------------------------


def test_every_exported_name_resolves_and_the_list_is_sorted() -> None:
    names = [n for n in specs.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in specs.__all__:
        assert getattr(specs, name) is not None
        assert name in dir(specs)
    assert set(specs.__all__) - {"__version__"} == set(specs.api.__all__)
    with pytest.raises(AttributeError):
        specs.no_such_name  # noqa: B018


def test_importing_specs_loads_nothing_heavy() -> None:
    """``import specs`` (the first thing every command does) loads the API on first use."""
    code = ("import sys, specs; print(sorted(m for m in ('specs.api', 'specs.engine', 'httpx', "
            "'pydantic', 'mcp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_open_validate_plan(tmp_path: Path) -> None:
    loaded = specs.open_spec(spec_folder(tmp_path, GATED, "gated"))
    assert loaded.spec is not None
    assert not [d for d in specs.validate(loaded) if d.severity is specs.Severity.ERROR]
    plan = specs.plan_spec(loaded)
    assert list(plan.order) == ["1.1", "1.2"]
    preview = specs.dry_run(loaded, options(tmp_path))
    assert preview["valid"] and [i["gate"] for i in preview["plan"]] == [None, "before_step"]
    assert not (tmp_path / "state").exists()  # a dry run writes nothing


# -- runs ----------------------------------------------------------------------------------------


def test_a_cognitive_run_from_python(llm_server: LlmServer, tmp_path: Path) -> None:
    """The docs/api.md example: a run with an LLM step, its events watched as they come."""
    llm_server.script(openai_chat("Hello, team!"))
    folder = spec_folder(tmp_path, COGNITIVE, "hello")

    async def main() -> tuple[specs.RunResult, list[str]]:
        run = specs.start_run(folder, options(tmp_path),
                              environ={"OPENAI_BASE_URL": llm_server.openai_url})
        seen = [event.name async for event in run.events()]
        return await run, seen

    result, seen = asyncio.run(main())
    assert (result.status, result.goal, result.exit_code) == ("completed", "ACHIEVED", 0)
    assert seen[0] == "run-opened" and seen[-1] == "run-ended"
    assert "llm-call" in seen and "step-ended" in seen
    assert len(llm_server.posts) == 1
    progress = json.loads((folder / "progress_hello.json").read_text())
    assert progress["goal_achievement_status"] == "ACHIEVED"  # the projections are wired


def test_a_gate_answered_through_the_handle(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path, GATED, "gated")

    async def main() -> specs.RunResult:
        run = specs.start_run(folder, options(tmp_path), answers=True)
        async for event in run.events():
            if event.name == "gate-requested":
                assert [g.kind for g in run.pending()] == ["before_step"]
                await run.approve(guidance="go ahead")
        return await run

    result = asyncio.run(main())
    assert result.goal == "ACHIEVED"
    assert (folder / "b.txt").read_text() == "b\n"
    answered = [g for g in result.state.gates.values() if g.response]
    assert [(g.kind, g.response) for g in answered] == [("before_step", "guidance:go ahead")]


def test_without_answers_a_gate_pauses_then_answer_gate_and_resume(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path, GATED, "gated")
    paused = specs.run_spec(folder, options(tmp_path))
    assert (paused.status, paused.exit_code) == ("awaiting_human", 3)
    assert not (folder / "b.txt").exists()
    with pytest.raises(UsageError):
        asyncio.run(_answer_unanswerable(folder, tmp_path))
    run_dir = specs.find_run(tmp_path / "state", paused.run_id)
    specs.answer_gate(run_dir, "1.2", "approve")

    async def resume() -> specs.RunResult:
        return await specs.resume_run(paused.run_id, options(tmp_path))

    done = asyncio.run(resume())
    assert done.goal == "ACHIEVED" and (folder / "b.txt").exists()
    [summary] = specs.list_runs(tmp_path / "state")
    assert (summary.run_id, summary.status) == (paused.run_id, "completed")
    view = specs.show_run(tmp_path / "state", "last")
    assert view.document is not None and view.document["goal_achievement_status"] == "ACHIEVED"


async def _answer_unanswerable(folder: Path, tmp_path: Path) -> None:
    run = specs.start_run(folder, specs.RunOptions(state_dir=tmp_path / "other"))
    try:
        await run.approve()
    finally:
        await run


def test_cancel_halts_and_a_resume_runs_only_what_is_left(tmp_path: Path) -> None:
    folder = spec_folder(tmp_path, SLOW, "slow")

    async def main() -> str:
        run = specs.start_run(folder, options(tmp_path))
        async for event in run.events():
            if isinstance(event, ev.AttemptStarted) and event.step == "1.2":
                await asyncio.sleep(0.3)  # the sleep is running
                run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        return run.run_id

    run_id = asyncio.run(main())
    [summary] = specs.list_runs(tmp_path / "state")
    assert summary.status == "halted"
    assert summary.goal == "PARTIAL"  # as of the halt: 1.1 done, 1.2 not (a resume can change it)
    (folder / "parameters_slow.toml").write_text(SLOW.replace("sleep 30; ", ""))

    async def resume() -> specs.RunResult:
        return await specs.resume_run(run_id, options(tmp_path), force=True)

    done = asyncio.run(resume())
    assert done.goal == "ACHIEVED"
    assert (folder / "log.txt").read_text() == "quick\nslow\n"  # 1.1 did not run again


def test_the_docs_example_runs_as_written(llm_server: LlmServer, tmp_path: Path) -> None:
    """docs/api.md's first example, run as a script against the local LLM server."""
    import os
    import re
    import shutil

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "api.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S)
    assert code is not None
    shutil.copytree(root / "examples" / "greeting", tmp_path / "examples" / "greeting")
    llm_server.script(
        openai_chat(None, tool_calls=[("c1", "write_file", {"path": "greeting.txt",
                                                            "content": "Hello, team!\n"})]),
        openai_chat("Wrote greeting.txt"))
    env = {**os.environ, "OPENAI_BASE_URL": llm_server.openai_url, "OPENAI_API_KEY": "test"}
    out = subprocess.run([sys.executable, "-c", code.group(1)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].endswith("completed ACHIEVED"), out.stdout
    assert "1 run-opened" in out.stdout
    assert (tmp_path / "examples" / "greeting" / "greeting.txt").read_text() == "Hello, team!\n"


def test_a_waiting_run_takes_an_answer_from_another_process(tmp_path: Path) -> None:
    """``specs run --wait``: the gate waits; ``specs approve`` from another process wakes it."""
    import os
    import time

    folder = spec_folder(tmp_path, GATED, "gated")
    env = {k: v for k, v in os.environ.items() if k != "SPECS_STATE_DIR"}
    run = subprocess.Popen([sys.executable, "-m", "specs", "run", "gated", "--no-input",
                            "--wait"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        runs = specs.list_runs(tmp_path / ".specs") if (tmp_path / ".specs").is_dir() else []
        if runs and runs[0].pending_gate:
            break
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)
    answered = subprocess.run([sys.executable, "-m", "specs", "approve", "last", "1.2",
                               "--guidance", "fine"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
    assert answered.returncode == 0, answered.stderr
    assert "goes on" in answered.stdout
    _out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert (folder / "b.txt").exists()
    view = specs.show_run(tmp_path / ".specs", "last")
    assert view.state is not None
    [gate] = [g for g in view.state.gates.values() if g.response]
    assert (gate.response, gate.by) == ("guidance:fine", "cli")
