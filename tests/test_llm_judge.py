"""The LLM judge of ``verify_with = "llm"`` against a real local OpenAI-compatible server
(tests/llm_server.py): verdicts driving the method ladder, a separate judge model, bad judge
replies, a judged command step, tokens and cost, the notepad reflection, and the CLI wiring."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from llm_server import (
    LlmServer,
    Reply,
    anthropic_message,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from specs import events as ev
from specs.engine.runner import Runner, RunOptions
from specs.engine.state import RunState
from specs.executors.base import Outcome
from specs.llm.agent import make_llm_executor
from specs.llm.judge import JUDGE_OUTPUT_CHARS, LlmJudge, judge_messages
from specs.llm.providers import provider_from_settings
from specs.spec.load import load_spec
from test_llm_steps import cli

HEAD = """\
[meta]
goal_descriptor = "demo"

[goal]
description = "Write a friendly greeting for the team"

[execution]
default_mode = "silent"

[error_propagation]
propagation_strategy = "continue_and_log"
"""

JUDGED = HEAD + """
[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Write the greeting line"
expected_output = "one warm greeting line that names the team"
verify_with = "llm"
max_retries = 0
critical_flag = true
"""

WITH_BACKUP = JUDGED + """
[[tasks.steps.backups]]
id = 1
description = "Write the greeting as a short poem line instead"
"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "demo"
    folder.mkdir(exist_ok=True)
    (folder / "parameters_demo.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


async def _no_sleep(delay: float) -> None:
    return None


def run_judged(folder: Path, server: LlmServer, tmp_path: Path, *,
               judge: bool = True) -> list[ev.Event]:
    """Run the spec with the cognitive executor and the LLM judge on ``server``."""
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

    async def go() -> None:
        try:
            await runner.start()
        finally:
            await provider.aclose()

    asyncio.run(go())
    return events


def verdict(kind: str, reason: str, reflection: str = "keep greetings short",
            **kwargs: Any) -> dict[str, Any]:
    return openai_chat(json.dumps({"verdict": kind, "reason": reason,
                                   "reflection": reflection}), **kwargs)


def named(events: list[ev.Event], name: str) -> list[Any]:
    return [e for e in events if e.name == name]


def user_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")


def test_match_passes_and_counts_the_judge_tokens(llm_server: LlmServer,
                                                  tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hello, platform team!"),
                      verdict("match", "names the team, one line", "naming the team helps"))
    events = run_judged(write(tmp_path, JUDGED), llm_server, tmp_path)
    step, judge = (r.body for r in llm_server.posts)
    assert "response_format" not in step
    assert judge["response_format"]["type"] == "json_schema"
    assert set(judge["response_format"]["json_schema"]["schema"]["properties"]) == {
        "verdict", "reason", "reflection"}
    asked = user_text(judge)
    assert "one warm greeting line that names the team" in asked
    assert "Hello, platform team!" in asked
    (check,) = named(events, "check-ended")
    assert (check.kind, check.verdict, check.step, check.calls) == ("llm", "match", "1.1", 1)
    assert check.reflection == "naming the team helps"
    (attempt,) = named(events, "attempt-ended")
    assert (attempt.outcome, attempt.verdict) == ("success", "match")
    assert attempt.usage == {"input_tokens": 20, "output_tokens": 10}  # step + judge
    (ended,) = named(events, "step-ended")
    assert ended.status == "completed" and ended.expected_output_match is True
    notes = [line for n in named(events, "notepad-updated") for line in n.insights]
    assert any("judged match" in line and "naming the team helps" in line for line in notes)


def test_mismatch_runs_the_backup_with_the_reason(llm_server: LlmServer,
                                                   tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hi."),
                      verdict("mismatch", "the line does not name the team"),
                      openai_chat("Hello, dear platform team, a line for you!"),
                      verdict("match", "names the team"))
    events = run_judged(write(tmp_path, WITH_BACKUP), llm_server, tmp_path)
    assert [(a.method, a.outcome, a.verdict) for a in named(events, "attempt-ended")] == [
        ("primary", "failure", "mismatch"), ("backup_1", "success", "match")]
    first = named(events, "attempt-ended")[0]
    assert first.failure_reason == "LLM judge (mismatch): the line does not name the team"
    assert [e.backup for e in named(events, "backup-triggered")] == [1]
    backup_request = user_text(llm_server.posts[2].body)
    assert "Write the greeting as a short poem line instead" in backup_request
    assert "the line does not name the team" in backup_request
    (ended,) = named(events, "step-ended")
    assert (ended.status, ended.method_used) == ("completed", "backup_1")
    # the judge of the backup is told it judges a backup method
    assert "A backup method: Write the greeting as a short poem line" in user_text(
        llm_server.posts[3].body)


def test_mismatch_with_nothing_left_fails_the_step(llm_server: LlmServer,
                                                   tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hi."), verdict("mismatch", "no team named"))
    events = run_judged(write(tmp_path, JUDGED), llm_server, tmp_path)
    (ended,) = named(events, "step-ended")
    assert ended.status == "failed" and "no team named" in ended.message


def test_partial_completes_without_a_full_match(llm_server: LlmServer,
                                                tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hello, team"),
                      verdict("partial", "names a team but not which one"))
    events = run_judged(write(tmp_path, JUDGED), llm_server, tmp_path)
    (attempt,) = named(events, "attempt-ended")
    assert (attempt.outcome, attempt.verdict) == ("success", "partial")
    assert attempt.failure_reason == "LLM judge (partial): names a team but not which one"
    (ended,) = named(events, "step-ended")
    assert ended.status == "completed" and ended.expected_output_match is False
    assert len(llm_server.posts) == 2  # a partial is not retried


def test_a_separate_judge_model_and_its_cost(llm_server: LlmServer, tmp_path: Path) -> None:
    text = JUDGED.replace("[error_propagation]", """[llm]
model = "step-model"
judge_model = "judge-model"

[llm.prices]
"step-model" = { input = 1.0, output = 2.0 }
"judge-model" = { input = 3.0, output = 4.0 }

[error_propagation]""")
    llm_server.script(openai_chat("Hello, platform team!", model="step-model"),
                      verdict("match", "fine", model="judge-model"))
    events = run_judged(write(tmp_path, text), llm_server, tmp_path)
    step, judge = (r.body for r in llm_server.posts)
    assert step["model"] == "step-model"
    assert judge["model"] == "judge-model"
    (check,) = named(events, "check-ended")
    assert check.model == "judge-model"
    assert check.cost_usd == pytest.approx((10 * 3.0 + 5 * 4.0) / 1e6)
    (attempt,) = named(events, "attempt-ended")
    assert attempt.cost_usd == pytest.approx((10 * 1.0 + 5 * 2.0 + 10 * 3.0 + 5 * 4.0) / 1e6)
    state = RunState(load_spec(tmp_path / "demo").require())  # the run's LLM totals
    for event in events:
        state.apply(event)
    assert state.llm_usage["calls"] == 2 and state.llm_usage["total_tokens"] == 30
    assert state.llm_usage["cost_usd"] == pytest.approx(attempt.cost_usd)
    assert state.steps["1.1"].llm_usage == state.llm_usage


def test_the_judge_model_defaults_to_the_step_model(llm_server: LlmServer,
                                                    tmp_path: Path) -> None:
    text = JUDGED.replace("[error_propagation]", '[llm]\nmodel = "only-model"\n\n'
                                                 "[error_propagation]")
    llm_server.script(openai_chat("Hello, platform team!"), verdict("match", "fine"))
    run_judged(write(tmp_path, text), llm_server, tmp_path)
    assert [r.body["model"] for r in llm_server.posts] == ["only-model", "only-model"]


def test_a_garbage_reply_is_asked_again_once(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hello, platform team!"),
                      openai_chat("I think it is fine!"),
                      verdict("match", "fine now"))
    events = run_judged(write(tmp_path, JUDGED), llm_server, tmp_path)
    assert len(llm_server.posts) == 3
    again = llm_server.posts[2].body["messages"]
    assert again[-1]["role"] == "user" and "not the JSON object asked for" in again[-1]["content"]
    assert again[-2] == {"role": "assistant", "content": "I think it is fine!"}
    (check,) = named(events, "check-ended")
    assert (check.verdict, check.calls) == ("match", 2)
    (attempt,) = named(events, "attempt-ended")
    assert attempt.outcome == "success"
    assert attempt.usage == {"input_tokens": 30, "output_tokens": 15}


def test_two_bad_replies_fail_the_check_with_a_clear_reason(llm_server: LlmServer,
                                                            tmp_path: Path) -> None:
    llm_server.script(openai_chat("Hello, platform team!"),
                      openai_chat('{"verdict": "great", "reason": "x", "reflection": "y"}'),
                      Reply.garbage())
    events = run_judged(write(tmp_path, JUDGED), llm_server, tmp_path)
    (attempt,) = named(events, "attempt-ended")
    assert (attempt.outcome, attempt.verdict) == ("failure", "mismatch")
    assert attempt.failure_reason.startswith("LLM judge: the judge gave no valid verdict:")
    (check,) = named(events, "check-ended")
    assert check.verdict == "mismatch" and check.calls == 2
    assert check.reason.startswith("the judge gave no valid verdict: openai: invalid JSON")
    (ended,) = named(events, "step-ended")
    assert ended.status == "failed"


def test_an_unavailable_judge_is_a_transient_failure(llm_server: LlmServer,
                                                     tmp_path: Path) -> None:
    text = JUDGED.replace("max_retries = 0", "max_retries = 1")
    llm_server.script(openai_chat("Hello, platform team!"),
                      Reply.json({"error": {"message": "down"}}, 503),
                      openai_chat("Hello, platform team!"), verdict("match", "fine"))
    events = run_judged(write(tmp_path, text), llm_server, tmp_path)
    first, second = named(events, "attempt-ended")
    assert first.outcome == "failure" and first.transient
    assert "the judge could not be asked" in first.failure_reason
    assert len(named(events, "retry-scheduled")) == 1
    assert second.outcome == "success"


COMMAND = HEAD + """
[[tasks]]
id = 1
description = "Write the greeting file"

[[tasks.steps]]
id = 1
description = "Write greeting.txt"
command = "if [ -f tried ]; then echo 'Hello, platform team' > greeting.txt; \
else touch tried; echo 'Hi' > greeting.txt; fi; echo wrote greeting.txt"
expected_files = ["greeting.txt"]
expected_output = "greeting.txt holds a greeting that names the team"
verify_with = "llm"
max_retries = 1
critical_flag = true
"""


def test_a_judged_command_step_is_retried_on_a_mismatch(llm_server: LlmServer,
                                                        tmp_path: Path) -> None:
    llm_server.script(verdict("mismatch", "greeting.txt does not name the team"),
                      verdict("match", "names the team"))
    folder = write(tmp_path, COMMAND)
    events = run_judged(folder, llm_server, tmp_path)
    first, second = (user_text(r.body) for r in llm_server.posts)
    assert "The file `greeting.txt`:\nHi" in first and "wrote greeting.txt" in first
    assert "The file `greeting.txt`:\nHello, platform team" in second
    attempts = named(events, "attempt-ended")
    assert [(a.outcome, a.verdict) for a in attempts] == [("failure", "mismatch"),
                                                        ("success", "match")]
    assert attempts[0].failure_reason == \
        "LLM judge (mismatch): greeting.txt does not name the team"
    assert attempts[1].usage == {"input_tokens": 10, "output_tokens": 5}
    assert (folder / "greeting.txt").read_text() == "Hello, platform team\n"


def test_the_judge_is_not_asked_when_another_check_failed(llm_server: LlmServer,
                                                          tmp_path: Path) -> None:
    text = COMMAND.replace('expected_files = ["greeting.txt"]',
                           'expected_files = ["missing.txt"]').replace(
        "max_retries = 1", "max_retries = 0")
    events = run_judged(write(tmp_path, text), llm_server, tmp_path)
    assert llm_server.posts == []
    (attempt,) = named(events, "attempt-ended")
    assert "expected file missing" in attempt.failure_reason
    assert named(events, "check-ended") == []


def test_no_judge_is_e_no_provider_before_the_run(llm_server: LlmServer,
                                                  tmp_path: Path) -> None:
    events = run_judged(write(tmp_path, COMMAND), llm_server, tmp_path, judge=False)
    (summary,) = named(events, "validation-summary")
    assert summary.status == "FAIL"
    assert any("E-NO-PROVIDER" in e and "verify_with" in e for e in summary.errors)
    assert named(events, "run-ended")[0].status == "halted_validation"


def test_the_cli_judges_a_command_only_spec(llm_server: LlmServer, tmp_path: Path) -> None:
    text = COMMAND.replace("max_retries = 1", "max_retries = 0").replace(
        "if [ -f tried ]; then echo 'Hello, platform team' > greeting.txt; else touch tried; "
        "echo 'Hi' > greeting.txt; fi; echo wrote greeting.txt",
        "echo 'Hello, platform team' > greeting.txt")
    llm_server.script(verdict("match", "names the team", "files beat stdout"))
    folder = write(tmp_path, text)
    done = cli("run", folder, "--json", "--state-dir", tmp_path / "state",
               env={"OPENAI_BASE_URL": llm_server.openai_url})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    checks = [e for e in lines if e["event"] == "check-ended"]
    assert [(c["kind"], c["verdict"]) for c in checks] == [("llm", "match")]
    progress = json.loads((folder / "progress_demo.json").read_text())
    attempt = progress["tasks"][0]["steps"][0]["attempts"][0]
    assert attempt["llm_judge"]["verdict"] == "match"
    assert attempt["llm_judge"]["reflection"] == "files beat stdout"
    assert "files beat stdout" in (folder / "notepad_demo.md").read_text()


def test_the_judge_is_held_to_the_budget(llm_server: LlmServer, tmp_path: Path) -> None:
    """A judge call that cannot fit in [budget] max_tokens is not made: the run stops halted
    (budget_exceeded, resumable) and the server gets no request; raising the budget on
    resume judges the step."""
    text = COMMAND.replace("max_retries = 1", "max_retries = 0").replace(
        "if [ -f tried ]; then echo 'Hello, platform team' > greeting.txt; else touch tried; "
        "echo 'Hi' > greeting.txt; fi; echo wrote greeting.txt",
        "echo 'Hello, platform team' > greeting.txt") + "\n[budget]\nmax_tokens = 50\n"
    folder = write(tmp_path, text)
    env = {"OPENAI_BASE_URL": llm_server.openai_url}
    done = cli("run", folder, "--json", "--state-dir", tmp_path / "state", env=env)
    assert done.returncode == 1, done.stderr
    assert not [r for r in llm_server.requests if r.method == "POST"]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    end = [e for e in lines if e["event"] == "run-ended"][-1]
    assert end["status"] == "halted" and end["reason"].startswith("budget_exceeded")
    assert "LLM judge" in end["reason"]
    run_id = lines[0]["run_id"]
    llm_server.script(verdict("match", "names the team"))
    again = cli("resume", run_id, "--max-tokens", "100000", "--json", "--state-dir",
                tmp_path / "state", env=env)
    assert again.returncode == 0, again.stderr
    assert len([r for r in llm_server.requests if r.method == "POST"]) == 1


def test_the_cli_without_a_provider_says_so(tmp_path: Path) -> None:
    done = cli("run", write(tmp_path, COMMAND), "--state-dir", tmp_path / "state")
    assert done.returncode == 1
    assert "E-NO-PROVIDER" in done.stderr and 'verify_with = "llm"' in done.stderr
    assert "Traceback" not in done.stderr


# -- specs run --dry-run: the checks, the LLM, and the prompts ----------------------------------

MIXED = JUDGED.replace("[error_propagation]", """[llm]
model = "step-model"
judge_model = "judge-model"

[error_propagation]""") + """
[[tasks.steps]]
id = 2
description = "Count the words"
command = "wc -w < greeting.txt"
critical_flag = false
"""


def test_dry_run_prints_the_prompts_and_sends_nothing(llm_server: LlmServer,
                                                      tmp_path: Path) -> None:
    folder = write(tmp_path, MIXED)
    env = {"OPENAI_BASE_URL": llm_server.openai_url}
    done = cli("run", folder, "--dry-run", "--prompts", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "llm openai step-model, judge judge-model" in out
    assert "checks: LLM judge" in out
    assert "--- prompt of step 1.1 (primary, first attempt) ---" in out
    assert "=== system ===" in out and "=== user ===" in out
    assert "one warm greeting line that names the team" in out
    assert "a reviewer compares your answer with the expected output" in out
    assert "prompt of step 1.2" not in out  # a command step has no prompt
    plain = cli("run", folder, "--dry-run", env=env)
    assert plain.returncode == 0 and "=== system ===" not in plain.stdout
    as_json = cli("run", folder, "--dry-run", "--prompts", "--json", env=env)
    data = json.loads(as_json.stdout)
    assert data["llm"] == {"provider": "openai", "model": "step-model",
                           "judge_model": "judge-model"}
    first, second = data["plan"]
    assert "one warm greeting line" in first["prompt"]["user"]
    assert first["prompt"]["sections"][0]["name"] == "rules"
    assert first["ladder"][0]["checks"] == ["LLM judge"]
    assert second["prompt"] is None
    assert "prompt" not in json.loads(plain_json(folder, env))["plan"][0]
    assert llm_server.requests == []  # resolved, never contacted


def plain_json(folder: Path, env: dict[str, str]) -> str:
    return cli("run", folder, "--dry-run", "--json", env=env).stdout


def test_dry_run_prompts_match_specs_prompt(llm_server: LlmServer, tmp_path: Path) -> None:
    folder = write(tmp_path, MIXED)
    env = {"OPENAI_BASE_URL": llm_server.openai_url}
    data = json.loads(cli("run", folder, "--dry-run", "--prompts", "--json", env=env).stdout)
    single = json.loads(cli("prompt", folder, "1.1", "--json").stdout)
    assert data["plan"][0]["prompt"]["user"] == single["user"]
    assert data["plan"][0]["prompt"]["system"] == single["system"]


def test_dry_run_without_a_provider_reports_it(tmp_path: Path) -> None:
    done = cli("run", write(tmp_path, JUDGED), "--dry-run", "--prompts")
    assert done.returncode == 1
    assert "E-NO-PROVIDER" in done.stderr
    assert "--- prompt of step 1.1" in done.stdout  # the prompt is still shown


def test_dry_run_with_a_provider_that_cannot_work_is_one_line(tmp_path: Path) -> None:
    done = cli("run", write(tmp_path, MIXED), "--dry-run")  # [llm], no key for OpenAI
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "OPENAI_API_KEY is not set" in done.stderr


def test_prompts_needs_dry_run(tmp_path: Path) -> None:
    done = cli("run", write(tmp_path, MIXED), "--prompts")
    assert done.returncode == 2
    assert "--prompts goes with --dry-run" in done.stderr and "Traceback" not in done.stderr


def test_an_anthropic_judge_answers_through_the_forced_tool(llm_server: LlmServer,
                                                            tmp_path: Path) -> None:
    text = COMMAND.replace("max_retries = 1", "max_retries = 0").replace(
        '[error_propagation]', '[llm]\nprovider = "anthropic"\njudge_model = "claude-judge"\n\n'
                               '[error_propagation]')
    llm_server.script(anthropic_message(tool_uses=[("t1", "answer", {
        "verdict": "partial", "reason": "only says Hi", "reflection": "name the team"})]))
    loaded = load_spec(write(tmp_path, text))
    spec = loaded.require()
    events: list[ev.Event] = []
    runner = Runner(loaded, RunOptions(state_dir=tmp_path / "state"),
                    subscribers=[lambda e, s: events.append(e)], sleep=_no_sleep)
    provider = provider_from_settings(spec.llm, {"ANTHROPIC_BASE_URL": llm_server.url,
                                                 "ANTHROPIC_API_KEY": "sk-ant-test"})
    runner.judge = LlmJudge(provider, spec, emit=runner.emit)

    async def go() -> None:
        try:
            await runner.start()
        finally:
            await provider.aclose()

    asyncio.run(go())
    (request,) = llm_server.posts
    assert request.path == "/v1/messages"
    assert request.body["model"] == "claude-judge"
    assert request.body["tool_choice"] == {"type": "tool", "name": "answer"}
    (attempt,) = named(events, "attempt-ended")
    assert (attempt.outcome, attempt.verdict) == ("success", "partial")
    assert attempt.failure_reason == "LLM judge (partial): only says Hi"


def test_the_judge_prompt_is_bounded_and_deterministic(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, COMMAND)).require()
    step = spec.tasks[0].steps[0]
    (tmp_path / "demo" / "greeting.txt").write_text("x" * 10_000)
    outcome = Outcome("ok", text="y" * (JUDGE_OUTPUT_CHARS + 500), output={"n": 1})
    first = judge_messages(spec, step, step, outcome, tmp_path / "demo", ["greeting.txt",
                                                                          "*.missing", "/abs"])
    again = judge_messages(spec, step, step, outcome, tmp_path / "demo", ["greeting.txt",
                                                                          "*.missing", "/abs"])
    assert first == again
    user = first[1].content
    assert "[... 500 characters of the answer cut ...]" in user
    assert '"n": 1' in user
    assert "[... the rest of the file greeting.txt cut ...]" in user
    assert "greeting.txt holds a greeting that names the team" in user
    assert len(user) < JUDGE_OUTPUT_CHARS + 6_000
