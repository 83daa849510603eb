"""Bad input through the real command line: ``python -m specs validate PATH``.

Every case pins the exit code (1 invalid spec, 2 usage error), the one-line
``file:line:col: severity CODE message`` form on stdout, the one-line summary on stderr, the
position the problem is reported at, and that no traceback ever reaches the user.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

DIAG = re.compile(
    r"^(?P<file>[^\n]+?)(?::(?P<line>\d+)(?::(?P<col>\d+))?)?: "
    r"(?P<severity>error|warning|info) (?P<code>[EWI]-[A-Z0-9-]+) (?P<message>\S.*)$")
SUMMARY = re.compile(
    r"^(?:\d+ of )?\d+ specs? (valid|invalid): \d+ errors?, \d+ warnings?, \d+ info$")


@dataclass(frozen=True)
class Diag:
    file: Path
    line: int
    col: int
    severity: str
    code: str
    message: str


def no_traceback(out: str, err: str) -> None:
    assert "Traceback" not in out, out
    assert "Traceback" not in err, err


def parse(out: str, err: str, cwd: Path) -> list[Diag]:
    """Every stdout line is one diagnostic; stderr is the one-line summary."""
    no_traceback(out, err)
    found = []
    for text in out.splitlines():
        match = DIAG.match(text)
        assert match, f"not a `file:line:col: severity CODE message` line: {text!r}"
        found.append(Diag((cwd / match["file"]).resolve(), int(match["line"] or 0),
                          int(match["col"] or 0), match["severity"], match["code"],
                          match["message"]))
    lines = err.strip().splitlines()
    assert len(lines) == 1 and SUMMARY.match(lines[0]), err
    return found


def validate(run_cli, cwd: Path, *paths: Path | str, exit_code: int = 1) -> list[Diag]:
    code, out, err = run_cli("validate", *paths, cwd=cwd)
    assert code == exit_code, out + err
    return parse(out, err, cwd)


def errors(diags: list[Diag], file: Path | None = None) -> list[Diag]:
    return [d for d in diags if d.severity == "error"
            and (file is None or d.file == file.resolve())]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line number of the ``nth`` line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def params(folder: Path) -> Path:
    return next(folder.glob("parameters_*.toml")).resolve()


def one_error(diags: list[Diag], file: Path, code: str) -> Diag:
    found = errors(diags, file)
    assert [d.code for d in found] == [code], found
    return found[0]


# -- TOML syntax ----------------------------------------------------------------------------

SYNTAX_CASES = {
    # name: (text, line the parser stops at)
    "unclosed_string": ('[goal]\ndescription = "never closed\n', 2),
    "duplicate_key": ('[goal]\ndescription = "x"\ndescription = "y"\n', 3),
    "bad_table_header": ('[goal\ndescription = "x"\n', 1),
    "missing_equals": ('[goal]\ndescription "x"\n', 2),
}


def _tomllib_position(text: str) -> tuple[int, int]:
    with pytest.raises(tomllib.TOMLDecodeError) as info:
        tomllib.loads(text)
    match = re.search(r"at line (\d+), column (\d+)", str(info.value))
    assert match
    return int(match[1]), int(match[2])


def test_toml_syntax_errors_report_the_parsers_line_and_column(run_cli, write_spec, tmp_path):
    folders = {name: write_spec(tmp_path, text, name=name)
               for name, (text, _) in SYNTAX_CASES.items()}
    diags = validate(run_cli, tmp_path, *folders.values())
    for name, (text, line) in SYNTAX_CASES.items():
        found = one_error(diags, params(folders[name]), "E-TOML-SYNTAX")
        assert (found.line, found.col) == _tomllib_position(text), name
        assert found.line == line, name
        assert found.col >= 1, name
        assert found.message.startswith("TOML syntax error:"), found
        assert "(at line" not in found.message  # the position is in the prefix, not repeated
    assert len(diags) == len(SYNTAX_CASES)  # nothing else is said about an unparsable file


# -- wrong types: each on its own line, and the rest of the spec is still checked ----------

WRONG_TYPES = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the table"
max_retries = "two"
critical_flag = "maybe"

[[tasks.steps]]
id = 2
description = "Check the totals"
mode = "turbo"
depends_on = "x"

[[tasks.steps]]
id = 2
description = "A step that reuses id 2"
critical_flag = false
"""


def test_wrong_types_are_each_reported_and_the_rest_still_checked(run_cli, write_spec,
                                                                  tmp_path):
    folder = write_spec(tmp_path, WRONG_TYPES)
    diags = validate(run_cli, tmp_path, folder)
    found = errors(diags)
    assert Counter(d.code for d in found) == {"E-TYPE": 4, "E-DUP-STEP": 1}, found
    by_line = {d.line: d for d in found if d.code == "E-TYPE"}
    expected = {"max_retries": "'two'", "critical_flag": "'maybe'", "mode": "'turbo'",
                "depends_on": "'x'"}
    for key, shown in expected.items():
        line = line_of(WRONG_TYPES, f"{key} = ")
        assert line in by_line, (key, by_line)
        diag = by_line[line]
        assert diag.col == 1
        assert key in diag.message and shown in diag.message, diag
    # the invalid enum lists the values that are allowed
    assert "collaborative" in by_line[line_of(WRONG_TYPES, "mode = ")].message
    dup = next(d for d in found if d.code == "E-DUP-STEP")
    assert dup.line == line_of(WRONG_TYPES, "id = 2")
    assert "step id 2" in dup.message


# -- duplicate ids ----------------------------------------------------------------------------

DUPLICATES = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the table"

[[tasks.steps.backups]]
id = 1
description = "Copy the figures by hand"
trigger_condition = "primary_failure"

[[tasks.steps.backups]]
id = 1
description = "Ask the accountant"
trigger_condition = "primary_failure"

[[tasks.steps]]
id = 1
description = "Check the totals"

[[tasks]]
id = 1
description = "Write the report"

[[tasks.steps]]
id = 1
description = "Draft the summary"
"""


def test_duplicate_task_step_and_backup_ids(run_cli, write_spec, tmp_path):
    folder = write_spec(tmp_path, DUPLICATES)
    found = errors(validate(run_cli, tmp_path, folder))
    codes = Counter(d.code for d in found)
    assert codes["E-DUP-TASK"] == 1 and codes["E-DUP-STEP"] == 1 and codes["E-DUP-BACKUP"] == 1
    assert set(codes) <= {"E-DUP-TASK", "E-DUP-STEP", "E-DUP-BACKUP", "E-BACKUP-TRIGGER"}
    task = next(d for d in found if d.code == "E-DUP-TASK")
    step = next(d for d in found if d.code == "E-DUP-STEP")
    backup = next(d for d in found if d.code == "E-DUP-BACKUP")
    # each is reported at the `id = ...` line of the first use
    assert task.line == line_of(DUPLICATES, "id = 1", 1)
    assert step.line == line_of(DUPLICATES, "id = 1", 2)
    assert backup.line == line_of(DUPLICATES, "id = 1", 3)
    assert "task id 1" in task.message and "2 times" in task.message
    assert "step id 1" in step.message and "task 1" in step.message
    assert "backup id 1" in backup.message and "1.1" in backup.message


# -- references: unknown dependencies, cycles, backup triggers ----------------------------

UNKNOWN_DEPS = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the table"
depends_on = [9]

[[tasks.steps]]
id = 2
description = "Check the totals"
depends_on = ["7.1"]
"""

STEP_CYCLE = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "one"
depends_on = [3]

[[tasks.steps]]
id = 2
description = "two"
depends_on = [1]

[[tasks.steps]]
id = 3
description = "three"
depends_on = [2]
"""

TASK_CYCLE = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"
depends_on = [2]

[[tasks.steps]]
id = 1
description = "one"

[[tasks]]
id = 2
description = "Write the report"
depends_on = [1]

[[tasks.steps]]
id = 1
description = "two"
"""

STEP_TASK_CYCLE = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"
depends_on = [2]

[[tasks.steps]]
id = 1
description = "one"

[[tasks]]
id = 2
description = "Write the report"

[[tasks.steps]]
id = 1
description = "two"
depends_on = ["1.1"]
"""

TRIGGERS = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the table"

[[tasks.steps.backups]]
id = 1
description = "Copy the figures by hand"
trigger_condition = "primary_failure"

[[tasks.steps.backups]]
id = 2
description = "Ask the accountant"
trigger_condition = "primary_failure"
"""


def _cycle_path(message: str) -> list[str]:
    assert message.startswith("dependency cycle: "), message
    text = message.removeprefix("dependency cycle: ").split(" (")[0]
    nodes = [part.strip() for part in text.split("->")]
    assert len(nodes) >= 2 and all(nodes), message
    return nodes


def test_unknown_dependencies_cycles_and_backup_triggers(run_cli, write_spec, tmp_path):
    texts = {"unknown": UNKNOWN_DEPS, "steps": STEP_CYCLE, "tasks": TASK_CYCLE,
             "mixed": STEP_TASK_CYCLE, "triggers": TRIGGERS}
    folders = {name: write_spec(tmp_path, text, name=name) for name, text in texts.items()}
    diags = validate(run_cli, tmp_path, *folders.values())

    unknown = errors(diags, params(folders["unknown"]))
    assert [(d.code, d.line) for d in unknown] == [
        ("E-DEP-UNKNOWN", line_of(UNKNOWN_DEPS, "[9]")),
        ("E-DEP-UNKNOWN", line_of(UNKNOWN_DEPS, '["7.1"]'))]
    assert "9" in unknown[0].message and "'7.1'" in unknown[1].message

    cycle = one_error(diags, params(folders["steps"]), "E-DEP-CYCLE")
    path = _cycle_path(cycle.message)
    assert path[0] == path[-1], path  # the path closes on itself
    assert set(path) == {"1.1", "1.2", "1.3"}
    assert cycle.line in {line_of(STEP_CYCLE, "depends_on", n) for n in (1, 2, 3)}

    for name in ("tasks", "mixed"):
        found = one_error(diags, params(folders[name]), "E-DEP-CYCLE")
        path = _cycle_path(found.message)
        assert "task 2" in path or "2.1" in path, path
        assert "task 1" in path or "1.1" in path, path
        assert found.line == line_of(texts[name], "depends_on"), found

    trigger = one_error(diags, params(folders["triggers"]), "E-BACKUP-TRIGGER")
    assert trigger.line == line_of(TRIGGERS, "trigger_condition", 2)
    assert "backup 2" in trigger.message and "'backup_1_failure'" in trigger.message


# -- files that cannot be read as TOML text ------------------------------------------------------


def test_empty_binary_non_utf8_and_oversized_files(run_cli, write_spec, tmp_path):
    empty = write_spec(tmp_path, b"", name="empty")
    binary = write_spec(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 40,
                        name="x")
    latin1 = write_spec(tmp_path, '[goal]\ndescription = "café au lait"\n'.encode("latin-1"),
                        name="latin")
    big = tmp_path / "big"
    big.mkdir()
    with (big / "parameters_big.toml").open("w", encoding="utf-8") as handle:
        handle.write('[goal]\ndescription = "A valid header"\n\n')
        handle.write("# " + "x" * (20 * 1024 * 1024) + "\n")
    diags = validate(run_cli, tmp_path, empty, binary, latin1, big)

    found = one_error(diags, params(empty), "E-TOML-EMPTY")
    assert (found.line, found.col) == (1, 1)
    found = one_error(diags, params(binary), "E-FILE-BINARY")
    assert "binary" in found.message
    found = one_error(diags, params(latin1), "E-FILE-ENCODING")
    assert (found.line, found.col) == (2, len('description = "caf') + 1)
    assert "UTF-8" in found.message and "0xe9" in found.message
    found = one_error(diags, params(big), "E-FILE-SIZE")
    assert "20.0 MB" in found.message and "16 MB" in found.message
    assert len(diags) == 4  # one line per file: nothing else is said about unreadable files


def test_a_directory_named_like_a_parameters_file(run_cli, tmp_path):
    folder = tmp_path / "spec"
    (folder / "parameters_x.toml").mkdir(parents=True)
    (folder / "parameters_x.toml" / "notes.txt").write_text("not a spec\n")
    diags = validate(run_cli, tmp_path, folder / "parameters_x.toml", folder)
    assert len(diags) == 2
    for diag in diags:
        assert (diag.severity, diag.code) == ("error", "E-FILE-READ")
        assert diag.file == (folder / "parameters_x.toml").resolve()
        assert "directory" in diag.message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root can read a chmod 000 file")
def test_an_unreadable_file(run_cli, good_spec, tmp_path):
    folder = good_spec()
    target = params(folder)
    target.chmod(0)
    try:
        found = one_error(validate(run_cli, tmp_path, folder), target, "E-FILE-READ")
    finally:
        target.chmod(0o644)
    assert "cannot read" in found.message and "ermission" in found.message


# -- paths: missing, no parameters file, two parameters files --------------------------------


def test_a_missing_path_is_a_usage_error(run_cli, good_spec, tmp_path):
    good = good_spec()
    for args in (["no_such_spec"], [good, "no_such_spec"]):
        code, out, err = run_cli("validate", *args, cwd=tmp_path)
        no_traceback(out, err)
        assert code == 2, out + err
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "no_such_spec" in lines[0] and "not found" in lines[0], err


def test_folders_without_or_with_two_parameters_files(run_cli, good_spec, tmp_path):
    none = tmp_path / "none"
    none.mkdir()
    (none / "spec_none.md").write_text("# Spec\n")
    two = good_spec("two")
    (two / "parameters_other.toml").write_text(params(two).read_text())
    diags = validate(run_cli, tmp_path, none, two)
    assert [(d.file, d.code) for d in diags] == [
        (none.resolve(), "E-SPEC-NO-PARAMS"), (two.resolve(), "E-SPEC-AMBIGUOUS")] or \
        [(d.file, d.code) for d in diags] == [
        (two.resolve(), "E-SPEC-AMBIGUOUS"), (none.resolve(), "E-SPEC-NO-PARAMS")]
    ambiguous = next(d for d in diags if d.code == "E-SPEC-AMBIGUOUS")
    assert "parameters_two.toml" in ambiguous.message
    assert "parameters_other.toml" in ambiguous.message


# -- content: no tasks, leftover placeholders ----------------------------------------------------

PLACEHOLDERS = """\
[goal]
description = "[Insert goal description]"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "TODO"
expected_output = "a CSV file"
"""


def test_no_tasks_and_leftover_placeholders(run_cli, write_spec, tmp_path):
    no_tasks = write_spec(tmp_path, '[goal]\ndescription = "Summarise the figures"\n',
                          name="empty_plan")
    placeholders = write_spec(tmp_path, PLACEHOLDERS, name="template")
    diags = validate(run_cli, tmp_path, no_tasks, placeholders)
    one_error(diags, params(no_tasks), "E-NO-TASKS")
    found = errors(diags, params(placeholders))
    assert [(d.code, d.line) for d in found] == [
        ("E-PLACEHOLDER", line_of(PLACEHOLDERS, "[Insert goal")),
        ("E-PLACEHOLDER", line_of(PLACEHOLDERS, '"TODO"'))]
    assert "[Insert goal description]" in found[0].message
    assert "TODO" in found[1].message


# -- project constitution with null ---------------------------------------------------------------


def test_a_constitution_with_null_loads_with_a_warning(run_cli, good_spec, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    constitution = project / "project_constitution.toml"
    constitution.write_text('[project]\nname = "demo"\nlanguage = null\n')
    folder = good_spec(parent=project)
    diags = validate(run_cli, tmp_path, folder, exit_code=0)
    assert not errors(diags)
    nulls = [d for d in diags if d.code == "W-TOML-NULL"]
    assert len(nulls) == 1, diags
    assert nulls[0].severity == "warning"
    assert nulls[0].file == constitution.resolve()
    assert (nulls[0].line, nulls[0].col) == (3, 1)
    assert "language" in nulls[0].message


# -- usage errors and --debug ---------------------------------------------------------------------


def test_an_unknown_option_is_one_line_and_exit_2(run_cli, good_spec, tmp_path):
    code, out, err = run_cli("validate", "--no-such-option", good_spec(), cwd=tmp_path)
    no_traceback(out, err)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--no-such-option" in lines[0], err


_BROKEN = """\
import sys
import specs.cli
import specs.cli.spec

def broken(*args, **kwargs):
    raise RuntimeError("simulated bug")

specs.cli.spec.load_spec = broken
sys.argv = ["specs", *sys.argv[1:]]
specs.cli.main()
"""


def test_internal_errors_show_a_traceback_only_with_debug(good_spec, tmp_path):
    folder = good_spec()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _BROKEN, *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    quiet = run("validate", str(folder))
    assert quiet.returncode not in (0, 1, 2)
    no_traceback(quiet.stdout, quiet.stderr)
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0], quiet.stderr
    assert "RuntimeError: simulated bug" in lines[0] and "--debug" in lines[0]

    debug = run("--debug", "validate", str(folder))
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "RuntimeError: simulated bug" in debug.stderr


# -- input that would crash or stall the parser, and numbers out of range (issue 13 item 5) ----

OUTSIDE_LIMITS_BASE = """\
[goal]
description = "Summarise the quarterly sales figures"

[[tasks]]
id = 1
description = "Gather the figures"

[[tasks.steps]]
id = 1
description = "Export the table"
expected_output = "sales.csv"
"""

# name: (line added at the end, code, words the message has); the line is the file's last
OUTSIDE_LIMITS = {
    "deep_arrays": ("nested = " + "[" * 500 + "]" * 500, "E-TOML-LIMIT", "nested more than"),
    "deep_tables": ("nested = " + "{ a = " * 1000 + "1" + " }" * 1000, "E-TOML-LIMIT",
                    "nested more than"),
    "unclosed": ("nested = " + "[" * 5000, "E-TOML-LIMIT", "nested more than"),
    "int_4301_digits": ("max_retries = " + "9" * 4301, "E-TOML-LIMIT", "64-bit"),
    "int_400_digits": ("max_retries = 1" + "0" * 400, "E-TOML-LIMIT", "64-bit"),
    "int_2_63": ("max_retries = 9223372036854775808", "E-TOML-LIMIT", "64-bit"),
    "dotted_20000": ("x." + ".".join(["k"] * 20_000) + " = 1", "E-TOML-LIMIT", "dotted key"),
    "quoted_dotted": ("x." + ".".join(['"k"'] * 20_000) + " = 1", "E-TOML-LIMIT", "dotted key"),
    "datetime_for_string": ("expected_output = 1979-05-27T07:32:00Z", "E-TYPE",
                            "date/time 1979-05-27T07:32:00"),
    "huge_float": ("timeout_seconds = 1e400", "E-TYPE", "finite"),
    "retries_10_18": ("max_retries = 1000000000000000000", "E-TYPE", "less than or equal to 100"),
    "timeout_years": ("timeout_seconds = 1e12", "E-TYPE", "less than or equal to"),
}


def _outside_limits(write_spec, tmp_path: Path) -> dict[str, Path]:
    folders = {}
    for name, (line, _, _) in OUTSIDE_LIMITS.items():
        text = OUTSIDE_LIMITS_BASE.replace('expected_output = "sales.csv"\n', "") \
            if line.startswith("expected_output") else OUTSIDE_LIMITS_BASE
        folders[name] = write_spec(tmp_path, text + line + "\n", name=name)
    return folders


def test_input_outside_the_limits_is_one_line_at_its_position(run_cli, write_spec, tmp_path):
    folders = _outside_limits(write_spec, tmp_path)
    diags = validate(run_cli, tmp_path, *folders.values())
    for name, (_, code, words) in OUTSIDE_LIMITS.items():
        file = params(folders[name])
        found = [d for d in errors(diags, file) if d.code == code]
        assert len(found) == 1, (name, errors(diags, file))
        assert words in found[0].message, (name, found[0])
        assert found[0].line == file.read_text().count("\n"), (name, found[0])
        if code == "E-TOML-LIMIT":  # refused before parsing: nothing else is said
            assert errors(diags, file) == found, name


@pytest.mark.parametrize("command", ["show", "run"])
def test_show_and_run_report_input_outside_the_limits_in_one_line(command, write_spec,
                                                                  tmp_path, monkeypatch):
    from fault_trial import run_cli_inprocess

    monkeypatch.chdir(tmp_path)
    folders = _outside_limits(write_spec, tmp_path)
    for name, (_, code, _) in OUTSIDE_LIMITS.items():
        args = [command, str(folders[name])] + (["--yes", "--no-input"] if command == "run"
                                                 else [])
        exit_code, out, err = run_cli_inprocess(args)
        no_traceback(out, err)
        assert exit_code == 1, (name, out, err)
        lines = [line for line in err.splitlines() if f" {code} " in line]
        assert len(lines) == 1, (name, err)
        assert re.match(rf".*parameters_{name}\.toml:\d+:\d+: error {code} ", lines[0]), lines


def test_a_seeded_fault_trial_of_mutated_corpus_files_has_no_internal_error(corpus, tmp_path):
    """150 mutated real parameters files (bench/fault_mutations.py runs 2,000) through the real
    `specs validate` entry point: each ends with exit 0 or 1 and no traceback."""
    from fault_trial import fault_mutations

    results = [fault_mutations.check(case, tmp_path)
               for case in fault_mutations.cases(150, seed=2026)]
    internal = [(r.kinds, r.first_line) for r in results if r.internal]
    assert internal == []
    assert {r.code for r in results} <= {0, 1}
    kinds = {kind for r in results for kind in r.kinds}
    assert kinds == set(fault_mutations.MUTATIONS)  # every mutation was tried
