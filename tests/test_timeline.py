"""Timelines and the parallel fields of the progress file (reference §5.1 item 7).

Real runs of one small spec (shell steps that sleep), once in parallel and once sequentially::

    task 1   1.1 prepare (sleep)  ->  1.2 slow branch (sleep)         ->  1.4 join
                                  ->  1.3 primary fails, backup sleeps ->
    task 2   2.1 (sleep) -> 2.2 fails (not critical) -> 2.3 skipped (upstream failed)

1.2 and 1.3 run side by side (one phase, the limit is 2), so the run has a synchronisation
point (1.4 waits for both) and parallelism saves time. Every assertion on times is one the
scheduler guarantees (a step starts after what it depends on ended), never a guess at speed.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console

from record_scenario import make_spec as scenario_spec
from record_scenario import replay, scenario
from specs import events as ev
from specs.engine.journal import EventLog
from specs.engine.runner import Runner, RunOptions, RunResult
from specs.record.facts import to_epoch
from specs.record.parallel import measured_critical_path, overlapping, synchronisation_points
from specs.record.progress import progress_document
from specs.record.timeline import TimelineData, build_timeline, render_html, render_terminal
from specs.spec.load import load_spec
from specs.spec.model import Spec

REFS = ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3"]
PARALLEL_KEYS = {"execution_id", "parallel_group", "thread_id", "launched_at", "completed_at",
                 "execution_time_ms", "parallel_execution", "dependencies_satisfied"}
SUMMARY_KEYS = {"enabled", "max_parallel", "max_concurrent_steps", "sum_of_step_durations_s",
                "makespan_s", "time_saved_s", "synchronisation_points", "critical_path",
                "measured_critical_path"}


def _step(id: int, description: str, command: str, *, critical: bool = False,
          depends_on: list[int] | None = None, group: str | None = None,
          backup: str | None = None) -> str:
    text = textwrap.dedent(f"""
        [[tasks.steps]]
        id = {id}
        description = "{description}"
        expected_output = "done"
        critical_flag = {str(critical).lower()}
        max_retries = 0
        command = "{command}"
        """)
    if depends_on is not None:
        text += f"depends_on = {depends_on}\n"
    if group is not None:
        text += f'parallel_group = "{group}"\n'
    if backup is not None:
        text += textwrap.dedent(f"""
            [[tasks.steps.backups]]
            id = 1
            description = "the slower way"
            trigger_condition = "primary_failure"
            command = "{backup}"
            """)
    return text


SPEC = textwrap.dedent("""\
    [meta]
    goal_descriptor = "tl"

    [goal]
    description = "Fan out, join, wrap up"

    [execution]
    default_mode = "silent"

    [knowledge_capture]
    enabled = false

    [[tasks]]
    id = 1
    description = "Fan out and join"
    """) + "".join([
    _step(1, "Prepare", "sleep 0.05", critical=True),
    _step(2, "Slow branch", "sleep 0.5", depends_on=[1], group="branches"),
    _step(3, "Branch that needs its backup", "exit 1", critical=True, depends_on=[1],
          group="branches", backup="sleep 0.3"),
    _step(4, "Join", "true", depends_on=[2, 3]),
    '\n[[tasks]]\nid = 2\ndescription = "Wrap up"\n',
    _step(1, "Summarise", "sleep 0.05", critical=True),
    _step(2, "Optional check that fails", "exit 3"),
    _step(3, "Publish the check", "true", depends_on=[2]),
])


@dataclass
class Done:
    folder: Path
    state_dir: Path
    result: RunResult
    events: list[ev.Event]
    spec: Spec

    def progress(self) -> dict[str, Any]:
        return progress_document(self.spec, self.result.state)

    def timeline(self, with_spec: bool = True) -> TimelineData:
        return build_timeline(self.events, self.spec if with_spec else None)


def _run(root: Path, **options: Any) -> Done:
    folder = root / "tl"
    folder.mkdir(parents=True)
    (folder / "parameters_tl.toml").write_text(SPEC, encoding="utf-8")
    loaded = load_spec(folder)
    state_dir = root / "state"
    runner = Runner(loaded, RunOptions(state_dir=state_dir, no_input=True, fsync_interval=60,
                                       **options))
    result = asyncio.run(runner.start())
    events = list(ev.read_events(result.run_dir / "events.jsonl"))
    assert result.state.end is not None and result.state.end.status == "completed", events[-1]
    return Done(folder, state_dir, result, events, runner.spec)


@pytest.fixture(scope="module")
def parallel(tmp_path_factory: pytest.TempPathFactory) -> Done:
    return _run(tmp_path_factory.mktemp("parallel"), parallel=True, max_parallel=2)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> Done:
    return _run(tmp_path_factory.mktemp("sequential"), sequential=True)


def steps_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["ref"]: s for t in doc["tasks"] for s in t["steps"]}


def later_branch(done: Done) -> str:
    """Of 1.2 and 1.3, the one that ended last (1.4 waited for it)."""
    ends = {e.step: e.ts for e in done.events if isinstance(e, ev.StepEnded)}
    return max(("1.2", "1.3"), key=lambda ref: (ends[ref], ref))


# -- the progress file -----------------------------------------------------------------------


def test_progress_step_fields_of_a_parallel_run(parallel: Done) -> None:
    steps = steps_of(parallel.progress())
    run_id = parallel.result.run_id
    for ref, record in steps.items():
        assert record.keys() >= PARALLEL_KEYS, ref
    for ref in REFS[:-1]:  # every step that ran
        record = steps[ref]
        assert record["execution_id"] == f"{run_id}:{ref}"
        assert record["thread_id"] in (1, 2)
        assert record["launched_at"] == record["timestamp_start"]
        assert record["completed_at"] == record["timestamp_end"]
        assert record["execution_time_ms"] >= 0
    assert steps["1.2"]["execution_time_ms"] >= 500
    assert {steps["1.2"]["thread_id"], steps["1.3"]["thread_id"]} == {1, 2}
    assert steps["1.2"]["parallel_group"] == steps["1.3"]["parallel_group"] == "branches"
    assert steps["1.2"]["dependencies_satisfied"] == ["1.1"]
    assert steps["1.4"]["dependencies_satisfied"] == ["1.2", "1.3"]
    assert steps["2.1"]["dependencies_satisfied"] == ["1.4"]
    overlapped = {ref for ref, record in steps.items() if record["parallel_execution"]}
    assert overlapped == {"1.2", "1.3"}
    skipped = steps["2.3"]
    assert skipped["status"] == "skipped"
    assert (skipped["execution_id"], skipped["thread_id"], skipped["launched_at"]) == (
        None, None, None)
    assert skipped["completed_at"] == skipped["timestamp_end"]


def test_progress_phases_per_task(parallel: Done) -> None:
    first, second = parallel.progress()["tasks"]
    assert [(p["phase_id"], p["steps_in_phase"], p["parallel_groups"])
            for p in first["phases"]] == [(1, [1], []), (2, [2, 3], ["branches"]), (3, [4], [])]
    assert [(p["phase_id"], p["steps_in_phase"]) for p in second["phases"]] == [
        (4, [1]), (5, [2]), (6, [3])]
    steps = steps_of(parallel.progress())
    fan = first["phases"][1]
    assert fan["phase_start"] == min(steps["1.2"]["launched_at"], steps["1.3"]["launched_at"])
    assert fan["phase_end"] == max(steps["1.2"]["completed_at"], steps["1.3"]["completed_at"])
    assert fan["phase_duration_ms"] >= 500
    for phase in first["phases"] + second["phases"]:
        assert set(phase) == {"phase_id", "steps_in_phase", "parallel_groups", "phase_start",
                              "phase_end", "phase_duration_ms"}
        assert phase["phase_start"] <= phase["phase_end"]
    skipped_phase = second["phases"][2]  # only the skipped 2.3: it starts and ends at the skip
    assert skipped_phase["phase_start"] == skipped_phase["phase_end"]


def test_progress_parallel_summary(parallel: Done) -> None:
    summary = parallel.progress()["parallel_execution_summary"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["enabled"] is True
    assert summary["max_parallel"] == 2
    assert summary["max_concurrent_steps"] == 2
    assert summary["time_saved_s"] > 0.2  # 1.3 (>= 0.3 s) ran beside 1.2
    assert summary["time_saved_s"] == pytest.approx(
        summary["sum_of_step_durations_s"] - summary["makespan_s"], abs=0.002)
    assert summary["makespan_s"] < summary["sum_of_step_durations_s"]
    assert summary["synchronisation_points"] == 1  # 1.4 waited for 1.2 and 1.3
    assert summary["critical_path"] == ["1.1", "1.2", "1.4", "2.1", "2.2", "2.3"]
    assert summary["measured_critical_path"] == ["1.1", later_branch(parallel), "1.4", "2.1",
                                                 "2.2"]


def test_progress_of_a_sequential_run_has_the_same_keys(sequential: Done,
                                                        parallel: Done) -> None:
    doc = sequential.progress()
    summary = doc["parallel_execution_summary"]
    assert set(summary) == set(parallel.progress()["parallel_execution_summary"])
    assert (summary["enabled"], summary["max_parallel"], summary["max_concurrent_steps"]) == (
        False, 1, 1)
    assert summary["time_saved_s"] == 0
    assert summary["synchronisation_points"] == 0
    steps = steps_of(doc)
    for ref in REFS[:-1]:
        assert steps[ref]["thread_id"] == 1
        assert steps[ref]["parallel_execution"] is False
        assert steps[ref]["execution_id"] == f"{sequential.result.run_id}:{ref}"
    assert steps["1.4"]["dependencies_satisfied"] == ["1.2", "1.3"]
    assert [p["steps_in_phase"] for p in doc["tasks"][0]["phases"]] == [[1], [2, 3], [4]]


def test_progress_document_stays_deterministic(parallel: Done) -> None:
    first = json.dumps(parallel.progress())
    again = RunReplay(parallel).document()
    assert json.dumps(again) == first


class RunReplay:
    """The run's events replayed into a fresh state (what `specs show-run` does)."""

    def __init__(self, done: Done) -> None:
        from specs.engine.state import RunState

        self.spec = done.spec
        self.state = RunState(done.spec)
        for event in done.events:
            self.state.apply(event)

    def document(self) -> dict[str, Any]:
        return progress_document(self.spec, self.state)


def test_progress_of_the_hand_written_run() -> None:
    spec = scenario_spec()
    doc = progress_document(spec, replay(spec, scenario()))
    steps = steps_of(doc)
    assert steps["1.2"]["execution_id"] == "run_1:1.2"
    assert steps["1.2"]["execution_time_ms"] == 8000
    assert steps["2.2"]["launched_at"] is None
    summary = doc["parallel_execution_summary"]
    assert (summary["enabled"], summary["max_concurrent_steps"], summary["time_saved_s"]) == (
        False, 1, 0)
    assert summary["makespan_s"] == 39.0


# -- the measures ----------------------------------------------------------------------------


def test_overlap_sync_points_and_measured_path() -> None:
    spans = {"a": (0.0, 1.0), "b": (1.0, 3.0), "c": (1.0, 2.0), "d": (3.0, 4.0), "e": (3.5, 3.6)}
    assert overlapping(spans) == {"b", "c", "d", "e"}  # a and b only touch
    assert overlapping({"x": (0.0, 1.0)}) == set()
    phases = [["a"], ["b", "c"], ["d", "e"]]
    assert synchronisation_points(phases, spans) == 1  # d, e wait for b and c; nothing after
    assert synchronisation_points([["b", "c"], ["x"]], {**spans, "x": (2.5, 3.0)}) == 0
    deps = {"b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["skipped"], "skipped": ["c"]}
    assert measured_critical_path(spans, deps) == ["a", "b", "d"]
    assert measured_critical_path({"e": spans["e"], "c": spans["c"]}, deps) == ["c", "e"]
    assert measured_critical_path({}, deps) == []


# -- timeline data ---------------------------------------------------------------------------


def test_timeline_bars_overlap_and_attempts(parallel: Done) -> None:
    data = parallel.timeline()
    assert [b.ref for b in data.bars()] == REFS
    assert [t.ref for t in data.tasks] == ["1", "2"]
    bars = {b.ref: b for b in data.bars()}
    for ref in REFS[:-1]:
        bar = bars[ref]
        assert bar.start is not None and bar.end is not None and bar.start <= bar.end
    b1, b2, b3, b4 = (bars[r] for r in ("1.1", "1.2", "1.3", "1.4"))
    assert b2.start >= b1.end and b3.start >= b1.end  # type: ignore[operator]
    assert b2.start < b3.end and b3.start < b2.end  # type: ignore[operator]
    assert b4.start >= max(b2.end, b3.end)  # type: ignore[operator, type-var]
    assert b2.parallel_execution and b3.parallel_execution and not b1.parallel_execution
    assert {b2.slot, b3.slot} == {1, 2}
    assert [(s.method, s.outcome, s.backup) for s in b3.segments] == [
        ("primary", "failure", False), ("backup_1", "success", True)]
    assert b3.method_used == "backup_1"
    assert any(m.kind == "backup" for m in b3.markers)
    for segment in b3.segments:
        assert b3.start <= segment.start <= segment.end <= b3.end  # type: ignore[operator]
    assert b3.segments[0].end <= b3.segments[1].start  # type: ignore[operator]
    skipped = bars["2.3"]
    assert skipped.start is None and skipped.status == "skipped"
    assert [m.kind for m in skipped.markers] == ["skipped"]
    assert bars["2.2"].segments[0].outcome == "failure"
    assert data.parallel and data.max_parallel == 2
    assert data.duration >= max(b.end for b in data.bars() if b.end is not None)


def test_timeline_critical_path(parallel: Done) -> None:
    data = parallel.timeline()
    path = ["1.1", later_branch(parallel), "1.4", "2.1", "2.2"]
    assert data.critical_path == path
    assert data.planned_critical_path == ["1.1", "1.2", "1.4", "2.1", "2.2", "2.3"]
    assert [b.ref for b in data.bars() if b.on_critical_path] == [r for r in REFS if r in path]


def test_timeline_summary_equals_the_progress_file(parallel: Done, sequential: Done) -> None:
    for done in (parallel, sequential):
        assert done.timeline().summary == done.progress()["parallel_execution_summary"]


def test_timeline_without_the_spec(parallel: Done) -> None:
    data = parallel.timeline(with_spec=False)
    assert [b.ref for b in data.bars()] == REFS
    assert data.critical_path == parallel.timeline().critical_path
    assert data.planned_critical_path == ["1.1", "1.2", "1.4", "2.1", "2.2", "2.3"]
    assert data.bars()[0].description == ""
    assert data.summary["synchronisation_points"] == 1


def test_timeline_of_the_hand_written_run() -> None:
    events = scenario()
    data = build_timeline(events, scenario_spec())
    assert [m.kind for m in data.markers] == ["mode", "mode", "pause", "resume", "resume"]
    pause = data.markers[2]
    assert pause.end is not None and pause.end > pause.at
    bars = {b.ref: b for b in data.bars()}
    assert [m.kind for m in bars["2.1"].markers] == ["gate"]
    gate = bars["2.1"].markers[0]
    assert gate.end is not None and "guidance" in gate.label
    assert "interrupted" in [s.outcome for s in bars["2.1"].segments]
    assert bars["2.2"].markers[0].kind == "skipped"
    assert [s.method for s in bars["1.2"].segments] == ["primary", "primary", "backup_1"]
    assert json.dumps(data.to_dict()) == json.dumps(build_timeline(events,
                                                                   scenario_spec()).to_dict())


# -- rendering -------------------------------------------------------------------------------


def terminal(data: TimelineData, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, no_color=True)
    console.print(render_terminal(data, width))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_terminal_chart(parallel: Done) -> None:
    text = terminal(parallel.timeline())
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    for ref in REFS:
        assert any(line.lstrip("» ").startswith(ref + " ") for line in lines), ref
    row = {ref: next(line for line in lines if line.lstrip("» ").startswith(ref + " "))
           for ref in REFS}
    assert "█" in row["1.1"] and "█" in row["1.2"]
    assert "▓" in row["1.3"] and "✗" in row["1.3"]  # the failed primary, then the backup
    assert "✓ backup_1" in row["1.3"]
    assert "✗ failed" in row["2.2"] and "○" in row["2.3"]
    for ref in parallel.timeline().critical_path:
        assert row[ref].startswith("»"), ref
    assert not row["2.3"].startswith("»")
    assert "Legend:" in text and "primary attempt" in text and "backup attempt" in text
    assert "Critical path: 1.1 -> " in text
    assert "1 synchronisation point" in text
    assert "0s" in text and "├" in text
    assert row["1.2"].index("█") < row["1.4"].index("█")  # the join starts after the branch


def test_terminal_chart_fits_narrow_and_wide(parallel: Done, sequential: Done) -> None:
    for width in (60, 160):
        for done in (parallel, sequential):
            lines = terminal(done.timeline(), width).splitlines()
            assert all(len(line) <= width for line in lines)
    assert "sequential run" in terminal(sequential.timeline())
    assert terminal(parallel.timeline()) == terminal(parallel.timeline())


class Page(HTMLParser):
    """Collects tags and checks that every SVG element is closed."""

    VOID: ClassVar[set[str]] = {"meta", "br", "link", "img", "input", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.titles: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in self.VOID:
            self.stack.append(tag)
        self._in_title = tag == "title"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles.append(data)


def test_html_page(parallel: Done) -> None:
    data = parallel.timeline()
    page_text = render_html(data)
    page = Page()
    page.feed(page_text)
    page.close()
    assert page.stack == []
    names = [tag for tag, _ in page.tags]
    assert "svg" in names and page_text.lstrip().startswith("<!DOCTYPE html>")
    attempts = [a for tag, a in page.tags
                if tag == "rect" and "attempt" in a.get("class", "").split()]
    assert len(attempts) == sum(isinstance(e, ev.AttemptStarted) for e in parallel.events)
    classes = [a["class"] for a in attempts]
    assert classes.count("attempt backup ok") == 1
    assert classes.count("attempt primary failed") == 2  # 1.3's primary and 2.2
    assert "http" not in page_text.lower()
    assert "<script" not in page_text.lower()
    assert not [a for _, a in page.tags if "src" in a or "href" in a]
    assert any("1.3 backup_1 attempt 1: success" in t for t in page.titles)
    assert any(t.startswith("1.2 Slow branch") for t in page.titles)
    assert "seconds since" in page_text
    for ref in REFS:
        assert f"{ref} " in page_text
    rows = [a for tag, a in page.tags if tag == "rect" and a.get("class") == "crit-row"
            and a.get("x") == "0"]  # the chart's rows (the legend has a swatch too)
    assert len(rows) == len(data.critical_path)


# -- the command -----------------------------------------------------------------------------


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}
    env.update(COLUMNS="100", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "specs", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_the_chart(parallel: Done) -> None:
    proc = cli("timeline", "last", "--state-dir", parallel.state_dir, "--width", "100",
               cwd=parallel.folder)
    assert proc.returncode == 0, proc.stderr
    for ref in REFS:
        assert ref in proc.stdout
    assert "Legend:" in proc.stdout and "█" in proc.stdout
    assert all(len(line) <= 100 for line in proc.stdout.splitlines())
    prefix = parallel.result.run_id[:-2]
    by_prefix = cli("timeline", prefix, "--state-dir", parallel.state_dir, "--width", "100",
                    cwd=parallel.folder)
    assert by_prefix.stdout == proc.stdout


def test_cli_writes_html(parallel: Done, tmp_path: Path) -> None:
    out = tmp_path / "charts" / "out.html"
    proc = cli("timeline", "last", "--state-dir", parallel.state_dir, "--html", out,
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert "<svg" in out.read_text(encoding="utf-8")


def test_cli_missing_run_is_a_usage_error(parallel: Done, tmp_path: Path) -> None:
    proc = cli("timeline", "run_nope", "--state-dir", parallel.state_dir, cwd=tmp_path)
    assert proc.returncode == 2
    assert "no run 'run_nope'" in proc.stderr and "Traceback" not in proc.stderr
    empty = cli("timeline", "last", "--state-dir", tmp_path / "empty", cwd=tmp_path)
    assert empty.returncode == 2 and "no runs" in empty.stderr


def test_cli_draws_without_the_spec(parallel: Done, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "state"
    shutil.copytree(parallel.state_dir, copy)
    run = next((copy / "runs").iterdir())
    lines = (run / "events.jsonl").read_text().splitlines()
    opened = json.loads(lines[0])
    opened["spec"]["parameters"] = str(tmp_path / "gone" / "parameters_tl.toml")
    (run / "events.jsonl").write_text("\n".join([json.dumps(opened), *lines[1:]]) + "\n")
    proc = cli("timeline", "last", "--state-dir", copy, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no longer readable" in proc.stderr
    assert "1.3" in proc.stdout and "Legend:" in proc.stdout


# -- a run that has not ended ----------------------------------------------------------------


def _cut_while_1_2_runs() -> list[ev.Event]:
    """The hand-written run up to the start of step 1.2's backup attempt (1.1 ended; 1.2 has
    run two attempts and is in its third)."""
    events = scenario()
    cut = next(i for i, e in enumerate(events) if isinstance(e, ev.AttemptStarted)
               and e.step == "1.2" and e.method == "backup_1")
    return events[:cut + 1]


def _span_s(events: list[ev.Event], step: str, until: float) -> float:
    start = next(to_epoch(e.ts) for e in events
                 if isinstance(e, ev.StepStarted) and e.step == step)
    assert start is not None
    return until - start


def test_an_unfinished_run_counts_its_running_step() -> None:
    """The makespan and the sums run to the last event (an interrupted run) or to ``now``
    (a live one), and the running attempt counts, in the chart and the progress file alike."""
    events = _cut_while_1_2_runs()
    last = to_epoch(events[-1].ts)
    assert last is not None
    data = build_timeline(events, scenario_spec())
    assert data.summary["makespan_s"] == round(_span_s(events, "1.1", last), 3)
    ended = to_epoch(next(e.ts for e in events if isinstance(e, ev.StepEnded)))
    assert ended is not None
    assert data.summary["sum_of_step_durations_s"] == round(
        _span_s(events, "1.1", ended) + _span_s(events, "1.2", last), 3)
    bar = data.bar("1.2")
    assert [s.outcome for s in bar.segments] == ["failure", "failure", "running"]
    live = build_timeline(events, scenario_spec(), now=last + 60)
    assert live.summary["makespan_s"] == round(data.summary["makespan_s"] + 60, 3)
    assert live.duration == pytest.approx(data.duration + 60)
    spec = scenario_spec()
    doc = progress_document(spec, replay(spec, events))
    assert doc["parallel_execution_summary"] == data.summary
    assert progress_document(spec, replay(spec, events), now=last + 60)[
        "parallel_execution_summary"] == live.summary
    step = next(s for t in doc["tasks"] for s in t["steps"] if s["ref"] == "1.2")
    assert len(step["attempts"]) == 3 and step["attempts"][-1]["outcome"] is None


def _write_run(state: Path, events: list[ev.Event], *, damage_at: int | None = None) -> Path:
    run = state / "runs" / "run_1"
    log = EventLog(run / "events.jsonl", fsync_interval=0)
    for event in events:
        log.append(event)
    log.close()
    if damage_at is not None:
        lines = (run / "events.jsonl").read_text().splitlines(keepends=True)
        lines.insert(damage_at, '{"event": "step-ended", "step": \n')
        (run / "events.jsonl").write_text("".join(lines))
    return run


def _makespan(stdout: str) -> float:
    """The makespan the chart prints (``2.41s``, ``12.0s``, ``3m05s``, ``5ms``), in seconds."""
    found = re.search(r"makespan (\d+)m(\d+)s|makespan ([\d.]+)(ms|s)", stdout)
    assert found, stdout
    if found.group(1):
        return int(found.group(1)) * 60 + int(found.group(2))
    return float(found.group(3)) / (1000 if found.group(4) == "ms" else 1)


def test_cli_timeline_of_an_interrupted_and_of_a_live_run(tmp_path: Path) -> None:
    """A damaged line is named on stderr; a run no process holds is drawn up to its last
    event, as interrupted; one whose lock is held, up to now, as running."""
    events = _cut_while_1_2_runs()
    run = _write_run(tmp_path / "state", events, damage_at=5)
    proc = cli("timeline", "last", "--state-dir", tmp_path / "state", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{run / 'events.jsonl'}:6: a damaged line (not an event) was skipped" in proc.stderr
    assert proc.stdout.splitlines()[0].endswith(": interrupted")
    last = to_epoch(events[-1].ts)
    assert last is not None
    assert _makespan(proc.stdout) == pytest.approx(_span_s(events, "1.1", last), abs=0.06)
    with (run / "lock").open("w") as lock:  # a live process holds the run's lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        live = cli("timeline", "last", "--state-dir", tmp_path / "state", cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    assert live.stdout.splitlines()[0].endswith(": running")
    assert _makespan(live.stdout) >= _span_s(events, "1.1", time.time() - 60)
