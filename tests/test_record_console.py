"""The console views (specs.record.console), driven by hand-made event sequences.

Each event gets a seq and a ts, is applied to a RunState and then passed to the view, the way
the engine does it.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from rich.console import Console

from specs import events as ev
from specs.engine.state import RunState
from specs.record.console import JsonLinesView, LiveView, PlainView, make_view
from specs.spec.load import spec_from_document
from specs.spec.model import Spec

DOC: dict[str, Any] = {
    "goal": {"description": "Turn the input into a report"},
    "tasks": [
        {"id": 1, "description": "Gather the input", "steps": [
            {"id": 1, "description": "Fetch the data", "expected_output": "data.csv",
             "command": "fetch"},
            {"id": 2, "description": "Clean the data", "expected_output": "clean.csv",
             "command": "clean", "max_retries": 2, "critical_flag": False,
             "backups": [{"id": 1, "description": "Clean by hand", "command": "clean2"}]},
        ]},
        {"id": 2, "description": "Write the report", "steps": [
            {"id": 1, "description": "Render the report", "expected_output": "report.md",
             "command": "render"},
        ]},
    ],
}


class Clock:
    """A hand-driven clock for elapsed times."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_spec() -> Spec:
    spec, diagnostics = spec_from_document(DOC)
    assert spec is not None, [d.render() for d in diagnostics]
    return spec


def events_until_gate() -> list[ev.Event]:
    """Task 1: 1.1 succeeds; 1.2 fails its 3 primary attempts, backup_1 succeeds; a gate."""
    failure = dict(outcome="failure", verdict="mismatch", failure_reason="exit code 1: boom")
    return [
        ev.RunOpened(run_id="R1", descriptor="demo", spec={}, options={},
                     totals={"tasks": 2, "steps": 3}),
        ev.ModeSelected(mode="collaborative", selected_by="cli", strategy="collaborative_review"),
        ev.TaskStarted(task="1", description="Gather the input"),
        ev.StepStarted(step="1.1", mode="collaborative", critical=True),
        ev.AttemptStarted(step="1.1", method="primary", attempt=1),
        ev.AttemptEnded(step="1.1", method="primary", attempt=1, outcome="success"),
        ev.StepEnded(step="1.1", status="completed", method_used="primary"),
        ev.StepStarted(step="1.2", mode="collaborative", critical=False),
        ev.AttemptStarted(step="1.2", method="primary", attempt=1),
        ev.AttemptEnded(step="1.2", method="primary", attempt=1, **failure),
        ev.AttemptStarted(step="1.2", method="primary", attempt=2),
        ev.AttemptEnded(step="1.2", method="primary", attempt=2, outcome="error",
                        failure_reason="connection reset", transient=True),
        ev.RetryScheduled(step="1.2", method="primary", delay_s=2.0, reason="transient"),
        ev.AttemptStarted(step="1.2", method="primary", attempt=3),
        ev.AttemptEnded(step="1.2", method="primary", attempt=3, **failure),
        ev.BackupTriggered(step="1.2", backup=1, trigger="primary exhausted",
                           justification="try by hand"),
        ev.AttemptStarted(step="1.2", method="backup_1", attempt=1),
        ev.AttemptEnded(step="1.2", method="backup_1", attempt=1, outcome="success"),
        ev.StepEnded(step="1.2", status="completed", method_used="backup_1"),
        ev.TaskEnded(task="1", status="completed"),
        ev.TaskStarted(task="2", description="Write the report"),
        ev.GateRequested(gate="g1", kind="before_step", step="2.1", prompt="Render now?",
                         options=["approve", "reject"]),
    ]


def events_after_gate() -> list[ev.Event]:
    return [
        ev.GateAnswered(gate="g1", response="approve", by="cli"),
        ev.GateClosed(gate="g1"),
        ev.StepStarted(step="2.1", mode="collaborative", critical=True),
        ev.AttemptStarted(step="2.1", method="primary", attempt=1),
        ev.AttemptEnded(step="2.1", method="primary", attempt=1, outcome="success"),
        ev.StepEnded(step="2.1", status="completed", method_used="primary"),
        ev.TaskEnded(task="2", status="completed"),
        ev.CompletionVerified(checks={}, overall_status="PASS",
                              goal_achievement_status="ACHIEVED"),
        ev.RunEnded(status="completed", goal_achievement_status="ACHIEVED"),
    ]


def drive(view: Any, state: RunState, events: list[ev.Event], clock: Clock | None = None,
          start: int = 1) -> None:
    for seq, event in enumerate(events, start):
        event.seq, event.ts = seq, f"2026-03-01T12:00:{seq:02d}.000Z"
        state.apply(event)
        view(event, state)
        if clock is not None:
            clock.now += 0.5


def terminal(**keys: Any) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100, no_color=True, **keys)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(console: Console) -> str:
    """What the console received, without control codes; asserts no colour was used."""
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert not re.search(r"\x1b\[[0-9;]*(3|4)[0-9]", text)  # no colours
    return ANSI.sub("", text)


def render(view: LiveView, height: int = 40) -> str:
    out = terminal(height=height)
    out.print(view.renderable())
    return plain(out)


# -- plain -------------------------------------------------------------------------------------


def test_plain_lines_for_retry_backup_gate_and_end() -> None:
    console = Console(file=io.StringIO(), width=40)
    state = RunState(make_spec())
    view = PlainView(console)
    drive(view, state, events_until_gate() + events_after_gate())
    assert console.file.getvalue().splitlines() == [  # type: ignore[attr-defined]
        "[12:00:01] run R1 opened: demo",
        "[12:00:02] mode collaborative (selected by cli, strategy collaborative_review)",
        "[12:00:03] task 1 started: Gather the input",
        "[12:00:04] step 1.1 started: Fetch the data",
        "[12:00:07] step 1.1 completed",
        "[12:00:08] step 1.2 started: Clean the data",
        "[12:00:10] step 1.2 attempt 1 (primary) failed: exit code 1: boom",
        "[12:00:11] step 1.2 attempt 2 (primary) started",
        "[12:00:12] step 1.2 attempt 2 (primary) errored: connection reset",
        "[12:00:13] step 1.2 primary retry in 2.0s: transient",
        "[12:00:14] step 1.2 attempt 3 (primary) started",
        "[12:00:15] step 1.2 attempt 3 (primary) failed: exit code 1: boom",
        "[12:00:16] step 1.2 backup_1 triggered",
        "[12:00:19] step 1.2 completed via backup_1 (2 retries)",
        "[12:00:20] task 1 completed: 2 completed",
        "[12:00:21] task 2 started: Write the report",
        "[12:00:22] gate before step 2.1: awaiting a human decision (specs approve R1 2.1)",
        "[12:00:23] gate at step 2.1 answered: approve (by cli)",
        "[12:00:25] step 2.1 started: Render the report",
        "[12:00:28] step 2.1 completed",
        "[12:00:29] task 2 completed: 1 completed",
        "[12:00:30] completion PASS, goal ACHIEVED",
        "[12:00:31] run ended: completed, goal ACHIEVED",
    ]


def test_plain_failures_escalation_mode_switch_and_pause() -> None:
    console = Console(file=io.StringIO(), width=40)
    state = RunState(make_spec())
    view = PlainView(console)
    drive(view, state, [
        ev.RunOpened(run_id="R2", descriptor="demo", spec={}, options={}, totals={}),
        ev.TaskStarted(task="1"),
        ev.StepStarted(step="1.1", mode="dynamic", critical=True),
        ev.StepEnded(step="1.1", status="failed", message="all methods failed\n  see log"),
        ev.Escalated(step="1.1", reasons=["consecutive_failures"], from_mode="dynamic"),
        ev.ModeSwitched(from_mode="dynamic", to_mode="collaborative", reason="escalation"),
        ev.GateRequested(gate="g2", kind="critical_failure", step="1.1", prompt="What now?",
                         options=["retry", "skip", "halt"]),
        ev.RunPaused(reason="awaiting a human decision", gate="g2"),
    ])
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[3:] == [
        "[12:00:04] step 1.1 failed: all methods failed see log",
        "[12:00:05] escalated at step 1.1: consecutive_failures",
        "[12:00:06] mode switched: dynamic -> collaborative (escalation)",
        "[12:00:07] gate after critical step 1.1 failed: awaiting a human decision"
        " (options: retry, skip, halt)",
        "[12:00:08] run paused: awaiting a human decision (specs resume R2)",
    ]
    assert "\x1b" not in console.file.getvalue()  # type: ignore[attr-defined]


# -- JSON lines --------------------------------------------------------------------------------


def test_json_lines_parse_back() -> None:
    stream = io.StringIO()
    state = RunState(make_spec())
    events = events_until_gate() + events_after_gate()
    drive(JsonLinesView(stream), state, events)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(events)
    assert [ev.event_from_dict(json.loads(line)) for line in lines] == events


# -- live --------------------------------------------------------------------------------------


def test_live_frame_while_retrying() -> None:
    clock = Clock()
    view = LiveView(terminal(), goal="Turn the input into a report", get_time=clock,
                    spinner=False)
    state = RunState(make_spec())
    drive(view, state, events_until_gate()[:15], clock)  # 1.2 attempt 3 of primary failed
    drive(view, state, events_until_gate()[15:17], clock, start=16)  # backup_1 started
    text = render(view)
    assert "demo · run R1 · collaborative · running" in text
    assert "Goal: Turn the input into a report" in text
    assert "1/3 steps · 0:00:08" in text
    assert "▶ Task 1" in text and "Gather the input" in text
    assert "✓ 1.1" in text and "critical" in text.split("✓ 1.1")[1].splitlines()[0]
    row = next(line for line in text.splitlines() if "1.2" in line)
    assert "▶" in row and "Clean the data" in row and "attempt 1 · backup_1" in row
    assert "critical" not in row
    assert "↳ exit code 1: boom" in text
    assert "· Task 2" in text and "1 steps" in text


def test_live_frame_collapses_finished_tasks_and_shows_gate() -> None:
    clock = Clock()
    view = LiveView(terminal(), get_time=clock)
    state = RunState(make_spec())
    drive(view, state, events_until_gate(), clock)
    text = render(view)
    assert "2/3 steps" in text
    assert "Task 1" in text and "completed · 2 completed" in text
    assert "1.1" not in text and "1.2" not in text  # collapsed
    assert "⏸ gate before step 2.1: awaiting a human decision (specs approve R1 2.1)" in text
    assert "Render now?" in text
    drive(view, state, events_after_gate()[:4], clock, start=23)
    text = render(view)
    assert "gate before" not in text
    row = next(line for line in text.splitlines() if "2.1" in line)
    assert row.lstrip()[0] in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" and "attempt 1 · primary" in row


def test_live_notices_and_end() -> None:
    view = LiveView(terminal(), get_time=Clock())
    state = RunState(make_spec())
    drive(view, state, [
        ev.RunOpened(run_id="R3", descriptor="demo", spec={}, options={}, totals={}),
        ev.TaskStarted(task="1"),
        ev.StepStarted(step="1.1", mode="dynamic", critical=True),
        ev.StepEnded(step="1.1", status="failed", message="boom"),
        ev.StepStarted(step="1.2", mode="dynamic", critical=False),
        ev.StepEnded(step="1.2", status="skipped", skip_reason="depends on 1.1"),
        ev.Escalated(step="1.1", reasons=["failure_threshold"]),
        ev.ModeSwitched(from_mode="dynamic", to_mode="collaborative", reason="escalation"),
        ev.RunEnded(status="halted", reason="critical step failed", step="1.1"),
    ])
    text = render(view)
    assert "2/3 steps (1 failed)" in text
    assert "⚠ escalated at step 1.1: failure_threshold" in text
    assert "↻ mode switched: dynamic -> collaborative (escalation)" in text
    assert "run ended: halted at step 1.1, goal NOT_ACHIEVED: critical step failed" in text


def test_live_start_stop_prints_final_frame() -> None:
    console = terminal()
    view = LiveView(console, get_time=Clock(), refresh_per_second=50)
    state = RunState(make_spec())
    view.start()
    drive(view, state, events_until_gate() + events_after_gate())
    view.stop()
    view.stop()  # idempotent
    text = plain(console)
    final = text.rsplit("demo · run R1", 1)[1]
    assert "3/3 steps" in final and "run ended: completed, goal ACHIEVED" in final


def test_live_pause_for_a_prompt_and_resume_below_it() -> None:
    console = terminal()
    view = LiveView(console, get_time=Clock(), refresh_per_second=50)
    state = RunState(make_spec())
    view.start()
    drive(view, state, events_until_gate())
    view.pause()
    view.pause()  # idempotent
    console.file.write("Render now?\n> approve\n")  # type: ignore[attr-defined]
    view.resume()
    drive(view, state, events_after_gate(), start=23)
    view.stop()
    view.resume()  # not paused any more: nothing happens
    raw = console.file.getvalue()  # type: ignore[attr-defined]
    before, after = raw.split("> approve\n")
    assert "gate before step 2.1" in ANSI.sub("", before).rsplit("demo · run R1", 1)[1]
    assert "\x1b[1A" not in after.split("demo")[0]  # the new display does not climb over it
    assert "run ended: completed, goal ACHIEVED" in ANSI.sub("", after)


def test_live_trims_long_lists_to_the_screen() -> None:
    doc = {"goal": {"description": "many"}, "tasks": [
        {"id": t, "description": f"task {t}",
         "steps": [{"id": s, "description": f"step {s}", "expected_output": "x"}
                   for s in range(1, 31)]}
        for t in range(1, 21)]}
    spec, _ = spec_from_document(doc)
    assert spec is not None
    state = RunState(spec)
    view = LiveView(terminal(), get_time=Clock(), spinner=False)
    events: list[ev.Event] = [
        ev.RunOpened(run_id="R4", descriptor="big", spec={}, options={}, totals={})]
    for t in range(1, 10):
        events.append(ev.TaskStarted(task=str(t)))
        events.extend(ev.StepEnded(step=f"{t}.{s}", status="completed") for s in range(1, 31))
        events.append(ev.TaskEnded(task=str(t), status="completed"))
    events += [ev.TaskStarted(task="10"),
               *(ev.StepEnded(step=f"10.{s}", status="completed") for s in range(1, 15)),
               ev.StepStarted(step="10.15", mode="dynamic", critical=True)]
    drive(view, state, events)
    lines = render(view, height=25).splitlines()
    assert len(lines) <= 25
    assert any("▶ 10.15" in line and "step 15" in line for line in lines)
    assert any("earlier steps" in line for line in lines)
    assert any("more tasks" in line for line in lines)


# -- make_view ---------------------------------------------------------------------------------


def test_make_view_picks_views() -> None:
    tty = terminal()
    pipe = Console(file=io.StringIO())
    stream = io.StringIO()
    assert [type(v) for v in make_view(tty)] == [LiveView]
    assert [type(v) for v in make_view(tty, live=False)] == [PlainView]
    assert [type(v) for v in make_view(pipe, json_stream=stream)] == [PlainView, JsonLinesView]
    assert [type(v) for v in make_view(pipe, live=True)] == [PlainView]


def test_judge_and_research_lines_and_the_live_warning() -> None:
    events: list[ev.Event] = [
        ev.RunOpened(run_id="R5", descriptor="demo", spec={}, options={}, totals={}),
        ev.TaskStarted(task="1"),
        ev.ResearchStarted(task="1", sources=["documentation"], tools=["read_file"]),
        ev.ResearchEnded(task="1", status="done", key_findings=["a", "b"], confidence="low"),
        ev.StepStarted(step="1.1", mode="dynamic", critical=True),
        ev.AttemptStarted(step="1.1", method="primary", attempt=1),
        ev.CheckEnded(step="1.1", method="primary", attempt=1, kind="llm",
                      verdict="mismatch", reason="no team named"),
        ev.TaskStarted(task="2"),
        ev.ResearchEnded(task="2", status="skipped", warning="task 2 has no provider"),
    ]
    console = Console(file=io.StringIO(), width=200, no_color=True)
    drive(PlainView(console), RunState(make_spec()), events)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "task 1 research started (documentation)" in text
    assert "task 1 research done: 2 findings, confidence low" in text
    assert "step 1.1 attempt 1 (primary) LLM judge: mismatch: no team named" in text
    assert "warning: task 2 has no provider" in text
    view = LiveView(terminal(), get_time=Clock())
    drive(view, RunState(make_spec()), [*events])
    assert "⚠ task 2 has no provider" in render(view)
