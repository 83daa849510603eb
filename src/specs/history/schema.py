"""The history database's tables, as SQLAlchemy Core :class:`~sqlalchemy.Table` objects.

One row per run, task, step, attempt, gate and escalation, keyed by the run id and the
engine's own names (``"2.3"`` for a step, the attempt's ordinal within its step), so that
projecting a run's events twice (live, then ``specs history rebuild``) gives the same rows.
``changes`` records the edits ``specs insights --apply`` made to parameters files.

These are the tables at the newest schema version; :mod:`specs.history.migrations` creates and
upgrades them. Times are ISO 8601 UTC strings as the events carry them (they sort as text);
JSON columns hold lists and small dicts.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["TABLES", "attempts", "changes", "escalations", "gates", "metadata", "runs",
           "steps", "tasks"]

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("descriptor", String(200), nullable=False, default=""),
    Column("spec_folder", Text),
    Column("parameters_path", Text),
    Column("parameters_sha256", String(64)),
    Column("status", String(40), nullable=False, default="initializing"),
    Column("goal", String(40)),
    Column("mode", String(40)),
    Column("started_at", String(40)),
    Column("ended_at", String(40)),
    Column("last_event_at", String(40)),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("tasks_total", Integer, nullable=False, default=0),
    Column("steps_total", Integer, nullable=False, default=0),
    Column("steps_completed", Integer, nullable=False, default=0),
    Column("steps_failed", Integer, nullable=False, default=0),
    Column("steps_skipped", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float),
    Column("duration_ms", Float),
    Column("pending_gate", String(80)),
    Column("llm_calls", Integer, nullable=False, default=0),  # (0003)
    Column("compliance_score", Integer),
    #: where the rows came from: ``events`` (a run's events.jsonl, live or rebuilt) or
    #: ``progress-F1`` .. ``progress-F5`` (an original progress file, imported best effort)
    Column("source", String(40), nullable=False, default="events"),
    Column("source_path", Text),
    Column("engine_version", String(40)),
)

tasks = Table(
    "tasks", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("task", String(80), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("status", String(40), nullable=False, default="pending"),
    Column("started_at", String(40)),
    Column("ended_at", String(40)),
    Column("steps_total", Integer),
    Column("steps_completed", Integer),
    Column("steps_failed", Integer),
)

steps = Table(
    "steps", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("step", String(80), primary_key=True),
    Column("task", String(80), nullable=False, default=""),
    Column("description", Text),
    Column("critical", Boolean),
    Column("mode", String(40)),
    Column("execution_method", String(40)),
    Column("status", String(40), nullable=False, default="pending"),
    Column("method_used", String(40)),
    Column("expected_output_match", Boolean),
    Column("message", Text),
    Column("skip_reason", Text),
    Column("resolved", Boolean, nullable=False, default=False),
    Column("started_at", String(40)),
    Column("ended_at", String(40)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("retries", Integer, nullable=False, default=0),
    Column("backups_used", Integer, nullable=False, default=0),
    Column("duration_ms", Float, nullable=False, default=0.0),
    Column("tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float),
)

attempts = Table(
    "attempts", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("step", String(80), primary_key=True),
    #: the attempt's ordinal within its step over the whole run (1, 2, ...; a human's retry
    #: continues the count), so a rebuild finds the same key
    Column("n", Integer, primary_key=True),
    Column("method", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("execution_method", String(40)),
    Column("outcome", String(20)),
    Column("verdict", String(20)),
    Column("failure_reason", Text),
    Column("failure_class", String(40)),
    Column("transient", Boolean, nullable=False, default=False),
    Column("exit_code", Integer),
    Column("duration_ms", Float),
    Column("started_at", String(40)),
    Column("ended_at", String(40)),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cost_usd", Float),
    Column("cached", Boolean, nullable=False, default=False),
)

gates = Table(
    "gates", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("gate", String(80), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("step", String(80)),
    Column("prompt", Text),
    Column("options", JSON),
    Column("response", Text),
    Column("answered_by", String(40)),
    Column("guidance", Text),
    Column("requested_at", String(40)),
    Column("answered_at", String(40)),
)

escalations = Table(
    "escalations", metadata,
    Column("run_id", String(80), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("step", String(80)),
    Column("reasons", JSON),
    Column("from_mode", String(40)),
    Column("recommendation", Text),
    Column("ts", String(40)),
)

changes = Table(
    "changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("suggestion_id", String(80), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("descriptor", String(200), nullable=False, default=""),
    Column("step", String(80)),
    Column("parameters_path", Text, nullable=False),
    Column("sha_before", String(64), nullable=False),
    Column("sha_after", String(64), nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("evidence", JSON),
    Column("applied_at", String(40), nullable=False),
)

#: the tables a run's events fill, in the order rows are written
TABLES = (runs, tasks, steps, attempts, gates, escalations)
