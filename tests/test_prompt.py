"""Prompt assembly (docs/prompts.md): content and order, methods, inputs, limits, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import CORPUS, RunCli, WriteSpec
from specs import events as ev
from specs.engine.policy import ladder
from specs.engine.state import RunState
from specs.llm.prompt import (
    EXECUTOR_RULES,
    FAILURE_PREFIX,
    Prompt,
    PromptLimits,
    build_prompt,
    guardrails_of,
)
from specs.spec.load import load_spec
from specs.spec.model import Spec, Step, Task

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
[meta]
goal_descriptor = "notes"

[goal]
description = "Publish the release note of version 2.0"

[constraints]
tone = "plain English"
max_words = 300
audiences = ["users", "admins"]
prohibited_actions = ["Do not publish before approval"]

[[tasks]]
id = 1
description = "Collect the changes"

  [[tasks.steps]]
  id = 1
  description = "List the merged pull requests"
  expected_output = "a JSON object with the list of PR titles"
  critical_flag = true

    [tasks.steps.output_schema]
    type = "object"
    required = ["titles"]
    properties = { titles = { type = "array" } }

  [[tasks.steps]]
  id = 2
  description = "Group the changes by area"
  expected_output = "a table of areas and their changes"
  critical_flag = false
  max_retries = 1
  primary_method = "Group the PRs by their labels"
  expected_files = ["areas.md"]

    [[tasks.steps.backups]]
    id = 1
    description = "Group the PRs by the folders their files are in"

    [[tasks.steps.backups]]
    id = 2
    description = "Group the PRs by hand from their titles"

  [[tasks.steps]]
  id = 3
  description = "Count the changes per area"
  expected_output = "one number per area"
  critical_flag = false
  depends_on = [1]

[[tasks]]
id = 2
description = "Write the note"
research_enabled = true

  [[tasks.steps]]
  id = 1
  description = "Draft the release note"
  expected_output = "note.md with one section per area"
  critical_flag = true
  depends_on = ["1.2", "1.1"]

  [[tasks.steps]]
  id = 2
  description = "Check the note against the schema file"
  expected_output = "a JSON verdict"
  critical_flag = false
  output_schema = "verdict.schema.json"
"""

GUARDRAILS = ["Do not delete files outside project directory", "Do not expose credentials"]


@pytest.fixture()
def loaded(tmp_path: Path, write_spec: WriteSpec) -> Any:
    folder = write_spec(tmp_path, SPEC, name="notes")
    (folder / "verdict.schema.json").write_text(json.dumps(
        {"type": "object", "required": ["verdict"], "properties": {"verdict": {
            "enum": ["ok", "not ok"]}}}))
    result = load_spec(folder)
    assert result.spec is not None and not result.errors, result.diagnostics
    return result


def pick(spec: Spec, ref: str) -> tuple[Task, Step]:
    return next((t, s) for t, s in spec.steps() if f"{t.ref}.{s.id}" == ref)


def prompt_of(loaded: Any, ref: str, **kwargs: Any) -> Prompt:
    task, step = pick(loaded.spec, ref)
    kwargs.setdefault("guardrails", GUARDRAILS)
    kwargs.setdefault("spec_folder", loaded.folder)
    return build_prompt(loaded.spec, task, step, **kwargs)


def method(spec: Spec, ref: str, label: str) -> Any:
    return next(r for r in ladder(pick(spec, ref)[1]) if r.label == label)


class Run:
    """A run state built from events, as the engine would apply them."""

    def __init__(self, spec: Spec) -> None:
        self.state = RunState(spec)

    def apply(self, *events: ev.Event) -> Run:
        for event in events:
            self.state.apply(event)
        return self

    def fail(self, ref: str, method: str, attempt: int, reason: str) -> Run:
        return self.apply(ev.AttemptStarted(step=ref, method=method, attempt=attempt),
                          ev.AttemptEnded(step=ref, method=method, attempt=attempt,
                                          outcome="failure", verdict="mismatch",
                                          failure_reason=reason))

    def complete(self, ref: str, output: Any, summary: str = "", method: str = "primary") -> Run:
        return self.apply(
            ev.StepStarted(step=ref, mode="silent", critical=True),
            ev.AttemptStarted(step=ref, method=method, attempt=1),
            ev.AttemptEnded(step=ref, method=method, attempt=1, outcome="success",
                            verdict="match", output=output, output_summary=summary),
            ev.StepEnded(step=ref, status="completed", method_used=method))


# --- content and order --------------------------------------------------------------------------


def test_primary_prompt_content_and_order(loaded: Any) -> None:
    prompt = prompt_of(loaded, "1.2")
    assert [s.name for s in prompt.sections] == [
        "rules", "goal", "task", "step", "method", "inputs", "answer"]
    # the rules are the system prompt, the rest the user prompt, in order
    assert "## Rules" in prompt.system and "## Rules" not in prompt.user
    for rule in EXECUTOR_RULES:
        assert rule in prompt.system
    titles = ["## Goal", "## Task 1 (of 2)", "## Step 1.2", "## Method: primary",
              "## Outputs of earlier steps", "## Answer format"]
    positions = [prompt.user.index(t) for t in titles]
    assert positions == sorted(positions)
    # guardrails: the project's and the spec's prohibited actions; then the spec's constraints
    for text in [*GUARDRAILS, "Do not publish before approval", "- tone: plain English",
                 "- max_words: 300", "- audiences: users, admins"]:
        assert text in prompt.system
    assert "prohibited_actions:" not in prompt.system
    user = prompt.user
    assert "Publish the release note of version 2.0" in user
    assert "Collect the changes" in user and "1.2 Group the changes by area  <- this step" in user
    assert "Expected output:\na table of areas and their changes" in user
    assert "file `areas.md` exists and is not empty" in user
    assert "Critical: no: a failure is logged as a warning" in user
    method_text = prompt.section("method")
    assert method_text is not None
    assert "The primary method, attempt 1 of 2" in method_text.text
    assert "Group the PRs by their labels" in method_text.text
    assert "Backup" not in method_text.text
    assert "### Step 1.1: List the merged pull requests\nStatus: not yet run." in user
    assert "Answer in plain text" in user and FAILURE_PREFIX in user
    assert prompt.truncated_chars == 0


def test_backup_prompt_says_why_and_lists_the_failures_of_this_round(loaded: Any) -> None:
    spec = loaded.spec
    run = Run(spec).apply(ev.StepStarted(step="1.2", mode="silent", critical=False))
    run.fail("1.2", "primary", 1, "the PRs have no labels").fail(
        "1.2", "primary", 2, "labels are inconsistent")
    first = prompt_of(loaded, "1.2", method=method(spec, "1.2", "backup_1"), state=run.state)
    section = first.section("method")
    assert section is not None and section.title == "Method: backup 1"
    text = section.text
    assert "Backup 1, attempt 1 of 1" in text
    assert "because the earlier method failed (primary)" in text
    assert "Group the PRs by the folders their files are in" in text
    assert "- primary, attempt 1: the PRs have no labels" in text
    assert "- primary, attempt 2: labels are inconsistent" in text
    assert "Group the PRs by their labels" not in text  # the primary's description
    run.apply(ev.AttemptStarted(step="1.2", method="backup_1", attempt=1))  # in progress
    run.apply(ev.AttemptEnded(step="1.2", method="backup_1", attempt=1, outcome="error",
                              failure_reason="no file list", transient=True))
    second = prompt_of(loaded, "1.2", method=method(spec, "1.2", "backup_2"), state=run.state)
    text = second.section("method").text  # type: ignore[union-attr]
    assert "Backup 2, attempt 1 of 1" in text
    assert "the earlier methods failed (primary, backup_1)" in text
    assert "- backup 1, attempt 1 (transient): no file list" in text
    # an earlier round's failures are not this round's
    run.apply(ev.StepEnded(step="1.2", status="failed"),
              ev.StepReopened(step="1.2", reason="retry"))
    third = prompt_of(loaded, "1.2", state=run.state)
    assert "the PRs have no labels" not in third.user


def test_a_backup_without_state_says_no_reasons_are_recorded(loaded: Any) -> None:
    prompt = prompt_of(loaded, "1.2", method=method(loaded.spec, "1.2", "backup_1"))
    assert "Earlier failure reasons: none recorded (no run state)." in prompt.user


def test_declared_dependencies_are_the_inputs(loaded: Any) -> None:
    run = Run(loaded.spec).complete("1.1", {"titles": ["Faster start-up", "Dark mode"]},
                                    "2 titles")
    run.complete("1.2", {"ui": ["Dark mode"]}, "1 area", method="backup_1")
    prompt = prompt_of(loaded, "1.3", state=run.state)
    inputs = prompt.section("inputs")
    assert inputs is not None and inputs.title == "Outputs of the steps this step depends on"
    assert "### Step 1.1: List the merged pull requests" in inputs.text
    assert "Status: completed (method: primary)." in inputs.text
    assert "Summary: 2 titles" in inputs.text and '"Dark mode"' in inputs.text
    assert "Step 1.2" not in inputs.text  # not declared
    # across tasks, in spec order whatever the declared order
    across = prompt_of(loaded, "2.1", state=run.state).section("inputs")
    assert across is not None
    assert across.text.index("Step 1.1") < across.text.index("Step 1.2")
    assert "Status: completed (method: backup_1)." in across.text


def test_without_declared_dependencies_the_most_recent_prior_steps(loaded: Any) -> None:
    run = Run(loaded.spec).complete("1.1", {"titles": []}).complete("1.2", "areas.md")
    run.apply(ev.StepStarted(step="1.3", mode="silent", critical=False),
              ev.StepEnded(step="1.3", status="skipped", skip_reason="condition_false"))
    task, step = pick(loaded.spec, "2.2")
    prompt = build_prompt(loaded.spec, task, step, state=run.state,
                          limits=PromptLimits(prior_steps=2))
    inputs = prompt.section("inputs")
    assert inputs is not None and inputs.title == "Outputs of earlier steps"
    assert "2 earlier steps not shown (1.1, 1.2); the 2 most recent:" in inputs.text
    assert "### Step 1.3" in inputs.text and "Status: skipped (condition_false)." in inputs.text
    assert "### Step 2.1" in inputs.text and "Status: not yet run." in inputs.text
    first = prompt_of(loaded, "1.1").section("inputs")
    assert first is not None and "This is the first step of the run" in first.text


def test_failed_prior_step_shows_its_reason(loaded: Any) -> None:
    run = Run(loaded.spec).apply(ev.StepStarted(step="1.1", mode="silent", critical=True))
    run.fail("1.1", "primary", 1, "the API answered 500")
    run.apply(ev.StepEnded(step="1.1", status="failed"))
    inputs = prompt_of(loaded, "1.3", state=run.state).section("inputs")
    assert inputs is not None and "Status: failed: the API answered 500." in inputs.text


def test_research_guidance_and_notes(loaded: Any) -> None:
    prompt = prompt_of(loaded, "2.1", research=["Users read the first line only"],
                       guidance="Keep it under 200 words", notes=["Dark mode was popular"])
    names = [s.name for s in prompt.sections]
    assert names[-4:] == ["research", "guidance", "notes", "answer"]
    assert "## Research findings for task 2\n- Users read the first line only" in prompt.user
    assert "## Human guidance" in prompt.user and "Keep it under 200 words" in prompt.user
    assert "## Notepad insights so far\n- Dark mode was popular" in prompt.user
    # research enabled, nothing found: said so; no guidance or notes: no section
    bare = prompt_of(loaded, "2.1")
    assert [s.name for s in bare.sections][-2:] == ["research", "answer"]
    assert "the research phase produced no findings" in bare.user
    assert "research" not in [s.name for s in prompt_of(loaded, "1.1").sections]


def test_guidance_and_notes_come_from_the_state(loaded: Any) -> None:
    run = Run(loaded.spec).apply(
        ev.GateRequested(gate="g1", kind="before_step", step="1.2", prompt="?",
                         options=["approve", "guidance"]),
        ev.GateAnswered(gate="g1", response="guidance", guidance="Use the area labels"),
        ev.NotepadUpdated(task="1", insights=["Task 1: all steps completed"],
                          technical_notes=["step 1.1 used the API"], human=["ok"]))
    prompt = prompt_of(loaded, "1.2", state=run.state)
    assert "Use the area labels" in prompt.user
    assert "- (task 1) insight: Task 1: all steps completed" in prompt.user
    assert "- (task 1) technical: step 1.1 used the API" in prompt.user
    other = prompt_of(loaded, "1.3", state=run.state)
    assert "Use the area labels" not in other.user  # guidance is per step
    given = prompt_of(loaded, "1.2", state=run.state, guidance="Other", notes=[])
    assert "Other" in given.user and "Notepad" not in given.user


def test_output_schema_asks_for_json(loaded: Any) -> None:
    prompt = prompt_of(loaded, "1.1")
    answer = prompt.section("answer")
    assert answer is not None
    assert "one JSON object and nothing else" in answer.text
    assert '"required": [\n    "titles"\n  ]' in answer.text
    assert f"answer `{FAILURE_PREFIX} <the specific reason>`" in answer.text
    assert "a JSON object valid against the output schema below" in prompt.user
    from_file = prompt_of(loaded, "2.2").section("answer")
    assert from_file is not None and '"not ok"' in from_file.text
    task, step = pick(loaded.spec, "2.2")
    missing = build_prompt(loaded.spec, task, step, spec_folder=loaded.folder / "nowhere")
    assert "cannot be read" in missing.user and "one JSON object" in missing.user


def test_guardrails_of_a_project_constitution(tmp_path: Path, write_spec: WriteSpec) -> None:
    (tmp_path / "project_constitution.toml").write_text(
        '[constraints]\nprohibited_actions = ["Do not push to main", ""]\n')
    loaded = load_spec(write_spec(tmp_path, SPEC, name="notes"))
    assert guardrails_of(loaded.project) == ["Do not push to main"]
    assert guardrails_of(None) == []


def test_a_command_step_still_has_a_prompt() -> None:
    loaded = load_spec(ROOT / "examples" / "hello")
    assert loaded.spec is not None
    task, step = pick(loaded.spec, "1.2")
    prompt = build_prompt(loaded.spec, task, step)
    assert "a command: `wc -w < spec_hello.md > build/words.txt`" in prompt.user
    assert "file `build/words.txt` exists and is not empty" in prompt.user


# --- limits -------------------------------------------------------------------------------------


def big_run(spec: Spec) -> Run:
    run = Run(spec).complete("1.1", {"titles": [f"PR {n} " + "x" * 40 for n in range(400)]})
    return run.complete("1.2", "areas: " + "y" * 30_000)


def test_a_long_output_is_cut_and_the_cut_is_said(loaded: Any) -> None:
    limits = PromptLimits(section_chars=3_000, total_chars=100_000)
    prompt = prompt_of(loaded, "2.1", state=big_run(loaded.spec).state, limits=limits)
    inputs = prompt.section("inputs")
    assert inputs is not None and len(inputs.text) <= 3_000
    assert inputs.truncated_chars > 30_000
    assert "characters of the output of step 1.1 cut ...]" in inputs.text
    assert "characters of the output of step 1.2 cut ...]" in inputs.text
    # the notices count what they cut: kept + cut = the original bodies
    for section in prompt.sections:
        if section.name != "inputs":
            assert section.truncated_chars == 0
    assert prompt.truncated_chars == inputs.truncated_chars


def test_notes_are_cut_before_prior_outputs(loaded: Any) -> None:
    state = Run(loaded.spec).complete("1.1", {"titles": ["a" * 1500]}).complete(
        "1.2", "b" * 1500).state
    notes = [f"note {n}: " + "n" * 300 for n in range(20)]
    full = prompt_of(loaded, "2.1", state=state, notes=notes)
    assert full.truncated_chars == 0
    # a little too long: only the notepad loses, its oldest entries first
    limits = PromptLimits(total_chars=full.chars - 1_000)
    cut = prompt_of(loaded, "2.1", state=state, notes=notes, limits=limits)
    assert cut.chars <= limits.total_chars
    assert cut.section("notes").truncated_chars > 0  # type: ignore[union-attr]
    assert cut.section("inputs").truncated_chars == 0  # type: ignore[union-attr]
    assert "characters of notepad entry 1 cut" in cut.user
    assert "note 19: " in cut.user
    # too long without the notepad: it goes (one notice for all), then the older prior output
    notes_chars = len(full.section("notes").render())  # type: ignore[union-attr]
    limits = PromptLimits(total_chars=full.chars - notes_chars - 500)
    cut = prompt_of(loaded, "2.1", state=state, notes=notes, limits=limits)
    assert cut.chars <= limits.total_chars
    assert "characters of 20 notepad entries cut ...]" in cut.user
    assert "note 19: n" not in cut.user
    inputs = cut.section("inputs")
    assert inputs is not None and "characters of the output of step 1.1 cut" in inputs.text
    assert "characters of the output of step 1.2 cut" not in inputs.text
    # much too long: each prior output down to a floor, the older first, then entirely
    limits = PromptLimits(total_chars=full.chars - notes_chars - 2_200)
    cut = prompt_of(loaded, "2.1", state=state, notes=notes, limits=limits)
    assert cut.chars <= limits.total_chars
    inputs = cut.section("inputs")
    assert inputs is not None
    older, newer = inputs.text.split("### Step 1.2")
    assert "characters of the output of step 1.1 cut" in older
    assert "characters of the output of step 1.2 cut" in newer
    assert older.count("a") < newer.count("b")
    for name in ("rules", "goal", "step", "method", "answer"):
        assert cut.section(name).truncated_chars == 0  # type: ignore[union-attr]


def test_the_total_limit_holds(loaded: Any) -> None:
    state = big_run(loaded.spec).state
    for total in (20_000, 6_000, 4_000):
        prompt = prompt_of(loaded, "2.1", state=state, notes=["x" * 5_000],
                           research=["r" * 5_000], limits=PromptLimits(total_chars=total))
        assert prompt.chars <= total, (total, prompt.chars)
        assert "Draft the release note" in prompt.user  # the step itself survives


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PromptLimits(section_chars=0)


def test_same_inputs_same_prompt(loaded: Any) -> None:
    def build() -> Prompt:
        again = load_spec(loaded.folder)
        state = big_run(again.spec).state
        return prompt_of(again, "2.1", state=state, notes=["n"] * 3, research=["r"],
                         guidance="g", limits=PromptLimits(section_chars=2_000))

    first, second = build(), build()
    assert first == second
    assert json.dumps(first.to_dict()) == json.dumps(second.to_dict())


# --- the CLI ------------------------------------------------------------------------------------


def test_specs_prompt_on_the_hello_example(run_cli: RunCli) -> None:
    code, out, err = run_cli("prompt", ROOT / "examples" / "hello", "1.2")
    assert code == 0, err
    assert out.startswith("=== system ===\n") and "\n=== user ===\n" in out
    assert "## Step 1.2\nCount the words of the spec file" in out
    assert "### Step 1.1: Create the build folder\nStatus: not yet run." in out
    assert "prompt of step 1.2 (primary)" in err
    code, out, err = run_cli("prompt", ROOT / "examples" / "hello", "1.2", "--method",
                             "backup_1", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["step"] == "1.2" and document["method"] == "backup_1"
    assert document["sections"][0]["name"] == "rules"
    assert "Count the words with Python" in document["user"]


def test_specs_prompt_unknown_step_or_method(run_cli: RunCli, tmp_path: Path,
                                             write_spec: WriteSpec) -> None:
    code, out, err = run_cli("prompt", ROOT / "examples" / "hello", "7.1")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "specs: error: unknown step '7.1'; valid steps: 1.1, 1.2, 1.3, 2.1, 2.2"]
    code, _, err = run_cli("prompt", ROOT / "examples" / "hello", "1.1", "--method", "backup_9")
    assert code == 2 and "valid methods: primary, backup_1" in err
    steps = "\n".join(f"[[tasks.steps]]\nid = {n}\ndescription = 'Step {n}'\n"
                      for n in range(1, 21))
    folder = write_spec(tmp_path, f"[goal]\ndescription = 'g'\n[[tasks]]\nid = 1\n{steps}")
    code, _, err = run_cli("prompt", folder, "2.1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "1.1, 1.2" in err and "1.13" not in err and "(20 in all)" in err


def test_specs_prompt_on_a_corpus_spec(run_cli: RunCli) -> None:
    folder = CORPUS / "TGACGTCA" / "spec_podcast"
    if not folder.is_dir():
        pytest.skip(f"corpus spec not found at {folder}")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    code, out, err = run_cli("prompt", folder, "1.2", "--method", "backup_1")
    assert code == 0, err
    assert "Do not expose credentials in logs" in out  # the project's prohibited actions
    assert "pagination_page_size: 20" in out  # the spec's constraints
    assert "## Method: backup 1" in out and "Material UI" in out
    assert "### Step 1.1: Research mindfulness web design patterns" in out
    assert "Status: not yet run." in out
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


# --- a Markdown step's whole block reaches the prompt (issue 13 item 16) ------------------------

MD_PARAMS = """\
[goal]
description = "Lay out the signup form"

[[tasks]]
id = 1
description = "Build the form"

[[tasks.steps]]
id = 1
critical_flag = true
"""

MD_SPEC = """\
# Spec: form

## Goal

Lay out the signup form

## Task 1: Build the form

- **Step [1]:** Lay out the signup form
  - **Primary method:** Build the form with these parts:
    - Sizes: small, medium, large
    - Buttons: Submit, Cancel
    - Fields: name, email, password
  - **Expected output:** form.html with every field
  - **Description:** A single-page form that works without JavaScript
  - **Verification:** every button responds in a browser
"""


def test_the_whole_markdown_block_of_a_step_is_in_the_model_and_the_prompt(
        tmp_path: Path, write_spec: WriteSpec) -> None:
    folder = write_spec(tmp_path, MD_PARAMS, MD_SPEC, name="form")
    result = load_spec(folder)
    assert result.spec is not None and not result.errors, result.diagnostics
    task, step = pick(result.spec, "1.1")
    assert step.primary_method is not None and "- Fields: name, email, password" in \
        step.primary_method
    assert step.details == ["Description: A single-page form that works without JavaScript",
                            "Verification: every button responds in a browser"]
    assert result.provenance[("tasks", 0, "steps", 0, "details")] == "markdown"
    prompt = build_prompt(result.spec, task, step)
    method_text = prompt.section("method").text
    for line in ("Build the form with these parts:", "- Sizes: small, medium, large",
                 "- Buttons: Submit, Cancel", "- Fields: name, email, password"):
        assert line in method_text.splitlines(), method_text
    step_text = prompt.section("step").text
    assert "From the Markdown spec:\n- Description: A single-page form that works without " \
        "JavaScript\n- Verification: every button responds in a browser" in step_text
