"""The notepad: ``notepad_<descriptor>.md``, what a run learned, for the people who read it.

The SPEC Engine constitution makes knowledge capture mandatory (Art. XV.3; reference §3.11).
The engine calls :func:`task_notes` when a task ends and emits the result as a
``NotepadUpdated`` event: a one-line insight per task (how many steps completed, which needed a
backup and why, which failed or were skipped), technical notes (every failed attempt and its
reason, transient retries, partial matches), ideas (promote a backup that won, redesign a step
where every method failed) and the guidance humans gave at that task's gates.

:func:`notepad_text` renders the notepad from the run state in the shape of the original's
``notepad_template.md``: the header (SPEC, Execution Date, Status), one section per kind of
note with entries headed ``### Task X[/Step X.Y] - <timestamp>``, the observations (AI:
escalations and mode switches; Human: gate guidance and human notes) and the execution
timeline. Like the progress file it is a pure projection of the events (no clock is read), so
it only ever grows as the run goes on, and :class:`NotepadWriter` rewrites it atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from specs import events as ev
from specs.engine.state import GateState, RunState, StepState
from specs.record.analysis import goal_status, run_status
from specs.record.progress import preserve_foreign, write_text_atomic
from specs.spec.model import Spec

__all__ = ["NotepadWriter", "notepad_text", "task_notes"]

NOTE_SECTIONS = (("Key Insights", "insights", "Insight"),
                 ("Technical Notes", "technical_notes", "Technical Decision"),
                 ("Ideas for Enhancement", "ideas", "Idea"))
NOTHING = "_Nothing recorded yet._"

Entry = tuple[str, str, list[str]]  # (heading without the #s, timestamp, lines)


# -- the notes of one task -----------------------------------------------------------------------


def task_notes(spec: Spec, state: RunState, task_ref: str) -> dict[str, list[str]]:
    """The content of the ``NotepadUpdated`` event for a task that just ended."""
    task = state.tasks[task_ref]
    steps = [state.steps[ref] for ref in task.steps]
    spec_task = next((t for t in spec.tasks if t.ref == task_ref), None)
    texts = {f"{task_ref}.{s.id}": {f"backup_{b.id}": b.description for b in s.backups}
             for s in (spec_task.steps if spec_task else [])}
    research = state.research.get(task_ref)
    return {
        "insights": [_task_insight(task_ref, task.description, steps)]
        + [line for s in steps for line in _reflections(s)],
        "technical_notes": ([research_note(research)] if research is not None else [])
        + [line for s in steps for line in _technical(s)],
        "ideas": [line for s in steps for line in _ideas(s, texts.get(s.ref, {}))],
        "human": [gate_line(g) for g in state.gates.values() if g.guidance and g.step
                  and g.step in state.steps and state.steps[g.step].task == task_ref],
    }


def _reflections(step: StepState) -> list[str]:
    """The LLM judge's reflections on the step's attempts (``verify_with = "llm"``)."""
    return [f"step {step.ref} ({a.method} attempt {a.attempt}, judged {a.judge['verdict']}): "
            f"{a.judge['reflection']}" for a in step.round_attempts()
            if a.judge is not None and a.judge.get("reflection")]


def research_note(found: ev.ResearchEnded) -> str:
    """One line on a task's research phase."""
    if found.status != "done":
        return f"research {found.status}: {found.warning}"
    return (f"research: {len(found.key_findings)} findings, confidence {found.confidence}, "
            f"sources: {', '.join(found.sources) or 'none'}")


def _task_insight(ref: str, description: str, steps: list[StepState]) -> str:
    done = sum(s.status == "completed" for s in steps)
    clauses = [f"Task {ref} ({description}): {done} of {len(steps)} steps completed"]
    clauses += [c for s in steps if (c := _step_clause(s))]
    return "; ".join(clauses)


def _step_clause(step: StepState) -> str | None:
    used = step.method_used or ""
    if step.status == "completed" and used.startswith("backup_"):
        earlier = list(dict.fromkeys(a.method for a in step.round_attempts()
                                     if a.method != used))
        return (f"step {step.ref} needed {used} after the {' and '.join(earlier) or 'primary'} "
                f"failed: {_last_reason(step, 'primary') or 'no reason logged'}")
    if step.status == "completed" and used == "human_guided":
        return f"step {step.ref} completed with human guidance"
    if step.status == "completed" and step.retry_count:
        return f"step {step.ref} succeeded after {step.retry_count} primary retries"
    if step.status == "failed":
        kind = "critical" if step.critical else "non-critical"
        reason = step.message or _last_reason(step, None) or "no reason logged"
        return f"step {step.ref} failed ({kind}): {reason}"
    if step.status == "skipped":
        return f"step {step.ref} skipped: {step.skip_reason or step.message or 'no reason'}"
    return None


def _last_reason(step: StepState, method: str | None) -> str | None:
    for attempt in reversed(step.round_attempts()):
        if attempt.failure_reason and (method is None or attempt.method == method):
            return attempt.failure_reason
    return None


def _technical(step: StepState) -> list[str]:
    lines = []
    for a in step.round_attempts():
        if a.ended_at is not None and a.outcome != "success":
            kind = " (transient)" if a.transient else ""
            lines.append(f"step {step.ref} {a.method} attempt {a.attempt} failed{kind}: "
                         f"{a.failure_reason or a.outcome}")
    if step.retries_scheduled:
        lines.append(f"step {step.ref}: {step.retries_scheduled} transient "
                     f"retr{'y' if step.retries_scheduled == 1 else 'ies'} waited with backoff")
    if step.status == "completed" and step.expected_output_match is False:
        lines.append(f"step {step.ref} completed but only partly matched its expected output")
    return lines


def _ideas(step: StepState, backups: dict[str, str]) -> list[str]:
    used = step.method_used or ""
    if step.status == "completed" and used.startswith("backup_"):
        text = f" ({backups[used]})" if backups.get(used) else ""
        return [f"promote {used} of step {step.ref} to primary{text}"]
    if step.status == "failed" and step.backups_triggered:
        return [f"redesign step {step.ref}: the primary and every backup failed"]
    if step.status == "failed":
        return [f"add a backup to step {step.ref}: its primary failed with nothing to fall "
                "back on"]
    return []


def gate_line(gate: GateState) -> str:
    """How a human answer reads in the notepad (and in ``task_notes``'s ``human``)."""
    where = f"step {gate.step}" if gate.step else "the run"
    return f"{where}, {gate.kind} gate, {gate.response} by {gate.by}: {gate.guidance}"


# -- the notepad ---------------------------------------------------------------------------------


NOTEPAD_MARK = "<!-- generated by specs from the run's events; edits are replaced -->"


def notepad_text(spec: Spec, state: RunState, *, descriptor: str) -> str:
    """The whole notepad for the run as it stands (deterministic; no clock is read)."""
    parts = [_header(spec, state, descriptor)]
    for title, field, label in NOTE_SECTIONS:
        parts.append(_section(f"## {title}", _note_entries(state.notes, field, label)))
    parts.append(_section("## Cross-System Connections", []))
    parts.append("## Observations\n\n"
                 + _section("### AI Observations", _ai_entries(state), "####")
                 + _section("### Human Observations", _human_entries(state), "####"))
    parts.append(_timeline(state.notes))
    return "---\n\n".join(parts)


def _header(spec: Spec, state: RunState, descriptor: str) -> str:
    lines = [f"# Knowledge Capture: {descriptor} SPEC", "", NOTEPAD_MARK, "",
             f"**SPEC:** spec_{descriptor}.md  ",
             f"**Execution Date:** {state.started_at or 'not started'}  ",
             f"**Status:** {_status(state)}  ",
             f"**Run:** {state.run_id or '-'}  ",
             f"**Goal:** {spec.goal.description}", ""]
    return "\n".join(lines) + "\n"


def _status(state: RunState) -> str:
    """In Progress | Completed | Partial (template vocabulary)."""
    if state.end is None:
        return "In Progress"
    achieved = goal_status(state) in (None, "ACHIEVED")
    return "Completed" if run_status(state) == "completed" and achieved else "Partial"


def _heading(task: str, step: str | None, ts: str) -> str:
    return f"Task {task}/Step {step} - {ts}" if step else f"Task {task} - {ts}"


def _note_entries(notes: list[ev.NotepadUpdated], field: str, label: str) -> list[Entry]:
    out = []
    for note in notes:
        items: list[str] = getattr(note, field)
        if items:
            out.append((_heading(note.task, note.step, note.ts), note.ts,
                        [f"- **{label}:** {item}" for item in items]))
    return out


def _step_heading(state: RunState, step: str | None, ts: str) -> str:
    found = state.steps.get(step or "")
    return _heading(found.task, step, ts) if found else f"Run - {ts}"


def _ai_entries(state: RunState) -> list[Entry]:
    out = [(_step_heading(state, e.step, e.ts), e.ts,
            [f"- **Escalation:** {', '.join(e.reasons) or 'unspecified'}"
             + (f"; recommendation: {e.recommendation}" if e.recommendation else "")])
           for e in state.escalations]
    out += [(_step_heading(state, m.get("step"), m["timestamp"]), m["timestamp"],
             [f"- **Mode switch:** {m['from']} -> {m['to']} ({m['reason']})"])
            for m in state.mode_switches]
    return sorted(out, key=lambda e: e[1])


def _human_entries(state: RunState) -> list[Entry]:
    out: list[Entry] = []
    seen = set()
    for gate in state.gates.values():
        if gate.guidance and gate.answered_at:
            seen.add(gate_line(gate))
            out.append((_step_heading(state, gate.step, gate.answered_at), gate.answered_at,
                        [f"- **Guidance:** {gate_line(gate)}"]))
    for note in state.notes:
        lines = [f"- **Observation:** {h}" for h in note.human if h not in seen]
        if lines:
            out.append((_heading(note.task, note.step, note.ts), note.ts, lines))
    return sorted(out, key=lambda e: e[1])


def _section(title: str, entries: Iterable[Entry], level: str = "###") -> str:
    """A section with its entries headed ``<level> Task X[/Step X.Y] - <timestamp>``."""
    body = [f"{level} {heading}\n\n" + "\n".join(lines) + "\n"
            for heading, _, lines in entries]
    return f"{title}\n\n" + ("\n".join(body) if body else NOTHING + "\n") + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _timeline(notes: list[ev.NotepadUpdated]) -> str:
    rows = ["| Task | Insight | Timestamp |", "|------|---------|-----------|"]
    for note in notes:
        first = (note.insights or note.technical_notes or note.ideas or note.human or ["-"])[0]
        where = f"{note.task}/{note.step}" if note.step else note.task
        rows.append(f"| {_cell(where)} | {_cell(first)} | {note.ts} |")
    return "## Execution Timeline\n\n" + "\n".join(rows) + "\n"


# -- the writer ----------------------------------------------------------------------------------


class NotepadWriter:
    """Subscriber that rewrites the notepad when notes arrive (at most every ``interval``
    seconds) and always when the run pauses or ends."""

    ALWAYS = frozenset({"run-paused", "run-ended"})

    def __init__(self, spec: Spec, path: Path, *, descriptor: str | None = None,
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.path = path
        self.descriptor = descriptor
        self.interval = interval
        self.writes = 0
        self._clock = clock
        self._last = float("-inf")
        self._pending = False
        self._checked = False
        self._state: RunState | None = None

    def __call__(self, event: ev.Event, state: RunState) -> None:
        self._state = state
        if event.name == "notepad-updated":
            self._pending = True
        if event.name in self.ALWAYS or (
                self._pending and self._clock() - self._last >= self.interval):
            self._write(state)

    def flush(self, state: RunState | None = None) -> None:
        """Write now (the given state, else the last one seen); no-op before any event."""
        if state is None:
            state = self._state
        if state is not None:
            self._write(state)

    def _write(self, state: RunState) -> None:
        if state.mode_selected_at is None:
            return  # the run never started (validation failed): the spec folder is untouched
        if not self._checked:
            preserve_foreign(self.path, lambda text: NOTEPAD_MARK in text[:2048])
            self._checked = True
        descriptor = self.descriptor or state.descriptor or self.spec.descriptor
        write_text_atomic(self.path, notepad_text(self.spec, state, descriptor=descriptor))
        self.writes += 1
        self._pending = False
        self._last = self._clock()
