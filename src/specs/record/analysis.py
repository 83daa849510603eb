"""What a run amounts to: the computed sections of the progress file (reference §3.12-§3.13).

Each function reads a :class:`~specs.engine.state.RunState` (and the spec, for backup texts,
dependencies and the critical range) and returns one JSON-ready section:

- :func:`execution_summary` (R-LOG, run end): counts of tasks, steps, retries, backups used,
  critical errors, mode switches, propagation events, the run's duration;
- :func:`compliance` (R-COMP, Art. X.4): the violations found before the run (from the
  validation summary) and during it (an unresolved critical failure, Art. IX; a backup used
  without logged failures of the earlier methods, Art. XI-method / R-RETRY-4), and the score
  ``max(0, 100 - 10 * critical - 2 * warning)``;
- :func:`verification` (R-VER-3): are all tasks terminal, which steps were left pending,
  orphaned or skipped, which critical failures stay unresolved, which dependencies were unmet;
- :func:`post_execution_analysis` (R-POST): failure patterns, backup success, escalation
  triggers, the critical balance and rule-based recommendations;
- :func:`goal_status` and :func:`completion` (R-DONE): the goal status and
  ``completion_verification``, provisional for a run that stopped before its checks.

The parallel-execution fields are :mod:`specs.record.parallel`'s.

Like :func:`specs.record.progress.progress_document`, every function is pure and reads no
clock. Statuses come out of :func:`canonical` (reference §4.2: write canonical values only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from specs import events as ev
from specs.engine.completion import provisional_completion
from specs.engine.state import TASK_FINAL, RunState, StepState
from specs.record.facts import spec_facts
from specs.spec.model import Spec
from specs.spec.project import critical_range

__all__ = [
    "GOAL_STATUSES",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "TASK_STATUSES",
    "canonical",
    "completion",
    "compliance",
    "consecutive_counts",
    "execution_summary",
    "goal_status",
    "post_execution_analysis",
    "run_end",
    "run_status",
    "task_id",
    "verification",
]

# The canonical statuses a projection writes (reference §4.2; docs/glossary.md "Statuses")
STEP_STATUSES = ("pending", "started", "completed", "failed", "skipped")
TASK_STATUSES = ("pending", "in_progress", "completed", "completed_with_failures", "failed",
                 "skipped")
RUN_STATUSES = ("initializing", "resumed", "ready_for_execution", "running", "awaiting_human",
                "halted", "halted_validation", "aborted", "completed", "failed")
GOAL_STATUSES = ("ACHIEVED", "PARTIAL", "NOT_ACHIEVED")
ALIASES = {
    "complete": "completed", "completed_enhanced": "completed", "deployment_ready": "completed",
    "ready_for_deployment": "completed", "code_complete": "completed",
    "code_complete_pending_verification": "completed", "retried": "started",
    "in-progress": "in_progress", "paused": "awaiting_human", "halted_on_critical": "halted",
    "EXCEEDED": "ACHIEVED", "NOT ACHIEVED": "NOT_ACHIEVED",
}
ESCALATION_GROUPS = ("consecutive_failures", "backup_depletion", "confidence_degradation",
                     "critical_failure")
FREQUENT_FAILURES = 2  # failed attempts that make a step "frequently failing"
REDESIGN_FAILURES = 3  # R-POST: a step failed >= 3 times -> redesign or re-flag it


def canonical(value: str | None, allowed: tuple[str, ...], fallback: str) -> str:
    """``value`` when canonical, its canonical alias (reference §4.2), else ``fallback``."""
    if value in allowed:
        return value
    mapped = ALIASES.get(value or "")
    return mapped if mapped in allowed else fallback


def run_status(state: RunState) -> str:
    return canonical(state.status, RUN_STATUSES, "failed" if run_end(state) else "running")


def run_end(state: RunState) -> ev.RunEnded | None:
    """The event that ended the run as it stands; None while it runs, a resumed run too
    (``state.end`` keeps the end a resume continues from: only a new end replaces it)."""
    end = state.end
    return end if end is not None and state.status == end.status else None


def completion(state: RunState) -> dict[str, Any] | None:
    """What ``completion_verification`` reports: the completion checks' verdict once they
    ran; for a run that ended or paused before them, the provisional verdict of the steps as
    they stand (:func:`~specs.engine.completion.provisional_completion`: NOT_ACHIEVED or
    PARTIAL, until a resume changes it); None while the run goes on."""
    found = state.completion
    if found is not None:
        return {"checks": found.checks, "overall_status": found.overall_status,
                "goal_achievement_status": found.goal_achievement_status,
                "gaps": found.gaps, "timestamp": found.ts}
    end = run_end(state)
    stop = end if end is not None else state.paused
    if stop is None:
        return None
    out = provisional_completion(state)
    if end is not None and end.goal_achievement_status:  # the engine's own verdict wins
        out["goal_achievement_status"] = end.goal_achievement_status
    out["timestamp"] = stop.ts
    return out


def goal_status(state: RunState) -> str | None:
    """ACHIEVED | PARTIAL | NOT_ACHIEVED as of the run's end or pause (see
    :func:`completion`); None while the run goes on."""
    found = completion(state)
    raw = found["goal_achievement_status"] if found is not None else None
    if not raw:
        return None
    text = ALIASES.get(raw.strip().upper(), raw.strip().upper().replace(" ", "_"))
    return text if text in GOAL_STATUSES else None


def _ended_at(state: RunState) -> str | None:
    """When the run ended, else the last event's time (what is known so far)."""
    end = run_end(state)
    return end.ts if end is not None else state.last_event_at


def task_id(ref: str) -> int | str:
    """The original's int id when the task ref is one, else the ref (``"2.1"`` SPECLet.task)."""
    return int(ref) if ref.isdigit() else ref


def consecutive_counts(state: RunState) -> dict[str, int]:
    """R-ESC-1 counter as it stood when each completed/failed step ended.

    Replays the step ends in time order: +1 on a failure, 0 on a completion, 0 when a new task
    begins and when an escalation reset the counter.
    """
    marks: list[tuple[str, int, int, StepState | None]] = []
    for index, step in enumerate(state.steps.values()):
        if step.status in ("completed", "failed") and step.ended_at:
            marks.append((step.ended_at, 0, index, step))
    for index, escalation in enumerate(state.escalations):
        if "consecutive_failures" in escalation.reset:
            marks.append((escalation.ts, 1, index, None))
    marks.sort()  # (time, kind, index) is unique: the step never decides the order
    counts: dict[str, int] = {}
    count, task = 0, None
    for _, _, _, ended in marks:
        if ended is None:
            count = 0
            continue
        if ended.task != task:
            count, task = 0, ended.task
        count = count + 1 if ended.status == "failed" else 0
        counts[ended.ref] = count
    return counts


def duration_s(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except ValueError:
        return None
    return round(delta.total_seconds(), 3)


# -- execution summary ---------------------------------------------------------------------------


def execution_summary(spec: Spec, state: RunState) -> dict[str, Any]:
    steps = list(state.steps.values())
    tasks = list(state.tasks.values())
    succeeded = failed = skipped = retries = propagated = 0
    critical_errors = []
    for s in steps:  # one pass: a run can have thousands of steps
        if s.status == "completed":
            succeeded += 1
        elif s.status == "failed":
            failed += 1
            if s.critical:
                critical_errors.append({"task_id": task_id(s.task), "step_id": s.id,
                                        "ref": s.ref, "resolved": s.resolved})
        elif s.status == "skipped":
            skipped += 1
        if len(s.attempts) > 1:  # fewer attempts: no retry
            retries += s.retry_count
        if s.error_propagation_decision not in ("none", ""):
            propagated += 1
    return {
        "total_tasks": len(tasks),
        "tasks_attempted": sum(t.started_at is not None for t in tasks),
        "tasks_completed": sum(t.status in ("completed", "completed_with_failures")
                               for t in tasks),
        "total_steps": len(steps),
        "steps_succeeded": succeeded,
        "steps_failed": failed,
        "steps_skipped": skipped,
        "total_retries": retries,
        "backups_used": _backups_used(spec, steps),
        "critical_errors": critical_errors,
        "mode_switches": len(state.mode_switches),
        "escalations": len(state.escalations),
        "human_interactions": len(state.gates),
        "propagation_events": propagated,
        "runtime_duration_s": duration_s(state.started_at, _ended_at(state)),
        "final_consecutive_failure_count": state.consecutive_failures,
    }


def _backups_used(spec: Spec, steps: list[StepState]) -> dict[str, int]:
    """``{backup_<k>: steps that tried it}`` for every backup id the spec declares."""
    tried = [s.backups_triggered for s in steps if s.backups_triggered]
    ids = set(spec_facts(spec).backup_ids)
    for found in tried:
        ids.update(found)
    return {f"backup_{k}": sum(k in found for found in tried) for k in sorted(ids)}


# -- constitutional compliance -------------------------------------------------------------------


def compliance(spec: Spec, state: RunState) -> dict[str, Any]:
    # violations are flat dicts of strings: a copy of each is a deep copy
    found = [{**v} for v in state.validation.violations] if state.validation else []
    found += _critical_failure_violations(state)
    found += _method_order_violations(spec, state)
    severities = [v.get("severity") for v in found]
    critical, warning = severities.count("critical"), severities.count("warning")
    return {
        "checks_performed": ["pre-flight validation", "Art. IX critical failures escalated",
                             "Art. XI-method backup order and justification"],
        "violations_detected": found,
        "violations_critical": critical,
        "violations_warning": warning,
        "violations_by_severity": {"critical": critical, "warning": warning},
        "compliance_score": max(0, 100 - 10 * critical - 2 * warning),
    }


def _violation(article: str, section: str, step: StepState, description: str, severity: str,
               action: str) -> dict[str, Any]:
    return {"article": article, "section": section, "description": description,
            "task_id": task_id(step.task), "step_id": step.id, "ref": step.ref,
            "severity": severity, "timestamp": step.ended_at, "corrective_action": action}


def _critical_failure_violations(state: RunState) -> list[dict[str, Any]]:
    """Art. IX: a critical step that exhausted its methods must reach a human; one that did
    and is still unresolved is a warning, one that never did is critical."""
    asked = {e.step for e in state.escalations} | {g.step for g in state.gates.values()}
    out = []
    for ref in state.unresolved_critical_failures():
        step = state.steps[ref]
        if ref in asked:
            out.append(_violation("IX", "IX.4", step, f"critical step {ref} failed and is "
                                  "still unresolved", "warning", "await the human decision"))
        else:
            out.append(_violation("IX", "IX.4", step, f"critical step {ref} failed after "
                                  "every method without an escalation", "critical",
                                  "review the failure; resume with a decision"))
    return out


def _method_order_violations(spec: Spec, state: RunState) -> list[dict[str, Any]]:
    """R-RETRY-4 post-run check: ``method_used = backup_n`` needs logged failures of the
    primary and of backups 1..n-1, and a backup justification (unless a human chose it)."""
    out = []
    for step in state.steps.values():
        used = step.method_used or ""
        if not used.startswith("backup_") or not used[7:].isdigit() or step.start_method:
            continue
        declared = spec_facts(spec).declared.get(step.ref, [])
        earlier = ["primary"] + [f"backup_{b.id}" for b in declared if b.id < int(used[7:])]
        failed = {a.method for a in step.round_attempts()
                  if a.ended_at and a.outcome != "success"}
        missing = [m for m in earlier if m not in failed]
        if missing:
            out.append(_violation("XI-method", "XI.3", step, f"step {step.ref} used {used} "
                                  f"without logged failures of {', '.join(missing)}",
                                  "warning", "log every method's failure before a backup"))
        elif not step.justification.get("backup_justification"):
            out.append(_violation("XI-method", "XI.3", step, f"step {step.ref} used {used} "
                                  "without a backup justification", "warning",
                                  "log why the backup was chosen"))
    return out


# -- verification (R-VER-3) ----------------------------------------------------------------------


def verification(spec: Spec, state: RunState) -> dict[str, Any]:
    ended = run_end(state) is not None
    steps = list(state.steps.values())
    open_tasks = [t.ref for t in state.tasks.values() if t.status not in TASK_FINAL]
    pending, orphaned, skipped, failed = [], [], [], []
    for s in steps:  # one pass: the statuses exclude each other
        if s.status == "pending":
            pending.append(s.ref)
        elif s.status == "started":
            if ended or state.tasks[s.task].status in TASK_FINAL:
                orphaned.append(s.ref)
        elif s.status == "skipped":
            skipped.append(s.ref)
        elif s.status == "failed":
            failed.append(s.ref)
    found: dict[str, Any] = {
        "all_tasks_terminal": not open_tasks,
        "non_terminal_tasks": open_tasks,
        "pending_steps": pending,
        "orphaned_steps": orphaned,
        "skipped_steps": skipped,
        # the skips that lower the goal (engine.completion.goal_of): a false condition's is none
        "critical_steps_skipped": [r for r in skipped if state.steps[r].critical
                                   and state.steps[r].skip_reason != "condition_false"],
        "failed_steps": failed,
        "unresolved_critical_failures": state.unresolved_critical_failures(),
        "unmet_dependencies": _unmet_dependencies(spec, state),
        "mode_switches_logged": len(state.mode_switches),
    }
    reasons = [code for code, key in (
        ("tasks_not_terminal", "non_terminal_tasks"), ("steps_pending", "pending_steps"),
        ("steps_orphaned", "orphaned_steps"), ("steps_skipped", "critical_steps_skipped"),
        ("steps_failed", "failed_steps"),
        ("unresolved_critical_failure", "unresolved_critical_failures"),
        ("unmet_dependencies", "unmet_dependencies")) if found[key]]
    blocking = {"tasks_not_terminal", "steps_pending", "steps_orphaned",
                "unresolved_critical_failure"}
    found["partial_completion_reasons"] = reasons
    found["status"] = ("FAIL" if blocking & set(reasons) else "PASS") if ended else None
    return found


def _unmet_dependencies(spec: Spec, state: RunState) -> list[dict[str, Any]]:
    """Steps that did not complete while a step they depend on failed or was skipped."""
    out = []
    for ref, deps in spec_facts(spec).depends_on:
        mine = state.steps.get(ref)
        if mine is None or mine.status == "completed":
            continue
        unmet = [d for d in deps if d in state.steps
                 and state.steps[d].status in ("failed", "skipped")]
        if unmet:
            out.append({"step": ref, "depends_on": unmet})
    return out


# -- post-execution analysis (R-POST) ------------------------------------------------------------


def post_execution_analysis(spec: Spec, state: RunState) -> dict[str, Any]:
    steps = list(state.steps.values())
    finished = [s for s in steps if s.status in ("completed", "failed")]
    backups = _backup_stats(spec, steps)
    uses = sum(b["uses"] for b in backups)
    balance = _critical_balance(spec, state, steps)
    return {
        "timestamp": _ended_at(state),
        "failure_patterns": {
            "steps_that_frequently_fail": _frequent_failures(steps),
            "overall_failure_rate": round(sum(s.status == "failed" for s in finished)
                                          / len(finished), 3) if finished else 0.0,
            "most_successful_backups": backups,
            "backup_success_rate": round(sum(b["successes"] for b in backups) / uses, 3)
            if uses else None,
        },
        "mode_escalation_analysis": {
            "total_escalations": len(state.escalations),
            "escalation_triggers": _trigger_counts(state),
            "mode_switches": len(state.mode_switches),
            "human_interactions": len(state.gates),
        },
        "constitutional_compliance_review": {"article_vi_critical_balance": balance},
        "recommendations": _recommendations(state, steps, backups, balance),
    }


def _failures(step: StepState) -> int:
    return sum(a.ended_at is not None and a.outcome != "success" for a in step.attempts)


def _frequent_failures(steps: list[StepState]) -> list[dict[str, Any]]:
    counted = [(s, _failures(s)) for s in steps if len(s.attempts) >= FREQUENT_FAILURES]
    found = [(s, n) for s, n in counted if n >= FREQUENT_FAILURES]
    found.sort(key=lambda item: -item[1])
    return [{"task_id": task_id(s.task), "step_id": s.id, "ref": s.ref,
             "failure_count": n, "retry_count": s.retry_count, "status": s.status}
            for s, n in found]


def _backup_stats(spec: Spec, steps: list[StepState]) -> list[dict[str, Any]]:
    """Each backup identity (``backup_<n>`` + its text, as R-ESC-2): uses and successes."""
    texts = spec_facts(spec).backup_texts
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    for step in steps:
        for k in step.backups_triggered:
            label, text = f"backup_{k}", texts.get((step.ref, k), "")
            entry = stats.setdefault((label, text), {
                "backup": label, "backup_description": text, "steps": [], "uses": 0,
                "successes": 0})
            entry["steps"].append(step.ref)
            entry["uses"] += 1
            entry["successes"] += step.status == "completed" and step.method_used == label
    for entry in stats.values():
        entry["success_rate"] = round(entry["successes"] / entry["uses"], 3)
    return sorted(stats.values(), key=lambda e: (-e["success_rate"], -e["uses"], e["backup"],
                                                 e["backup_description"]))


def _trigger_counts(state: RunState) -> dict[str, int]:
    counts = dict.fromkeys(ESCALATION_GROUPS, 0)
    for escalation in state.escalations:
        for reason in escalation.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def _critical_range(spec: Spec, state: RunState) -> tuple[float, float]:
    """Art. VI range the run was validated against (spec, then project constitution)."""
    recorded = state.validation.critical_range if state.validation is not None else None
    if recorded and len(recorded) == 2:
        return float(recorded[0]), float(recorded[1])
    return critical_range(spec, None)


def _critical_balance(spec: Spec, state: RunState, steps: list[StepState]) -> dict[str, Any]:
    low, high = _critical_range(spec, state)
    ratio = round(sum(s.critical for s in steps) / len(steps), 3) if steps else 0.0
    return {"overall_ratio": ratio, "range": [low, high],
            "compliant": not steps or low <= ratio <= high}


def _recommendations(state: RunState, steps: list[StepState], backups: list[dict[str, Any]],
                     balance: dict[str, Any]) -> list[str]:
    """R-POST rules: promote a backup that always won, redesign a step that failed >= 3
    times, adjust the critical flags outside the range, split a task where most steps failed."""
    out = []
    for b in backups:
        if b["uses"] and b["successes"] == b["uses"]:
            what = f" ({b['backup_description']})" if b["backup_description"] else ""
            out.append(f"Promote {b['backup']} of step {', '.join(b['steps'])} to the primary "
                       f"method: it succeeded in {b['successes']} of {b['uses']} uses{what}")
    for step in steps:
        if len(step.attempts) >= REDESIGN_FAILURES and _failures(step) >= REDESIGN_FAILURES:
            out.append(f"Redesign step {step.ref} or revisit its critical flag: "
                       f"{_failures(step)} failed attempts")
    if not balance["compliant"]:
        low, high = balance["range"]
        out.append(f"Adjust the critical flags: {balance['overall_ratio']:.0%} of steps are "
                   f"critical, outside {low:.0%}-{high:.0%} (Art. VI)")
    failed_in: dict[str, int] = {}
    for task_ref in [s.task for s in steps if s.status == "failed"]:
        failed_in[task_ref] = failed_in.get(task_ref, 0) + 1
    for task in state.tasks.values():
        failed = failed_in.get(task.ref, 0)
        if failed * 2 > len(task.steps):
            out.append(f"Split task {task.ref}: {failed} of its {len(task.steps)} steps failed")
    return out
