"""The research phase of ``research_enabled`` tasks (reference §3.10 R-RES) against a real local
OpenAI-compatible server (tests/llm_server.py): the agent call and its read-only tools, the
findings in every step prompt of the task, the records in events and progress, no provider,
bad findings, one phase for parallel steps, and a resume that does not redo it."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

from llm_server import (
    LlmServer,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from specs import events as ev
from specs.api.runs import answer_gate, read_run
from specs.engine.runner import Runner, RunOptions, RunResult
from specs.llm.agent import make_llm_executor
from specs.llm.providers import provider_from_settings
from specs.llm.research import research_once
from specs.record.progress import progress_document
from specs.spec.load import load_spec
from test_llm_steps import cli

HEAD = """\
[meta]
goal_descriptor = "demo"

[goal]
description = "Write release notes for version 2 of the parser"

[execution]
default_mode = "silent"
"""

RESEARCHED = HEAD + """
[[tasks]]
id = 1
description = "Draft the release notes"
research_enabled = true
research_sources = ["documentation", "web_search"]

[[tasks.steps]]
id = 1
description = "List the changes since version 1"
expected_output = "a bullet list of the changes"
critical_flag = true

[[tasks.steps]]
id = 2
description = "Write the notes from the list"
expected_output = "release notes in Markdown"
critical_flag = true

[[tasks]]
id = 2
description = "Announce it"

[[tasks.steps]]
id = 1
description = "Write the announcement"
expected_output = "one paragraph"
critical_flag = false
"""

FINDINGS = {"queries": ["what changed in CHANGES.md"], "sources": ["read_file CHANGES.md"],
            "key_findings": ["version 2 drops Python 3.8", "the tokenizer is 3x faster"],
            "confidence": "high"}


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "demo"
    folder.mkdir(exist_ok=True)
    (folder / "parameters_demo.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    (folder / "CHANGES.md").write_text("v2: drop 3.8; faster tokenizer\n", encoding="utf-8")
    return folder


async def _no_sleep(delay: float) -> None:
    return None


def make_runner(folder: Path, tmp_path: Path, server: LlmServer | None,
                events: list[ev.Event], **options: Any) -> tuple[Runner, Any]:
    loaded = load_spec(folder)
    spec = loaded.require()
    runner = Runner(loaded, RunOptions(state_dir=tmp_path / "state", **options),
                    subscribers=[lambda e, s: events.append(e)], sleep=_no_sleep)
    provider = None
    if server is not None:
        provider = provider_from_settings(spec.llm, {"OPENAI_BASE_URL": server.openai_url})
        runner.executors["cognitive"] = make_llm_executor(
            provider, spec=spec, loaded=loaded, state_getter=lambda: runner.state,
            emit=runner.emit)
        locks: dict[str, asyncio.Lock] = {}
        runner.research = lambda task: research_once(runner, task, locks)
    return runner, provider


def drive(runner: Runner, provider: Any, start: Any) -> RunResult:
    async def go() -> RunResult:
        try:
            result: RunResult = await start()
            return result
        finally:
            if provider is not None:
                await provider.aclose()

    return asyncio.run(go())


def named(events: list[ev.Event], name: str) -> list[Any]:
    return [e for e in events if e.name == name]


def user_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")


def test_findings_go_into_every_step_prompt_of_the_task(llm_server: LlmServer,
                                                        tmp_path: Path) -> None:
    llm_server.script(
        openai_chat(None, tool_calls=[("c1", "read_file", {"path": "CHANGES.md"})]),
        openai_chat(json.dumps(FINDINGS)),
        openai_chat("- dropped 3.8\n- faster tokenizer"),
        openai_chat("# Release notes"), openai_chat("Version 2 is out."))
    folder = write(tmp_path, RESEARCHED)
    events: list[ev.Event] = []
    runner, provider = make_runner(folder, tmp_path, llm_server, events)
    result = drive(runner, provider, runner.start)
    assert result.goal == "ACHIEVED"
    research, tool_turn, step1, step2, step3 = (r.body for r in llm_server.posts)
    offered = {t["function"]["name"] for t in research["tools"]}
    assert offered == {"read_file", "list_files"}  # read-only: no write_file, no run_command
    assert research["response_format"]["type"] == "json_schema"
    asked = user_text(research)
    assert "documentation" in asked and "web_search" in asked
    assert "List the changes since version 1" in asked and "Write the notes" in asked
    tool_answer = [m for m in tool_turn["messages"] if m["role"] == "tool"]
    assert "drop 3.8" in tool_answer[0]["content"]
    for body in (step1, step2):
        prompt = user_text(body)
        assert "Research findings for task 1" in prompt
        assert "version 2 drops Python 3.8" in prompt and "the tokenizer is 3x faster" in prompt
        assert "research confidence: high" in prompt
    assert "Research findings" not in user_text(step3)  # task 2 did no research
    (started,) = named(events, "research-started")
    assert started.task == "1" and started.tools == ["read_file", "list_files"]
    (ended,) = named(events, "research-ended")
    assert (ended.status, ended.api_calls, ended.tool_calls) == ("done", 2, 1)
    assert ended.usage == {"input_tokens": 20, "output_tokens": 10}
    assert ended.key_findings == FINDINGS["key_findings"]
    order = [e.name for e in events]
    assert order.index("research-ended") < order.index("attempt-started")
    document = progress_document(runner.spec, runner.state)
    task = document["tasks"][0]
    assert task["research_phase"]["key_findings"] == FINDINGS["key_findings"]
    assert task["research_phase"]["confidence_level"] == "high"
    assert task["research_phase"]["queries_performed"] == FINDINGS["queries"]
    assert task["research_cost"]["api_calls"] == 2
    assert task["research_cost"]["tokens_used"] == 30
    assert "research_phase" not in document["tasks"][1]


COMMANDS = HEAD + """
[[tasks]]
id = 1
description = "Build"
research_enabled = true

[[tasks.steps]]
id = 1
description = "Make the folder"
command = "mkdir -p out"
critical_flag = true
"""


def test_no_provider_warns_and_goes_on(tmp_path: Path) -> None:
    events: list[ev.Event] = []
    runner, provider = make_runner(write(tmp_path, COMMANDS), tmp_path, None, events)
    result = drive(runner, provider, runner.start)
    assert result.goal == "ACHIEVED"
    (ended,) = named(events, "research-ended")
    assert ended.status == "skipped"
    assert "no LLM provider is configured" in ended.warning
    assert named(events, "research-started") == []
    document = progress_document(runner.spec, runner.state)
    assert document["tasks"][0]["research_phase"]["triggered"] is False


def test_the_cli_prints_the_warning(tmp_path: Path) -> None:
    folder = write(tmp_path, COMMANDS)
    done = cli("run", folder, "--state-dir", tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert "warning: task 1 has research_enabled and no LLM provider is configured" \
        in done.stderr


def test_findings_that_are_not_the_object_warn_and_go_on(llm_server: LlmServer,
                                                         tmp_path: Path) -> None:
    llm_server.script(openai_chat(json.dumps({"findings": "lots"})),
                      openai_chat("- dropped 3.8"), openai_chat("# Notes"),
                      openai_chat("Out now."))
    events: list[ev.Event] = []
    runner, provider = make_runner(write(tmp_path, RESEARCHED), tmp_path, llm_server, events)
    result = drive(runner, provider, runner.start)
    assert result.goal == "ACHIEVED"
    (ended,) = named(events, "research-ended")
    assert ended.status == "failed"
    assert "the findings are not the object asked for" in ended.warning
    assert ended.api_calls == 1
    step1 = user_text(llm_server.posts[1].body)
    assert "the research phase produced no findings" in step1


PARALLEL = HEAD + """
parallel_enabled = true

[[tasks]]
id = 1
description = "Draft"
research_enabled = true

[[tasks.steps]]
id = 1
description = "Draft part A"
expected_output = "part A"
critical_flag = true

[[tasks.steps]]
id = 2
description = "Draft part B"
expected_output = "part B"
critical_flag = true
"""


def test_parallel_steps_share_one_research_phase(llm_server: LlmServer,
                                                 tmp_path: Path) -> None:
    def answer(recorded: Any) -> dict[str, Any]:
        if recorded.body.get("response_format"):
            return openai_chat(json.dumps(FINDINGS))
        return openai_chat("a part")

    llm_server.handler = answer
    events: list[ev.Event] = []
    runner, provider = make_runner(write(tmp_path, PARALLEL), tmp_path, llm_server, events)
    result = drive(runner, provider, runner.start)
    assert result.goal == "ACHIEVED"
    assert named(events, "execution-planned")[0].parallel
    assert len(named(events, "research-ended")) == 1
    assert sum(1 for r in llm_server.posts if r.body.get("response_format")) == 1
    steps = [r.body for r in llm_server.posts if not r.body.get("response_format")]
    assert len(steps) == 2
    assert all("the tokenizer is 3x faster" in user_text(b) for b in steps)


HUMAN_FIRST = HEAD + """
[[tasks]]
id = 1
description = "Draft the release notes"
research_enabled = true

[[tasks.steps]]
id = 1
description = "A maintainer confirms the version number"
execution_method = "human"
critical_flag = true

[[tasks.steps]]
id = 2
description = "Write the notes"
expected_output = "release notes in Markdown"
critical_flag = true
"""


def test_a_resume_after_the_research_does_not_redo_it(llm_server: LlmServer,
                                                      tmp_path: Path) -> None:
    llm_server.script(openai_chat(json.dumps(FINDINGS)))
    folder = write(tmp_path, HUMAN_FIRST)
    events: list[ev.Event] = []
    runner, provider = make_runner(folder, tmp_path, llm_server, events, no_input=True)
    first = drive(runner, provider, runner.start)
    assert first.exit_code == 3  # the human step waits
    assert len(llm_server.posts) == 1
    answer_gate(first.run_dir, "1.1", "approve")

    llm_server.script(openai_chat("# Release notes"))
    replay = read_run(first.run_dir)
    more: list[ev.Event] = []
    again, provider = make_runner(folder, tmp_path, llm_server, more, no_input=True)
    second = drive(again, provider, lambda: again.resume(first.run_dir, replay))
    assert second.goal == "ACHIEVED"
    assert len(llm_server.posts) == 2  # no second research call
    assert named(more, "research-started") == [] and named(more, "research-ended") == []
    assert "version 2 drops Python 3.8" in user_text(llm_server.posts[1].body)
    logged = [e.name for e in read_run(first.run_dir)]
    assert logged.count("research-ended") == 1


def test_the_cli_researches_for_a_command_only_spec(llm_server: LlmServer,
                                                    tmp_path: Path) -> None:
    llm_server.script(openai_chat(json.dumps(FINDINGS)))
    folder = write(tmp_path, COMMANDS)
    done = cli("run", folder, "--json", "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    names = [json.loads(line)["event"] for line in done.stdout.splitlines()]
    assert names.index("research-started") < names.index("research-ended") \
        < names.index("attempt-started")
    progress = json.loads((folder / "progress_demo.json").read_text())
    phase = progress["tasks"][0]["research_phase"]
    assert phase["status"] == "done" and phase["key_findings"] == FINDINGS["key_findings"]
    assert phase["timestamp_start"] <= phase["timestamp_end"]
    notepad = (folder / "notepad_demo.md").read_text()
    assert "research: 2 findings, confidence high, sources: read_file CHANGES.md" in notepad
