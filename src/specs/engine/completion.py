"""Completion verification (R-DONE): is the goal ACHIEVED, PARTIAL or NOT_ACHIEVED?

Run at the end of a run, before any ACHIEVED is written. Inputs: the final step statuses and the
executable parts of the Definition of Complete:

- ``[[completion_criteria.checks]]`` tables ``{criterion = "...", command = "..."}``: each
  command runs in the workspace and must exit 0;
- ``primary_deliverable``, when it names a path (no spaces): it must exist and be non-empty.

Criteria written only as prose cannot be judged without a verifier (an LLM judge comes with
cognitive steps); they are listed as ``unverified`` and do not lower the status.

Status (reference §3.12, :func:`goal_of`): NOT_ACHIEVED when a critical step failed (resolved
or not: an accepted failure still counts against completion), a critical step did not run, or
the primary deliverable is missing; PARTIAL when a check failed, a non-critical step failed or
did not run, or a critical step was skipped, except by its own condition (``skip_reason =
"condition_false"``: the spec said the step is not needed then, so the skip is no gap);
otherwise ACHIEVED.

A run that stops before its end (halted, aborted, paused, interrupted) has its goal judged as
of that moment by :func:`provisional_completion`: the same step rules, without running the
checks, so it is NOT_ACHIEVED or PARTIAL, never ACHIEVED, and a resume can change it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specs.engine.state import STEP_FINAL, RunState
from specs.executors.command import run_process
from specs.spec.model import Spec

CHECK_TIMEOUT_S = 600.0


async def verify_completion(spec: Spec, state: RunState, workspace: Path,
                            env: dict[str, str]) -> dict[str, Any]:
    """The content of the completion-verified event."""
    checks: dict[str, Any] = {}
    gaps: list[str] = []
    criteria = spec.completion_criteria
    results = []
    for index, item in enumerate((criteria.checks if criteria else None) or []):
        command = str(item.get("command") or item.get("check") or "")
        text = str(item.get("criterion") or item.get("description") or command)
        if not command:
            continue
        result = await run_process(["/bin/sh", "-c", command], cwd=workspace, env=env,
                                   timeout=float(item.get("timeout_seconds", CHECK_TIMEOUT_S)),
                                   cap=65536)
        passed = result.returncode == 0
        results.append({"id": index + 1, "criterion": text, "command": command,
                        "passed": passed, "exit_code": result.returncode})
        if not passed:
            gaps.append(f"criterion not met: {text}")
    if results:
        checks["criteria_checks"] = results
        checks["verification_passed"] = all(r["passed"] for r in results)
    deliverable = criteria.primary_deliverable if criteria else None
    if deliverable and " " not in deliverable.strip():
        path = workspace / deliverable.strip()
        exists = path.exists() and (path.is_dir() or path.stat().st_size > 0)
        checks["primary_deliverable_exists"] = exists
        if not exists:
            gaps.append(f"primary deliverable missing: {deliverable}")
    prose = list((criteria.acceptance_criteria or []) if criteria else [])
    if prose:
        checks["unverified_criteria"] = prose
    return goal_of(state, checks, gaps)


def provisional_completion(state: RunState) -> dict[str, Any]:
    """The completion verdict of a run that stopped before its checks ran: the step rules
    of :func:`goal_of` as the steps stand, plus the gap that the checks did not run (so the
    goal is at best PARTIAL). ``provisional`` marks it: a resume can change it."""
    result = goal_of(state, {"checks_run": False},
                     ["the completion checks did not run: the run stopped before its end"])
    result["provisional"] = True
    return result


def goal_of(state: RunState, checks: dict[str, Any], gaps: list[str]) -> dict[str, Any]:
    """The verdict from the steps' statuses and the checks' results (``checks`` and
    ``gaps`` so far, extended here): see the module docstring for the rules."""
    checks, gaps = dict(checks), list(gaps)
    steps = list(state.steps.values())
    critical_failed = [s.ref for s in steps if s.critical and s.status == "failed"]
    critical_skipped = [s.ref for s in steps if s.critical and s.status == "skipped"
                        and s.skip_reason != "condition_false"]
    other_failed = [s.ref for s in steps if not s.critical and s.status == "failed"]
    pending = [s.ref for s in steps if s.status not in STEP_FINAL]
    checks["critical_steps_completed"] = not critical_failed and not critical_skipped and not [
        r for r in pending if state.steps[r].critical]
    gaps += [f"critical step {r} failed" for r in critical_failed]
    gaps += [f"critical step {r} skipped" for r in critical_skipped]
    gaps += [f"step {r} failed" for r in other_failed]
    gaps += [f"step {r} did not run" for r in pending]
    if critical_failed or checks.get("primary_deliverable_exists") is False or (
            pending and any(state.steps[r].critical for r in pending)):
        goal = "NOT_ACHIEVED"
    elif gaps:
        goal = "PARTIAL"
    else:
        goal = "ACHIEVED"
    return {"checks": checks, "overall_status": "PASS" if goal == "ACHIEVED" else "FAIL",
            "goal_achievement_status": goal, "gaps": gaps}
