"""``specs history import`` and ``rebuild`` through the real command line: the original
project's progress files (every family of reference §4.1, labelled), and runs made by
``specs run`` in a subprocess, imported into another history."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import RunCli
from history_specs import B, S, write_spec
from specs.history import HistoryStore, import_paths, list_runs, run_detail


def test_every_progress_family_of_the_corpus_is_imported_and_labelled(
        corpus: Path, tmp_path: Path, run_cli: RunCli) -> None:
    code, out, err = run_cli("history", "import", corpus, "--state-dir", tmp_path, "--json")
    assert code == 0, err
    results = json.loads(out)
    files = sorted(corpus.rglob("progress_*.json"))
    assert len(results) == len(files)
    kinds = {Path(r["path"]).name: r["kind"] for r in results}
    assert kinds["progress_podcast.json"] == "progress-F1"
    assert kinds["progress_ecommerce_site.json"] == "progress-F2"
    assert kinds["progress_charity_pos.json"] == "progress-F2"
    assert kinds["progress_speclet_1_discovery.json"] == "progress-F3"
    assert kinds["progress_innovation_dashboard_MASTER.json"] == "progress-F3"
    assert kinds["progress_Troubleshoot.json"] == "progress-F4"
    assert kinds["progress_transaction_v2.json"] == "progress-F5"
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    runs = {r["source_path"]: r for r in list_runs(store)}
    assert {r["source"] for r in runs.values()} == {f"progress-F{n}" for n in range(1, 6)}
    podcast = next(r for p, r in runs.items() if p.endswith("progress_podcast.json"))
    original = json.loads((corpus / "TGACGTCA/spec_podcast/progress_podcast.json").read_text())
    detail = run_detail(store, podcast["run_id"])
    assert podcast["descriptor"] == original["meta"]["descriptor"]
    assert len(detail.steps) == sum(len(t["steps"]) for t in original["tasks"])
    assert detail.attempts == []  # the family records none: none are made up
    first = original["tasks"][0]["steps"][0]
    step = detail.steps[0]
    assert (step["step"], step["description"], step["method_used"], step["critical"]) == (
        f"{original['tasks'][0]['task_id']}.{first['step_id']}", first["description"],
        first["method_used"], first["critical_flag"])
    troubleshoot = next(r for p, r in runs.items() if p.endswith("progress_Troubleshoot.json"))
    t_original = json.loads(Path(troubleshoot["source_path"]).read_text())
    assert len(run_detail(store, troubleshoot["run_id"]).steps) == sum(
        len(t["steps_completed"]) for t in t_original["tasks_completed"])
    f5 = [r for r in results if r["kind"] == "progress-F5"]
    assert all("not an engine run" in r["message"] for r in f5)
    # importing again replaces the rows: no run twice
    again = import_paths(store, [corpus])
    assert len(again) == len(files) and len(list_runs(store)) == len(runs)
    store.close()


def test_files_that_are_no_progress_log_are_skipped_with_the_reason(tmp_path: Path,
                                                                     run_cli: RunCli) -> None:
    (tmp_path / "progress_broken.json").write_text("{not json")
    (tmp_path / "progress_ours.json").write_text(json.dumps({"generated_by": "specs"}))
    (tmp_path / "progress_other.json").write_text(json.dumps({"hello": 1}))
    code, out, err = run_cli("history", "import", tmp_path, "--state-dir", tmp_path / "s")
    assert code == 0, err
    assert "progress_broken.json: skipped: not readable JSON" in out
    assert "progress_ours.json: skipped: written by specs: import its run's events.jsonl" in out
    assert "progress_other.json: skipped: not a progress file of a known family" in out
    assert "imported 0 of 3 files" in out
    code, _out, err = run_cli("history", "import", tmp_path / "nope", "--state-dir", tmp_path)
    assert code == 2 and err.strip().endswith("nope: path not found")


def test_runs_made_by_specs_run_are_imported_into_another_history(
        tmp_path: Path, run_cli: RunCli) -> None:
    folder = write_spec(tmp_path, "cli", [
        ("Work", [S("true", critical=True), S("exit 4", backups=[B("true")]),
                  S("sh -c 'exit 127'", max_retries=2)])])
    here = tmp_path / "machine_a"
    for _ in range(2):
        code, _out, err = run_cli("run", folder, "--yes", "--state-dir", here)
        assert code == 1 and "goal PARTIAL" in err, err  # step 1.3 fails: goal PARTIAL
    events = sorted(here.glob("runs/*/events.jsonl"))
    assert len(events) == 2
    there = tmp_path / "machine_b"
    code, out, err = run_cli("history", "import", *events, "--state-dir", there)
    assert code == 0, err
    assert out.count(": events-import run_") == 2
    code, out, err = run_cli("history", "runs", "--state-dir", there, "--json")
    assert code == 0, err
    runs = json.loads(out)
    assert sorted(r["run_id"] for r in runs) == sorted(p.parent.name for p in events)
    assert {r["source"] for r in runs} == {"events-import"}
    code, out, err = run_cli("history", "show", runs[0]["run_id"], "--state-dir", there,
                             "--json")
    detail = json.loads(out)
    steps = {s["step"]: s for s in detail["steps"]}
    assert steps["1.2"]["method_used"] == "backup_1"
    assert [a["failure_class"] for a in steps["1.3"]["attempts_detail"]] == \
        ["command_not_found"]  # a failure no retry mends is not retried
    code, out, err = run_cli("history", "show", runs[0]["run_id"], "--state-dir", there)
    assert code == 0 and "primary #1: exit_4: exit code 4" in out
    # the same runs, rebuilt where they ran, give the same rows but for the label
    shutil.rmtree(there)
    code, out, err = run_cli("history", "rebuild", "--state-dir", here)
    assert code == 0 and "rebuilt 2 runs" in out
    store = HistoryStore(f"sqlite:///{here / 'history.db'}")
    assert {r["source"] for r in list_runs(store)} == {"events"}
    assert {s["step"]: s["method_used"] for s in run_detail(store, runs[0]["run_id"]).steps}[
        "1.2"] == "backup_1"
    store.close()


def test_history_runs_filters_and_bad_since(tmp_path: Path, run_cli: RunCli) -> None:
    folder = write_spec(tmp_path, "f", [("Work", [S("true", critical=True)])])
    code, _out, err = run_cli("run", folder, "--yes", "--state-dir", tmp_path / "s")
    assert code == 0, err
    code, out, _err = run_cli("history", "rebuild", "--state-dir", tmp_path / "s")
    code, out, _err = run_cli("history", "runs", "--state-dir", tmp_path / "s", "--spec", "f",
                              "--status", "completed", "--since", "1d", "--json")
    assert code == 0 and len(json.loads(out)) == 1
    code, out, _err = run_cli("history", "runs", "--state-dir", tmp_path / "s",
                              "--status", "failed", "--json")
    assert json.loads(out) == []
    code, _out, err = run_cli("history", "runs", "--state-dir", tmp_path / "s", "--since", "x")
    assert code == 2 and err.count("\n") == 1 and "--since 'x' is not a date" in err
