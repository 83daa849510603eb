"""The history database on SQLite and on a real PostgreSQL server (the same tests on both):
migrations from an empty database and from the previous schema, live recording of real runs,
rebuild, resume in a new process, several writers at once, and the run queries."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from history_pg import history_url_fixture, postgres_server_fixture  # noqa: F401
from history_specs import B, S, flaky, run_spec, write_spec
from specs import events as ev
from specs.engine.runner import Runner, RunOptions
from specs.errors import UsageError
from specs.history import (
    HistoryStore,
    failure_class,
    list_runs,
    project_events,
    rebuild,
    recorder_for,
    run_detail,
    schema,
    sync,
)
from specs.history.migrations import MIGRATIONS
from specs.spec.load import load_spec


def dump(store: HistoryStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the run tables, sorted (a table's content, whatever order it was written)."""
    out = {}
    with store.reading() as conn:
        for table in schema.TABLES:
            rows = [tuple(json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v
                          for v in r) for r in conn.execute(select(table))]
            out[table.name] = sorted(rows, key=repr)
    return out


def small_spec(root: Path, name: str = "small") -> Path:
    return write_spec(root, name, [
        ("Prepare", [S("true", critical=True),
                     S("exit 3", backups=[B("true", "succeed instead")])]),
        ("Finish", [S("sh -c 'echo missing >&2; exit 127'", max_retries=1),
                    S(flaky("finish", 0.5))]),
    ])


# -- migrations ----------------------------------------------------------------------------------


def test_migrations_create_the_newest_schema_on_an_empty_database(history_url: str) -> None:
    store = HistoryStore(history_url)
    assert store.applied() == [m.name for m in MIGRATIONS]
    inspector = inspect(store.engine)
    for table in schema.metadata.tables.values():
        assert {c["name"] for c in inspector.get_columns(table.name)} == \
            {c.name for c in table.columns}, table.name
    assert HistoryStore(history_url).migrate() == []  # opening again applies nothing
    store.close()


def test_an_old_database_is_upgraded_and_its_rows_backfilled(history_url: str,
                                                              tmp_path: Path) -> None:
    folder = small_spec(tmp_path)
    state = tmp_path / ".specs"
    run_spec(folder, state, f"sqlite:///{tmp_path / 'scratch.db'}", times=2)
    old = HistoryStore(history_url, target="0001_initial")
    assert old.applied() == ["0001_initial"]
    # rows as a 0001 writer made them: every column of the day (no failure_class yet)
    v1_columns = {c["name"] for c in inspect(old.engine).get_columns("attempts")}
    assert "failure_class" not in v1_columns
    with old.writing() as conn:
        for path in sorted(state.glob("runs/*/events.jsonl")):
            rows = project_events(list(ev.read_events(path)), path)
            for table, items in rows.all_rows():
                names = {c["name"] for c in inspect(conn).get_columns(table.name)}
                for item in items:
                    keep = {k: v for k, v in item.items() if k in names}
                    columns = ", ".join(keep)
                    values = ", ".join(f":{k}" for k in keep)
                    conn.execute(text(f"INSERT INTO {table.name} ({columns}) VALUES ({values})"),
                                 {k: json.dumps(v) if isinstance(v, list | dict) else v
                                  for k, v in keep.items()})
    old.close()
    new = HistoryStore(history_url)
    assert new.applied() == [m.name for m in MIGRATIONS]
    with new.reading() as conn:
        found = conn.execute(select(schema.attempts)).all()
    failed = [a for a in found if a.outcome != "success"]
    assert failed and all(a.failure_class == failure_class(a.outcome, a.verdict,
                                                           a.failure_reason, a.exit_code,
                                                           a.transient) for a in failed)
    assert {a.failure_class for a in failed} >= {"exit_3", "command_not_found"}
    assert all(a.failure_class is None for a in found if a.outcome == "success")
    assert len(list_runs(new)) == 2  # the old rows are all there, readable by the new code
    new.close()


# -- recording -----------------------------------------------------------------------------------


def test_a_live_run_is_recorded_and_rebuild_reproduces_the_same_tables(
        history_url: str, tmp_path: Path) -> None:
    folder = small_spec(tmp_path)
    state = tmp_path / ".specs"
    results = run_spec(folder, state, history_url, times=3)
    store = HistoryStore(history_url)
    live = dump(store)
    assert len(live["runs"]) == 3 and len(live["steps"]) == 12
    detail = run_detail(store, results[0].run_id)
    steps = {s["step"]: s for s in detail.steps}
    assert steps["1.2"]["method_used"] == "backup_1" and steps["1.2"]["backups_used"] == 1
    assert steps["2.1"]["status"] == "failed" and steps["2.1"]["retries"] == 0  # not retried
    assert steps["1.1"]["description"] == "step 1.1" and steps["1.1"]["critical"] is True
    attempts = [(a["step"], a["method"], a["outcome"], a["failure_class"], a["execution_method"])
                for a in detail.attempts if a["step"] in ("1.2", "2.1")]
    assert attempts == [("1.2", "primary", "failure", "exit_3", "command"),
                        ("1.2", "backup_1", "success", None, "command"),
                        ("2.1", "primary", "error", "command_not_found", "command")]
    # the rows equal what the events say, counted here from the events themselves
    for result in results:
        events = list(ev.read_events(result.run_dir / "events.jsonl"))
        ended = [e for e in events if isinstance(e, ev.AttemptEnded)]
        run = run_detail(store, result.run_id)
        assert [(a["step"], a["method"], a["attempt"], a["outcome"]) for a in run.attempts] == \
            sorted([(e.step, e.method, e.attempt, e.outcome) for e in ended],
                   key=lambda t: ([int(p) for p in t[0].split(".")], ended.index(
                       next(e for e in ended if (e.step, e.method, e.attempt, e.outcome) == t))))
        assert run.run["status"] == result.status
        assert run.run["last_seq"] == events[-1].seq
    with store.writing() as conn:  # damage the tables, then rebuild them from the events
        conn.execute(schema.steps.delete().where(schema.steps.c.step == "1.2"))
        conn.execute(schema.runs.update().values(status="garbage"))
    reports = rebuild(store, state)
    assert [r.kind for r in reports] == ["events"] * 3
    assert dump(store) == live
    store.close()


def test_a_run_resumed_in_a_new_process_is_recorded_whole(history_url: str,
                                                          tmp_path: Path) -> None:
    folder = write_spec(tmp_path, "gated", [
        ("Work", [S("true", critical=True), S("true", extra={"mode": "collaborative"}),
                  S("exit 2", backups=[B("true")])])])
    state = tmp_path / ".specs"
    loaded = load_spec(folder)
    recorder = recorder_for(state, history_url)
    first = asyncio.run(Runner(loaded, RunOptions(state_dir=state, no_input=True),
                               subscribers=[recorder]).start())
    recorder.close()
    assert first.status == "awaiting_human" and first.exit_code == 3
    store = HistoryStore(history_url)
    paused = run_detail(store, first.run_id)
    assert paused.run["status"] == "awaiting_human" and paused.run["pending_gate"]
    assert [g["response"] for g in paused.gates] == [None]
    # a new recorder (as in a new process) for the resume: it never saw the first events
    events = list(ev.read_events(first.run_dir / "events.jsonl"))
    recorder = recorder_for(state, history_url)
    second = asyncio.run(Runner(load_spec(folder), RunOptions(state_dir=state, no_input=True,
                                                              decision="approve"),
                                subscribers=[recorder]).resume(first.run_dir, events))
    recorder.close()
    assert second.status == "completed"
    done = run_detail(store, first.run_id)
    assert done.run["status"] == "completed" and done.run["pending_gate"] is None
    assert [s["status"] for s in done.steps] == ["completed"] * 3
    assert [g["response"] for g in done.gates] == ["approve"]
    live = dump(store)
    rebuild(store, state)
    assert dump(store) == live
    store.close()


WRITER = textwrap.dedent("""\
    import asyncio, sys
    from pathlib import Path
    from specs.engine.runner import RunOptions, Runner
    from specs.history import recorder_for
    from specs.spec.load import load_spec

    folder, state, url, times = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    for _ in range(times):
        loaded = load_spec(folder)
        recorder = recorder_for(state, url, interval=0.005)
        asyncio.run(Runner(loaded, RunOptions(state_dir=state, yes=True, parallel=True),
                           subscribers=[recorder]).start())
        recorder.close()
        assert recorder.error is None, recorder.error
    """)


def test_two_processes_writing_one_history_at_once_lose_no_row(history_url: str,
                                                               tmp_path: Path) -> None:
    wide = [S("true") for _ in range(5)]
    a = write_spec(tmp_path, "alpha", [("One", wide), ("Two", [S("exit 1", backups=[B("true")])
                                                             for _ in range(4)])])
    b = write_spec(tmp_path, "beta", [("Only", [S(f"test {i} -ge 0") for i in range(7)])])
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    procs = [subprocess.Popen([sys.executable, str(script), str(folder), str(tmp_path / name),
                               history_url, "6"], env=env, stderr=subprocess.PIPE, text=True)
             for folder, name in ((a, "state_a"), (b, "state_b"))]
    for proc in procs:
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    store = HistoryStore(history_url)
    runs = list_runs(store)
    assert len(runs) == 12
    assert sorted(r["descriptor"] for r in runs) == ["alpha"] * 6 + ["beta"] * 6
    expected_attempts = 0
    for path in sorted(tmp_path.glob("state_*/runs/*/events.jsonl")):
        events = list(ev.read_events(path))
        expected_attempts += sum(isinstance(e, ev.AttemptEnded) for e in events)
        run = run_detail(store, path.parent.name)
        assert run.run["status"] == "completed" and run.run["last_seq"] == events[-1].seq
        assert len(run.steps) == sum(isinstance(e, ev.StepEnded) for e in events)
    with store.reading() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM attempts")).scalar() == expected_attempts
    store.close()


# -- queries -------------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_filters(history_url: str, tmp_path: Path) -> None:
    good = write_spec(tmp_path, "good", [("T", [S("true", critical=True)])])
    bad = write_spec(tmp_path, "bad", [("T", [S("exit 1", critical=True)])],
                     strategy="halt_on_critical")
    state = tmp_path / ".specs"
    made = [r.run_id for r in run_spec(good, state, history_url, times=2)]
    made += [r.run_id for r in run_spec(bad, state, history_url, times=1)]
    store = HistoryStore(history_url)
    runs = list_runs(store)
    assert [r["run_id"] for r in runs] == sorted(made, key=lambda i: next(
        r["started_at"] for r in runs if r["run_id"] == i), reverse=True)
    assert runs[0]["run_id"] == made[-1]  # ids are full, never shortened
    assert {r["descriptor"] for r in list_runs(store, spec="good")} == {"good"}
    assert len(list_runs(store, spec=str(good))) == 2  # a path names the spec too
    failed = list_runs(store, status=runs[0]["status"])
    assert [r["run_id"] for r in failed] == [made[-1]] and failed[0]["status"] != "completed"
    assert list_runs(store, since=runs[0]["started_at"])[-1]["started_at"] >= \
        runs[0]["started_at"]
    assert list_runs(store, since="2999-01-01T00:00:00.000Z") == []
    assert run_detail(store, "last").run["run_id"] == made[-1]
    assert run_detail(store, made[0][:-1]).run["run_id"] == made[0]  # a unique prefix
    with pytest.raises(UsageError, match="ambiguous"):
        run_detail(store, "run_")
    with pytest.raises(UsageError, match="no run 'nope'"):
        run_detail(store, "nope")
    store.close()


def test_a_bad_url_is_one_clear_error_and_an_unreachable_database_does_not_stop_a_run(
        tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not an SQLAlchemy URL"):
        recorder_for(tmp_path, "not a url")
    with pytest.raises(UsageError, match="SQLite or PostgreSQL"):
        recorder_for(tmp_path, "mysql://localhost/x")
    folder = write_spec(tmp_path, "ok", [("T", [S("true", critical=True)])])
    recorder = recorder_for(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = asyncio.run(Runner(load_spec(folder), RunOptions(state_dir=tmp_path, yes=True),
                                subscribers=[recorder]).start())
    recorder.close()
    assert result.status == "completed"
    assert recorder.error and "not in the history" in recorder.error
    assert "\n" not in recorder.error


def test_sync_adds_the_runs_the_history_lacks(history_url: str, tmp_path: Path) -> None:
    folder = small_spec(tmp_path)
    state = tmp_path / ".specs"
    unrecorded = [asyncio.run(Runner(load_spec(folder), RunOptions(state_dir=state, yes=True))
                              .start()) for _ in range(2)]
    recorded = run_spec(folder, state, history_url, times=1)
    store = HistoryStore(history_url)
    assert [r["run_id"] for r in list_runs(store)] == [recorded[0].run_id]
    added = sync(store, state)
    assert sorted(r.run_id for r in added) == sorted(r.run_id for r in unrecorded)
    assert len(list_runs(store)) == 3
    assert sync(store, state) == []  # nothing missing: nothing projected again
    live = dump(store)
    rebuild(store, state)
    assert dump(store) == live
    # a run the history holds only in part (its recorder died) is completed by sync
    with store.writing() as conn:
        conn.execute(schema.runs.update().where(schema.runs.c.run_id == recorded[0].run_id)
                     .values(last_seq=3, status="running"))
    assert [r.run_id for r in sync(store, state)] == [recorded[0].run_id]
    assert dump(store) == live
    store.close()
