"""``specs draft``: a spec drafted by the configured provider (the real local test LLM server,
scripted answers), repaired with the validator's diagnostics until it validates; written only
then; recorded and replayed like cognitive steps; within the budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from llm_server import LlmServer, Reply, llm_server_fixture, openai_chat  # noqa: F401
from specs.spec.load import load_spec

GOAL = "Publish a weekly summary of the support tickets"

VALID = """\
[goal]
description = "Publish a weekly summary of the support tickets"

[execution]
default_mode = "dynamic"

[completion_criteria]
acceptance_criteria = [
    "tickets.csv holds this week's tickets",
    "summary.md counts the tickets by category",
    "summary.md names the three oldest open tickets",
]

[[tasks]]
id = 1
description = "Gather the tickets"

  [[tasks.steps]]
  id = 1
  description = "Export this week's tickets to tickets.csv"
  expected_output = "tickets.csv with one row per ticket"
  critical_flag = true
  max_retries = 2
  command = "printf 'id,category\\\\n1,bug\\\\n' > tickets.csv"
  expected_files = ["tickets.csv"]

    [[tasks.steps.backups]]
    id = 1
    description = "Copy last week's export and add the new tickets by hand"
    trigger_condition = "primary_failure"

  [[tasks.steps]]
  id = 2
  description = "Check the export is not empty"
  expected_output = "the number of tickets"
  critical_flag = false
  max_retries = 0
  command = "wc -l tickets.csv"

[[tasks]]
id = 2
description = "Write the summary"

  [[tasks.steps]]
  id = 1
  description = "Count the tickets by category into summary.md"
  expected_output = "summary.md with one line per category"
  critical_flag = true
  max_retries = 2
  expected_files = ["summary.md"]

    [[tasks.steps.backups]]
    id = 1
    description = "Count with a spreadsheet formula and paste the counts"
    trigger_condition = "primary_failure"

  [[tasks.steps]]
  id = 2
  description = "List the three oldest open tickets"
  expected_output = "three ticket ids with their age"
  critical_flag = false
  max_retries = 1
"""

# no backup for a critical step, and a placeholder
INVALID = VALID.replace("""    [[tasks.steps.backups]]
    id = 1
    description = "Count with a spreadsheet formula and paste the counts"
    trigger_condition = "primary_failure"
""", "").replace('description = "List the three oldest open tickets"',
                 'description = "List the [Insert number] oldest open tickets"')


def fenced(text: str) -> dict[str, object]:
    return openai_chat(f"Here is the spec:\n\n```toml\n{text}```\n")


def specs(*args: str, cwd: Path, server: LlmServer | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPECS_", "OPENAI_", "ANTHROPIC_", "XDG_"))}
    env.update(COLUMNS="200", NO_COLOR="1", XDG_CONFIG_HOME=str(cwd / ".config"))
    if server is not None:
        env.update(OPENAI_BASE_URL=server.openai_url, OPENAI_API_KEY="sk-test")
    proc = subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def user_messages(server: LlmServer) -> list[str]:
    return [m["content"] for r in server.posts for m in r.body["messages"][-1:]]


def test_a_first_answer_that_does_not_validate_is_repaired(llm_server: LlmServer,
                                                           tmp_path: Path) -> None:
    llm_server.script(fenced(INVALID), fenced(VALID))
    code, out, err = specs("draft", GOAL, "--template", "data_analysis", "--descriptor",
                           "weekly", cwd=tmp_path, server=llm_server)
    assert code == 0, err
    assert "round 1: 2 errors" in err and "round 2: validates" in err
    assert "wrote spec_weekly/ in 2 rounds" in out
    first, second = llm_server.posts[0].body, llm_server.posts[1].body
    prompt = first["messages"][1]["content"]
    assert f"Goal: {GOAL}" in prompt and "data_analysis@1.0.0" in prompt
    assert "Between 40 % and 60 % of all steps" in first["messages"][0]["content"]
    feedback = second["messages"][-1]["content"]
    assert "parameters_weekly.toml:" in feedback and "E-PLACEHOLDER" in feedback
    assert "W-CRIT-NO-BACKUP" in feedback and "critical step 2.1 has no backup" in feedback
    assert second["messages"][-2]["role"] == "assistant"
    folder = tmp_path / "spec_weekly"
    loaded = load_spec(folder)
    assert loaded.require().goal.description == GOAL
    assert loaded.descriptor == "weekly" and (folder / "spec_weekly.md").is_file()
    code, _, err = specs("validate", "--strict", "spec_weekly", cwd=tmp_path)
    assert code == 0 and "0 errors, 0 warnings" in err
    drafts = list((tmp_path / ".specs" / "drafts").iterdir())
    summary = json.loads((drafts[0] / "draft.json").read_text())
    assert [r["errors"] for r in summary["rounds"]] == [2, 0]
    assert (drafts[0] / "answer_1.toml").read_text().count("[Insert number]") == 1


def test_nothing_is_written_when_the_repairs_do_not_help(llm_server: LlmServer,
                                                         tmp_path: Path) -> None:
    llm_server.script(*[fenced(INVALID)] * 2, openai_chat("not toml at all = = ="))
    code, _out, err = specs("draft", GOAL, "--template", "none", "--descriptor", "weekly",
                           "--repairs", "2", cwd=tmp_path, server=llm_server)
    assert code == 1
    assert len(llm_server.posts) == 3
    assert "round 3: 1 errors" in err and "E-TOML-SYNTAX" in err
    assert "spec_weekly not written: the draft still has 1 errors after 2 repairs" in err
    assert not (tmp_path / "spec_weekly").exists()
    assert "Traceback" not in err


def test_record_then_replay_without_the_server(llm_server: LlmServer, tmp_path: Path) -> None:
    llm_server.script(fenced(INVALID), fenced(VALID))
    code, _, err = specs("draft", GOAL, "--template", "none", "--descriptor", "weekly",
                         "--record", cwd=tmp_path, server=llm_server)
    assert code == 0, err
    (draft,) = (tmp_path / ".specs" / "drafts").iterdir()
    assert len((draft / "exchanges.jsonl").read_text().splitlines()) == 2
    code, _out, err = specs("draft", GOAL, "--template", "none", "--descriptor", "again",
                           "--replay", draft.name, cwd=tmp_path)
    assert code == 1 and "replay: request 1 differs from exchange 1" in err  # not the same ask
    code, _out, err = specs("draft", GOAL, "--template", "none", "--descriptor", "weekly",
                           "--replay", draft.name, "--dir", "replayed", cwd=tmp_path)
    assert code == 0, err
    assert tomllib.loads((tmp_path / "replayed" / "spec_weekly" / "parameters_weekly.toml")
                         .read_text())["goal"]["description"] == GOAL


def test_the_budget_stops_a_draft_with_one_line(llm_server: LlmServer, tmp_path: Path) -> None:
    code, _, err = specs("draft", GOAL, "--template", "none", "--max-tokens", "10",
                         cwd=tmp_path, server=llm_server)
    assert code == 1 and err.count("\n") == 1
    assert "budget_exceeded: the next draft call" in err
    assert not llm_server.posts


def test_transient_errors_are_retried_and_bad_config_is_one_line(llm_server: LlmServer,
                                                                 tmp_path: Path) -> None:
    llm_server.script(Reply.json({"error": {"message": "busy"}}, 503,
                                 headers={"Retry-After": "0"}), fenced(VALID))
    code, _, err = specs("draft", GOAL, "--template", "none", "--descriptor", "weekly",
                         cwd=tmp_path, server=llm_server)
    assert code == 0, err
    code, _, err = specs("draft", GOAL, "--provider", "nonsense", cwd=tmp_path)
    assert code == 2 and "unknown LLM provider 'nonsense'" in err


def test_without_a_template_the_best_suggestion_shapes_the_draft(llm_server: LlmServer,
                                                                 tmp_path: Path) -> None:
    llm_server.script(fenced(VALID))
    code, _, err = specs("draft", "Fix the bug where the export drops the last ticket",
                         "--descriptor", "weekly", "--dry-run", cwd=tmp_path,
                         server=llm_server)
    assert code == 0, err
    assert "drafting in the shape of bug_fix@1.0.0" in err
    assert "bug_fix@1.0.0" in llm_server.posts[0].body["messages"][1]["content"]
    assert not (tmp_path / "spec_weekly").exists()  # a dry run
