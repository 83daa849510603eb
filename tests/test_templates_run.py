"""Every built-in template, made with ``specs new`` and run with ``specs run`` in a temporary git
repository: its command steps run for real, its cognitive steps against the local test LLM
server (tests/llm_server.py), whose scripted agent does what each step's prompt asks (writes the
files the engine checks, answers JSON for an output schema, edits the code where the scenario
says). Every run must reach ACHIEVED.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llm_server import LlmServer, Recorded, llm_server_fixture, openai_chat  # noqa: F401
from specs.templates import builtin_folder

CALC_OK = "def add(a, b):\n    return a + b\n"
CALC_BUG = "def add(a, b):\n    return a - b\n"
CALC_MUL = CALC_OK + "\n\ndef mul(a, b):\n    return a * b\n"
CALC_REFACTORED = "def add(a, b):\n    total = a + b\n    return total\n"
CHECK_BASIC = "import calc\n\nassert callable(calc.add)\nprint('ok')\n"
CHECK_ADD = CHECK_BASIC + "assert calc.add(2, 3) == 5, calc.add(2, 3)\n"
CHECK_MUL = CHECK_ADD + "assert calc.mul(2, 3) == 6\n"
ANALYSIS = """\
import csv, json, os
rows = list(csv.DictReader(open("data.csv")))
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json")
json.dump({"rows": len(rows), "total": sum(int(r["amount"]) for r in rows)}, open(out, "w"))
"""
TEST = "python3 check.py"

#: per template: the repository's files, the answers, and the files the agent writes in a step
SCENARIOS: dict[str, dict[str, Any]] = {
    "bug_fix": {
        "repo": {"calc.py": CALC_BUG, "check.py": CHECK_BASIC},
        "vars": {"bug": "add() subtracts its arguments instead of adding them",
                 "test_command": TEST},
        "edits": {"2.1": {"check.py": CHECK_ADD}, "2.3": {"calc.py": CALC_OK}}},
    "code_review": {
        "repo": {"calc.py": CALC_OK, "check.py": CHECK_ADD},
        "change": {"calc.py": CALC_MUL},
        "vars": {"base_ref": "HEAD~1", "test_command": TEST}},
    "feature_implementation": {
        "repo": {"calc.py": CALC_OK, "check.py": CHECK_ADD},
        "vars": {"feature": "multiply two numbers with mul()",
                 "acceptance": "mul(2, 3) returns 6", "test_command": TEST},
        "edits": {"2.1": {"check.py": CHECK_MUL}, "2.2": {"calc.py": CALC_MUL}}},
    "refactor": {
        "repo": {"calc.py": CALC_OK, "check.py": CHECK_ADD},
        "vars": {"target": "the add function", "test_command": TEST},
        "edits": {"1.3": {"check.py": CHECK_ADD + "assert calc.add(-1, 1) == 0\n"},
                  "2.2": {"calc.py": CALC_REFACTORED}}},
    "troubleshoot": {
        "repo": {"calc.py": CALC_BUG, "check.py": CHECK_ADD},
        "vars": {"symptom": "check.py fails: add(2, 3) is not 5", "check_command": TEST},
        "edits": {"3.1": {"calc.py": CALC_OK}}},
    "forensic": {
        "repo": {"logs/app.log": "2026-03-02T14:06Z ERROR checkout: pool exhausted\n"},
        "vars": {"incident": "checkout returned errors for 40 minutes after a deploy"}},
    "code_archaeology": {
        "repo": {"calc.py": CALC_OK},
        "vars": {"subject": "the add function in calc.py"}},
    "documentation": {
        "repo": {"calc.py": CALC_OK},
        "vars": {"subject": "the calc module"}},
    "data_analysis": {
        "repo": {"data.csv": "region,amount\nnorth,3\nsouth,4\n"},
        "vars": {"question": "What is the total amount over all regions?"},
        "edits": {"2.2": {"analysis/analysis/analysis.py": ANALYSIS}}},
    "research": {
        "repo": {},
        "vars": {"question": "Which TOML library keeps comments when it rewrites a file?"}},
}


def test_every_builtin_template_has_a_scenario() -> None:
    names = {p.name for p in builtin_folder().iterdir() if (p / "template.toml").is_file()}
    assert names == set(SCENARIOS)


def instance(schema: dict[str, Any]) -> Any:
    """A small value valid against ``schema`` (the subset the templates use)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: instance(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance(schema.get("items", {"type": "string"}))] * max(
            1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return "checked"


def _content(path: str, step: str) -> str:
    if path.endswith(".sh"):
        return "echo ok\n"
    if path.endswith(".py"):
        return "print('ok')\n"
    return f"# {step}\n\nWritten for step {step}.\n"


class Agent:
    """The server's handler: one scripted agent for every step of a run."""

    def __init__(self, edits: dict[str, dict[str, str]]) -> None:
        self.edits = edits
        self.steps: list[str] = []

    def __call__(self, recorded: Recorded) -> dict[str, Any]:
        if recorded.method == "GET":  # the provider's pre-flight check
            return {"object": "list", "data": [{"id": "test-model", "object": "model"}]}
        body = recorded.body
        messages = body["messages"]
        user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        match = re.search(r"^## Step (\S+)\n", user, re.M)
        step = match.group(1) if match else "research"
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
        if messages[-1]["role"] != "tool":
            self.steps.append(step)
            files = {f: _content(f.replace("*", "example"), step) for f in re.findall(
                r"file `([^`]+)` exists and is not empty", user)}
            files = {f.replace("*", "example"): c for f, c in files.items()}
            files.update(self.edits.get(step, {}))
            calls = [(f"call_{i}", "write_file", {"path": path, "content": content})
                     for i, (path, content) in enumerate(sorted(files.items()))]
            if calls:
                return openai_chat(None, tool_calls=calls)
        if schema is not None:
            return openai_chat(json.dumps(instance(schema)))
        return openai_chat(f"Done: step {step}.\nDecisions: followed the method.")


def _repo(root: Path, scenario: dict[str, Any]) -> Path:
    def commit(files: dict[str, str], message: str) -> None:
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit",
                        "-q", "--allow-empty", "-m", message], cwd=root, check=True)

    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    commit(scenario["repo"], "base")
    if "change" in scenario:
        commit(scenario["change"], "the change under review")
    return root


def _specs(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_template_runs_to_achieved(name: str, tmp_path: Path,
                                        llm_server: LlmServer) -> None:
    scenario = SCENARIOS[name]
    repo = _repo(tmp_path / "repo", scenario)
    agent = Agent(scenario.get("edits", {}))
    llm_server.handler = agent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPECS_", "OPENAI_",
                                                                      "ANTHROPIC_"))}
    env.update(OPENAI_BASE_URL=llm_server.openai_url, OPENAI_API_KEY="sk-test",
               NO_COLOR="1", COLUMNS="200", HOME=str(tmp_path))
    answers = [f"--var={k}={v}" for k, v in scenario["vars"].items()]
    made = _specs("new", name, "t", "--dir", "specs", "--no-input", *answers, cwd=repo, env=env)
    assert made.returncode == 0, made.stderr
    run = _specs("run", "specs/spec_t", "--yes", "--no-input", "--json", "--state-dir",
                 str(tmp_path / "state"), cwd=repo, env=env)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    ended = {e["step"]: e for e in events if e["event"] == "step-ended"}
    failed = {ref: e.get("message") for ref, e in ended.items() if e["status"] == "failed"}
    assert run.returncode == 0, (failed, run.stderr[-3000:])
    final = next(e for e in events if e["event"] == "run-ended")
    assert final["goal_achievement_status"] == "ACHIEVED"
    assert not failed
    from specs.spec.load import load_spec

    spec = load_spec(repo / "specs" / "spec_t").require()
    for task, step in spec.steps():
        ref = f"{task.ref}.{step.id}"
        status = ended[ref]["status"]
        assert status in ("completed", "skipped"), (ref, status)
        if status == "completed" and step.is_cognitive:
            assert ref in agent.steps, f"{ref} never asked the LLM"
        if status == "skipped":
            assert step.condition, f"{ref} was skipped without a condition"
    commands = [f"{t.ref}.{s.id}" for t, s in spec.steps() if s.effective_method == "command"]
    assert not commands or any(ended[ref]["status"] == "completed" for ref in commands)
    checked = [ref for ref, e in ended.items() if e["status"] == "completed"]
    assert len(checked) >= len(ended) // 2
