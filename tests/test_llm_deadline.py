"""The deadline of cognitive work (specs.llm.deadline) against a real local server
(tests/llm_server.py): a server that hangs or trickles, a 429 asking for an hour, a tool that
runs too long, the LLM judge and the research phase all end within the attempt's timeout
(+ 1 s), as a transient failure, with the connection closed."""

from __future__ import annotations

import asyncio
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from llm_server import (
    LlmServer,
    Reply,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
    openai_stream,
)
from specs import events as ev
from specs.engine.runner import Runner, RunOptions
from specs.errors import ProviderConfigError, ProviderTimeout
from specs.llm.agent import make_llm_executor
from specs.llm.deadline import MAX_WAIT_S, Deadline
from specs.llm.judge import LlmJudge
from specs.llm.providers import OpenAIProvider, provider_from_settings
from specs.llm.providers.base import Message, Request
from specs.llm.research import research_once, research_timeout
from specs.spec.load import load_spec

TIMEOUT = 1.0
#: the most a run of these tests may take before the test gives up (a hang, before the fix)
GIVE_UP_S = 20.0

SPEC = """\
[meta]
goal_descriptor = "demo"

[goal]
description = "Greet the team"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Greet"
{task}

[[tasks.steps]]
id = 1
description = "Write a greeting"
expected_output = "a greeting"
critical_flag = true
max_retries = {retries}
{step}
"""


def write(tmp_path: Path, *, retries: int = 0, step: str = f"timeout_seconds = {TIMEOUT}",
          task: str = "") -> Path:
    folder = tmp_path / "demo"
    folder.mkdir(exist_ok=True)
    (folder / "parameters_demo.toml").write_text(
        textwrap.dedent(SPEC.format(retries=retries, step=step, task=task)), encoding="utf-8")
    return folder


async def _no_sleep(delay: float) -> None:
    return None


def run(folder: Path, server: LlmServer, tmp_path: Path, *, judge: bool = False,
        research: bool = False) -> list[ev.Event]:
    """Run the spec on ``server``; the events (the test fails after GIVE_UP_S)."""
    loaded = load_spec(folder)
    spec = loaded.require()
    events: list[ev.Event] = []
    runner = Runner(loaded, RunOptions(state_dir=tmp_path / "state"),
                    subscribers=[lambda e, s: events.append(e)], sleep=_no_sleep)
    provider = provider_from_settings(spec.llm, {"OPENAI_BASE_URL": server.openai_url})
    runner.executors["cognitive"] = make_llm_executor(
        provider, spec=spec, loaded=loaded, state_getter=lambda: runner.state,
        emit=runner.emit)
    if judge:
        runner.judge = LlmJudge(provider, spec, emit=runner.emit)
    if research:
        locks: dict[str, asyncio.Lock] = {}
        runner.research = lambda task: research_once(runner, task, locks)

    async def go() -> None:
        try:
            await asyncio.wait_for(runner.start(), GIVE_UP_S)
        finally:
            await provider.aclose()

    asyncio.run(go())
    return events


def attempts(events: list[ev.Event]) -> list[Any]:
    return [e for e in events if e.name == "attempt-ended"]


def wait_for(condition: Any, seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


@pytest.mark.parametrize("fault", ["hang", "trickle"])
def test_a_server_that_hangs_or_trickles_ends_the_attempt_at_its_timeout(
        llm_server: LlmServer, tmp_path: Path, fault: str) -> None:
    reply = Reply.hang(60) if fault == "hang" else Reply.trickle(openai_chat("x" * 200), 0.2)
    llm_server.script(reply)
    events = run(write(tmp_path), llm_server, tmp_path)
    ended = attempts(events)[0]
    assert ended.outcome == "failure" and ended.transient
    assert ended.failure_reason.startswith(f"timed out after {TIMEOUT:g} s")
    assert "waiting for the model's answer" in ended.failure_reason
    assert ended.duration_ms < (TIMEOUT + 1) * 1000
    assert wait_for(lambda: len(llm_server.abandoned) == 1)  # the connection was closed


@pytest.mark.parametrize(("step", "room"), [
    ("timeout_seconds = 30", "the 30 s left of the attempt's timeout"),
    ("", f"the {MAX_WAIT_S:g} s a call may wait")])
def test_a_retry_after_longer_than_the_attempt_fails_it_at_once(
        llm_server: LlmServer, tmp_path: Path, step: str, room: str) -> None:
    llm_server.script(Reply.json({"error": {"message": "slow down"}}, 429,
                                 {"Retry-After": "3600"}))
    began = time.monotonic()
    events = run(write(tmp_path, retries=1, step=step), llm_server, tmp_path)
    first, second = attempts(events)
    assert "HTTP 429" in first.failure_reason and first.transient
    assert second.transient and second.failure_reason == (
        "rate limited: the provider asked to wait 3600 s more (Retry-After), longer than "
        f"{room}")
    assert len(llm_server.posts) == 1  # no call made into the hold
    assert time.monotonic() - began < GIVE_UP_S / 2


def test_a_retry_after_that_fits_is_waited_out(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(Reply.json({"error": {"message": "slow down"}}, 429,
                                 {"retry-after-ms": "300"}), openai_chat("Hello"))
    events = run(write(tmp_path, retries=1, step="timeout_seconds = 5"), llm_server, tmp_path)
    assert [a.outcome for a in attempts(events)] == ["failure", "success"]
    first, second = llm_server.posts
    assert second.at - first.at >= 0.29


def test_a_tool_call_is_cut_by_the_attempt_timeout(llm_server: LlmServer,
                                                   tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    llm_server.script(openai_chat(None, tool_calls=[("c1", "run_command", {
        "command": f"echo $$ > {pid_file}; exec sleep 60"})]))
    events = run(write(tmp_path), llm_server, tmp_path)
    ended = attempts(events)[0]
    assert ended.transient and ended.failure_reason == (
        f"timed out after {TIMEOUT:g} s (running the tool run_command)")
    assert ended.duration_ms < (TIMEOUT + 1) * 1000
    pid = int(pid_file.read_text())
    assert wait_for(lambda: not _alive(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_llm_judge_is_bounded_by_the_attempt_timeout(llm_server: LlmServer,
                                                         tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hello, team!"), Reply.hang(60))
    step = f'timeout_seconds = {TIMEOUT}\nverify_with = "llm"'
    began = time.monotonic()
    events = run(write(tmp_path, step=step), llm_server, tmp_path, judge=True)
    ended = attempts(events)[0]
    assert ended.outcome == "failure" and ended.transient
    assert ended.failure_reason == (f"LLM judge: the judge could not be asked: timed out "
                                    f"after {TIMEOUT:g} s (no verdict)")
    assert time.monotonic() - began < GIVE_UP_S / 2
    assert wait_for(lambda: len(llm_server.abandoned) == 1)


def test_the_research_phase_is_bounded(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(Reply.hang(60), openai_chat("Hello, team!"))
    folder = write(tmp_path, task="research_enabled = true")
    events = run(folder, llm_server, tmp_path, research=True)
    research = next(e for e in events if e.name == "research-ended")
    assert research.status == "failed"
    assert f"timed out after {TIMEOUT:g} s" in research.warning
    assert attempts(events)[0].outcome == "success"  # the task went on without findings
    spec = load_spec(folder).require()
    assert research_timeout(spec.tasks[0]) == TIMEOUT


# -- the providers' own bounds ---------------------------------------------------------------


def test_a_trickling_stream_ends_at_the_call_timeout(llm_server: LlmServer) -> None:
    llm_server.script(Reply.trickle(openai_stream(["Hello"] * 20), 0.1))
    provider = OpenAIProvider("m", base_url=llm_server.openai_url, call_timeout=0.5)

    async def go() -> float:
        began = time.monotonic()
        try:
            with pytest.raises(ProviderTimeout, match="did not end within call_timeout"):
                await provider.complete(Request("", (Message("user", "hi"),), stream=True))
        finally:
            await provider.aclose()
        return time.monotonic() - began

    assert asyncio.run(asyncio.wait_for(go(), GIVE_UP_S)) < 1.5
    assert wait_for(lambda: len(llm_server.abandoned) == 1)


def test_a_trickling_preflight_check_ends(llm_server: LlmServer) -> None:
    llm_server.handler = lambda r: Reply.trickle(
        {"object": "list", "data": [{"id": "m"}] * 50}, 0.1)
    provider = OpenAIProvider("m", base_url=llm_server.openai_url, timeout=0.5)

    async def go() -> None:
        try:
            with pytest.raises(ProviderConfigError, match=r"no answer within 0\.5 s"):
                await provider.check()
        finally:
            await provider.aclose()

    asyncio.run(asyncio.wait_for(go(), GIVE_UP_S))


def test_deadline_arithmetic() -> None:
    none, soon = Deadline(None), Deadline(10)
    assert none.left() is None and none.fits(MAX_WAIT_S) and not none.fits(MAX_WAIT_S + 1)
    assert soon.fits(5) and not soon.fits(11)
    assert soon.reason("x") == "timed out after 10 s (x)"
