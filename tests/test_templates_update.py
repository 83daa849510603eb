"""``specs templates update``: a spec the user edited, re-rendered from a newer template
version and merged task by task and step by step: a change that merges cleanly, one that
conflicts (listed, nothing written until a side is chosen), and a removed step that a past run
used (refused unless --force)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from specs.templates.merge import fingerprint, merge_file

MANIFEST = """\
[template]
name = "demo"
version = "{version}"

[variables.topic]
prompt = "The topic"
"""

PARAMETERS = """\
[meta]
goal_descriptor = "{{{{ descriptor }}}}"

[goal]
description = "Write a note about {{{{ topic }}}}"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Write"
{task1}
[[tasks]]
id = 2
description = "Check"

  [[tasks.steps]]
  id = 1
  description = "Check the note"
  expected_output = "the note exists"
  critical_flag = false
  command = "test -s note.txt"
"""

STEP_1 = """
  [[tasks.steps]]
  id = 1
  description = "Write the note"
  expected_output = "note.txt"
  critical_flag = false
  command = "{command}"
"""

STEP_2 = """
  [[tasks.steps]]
  id = 2
  description = "Count the words"
  expected_output = "the word count"
  critical_flag = false
  command = "wc -w note.txt"
"""

STEP_3 = """
  [[tasks.steps]]
  id = 3
  description = "Show the note"
  expected_output = "the note on standard output"
  critical_flag = false
  command = "cat note.txt"
"""

MD = """\
# {{{{ descriptor }}}}

## Goal

Write a note about {{{{ topic }}}}

## Tasks

### Task 1: Write
{md_steps}
### Task 2: Check

- **Step 2.1:** Check the note
  - **Expected output:** the note exists
"""

MD_STEPS = {1: "- **Step 1.1:** Write the note\n  - **Expected output:** note.txt\n",
            2: "- **Step 1.2:** Count the words\n  - **Expected output:** the word count\n",
            3: "- **Step 1.3:** Show the note\n  - **Expected output:** the note on standard "
               "output\n"}


def write_template(root: Path, version: str, steps: tuple[int, ...] = (1, 2),
                   command: str = "echo {{ topic | shell }} > note.txt") -> None:
    folder = root / ".specs" / "templates" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.toml").write_text(MANIFEST.format(version=version))
    escaped = command.replace("\\", "\\\\").replace('"', '\\"')
    body = "".join({1: STEP_1.format(command=escaped), 2: STEP_2, 3: STEP_3}[s] for s in steps)
    (folder / "parameters_demo.toml").write_text(PARAMETERS.format(task1=body))
    (folder / "spec_demo.md").write_text(MD.format(md_steps="".join(MD_STEPS[s]
                                                                    for s in steps)))


def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPECS_", "XDG_"))}
    env.update(XDG_CONFIG_HOME=str(cwd / ".config"), COLUMNS="200", NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "specs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    write_template(root, "1.0.0")
    code, _, err = cli("new", "demo", "note", "--var", "topic=tea", cwd=root)
    assert code == 0, err
    return root


def steps_of(folder: Path) -> list[tuple[str, str, str]]:
    doc = tomllib.loads((folder / "parameters_note.toml").read_text())
    return [(f"{t['id']}.{s['id']}", s["description"], s.get("command", ""))
            for t in doc["tasks"] for s in t["steps"]]


def edit(folder: Path, old: str, new: str, name: str = "parameters_note.toml") -> None:
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_unchanged_template_is_up_to_date(project: Path) -> None:
    code, out, _ = cli("templates", "update", "spec_note", cwd=project)
    assert code == 0 and "demo@1.0.0 -> demo@1.0.0" in out and "up to date" in out


def test_user_edits_are_kept_and_template_changes_applied(project: Path) -> None:
    folder = project / "spec_note"
    edit(folder, 'description = "Count the words"', 'description = "Count the words (mine)"')
    edit(folder, "Count the words\n", "Count the words (mine)\n", "spec_note.md")
    with (folder / "parameters_note.toml").open("a") as out:  # a step of the user's own
        out.write('\n  [[tasks.steps]]\n  id = 2\n  description = "Mine too"\n'
                  '  expected_output = "x"\n  critical_flag = false\n  command = "true"\n')
    edit(folder, "  - **Expected output:** the note exists\n",
         "  - **Expected output:** the note exists\n- **Step 2.2:** Mine too\n"
         "  - **Expected output:** x\n", "spec_note.md")
    write_template(project, "1.1.0", steps=(1, 2, 3),
                   command="printf '%s\\n' {{ topic | shell }} > note.txt")
    code, out, err = cli("templates", "update", "spec_note", "--dry-run", cwd=project)
    assert code == 0, out + err
    assert "+  command = \"printf" in out and "changes parameters_note.toml" in out
    assert steps_of(folder)[0][2] == "echo tea > note.txt"  # a dry run writes nothing
    code, out, err = cli("templates", "update", "spec_note", cwd=project)
    assert code == 0, out + err
    assert "updated spec_note" in out
    assert steps_of(folder) == [
        ("1.1", "Write the note", "printf '%s\\n' tea > note.txt"),  # the template's change
        ("1.2", "Count the words (mine)", "wc -w note.txt"),  # the user's edit
        ("1.3", "Show the note", "cat note.txt"),  # the template's new step
        ("2.1", "Check the note", "test -s note.txt"),
        ("2.2", "Mine too", "true")]  # the user's own step
    md = (folder / "spec_note.md").read_text()
    assert "Count the words (mine)" in md and "Step 1.3:** Show the note" in md
    assert "Step 2.2:** Mine too" in md
    provenance = tomllib.loads((folder / ".specs-template.toml").read_text())
    assert provenance["template"] == "demo@1.1.0"
    assert provenance["source"]["updated"]
    code, _, err = cli("validate", "--strict", "spec_note", cwd=project)
    assert "W-BRIDGE" not in err
    code, out, _ = cli("templates", "update", "spec_note", cwd=project)
    assert code == 0 and "up to date" in out  # the new base is the new render


def test_a_conflict_is_listed_and_nothing_is_written_until_a_side_is_chosen(
        project: Path) -> None:
    folder = project / "spec_note"
    edit(folder, 'command = "wc -w note.txt"', 'command = "wc -l note.txt"')
    before = (folder / "parameters_note.toml").read_text()
    write_template(project, "2.0.0")
    template = project / ".specs" / "templates" / "demo" / "parameters_demo.toml"
    template.write_text(template.read_text().replace("wc -w note.txt", "wc -c note.txt"))
    code, out, err = cli("templates", "update", "spec_note", cwd=project)
    assert code == 1
    assert ('conflict: parameters_note.toml: tasks[1].steps[2].command: you changed it to '
            '"wc -l note.txt"; the new template version changes it to "wc -c note.txt"') in out
    assert "1 conflicts between your edits and demo@2.0.0; nothing was written" in err
    assert (folder / "parameters_note.toml").read_text() == before
    assert "demo@1.0.0" in (folder / ".specs-template.toml").read_text()
    code, out, err = cli("templates", "update", "spec_note", "--keep-mine", cwd=project)
    assert code == 0, err
    assert steps_of(folder)[1][2] == "wc -l note.txt"
    assert "(kept yours)" in out


def test_take_template_resolves_conflicts_with_the_new_version(project: Path) -> None:
    folder = project / "spec_note"
    edit(folder, 'command = "wc -w note.txt"', 'command = "wc -l note.txt"')
    write_template(project, "2.0.0")
    template = project / ".specs" / "templates" / "demo" / "parameters_demo.toml"
    template.write_text(template.read_text().replace("wc -w note.txt", "wc -c note.txt"))
    code, _, err = cli("templates", "update", "spec_note", "--take-template", cwd=project)
    assert code == 0, err
    assert steps_of(folder)[1][2] == "wc -c note.txt"


def test_removing_a_step_a_past_run_used_is_refused_unless_forced(project: Path) -> None:
    code, _, err = cli("run", "spec_note", "--no-input", cwd=project)
    assert code == 0, err
    write_template(project, "3.0.0", steps=(1,))
    code, out, err = cli("templates", "update", "spec_note", cwd=project)
    assert code == 1
    assert "removes step 1.2 (used by runs run_" in out
    assert "demo@3.0.0 removes steps that past runs used: step 1.2 (runs run_" in err
    assert [ref for ref, _, _ in steps_of(project / "spec_note")] == ["1.1", "1.2", "2.1"]
    code, _, err = cli("templates", "update", "spec_note", "--force", cwd=project)
    assert code == 0, err
    assert [ref for ref, _, _ in steps_of(project / "spec_note")] == ["1.1", "2.1"]
    assert "Step 1.2" not in (project / "spec_note" / "spec_note.md").read_text()


def test_a_step_the_template_removes_but_the_user_edited_is_a_conflict(project: Path) -> None:
    edit(project / "spec_note", 'command = "wc -w note.txt"', 'command = "wc -l note.txt"')
    write_template(project, "3.0.0", steps=(1,))
    code, out, _ = cli("templates", "update", "spec_note", cwd=project)
    assert code == 1
    assert "tasks[1].steps[2]: the new template version removes it, and you edited it" in out


def test_a_spec_without_provenance_and_an_older_template_are_refused(project: Path,
                                                                     tmp_path: Path) -> None:
    (project / "plain").mkdir()
    (project / "plain" / "parameters_plain.toml").write_text("[goal]\ndescription = \"x\"\n")
    code, _, err = cli("templates", "update", "plain", cwd=project)
    assert code == 1 and "no .specs-template.toml; only specs made by `specs new`" in err
    write_template(project, "0.9.0", steps=(1, 2, 3))
    code, _, err = cli("templates", "update", "spec_note", cwd=project)
    assert code == 1 and "demo@0.9.0 (project) is older than the version this spec" in err


def test_merge_of_one_toml_file_keeps_comments_and_layout() -> None:
    base = b'# mine\n[goal]\ndescription = "a"\n\n[[tasks]]\nid = 1\ndescription = "t"\n'
    mine = base.replace(b"# mine", b"# my comment stays")
    theirs = base.replace(b'description = "t"', b'description = "t2"')
    merged = merge_file("parameters_x.toml", fingerprint("parameters_x.toml", base), mine,
                        theirs)
    assert merged.conflicts == [] and merged.data is not None
    assert merged.data.startswith(b"# my comment stays")
    assert tomllib.loads(merged.data.decode())["tasks"][0]["description"] == "t2"


def test_whole_files_merge_by_their_fingerprint() -> None:
    base = fingerprint("run.sh", b"echo 1\n")
    assert merge_file("run.sh", base, b"echo 1\n", b"echo 2\n").data == b"echo 2\n"
    assert merge_file("run.sh", base, b"echo mine\n", b"echo 1\n").data == b"echo mine\n"
    clash = merge_file("run.sh", base, b"echo mine\n", b"echo 2\n")
    assert clash.data == b"echo mine\n" and clash.conflicts[0].where == "the whole file"
    assert merge_file("run.sh", base, None, b"echo 1\n").data is None  # the user removed it
    assert merge_file("new.sh", None, None, b"new\n").data == b"new\n"  # the template added it


def test_a_spec_made_from_a_template_folder_updates_from_it(tmp_path: Path) -> None:
    write_template(tmp_path, "1.0.0")
    folder = tmp_path / ".specs" / "templates" / "demo"
    moved = tmp_path / "elsewhere" / "demo"
    moved.parent.mkdir()
    folder.rename(moved)
    work = tmp_path / "work"
    work.mkdir()
    code, _, err = cli("new", str(moved), "note", "--var", "topic=tea", cwd=work)
    assert code == 0, err
    (moved / "template.toml").write_text(MANIFEST.format(version="1.1.0"))
    text = (moved / "parameters_demo.toml").read_text()
    (moved / "parameters_demo.toml").write_text(text.replace("wc -w", "wc -c"))
    code, _, err = cli("templates", "update", "spec_note", cwd=work)
    assert code == 2 and "no template named 'demo'" in err
    code, _out, err = cli("templates", "update", "spec_note", "--from", str(moved), cwd=work)
    assert code == 0, err
    assert steps_of(work / "spec_note")[1][2] == "wc -c note.txt"
