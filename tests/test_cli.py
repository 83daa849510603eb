"""The command line as users run it: ``python -m specs ...`` in a real subprocess.

Covers ``--version``, ``--help``, ``validate`` (text, ``--json``, ``--strict``, ``-q``, several
PATHs), ``show`` (tree and ``--json``), ``schema`` (checked with jsonschema against every real
parameters file) and ``validate`` over the real corpus.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import specs
from specs.spec.load import load_spec

# "1 of 3 specs invalid: 1 error, 2 warnings, 0 info": group 1 the invalid ones, 2 the specs
SUMMARY = re.compile(r"^(?:(\d+) of )?(\d+) specs? (valid|invalid): (\d+) errors?, (\d+) "
                     r"warnings?, (\d+) info$")
DIAG = re.compile(r"^(?P<file>.+?)(?::\d+(?::\d+)?)?: (?P<severity>error|warning|info) "
                  r"(?P<code>[EWI]-[A-Z0-9-]+) \S")

BUILD_GOAL = """\
[goal]
description = "Build a web app for shop volunteers"

[[tasks]]
id = 1
description = "Plan the pages"

[[tasks.steps]]
id = 1
description = "List the pages volunteers need"
expected_output = "pages.md"
critical_flag = true

[[tasks.steps.backups]]
id = 1
description = "Interview two volunteers instead"
trigger_condition = "primary_failure"

[[tasks.steps]]
id = 2
description = "Sketch each page"
expected_output = "sketches/"
critical_flag = false
"""

ALIASES = """\
[goal]
statement = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the sales table"
critical = false
"""

WITH_UNKNOWN_KEY = """\
[goal]
description = "Summarise the quarterly sales figures"
colour = "blue"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the sales table"
critical_flag = false
"""

CORPUS_INVALID = {
    "SPECs/ATATGTGG/spec_fart_test/parameters_fart_test.toml",
    "@filing/Better_SPEC_changes/20251103_192727/originals/parameters_template.toml",
    "__SPEC_Engine/_templates/parameters_template.toml",
}
COMPLIANCE = "SPECs/Testing/CGATTACG/spec_compliance_checker"


def summary(err: str) -> re.Match[str]:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    match = SUMMARY.match(lines[0])
    assert match, err
    return match


def diag_lines(out: str) -> list[re.Match[str]]:
    found = []
    for line in out.splitlines():
        match = DIAG.match(line)
        assert match, f"not a diagnostic line: {line!r}"
        found.append(match)
    return found


def clean(out: str, err: str) -> None:
    assert "Traceback" not in out + err, out + err


# -- version and help ---------------------------------------------------------------------------


def test_version_and_help(run_cli):
    code, out, err = run_cli("--version")
    assert (code, out.strip(), err) == (0, f"specs {specs.__version__}", "")
    code, out, err = run_cli("--help")
    clean(out, err)
    assert code == 0
    commands = out[out.index("Commands"):]
    for name in ("validate", "show", "schema"):
        assert re.search(rf"^\s+{name}\s", commands, re.M), out


# -- validate ----------------------------------------------------------------------------------


def test_validate_a_good_spec_and_several_paths(run_cli, good_spec, write_spec, tmp_path):
    good = good_spec()
    code, out, err = run_cli("validate", good, cwd=tmp_path)
    clean(out, err)
    assert code == 0, out + err
    assert not [m for m in diag_lines(out) if m["severity"] == "error"]
    assert summary(err).group(1, 2, 3, 4) == (None, "1", "valid", "0")

    other = good_spec("other")
    bad = write_spec(tmp_path, '[goal]\ndescription = "Summarise the figures"\n', name="bad")
    code, out, err = run_cli("validate", good, bad, other / "parameters_other.toml",
                             cwd=tmp_path)
    clean(out, err)
    assert code == 1, out + err
    assert summary(err).group(1, 2, 3) == ("1", "3", "invalid")  # one of the three
    errors = [m for m in diag_lines(out) if m["severity"] == "error"]
    assert [m["code"] for m in errors] == ["E-NO-TASKS"]
    assert Path(tmp_path, errors[0]["file"]).resolve() == (bad / "parameters_bad.toml").resolve()


def test_validate_json(run_cli, good_spec, write_spec, tmp_path):
    folder = write_spec(tmp_path, WITH_UNKNOWN_KEY, name="plain")  # no Markdown: a warning
    code, out, err = run_cli("validate", "--json", folder, cwd=tmp_path)
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["valid"] is True
    assert doc["diagnostics"], doc
    for item in doc["diagnostics"]:
        assert {"severity", "code", "message", "file", "line", "col"} <= set(item)
        assert item["severity"] in ("error", "warning", "info")
        assert isinstance(item["line"], int) and isinstance(item["col"], int)
    codes = {item["code"]: item for item in doc["diagnostics"]}
    assert codes["W-FILE-MD-MISSING"]["severity"] == "warning"
    unknown = codes["I-UNKNOWN-KEY"]
    assert unknown["severity"] == "info" and "colour" in unknown["message"]
    assert (unknown["line"], unknown["col"]) == (3, 1)
    assert Path(tmp_path, unknown["file"]).resolve() == (folder / "parameters_plain.toml").resolve()

    # several PATHs: a list, one entry per PATH, in order
    bad = write_spec(tmp_path, '[goal]\ndescription = "Summarise the figures"\n', name="bad")
    code, out, err = run_cli("validate", "--json", good_spec(), bad, cwd=tmp_path)
    assert code == 1, out + err
    docs = json.loads(out)
    assert isinstance(docs, list) and [d["valid"] for d in docs] == [True, False]
    assert [d["descriptor"] for d in docs] == ["good", "bad"]
    assert "E-NO-TASKS" in {item["code"] for item in docs[1]["diagnostics"]
                            if item["severity"] == "error"}


def test_quiet_hides_info_but_not_warnings(run_cli, write_spec, tmp_path):
    folder = write_spec(tmp_path, WITH_UNKNOWN_KEY, name="plain")
    code, out, err = run_cli("validate", folder, cwd=tmp_path)
    assert code == 0
    severities = {m["severity"] for m in diag_lines(out)}
    assert {"info", "warning"} <= severities
    code, quiet, err = run_cli("validate", "-q", folder, cwd=tmp_path)
    assert code == 0
    quiet_lines = diag_lines(quiet)
    assert quiet_lines and all(m["severity"] != "info" for m in quiet_lines)
    assert [line for line in out.splitlines() if " info " not in line] == quiet.splitlines()
    assert int(summary(err).group(6)) >= 1  # the summary still counts the info


def test_strict_turns_the_stack_warning_into_an_error(run_cli, write_spec, tmp_path):
    folder = write_spec(tmp_path, BUILD_GOAL, name="shop")
    code, out, err = run_cli("validate", folder, cwd=tmp_path)
    assert code == 0, out + err
    found = diag_lines(out)
    assert "W-STACK" in {m["code"] for m in found if m["severity"] == "warning"}
    assert not [m for m in found if m["severity"] == "error"]

    code, out, err = run_cli("validate", "--strict", folder, cwd=tmp_path)
    clean(out, err)
    assert code == 1, out + err
    assert "W-STACK" in {m["code"] for m in diag_lines(out) if m["severity"] == "error"}
    assert summary(err).group(3) == "invalid"


# -- show ----------------------------------------------------------------------------------------


def test_show_prints_the_tree(run_cli, good_spec, tmp_path):
    code, out, err = run_cli("show", good_spec(), cwd=tmp_path)
    clean(out, err)
    assert code == 0, out + err
    for text in ("Summarise the quarterly sales figures", "Task 1", "Gather the figures",
                 "Step 1.1", "Export the sales table to CSV", "Step 2.2",
                 "Proofread the summary", "backup 1", "Copy the figures by hand",
                 "backup 2", "Ask the sales lead", "collaborative"):
        assert text in out, (text, out)
    step = next(line for line in out.splitlines() if "Step 1.1" in line)
    assert "(critical," in step
    step = next(line for line in out.splitlines() if "Step 1.2" in line)
    assert "non-critical" in step and "after 1" in step


def test_show_json_has_the_normalised_spec(run_cli, write_spec, tmp_path):
    folder = write_spec(tmp_path, ALIASES, name="alias")
    code, out, err = run_cli("show", "--json", folder, cwd=tmp_path)
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["descriptor"] == "alias"
    assert Path(tmp_path, doc["files"]["parameters"]).resolve() == \
        (folder / "parameters_alias.toml").resolve()
    spec = doc["spec"]
    assert spec["goal"]["description"] == "Summarise the quarterly sales figures"
    assert "statement" not in spec["goal"]
    step = spec["tasks"][0]["steps"][0]
    assert step["critical_flag"] is False and "critical" not in step


def test_show_an_invalid_spec_exits_1_with_errors_on_stderr(run_cli, write_spec, tmp_path):
    broken = write_spec(tmp_path, '[goal]\ndescription = "x\n', name="broken")
    cyclic = write_spec(tmp_path, """\
        [goal]
        description = "Summarise the quarterly sales figures"

        [[tasks]]
        id = 1
        description = "Gather the figures"

        [[tasks.steps]]
        id = 1
        description = "one"
        depends_on = [2]

        [[tasks.steps]]
        id = 2
        description = "two"
        depends_on = [1]
        """, name="cyclic")
    for folder, code_name in ((broken, "E-TOML-SYNTAX"), (cyclic, "E-DEP-CYCLE")):
        code, out, err = run_cli("show", folder, cwd=tmp_path)
        clean(out, err)
        assert code == 1, out + err
        assert [m["code"] for m in diag_lines(err.strip())] == [code_name]
        assert " error " in err
    # a spec that loads is shown, errors and all (issue 13 item 15); one that does not is not
    assert run_cli("show", broken, cwd=tmp_path)[1] == ""
    code, out, err = run_cli("show", cyclic, cwd=tmp_path)
    assert "Task 1" in out and "Step 1.2" in out
    code, out, err = run_cli("show", "--json", cyclic, cwd=tmp_path)
    assert code == 1
    document = json.loads(out)
    assert [e["code"] for e in document["errors"]] == ["E-DEP-CYCLE"]
    assert len(document["spec"]["tasks"][0]["steps"]) == 2


# -- schema ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "specs", "schema"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def test_schema_is_json_schema(schema):
    jsonschema = pytest.importorskip("jsonschema")
    assert schema["$schema"].startswith("https://json-schema.org/")
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    assert {"goal", "tasks"} <= set(schema["properties"])


def test_schema_rejects_a_wrong_type(schema):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.validators.validator_for(schema)(schema)
    good = {"goal": {"description": "x"},
            "tasks": [{"id": 1, "description": "t", "steps": [{"id": 1, "max_retries": 2}]}]}
    assert not list(validator.iter_errors(good))
    bad = {"goal": {"description": "x"},
           "tasks": [{"id": 1, "description": "t", "steps": [{"id": 1, "max_retries": "x"}]}]}
    found = list(validator.iter_errors(bad))
    assert found
    assert any("max_retries" in [str(p) for p in error.absolute_path] or
               any("max_retries" in [str(p) for p in sub.absolute_path]
                   for sub in error.context or ()) for error in found), found


def test_schema_accepts_every_normalised_corpus_file(schema, corpus):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.validators.validator_for(schema)(schema)
    files = sorted(corpus.rglob("parameters_*.toml"))
    assert len(files) >= 10
    for path in files:
        loaded = load_spec(path)
        assert loaded.spec is not None, (path, loaded.diagnostics)
        document = loaded.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                    for e in validator.iter_errors(document)]
        assert not problems, (path, problems[:5])


# -- the real corpus ----------------------------------------------------------------------------


def test_validate_the_corpus(run_cli, corpus):
    files = sorted(corpus.rglob("parameters_*.toml"))
    names = {path.relative_to(corpus).as_posix() for path in files}
    assert CORPUS_INVALID.issubset(names), sorted(names)
    valid = [path for path in files if path.relative_to(corpus).as_posix() not in CORPUS_INVALID]
    assert len(valid) >= 10

    code, out, err = run_cli("validate", "--json", *valid)
    clean(out, err)
    docs = json.loads(out)
    bad = {doc["path"]: [d for d in doc["diagnostics"] if d["severity"] == "error"]
           for doc in docs if not doc["valid"]}
    assert not bad, bad
    assert code == 0

    invalid = [corpus / relative for relative in sorted(CORPUS_INVALID)]
    code, out, err = run_cli("validate", "--json", *invalid)
    clean(out, err)
    assert code == 1, out + err
    docs = json.loads(out)
    assert [doc["path"] for doc in docs] == [str(path) for path in invalid]
    for doc in docs:
        assert doc["valid"] is False, doc["path"]
        assert [d for d in doc["diagnostics"] if d["severity"] == "error"], doc["path"]


def test_strict_on_the_compliance_checker(run_cli, corpus):
    folder = corpus / COMPLIANCE
    code, out, err = run_cli("validate", "--strict", folder)
    clean(out, err)
    assert code == 1, out + err
    found = diag_lines(out)
    assert "W-STACK" in {m["code"] for m in found if m["severity"] == "error"}
    assert not [m for m in found if m["severity"] == "warning" and m["code"] == "W-STACK"]
