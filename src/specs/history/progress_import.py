"""Importing the original project's ``progress_*.json`` files, best effort (reference §4.1).

No two real progress files share a schema; five families exist, and each import is labelled
with its family in ``runs.source`` (``progress-F1`` .. ``progress-F5``):

- **F1**, template-like run logs: the run, its tasks and their per-step records (status,
  method used, retry count, backups, times). The files record no attempts, so none are made up.
- **F2**, summary run logs: the run and per-task summaries (steps completed, failed, total);
  there are no step records.
- **F3**, SPECLet logs: a per-SPECLet file becomes a run of its tasks (a dict ``task_N`` or a
  list) and their steps when listed; the ``_MASTER`` file becomes a run whose tasks are the
  SPECLets.
- **F4**, the Troubleshoot state log: its completed tasks and their steps.
- **F5**, an application's own log (transaction_v2): not an engine run; only its header
  (spec id, mode, times) is kept, and the import says so.

The run id of an imported file is ``import_<hash of its absolute path>``, so importing the
same file again replaces its rows. A progress file written by ``specs`` itself is not imported:
its run's ``events.jsonl`` holds everything and is imported instead.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from specs.history import schema
from specs.history.projection import RunRows, blank_row
from specs.history.results import ImportResult

__all__ = ["family", "import_progress"]

_STEP_STATUS = {"complete": "completed", "completed": "completed", "done": "completed",
                "success": "completed", "succeeded": "completed", "failed": "failed",
                "failure": "failed", "error": "failed", "skipped": "skipped",
                "started": "started", "in_progress": "started", "running": "started",
                "pending": "pending", "not_started": "pending"}


def family(data: Any) -> str | None:
    """The family of a progress document (F1-F5), ``specs`` for our own, None if none fits."""
    if not isinstance(data, dict):
        return None
    if data.get("generated_by") == "specs":
        return "specs"
    if "troubleshooting_session" in data:
        return "F4"
    if "speclet_id" in data or ("speclets" in data and "project_goal" in data):
        return "F3"
    tasks = data.get("tasks")
    if isinstance(tasks, list) and any(isinstance(t, dict) and isinstance(t.get("steps"), list)
                                       for t in tasks):
        return "F1"
    if isinstance(tasks, list) or "speclets" in data:
        return "F2"
    if isinstance(data.get("steps"), list) and ("spec_id" in data or "dna_code" in data):
        return "F5"
    return None


def import_progress(path: Path, data: Any) -> tuple[ImportResult, RunRows | None]:
    """The rows of one progress file, labelled with its family (or why it was skipped)."""
    found = family(data)
    if found == "specs":
        return ImportResult(path, "skipped", None, "written by specs: import its run's "
                            "events.jsonl (runs/<run_id>/ in the state folder) instead"), None
    if found is None:
        return ImportResult(path, "skipped", None, "not a progress file of a known family "
                            "(reference §4.1 F1-F5)"), None
    run_id = "import_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    rows = RunRows(run_id, source=f"progress-{found}", source_path=str(path.resolve()))
    message = _READERS[found](rows, data, path)
    _finish(rows)
    return ImportResult(path, f"progress-{found}", run_id, message), rows


# -- common pieces -------------------------------------------------------------------------------


def _text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str | int | float) and not isinstance(value, bool) and \
                str(value).strip():
            return str(value)
    return None


def _status(value: Any) -> str:
    text = str(value or "pending").strip().lower().replace(" ", "_")
    return _STEP_STATUS.get(text, text if text.startswith("completed") else text or "pending")


def _header(rows: RunRows, data: dict[str, Any], descriptor: str | None) -> None:
    run = rows.run
    run.update(descriptor=descriptor or "",
               status=str(data.get("status") or "completed"),
               goal=_text(data.get("goal_achievement_status")),
               mode=_text(data.get("execution_mode")),
               started_at=_text(data.get("start_time"), data.get("started_at"),
                                data.get("created_at")),
               ended_at=_text(data.get("end_time"), data.get("completed_at")))


def _task(rows: RunRows, ref: Any, item: dict[str, Any]) -> dict[str, Any]:
    key = str(ref)
    row = rows.tasks[key] = blank_row(
        schema.tasks, run_id=rows.run_id, task=key,
        description=_text(item.get("description"), item.get("name"),
                          item.get("task_name")) or "",
        status=_status(item.get("status")),
        started_at=_text(item.get("started_at"), item.get("timestamp_start")),
        ended_at=_text(item.get("completed_at"), item.get("timestamp_end")))
    return row


def _step(rows: RunRows, task: str, step_id: Any, item: dict[str, Any]) -> None:
    ref = f"{task}.{step_id}"
    backups = item.get("backup_attempts")
    retries = item.get("retry_count")
    method = _text(item.get("method_used"))
    rows.steps[ref] = blank_row(
        schema.steps, run_id=rows.run_id, step=ref, task=task,
        description=_text(item.get("description"), item.get("name")),
        critical=item.get("critical_flag") if isinstance(item.get("critical_flag"), bool)
        else None,
        status=_status(item.get("status")), method_used=method,
        expected_output_match=item.get("expected_output_match")
        if isinstance(item.get("expected_output_match"), bool) else None,
        message=_text(item.get("note"), item.get("notes"), item.get("output_summary")),
        started_at=_text(item.get("timestamp_start"), item.get("started_at")),
        ended_at=_text(item.get("timestamp_end"), item.get("completed_at")),
        retries=retries if isinstance(retries, int) else 0,
        backups_used=len(backups) if isinstance(backups, list) else 0)


def _finish(rows: RunRows) -> None:
    run = rows.run
    run["tasks_total"] = len(rows.tasks)
    run["steps_total"] = len(rows.steps) or sum(
        int(t["steps_total"] or (t["steps_completed"] or 0) + (t["steps_failed"] or 0))
        for t in rows.tasks.values())
    for task in rows.tasks.values():
        mine = [s for s in rows.steps.values() if s["task"] == task["task"]]
        if mine:
            task["steps_total"] = len(mine)
            task["steps_completed"] = sum(s["status"] == "completed" for s in mine)
            task["steps_failed"] = sum(s["status"] == "failed" for s in mine)
    run["steps_completed"] = sum(s["status"] == "completed" for s in rows.steps.values()) or \
        sum(int(t["steps_completed"] or 0) for t in rows.tasks.values())
    run["steps_failed"] = sum(s["status"] == "failed" for s in rows.steps.values()) or \
        sum(int(t["steps_failed"] or 0) for t in rows.tasks.values())


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- the families --------------------------------------------------------------------------------


def _f1(rows: RunRows, data: dict[str, Any], path: Path) -> str:
    meta: dict[str, Any] = data["meta"] if isinstance(data.get("meta"), dict) else {}
    _header(rows, data, _text(meta.get("descriptor"), data.get("descriptor")))
    for item in data.get("tasks") or []:
        if not isinstance(item, dict):
            continue
        ref = _text(item.get("task_id"), item.get("id")) or str(len(rows.tasks) + 1)
        _task(rows, ref, item)
        for step in item.get("steps") or []:
            if isinstance(step, dict):
                _step(rows, ref, _text(step.get("step_id"), step.get("id")), step)
    return f"F1 run log: {len(rows.tasks)} tasks, {len(rows.steps)} step records (no attempts " \
           "are recorded in this family)"


def _f2(rows: RunRows, data: dict[str, Any], path: Path) -> str:
    _header(rows, data, _text(data.get("descriptor"), data.get("spec_descriptor"),
                              data.get("spec_id")) or _stem(path))
    items: list[Any] = data["tasks"] if isinstance(data.get("tasks"), list) else \
        list(data.get("speclets") or [])
    for item in items:
        if not isinstance(item, dict):
            continue
        ref = _text(item.get("task_id"), item.get("id"), item.get("speclet_id")) or \
            str(len(rows.tasks) + 1)
        row = _task(rows, ref, item)
        row["steps_completed"] = _int(item.get("steps_completed")) or \
            _int(item.get("tasks_completed"))
        row["steps_total"] = _int(item.get("steps_total")) or _int(item.get("tasks_total"))
        row["steps_failed"] = _int(item.get("steps_failed"))
    return f"F2 summary log: {len(rows.tasks)} task summaries (the family has no step records)"


def _f3(rows: RunRows, data: dict[str, Any], path: Path) -> str:
    if "speclets" in data and "speclet_id" not in data:
        _header(rows, data, _stem(path))
        for item in data.get("speclets") or []:
            if isinstance(item, dict):
                _task(rows, _text(item.get("id")) or str(len(rows.tasks)), item)
        return f"F3 SPECLet master: {len(rows.tasks)} SPECLets recorded as tasks"
    _header(rows, data, _text(data.get("speclet_name"), data.get("name")) or _stem(path))
    tasks = data.get("tasks")
    items = list(tasks.items()) if isinstance(tasks, dict) else \
        [(None, t) for t in tasks or []]
    for key, item in items:
        if not isinstance(item, dict):
            continue
        ref = _text(item.get("id"), item.get("task_id")) or _number(key) or \
            str(len(rows.tasks) + 1)
        _task(rows, ref, item)
        steps = item.get("steps")
        for step_key, step in (steps.items() if isinstance(steps, dict) else []):
            if isinstance(step, dict):
                _step(rows, ref, _number(step_key, last=True) or step_key, step)
    return f"F3 SPECLet log: {len(rows.tasks)} tasks, {len(rows.steps)} steps"


def _f4(rows: RunRows, data: dict[str, Any], path: Path) -> str:
    found = data.get("troubleshooting_session")
    session: dict[str, Any] = found if isinstance(found, dict) else {}
    _header(rows, {"started_at": session.get("started_at"), "status": "in_progress"},
            _text(session.get("project_descriptor")) or "Troubleshoot")
    for item in data.get("tasks_completed") or []:
        if not isinstance(item, dict):
            continue
        ref = _text(item.get("task_id")) or str(len(rows.tasks))
        _task(rows, ref, item)
        for step in item.get("steps_completed") or []:
            if isinstance(step, dict):
                _step(rows, ref, _text(step.get("step_id")) or "0", step)
    return f"F4 Troubleshoot state log: {len(rows.tasks)} tasks, {len(rows.steps)} steps"


def _f5(rows: RunRows, data: dict[str, Any], path: Path) -> str:
    _header(rows, data, _text(data.get("spec_id")) or _stem(path))
    entries = len(data.get("steps") or [])
    return f"F5 application log, not an engine run: only its header is kept ({entries} " \
           "application events are not spec steps)"


def _stem(path: Path) -> str:
    return path.stem.removeprefix("progress_")


def _number(key: Any, *, last: bool = False) -> str | None:
    """``task_3`` -> ``3``; ``step_1_2`` -> ``2`` with ``last``."""
    found = re.findall(r"\d+", str(key or ""))
    if not found:
        return None
    return str(found[-1] if last else found[0])


_READERS = {"F1": _f1, "F2": _f2, "F3": _f3, "F4": _f4, "F5": _f5}
