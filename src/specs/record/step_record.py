"""A step's record in the progress document, and the records kept between documents.

:func:`step_record` builds what the document says of one step: what happened (status, mode,
method used, retries, backups tried and why, every attempt, the expected-output match, the
propagation decision), then the parallel-execution fields (``execution_id`` ..
``dependencies_satisfied``, :class:`~specs.record.parallel.ParallelFacts`).
:func:`kept_step_record` uses a record built for an earlier document again while nothing it is
built from has changed, so a long run's rewrites cost what changed since the last one.
"""

from __future__ import annotations

from typing import Any

from specs.engine.state import STEP_FINAL, AttemptRecord, StepState
from specs.record.analysis import STEP_STATUSES, canonical
from specs.record.parallel import ParallelFacts

__all__ = ["StepRecords", "kept_step_record", "step_record", "step_status", "usage_record"]

#: step ref -> (what its record was built from, the record): see :func:`kept_step_record`
StepRecords = dict[str, tuple[tuple[Any, ...], dict[str, Any]]]


def step_status(step: StepState) -> str:
    return canonical(step.status, STEP_STATUSES, "pending")


_STEP_RECORD: dict[str, Any] = dict.fromkeys((
    "step_id", "ref", "description", "status", "mode", "critical_flag", "method_used",
    "retry_count", "backup_attempts", "attempts", "expected_output_match",
    "primary_failure_reason", "backup_justification", "backup_trigger",  # + backup_<k>_...
    "prior_step_dependencies", "error_propagation_decision", "consecutive_failure_count",
    "timestamp_start", "timestamp_end", "output_summary", "message", "skip_reason", "resolved",
    # (notepad_update, llm_usage when the step has them)
    "execution_id", "parallel_group", "thread_id", "launched_at", "completed_at",
    "execution_time_ms", "parallel_execution", "dependencies_satisfied"))
"""A step record's keys in the document's order (copying it and filling the values in is
cheaper than a dict display of 30-odd keys, which grows its table as it goes: a document's first
build, 7-18 % on the bench workloads; docs/performance.md, the projection ablation)."""


def step_record(step: StepState, consecutive: int | None, note: dict[str, Any] | None,
          parallel: ParallelFacts, run_id: str) -> dict[str, Any]:
    """A step's record: what happened, then the parallel-execution fields (``execution_id``
    .. ``dependencies_satisfied``, see :class:`~specs.record.analysis.ParallelFacts`)."""
    ref = step.ref
    launch = step.launch
    started = step.started_at is not None
    node = parallel.nodes.get(ref)
    record = _STEP_RECORD.copy()
    record["step_id"] = step.id
    record["ref"] = ref
    record["description"] = step.description
    record["status"] = step_status(step)
    record["mode"] = step.mode
    record["critical_flag"] = step.critical
    record["method_used"] = step.method_used
    record["retry_count"] = step.retry_count if len(step.attempts) > 1 else 0
    record["backup_attempts"] = list(step.backups_triggered)
    record["attempts"] = [_attempt(a) for a in step.attempts]
    record["expected_output_match"] = step.expected_output_match
    record["prior_step_dependencies"] = list(step.prior_step_dependencies)
    record["error_propagation_decision"] = step.error_propagation_decision
    record["consecutive_failure_count"] = consecutive
    record["timestamp_start"] = record["launched_at"] = step.started_at
    record["timestamp_end"] = record["completed_at"] = step.ended_at
    record["output_summary"] = step.output_summary
    record["message"] = step.message
    record["skip_reason"] = step.skip_reason
    record["resolved"] = step.resolved
    execution_id = launch.get("execution_id")
    if execution_id is None and started:  # a sequential run's step: the scheduler's scheme
        execution_id = f"{run_id}:{ref}"
    record["execution_id"] = execution_id
    record["parallel_group"] = launch.get("parallel_group") or (
        node.parallel_group if node is not None else None)
    slot = launch.get("slot")
    record["thread_id"] = slot if slot is not None else (1 if started else None)
    span = parallel.closed.get(ref)
    if span is not None:
        record["execution_time_ms"] = round((span[1] - span[0]) * 1000)
    record["parallel_execution"] = ref in parallel.parallel
    deps = launch.get("dependencies_satisfied")
    if deps is None and started and node is not None:
        deps = node.deps
    if deps is not None:
        record["dependencies_satisfied"] = list(deps)
    if step.justification or note is not None or step.llm_usage is not None:
        extra: dict[str, Any] = {}
        if note is not None:
            extra["notepad_update"] = note
        if step.llm_usage is not None:
            extra["llm_usage"] = usage_record(step.llm_usage)
        return _completed(record, _justification(step), extra)
    return record


def kept_step_record(step: StepState, consecutive: int | None, note: dict[str, Any] | None,
               parallel: ParallelFacts, run_id: str, records: StepRecords) -> dict[str, Any]:
    """:func:`step_record`, or the record built earlier for a step in a final status when nothing
    it is built from has changed since.

    The key holds everything a final step's record can still change with: the step's own
    end (status, time, message, outcome, how many attempts and rounds: a reopened step ends
    again), a resolution, the run's counters and the step's notepad counts, and whether its
    span overlaps another's (a step running across its end may end later). The rest (mode,
    launch facts, attempts, justification, LLM usage) is set before a step's final status and
    changes only after a reopen, which the key sees.
    """
    if step.status not in STEP_FINAL:
        return step_record(step, consecutive, note, parallel, run_id)
    ref = step.ref
    key = (step.status, step.ended_at, step.message, step.skip_reason, step.method_used,
           step.expected_output_match, step.resolved, len(step.attempts), step.round,
           consecutive, note, parallel.closed.get(ref), ref in parallel.parallel, run_id)
    found = records.get(ref)
    if found is not None and found[0] == key:
        return found[1]
    record = step_record(step, consecutive, note, parallel, run_id)
    records[ref] = (key, record)
    return record


def _completed(record: dict[str, Any], justification: dict[str, Any],
               extra: dict[str, Any]) -> dict[str, Any]:
    """A step record with its justification in place of the three empty defaults and the
    ``extra`` keys just before the parallel-execution fields."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "primary_failure_reason":
            out.update(justification)
        elif key not in justification:  # backup_justification, backup_trigger: placed above
            if key == "execution_id":
                out.update(extra)
            out[key] = value
    return out


def usage_record(totals: dict[str, Any]) -> dict[str, Any]:
    """LLM totals for the document: the cost rounded to a millionth of a dollar, and None
    when no call had a known price."""
    out = dict(totals)
    priced = totals["calls"] - totals["unpriced_calls"]
    out["cost_usd"] = round(totals["cost_usd"], 6) if priced or not totals["calls"] else None
    return out


def _justification(step: StepState) -> dict[str, Any]:
    """R-RETRY-4: why each earlier method failed and why the backup was chosen."""
    found = step.justification
    if not found:
        return {"primary_failure_reason": None, "backup_justification": None,
                "backup_trigger": None}
    out: dict[str, Any] = {"primary_failure_reason": found.get("primary_failure_reason")}
    for key in sorted(found):
        if key.startswith("backup_") and key.endswith("_failure_reason"):
            out[key] = found[key]
    out["backup_justification"] = found.get("backup_justification")
    out["backup_trigger"] = found.get("trigger")
    return out


def _attempt(attempt: AttemptRecord) -> dict[str, Any]:
    """An attempt's record; one that started and has not ended (it runs, or a crash or
    Ctrl-C cut it short) has ``ended_at`` and ``outcome`` null."""
    record: dict[str, Any] = {
        "method": attempt.method,
        "attempt": attempt.attempt,
        "round": attempt.round,
        "started_at": attempt.started_at,
        "ended_at": attempt.ended_at,
        "outcome": attempt.outcome,
        "failure_reason": attempt.failure_reason,
        "transient": attempt.transient,
        "verdict": attempt.verdict,
        "duration_ms": attempt.duration_ms,
        "exit_code": attempt.exit_code,
        "guidance": attempt.guidance,
    }
    if attempt.judge is not None:
        record["llm_judge"] = dict(attempt.judge)
    if attempt.usage is not None or attempt.cached:
        record.update(usage=attempt.usage, cost_usd=attempt.cost_usd, cached=attempt.cached)
    return record
