"""Shared test helpers: the real-spec corpus, the CLI as a subprocess, and spec folders.

The corpus lives next to the repository checkout (``../shared/corpus``) and is never copied
into the repo. Without it the suite does not run (a fifth of it reads the corpus, and skipping
that much silently would make a green run mean little): set ``SPECS_TESTS_WITHOUT_CORPUS=1`` to
run the rest anyway, the corpus tests then skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CLI_TIMEOUT = 60.0


def pytest_sessionstart(session: pytest.Session) -> None:
    if not CORPUS.is_dir() and os.environ.get("SPECS_TESTS_WITHOUT_CORPUS") != "1":
        raise pytest.UsageError(
            f"the spec corpus is not at {CORPUS} (../shared/corpus beside the checkout); put it "
            "there, or set SPECS_TESTS_WITHOUT_CORPUS=1 to skip the tests that read it")


RunCli = Callable[..., tuple[int, str, str]]
WriteSpec = Callable[..., Path]


def _run_cli(*args: str | os.PathLike[str], cwd: Path | str | None = None,
             timeout: float = CLI_TIMEOUT) -> tuple[int, str, str]:
    """Run ``python -m specs ARGS`` as a real subprocess: (exit code, stdout, stderr).

    The environment is pinned so output does not depend on the caller's terminal or settings:
    a wide, colourless console and the default file-size limit.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "specs", *map(str, args)], cwd=cwd, env=env,
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _write_spec(tmp_path: Path, toml_text: str | bytes, md_text: str | None = None,
                name: str = "demo") -> Path:
    """Make ``tmp_path/name/`` holding ``parameters_<name>.toml`` (+ ``spec_<name>.md``).

    Text is dedented; bytes are written as they are (for binary / non-UTF-8 cases).
    """
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    parameters = folder / f"parameters_{name}.toml"
    if isinstance(toml_text, bytes):
        parameters.write_bytes(toml_text)
    else:
        parameters.write_text(textwrap.dedent(toml_text), encoding="utf-8")
    if md_text is not None:
        (folder / f"spec_{name}.md").write_text(textwrap.dedent(md_text), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real specs folder (skips the test when it is not there)."""
    if not CORPUS.is_dir():
        pytest.skip(f"spec corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def run_cli() -> RunCli:
    """``run_cli(*args, cwd=None)`` -> (exit code, stdout, stderr) of ``python -m specs``."""
    return _run_cli


@pytest.fixture(scope="session")
def write_spec() -> WriteSpec:
    """``write_spec(tmp_path, toml_text, md_text=None, name="demo")`` -> the spec folder."""
    return _write_spec


GOOD_TOML = """\
[meta]
goal_descriptor = "{name}"

[goal]
description = "Summarise the quarterly sales figures into a one-page report"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the sales table to CSV"
expected_output = "sales.csv with one row per order"
critical_flag = true
max_retries = 2

[[tasks.steps.backups]]
id = 1
description = "Copy the figures by hand from the monthly PDFs"
trigger_condition = "primary_failure"

[[tasks.steps]]
id = 2
description = "Check the totals against the ledger"
expected_output = "a note saying the totals match"
critical_flag = false
depends_on = [1]

[[tasks]]
id = 2
description = "Write the report"
depends_on = [1]

[[tasks.steps]]
id = 1
description = "Draft the one-page summary"
expected_output = "report.md of at most one page"
critical_flag = true
mode = "collaborative"

[[tasks.steps.backups]]
id = 1
description = "Fill in the summary template from last quarter"
trigger_condition = "primary_failure"

[[tasks.steps.backups]]
id = 2
description = "Ask the sales lead for a short written summary"
trigger_condition = "backup_1_failure"

[[tasks.steps]]
id = 2
description = "Proofread the summary"
expected_output = "report.md without typos"
critical_flag = false
"""

GOOD_MD = """\
# Spec: {name}

## Goal

Summarise the quarterly sales figures into a one-page report

## Task 1: Gather the figures

### Step 1.1: Export the sales table to CSV (critical)

### Step 1.2: Check the totals against the ledger (non-critical)

## Task 2: Write the report

### Step 2.1: Draft the one-page summary (critical)

### Step 2.2: Proofread the summary (non-critical)
"""


@pytest.fixture
def good_spec(tmp_path: Path) -> Callable[..., Path]:
    """``good_spec(name="good", parent=tmp_path)``: a small valid spec with no diagnostics."""

    def make(name: str = "good", parent: Path | None = None) -> Path:
        return _write_spec(parent or tmp_path, GOOD_TOML.format(name=name),
                           GOOD_MD.format(name=name), name=name)

    return make
