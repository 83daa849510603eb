"""The progress file: the document drawn from a hand-written run, and its throttled writer."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from record_scenario import DOC, Script, index_of, make_spec, replay, scenario
from specs import atomic
from specs import events as ev
from specs.atomic import (
    dumps,
    dumps_bytes,
    gc_paused,
    write_atomic,
    write_bytes_atomic,
    write_text_atomic,
)
from specs.record import progress
from specs.record.progress import ProgressWriter, progress_document


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    spec = make_spec()
    return progress_document(spec, replay(spec, scenario()))


def step(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    return next(s for t in doc["tasks"] for s in t["steps"] if s["ref"] == ref)


def test_header_of_a_finished_run(doc: dict[str, Any]) -> None:
    assert doc["run_id"] == "run_1"
    assert doc["descriptor"] == "demo"
    assert doc["spec_files"] == {"parameters": "parameters_demo.toml"}
    assert doc["status"] == "completed"
    assert doc["execution_mode"] == "dynamic"
    assert doc["mode_selected_by"] == "default"
    assert doc["mode_selection_timestamp"] == "2026-03-01T10:15:02.000Z"
    assert doc["start_time"] == "2026-03-01T10:15:00.000Z"
    assert doc["end_time"] == "2026-03-01T10:15:48.000Z"
    assert (doc["current_task"], doc["current_step"]) == (None, None)
    assert (doc["step_status"], doc["method_used"]) == ("skipped", None)  # 2.2 moved last
    assert (doc["total_tasks"], doc["total_steps"]) == (2, 5)
    assert doc["validation"] == {"status": "WARN", "errors": [], "warnings": ["Art. VI: ratio"]}
    assert doc["goal_achievement_status"] == "ACHIEVED"
    assert doc["run_complete"] is True


def test_tasks(doc: dict[str, Any]) -> None:
    first, second = doc["tasks"]
    assert (first["task_id"], first["ref"], first["status"]) == (1, "1", "completed_with_failures")
    assert first["summary"] == {"steps_succeeded": 2, "steps_failed": 1, "steps_skipped": 0,
                                "retries": 2, "backups_used": 1, "mode_switches": 2}
    assert first["notepad_update"] == {"timestamp": "2026-03-01T10:15:31.000Z",
                                       "insights_captured": 1, "technical_notes": 1,
                                       "ideas": 1, "human_observations": 0}
    assert second["status"] == "completed"
    assert second["summary"]["steps_skipped"] == 1
    assert [s["step_id"] for s in second["steps"]] == [1, 2]


def test_first_attempt_success(doc: dict[str, Any]) -> None:
    record = step(doc, "1.1")
    assert record["status"] == "completed"
    assert (record["method_used"], record["retry_count"], record["backup_attempts"]) == (
        "primary", 0, [])
    assert [(a["method"], a["attempt"], a["outcome"]) for a in record["attempts"]] == [
        ("primary", 1, "success")]
    assert record["expected_output_match"] is True
    assert record["consecutive_failure_count"] == 0


def test_primary_fails_twice_then_backup_wins(doc: dict[str, Any]) -> None:
    record = step(doc, "1.2")
    assert record["status"] == "completed"
    assert (record["method_used"], record["retry_count"], record["backup_attempts"]) == (
        "backup_1", 1, [1])
    assert [(a["method"], a["attempt"], a["outcome"], a["failure_reason"])
            for a in record["attempts"]] == [
        ("primary", 1, "failure", "exit code 1"), ("primary", 2, "failure", "exit code 1"),
        ("backup_1", 1, "success", None)]
    assert record["attempts"][0]["exit_code"] == 1
    assert record["primary_failure_reason"] == "exit code 1 after 2 attempts"
    assert record["backup_justification"] == "the cached export holds the same rows"
    assert record["backup_trigger"] == "primary_failure"
    assert record["prior_step_dependencies"] == ["1.1"]
    assert record["output_summary"] == "120 rows"


def test_non_critical_failure(doc: dict[str, Any]) -> None:
    record = step(doc, "1.3")
    assert (record["status"], record["critical_flag"], record["method_used"]) == (
        "failed", False, None)
    assert record["attempts"][0]["transient"] is True
    assert record["retry_count"] == 1
    assert record["consecutive_failure_count"] == 1
    assert record["message"] == "enrichment failed; continuing"


def test_skipped_step(doc: dict[str, Any]) -> None:
    record = step(doc, "2.2")
    assert (record["status"], record["skip_reason"], record["attempts"]) == (
        "skipped", "condition_false", [])


def test_resume_drops_the_interrupted_attempt(doc: dict[str, Any]) -> None:
    record = step(doc, "2.1")
    assert [(a["method"], a["attempt"]) for a in record["attempts"]] == [("primary", 1)]
    assert record["attempts"][0]["started_at"] == "2026-03-01T10:15:41.000Z"
    assert record["method_used"] == "human_guided"
    assert doc["resumes"] == [
        {"at": "2026-03-01T10:15:36.000Z", "interrupted_attempts": []},
        {"at": "2026-03-01T10:15:40.000Z", "interrupted_attempts": ["2.1:primary:1"]}]


def test_gates_escalations_and_mode_switches(doc: dict[str, Any]) -> None:
    gates = {g["gate"]: g for g in doc["human_interactions"]}
    assert gates["g1"]["kind"] == "escalation"
    assert (gates["g1"]["response"], gates["g1"]["by"]) == ("approve", "user")
    assert gates["g2"] == {
        "gate": "g2", "kind": "before_step", "step": "2.1", "prompt": "Run 2.1?",
        "options": ["approve", "guidance", "skip", "abort"], "response": "guidance",
        "by": "cli", "guidance": "use the Q3 template",
        "requested_at": "2026-03-01T10:15:34.000Z",
        "answered_at": "2026-03-01T10:15:37.000Z", "closed": True}
    assert [e["reasons"] for e in doc["escalations"]] == [["consecutive_failures"]]
    assert [(m["from"], m["to"]) for m in doc["mode_switches"]] == [
        ("dynamic", "collaborative"), ("collaborative", "dynamic")]


def test_execution_summary(doc: dict[str, Any]) -> None:
    assert doc["execution_summary"] == {
        "total_tasks": 2, "tasks_attempted": 2, "tasks_completed": 2, "total_steps": 5,
        "steps_succeeded": 3, "steps_failed": 1, "steps_skipped": 1, "total_retries": 2,
        "backups_used": {"backup_1": 1}, "critical_errors": [], "mode_switches": 2,
        "escalations": 1, "human_interactions": 2, "propagation_events": 0,
        "runtime_duration_s": 48.0, "final_consecutive_failure_count": 0}


def test_compliance_verification_and_completion(doc: dict[str, Any]) -> None:
    compliance = doc["constitutional_compliance"]
    assert [v["article"] for v in compliance["violations_detected"]] == ["VI"]
    assert compliance["violations_by_severity"] == {"critical": 0, "warning": 1}
    assert compliance["compliance_score"] == 98
    check = doc["verification"]
    assert (check["status"], check["all_tasks_terminal"]) == ("PASS", True)
    assert (check["skipped_steps"], check["failed_steps"]) == (["2.2"], ["1.3"])
    assert check["unresolved_critical_failures"] == []
    assert doc["completion_verification"] == {
        "primary_deliverable_exists": True, "verification_passed": True,
        "overall_status": "PASS", "goal_achievement_status": "ACHIEVED", "gaps": [],
        "timestamp": "2026-03-01T10:15:47.000Z"}


def test_post_execution_analysis(doc: dict[str, Any]) -> None:
    post = doc["post_execution_analysis"]
    patterns = post["failure_patterns"]
    assert [(s["ref"], s["failure_count"]) for s in patterns["steps_that_frequently_fail"]] \
        == [("1.2", 2), ("1.3", 2)]
    assert patterns["overall_failure_rate"] == 0.25
    assert patterns["backup_success_rate"] == 1.0
    assert patterns["most_successful_backups"][0]["backup_description"] == \
        "Copy the cached export"
    assert post["mode_escalation_analysis"]["escalation_triggers"] == {
        "consecutive_failures": 1, "backup_depletion": 0, "confidence_degradation": 0,
        "critical_failure": 0}
    assert post["recommendations"] == [
        "Promote backup_1 of step 1.2 to the primary method: it succeeded in 1 of 1 uses "
        "(Copy the cached export)"]


def test_snapshots_during_the_run() -> None:
    spec, events = make_spec(), scenario()
    mid = progress_document(spec, replay(spec, events, index_of(
        events, "attempt-started", step="1.2", method="backup_1")))
    assert (mid["status"], mid["current_task"], mid["current_step"]) == ("running", "1", "1.2")
    assert (mid["step_status"], mid["method_used"]) == ("started", "backup_1")
    attempts = step(mid, "1.2")["attempts"]  # the running attempt counts, without an end
    assert [(a["method"], a["ended_at"] is None, a["outcome"]) for a in attempts] == [
        ("primary", False, "failure"), ("primary", False, "failure"), ("backup_1", True, None)]
    assert (mid["run_complete"], mid["verification"]["status"]) == (False, None)
    assert mid["goal_achievement_status"] is None
    assert step(mid, "2.1")["status"] == "pending"
    paused = progress_document(spec, replay(spec, events, index_of(events, "run-paused")))
    assert paused["status"] == "awaiting_human"
    assert paused["human_interactions"][-1]["response"] is None


def test_deterministic() -> None:
    spec, events = make_spec(), scenario()
    first = progress_document(spec, replay(spec, events))
    time.sleep(0.01)
    second = progress_document(make_spec(), replay(make_spec(), events))
    assert first == second
    assert json.dumps(first, sort_keys=False) == json.dumps(second, sort_keys=False)


def test_spec_files_given_win() -> None:
    spec = make_spec()
    doc = progress_document(spec, replay(spec, scenario()), spec_files={"spec": "spec_demo.md"})
    assert doc["spec_files"] == {"spec": "spec_demo.md"}


def _violating_run() -> list[ev.Event]:
    s = Script()
    s.add(ev.RunOpened, run_id="r2", descriptor="demo", spec={}, options={}, totals={})
    s.add(ev.TaskStarted, task="1")
    s.add(ev.StepStarted, step="1.1", mode="dynamic", critical=True)
    s.attempt("1.1", "primary", 1, "failure", failure_reason="boom")
    s.add(ev.StepEnded, step="1.1", status="failed")
    s.add(ev.StepStarted, step="1.2", mode="dynamic", critical=True,
          error_propagation_decision="continue_with_warning")
    s.add(ev.BackupTriggered, step="1.2", backup=1, trigger="primary_failure",
          justification="")
    s.attempt("1.2", "backup_1", 1, "success")
    s.add(ev.StepEnded, step="1.2", status="completed", method_used="backup_1")
    s.add(ev.RunEnded, status="halted", goal_achievement_status="NOT ACHIEVED")
    return s.events


def test_runtime_violations_and_a_halted_run() -> None:
    spec = make_spec()
    doc = progress_document(spec, replay(spec, _violating_run()))
    found = doc["constitutional_compliance"]["violations_detected"]
    assert [(v["article"], v["ref"], v["severity"]) for v in found] == [
        ("IX", "1.1", "critical"), ("XI-method", "1.2", "warning")]
    assert "without logged failures of primary" in found[1]["description"]
    assert doc["constitutional_compliance"]["compliance_score"] == 88
    assert doc["status"] == "halted"
    assert doc["run_complete"] is True
    assert doc["goal_achievement_status"] == "NOT_ACHIEVED"
    assert doc["execution_summary"]["critical_errors"] == [
        {"task_id": 1, "step_id": 1, "ref": "1.1", "resolved": False}]
    assert doc["execution_summary"]["propagation_events"] == 1
    check = doc["verification"]
    assert check["status"] == "FAIL"
    assert check["unresolved_critical_failures"] == ["1.1"]
    assert "unresolved_critical_failure" in check["partial_completion_reasons"]
    assert check["pending_steps"] == ["1.3", "2.1", "2.2"]


def test_statuses_are_written_canonically() -> None:
    s = Script()
    s.add(ev.RunOpened, run_id="r3", descriptor="demo", spec={}, options={}, totals={})
    s.add(ev.TaskStarted, task="1")
    s.add(ev.TaskEnded, task="1", status="complete")
    s.add(ev.RunEnded, status="completed_enhanced", goal_achievement_status="EXCEEDED")
    spec = make_spec()
    doc = progress_document(spec, replay(spec, s.events))
    assert (doc["status"], doc["tasks"][0]["status"], doc["goal_achievement_status"]) == (
        "completed", "completed", "ACHIEVED")
    s.events[-1] = ev.RunEnded(seq=4, ts=s.events[-1].ts, status="exploded")
    assert progress_document(spec, replay(spec, s.events))["status"] == "failed"


def test_task_ids_that_are_not_ints() -> None:
    doc = {**DOC, "tasks": [{**DOC["tasks"][0], "speclet": 2}]}
    spec = make_spec(doc)
    out = progress_document(spec, replay(spec, []))
    assert (out["tasks"][0]["task_id"], out["tasks"][0]["ref"]) == ("2.1", "2.1")
    assert out["status"] == "initializing"


# -- writing -------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_writer_throttles_and_always_writes_at_key_events(tmp_path: Path) -> None:
    spec, events = make_spec(), scenario()
    clock = FakeClock()
    path = tmp_path / "progress_demo.json"
    writer = ProgressWriter(spec, path, interval=0.5, clock=clock)
    state = replay(spec, [])
    forced = 0
    for event in events:
        state.apply(event)
        writer(event, state)  # the clock never moves: only the forced ones write
        forced += event.name in ProgressWriter.ALWAYS
    assert forced and writer.writes == forced
    assert json.loads(path.read_text(encoding="utf-8")) == progress_document(spec, state)
    clock.now = 0.4
    writer(events[0], state)
    assert writer.writes == forced
    clock.now = 1.0
    writer(events[0], state)
    assert writer.writes == 1 + forced
    writer.flush()
    assert writer.writes == 2 + forced


def test_writer_first_write_waits_one_interval(tmp_path: Path) -> None:
    """A run shorter than the interval writes its document once (at the end), not also at
    its start; a longer one writes as soon as an interval has passed."""
    spec = make_spec()
    state = started(spec)
    clock = FakeClock()
    path = tmp_path / "p.json"
    writer = ProgressWriter(spec, path, interval=0.5, clock=clock)
    event = ev.AttemptStarted(step="1.1", method="primary", attempt=1)
    writer(event, state)
    clock.now = 0.49
    writer(event, state)
    assert writer.writes == 0 and not path.exists()
    clock.now = 0.5
    writer(event, state)
    writer.wait()
    assert writer.writes == 1 and path.exists()


def started(spec: Any) -> Any:
    """A state whose run has started (the writers write nothing before mode-selected)."""
    state = replay(spec, [])
    state.apply(ev.ModeSelected(mode="dynamic", selected_by="default",
                                strategy="collaborative_review", ts="2026-01-01T00:00:00.000Z"))
    return state


def test_writer_writes_nothing_for_a_run_that_never_started(tmp_path: Path) -> None:
    spec = make_spec()
    writer = ProgressWriter(spec, tmp_path / "p.json")
    state = replay(spec, [])
    writer(ev.ValidationSummary(status="FAIL", errors=["x"]), state)
    writer(ev.RunEnded(status="halted_validation"), state)
    assert writer.writes == 0 and not (tmp_path / "p.json").exists()


def test_writer_keeps_a_progress_file_it_did_not_write(tmp_path: Path) -> None:
    spec = make_spec()
    original = '{"run_id": "run_20251103_001", "status": "completed"}\n'
    (tmp_path / "p.json").write_text(original)
    writer = ProgressWriter(spec, tmp_path / "p.json")
    state = started(spec)
    writer(ev.RunEnded(status="completed"), state)
    writer(ev.RunEnded(status="completed"), state)
    assert (tmp_path / "p.before-specs.json").read_text() == original
    assert json.loads((tmp_path / "p.json").read_text())["generated_by"] == "specs"
    # a second run finds its own kind of file there: no new copy
    (tmp_path / "p.before-specs.json").unlink()
    ProgressWriter(spec, tmp_path / "p.json")(ev.RunEnded(status="completed"), state)
    assert not (tmp_path / "p.before-specs.json").exists()


def test_writer_backs_off_when_writes_are_slow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec()
    state = started(spec)
    clock = FakeClock()
    writer = ProgressWriter(spec, tmp_path / "p.json", interval=0.5, clock=clock)

    real = progress.progress_document

    def slow_document(*args: Any, **keys: Any) -> dict[str, Any]:
        clock.now += 1.0  # building the document took a second
        return real(*args, **keys)

    monkeypatch.setattr("specs.record.progress.progress_document", slow_document)
    event = ev.AttemptStarted(step="1.1", method="primary", attempt=1)
    writer(event, state)  # the first event starts the clock of the first write
    clock.now = 0.5
    writer(event, state)
    assert writer.writes == 1  # the clock now reads 1.5
    clock.now = 10.4  # writes may take at most 10 % of the time: wait 9 s after a 1 s write
    writer(event, state)
    assert writer.writes == 1
    clock.now = 10.5
    writer(event, state)
    assert writer.writes == 2
    writer(ev.RunEnded(status="completed"), state)  # forced writes do not wait
    assert writer.writes == 3


def test_writer_between_writes_only_counts_time(tmp_path: Path) -> None:
    spec = make_spec()
    state = started(spec)
    writer = ProgressWriter(spec, tmp_path / "p.json", interval=3600)
    event = ev.AttemptStarted(step="1.1", method="primary", attempt=1)
    for _ in range(1_000):
        writer(event, state)
    assert writer.writes == 0  # within the first interval
    writer.flush()
    assert writer.writes == 1


def test_flush_before_any_event_does_nothing(tmp_path: Path) -> None:
    writer = ProgressWriter(make_spec(), tmp_path / "p.json")
    writer.flush()
    assert writer.writes == 0 and not (tmp_path / "p.json").exists()


def test_write_atomic_goes_through_a_temp_file_in_the_same_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "progress_demo.json"
    write_atomic(target, {"status": "running"})
    seen: list[tuple[Path, Any]] = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append((Path(src), json.loads(Path(src).read_text(encoding="utf-8"))))
        assert json.loads(Path(dst).read_text(encoding="utf-8")) == {"status": "running"}
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(target, {"status": "completed", "note": "déjà"})
    assert len(seen) == 1
    assert seen[0][0].parent == tmp_path and seen[0][0] != target
    assert seen[0][1] == {"status": "completed", "note": "déjà"}
    text = target.read_text(encoding="utf-8")
    assert "déjà" in text and text.startswith('{\n  "status"')
    assert os.listdir(tmp_path) == ["progress_demo.json"]


def test_a_failed_replace_keeps_the_old_file_and_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "progress_demo.json"
    write_atomic(target, {"status": "running"})

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, {"status": "completed"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"status": "running"}
    assert os.listdir(tmp_path) == ["progress_demo.json"]


STEP_KEYS = ["step_id", "ref", "description", "status", "mode", "critical_flag", "method_used",
             "retry_count", "backup_attempts", "attempts", "expected_output_match",
             "primary_failure_reason", "backup_justification", "backup_trigger",
             "prior_step_dependencies", "error_propagation_decision",
             "consecutive_failure_count", "timestamp_start", "timestamp_end", "output_summary",
             "message", "skip_reason", "resolved", "execution_id", "parallel_group",
             "thread_id", "launched_at", "completed_at", "execution_time_ms",
             "parallel_execution", "dependencies_satisfied"]


def test_step_records_keep_their_key_order(doc: dict[str, Any]) -> None:
    for ref in ("1.1", "1.2", "2.2"):  # plain, with a backup's justification, never started
        assert list(step(doc, ref)) == STEP_KEYS


def test_a_steps_second_backup_note_and_llm_usage_go_in_their_places() -> None:
    spec = make_spec()
    events = scenario()
    at = index_of(events, "step-ended", step="1.2")
    more = Script()
    more.clock = 100
    more.add(ev.BackupTriggered, step="1.2", backup=2, trigger="backup_1_failure",
             justification="second try",
             failure_reasons={"primary": "exit code 1", "backup_1": "no cache"})
    more.add(ev.LlmCall, step="1.2", method="backup_2", attempt=1, turn=1, model="m",
             usage={"input_tokens": 10, "output_tokens": 5}, cost_usd=0.0012345678)
    more.add(ev.NotepadUpdated, task="1", step="1.2", insights=["one"], ideas=["two"])
    state = replay(spec, events[:at] + more.events + events[at:])
    record = step(progress_document(spec, state), "1.2")
    justification = STEP_KEYS.index("primary_failure_reason")
    extras = STEP_KEYS.index("execution_id")
    assert list(record) == [*STEP_KEYS[:justification + 1], "backup_1_failure_reason",
                            *STEP_KEYS[justification + 1:extras], "notepad_update",
                            "llm_usage", *STEP_KEYS[extras:]]
    assert record["primary_failure_reason"] == "exit code 1"
    assert record["backup_1_failure_reason"] == "no cache"
    assert (record["backup_justification"], record["backup_trigger"]) == (
        "second try", "backup_1_failure")
    assert record["notepad_update"]["insights_captured"] == 1
    assert record["llm_usage"]["cost_usd"] == 0.001235
    assert record["execution_id"] == "run_1:1.2" and record["thread_id"] == 1


def test_the_writer_pauses_the_garbage_collector_only_while_it_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec()
    state = replay(spec, scenario())
    seen: list[bool] = []
    real = write_bytes_atomic

    def spy(path: Path, data: bytes) -> None:
        seen.append(gc.isenabled())
        real(path, data)

    monkeypatch.setattr("specs.atomic.write_bytes_atomic", spy)
    assert gc.isenabled()
    ProgressWriter(spec, tmp_path / "p.json").flush(state)
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:  # a caller's choice is kept
        ProgressWriter(spec, tmp_path / "p.json").flush(state)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_paused_restores_the_collector_after_an_error() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_dumps_handles_keys_that_are_not_strings(tmp_path: Path) -> None:
    data = {"a": {1: "one", "b": [1.5, None]}, "é": "déjà"}
    text = dumps(data)
    assert json.loads(text) == {"a": {"1": "one", "b": [1.5, None]}, "é": "déjà"}
    assert text.endswith("}\n") and text.startswith('{\n  "a": {\n    "1"')
    assert dumps_bytes(data) == text.encode()
    write_atomic(tmp_path / "x.json", data)
    assert (tmp_path / "x.json").read_bytes() == text.encode()


def test_text_and_bytes_writes_give_the_same_file(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "a.md", "line one\nligne deux é\n")
    write_bytes_atomic(tmp_path / "b.md", "line one\nligne deux é\n".encode())
    assert (tmp_path / "a.md").read_bytes() == (tmp_path / "b.md").read_bytes()
    assert (tmp_path / "a.md").read_text(encoding="utf-8") == "line one\nligne deux é\n"
    assert oct((tmp_path / "a.md").stat().st_mode & 0o777) == "0o644"


def test_throttled_writes_go_to_a_helper_thread_forced_ones_are_done_on_return(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec()
    state = started(spec)
    clock = FakeClock()
    path = tmp_path / "p.json"
    writer = ProgressWriter(spec, path, interval=0.5, clock=clock)
    threads: list[str] = []
    real = atomic.write_bytes_atomic

    def recording(target: Path, data: bytes) -> None:
        threads.append(threading.current_thread().name)
        real(target, data)

    monkeypatch.setattr("specs.atomic.write_bytes_atomic", recording)
    event = ev.AttemptStarted(step="1.1", method="primary", attempt=1)
    writer(event, state)
    clock.now = 1.0
    writer(event, state)  # throttled: the helper writes it
    writer.wait()
    assert threads == ["write p.json"]
    writer(ev.RunEnded(status="completed"), state)  # forced: on disk when the call returns
    assert threads[-1] == threading.current_thread().name
    assert json.loads(path.read_text())["generated_by"] == "specs"


def test_atomic_file_the_newest_data_wins_whatever_the_threads_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = atomic.write_bytes_atomic

    def slow(target: Path, data: bytes) -> None:  # a slow disk
        time.sleep(0.02)
        real(target, data)

    monkeypatch.setattr("specs.atomic.write_bytes_atomic", slow)
    target = tmp_path / "f.json"
    for round_ in range(5):
        handle = atomic.AtomicFile(target)
        handle.later(b"older\n")
        if round_ % 2:
            time.sleep(0.005)  # the helper is writing the older data now
        handle.later(b"old\n")
        handle.now(b"newest\n")
        handle.wait()
        assert target.read_bytes() == b"newest\n"
    handle.later(b"a\n")
    handle.later(b"b\n")
    handle.wait()
    assert target.read_bytes() == b"b\n"


def test_atomic_file_reports_a_failed_helper_write_at_the_next_call(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    handle = atomic.AtomicFile(tmp_path / "a-file" / "p.json")  # its folder is a file
    handle.later(b"data\n")
    with pytest.raises(OSError):
        handle.wait()
    handle.wait()  # reported once


def test_atomic_file_helper_thread_ends_when_idle(tmp_path: Path) -> None:
    handle = atomic.AtomicFile(tmp_path / "p.json")
    handle.IDLE_S = 0.01
    handle.later(b"data\n")
    handle.wait()
    deadline = time.monotonic() + 5
    while any(t.name == "write p.json" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the helper thread never ended"
        time.sleep(0.01)
    handle.later(b"again\n")  # a new helper starts
    handle.wait()
    assert (tmp_path / "p.json").read_bytes() == b"again\n"


def _kept_and_fresh(spec: Any, events: list[ev.Event]) -> int:
    """Replay ``events``; after each, the document built with the records kept since the
    first event must be the one built from scratch, byte for byte. Returns how many records
    were used again."""
    from specs.engine.state import RunState

    state, records = RunState(spec), {}  # type: ignore[var-annotated]
    reused = 0
    for event in events:
        state.apply(event)
        before = {ref: id(kept[1]) for ref, kept in records.items()}
        kept = progress_document(spec, state, records=records)
        assert dumps_bytes(kept) == dumps_bytes(progress_document(spec, state)), event
        reused += sum(id(records[ref][1]) == before[ref] for ref in before if ref in records)
    return reused


def _changed_after_the_end() -> list[ev.Event]:
    """Finished steps whose records change later: a failure resolved by a human, a note
    about a step after it ended, a step reopened and run again (in the same millisecond as
    its first end), and a second step that overlaps a finished one."""
    s = Script()
    s.add(ev.RunOpened, run_id="r3", descriptor="demo", spec={}, options={}, totals={})
    s.add(ev.TaskStarted, task="1")
    s.add(ev.StepStarted, step="1.1", mode="dynamic", critical=True)
    s.attempt("1.1", "primary", 1, "failure", failure_reason="boom")
    s.add(ev.StepEnded, step="1.1", status="failed", message="every method failed")
    s.add(ev.FailureResolved, step="1.1", how="accept_failure")
    s.add(ev.NotepadUpdated, task="1", step="1.1", insights=["1.1 failed: boom"])
    s.add(ev.NotepadUpdated, task="1", step="1.1", insights=["1.1 failed", "accepted"])
    s.clock -= 3  # the next events share a timestamp with the step's first end
    s.add(ev.StepReopened, step="1.1", reason="human: retry")
    s.attempt("1.1", "primary", 1, "failure", failure_reason="boom again")
    for _ in range(2):  # (the second time, nothing but its attempts tells the ends apart)
        s.clock -= 2
        s.add(ev.StepEnded, step="1.1", status="failed", message="every method failed")
        s.add(ev.StepReopened, step="1.1", reason="human: retry")
        s.attempt("1.1", "primary", 1, "failure", failure_reason="boom again")
    s.clock -= 2
    s.add(ev.StepEnded, step="1.1", status="failed", message="every method failed")
    s.clock += 5
    s.add(ev.StepStarted, step="1.2", mode="dynamic", critical=True)
    s.add(ev.StepStarted, step="1.3", mode="dynamic", critical=False)
    s.attempt("1.2", "primary", 1, "success")
    s.add(ev.StepEnded, step="1.2", status="completed", method_used="primary")
    s.attempt("1.3", "primary", 1, "success")
    s.add(ev.StepEnded, step="1.3", status="completed", method_used="primary")
    s.add(ev.RunEnded, status="completed", goal_achievement_status="ACHIEVED")
    return s.events


def test_kept_step_records_give_the_same_document_at_every_event() -> None:
    """The writer keeps finished steps' records between writes. After every event of the
    recorded scenario (a backup winning, a transient retry, an escalation, gates, a pause,
    resumes that drop an open attempt), of a run with violations and of one whose finished
    steps change later, the document built with them is the one built from scratch."""
    spec = make_spec()
    assert _kept_and_fresh(spec, scenario()) > 0
    assert _kept_and_fresh(spec, _violating_run()) > 0
    assert _kept_and_fresh(spec, _changed_after_the_end()) > 0


@pytest.mark.parametrize("shape", ["mixed-sequential", "mixed-parallel", "transitions"])
def test_kept_step_records_over_real_runs(tmp_path: Path, shape: str) -> None:
    """The same over real runs: retries with backoff, backups, exceptions, escalation
    triggers, trigger rules, conditions, overlapping steps; and task loops
    (``[[transitions]]``), where finished steps go back to pending and run again."""
    from specs.spec.load import load_spec
    from test_engine_flow import with_transition
    from test_engine_inline import MIXED_PLAN, make, mixed_steps, run
    from test_engine_rules import SpecDir
    from test_engine_rules import step as rule_step

    if shape == "transitions":
        root = tmp_path / "loops"
        root.mkdir()
        spec_dir = SpecDir(root, [[rule_step(1)], [rule_step(1)], [rule_step(1)]])
        with_transition(spec_dir, from_task=2, to_task=1, max_iterations=2)
        events = spec_dir.run().events
    else:
        keys: dict[str, Any] = {"mode": "dynamic", "plan": MIXED_PLAN,
                                "execution": {"escalation_triggers": ["needs_review"]}}
        if shape == "mixed-parallel":
            keys["execution"] = {**keys["execution"], "parallel_enabled": True,
                                 "max_parallel_steps": 4}
        spec_dir = make(tmp_path, "mixed", [mixed_steps()], **keys,
                        knowledge_capture={"enabled": True, "update_frequency": "per_step"})
        events = run(spec_dir, inline=True)[1]
    spec = load_spec(spec_dir.folder, project=False).spec
    assert _kept_and_fresh(spec, events) > 0


# -- the writer's timer, in a real run -----------------------------------------------------------

SLEEPY = """\
[meta]
goal_descriptor = "sleepy"

[goal]
description = "Wait a few seconds"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Wait"

[[tasks.steps]]
id = 1
description = "Sleep two seconds"
expected_output = "nothing"
critical_flag = false
command = "sleep 2"
"""


def test_a_long_step_shows_in_the_progress_file_while_it_runs(
        tmp_path: Path, write_spec: Any) -> None:
    """A step with no event for 2 s: the file exists within about a second of the start,
    shows the step running with its elapsed time growing, and nothing is written after the
    run's final document."""
    from specs.engine.runner import Runner, RunOptions
    from specs.spec.load import load_spec

    loaded = load_spec(write_spec(tmp_path, SLEEPY, name="sleepy"))
    spec = loaded.require()
    writer = ProgressWriter(spec, loaded.progress_path)
    runner = Runner(loaded, RunOptions(state_dir=tmp_path / ".specs", no_input=True),
                    subscribers=[writer])  # type: ignore[list-item]
    seen: list[tuple[float, dict[str, Any]]] = []

    async def watch(start: float) -> None:
        while True:
            if loaded.progress_path.exists():
                seen.append((time.monotonic() - start,
                             json.loads(loaded.progress_path.read_text(encoding="utf-8"))))
            await asyncio.sleep(0.05)

    async def main() -> tuple[int, bytes]:
        watcher = asyncio.create_task(watch(time.monotonic()))
        result = await runner.start()
        watcher.cancel()
        final = (writer.writes, loaded.progress_path.read_bytes())
        await asyncio.sleep(3 * writer.interval)  # the timer would have fired by now
        assert result.status == "completed"
        return final

    writes, final = asyncio.run(main())
    assert seen and seen[0][0] < 1.5, "no progress file in the run's first second"
    running = [doc for _, doc in seen if doc["running_steps"]]
    assert running, "the running step never showed"
    first, last = running[0], running[-1]
    assert (first["status"], first["current_step"], first["step_status"]) == (
        "running", "1.1", "started")
    assert [s["ref"] for s in first["running_steps"]] == ["1.1"]
    assert first["running_steps"][0]["method"] == "primary"
    assert last["running_steps"][0]["elapsed_s"] > first["running_steps"][0]["elapsed_s"]
    assert last["snapshot_at"] > first["snapshot_at"]
    assert (writer.writes, loaded.progress_path.read_bytes()) == (writes, final)
    done = json.loads(final)
    assert done["status"] == "completed" and done["running_steps"] == []
    assert done["snapshot_at"] == done["end_time"]


# -- the goal status of a run that stopped before its end --------------------------------------


def _stopped_run(end: str, *, critical_fails: bool) -> list[ev.Event]:
    """Task 1 (1.1 completed or failed, 1.2 completed, 1.3 failed) and 2.1 completed, then
    the run ends ``end`` before 2.2 ran, with no goal status in its end event."""
    s = Script()
    s.add(ev.RunOpened, run_id="r9", descriptor="demo", spec={}, options={}, totals={})
    s.add(ev.ModeSelected, mode="dynamic", selected_by="default",
          strategy="collaborative_review")
    s.add(ev.TaskStarted, task="1")
    for ref, critical, status in (("1.1", True, "failed" if critical_fails else "completed"),
                                  ("1.2", True, "completed"), ("1.3", False, "failed")):
        s.add(ev.StepStarted, step=ref, mode="dynamic", critical=critical)
        s.attempt(ref, "primary", 1, "success" if status == "completed" else "failure")
        s.add(ev.StepEnded, step=ref, status=status)
    s.add(ev.TaskEnded, task="1", status="completed_with_failures")
    s.add(ev.TaskStarted, task="2")
    s.add(ev.StepStarted, step="2.1", mode="dynamic", critical=True)
    s.attempt("2.1", "primary", 1, "success")
    s.add(ev.StepEnded, step="2.1", status="completed")
    s.add(ev.RunEnded, status=end, reason="stopped by the test")
    return s.events


def test_a_halted_run_has_a_goal_status_as_of_its_halt() -> None:
    spec = make_spec()
    events = _stopped_run("halted", critical_fails=True)
    doc = progress_document(spec, replay(spec, events))
    assert (doc["status"], doc["goal_achievement_status"]) == ("halted", "NOT_ACHIEVED")
    found = doc["completion_verification"]
    assert (found["overall_status"], found["goal_achievement_status"]) == (
        "FAIL", "NOT_ACHIEVED")
    assert found["provisional"] is True and found["checks_run"] is False
    assert found["critical_steps_completed"] is False
    assert found["gaps"] == ["the completion checks did not run: the run stopped before its end",
                             "critical step 1.1 failed", "step 1.3 failed",
                             "step 2.2 did not run"]
    assert found["timestamp"] == events[-1].ts == doc["end_time"]


def test_an_aborted_run_whose_critical_steps_completed_is_partial() -> None:
    spec = make_spec()
    doc = progress_document(spec, replay(spec, _stopped_run("aborted", critical_fails=False)))
    assert (doc["status"], doc["goal_achievement_status"]) == ("aborted", "PARTIAL")
    assert doc["completion_verification"]["critical_steps_completed"] is True


def test_a_paused_run_has_a_goal_status_and_a_resume_takes_it_back() -> None:
    spec, events = make_spec(), scenario()
    paused = progress_document(spec, replay(spec, events, index_of(events, "run-paused")))
    assert paused["status"] == "awaiting_human"
    assert paused["goal_achievement_status"] == "NOT_ACHIEVED"  # critical 2.1 has not run
    assert paused["completion_verification"]["provisional"] is True
    resumed = progress_document(spec, replay(spec, events, index_of(events, "run-resumed")))
    assert resumed["goal_achievement_status"] is None
    assert resumed["completion_verification"] is None


def test_a_run_resumed_after_a_halt_is_running_again_until_its_new_end() -> None:
    spec = make_spec()
    s = Script()
    s.events = _stopped_run("halted", critical_fails=True)
    s.clock = len(s.events)
    s.add(ev.RunResumed, interrupted=[])
    s.add(ev.StepReopened, step="1.1", reason="resumed after a halt")
    s.attempt("1.1", "primary", 2, "success")
    mid = progress_document(spec, replay(spec, s.events))
    assert (mid["status"], mid["end_time"], mid["run_complete"]) == ("resumed", None, False)
    assert mid["goal_achievement_status"] is None and mid["completion_verification"] is None
    assert mid["verification"]["status"] is None
    s.add(ev.StepEnded, step="1.1", status="completed")
    s.add(ev.StepStarted, step="2.2", mode="dynamic", critical=False)
    s.attempt("2.2", "primary", 1, "success")
    s.add(ev.StepEnded, step="2.2", status="completed")
    s.add(ev.RunEnded, status="halted", reason="stopped again")
    end = progress_document(spec, replay(spec, s.events))
    assert (end["end_time"], end["goal_achievement_status"]) == (s.events[-1].ts, "PARTIAL")
