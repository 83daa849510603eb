"""Cognitive steps run by the engine against a real local OpenAI-compatible server
(tests/llm_server.py): prompts, the tool loop, structured output, faults, usage and cost,
record/replay through the CLI, and the pre-flight of the provider."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from llm_server import (
    LlmServer,
    Reply,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from specs import events as ev
from specs.engine.runner import Runner, RunOptions
from specs.llm.agent import make_llm_executor
from specs.llm.providers import provider_from_settings
from specs.spec.load import load_spec

HEAD = """\
[meta]
goal_descriptor = "demo"

[goal]
description = "Write a friendly greeting file for the team"

[execution]
default_mode = "silent"
"""

TWO_STEPS = HEAD + """
[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Choose the greeting words"
expected_output = "one short greeting line"
critical_flag = true

[[tasks.steps]]
id = 2
description = "Polish the greeting"
expected_output = "the polished greeting"
critical_flag = true
"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "demo"
    folder.mkdir(exist_ok=True)
    (folder / "parameters_demo.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


async def _no_sleep(delay: float) -> None:
    return None


def run_spec(folder: Path, server: LlmServer, tmp_path: Path) -> list[ev.Event]:
    """Run the spec with the cognitive executor on ``server``; the events."""
    loaded = load_spec(folder)
    spec = loaded.require()
    events: list[ev.Event] = []
    runner = Runner(loaded, RunOptions(state_dir=tmp_path / "state"),
                    subscribers=[lambda e, s: events.append(e)], sleep=_no_sleep)
    provider = provider_from_settings(spec.llm, {"OPENAI_BASE_URL": server.openai_url})
    runner.executors["cognitive"] = make_llm_executor(
        provider, spec=spec, loaded=loaded, state_getter=lambda: runner.state,
        emit=runner.emit)

    async def go() -> None:
        try:
            await runner.start()
        finally:
            await provider.aclose()

    asyncio.run(go())
    return events


def named(events: list[ev.Event], name: str) -> list[Any]:
    return [e for e in events if e.name == name]


def goal(events: list[ev.Event]) -> str | None:
    ended = named(events, "run-ended")
    return getattr(ended[-1], "goal_achievement_status", None) if ended else None


def user_prompt(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")


def test_two_cognitive_steps_run_to_achieved(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hello, team!"), openai_chat("Hello, wonderful team!"))
    events = run_spec(write(tmp_path, TWO_STEPS), llm_server, tmp_path)
    assert goal(events) == "ACHIEVED"
    assert [e.status for e in named(events, "step-ended")] == ["completed", "completed"]
    first, second = (user_prompt(r.body) for r in llm_server.posts)
    assert "Write a friendly greeting file for the team" in first
    assert "Choose the greeting words" in first
    assert "one short greeting line" in first
    assert "Polish the greeting" in second
    assert "Hello, team!" in second
    assert named(events, "attempt-ended")[0].output == "Hello, team!"


ONE_STEP = HEAD + """
[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Write hello.txt with a greeting"
expected_output = "hello.txt"
critical_flag = true
"""


def test_tool_loop_writes_a_file(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(
        openai_chat(None, tool_calls=[("call_1", "write_file",
                                       {"path": "hello.txt", "content": "hi all\n"})]),
        openai_chat("Wrote hello.txt"))
    folder = write(tmp_path, ONE_STEP)
    events = run_spec(folder, llm_server, tmp_path)
    assert goal(events) == "ACHIEVED"
    assert (folder / "hello.txt").read_text() == "hi all\n"
    second = llm_server.posts[1].body["messages"]
    tool = [m for m in second if m["role"] == "tool"]
    assert tool and tool[0]["tool_call_id"] == "call_1"
    assert any(m["role"] == "assistant" and m.get("tool_calls") for m in second)
    assert {t["function"]["name"] for t in llm_server.posts[0].body["tools"]} >= {
        "read_file", "write_file", "list_files", "run_command"}


def test_path_traversal_is_refused_and_reported(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(
        openai_chat(None, tool_calls=[("c1", "write_file",
                                       {"path": "../escape.txt", "content": "x"})]),
        openai_chat(None, tool_calls=[("c2", "no_such_tool", {})]),
        openai_chat("done"))
    folder = write(tmp_path, ONE_STEP)
    events = run_spec(folder, llm_server, tmp_path)
    assert not (tmp_path / "escape.txt").exists()
    tool = [m for m in llm_server.posts[1].body["messages"] if m["role"] == "tool"]
    assert tool[0]["content"].startswith("ERROR:")
    unknown = [m for m in llm_server.posts[2].body["messages"] if m["role"] == "tool"][-1]
    assert "unknown tool" in unknown["content"]
    assert goal(events) == "ACHIEVED"


SCHEMA = HEAD + """
[[tasks]]
id = 1
description = "Score the greeting"

[[tasks.steps]]
id = 1
description = "Score the greeting"
expected_output = "a JSON score"
critical_flag = true
max_retries = 0

  [tasks.steps.output_schema]
  type = "object"
  required = ["score"]
  properties = { score = { type = "number" } }

[[tasks.steps.backups]]
id = 1
description = "Estimate the score by rule of thumb"
trigger_condition = "primary_failure"

[[tasks.steps]]
id = 2
description = "Improve the greeting"
expected_output = "a better greeting"
condition = "step1_output.score < 0.8"
"""


def test_output_schema_is_structured_output_read_by_a_condition(
        llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(openai_chat('{"score": 0.5}'), openai_chat("Better greeting"))
    events = run_spec(write(tmp_path, SCHEMA), llm_server, tmp_path)
    ended = named(events, "attempt-ended")
    assert ended[0].output == {"score": 0.5} and ended[0].verdict == "match"
    assert [e.status for e in named(events, "step-ended")] == ["completed", "completed"]
    assert llm_server.posts[0].body.get("response_format")  # JSON mode asked for
    assert goal(events) == "ACHIEVED"


def test_condition_false_skips_the_later_step(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(openai_chat('{"score": 0.9}'))
    events = run_spec(write(tmp_path, SCHEMA), llm_server, tmp_path)
    assert [e.status for e in named(events, "step-ended")] == ["completed", "skipped"]
    assert len(llm_server.posts) == 1


@pytest.mark.parametrize("bad", ["answer", "body"])
def test_garbage_json_fails_the_attempt_and_the_backup_runs(
        llm_server: LlmServer, tmp_path: Path, bad: str) -> None:
    llm_server.script(openai_chat("not json at all") if bad == "answer" else Reply.garbage(),
                      openai_chat('{"score": 0.95}'))
    events = run_spec(write(tmp_path, SCHEMA), llm_server, tmp_path)
    ended = named(events, "attempt-ended")
    assert ended[0].outcome == "failure" and not ended[0].transient
    assert "JSON" in (ended[0].failure_reason or "")
    assert ended[1].method == "backup_1" and ended[1].outcome == "success"
    assert named(events, "backup-triggered")
    assert "Estimate the score by rule of thumb" in user_prompt(llm_server.posts[1].body)


def test_server_error_is_retried_with_backoff(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(Reply.json({"error": {"message": "boom"}}, status=500),
                      openai_chat("Hello"))
    text = ONE_STEP.replace("critical_flag = true", "critical_flag = true\nmax_retries = 1")
    text = text.replace('expected_output = "hello.txt"', 'expected_output = "a greeting"')
    events = run_spec(write(tmp_path, text), llm_server, tmp_path)
    ended = named(events, "attempt-ended")
    assert ended[0].transient and ended[0].outcome == "failure"
    assert "500" in (ended[0].failure_reason or "")
    assert named(events, "retry-scheduled")
    assert ended[1].outcome == "success" and goal(events) == "ACHIEVED"


def test_usage_and_cost_on_attempt_ended(llm_server: LlmServer, tmp_path: Path) -> None:
    text = ONE_STEP.replace('expected_output = "hello.txt"', 'expected_output = "a greeting"')
    text += '\n[llm.prices]\n"test-model" = { input = 1.0, output = 2.0 }\n'
    llm_server.script(
        openai_chat(None, tool_calls=[("c1", "list_files", {})], usage=(100, 20)),
        openai_chat("Hello", usage=(200, 30)))
    events = run_spec(write(tmp_path, text), llm_server, tmp_path)
    ended = named(events, "attempt-ended")[0]
    assert ended.usage == {"input_tokens": 300, "output_tokens": 50}
    assert ended.cost_usd == pytest.approx((300 * 1.0 + 50 * 2.0) / 1_000_000)
    assert ended.to_dict()["usage"]["input_tokens"] == 300


def test_failure_prefix_fails_the_attempt(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(openai_chat("FAILED: no greeting is possible"))
    text = ONE_STEP.replace('expected_output = "hello.txt"', 'expected_output = "a greeting"')
    events = run_spec(write(tmp_path, text), llm_server, tmp_path)
    ended = named(events, "attempt-ended")[0]
    assert ended.outcome == "failure"
    assert "no greeting is possible" in (ended.failure_reason or "")


# -- the CLI -------------------------------------------------------------------------------------


def cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SPECS_", "OPENAI_", "ANTHROPIC_"))}
    base.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "specs", *map(str, args)], env=base,
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def outcomes(stdout: str) -> list[tuple[str, str, str]]:
    found = []
    for line in stdout.splitlines():
        data = json.loads(line)
        if data.get("event") == "attempt-ended":
            found.append((data["step"], data["method"], data["outcome"]))
    return found


def test_record_then_replay_makes_no_requests(llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, TWO_STEPS)
    state = tmp_path / "state"
    llm_server.script(openai_chat("Hello, team!"), openai_chat("Hello, wonderful team!"))
    env = {"OPENAI_BASE_URL": llm_server.openai_url}
    first = cli("run", folder, "--record", "--run-id", "rec1", "--json", "--state-dir", state,
                env=env)
    assert first.returncode == 0, first.stderr
    assert (state / "runs" / "rec1" / "exchanges.jsonl").is_file()
    before = len(llm_server.requests)
    again = cli("run", folder, "--replay", "rec1", "--json", "--state-dir", state, env=env)
    assert again.returncode == 0, again.stderr
    assert len(llm_server.requests) == before
    assert outcomes(again.stdout) == outcomes(first.stdout) != []


def test_no_provider_configured_is_e_no_provider(tmp_path: Path) -> None:
    folder = write(tmp_path, TWO_STEPS)
    done = cli("run", folder, "--state-dir", tmp_path / "state")
    assert done.returncode == 1
    assert "E-NO-PROVIDER" in done.stderr and "--provider" in done.stderr


def test_unreachable_server_is_one_line_exit_2(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = write(tmp_path, TWO_STEPS)
    done = cli("run", folder, "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "runs").exists() or not any(
        (tmp_path / "state" / "runs").iterdir())


# -- permanent failures, answers over the cap ------------------------------------------------


def run_recording(folder: Path, server: LlmServer, tmp_path: Path
                  ) -> tuple[list[ev.Event], list[Any]]:
    """Run the spec on ``server``; the events and the executor's outcomes."""
    loaded = load_spec(folder)
    spec = loaded.require()
    events: list[ev.Event] = []
    outcomes: list[Any] = []
    runner = Runner(loaded, RunOptions(state_dir=tmp_path / "state"),
                    subscribers=[lambda e, s: events.append(e)], sleep=_no_sleep)
    provider = provider_from_settings(spec.llm, {"OPENAI_BASE_URL": server.openai_url})
    agent = make_llm_executor(provider, spec=spec, loaded=loaded,
                              state_getter=lambda: runner.state, emit=runner.emit)

    async def recorded(action: Any, ctx: Any) -> Any:
        outcomes.append(await agent(action, ctx))
        return outcomes[-1]

    runner.executors["cognitive"] = recorded

    async def go() -> None:
        try:
            await runner.start()
        finally:
            await provider.aclose()

    asyncio.run(go())
    return events, outcomes


def test_a_rejected_key_is_a_permanent_error(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.handler = lambda r: Reply.json({"error": {"message": "bad key"}}, 401)
    text = ONE_STEP.replace('expected_output = "hello.txt"', 'expected_output = "a greeting"')
    _events, outcomes = run_recording(write(tmp_path, text), llm_server, tmp_path)
    assert outcomes[0].status == "error" and outcomes[0].permanent
    assert "rejected the API key (HTTP 401)" in outcomes[0].failure_reason


def test_an_answer_over_the_cap_is_cut_like_command_output(llm_server: LlmServer,
                                                           tmp_path: Path) -> None:
    llm_server.script(openai_chat("é" * 600_000))  # 1.2 MB in UTF-8
    text = ONE_STEP.replace('expected_output = "hello.txt"', 'expected_output = "a greeting"')
    events, outcomes = run_recording(write(tmp_path, text), llm_server, tmp_path)
    ended = named(events, "attempt-ended")[0]
    assert ended.outcome == "success"
    assert len(ended.output.encode("utf-8")) == 1_000_000 == len(outcomes[0].text.encode())
    assert outcomes[0].truncated == ("the answer cut at 1,000,000 bytes (max_output_bytes; "
                                     "200,000 more dropped)")


def test_a_structured_answer_over_the_cap_fails(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(openai_chat(json.dumps({"score": 1, "pad": "x" * 1_100_000})))
    events, _outcomes = run_recording(write(tmp_path, SCHEMA), llm_server, tmp_path)
    first = named(events, "attempt-ended")[0]
    assert first.outcome == "failure" and first.output is None
    assert first.failure_reason.startswith("the answer cut at 1,000,000 bytes")
    assert first.failure_reason.endswith(": its JSON is not read")
