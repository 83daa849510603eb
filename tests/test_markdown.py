"""Tests for :mod:`specs.spec.markdown`, the parser of SPEC Markdown files."""

from __future__ import annotations

import re
import signal
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specs.spec.markdown import MdSpec, MdStep, MdTask, parse_markdown

CORPUS = Path(__file__).parents[1].parent / "shared" / "corpus"
SPEC_NAME = re.compile(r"^(?:spec_.*|.*_SPEC|speclet_.*|Spec_template)\.md$")

# Spec_template.md shows a SPECLet layout with five placeholder "#### Task [n]:" headings
# ("[Task details]", no steps) before its three real tasks; parameters_template.toml has only
# the real ones.
KNOWN_EXTRA_TASKS = {"__SPEC_Engine/_templates/Spec_template.md": 5}
# DNA_SPEC.md is the DNA interview template: no Goal section, no tasks, no parameters TOML.
NO_GOAL = {"__SPEC_Engine/_DNA/DNA_SPEC.md"}


def _only_step(md: str) -> MdStep:
    spec = parse_markdown(md)
    steps = [s for t in spec.tasks for s in t.steps] + list(spec.orphan_steps)
    assert len(steps) == 1, steps
    return steps[0]


def _only_task(md: str) -> MdTask:
    spec = parse_markdown(md)
    assert len(spec.tasks) == 1, spec.tasks
    return spec.tasks[0]


# --- step headings -------------------------------------------------------------------------

STEP_FORMS = [
    # line, task id, step id, title, critical
    ("### Step [2]: Build the page", 1, 2, "Build the page", None),
    ("#### Step [1.2]: Build the page", 1, 2, "Build the page", None),
    ("#### Step 1.2: Build the page", 1, 2, "Build the page", None),
    ("- **Step [2]:** Build the page", 1, 2, "Build the page", None),
    ("- **Step [1.2]:** Build the page", 1, 2, "Build the page", None),
    ("- **Step 1.2:** Build the page", 1, 2, "Build the page", None),
    ("- Step 1.2: Build the page (critical)", 1, 2, "Build the page", True),
    ("- Step 1.2: Build the page (non-critical)", 1, 2, "Build the page", False),
    ("- Step 1.2: Build the page", 1, 2, "Build the page", None),
    # tolerated variants
    ("* **Step [2]**: Build the page", 1, 2, "Build the page", None),
    ("  - **Step 1.2:** Build the page  ", 1, 2, "Build the page", None),
    ("- **Step 1.2: Build the page**", 1, 2, "Build the page", None),
    ("## Step [2]: Build the page ##", 1, 2, "Build the page", None),
    ("### Step [2]: Port to C#", 1, 2, "Port to C#", None),
    ("- step 1.2: Build the page (Critical)", 1, 2, "Build the page", True),
]


@pytest.mark.parametrize(("line", "task_id", "step_id", "title", "critical"), STEP_FORMS)
def test_step_forms(
    line: str, task_id: int, step_id: int, title: str, critical: bool | None
) -> None:
    spec = parse_markdown(f"# Spec\n\n## Task [1]: First\n\n{line}\n")
    assert len(spec.tasks) == 1 and not spec.orphan_steps
    (step,) = spec.tasks[0].steps
    assert (step.task_id, step.id, step.title, step.critical) == (task_id, step_id, title, critical)
    assert step.line == 5


@pytest.mark.parametrize(
    "line",
    [
        "**Step 1: PAUSE Current Task**",  # bold paragraph, not a bullet or heading
        "- Step success/failure rates",
        "# Step 1: a title heading",
        "- Step [x]: not a number",
        "- Step 1 without colon",
        "Step 1.1: plain text",
        "-Step 1.1: no space after the bullet",
    ],
)
def test_not_steps(line: str) -> None:
    spec = parse_markdown(f"## Task [1]: First\n{line}\n")
    assert spec.tasks[0].steps == () and spec.orphan_steps == ()


def test_dotted_step_keeps_its_own_task_id() -> None:
    spec = parse_markdown("## Task [1]: A\n- Step 2.1: misplaced\n- Step 1.2: fine\n")
    assert [(s.task_id, s.id) for s in spec.tasks[0].steps] == [(2, 1), (1, 2)]


def test_steps_before_any_task_are_orphans() -> None:
    spec = parse_markdown("- **Step [1]:** loose\n- Step 3.1: dotted\n\n## Task [1]: A\n")
    assert [(s.task_id, s.id, s.line) for s in spec.orphan_steps] == [(None, 1, 1), (3, 1, 2)]
    assert spec.tasks[0].steps == ()


def test_bracket_steps_follow_the_current_task() -> None:
    md = "### Task [1.1]: A\n- **Step [1]:** a\n### Task [2.3]: B\n- **Step [1]:** b\n"
    spec = parse_markdown(md)
    assert [(t.speclet, t.id, [(s.task_id, s.id) for s in t.steps]) for t in spec.tasks] == [
        (1, 1, [(1, 1)]),
        (2, 3, [(3, 1)]),
    ]


# --- task headings -------------------------------------------------------------------------

TASK_FORMS = [
    # line, id, speclet, title
    ("## Task [1]: Design and setup", 1, None, "Design and setup"),
    ("### Task [2]: Design and setup", 2, None, "Design and setup"),
    ("### Task 3: Design and setup", 3, None, "Design and setup"),
    ("#### Task [4]: Design and setup", 4, None, "Design and setup"),
    ("### Task [1.2]: Design and setup", 2, 1, "Design and setup"),
    ("## Task [0]: Initialise (Mode A)", 0, None, "Initialise (Mode A)"),
    ("### Task [2]: User Authentication  ", 2, None, "User Authentication"),
    ("### **Task 6:** Design and setup", 6, None, "Design and setup"),
    ("## Task [7]: Design and setup ##", 7, None, "Design and setup"),
    ("## task 8 : Design and setup", 8, None, "Design and setup"),
]


@pytest.mark.parametrize(("line", "task_id", "speclet", "title"), TASK_FORMS)
def test_task_forms(line: str, task_id: int, speclet: int | None, title: str) -> None:
    task = _only_task(f"# Spec\n{line}\nSome text that follows the title.\n")
    assert (task.id, task.speclet, task.title, task.line) == (task_id, speclet, title, 2)


@pytest.mark.parametrize(
    "line",
    [
        "### Task 2 Completion Gate",
        "### Task [2] Completion Gate",
        "## Task Breakdown",
        "## Tasks",
        "- Task [1.1]: a bullet in an overview list",
        "Task 1: plain text",
        "# Task 1: a title heading",
        "####### Task 1: seven hashes",
        "**Your Task:** Conduct an interview",
    ],
)
def test_not_tasks(line: str) -> None:
    assert parse_markdown(f"{line}\n").tasks == ()


def test_completion_gate_does_not_split_a_task() -> None:
    md = (
        "## Task [2]: Diagnose\n- **Step [1]:** a\n- **Step [2]:** b\n"
        "### Task 2 Completion Gate\nAll steps done.\n## Task [3]: Fix\n- **Step [1]:** c\n"
    )
    spec = parse_markdown(md)
    assert [(t.id, len(t.steps)) for t in spec.tasks] == [(2, 2), (3, 1)]


# --- step properties -----------------------------------------------------------------------

FULL_STEP = """\
## Task [1]: T

- **Step [1]:** Do the thing
  - **Primary method:** Use the main tool
  - **Backup [1]:** Use the second tool
  - **Backup 2:** Use the third tool
  - **Backup:** Ask a human
  - **Expected output:** A finished thing
  - **Critical:** true (blocks later work)
  - **Mode:** collaborative (pauses for human input)
  - **Verification:** not captured
"""


def test_property_bullets() -> None:
    step = _only_step(FULL_STEP)
    assert step.primary_method == "Use the main tool"
    assert step.expected_output == "A finished thing"
    assert step.critical is True
    assert step.mode == "collaborative"
    assert [(b.id, b.text, b.line) for b in step.backups] == [
        (1, "Use the second tool", 5),
        (2, "Use the third tool", 6),
        (3, "Ask a human", 7),
    ]


PROPERTY_VARIANTS = [
    # property line, attribute, expected value
    ("  - **Expected Output:** out", "expected_output", "out"),
    ("  - **expected output**: out", "expected_output", "out"),
    ("  * **EXPECTED OUTPUT** : out", "expected_output", "out"),
    ("    **Expected output:** out", "expected_output", "out"),
    ("  - **Primary:** go", "primary_method", "go"),
    ("  - **Primary Method:**   go   ", "primary_method", "go"),
    ("  - **Critical:** Yes", "critical", True),
    ("  - **Critical:** no, it can be skipped", "critical", False),
    ("  - **Critical:** `false`", "critical", False),
    ("  - **Critical**: TRUE", "critical", True),
    ("  - **Critical:** maybe", "critical", None),
    ("  - **Mode:** Dynamic", "mode", "dynamic"),
    ("  - **Mode:** silent  ", "mode", "silent"),
    ("  - **Mode:** education (teaches as it goes)", "mode", "education"),
    ("  - **Mode:** `silent`", "mode", "silent"),
    ("  - **Mode:** turbo", "mode", None),
    ("  - **Mode** silent", "mode", None),  # no colon: not a label
]


@pytest.mark.parametrize(("line", "attr", "value"), PROPERTY_VARIANTS)
def test_property_variants(line: str, attr: str, value: object) -> None:
    step = _only_step(f"## Task [1]: T\n- **Step [1]:** S\n{line}\n")
    assert getattr(step, attr) == value


@pytest.mark.parametrize(
    ("line", "backup"),
    [
        ("  - **Backup [2]:** alt", (2, "alt")),
        ("  - **Backup 3:** alt", (3, "alt")),
        ("  - **Backup:** alt", (1, "alt")),
        ("  - **backup [1]**: alt", (1, "alt")),
        ("  - **Backup method 2:** alt", (2, "alt")),
    ],
)
def test_backup_variants(line: str, backup: tuple[int, str]) -> None:
    step = _only_step(f"## Task [1]: T\n- **Step [1]:** S\n{line}\n")
    assert [(b.id, b.text) for b in step.backups] == [backup]


def test_critical_marker_is_overridden_by_a_critical_bullet() -> None:
    step = _only_step("## Task 1: T\n- Step 1.1: S (critical)\n  - **Critical:** false\n")
    assert step.critical is False


def test_continuation_lines_are_joined() -> None:
    md = """\
## Task [1]: T
- **Step [1]:** S
  - **Primary method:** first part
    second part
      third part
  - **Backup [1]:** alt one
    continues here
  - **Expected output:**
    on the next line
  - **Mode:** silent

    not a continuation after a blank line
"""
    step = _only_step(md)
    assert step.primary_method == "first part second part third part"
    assert [b.text for b in step.backups] == ["alt one continues here"]
    assert step.expected_output == "on the next line"
    assert step.mode == "silent"


def test_heading_steps_take_unindented_properties() -> None:
    md = """\
### Task [1]: Evidence
#### Step [1.1]: Collect logs
- **Primary method:** Gather logs
- **Expected output:** Manifest
- **Critical:** true
- **Backup [1]:** Collect per server
#### Step [1.2]: Next
"""
    spec = parse_markdown(md)
    first, second = spec.tasks[0].steps
    assert (first.primary_method, first.expected_output, first.critical) == (
        "Gather logs",
        "Manifest",
        True,
    )
    assert [b.text for b in first.backups] == ["Collect per server"]
    assert second.primary_method is None


def test_sibling_bullet_ends_a_bullet_step() -> None:
    md = """\
### Task [1]: Build
- Step 1.1: Make the form
- Step 1.2: Save it
- **Expected Output:** Forms work (task level)
  - **Mode:** silent
"""
    spec = parse_markdown(md)
    assert [(s.expected_output, s.mode) for s in spec.tasks[0].steps] == [(None, None)] * 2


def test_outdented_paragraph_after_blank_line_ends_a_bullet_step() -> None:
    md = "## Task [1]: T\n- **Step [1]:** S\n  - **Mode:** silent\n\n**Critical:** Yes\n"
    assert _only_step(md).critical is None
    md_lazy = "## Task [1]: T\n- **Step [1]:** S\n**Critical:** Yes\n"
    assert _only_step(md_lazy).critical is True


def test_heading_ends_step_properties() -> None:
    md = "## Task [1]: T\n### Step [1]: S\n#### Notes\n- **Critical:** true\n"
    assert _only_step(md).critical is None


def test_first_value_wins() -> None:
    md = "## Task [1]: T\n- **Step [1]:** S\n  - **Mode:** silent\n  - **Mode:** dynamic\n"
    assert _only_step(md).mode == "silent"


def test_code_blocks_are_ignored() -> None:
    md = """\
## Task [1]: Real
```markdown
### Task [9]: Example only
- **Step [1]:** Example step
```
- **Step [1]:** Real step
  ~~~
  - **Mode:** dynamic
  ~~~
  - **Mode:** silent
"""
    spec = parse_markdown(md)
    assert [t.id for t in spec.tasks] == [1]
    assert [(s.title, s.mode) for s in spec.tasks[0].steps] == [("Real step", "silent")]


def test_unclosed_fence_is_plain_text() -> None:
    spec = parse_markdown("```python\n## Task [1]: A\n- **Step [1]:** a\n")
    assert [(t.id, len(t.steps)) for t in spec.tasks] == [(1, 1)]


def test_crlf_and_cr_line_endings() -> None:
    for newline in ("\r\n", "\r"):
        spec = parse_markdown(newline.join(["## Goal", "Win", "## Task [1]: A", "- Step 1.1: a"]))
        assert (spec.goal, spec.goal_line) == ("Win", 2)
        assert spec.tasks[0].steps[0].line == 4


# --- goal and completion items ------------------------------------------------------------

GOALS = [
    # text, goal, goal line
    ("## Goal\n\nBuild **X** for *users*.\n", "Build X for users.", 3),
    ("# Goal\nLine one\nline two\n\nNext paragraph\n", "Line one line two", 2),
    ("## Goal Statement\n\nShip it\n", "Ship it", 3),
    ("## 🎯 Goal\nShip it\n", "Ship it", 2),
    ("## 1. Goal\nShip it\n", "Ship it", 2),
    ("## Goals\nShip it\n", "Ship it", 2),
    ("## Goal\n> Quoted goal\n", "Quoted goal", 2),
    ("## Goal\n\n---\n\nAfter a rule\n", "After a rule", 5),
    ("## Goal\n```\ncode\n```\nReal goal\n", "Real goal", 5),
    ("## Goal\n- Build it\n- Test it\n", "Build it", 2),
    ("## Goal\nKeep SPEC_Engine and snake_case\n", "Keep SPEC_Engine and snake_case", 2),
    ("**Goal:** Ship it\n", "Ship it", 1),
    ("- **Goal**: Ship it\n", "Ship it", 1),
    ("**Goal:** First\n\n## Goal\nSecond\n", "First", 1),
    ("## Goal\nFirst\n\n**Goal:** Second\n", "First", 2),
    ("## Project Goal\nNo\n\n## Goal\nYes\n", "Yes", 5),
    ("# Spec Template (Goal-First)\n\n## Goal\nYes\n", "Yes", 4),
    ("## Goal\n## Scope\nNot a goal\n", None, 0),
    ("## Goal\n", None, 0),
    ("**Goal:**\n", None, 0),
    ("No goal here\n", None, 0),
    ("", None, 0),
]


@pytest.mark.parametrize(("text", "goal", "line"), GOALS)
def test_goal(text: str, goal: str | None, line: int) -> None:
    spec = parse_markdown(text)
    assert (spec.goal, spec.goal_line) == (goal, line)


def test_completion_items() -> None:
    md = """\
## Goal
Ship
## Definition of Complete
What must exist and be verified:
- [ ] **Primary deliverable:**
  - App deployed
  - Docs written
- [x] Tests *pass*
  on every platform
### Deployment
1. Domain configured
---
## Tasks
- not an item
## Completion Criteria
- a second section is ignored
"""
    assert parse_markdown(md).completion_items == (
        "Primary deliverable: App deployed; Docs written",
        "Tests pass on every platform",
        "Domain configured",
    )


def test_completion_section_ends_at_a_task_heading_or_a_rule() -> None:
    md = "## Definition of Complete\n- [ ] Done\n### Task [1]: T\n- **Step [1]:** S\n"
    spec = parse_markdown(md)
    assert spec.completion_items == ("Done",) and len(spec.tasks[0].steps) == 1
    md = "# Spec\n### Definition of Done\n- [ ] Done\n\n---\n\n- **Step [1]:** S\n"
    spec = parse_markdown(md)
    assert spec.completion_items == ("Done",) and len(spec.orphan_steps) == 1


def test_completion_criteria_heading() -> None:
    md = "## Completion Criteria\n- [ ] Forms work\n- [ ] Data persists\n\n---\n"
    assert parse_markdown(md).completion_items == ("Forms work", "Data persists")


# --- robustness ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_never_raises_on_random_bytes(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    _check_invariants(text, parse_markdown(text))


MARKDOWNISH = st.lists(
    st.sampled_from(
        [
            "", "## Goal", "Goal text", "**Goal:** g", "## Task [1]: T", "### Task 2: T",
            "### Task [1.2]: T", "### Step [1]: S", "#### Step 1.2: S", "- **Step [3]:** S",
            "- Step 2.1: S (critical)", "  - **Primary method:** p", "  - **Backup:** b",
            "  - **Backup [2]:** b", "  - **Expected output:** e", "  - **Critical:** yes",
            "  - **Mode:** silent", "    continued", "- other bullet", "```", "~~~", "````x",
            "## Definition of Complete", "- [ ] item", "  - nested", "---", "\t- **Mode:** x",
            "# Title", "plain text", "**Critical:** no", "- **Step [x]:** bad",
        ]
    ),
    max_size=60,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(MARKDOWNISH)
def test_never_raises_on_markdown_like_input(lines: list[str]) -> None:
    text = "\n".join(lines)
    _check_invariants(text, parse_markdown(text))


def _check_invariants(text: str, spec: MdSpec) -> None:
    assert isinstance(spec, MdSpec)
    n = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    assert (spec.goal is None) == (spec.goal_line == 0)
    assert 0 <= spec.goal_line <= n
    steps = [s for t in spec.tasks for s in t.steps] + list(spec.orphan_steps)
    assert all(1 <= t.line <= n for t in spec.tasks)
    assert all(1 <= s.line <= n for s in steps)
    assert [t.line for t in spec.tasks] == sorted(t.line for t in spec.tasks)
    assert all(1 <= b.line <= n for s in steps for b in s.backups)
    assert all(s.mode in (None, "silent", "collaborative", "dynamic", "education") for s in steps)


PATHOLOGICAL = {
    "long spaces": " " * 2_000_000 + "x",
    "long bold": "**" * 1_000_000,
    "long bullet": "- **" + "a " * 1_000_000,
    "long title": "## Task 1: " + " " * 2_000_000 + "x #",
    "long label": "- **Step 1:** a\n  - **Primary method" + " " * 2_000_000 + ":** x",
    "blanks, no colon": "\n".join(
        p + " " * 400_000 + "x"
        for p in ("## Task 1", "- **Step 1", "  - **Primary method", "**goal", "## Goal")
    ),
    "emphasis": "## Goal\n" + "*a _b " * 300_000,
    "fences": "```x\n" * 200_000,
    "continuations": "- **Step 1:** a\n  - **Backup:** x\n" + "    more\n" * 200_000,
    "backups": "- **Step 1:** a\n" + "  - **Backup:** x\n" * 100_000,
    "completion": "## Definition of Complete\n- [ ] a\n" + "  - b\n" * 200_000,
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_inputs_terminate(name: str) -> None:
    """Inputs that make naive regexes backtrack: the parser gets through them (a hang guard
    stops a catastrophic case instead of letting the suite run for hours; speed itself is
    measured by bench/, not asserted here)."""
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"parse_markdown({name!r}) did not terminate")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)
    try:
        spec = parse_markdown(PATHOLOGICAL[name])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert isinstance(spec.tasks, tuple)


REALISTIC_TASK = """\
### Task [1]: Set up backend API framework

**TOML Reference:** `tasks[id=1]` in parameters_demo.toml
**Purpose:** Create an Express.js API server with TypeScript configuration and a health check
endpoint, so that later tasks have somewhere to live.

- **Step [1]:** Initialise Node.js project with TypeScript
  - **Primary method:** Create package.json, install Express, TypeScript, ts-node and types
  - **Backup [1]:** If npm is unavailable, use pnpm with the same dependency list
  - **Expected output:** Backend project initialised with a working TypeScript configuration
  - **Critical:** true
  - **Mode:** silent

- **Step [2]:** Configure Express server with CORS and middleware
  - **Primary method:** Create src/server.ts, configure the app with cors, express.json()
    and error handling middleware
  - **Expected output:** Express server starting on port 5000 with middleware configured
  - **Critical:** false
  - **Mode:** dynamic

- **Verification:** Server starts successfully, responds to the health check endpoint
- **Logging:** Record backend setup in progress_demo.json

---

"""


def test_20_mb_spec_parses_quickly() -> None:
    head = "# Spec\n\n## Goal\n\nGo fast.\n\n## Definition of Complete\n- [ ] Done\n\n"
    text = head + REALISTIC_TASK * (20_000_000 // len(REALISTIC_TASK) + 1)
    assert len(text) >= 20_000_000
    spec = parse_markdown(text)
    assert spec.goal == "Go fast." and spec.completion_items == ("Done",)
    assert len(spec.tasks) == 20_000_000 // len(REALISTIC_TASK) + 1
    assert {(s.id, s.critical, s.mode, len(s.backups)) for t in spec.tasks for s in t.steps} == {
        (1, True, "silent", 1),
        (2, False, "dynamic", 0),
    }


# --- the real corpus -----------------------------------------------------------------------


def _corpus_files() -> list[Any]:
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no SPEC corpus at {CORPUS}"))]
    files = sorted(p for p in CORPUS.rglob("*.md") if SPEC_NAME.match(p.name))
    return [pytest.param(p, id=p.relative_to(CORPUS).as_posix()) for p in files]


def _toml_for(md: Path) -> Path | None:
    stem = md.stem
    if stem.lower().startswith("spec_"):
        stem = stem[5:]
    elif stem.endswith("_SPEC"):
        stem = stem[: -len("_SPEC")]
    toml = md.parent / f"parameters_{stem}.toml"
    return toml if toml.is_file() else None


def _toml_tasks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "speclets" in doc:  # Dashboard: [[speclets]] -> tasks -> steps
        return [t for s in doc["speclets"] for t in s.get("tasks", [])]
    tasks: list[dict[str, Any]] = doc.get("tasks", [])
    return tasks


@pytest.mark.parametrize("path", _corpus_files())
def test_corpus_counts_match_toml(path: Path) -> None:
    toml = _toml_for(path)
    if toml is None:
        pytest.skip(f"{path.name} has no parameters_*.toml next to it")
    spec = parse_markdown(path.read_text(encoding="utf-8", errors="replace"))
    toml_tasks = _toml_tasks(tomllib.loads(toml.read_text(encoding="utf-8")))
    extra = KNOWN_EXTRA_TASKS.get(path.relative_to(CORPUS).as_posix(), 0)
    assert len(spec.tasks) == len(toml_tasks) + extra
    md_steps = [len(t.steps) for t in spec.tasks if t.steps or not extra]
    assert md_steps == [len(t.get("steps", [])) for t in toml_tasks]
    assert spec.orphan_steps == ()


@pytest.mark.parametrize("path", _corpus_files())
def test_corpus_goal_is_found(path: Path) -> None:
    spec = parse_markdown(path.read_text(encoding="utf-8", errors="replace"))
    if path.relative_to(CORPUS).as_posix() in NO_GOAL:
        pytest.skip("not a goal-bearing spec (DNA interview template)")
    assert spec.goal and spec.goal_line > 0
    text = path.read_text(encoding="utf-8", errors="replace")
    line = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[spec.goal_line - 1]
    assert spec.goal.split()[0].strip("*_") in line


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no SPEC corpus at {CORPUS}")
def test_corpus_pairs_exist() -> None:
    paired = [p for p in CORPUS.rglob("*.md") if SPEC_NAME.match(p.name) and _toml_for(p)]
    assert paired, "no spec Markdown with a neighbouring parameters_*.toml: pairing is broken"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no SPEC corpus at {CORPUS}")
def test_every_corpus_markdown_parses() -> None:
    for path in CORPUS.rglob("*.md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        _check_invariants(text, parse_markdown(text))


# -- a step keeps its whole block (issue 13 item 16) ---------------------------------------------

NESTED = """\
## Task 1: Build the form

- **Step [1]:** Lay out the signup form
  - **Primary method:** Build the form with
    these parts:
    - Sizes: small, medium, large
    - Buttons:
      - Submit (primary)
      - Cancel
    - Fields: name, email, password
  - **Backup [1]:** Use the stock template
    - keep its field order
  - **Expected output:** form.html with every field
  - **Description:** A single-page form; it must
    work without JavaScript.
  - **Verification:** open it in a browser
    - every button responds
  - **Logging:** record the layout chosen
  - **Critical:** true

- **Step [2]:** Next step
"""


def test_nested_bullets_stay_in_the_primary_method_and_backups() -> None:
    step = parse_markdown(NESTED).tasks[0].steps[0]
    assert step.primary_method == (
        "Build the form with these parts:\n- Sizes: small, medium, large\n- Buttons:\n"
        "  - Submit (primary)\n  - Cancel\n- Fields: name, email, password")
    assert [b.text for b in step.backups] == ["Use the stock template\n- keep its field order"]
    assert step.expected_output == "form.html with every field"
    assert step.critical is True


def test_other_labelled_bullets_are_kept_whole_as_details() -> None:
    spec = parse_markdown(NESTED)
    first, second = spec.tasks[0].steps
    assert first.details == (
        "Description: A single-page form; it must work without JavaScript.",
        "Verification: open it in a browser\n- every button responds",
        "Logging: record the layout chosen")
    assert second.title == "Next step" and second.details == ()


def test_a_heading_step_keeps_its_prose() -> None:
    step = _only_step("## Task 1: T\n\n### Step 1: Write it\n\nUse plain words,\nshort lines."
                      "\n\n- keep it short\n- **Expected output:** a page\n\n---\n")
    assert step.expected_output == "a page"
    assert step.details == ("Use plain words, short lines.", "- keep it short")


def test_the_real_troubleshoot_spec_keeps_the_severity_framework(corpus: Path) -> None:
    md = parse_markdown((corpus / "__SPEC_Engine/_TOOLSPECs/Troubleshoot/Troubleshoot_SPEC.md")
                        .read_text(encoding="utf-8"))
    step = next(s for t in md.tasks if t.id == 2 for s in t.steps if s.id == 7)
    assert step.primary_method is not None
    assert step.primary_method.splitlines()[1:] == [
        "- CRITICAL: Blocks goal achievement or core functionality",
        "- HIGH: Major functionality impaired, significant quality degradation",
        "- MEDIUM: Minor functionality issues, quality below standards",
        "- LOW: Cosmetic issues, edge cases"]
