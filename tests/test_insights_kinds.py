"""Each kind of insight, on histories made by really running small specs many times (command
steps that fail at seeded rates: tests/history_specs.py): it appears with enough evidence and
not without, and its statistics equal those computed here, independently, from the runs'
events.jsonl."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from history_specs import B, S, flaky, run_spec, write_spec
from specs import events as ev
from specs.history import HistoryStore
from specs.insights import InsightOptions, Suggestion, analyse, history_analysis

Z = NormalDist().inv_cdf(0.975)


def wilson_here(k: int, n: int) -> list[float]:
    """The Wilson interval from its definition: the p where |p̂ - p| = z sqrt(p(1-p)/n), i.e.
    the roots of (1 + z²/n) p² - (2p̂ + z²/n) p + p̂² = 0."""
    phat = k / n
    a, b, c = 1 + Z * Z / n, -(2 * phat + Z * Z / n), phat * phat
    root = math.sqrt(max(b * b - 4 * a * c, 0.0))
    return [round((-b - root) / (2 * a), 4), round((-b + root) / (2 * a), 4)]


def run_events(state: Path) -> list[list[ev.Event]]:
    """Every run's events, oldest run first (ids within one second do not sort by time)."""
    runs = [list(ev.read_events(p)) for p in state.glob("runs/*/events.jsonl")]
    return sorted(runs, key=lambda run: (run[0].ts, run[0].seq))


def attempts(state: Path, step: str, method: str | None = None) -> list[ev.AttemptEnded]:
    return [e for run in run_events(state) for e in run if isinstance(e, ev.AttemptEnded)
            and e.step == step and (method is None or e.method == method)]


def history(tmp_path: Path, name: str, tasks: list[tuple[str, list[S]]], times: int,
            **kwargs: Any) -> tuple[Path, Path, HistoryStore]:
    folder = write_spec(tmp_path, name, tasks, **kwargs)
    state = tmp_path / ".specs"
    url = f"sqlite:///{state / 'history.db'}"
    run_spec(folder, state, url, times=times)
    return folder, state, HistoryStore(url)


def kinds(store: HistoryStore, folder: Path, kind: str, **options: Any) -> list[Suggestion]:
    report = analyse(store, folder, InsightOptions(**options))
    return [s for s in report.suggestions if s.kind == kind]


def test_promote_backup_with_enough_tries_and_its_statistics(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "promote", [("Fetch", [
        S(flaky("p", 0.3), critical=True, backups=[B(flaky("b", 0.95))])])], times=20)
    found = kinds(store, folder, "promote-backup")
    assert len(found) == 1
    s = found[0]
    primary = attempts(state, "1.1", "primary")
    backup = attempts(state, "1.1", "backup_1")
    p_ok = sum(a.outcome == "success" for a in primary)
    b_ok = sum(a.outcome == "success" for a in backup)
    assert (s.evidence["primary"]["count"], s.evidence["primary"]["of"]) == (p_ok, len(primary))
    assert (s.evidence["backup"]["count"], s.evidence["backup"]["of"]) == (b_ok, len(backup))
    assert s.evidence["primary"]["interval95"] == wilson_here(p_ok, len(primary))
    assert s.evidence["backup"]["interval95"] == wilson_here(b_ok, len(backup))
    assert wilson_here(b_ok, len(backup))[0] > wilson_here(p_ok, len(primary))[1]
    assert len(backup) >= 10 and s.step == "1.1" and s.patch == {
        "op": "promote_backup", "step": "1.1", "backup": 1}
    runs_saved = [run for run in run_events(state) if any(
        isinstance(e, ev.AttemptEnded) and e.method == "backup_1" and e.outcome == "success"
        for e in run)]
    assert s.impact.startswith(f"in {len(runs_saved)} of 20 runs")
    assert set(s.evidence["run_ids"]) <= {run[0].run_id for run in runs_saved}  # type: ignore
    assert s.evidence["last_seen"] == max(a.ts for a in backup)
    # the same spec with fewer tries of the backup: no suggestion; nor with more tries needed
    assert kinds(store, folder, "promote-backup", min_tries=len(backup) + 1) == []


def test_no_promotion_without_enough_tries_or_a_real_difference(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "few", [("Fetch", [
        S(flaky("p", 0.3), critical=True, backups=[B(flaky("b", 0.95))])])], times=8)
    assert len(attempts(state, "1.1", "backup_1")) < 10
    assert kinds(store, folder, "promote-backup") == []
    folder2, state2, store2 = history(tmp_path / "same", "same", [("Fetch", [
        S(flaky("p", 0.5), critical=True, backups=[B(flaky("b", 0.6))])])], times=30)
    assert len(attempts(state2, "1.1", "backup_1")) >= 10
    assert kinds(store2, folder2, "promote-backup") == []


def test_redesign_a_step_that_fails_in_most_runs(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "redesign", [("Work", [
        S("true", critical=True), S(flaky("bad", 0.1), max_retries=1),
        S(flaky("fair", 0.7))])], times=8)
    found = kinds(store, folder, "redesign-step")
    assert [s.step for s in found] == ["1.2"]  # 1.3 fails in a minority of runs
    ended = [e for run in run_events(state) for e in run
             if isinstance(e, ev.StepEnded) and e.step == "1.2"]
    failed = sum(e.status == "failed" for e in ended)
    assert (found[0].evidence["failed"]["count"], found[0].evidence["failed"]["of"]) == \
        (failed, len(ended))
    assert found[0].evidence["failed"]["interval95"] == wilson_here(failed, len(ended))
    lost = [run for run in run_events(state) if any(
        isinstance(e, ev.StepEnded) and e.step == "1.2" and e.status == "failed" for e in run)]
    assert found[0].evidence["failure_classes"] == {"exit_1": sum(
        isinstance(e, ev.AttemptEnded) and e.step == "1.2" and e.outcome != "success"
        for run in lost for e in run)}
    assert found[0].evidence["reason_clusters"][0]["pattern"] == "exit code <n>"
    assert kinds(store, folder, "redesign-step", min_runs=9) == []


def test_retries_the_smallest_count_that_keeps_95_percent_of_successes(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "retries", [("Work", [
        S("test ! -f DOWN && " + flaky("r", 0.7), max_retries=4)])], times=20)
    assert kinds(store, folder, "retries") == []  # no run spent every retry: nothing to save
    (folder / "DOWN").write_text("")  # a cause no retry fixes, in the last 3 runs
    url = f"sqlite:///{state / 'history.db'}"
    run_spec(folder, state, url, times=3)
    wins = []
    for run in run_events(state):
        first = next((e.attempt for e in run if isinstance(e, ev.AttemptEnded)
                      and e.outcome == "success"), None)
        if first is not None:
            wins.append(first)
    expected = next(r for r in range(5) if sum(w <= r + 1 for w in wins) >= 0.95 * len(wins))
    found = kinds(store, folder, "retries")
    assert expected < 4 and len(found) == 1
    assert found[0].evidence["exhausted_runs"] == 3
    assert found[0].evidence["suggested"] == expected
    assert found[0].evidence["eventual_successes"] == len(wins)
    assert found[0].evidence["success_at_attempt"] == {str(k): wins.count(k)
                                                       for k in sorted(set(wins))}
    assert found[0].patch == {"op": "set", "step": "1.1", "method": "primary",
                              "key": "max_retries", "value": expected}
    assert kinds(store, folder, "retries", min_tries=len(wins) + 1) == []


def test_failure_classes_that_never_recover_on_a_retry(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "noretry", [("Work", [
        S("cat no_such_input.txt", max_retries=2), S(flaky("recovers", 0.5), max_retries=3)])],
        times=4)
    found = kinds(store, folder, "no-retry")
    assert [(s.step, s.evidence["failure_class"]) for s in found] == \
        [("1.1", "missing_file")]
    retried = len(attempts(state, "1.1")) - 4  # every attempt after the first of each run
    assert found[0].evidence["retries"] == retried == 8
    assert found[0].evidence["recovered"]["interval95"] == wilson_here(0, retried)
    assert found[0].patch is not None and found[0].patch["value"] == 0
    assert kinds(store, folder, "no-retry", min_runs=retried + 1) == []


def test_timeouts_from_observed_durations(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "timeouts", [("Work", [
        S("true", extra={"timeout_seconds": 120}), S("true", extra={"timeout_seconds": 3})])],
        times=12)
    found = kinds(store, folder, "timeout")
    assert [s.step for s in found] == ["1.1"]  # 3 s is not 4 times too long
    durations = sorted(a.duration_ms for a in attempts(state, "1.1"))
    p99 = durations[math.ceil(0.99 * len(durations)) - 1]
    assert found[0].evidence["p99_ms"] == round(p99, 1)
    assert found[0].evidence["suggested"] == max(1, math.ceil(1.5 * p99 / 1000))
    assert found[0].patch == {"op": "set", "step": "1.1", "method": "primary",
                              "key": "timeout_seconds", "value": found[0].evidence["suggested"]}
    assert kinds(store, folder, "timeout", min_tries=13) == []


def test_critical_flags_from_what_follows_a_failure_and_from_skips(tmp_path: Path) -> None:
    gate = flaky("a", 0.5) + " && touch ok_a || { rm -f ok_a; exit 1; }"
    folder, state, store = history(tmp_path, "flags", [("Work", [
        S(gate), S("test -f ok_a", critical=True),
        S("true", critical=True, extra={"condition": 'steps["1.2"].status == "skipped"'}),
        S("true", critical=True)])], times=14)
    found = kinds(store, folder, "flag-critical")
    a_failed = [run for run in run_events(state) if any(
        isinstance(e, ev.StepEnded) and e.step == "1.1" and e.status == "failed" for e in run)]
    assert len(a_failed) >= 5
    assert [s.step for s in found] == ["1.1"]
    assert found[0].evidence["followed_by_critical_failure"]["count"] == len(a_failed)
    assert found[0].evidence["critical_steps_failed_after"] == {"1.2": len(a_failed)}
    unflag = kinds(store, folder, "unflag-critical")
    assert [s.step for s in unflag] == ["1.3"]
    assert unflag[0].evidence["skipped"]["count"] == 14
    assert unflag[0].patch is not None and unflag[0].patch["value"] is False
    assert kinds(store, folder, "flag-critical", min_runs=len(a_failed) + 1) == []
    assert kinds(store, folder, "unflag-critical", min_runs=15) == []


def test_a_critical_failure_that_happens_anyway_does_not_flag_the_step(tmp_path: Path) -> None:
    folder, _state, store = history(tmp_path, "noflag", [("Work", [
        S(flaky("a", 0.5)), S("exit 1", critical=True)])], times=12)
    assert kinds(store, folder, "flag-critical") == []


def test_regressions_of_a_steps_duration(tmp_path: Path) -> None:
    state = tmp_path / ".specs"
    url = f"sqlite:///{state / 'history.db'}"
    made = {}
    for name, fast in (("short", 4), ("regress", 6)):
        folder = made[name] = write_spec(tmp_path, name, [("Work", [
            S("sleep $(cat delay)"), S("true"), S("true")])])
        (folder / "delay").write_text("0.01")
        run_spec(folder, state, url, times=fast)
        (folder / "delay").write_text("0.3")
        run_spec(folder, state, url, times=5)
    store = HistoryStore(url)
    assert kinds(store, made["short"], "regression") == []  # a baseline of 4 runs: too short
    found = kinds(store, made["regress"], "regression")
    assert [(s.step, s.evidence["measure"]) for s in found] == [("1.1", "duration")]
    durations = [a.duration_ms for run in run_events(state) for a in run
                 if isinstance(a, ev.AttemptEnded) and a.step == "1.1"
                 and run[0].descriptor == "regress"]  # type: ignore[attr-defined]
    recent, baseline = durations[-5:], durations[:-5]
    assert found[0].evidence["recent_median"] == round(sorted(recent)[2], 6)
    assert found[0].evidence["baseline_p90"] == round(sorted(baseline)[math.ceil(0.9 * 6) - 1],
                                                      6)
    assert found[0].evidence["run_ids"][0] == max(
        (run[0] for run in run_events(state) if run[0].descriptor == "regress"),  # type: ignore
        key=lambda e: e.ts).run_id  # type: ignore[attr-defined]


def test_a_step_that_dominates_its_runs_time(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "dominant", [("Work", [
        S("sleep 0.3"), S("true"), S("true")])], times=5)
    found = kinds(store, folder, "dominant-step")
    assert [(s.step, s.evidence["measure"]) for s in found] == [("1.1", "duration")]
    shares = []
    for run in run_events(state):
        spent = {e.step: e.duration_ms for e in run if isinstance(e, ev.AttemptEnded)}
        shares.append(spent["1.1"] / sum(spent.values()))
    assert found[0].evidence["median_share"] == round(sorted(shares)[2], 4)
    assert kinds(store, folder, "dominant-step", min_runs=6) == []


def test_templates_recur_across_specs(tmp_path: Path) -> None:
    state = tmp_path / ".specs"
    url = f"sqlite:///{state / 'history.db'}"
    task = [S("true", critical=True, description="Build the package"),
            S("true", description="Publish the package")]
    for i, name in enumerate(("alpha", "beta", "gamma")):
        words = ["Build and publish the release package", "Build then publish release package",
                 "Publish and build the release package"][i]
        other = ["Index the archive", "Translate the manual", "Water the plants"][i]
        folder = write_spec(tmp_path, name, [(words, task), (other, [S("true")])])
        run_spec(folder, state, url)
        store = HistoryStore(url)
        found = kinds(store, folder, "template")
        if i < 2:
            assert found == []  # two specs are not enough
    assert len(found) == 1 and found[0].evidence["support"] == 3
    assert found[0].evidence["specs"] == ["alpha", "beta", "gamma"]
    assert "[[tasks.steps]]" in found[0].evidence["candidate"]
    assert '"Build the package"' in found[0].evidence["candidate"]


def test_outage_runs_are_left_out_and_said_to_be(tmp_path: Path) -> None:
    check = "test ! -f OUTAGE"
    folder = write_spec(tmp_path, "outage", [("Work", [S(check), S(check), S(check),
                                                       S(check), S("exit 1")])])
    state = tmp_path / ".specs"
    url = f"sqlite:///{state / 'history.db'}"
    normal = run_spec(folder, state, url, times=6)
    (folder / "OUTAGE").write_text("")
    down = run_spec(folder, state, url, times=2)
    (folder / "OUTAGE").unlink()
    store = HistoryStore(url)
    report = analyse(store, folder, InsightOptions())
    assert report.runs_excluded == {"outage": [r.run_id for r in down]}
    assert report.runs_considered == len(normal)
    redesign = [s for s in report.suggestions if s.kind == "redesign-step"]
    assert [s.step for s in redesign] == ["1.5"]  # it fails every time: not an outage
    assert redesign[0].evidence["runs"] == len(normal)


def test_the_window_and_since_choose_the_runs(tmp_path: Path) -> None:
    folder, state, store = history(tmp_path, "window", [("Work", [
        S(flaky("w", 0.05))])], times=7)
    report = analyse(store, folder, InsightOptions(window=5))
    assert report.runs_considered == 5 and len(report.runs_excluded["outside_window"]) == 2
    newest = sorted(run_events(state), key=lambda r: r[0].ts)
    report = analyse(store, folder, InsightOptions(since=newest[-3][0].ts))
    assert report.runs_considered == 3
    assert [s for s in report.suggestions if s.kind == "redesign-step"] == []  # 3 < 5 runs


def test_post_execution_analysis_over_the_history(tmp_path: Path) -> None:
    _folder, state, store = history(tmp_path, "post", [("Work", [
        S(flaky("p", 0.4), backups=[B(flaky("b", 0.9))]), S(flaky("q", 0.0))])], times=10)
    found = history_analysis(store, "post")
    ended = [e for run in run_events(state) for e in run if isinstance(e, ev.StepEnded)]
    failed = sum(e.status == "failed" for e in ended)
    assert found["runs"] == 10
    assert found["failure_patterns"]["overall_failure_rate"] == round(failed / len(ended), 4)
    backup = attempts(state, "1.1", "backup_1")
    tally = found["failure_patterns"]["most_successful_backups"][0]
    assert (tally["successes"], tally["uses"]) == (
        sum(a.outcome == "success" for a in backup), len(backup))
    q = [e for e in ended if e.step == "1.2"]
    q_failed = sum(e.status == "failed" for e in q)
    row = next(r for r in found["failure_patterns"]["steps_that_frequently_fail"]
               if r["step"] == "1.2")
    assert (row["failed_runs"], row["runs"]) == (q_failed, len(q))
    assert row["interval95"] == wilson_here(q_failed, len(q))
    assert found["constitutional_compliance"]["runs_scored"] == 10
    assert any(r.startswith("redesign-step-") for r in found["recommendations"])


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (3, 7), (47, 120), (1, 1)])
def test_wilson_matches_its_definition(k: int, n: int) -> None:
    from specs.insights import wilson

    assert [round(v, 4) for v in wilson(k, n)] == wilson_here(k, n)
