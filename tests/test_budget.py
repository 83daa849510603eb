"""Budgets ([budget] max_cost_usd / max_tokens, --max-cost / --max-tokens) and the run's token
and cost totals, end to end through `specs run` / `specs resume` against the real local LLM
server (tests/llm_server.py): the call that would exceed the budget is never made (the
server's request count says so), the run halts resumably, and parallel steps sharing a budget
never spend past it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_server import (
    LlmServer,
    Recorded,
    Reply,
    llm_server_fixture,  # noqa: F401  (the llm_server fixture)
    openai_chat,
)
from specs.llm.budget import BudgetTracker, estimate_call, format_cost
from specs.llm.providers.base import Message, Request
from test_llm_steps import HEAD, cli, write

THREE = HEAD + """
[llm]
model = "test-model"
max_output_tokens = 100

[llm.prices]
"test-model" = { input = 1000.0, output = 1000.0 }

[[tasks]]
id = 1
description = "Greet the team"

[[tasks.steps]]
id = 1
description = "Choose the greeting words"
expected_output = "a greeting"

[[tasks.steps]]
id = 2
description = "Polish the greeting"
expected_output = "a greeting"

[[tasks.steps]]
id = 3
description = "Sign the greeting"
expected_output = "a greeting"
"""


def jsonl(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def of(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def env_for(server: LlmServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.openai_url}


def progress(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "progress_demo.json").read_text())
    return data


def test_max_tokens_stops_before_the_call_that_would_exceed_then_resume(
        llm_server: LlmServer, tmp_path: Path) -> None:
    # each call reports 5950 tokens: the first fits in 6000, the next would not
    llm_server.handler = lambda r: openai_chat("Hello, team!", usage=(5950, 0))
    folder = write(tmp_path, THREE + "\n[budget]\nmax_tokens = 6000\n")
    state = tmp_path / "state"
    done = cli("run", folder, "--json", "--run-id", "b1", "--state-dir", state,
               env=env_for(llm_server))
    assert done.returncode == 1, done.stderr
    assert len(llm_server.posts) == 1
    events = jsonl(done.stdout)
    end = of(events, "run-ended")[-1]
    assert end["status"] == "halted" and end["reason"].startswith("budget_exceeded")
    assert "max_tokens = 6000" in end["reason"] and "step 1.2" in end["reason"]
    assert "budget_exceeded" in done.stderr and "5,950 tokens" in done.stderr
    doc = progress(folder)
    assert doc["status"] == "halted"
    assert doc["llm_usage"]["total_tokens"] == 5950 and doc["llm_usage"]["calls"] == 1
    assert doc["tasks"][0]["steps"][0]["llm_usage"]["input_tokens"] == 5950

    again = cli("resume", "b1", "--json", "--state-dir", state, env=env_for(llm_server))
    assert again.returncode == 1 and len(llm_server.posts) == 1  # still over: no call

    raised = cli("resume", "b1", "--max-tokens", "100000", "--json", "--state-dir", state,
                 env=env_for(llm_server))
    assert raised.returncode == 0, raised.stderr
    assert len(llm_server.posts) == 3
    doc = progress(folder)
    assert doc["goal_achievement_status"] == "ACHIEVED"
    assert doc["llm_usage"]["total_tokens"] == 3 * 5950
    assert doc["tasks"][0]["llm_usage"]["calls"] == 3
    shown = cli("runs", "--json", "--state-dir", state)
    summary = json.loads(shown.stdout)[0]
    assert summary["tokens"] == 3 * 5950 and summary["llm_calls"] == 3
    assert summary["cost_usd"] == pytest.approx(3 * 5950 * 1000 / 1e6)
    table = cli("runs", "--state-dir", state)
    assert "17,850" in table.stdout and "$17.85" in table.stdout
    shown = cli("show-run", "b1", "--state-dir", state)
    assert "LLM: 3 LLM calls, 17,850 tokens, $17.85" in shown.stdout


def test_max_cost_halts_and_a_raised_budget_in_the_spec_resumes_without_force(
        llm_server: LlmServer, tmp_path: Path) -> None:
    # $1000 per million tokens: 5950 input tokens cost $5.95; the next call would pass $6
    llm_server.handler = lambda r: openai_chat("Hello, team!", usage=(5950, 0))
    folder = write(tmp_path, THREE + "\n[budget]\nmax_cost_usd = 6.0\n")
    state = tmp_path / "state"
    done = cli("run", folder, "--json", "--run-id", "c1", "--state-dir", state,
               env=env_for(llm_server))
    assert done.returncode == 1 and len(llm_server.posts) == 1
    end = of(jsonl(done.stdout), "run-ended")[-1]
    assert end["status"] == "halted" and "max_cost_usd = 6" in end["reason"]
    assert "$5.95" in done.stderr
    params = folder / "parameters_demo.toml"
    params.write_text(params.read_text().replace("max_cost_usd = 6.0", "max_cost_usd = 100.0"))
    again = cli("resume", "c1", "--json", "--state-dir", state, env=env_for(llm_server))
    assert again.returncode == 0, again.stderr
    assert "only [budget] changed" in again.stderr
    assert len(llm_server.posts) == 3
    assert progress(folder)["llm_usage"]["cost_usd"] == pytest.approx(3 * 5.95)


def test_another_change_still_needs_force(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.handler = lambda r: openai_chat("Hello, team!", usage=(5950, 0))
    folder = write(tmp_path, THREE + "\n[budget]\nmax_cost_usd = 6.0\n")
    state = tmp_path / "state"
    cli("run", folder, "--run-id", "c2", "--state-dir", state, env=env_for(llm_server))
    params = folder / "parameters_demo.toml"
    params.write_text(params.read_text().replace("max_cost_usd = 6.0", "max_cost_usd = 100.0")
                      .replace("Sign the greeting", "Sign the greeting twice"))
    again = cli("resume", "c2", "--state-dir", state, env=env_for(llm_server))
    assert again.returncode == 2 and "--force" in again.stderr
    assert len(llm_server.posts) == 1


def test_max_cost_on_the_command_line_is_kept_by_resume(llm_server: LlmServer,
                                                        tmp_path: Path) -> None:
    llm_server.handler = lambda r: openai_chat("Hello, team!", usage=(5950, 0))
    folder = write(tmp_path, THREE)
    state = tmp_path / "state"
    done = cli("run", folder, "--max-cost", "6", "--run-id", "c3", "--state-dir", state,
               env=env_for(llm_server))
    assert done.returncode == 1 and len(llm_server.posts) == 1
    assert "budget_exceeded" in done.stderr
    again = cli("resume", "c3", "--state-dir", state, env=env_for(llm_server))
    assert again.returncode == 1 and len(llm_server.posts) == 1  # --max-cost 6 still holds
    raised = cli("resume", "c3", "--max-cost", "50", "--state-dir", state,
                 env=env_for(llm_server))
    assert raised.returncode == 0, raised.stderr
    assert len(llm_server.posts) == 3


PARALLEL = HEAD.replace('default_mode = "silent"', """default_mode = "silent"
parallel_enabled = true
max_parallel_steps = 6""") + """
[llm]
model = "test-model"
max_output_tokens = 50

[[tasks]]
id = 1
description = "Write the parts"
""" + "".join(f"""
[[tasks.steps]]
id = {n}
description = "Write part {n} of the greeting"
expected_output = "a greeting part"
critical_flag = false
""" for n in range(1, 7))


def exact_usage(recorded: Recorded) -> Reply | dict[str, Any]:
    """Report exactly the engine's estimate of the call (text / 4 + max_tokens), the most a
    call may use without the budget being passed."""
    if recorded.method != "POST":
        return {"object": "list", "data": []}
    body = recorded.body
    chars = sum(len(m.get("content") or "") for m in body["messages"])
    chars += sum(len(t["function"]["name"]) + len(t["function"]["description"])
                 + len(json.dumps(t["function"]["parameters"])) for t in body["tools"])
    return openai_chat("part", usage=(chars // 4 + 1, body["max_tokens"]))


def test_parallel_steps_never_spend_past_the_budget(llm_server: LlmServer,
                                                    tmp_path: Path) -> None:
    llm_server.handler = exact_usage
    folder = write(tmp_path, PARALLEL)
    probe = cli("run", folder, "--json", "--state-dir", tmp_path / "probe",
                env=env_for(llm_server))
    assert probe.returncode == 0, probe.stderr
    costs = [sum(e["usage"].values()) for e in of(jsonl(probe.stdout), "llm-call")]
    assert len(costs) == 6
    limit = 2 * max(costs) + min(costs) // 2  # room for two calls, not three
    before = len(llm_server.posts)
    done = cli("run", folder, "--json", "--max-tokens", str(limit), "--state-dir",
               tmp_path / "state", env=env_for(llm_server))
    events = jsonl(done.stdout)
    spent = sum(sum(e["usage"].values()) for e in of(events, "llm-call"))
    assert of(events, "execution-planned")[0]["parallel"] is True
    assert spent <= limit
    assert len(llm_server.posts) - before == 2
    end = of(events, "run-ended")[-1]
    assert end["status"] == "halted" and end["reason"].startswith("budget_exceeded")


def test_unknown_price_with_a_cost_budget_is_a_preflight_warning(
        llm_server: LlmServer, tmp_path: Path) -> None:
    text = THREE.replace('"test-model" = { input = 1000.0, output = 1000.0 }', "")
    folder = write(tmp_path, text + "\n[budget]\nmax_cost_usd = 1.0\n")
    done = cli("run", folder, "--json", "--state-dir", tmp_path / "state",
               env=env_for(llm_server))
    assert done.returncode == 0, done.stderr
    summary = of(jsonl(done.stdout), "validation-summary")[0]
    assert summary["status"] == "WARN"
    warning = next(w for w in summary["warnings"] if "W-BUDGET-NO-PRICE" in w)
    assert "parameters_demo.toml:" in warning and "test-model" in warning
    assert "[llm.prices]" in warning
    assert "cost unknown" in done.stderr


# -- the tracker on its own ------------------------------------------------------------------


def test_tracker_reserves_then_settles() -> None:
    tracker = BudgetTracker(max_cost_usd=None, max_tokens=100, spent_before=lambda: (30, 0.0))
    first = tracker.reserve(40, None)
    assert not isinstance(first, str)
    refused = tracker.reserve(40, None)  # 30 spent + 40 reserved + 40 > 100
    assert isinstance(refused, str) and refused.startswith("budget_exceeded")
    assert "40 reserved by running calls" in refused
    tracker.settle(first, 10, None)  # it used less than estimated
    assert tracker.spent() == (40, 0.0)
    second = tracker.reserve(40, None)
    assert not isinstance(second, str)
    tracker.release(second)
    assert tracker.reserved_tokens == 0


def test_cost_budget_ignores_calls_of_unknown_price() -> None:
    tracker = BudgetTracker(max_cost_usd=0.01)
    assert not isinstance(tracker.reserve(10**9, None), str)
    assert isinstance(tracker.reserve(1, 0.02), str)


def test_estimate_is_text_over_four_plus_the_output_limit() -> None:
    request = Request(model="", messages=(Message("user", "x" * 400),), max_output_tokens=50)
    tokens, cost = estimate_call(request, "gpt-4o-mini", None)
    assert tokens == 101 + 50
    assert cost == pytest.approx((101 * 0.15 + 50 * 0.60) / 1e6)
    unlimited = Request(model="", messages=(Message("user", "x" * 400),))
    assert estimate_call(unlimited, "no-such-model", None) == (101 + 4096, None)
    assert format_cost(0.00036) == "$0.0004" and format_cost(12.5) == "$12.50"
