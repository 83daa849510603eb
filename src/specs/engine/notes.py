"""What a run learned, as the engine records it: the content of a ``NotepadUpdated`` event for a
task (or step) that just ended (:func:`task_notes`). The notepad (:mod:`specs.record.notepad`)
renders these events; the engine emits them, so the log holds what was noted and when.
"""

from __future__ import annotations

from specs import events as ev
from specs.engine.state import GateState, RunState, StepState
from specs.spec.model import Spec

__all__ = ["gate_line", "research_note", "task_notes"]


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
