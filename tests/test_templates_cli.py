"""The template commands as users run them: questions on a real terminal (a pseudo-terminal),
--dry-run, --force, --json, listing by category, show and check, from any working directory."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import RunCli

MANIFEST = """\
[template]
name = "asked"
version = "1.0.0"
summary = "A template that asks"

[variables.title]
prompt = "The title"

[variables.count]
prompt = "How many parts"
type = "int"
default = 2
min = 1
max = 5

[variables.fast]
prompt = "Fast?"
type = "bool"
default = false

[variables.speed]
prompt = "How fast"
type = "choice"
choices = ["quick", "quicker"]
default = "quick"
when = "vars.fast"
"""

PARAMETERS = """\
[meta]
goal_descriptor = "{{ descriptor }}"

[goal]
description = "Summarise {{ title }} in {{ count }} parts"

[vars]
speed = "{{ speed }}"

[[tasks]]
id = 1
description = "Summarise"

  [[tasks.steps]]
  id = 1
  description = "Write the summary"
  expected_output = "summary.md"
  critical_flag = false
  command = "echo {{ title | shell }} > summary.md"
"""


@pytest.fixture
def asked(tmp_path: Path) -> Path:
    folder = tmp_path / "asked"
    folder.mkdir()
    (folder / "template.toml").write_text(MANIFEST)
    (folder / "parameters_asked.toml").write_text(PARAMETERS)
    return folder


def on_terminal(args: list[str], answers: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``specs ARGS`` on a pseudo-terminal, typing each answer after each question."""
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    env.update(TERM="dumb", NO_COLOR="1", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "specs", *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=env, close_fds=True)
    os.close(slave)
    output, pending, deadline = b"", list(answers), time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if pending and output.rstrip().endswith(b":"):
                os.write(master, pending.pop(0).encode() + b"\n")
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, output.decode("utf-8", "replace")


def test_missing_answers_are_asked_on_a_terminal(asked: Path, tmp_path: Path) -> None:
    code, screen = on_terminal(["new", str(asked), "talk"],
                               ["The Talk", "nine", "9", "3", "yes", ""], tmp_path)
    assert code == 0, screen
    assert "The title:" in screen and "How many parts [2]:" in screen
    assert "count: must be a whole number (got 'nine')" in screen
    assert "count: must be between 1 and 5 (got '9')" in screen
    assert "How fast (quick, quicker) [quick]:" in screen  # asked: fast is yes
    doc = tomllib.loads((tmp_path / "spec_talk" / "parameters_talk.toml").read_text())
    assert doc["goal"]["description"] == "Summarise The Talk in 3 parts"
    assert doc["vars"]["speed"] == "quick"


def test_no_input_refuses_with_the_option_to_pass(asked: Path, tmp_path: Path,
                                                  run_cli: RunCli) -> None:
    code, _, err = run_cli("new", str(asked), "--no-input", cwd=tmp_path)
    assert code == 2
    assert err == ("specs: error: no answer for 'title' (The title); pass --var title=VALUE "
                   "(or run on a terminal to be asked)\n")


def test_dry_run_prints_the_tree_and_writes_nothing(asked: Path, tmp_path: Path,
                                                    run_cli: RunCli) -> None:
    code, out, err = run_cli("new", str(asked), "--var", "title=x", "--dry-run", cwd=tmp_path)
    assert code == 0, err
    assert "spec_asked/ (dry run: nothing written)" in out
    assert "parameters_asked.toml" in out and "Step 1.1 Write the summary" in out
    assert not (tmp_path / "spec_asked").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".spec_asked")]


def test_force_overwrites_the_templates_files_and_keeps_the_others(
        asked: Path, tmp_path: Path, run_cli: RunCli) -> None:
    assert run_cli("new", str(asked), "--var", "title=one", cwd=tmp_path)[0] == 0
    folder = tmp_path / "spec_asked"
    (folder / "progress_asked.json").write_text("{}")
    code, _, err = run_cli("new", str(asked), "--var", "title=two", cwd=tmp_path)
    assert code == 1 and "already exists and is not empty" in err
    assert "one" in (folder / "parameters_asked.toml").read_text()
    code, _, err = run_cli("new", str(asked), "--var", "title=two", "--force", cwd=tmp_path)
    assert code == 0, err
    assert "two" in (folder / "parameters_asked.toml").read_text()
    assert (folder / "progress_asked.json").read_text() == "{}"


def test_new_works_from_any_working_directory(tmp_path: Path, run_cli: RunCli) -> None:
    repo = tmp_path / "repo"
    (repo / "src" / "deep").mkdir(parents=True)
    code, out, err = run_cli("new", "bug_fix", "--dir", str(repo / "specs"), "--var",
                             "bug=the parser drops the last line", "--var", f"workspace={repo}",
                             "--json", cwd=repo / "src" / "deep")
    assert code == 0, err
    result = json.loads(out)
    assert result["written"] and result["template"] == "bug_fix@1.0.0"
    doc = tomllib.loads((repo / "specs" / "spec_bug_fix" / "parameters_bug_fix.toml")
                        .read_text())
    assert doc["execution"]["workspace"] == str(repo)  # an absolute answer stays absolute
    code, out, err = run_cli("new", "bug_fix", "relative", "--dir", "../../specs", "--var",
                             "bug=the parser drops the last line", "--var", "workspace=../..",
                             cwd=repo / "src" / "deep")
    assert code == 0, err
    doc = tomllib.loads((repo / "specs" / "spec_relative" / "parameters_relative.toml")
                        .read_text())
    assert doc["execution"]["workspace"] == "../.."  # the repository, from the spec folder


def test_a_spec_that_does_not_validate_is_not_written(tmp_path: Path, run_cli: RunCli) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "template.toml").write_text('[template]\nname = "broken"\n')
    (broken / "parameters_broken.toml").write_text('[goal]\ndescription = "x"\n')
    code, _, err = run_cli("new", str(broken), cwd=tmp_path)
    assert code == 1 and "E-NO-TASKS" in err and "not written" in err
    assert not (tmp_path / "spec_broken").exists()
    code, out, err = run_cli("templates", "check", str(broken), cwd=tmp_path)
    assert code == 1 and "broken@0: invalid (" in err and "E-NO-TASKS" in out


def test_listing_showing_and_checking(run_cli: RunCli, tmp_path: Path) -> None:
    code, out, _ = run_cli("templates", "--category", "problem_solving", cwd=tmp_path)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["forensic", "troubleshoot"]
    code, out, _ = run_cli("templates", "show", "forensic", "--json", cwd=tmp_path)
    shown = json.loads(out)
    assert shown["layer"] == "built-in" and shown["category"] == "problem_solving"
    assert [t["id"] for t in shown["tasks"]] == [1, 2, 3, 4]
    assert {"name": "incident", "type": "str"}.items() <= shown["variables"][0].items()
    code, out, _ = run_cli("templates", "show", "forensic", cwd=tmp_path)
    assert "Pick it for: a production incident" in out and "incident (str)" in out
    code, _, err = run_cli("templates", "check", "forensic", "research", cwd=tmp_path)
    assert code == 0 and "forensic@1.0.0: valid (0 errors, 0 warnings)" in err
    code, _, err = run_cli("templates", "show", "forensics", cwd=tmp_path)
    assert code == 2 and "no template named 'forensics'; did you mean forensic?" in err
