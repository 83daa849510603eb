"""Cognitive steps through the Anthropic provider, end to end: `specs run --provider
anthropic` against the real local server's `/v1/messages` (tests/llm_server.py). The tool-use
loop, usage and cost accounting, a 529 "overloaded" retried, a garbage answer failing the
attempt, and a 429's Retry-After honoured before the next request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_server import (
    LlmServer,
    Recorded,
    Reply,
    anthropic_message,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from test_llm_steps import HEAD, cli, write

ONE = HEAD + """
[retry]
backoff_base_seconds = 0

[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Write hello.txt with a greeting"
expected_output = "a greeting"
critical_flag = true
max_retries = 1
"""


def run(folder: Path, server: LlmServer, tmp_path: Path, *args: str,
        provider: str = "anthropic") -> tuple[int, list[dict[str, Any]], str]:
    env = ({"ANTHROPIC_BASE_URL": server.url} if provider == "anthropic"
           else {"OPENAI_BASE_URL": server.openai_url})
    done = cli("run", folder, "--provider", provider, "--model", "test-model", "--json",
               "--state-dir", tmp_path / "state", *args, env=env)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, events, done.stderr


def of(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def test_tool_use_loop_writes_a_file(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(
        anthropic_message("I will write it.", tool_uses=[
            ("toolu_1", "write_file", {"path": "hello.txt", "content": "hi all\n"})]),
        anthropic_message("Wrote hello.txt"))
    folder = write(tmp_path, ONE)
    code, events, stderr = run(folder, llm_server, tmp_path)
    assert code == 0, stderr
    assert (folder / "hello.txt").read_text() == "hi all\n"
    assert [r.path for r in llm_server.posts] == ["/v1/messages", "/v1/messages"]
    first, second = (r.body for r in llm_server.posts)
    assert first["model"] == "test-model" and first["max_tokens"] == 4096
    assert {t["name"] for t in first["tools"]} >= {"read_file", "write_file", "run_command"}
    assert "Write hello.txt with a greeting" in json.dumps(first["messages"])
    assert isinstance(first["system"], str) and first["system"]
    assistant = second["messages"][1]
    assert assistant["role"] == "assistant"
    assert any(b["type"] == "tool_use" and b["id"] == "toolu_1" for b in assistant["content"])
    result = second["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
    assert of(events, "attempt-ended")[0]["output"] == "Wrote hello.txt"


def test_usage_and_cost_are_counted_per_call_attempt_step_and_run(llm_server: LlmServer,
                                                                  tmp_path: Path) -> None:
    llm_server.script(
        anthropic_message(tool_uses=[("t1", "list_files", {})], usage=(1000, 200)),
        anthropic_message("Hello", usage=(3000, 400)))
    text = ONE + '\n[llm.prices]\n"test-model" = { input = 3.0, output = 15.0 }\n'
    folder = write(tmp_path, text)
    code, events, stderr = run(folder, llm_server, tmp_path)
    assert code == 0, stderr
    calls = of(events, "llm-call")
    assert [c["usage"] for c in calls] == [{"input_tokens": 1000, "output_tokens": 200},
                                           {"input_tokens": 3000, "output_tokens": 400}]
    assert calls[0]["cost_usd"] == pytest.approx((1000 * 3 + 200 * 15) / 1e6)
    ended = of(events, "attempt-ended")[0]
    assert ended["usage"] == {"input_tokens": 4000, "output_tokens": 600}
    expected = (4000 * 3 + 600 * 15) / 1e6
    assert ended["cost_usd"] == pytest.approx(expected)
    doc = json.loads((folder / "progress_demo.json").read_text())
    step = doc["tasks"][0]["steps"][0]
    assert step["llm_usage"]["total_tokens"] == 4600 and step["llm_usage"]["calls"] == 2
    assert step["attempts"][0]["usage"] == {"input_tokens": 4000, "output_tokens": 600}
    assert doc["tasks"][0]["llm_usage"]["cost_usd"] == pytest.approx(expected)
    assert doc["llm_usage"]["cost_usd"] == pytest.approx(expected)
    assert "2 LLM calls, 4,600 tokens, $0.0210" in stderr


def test_overloaded_529_is_retried(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(
        Reply.json({"type": "error", "error": {"type": "overloaded_error",
                                               "message": "Overloaded"}}, 529),
        anthropic_message("Hello"))
    code, events, stderr = run(write(tmp_path, ONE), llm_server, tmp_path)
    assert code == 0, stderr
    first, second = of(events, "attempt-ended")
    assert first["outcome"] == "failure" and first["transient"] is True
    assert "529" in first["failure_reason"] and "Overloaded" in first["failure_reason"]
    assert second["outcome"] == "success" and second["attempt"] == 2
    assert second["method"] == "primary"  # a retry of the same method, not a backup
    assert len(llm_server.posts) == 2


def test_a_garbage_answer_fails_the_attempt(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(Reply.garbage(), Reply.truncated_json(anthropic_message("Hello")))
    code, events, _ = run(write(tmp_path, ONE), llm_server, tmp_path)
    assert code == 1
    ended = of(events, "attempt-ended")
    assert [(e["outcome"], e["transient"]) for e in ended] == [("failure", False)] * 2
    assert "invalid JSON" in ended[0]["failure_reason"]
    assert "truncated JSON" in ended[1]["failure_reason"]
    assert of(events, "step-ended")[0]["status"] == "failed"
    assert not of(events, "llm-call")  # no answer, no usage


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_retry_after_is_waited_for_before_the_next_request(
        llm_server: LlmServer, tmp_path: Path, provider: str) -> None:
    def answer(recorded: Recorded) -> Reply | dict[str, Any]:
        if recorded.method != "POST":
            return {"object": "list", "data": []}
        if len(llm_server.posts) == 1:
            return Reply.json({"error": {"message": "slow down"}}, 429, {"Retry-After": "1"})
        return anthropic_message("Hello") if provider == "anthropic" else openai_chat("Hello")

    llm_server.handler = answer
    code, events, stderr = run(write(tmp_path, ONE), llm_server, tmp_path, provider=provider)
    assert code == 0, stderr
    first, second = llm_server.posts
    assert second.at - first.at >= 1.0  # the backoff is 0 s: only Retry-After made it wait
    assert of(events, "retry-scheduled") == []  # [retry] backoff 0: the engine itself waits 0
    assert "429" in of(events, "attempt-ended")[0]["failure_reason"]
