"""``specs templates extract``: a spec (or some of its tasks) back to a template whose
variables replace the texts the user chose; ``extract`` then ``new`` round-trips."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import RunCli
from specs.spec.load import load_spec
from specs.templates import load_template
from specs.templates.extract import candidates, extract_template

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SPEC = """\
[meta]
goal_descriptor = "weekly"

[goal]
description = "Publish the weekly report of the ACME-Shop sales to reports/weekly.md"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Gather the ACME-Shop figures"

  [[tasks.steps]]
  id = 1
  description = "Export the ACME-Shop figures to data/sales.csv"
  expected_output = "data/sales.csv"
  critical_flag = true
  command = 'mkdir -p data && echo "region,amount" > data/sales.csv'
  expected_files = ["data/sales.csv"]

    [[tasks.steps.backups]]
    id = 1
    description = "Copy last week's export of data/sales.csv"
    command = "cp archive/sales.csv data/sales.csv"

  [[tasks.steps]]
  id = 2
  description = "Keep {{ braces }} as they are"
  expected_output = "a line with {{ braces }}"
  critical_flag = false
  command = "echo '{{ braces }}'"

[[tasks]]
id = 2
description = "Write the report"

  [[tasks.steps]]
  id = 1
  description = "Write reports/weekly.md from data/sales.csv"
  expected_output = "reports/weekly.md"
  critical_flag = true
  depends_on = ["1.1"]
  command = "mkdir -p reports && cp data/sales.csv reports/weekly.md"

    [[tasks.steps.backups]]
    id = 1
    description = "Write the report by hand from the export"
    command = "mkdir -p reports && echo report > reports/weekly.md"

[[tasks]]
id = 3
description = "Announce it"

  [[tasks.steps]]
  id = 1
  description = "Print where the ACME-Shop report is"
  expected_output = "the path on standard output"
  critical_flag = false
  command = "echo reports/weekly.md"
"""

MD = """\
# Weekly

## Goal

Publish the weekly report of the ACME-Shop sales to reports/weekly.md

## Tasks

### Task 1: Gather the ACME-Shop figures

- **Step 1.1:** Export the ACME-Shop figures to `data/sales.csv`
  - **Expected output:** data/sales.csv
- **Step 1.2:** Keep {{ braces }} as they are
  - **Expected output:** a line with {{ braces }}

### Task 2: Write the report

- **Step 2.1:** Write reports/weekly.md from data/sales.csv
  - **Expected output:** reports/weekly.md

### Task 3: Announce it

- **Step 3.1:** Print where the ACME-Shop report is
  - **Expected output:** the path on standard output
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    folder = tmp_path / "weekly"
    folder.mkdir()
    (folder / "parameters_weekly.toml").write_text(SPEC)
    (folder / "spec_weekly.md").write_text(MD)
    return folder


def model(folder: Path) -> dict[str, Any]:
    return load_spec(folder).require().model_dump(mode="json")


def test_candidates_are_the_spec_specific_texts(spec: Path) -> None:
    found = {c.text: c for c in candidates(spec)}
    assert found["data/sales.csv"].count >= 5 and found["data/sales.csv"].kind == "path"
    assert found["reports/weekly.md"].name == "weekly_path"
    assert "parameters_weekly.toml" not in found and "weekly" not in found


def test_extract_then_new_round_trips(spec: Path, tmp_path: Path, run_cli: RunCli) -> None:
    out = tmp_path / "templates" / "weekly_report"
    code, stdout, err = run_cli("templates", "extract", str(spec), "--to", str(out),
                                "--name", "weekly_report", "--var", "shop=ACME-Shop",
                                "--var", "data_file=data/sales.csv", cwd=tmp_path)
    assert code == 0, err
    assert "template weekly_report@1.0.0 with 2 variables" in stdout
    template = load_template(out)
    assert [(v.name, v.type, v.default) for v in template.variables] == [
        ("shop", "str", "ACME-Shop"), ("data_file", "path", "data/sales.csv")]
    raw = (out / "parameters_weekly.toml").read_text()
    assert 'command = "mkdir -p data && echo \\"region,amount\\" > {{ data_file }}"' in raw
    assert "{{ '{{' }} braces }}" in raw and "ACME" not in raw
    assert "{{ shop }}" in (out / "spec_weekly.md").read_text()
    # with every default kept, the same spec comes back
    code, _, err = run_cli("new", str(out), "weekly", "--dir", str(tmp_path / "again"),
                           cwd=tmp_path)
    assert code == 0, err
    again = tmp_path / "again" / "spec_weekly"
    assert model(again) == model(spec)
    # and other answers make another spec of the same shape
    code, _, err = run_cli("new", str(out), "monthly", "--dir", str(tmp_path / "other"),
                           "--var", "shop=Globex", "--var", "data_file=in/m.csv", cwd=tmp_path)
    assert code == 0, err
    other = load_spec(tmp_path / "other" / "spec_monthly").require()
    assert other.goal.description == ("Publish the weekly report of the Globex sales to "
                                      "reports/weekly.md")
    assert other.tasks[0].steps[0].expected_files == ["in/m.csv"]
    assert other.tasks[0].steps[1].description == "Keep {{ braces }} as they are"


def test_extract_some_tasks(spec: Path, tmp_path: Path) -> None:
    template = extract_template(spec, tmp_path / "t", tasks=[1, 2])
    doc = tomllib.loads((template.folder / "parameters_weekly.toml").read_text())
    assert [t["id"] for t in doc["tasks"]] == [1, 2]
    md = (template.folder / "spec_weekly.md").read_text()
    assert "Task 3" not in md and "Step 3.1" not in md and "Task 2: Write" in md
    with pytest.raises(Exception, match=r"--tasks: task 2 depends on task 1, which is left "
                                        r"out; add it \(--tasks 1,2\)"):
        extract_template(spec, tmp_path / "u", tasks=[2])
    with pytest.raises(Exception, match="the spec has no task 7"):
        extract_template(spec, tmp_path / "v", tasks=[7])


def test_extract_refuses_unknown_texts_and_existing_folders(spec: Path, tmp_path: Path,
                                                            run_cli: RunCli) -> None:
    code, _, err = run_cli("templates", "extract", str(spec), "--to", str(tmp_path / "t"),
                           "--var", "x=Initech", cwd=tmp_path)
    assert code == 2 and "--var: 'Initech' does not appear in the spec" in err
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "keep.txt").write_text("x")
    code, _, err = run_cli("templates", "extract", str(spec), "--to", str(tmp_path / "t"),
                           cwd=tmp_path)
    assert code == 2 and "already exists; pass --force" in err
    code, _, err = run_cli("templates", "extract", str(spec), "--to", str(tmp_path / "w"),
                           "--var", "date=x", cwd=tmp_path)
    assert code == 2 and "'date' cannot name a variable" in err


def test_without_choices_nothing_is_replaced_and_the_candidates_are_named(
        spec: Path, tmp_path: Path, run_cli: RunCli) -> None:
    code, _out, err = run_cli("templates", "extract", str(spec), "--to", str(tmp_path / "t"),
                             "--no-input", cwd=tmp_path)
    assert code == 0, err
    assert "no variables chosen; texts that may deserve one: --var sales_path=data/sales.csv" \
        in err
    assert load_template(tmp_path / "t").variables == ()
    code, _out, err = run_cli("templates", "extract", str(spec), "--to", str(tmp_path / "y"),
                             "--yes", cwd=tmp_path)
    assert code == 0, err
    names = [v.name for v in load_template(tmp_path / "y").variables]
    assert "sales_path" in names and "weekly_path" in names


def test_the_default_destination_is_the_project_layer(tmp_path: Path, run_cli: RunCli) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "hello", project / "hello")
    (project / ".specs").mkdir()
    code, out, err = run_cli("templates", "extract", "hello", "--yes", cwd=project)
    assert code == 0, err
    assert (project / ".specs" / "templates" / "hello" / "template.toml").is_file()
    code, out, _ = run_cli("templates", "--json", cwd=project)
    hello = next(t for t in json.loads(out) if t["name"] == "hello")
    assert hello["layer"] == "project"
    code, _, err = run_cli("new", "hello", "hello", "--dir", "made", cwd=project)
    assert code == 0, err
    assert model(project / "made" / "spec_hello") == model(project / "hello")
