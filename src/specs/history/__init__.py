"""The run history: every run, task, step, attempt, gate and escalation in a database.

A projection of the runs' events (``events.jsonl`` stays the truth) kept in SQLite at
``<state dir>/history.db`` or in the PostgreSQL database ``SPECS_DATABASE_URL`` names:
:func:`recorder_for` makes the subscriber that records live runs, :func:`rebuild` and
:func:`import_paths` fill it from files, :func:`list_runs` and :func:`run_detail` read it.
See docs/history.md.
"""

from __future__ import annotations

from specs.history.classify import failure_class
from specs.history.ingest import import_paths, project_events, rebuild, sync
from specs.history.queries import (
    RunDetail,
    list_changes,
    list_runs,
    parse_since,
    resolve_run,
    run_detail,
)
from specs.history.recorder import HistoryRecorder, recorder_for
from specs.history.results import ImportResult
from specs.history.store import ENV_URL, HistoryError, HistoryStore, database_url, open_store

__all__ = ["ENV_URL", "HistoryError", "HistoryRecorder", "HistoryStore", "ImportResult",
           "RunDetail", "database_url", "failure_class", "import_paths", "list_changes",
           "list_runs", "open_store", "parse_since", "project_events", "rebuild",
           "recorder_for", "resolve_run", "run_detail", "sync"]
