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
- :class:`ParallelFacts` (reference §5.1 item 7): the parallel-execution fields of each step,
  each task's ``phases`` and the run's ``parallel_execution_summary``, measured from the
  events' times (docs/timeline.md).

Like :func:`specs.record.progress.progress_document`, every function is pure and reads no
clock. Statuses come out of :func:`canonical` (reference §4.2: write canonical values only).
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from specs import events as ev
from specs.engine.completion import provisional_completion
from specs.engine.state import RunState, StepState, TaskState
from specs.plan.cache import per_spec, spec_plan
from specs.spec.model import Spec
from specs.spec.project import critical_range

__all__ = [
    "ParallelFacts",
    "SpecFacts",
    "canonical",
    "completion",
    "compliance",
    "consecutive_counts",
    "execution_summary",
    "goal_status",
    "measured_critical_path",
    "overlapping",
    "parallel_summary",
    "post_execution_analysis",
    "run_end",
    "run_status",
    "spec_facts",
    "spec_plan",
    "synchronisation_points",
    "task_id",
    "to_epoch",
    "verification",
]

RUN_STATUSES = ("initializing", "resumed", "ready_for_execution", "running", "awaiting_human",
                "halted", "halted_validation", "aborted", "completed", "failed")
GOAL_STATUSES = ("ACHIEVED", "PARTIAL", "NOT_ACHIEVED")
TERMINAL_TASK = ("completed", "completed_with_failures", "failed", "skipped")
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
    open_tasks = [t.ref for t in state.tasks.values() if t.status not in TERMINAL_TASK]
    pending, orphaned, skipped, failed = [], [], [], []
    for s in steps:  # one pass: the statuses exclude each other
        if s.status == "pending":
            pending.append(s.ref)
        elif s.status == "started":
            if ended or state.tasks[s.task].status in TERMINAL_TASK:
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


# -- parallel execution (reference §5.1 item 7) --------------------------------------------------

Span = tuple[float, float]
"""A step's time on the clock: (first launch, last end), as Unix times."""

_FACTS: dict[int, tuple[weakref.ref[Spec], SpecFacts]] = {}


class SpecFacts:
    """What the progress document reads from a spec and its plan, derived once per spec
    object (see :func:`spec_facts`): the plan's phases of each task, its dependencies and
    order, and the steps' declared backups and dependencies."""

    def __init__(self, spec: Spec) -> None:
        self.plan = plan = spec_plan(spec)
        self.nodes: Mapping[str, Any] = plan.nodes if plan is not None else {}
        phases: dict[str, dict[int, list[str]]] = {}
        if plan is not None:
            for ref in plan.order:
                node = plan.nodes[ref]
                phases.setdefault(node.task, {}).setdefault(node.phase, []).append(ref)
        self.task_phases = {task: sorted(found.items()) for task, found in phases.items()}
        """task ref -> [(phase number, the task's steps in that phase)], by phase number"""
        self.deps: dict[str, Sequence[str]] = {r: n.deps for r, n in self.nodes.items()}
        steps = [(f"{task.ref}.{step.id}", task, step) for task, step in spec.steps()]
        self.declared = {ref: step.backups for ref, _, step in steps}
        """step ref -> its declared backups"""
        self.backup_ids = sorted({b.id for _, _, step in steps for b in step.backups})
        self.backup_texts = {(ref, b.id): b.description
                             for ref, _, step in steps for b in step.backups}
        self.depends_on = [
            (ref, [str(d) if "." in str(d) else f"{task.ref}.{d}" for d in step.depends_on])
            for ref, task, step in steps if step.depends_on]
        """(step ref, the refs it depends on, task-local ids qualified), in spec order"""


def spec_facts(spec: Spec) -> SpecFacts:
    """:class:`SpecFacts` of ``spec``, built once per spec object."""
    facts: SpecFacts = per_spec(_FACTS, spec, SpecFacts)
    return facts


@functools.lru_cache(maxsize=65536)
def _parse(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


def to_epoch(ts: str | None) -> float | None:
    """An event time (``2026-03-01T10:15:00.123Z``) as a Unix time; None when absent or bad."""
    return _parse(ts) if ts else None


def overlapping(spans: Mapping[str, Span]) -> set[str]:
    """The keys whose span overlaps another one's (touching at an end point does not count).

    One sweep in start order: a span overlaps an earlier one iff the latest end so far is past
    its start, and then it overlaps the span that holds that end as well.
    """
    found: set[str] = set()
    best_end, best_key = -math.inf, ""
    for start, end, key in sorted([(start, end, key) for key, (start, end) in spans.items()]):
        if best_end > start:
            found.update((key, best_key))
        if end > best_end:
            best_end, best_key = end, key
    return found


def synchronisation_points(phases: Sequence[Sequence[str]], spans: Mapping[str, Span]) -> int:
    """Phases where more than one step ran, at least two of them at the same time, and the
    next phase started only after all of them had ended (a barrier the run really waited at)."""
    count = 0
    for here, after in pairwise(phases):
        if len(here) < 2:
            continue
        ran = {ref: spans[ref] for ref in here if ref in spans}
        starts = [spans[ref][0] for ref in after if ref in spans]
        if len(ran) > 1 and starts and overlapping(ran) \
                and min(starts) >= max(end for _, end in ran.values()):
            count += 1
    return count


def measured_critical_path(spans: Mapping[str, Span], deps: Mapping[str, Sequence[str]],
                           order: Sequence[str] = ()) -> list[str]:
    """The chain of steps that set the run's length: from the step that ended last, back
    through the dependency each one waited for longest (the one that ended last; steps that
    did not run are looked through). Ties go to the later step in ``order``."""
    if not spans:
        return []
    rank = {ref: i for i, ref in enumerate(order)}

    def key(ref: str) -> tuple[float, int, str]:
        return spans[ref][1], rank.get(ref, len(rank)), ref

    def latest(refs: Sequence[str]) -> str:
        """``max(refs, key=key)``, comparing the ends first (the keys are unique)."""
        if len(refs) == 1:
            return refs[0]
        last = max(spans[ref][1] for ref in refs)
        ended_last = [ref for ref in refs if spans[ref][1] == last]
        return ended_last[0] if len(ended_last) == 1 else max(ended_last, key=key)

    node = latest(list(spans))
    path, seen = [node], {node}
    while True:
        direct = deps.get(node, ())
        if len(direct) == 1 and direct[0] in spans and direct[0] not in seen:  # a chain
            node = direct[0]
            path.append(node)
            seen.add(node)
            continue
        found = [d for d in direct if d in spans and d not in seen]
        if len(found) == len(direct):  # every dependency ran: no need to look through
            if not found:
                return path[::-1]
            node = latest(found)
            path.append(node)
            seen.add(node)
            continue
        found = []
        stack, visited = list(direct), set()
        while stack:
            dep = stack.pop()
            if dep in visited or dep in seen:
                continue
            visited.add(dep)
            if dep in spans:
                found.append(dep)
            else:
                stack.extend(deps.get(dep, ()))
        if not found:
            return path[::-1]
        node = latest(found)
        path.append(node)
        seen.add(node)


def parallel_summary(planned: ev.ExecutionPlanned | None, max_concurrent: int,
                     spans: Mapping[str, Span], phases: Sequence[Sequence[str]],
                     critical_path: Sequence[str], deps: Mapping[str, Sequence[str]],
                     order: Sequence[str] = ()) -> dict[str, Any]:
    """``parallel_execution_summary``: the run's limit and measured concurrency, the sum of
    the steps' times against the makespan (first launch to last end), the time parallelism
    saved, the synchronisation points and the critical path (the plan's, and the measured
    one). ``spans`` holds the steps that started: those that ended, and those still running
    (or cut short by an interruption) up to the moment the summary describes."""
    total = sum(end - start for start, end in spans.values())
    makespan = (max(end for _, end in spans.values())
                - min(start for start, _ in spans.values())) if spans else 0.0
    return {
        "enabled": bool(planned is not None and planned.parallel),
        "max_parallel": planned.max_parallel if planned is not None else 1,
        "max_concurrent_steps": max_concurrent,
        "sum_of_step_durations_s": round(total, 3),
        "makespan_s": round(makespan, 3),
        "time_saved_s": round(max(0.0, total - makespan), 3),
        "synchronisation_points": synchronisation_points(phases, spans),
        "critical_path": list(critical_path),
        "measured_critical_path": measured_critical_path(spans, deps, order),
    }


class ParallelFacts:
    """The parallel-execution facts of one progress document, computed once from the times
    the events recorded (no clock is read). Per step (``execution_id``, ``parallel_group``,
    ``thread_id``, ``launched_at``, ``completed_at``, ``execution_time_ms``,
    ``parallel_execution``, ``dependencies_satisfied``; the progress document builds those
    from :attr:`closed`, :attr:`parallel` and :attr:`nodes`), per task (:meth:`task_phases`:
    the plan's phases restricted to the task's steps) and for the run (:meth:`summary`).
    Sequential runs get the same keys (one thread, ``enabled: false``)."""

    def __init__(self, spec: Spec, state: RunState, now: float | None = None) -> None:
        self.state = state
        self.facts = spec_facts(spec)
        self.plan = self.facts.plan
        self.nodes = self.facts.nodes
        if now is None:
            now = to_epoch(state.last_event_at)
        self.now = now
        """the moment the facts describe: the given time, else the last event's"""
        self.closed: dict[str, Span] = {}  # started and ended: first launch -> last end
        self.ends: dict[str, float] = {}  # every step that ended (a skipped one too)
        spans: dict[str, Span] = {}  # also those running: up to ``now``
        self.spans = spans
        for ref, step in state.steps.items():
            start = to_epoch(step.started_at)
            end = to_epoch(step.ended_at)
            if end is not None:
                self.ends[ref] = end
            if start is None:
                continue
            if end is not None:
                spans[ref] = self.closed[ref] = (start, max(start, end))
            elif step.status == "started" and now is not None:
                spans[ref] = (start, max(start, now))
        self.parallel = overlapping(spans)
        """the steps whose span overlaps another's"""

    def task_phases(self, task: TaskState) -> list[dict[str, Any]]:
        """``phases[]`` of a task: ``phase_id`` (the plan's phase number, as ``specs plan``
        prints it), ``steps_in_phase`` (step ids), ``parallel_groups``, and ``phase_start``
        (first launch), ``phase_end`` (last end, once every step of the phase is final) and
        ``phase_duration_ms``."""
        out = []
        all_steps, closed, ends = self.state.steps, self.closed, self.ends
        nodes = self.nodes
        for number, refs in self.facts.task_phases.get(task.ref, ()):
            if len(refs) == 1 and refs[0] in all_steps:  # the common case, without the lists
                out.append(self._single_phase(number, all_steps[refs[0]], nodes))
                continue
            steps = [all_steps[r] for r in refs if r in all_steps]
            launched: list[tuple[float | None, str | None]] = [
                (closed[s.ref][0], s.started_at) for s in steps if s.ref in closed]
            launched += [(to_epoch(s.started_at), s.started_at) for s in steps
                         if s.started_at and s.ref not in closed]
            ended: list[tuple[float | None, str | None]] = [
                (ends[s.ref], s.ended_at) for s in steps if s.ref in ends]
            first = min(launched or ended, key=_first, default=(None, None))
            final = bool(steps) and all(s.status in ("completed", "failed", "skipped")
                                        and s.ended_at for s in steps)
            last = max(ended, key=_first) if final and ended else (None, None)
            groups = [nodes[r].parallel_group for r in refs if r in nodes]
            out.append({
                "phase_id": number,
                "steps_in_phase": [s.id for s in steps],
                "parallel_groups": list(dict.fromkeys(g for g in groups if g)),
                "phase_start": first[1],
                "phase_end": last[1],
                "phase_duration_ms": round((last[0] - first[0]) * 1000)
                if first[0] is not None and last[0] is not None else None,
            })
        return out

    def _single_phase(self, number: int, step: StepState,
                      nodes: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`task_phases` for a phase of one step (the same values, computed directly)."""
        ref = step.ref
        span = self.closed.get(ref)
        end = self.ends.get(ref)
        first_at: float | None
        if span is not None:
            first_at, first = span[0], step.started_at
        elif step.started_at:
            first_at, first = to_epoch(step.started_at), step.started_at
        elif end is not None:
            first_at, first = end, step.ended_at
        else:
            first_at = first = None
        last = step.ended_at if end is not None and step.ended_at \
            and step.status in ("completed", "failed", "skipped") else None
        node = nodes.get(ref)
        group = node.parallel_group if node is not None else None
        return {
            "phase_id": number,
            "steps_in_phase": [step.id],
            "parallel_groups": [group] if group else [],
            "phase_start": first,
            "phase_end": last,
            "phase_duration_ms": round((end - first_at) * 1000)
            if first_at is not None and last is not None and end is not None else None,
        }

    def summary(self) -> dict[str, Any]:
        """``parallel_execution_summary`` (see :func:`parallel_summary`)."""
        plan, planned = self.plan, self.state.planned
        if plan is not None:
            critical: Sequence[str] = plan.critical_path
            deps: Mapping[str, Sequence[str]] = self.facts.deps
        else:
            critical = planned.critical_path if planned is not None else []
            deps = {r: s.launch.get("dependencies_satisfied") or s.prior_step_dependencies
                    for r, s in self.state.steps.items()}
        return parallel_summary(planned, self.state.max_running, self.spans,
                                plan.phases if plan is not None else (), critical, deps,
                                plan.order if plan is not None else list(self.state.steps))


def _first(item: tuple[float | None, str | None]) -> float:
    return item[0] if item[0] is not None else math.inf
