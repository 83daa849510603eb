"""The notepad: a task's notes, the rendered Markdown, and the writer."""

from __future__ import annotations

from pathlib import Path

from record_scenario import GUIDANCE, index_of, make_spec, replay, scenario
from specs import events as ev
from specs.engine.notes import task_notes
from specs.record.notepad import NotepadWriter, notepad_text


def section(text: str, title: str) -> str:
    """The body of one ``## title`` / ``### title`` section, up to the next heading as deep
    (or a ``---`` rule)."""
    level = title.split(" ")[0]
    start = text.index(title + "\n") + len(title) + 1
    ends = [i for i in (text.find("\n" + level + " ", start), text.find("\n## ", start),
                        text.find("\n---", start)) if i >= 0]
    return text[start:min(ends)] if ends else text[start:]


def test_task_notes_after_task_1() -> None:
    spec, events = make_spec(), scenario()
    state = replay(spec, events, index_of(events, "task-ended", task="1"))
    notes = task_notes(spec, state, "1")
    assert notes["insights"] == [
        "Task 1 (Gather the input): 2 of 3 steps completed; step 1.2 needed backup_1 after "
        "the primary failed: exit code 1; step 1.3 failed (non-critical): enrichment failed; "
        "continuing"]
    assert notes["technical_notes"] == [
        "step 1.2 primary attempt 1 failed: exit code 1",
        "step 1.2 primary attempt 2 failed: exit code 1",
        "step 1.3 primary attempt 1 failed (transient): timeout",
        "step 1.3 primary attempt 2 failed: service unreachable",
        "step 1.3: 1 transient retry waited with backoff"]
    assert notes["ideas"] == [
        "promote backup_1 of step 1.2 to primary (Copy the cached export)",
        "add a backup to step 1.3: its primary failed with nothing to fall back on"]
    assert notes["human"] == []


def test_task_notes_carry_the_guidance_given_at_the_task_gates() -> None:
    spec, events = make_spec(), scenario()
    state = replay(spec, events, index_of(events, "task-ended", task="2"))
    notes = task_notes(spec, state, "2")
    assert notes["human"] == [f"step 2.1, before_step gate, guidance by cli: {GUIDANCE}"]
    assert notes["insights"] == [
        "Task 2 (Write the report): 1 of 2 steps completed; step 2.1 completed with human "
        "guidance; step 2.2 skipped: condition_false"]


def test_notepad_of_a_finished_run() -> None:
    spec = make_spec()
    text = notepad_text(spec, replay(spec, scenario()), descriptor="demo")
    assert text.startswith("# Knowledge Capture: demo SPEC\n")
    assert "**SPEC:** spec_demo.md" in text
    assert "**Execution Date:** 2026-03-01T10:15:00.000Z" in text
    assert "**Status:** Completed" in text
    for title in ("## Key Insights", "## Technical Notes", "## Ideas for Enhancement",
                  "## Cross-System Connections", "## Observations", "### AI Observations",
                  "### Human Observations", "## Execution Timeline"):
        assert f"\n{title}\n" in text
    insights = section(text, "## Key Insights")
    assert "### Task 1 - 2026-03-01T10:15:31.000Z" in insights
    assert "- **Insight:** Task 1 (Gather the input): 2 of 3 steps completed" in insights
    assert "### Task 2 - 2026-03-01T10:15:46.000Z" in insights
    assert "- **Technical Decision:** step 1.2 primary attempt 1 failed: exit code 1" in \
        section(text, "## Technical Notes")
    assert "- **Idea:** promote backup_1 of step 1.2 to primary" in \
        section(text, "## Ideas for Enhancement")
    assert "_Nothing recorded yet._" in section(text, "## Cross-System Connections")


def test_observations_and_timeline() -> None:
    spec = make_spec()
    text = notepad_text(spec, replay(spec, scenario()), descriptor="demo")
    ai = section(text, "### AI Observations")
    assert "#### Task 1/Step 1.3 - 2026-03-01T10:15:24.000Z" in ai
    assert "- **Escalation:** consecutive_failures" in ai
    assert "- **Mode switch:** dynamic -> collaborative (escalation)" in ai
    human = section(text, "### Human Observations")
    assert "#### Task 2/Step 2.1 - 2026-03-01T10:15:37.000Z" in human
    assert human.count(GUIDANCE) == 1  # the gate and task 2's note say the same thing once
    timeline = section(text, "## Execution Timeline")
    assert "| Task | Insight | Timestamp |" in timeline
    assert "| 1 | Task 1 (Gather the input): 2 of 3 steps completed | " \
        "2026-03-01T10:15:31.000Z |" in timeline
    assert timeline.count("\n| ") == 3  # header + two rows


def test_status_in_progress_and_partial() -> None:
    spec, events = make_spec(), scenario()
    early = notepad_text(spec, replay(spec, events, 5), descriptor="demo")
    assert "**Status:** In Progress" in early
    assert "_Nothing recorded yet._" in section(early, "## Key Insights")
    partial = [*events[:-1], type(events[-1])(seq=99, ts=events[-1].ts, status="halted")]
    assert "**Status:** Partial" in notepad_text(spec, replay(spec, partial), descriptor="demo")


def test_goal_status_in_the_header() -> None:
    """Every run that ended or paused names its goal status; a provisional one says so."""
    spec, events = make_spec(), scenario()
    done = notepad_text(spec, replay(spec, events), descriptor="demo")
    assert "**Goal Status:** ACHIEVED  \n" in done
    paused = notepad_text(spec, replay(spec, events, index_of(events, "run-paused")),
                          descriptor="demo")
    assert "**Goal Status:** NOT_ACHIEVED (as of the run's pause; a resume can change it)" \
        in paused
    cut = index_of(events, "step-ended", step="2.1")
    halted = [*events[:cut], ev.RunEnded(seq=99, ts=events[cut].ts, status="halted")]
    assert "**Goal Status:** PARTIAL (as of the run's end; a resume can change it)" in \
        notepad_text(spec, replay(spec, halted), descriptor="demo")
    running = notepad_text(spec, replay(spec, events, 5), descriptor="demo")
    assert "Goal Status" not in running


def test_deterministic() -> None:
    spec, events = make_spec(), scenario()
    assert notepad_text(spec, replay(spec, events), descriptor="demo") == \
        notepad_text(make_spec(), replay(make_spec(), events), descriptor="demo")


def test_writer_writes_only_on_notes_pause_and_end(tmp_path: Path) -> None:
    spec, events = make_spec(), scenario()
    path = tmp_path / "notepad_demo.md"
    clock = [0.0]
    writer = NotepadWriter(spec, path, interval=1.0, clock=lambda: clock[0])
    state = replay(spec, [])
    expected = 0
    for event in events:
        clock[0] += 10.0  # notes far apart: each is written
        state.apply(event)
        writer(event, state)
        expected += event.name in ("notepad-updated", "run-paused", "run-ended")
    assert writer.writes == expected == 4
    assert path.read_text(encoding="utf-8") == notepad_text(spec, state, descriptor="demo")
    assert [p.name for p in tmp_path.iterdir()] == ["notepad_demo.md"]
    writer.flush()
    assert writer.writes == 5


def test_writer_throttles_notes_but_always_writes_the_end(tmp_path: Path) -> None:
    spec, events = make_spec(), scenario()
    writer = NotepadWriter(spec, tmp_path / "notepad_demo.md", interval=1.0, clock=lambda: 5.0)
    state = replay(spec, [])
    for event in events:
        state.apply(event)
        writer(event, state)
    notes = sum(e.name == "notepad-updated" for e in events)
    ends = sum(e.name in ("run-paused", "run-ended") for e in events)
    assert notes > 1
    # the clock never moves: only the first note is written on its own, then the end
    assert writer.writes == 1 + ends
    assert (tmp_path / "notepad_demo.md").read_text(encoding="utf-8") == notepad_text(
        spec, state, descriptor="demo")


def test_writer_keeps_a_notepad_it_did_not_write_and_skips_unstarted_runs(
        tmp_path: Path) -> None:
    spec = make_spec()
    path = tmp_path / "notepad_demo.md"
    path.write_text("# my own notes\n")
    writer = NotepadWriter(spec, path)
    unstarted = replay(spec, [])
    writer(ev.RunEnded(status="halted_validation"), unstarted)
    assert writer.writes == 0 and path.read_text() == "# my own notes\n"
    state = replay(spec, scenario())
    writer(ev.RunEnded(status="completed"), state)
    assert (tmp_path / "notepad_demo.before-specs.md").read_text() == "# my own notes\n"
    assert "generated by specs" in path.read_text()
