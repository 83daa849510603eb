"""The run page's data, projected on the server: a record per step, per task and for the run,
with only the fields the page shows (so a 5,000-step run's page and its live messages stay
small, and the browser never reduces events itself).

A step's record carries its **attempt lane**: its attempts in order (the primary, its
retries, each backup and its retries), the gates asked about it (approval before it, the
review of a critical failure, an escalation, a human step) and escalations, each with its
outcome; the attempt whose method won is marked. Records come from the run state the library
rebuilds from the events (:func:`specs.api.show_run`), or, for a run whose spec can no longer
be read, from the timeline drawn from the events alone (:mod:`specs.record.timeline`).
"""

from __future__ import annotations

from typing import Any

from specs.record.timeline import Bar, TimelineData

__all__ = ["lane_label", "run_header", "step_from_bar", "step_record", "task_record"]

#: a gate kind -> its name in the lane
GATE_LANE = {"before_step": "approval", "education": "approval", "human_step": "human",
             "critical_failure": "review", "escalation": "escalation"}


def lane_label(method: str, attempt: int) -> tuple[str, str]:
    """(kind, label) of an attempt in the lane: primary, retry n, backup k, backup k retry n."""
    if method == "primary":
        return ("primary", "primary") if attempt <= 1 else ("retry", f"retry {attempt - 1}")
    number = method.removeprefix("backup_")
    label = f"backup {number}" + (f" retry {attempt - 1}" if attempt > 1 else "")
    return "backup", label


def _tokens(usage: dict[str, Any] | None) -> int:
    return sum(int(v) for k, v in (usage or {}).items() if k in ("input_tokens",
                                                                    "output_tokens"))


def _won(lane: list[dict[str, Any]], method_used: str | None, status: str) -> None:
    if status != "completed" or not method_used:
        return
    for entry in reversed(lane):
        if entry.get("method") == method_used and entry.get("outcome") == "success":
            entry["won"] = True
            return


def step_record(step: Any, gates: list[Any], escalations: list[Any]) -> dict[str, Any]:
    """The record of a :class:`~specs.engine.state.StepState` (from a run view), with the
    gates (``GateState``) and escalations (``Escalated`` events) that concern it."""
    lane: list[dict[str, Any]] = []
    for a in step.attempts:
        kind, label = lane_label(a.method, a.attempt)
        lane.append({
            "kind": kind, "label": label, "method": a.method, "attempt": a.attempt,
            "round": a.round, "outcome": a.outcome or "running", "verdict": a.verdict,
            "failure_reason": a.failure_reason, "duration_ms": round(a.duration_ms or 0.0, 1),
            "exit_code": a.exit_code, "tokens": _tokens(a.usage), "cost_usd": a.cost_usd,
            "cached": a.cached, "started_at": a.started_at, "ended_at": a.ended_at,
            "guidance": a.guidance, "at": a.started_at})
    for gate in gates:
        lane.append({
            "kind": "gate", "label": GATE_LANE.get(gate.kind, gate.kind), "gate": gate.id,
            "gate_kind": gate.kind, "response": gate.response, "by": gate.by,
            "open": gate.response is None, "at": gate.requested_at,
            "answered_at": gate.answered_at})
    for escalated in escalations:
        lane.append({"kind": "escalation", "label": "escalation",
                     "reasons": list(escalated.reasons), "at": escalated.ts,
                     "recommendation": escalated.recommendation})
    lane.sort(key=lambda entry: entry["at"] or "")
    _won(lane, step.method_used, step.status)
    usage = step.llm_usage or {}
    return {
        "ref": step.ref, "task": step.task, "id": step.id, "description": step.description,
        "critical": step.critical, "status": step.status, "mode": step.mode,
        "started_at": step.started_at, "ended_at": step.ended_at,
        "method_used": step.method_used, "message": step.message,
        "skip_reason": step.skip_reason, "tokens": int(usage.get("total_tokens", 0)),
        "cost_usd": round(usage["cost_usd"], 6) if usage.get("calls") else None,
        "backups": list(step.backups_triggered), "lane": lane,
        "dependencies": list(step.prior_step_dependencies)}


def step_from_bar(bar: Bar) -> dict[str, Any]:
    """The record of a timeline bar: a run whose spec is gone, drawn from its events."""
    lane: list[dict[str, Any]] = []
    for s in bar.segments:
        kind, label = lane_label(s.method, s.attempt)
        lane.append({
            "kind": kind, "label": label, "method": s.method, "attempt": s.attempt,
            "round": s.round, "outcome": s.outcome, "verdict": s.verdict,
            "failure_reason": s.failure_reason,
            "duration_ms": None if s.end is None else round((s.end - s.start) * 1000, 1),
            "exit_code": s.exit_code, "tokens": 0, "cost_usd": None, "cached": False,
            "started_at": s.started_at, "ended_at": s.ended_at, "at": s.started_at})
    for marker in bar.markers:
        if marker.kind in ("gate", "escalation"):
            lane.append({"kind": "gate" if marker.kind == "gate" else "escalation",
                         "label": marker.kind, "text": marker.label, "at": marker.ts,
                         "open": marker.end is None and marker.kind == "gate"})
    lane.sort(key=lambda entry: entry["at"] or "")
    _won(lane, bar.method_used, bar.status)
    return {
        "ref": bar.ref, "task": bar.task, "id": bar.step_id, "description": bar.description,
        "critical": bar.critical, "status": bar.status, "mode": None,
        "started_at": bar.started_at, "ended_at": bar.ended_at,
        "method_used": bar.method_used, "message": bar.message,
        "skip_reason": bar.skip_reason, "tokens": 0, "cost_usd": None, "backups": [],
        "lane": lane, "dependencies": list(bar.dependencies)}


def task_record(ref: str, description: str, status: str,
                steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A task's line: its status and how many of its steps are where."""
    counts = {"pending": 0, "started": 0, "completed": 0, "failed": 0, "skipped": 0}
    for step in steps:
        counts[step["status"]] = counts.get(step["status"], 0) + 1
    return {"ref": ref, "description": description, "status": status, "total": len(steps),
            "counts": counts, "steps": [s["ref"] for s in steps]}


def run_header(*, run_id: str, spec: str, status: str, goal: str | None, mode: str | None,
               started: str | None, last: str | None, ended: str | None, steps_done: int,
               steps_total: int, tokens: int, cost_usd: float | None, live: bool,
               open_gates: int, seq: int) -> dict[str, Any]:
    """The run's line at the top of its page (and in every live message)."""
    return {"run_id": run_id, "spec": spec, "status": status, "goal": goal, "mode": mode,
            "started": started, "last": last, "ended": ended, "steps_done": steps_done,
            "steps_total": steps_total, "tokens": tokens, "cost_usd": cost_usd, "live": live,
            "open_gates": open_gates, "seq": seq}


def timeline_steps(data: TimelineData) -> list[dict[str, Any]]:
    return [step_from_bar(bar) for bar in data.bars()]
