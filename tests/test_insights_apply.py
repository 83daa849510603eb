"""``specs insights --diff/--apply`` end to end through the command line: the edit keeps the
file's comments and layout, the file still validates, the next runs use the change, the history
records it, and an edit is refused when the file changed since the analysis."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import RunCli
from history_specs import B, S, flaky, run_spec, write_spec
from specs import events as ev
from specs.spec.load import load_spec


def _counter(folder: Path, name: str) -> int:
    path = folder / "counters" / name
    return int(path.read_text()) if path.exists() else 0


def _analyse(run_cli: RunCli, folder: Path, state: Path) -> dict[str, dict]:
    code, out, err = run_cli("insights", folder, "--state-dir", state, "--json")
    assert code == 0, err
    return {s["kind"] + ":" + (s["step"] or ""): s for s in json.loads(out)["suggestions"]}


def test_promote_a_backup_round_trip(tmp_path: Path, run_cli: RunCli) -> None:
    primary, backup = flaky("p", 0.3), flaky("b", 0.95)
    folder = write_spec(tmp_path, "trip", [("Fetch", [
        S(primary, critical=True, backups=[B(backup, "read the mirror")]),
        S("true", max_retries=3)])])
    parameters = folder / "parameters_trip.toml"
    text = parameters.read_text().replace(
        '    description = "read the mirror"',
        '    # the mirror is slower but always there\n    description = "read the mirror"')
    parameters.write_text(text)
    state = tmp_path / ".specs"
    run_spec(folder, state, None, times=20)
    found = _analyse(run_cli, folder, state)
    promote = found["promote-backup:1.1"]
    code, out, err = run_cli("insights", folder, "--state-dir", state, "--diff", promote["id"])
    assert code == 0, err
    assert f'-  command = "{primary}"' in out and f'+  command = "{backup}"' in out
    assert f"would have changed: {promote['impact']}" in out
    assert parameters.read_text() == text  # --diff writes nothing
    before = hashlib.sha256(parameters.read_bytes()).hexdigest()
    code, out, err = run_cli("insights", folder, "--state-dir", state, "--apply", promote["id"])
    assert code == 0, err
    assert "backup 1 (read the mirror) promoted to primary" in out
    after = parameters.read_text()
    assert after.startswith("# a spec made by the history tests")  # comments and layout kept
    assert "# the mirror is slower but always there" in after
    assert f"# specs insights {promote['id']}" in after
    code, _out, err = run_cli("validate", folder)
    assert code == 0, err
    spec = load_spec(folder).require()
    step = spec.tasks[0].steps[0]
    assert step.command == backup and step.backups[0].command == primary
    assert step.backups[0].trigger_condition == "primary_failure"
    # the next runs use the promoted method: its counter moves with the primary's attempts
    b_before, p_before = _counter(folder, "b"), _counter(folder, "p")
    new = run_spec(folder, state, None, times=3)
    tried = [e for r in new for e in ev.read_events(r.run_dir / "events.jsonl")
             if isinstance(e, ev.AttemptEnded) and e.step == "1.1"]
    assert _counter(folder, "b") - b_before == sum(a.method == "primary" for a in tried)
    assert _counter(folder, "p") - p_before == sum(a.method == "backup_1" for a in tried)
    # the history shows the change, and the runs after it carry the new file's hash
    code, out, err = run_cli("history", "changes", "--state-dir", state, "--json")
    changes = json.loads(out)
    assert [(c["suggestion_id"], c["kind"], c["step"]) for c in changes] == \
        [(promote["id"], "promote-backup", "1.1")]
    assert changes[0]["sha_before"] == before
    assert changes[0]["sha_after"] == hashlib.sha256(parameters.read_bytes()).hexdigest()
    assert changes[0]["evidence"]["backup"]["count"] == promote["evidence"]["backup"]["count"]
    code, out, err = run_cli("history", "runs", "--state-dir", state, "--json", "--limit", "3")
    assert {r["parameters_sha256"] for r in json.loads(out)} == {changes[0]["sha_after"]}
    # the step's evidence starts again after the change: no promotion of the new backup 1
    assert "promote-backup:1.1" not in _analyse(run_cli, folder, state)


def test_an_edit_is_refused_when_the_file_changed_or_it_is_advice(tmp_path: Path,
                                                                  run_cli: RunCli) -> None:
    folder = write_spec(tmp_path, "refuse", [("Work", [
        S("test ! -f DOWN && " + flaky("r", 0.9), max_retries=3), S(flaky("bad", 0.0))])])
    state = tmp_path / ".specs"
    run_spec(folder, state, None, times=12)
    (folder / "DOWN").write_text("")
    run_spec(folder, state, None, times=2)
    found = _analyse(run_cli, folder, state)
    retries, redesign = found["retries:1.1"], found["redesign-step:1.2"]
    code, _out, err = run_cli("insights", folder, "--state-dir", state, "--apply",
                              redesign["id"])
    assert code == 2 and "is advice, not an edit" in err and err.count("\n") == 1
    code, _out, err = run_cli("insights", folder, "--state-dir", state, "--apply", "nope-1")
    assert code == 2 and "no suggestion 'nope-1'" in err
    parameters = folder / "parameters_refuse.toml"
    parameters.write_text(parameters.read_text() + "\n# edited by hand\n")
    code, _out, err = run_cli("insights", folder, "--state-dir", state, "--apply",
                              retries["id"])
    assert code == 2 and "changed since the analysis" in err
    assert "max_retries = 3" in parameters.read_text()  # nothing written
    again = _analyse(run_cli, folder, state)["retries:1.1"]
    assert again["id"] == retries["id"]  # ids are stable from one analysis to the next
    code, _out, err = run_cli("insights", folder, "--state-dir", state, "--apply", again["id"])
    assert code == 0, err
    value = again["evidence"]["suggested"]
    assert f"max_retries = {value} # specs insights {again['id']}" in parameters.read_text()
    assert "# edited by hand" in parameters.read_text()
    assert load_spec(folder).require().tasks[0].steps[0].max_retries == value


def test_promoting_the_second_backup_rotates_the_methods(tmp_path: Path,
                                                         run_cli: RunCli) -> None:
    folder = write_spec(tmp_path, "rotate", [("Work", [
        S("exit 3", critical=True, backups=[B("exit 4", "the first backup"),
                                            B("true", "the second backup")])])])
    state = tmp_path / ".specs"
    run_spec(folder, state, None, times=10)
    found = _analyse(run_cli, folder, state)
    promote = found["promote-backup:1.1"]
    assert promote["evidence"]["backup"]["method"] == "backup_2"
    code, _out, err = run_cli("insights", folder, "--state-dir", state, "--apply",
                              promote["id"])
    assert code == 0, err
    step = load_spec(folder).require().tasks[0].steps[0]
    assert step.command == "true"
    assert [(b.id, b.command, b.trigger_condition) for b in step.backups] == [
        (1, "exit 3", "primary_failure"), (2, "exit 4", "backup_1_failure")]
    assert step.backups[1].description == "the first backup"
    assert step.backups[0].description.startswith("the former primary method")
    results = run_spec(folder, state, None, times=1)
    assert results[0].status == "completed"
    first = next(e for e in ev.read_events(results[0].run_dir / "events.jsonl")
                 if isinstance(e, ev.AttemptEnded))
    assert (first.method, first.outcome) == ("primary", "success")


def test_insights_cli_text_and_bad_input(tmp_path: Path, run_cli: RunCli) -> None:
    folder = write_spec(tmp_path, "text", [("Work", [S(flaky("bad", 0.0))])])
    state = tmp_path / ".specs"
    code, out, err = run_cli("insights", folder, "--state-dir", state)
    assert code == 0 and "0 runs counted" in out and "no suggestion" in out
    run_spec(folder, state, None, times=6)
    code, out, err = run_cli("insights", folder, "--state-dir", state)
    assert code == 0, err
    assert "[redesign-step] step 1.1" in out and "failed: 6/6 = 100% (95 % CI 61%-100%)" in out
    code, out, err = run_cli("insights", "--state-dir", state, "--json")
    assert code == 0 and json.loads(out)["descriptor"] is None
    code, _out, err = run_cli("insights", tmp_path / "missing", "--state-dir", state)
    assert code == 2 and "path not found" in err
    code, _out, err = run_cli("insights", "--state-dir", state, "--diff", "x")
    assert code == 2 and "need the spec's PATH" in err
    code, _out, err = run_cli("insights", folder, "--state-dir", state, "--since", "soon")
    assert code == 2 and "is not a date" in err
