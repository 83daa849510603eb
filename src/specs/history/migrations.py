"""Named, versioned migrations of the history database, applied on start.

Each migration is a function of one SQLAlchemy connection, registered under a name that sorts
in the order they apply (``0001_initial``, ``0002_failure_classes``...). The names applied are
rows of ``history_migrations``; :func:`migrate` applies the missing ones in order, each in its
own transaction with the row that records it (DDL is transactional in SQLite and PostgreSQL,
so a migration is applied whole or not at all). Two processes opening a new database at once
are serialised: SQLite by ``BEGIN IMMEDIATE`` (see :mod:`specs.history.store`), PostgreSQL by a
transaction-scoped advisory lock.

A migration's DDL is written as it was at that version (not drawn from
:mod:`specs.history.schema`, which is the newest shape): an old database is upgraded through
exactly the steps a new one takes. The types used (VARCHAR, TEXT, INTEGER, FLOAT, BOOLEAN,
JSON) mean the same in both dialects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, text

from specs.history.classify import failure_class

__all__ = ["MIGRATIONS", "Migration", "applied", "migrate", "pending"]

#: the advisory lock key PostgreSQL migrations hold ("specshist" in ASCII, truncated)
_PG_LOCK = 0x7370656373686973


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[Connection], None]
    doc: str


MIGRATIONS: list[Migration] = []


def migration(name: str) -> Callable[[Callable[[Connection], None]], Callable[[Connection], None]]:
    def register(func: Callable[[Connection], None]) -> Callable[[Connection], None]:
        MIGRATIONS.append(Migration(name, func, (func.__doc__ or "").strip()))
        return func
    return register


_V1 = {
    "runs": """
        run_id VARCHAR(80) NOT NULL PRIMARY KEY,
        descriptor VARCHAR(200) NOT NULL, spec_folder TEXT, parameters_path TEXT,
        parameters_sha256 VARCHAR(64), status VARCHAR(40) NOT NULL, goal VARCHAR(40),
        mode VARCHAR(40), started_at VARCHAR(40), ended_at VARCHAR(40),
        last_event_at VARCHAR(40), last_seq INTEGER NOT NULL, tasks_total INTEGER NOT NULL,
        steps_total INTEGER NOT NULL, steps_completed INTEGER NOT NULL,
        steps_failed INTEGER NOT NULL, steps_skipped INTEGER NOT NULL,
        attempts INTEGER NOT NULL, tokens INTEGER NOT NULL, cost_usd FLOAT,
        duration_ms FLOAT, pending_gate VARCHAR(80), compliance_score INTEGER,
        source VARCHAR(40) NOT NULL, source_path TEXT, engine_version VARCHAR(40)""",
    "tasks": """
        run_id VARCHAR(80) NOT NULL, task VARCHAR(80) NOT NULL, description TEXT NOT NULL,
        status VARCHAR(40) NOT NULL, started_at VARCHAR(40), ended_at VARCHAR(40),
        steps_total INTEGER, steps_completed INTEGER, steps_failed INTEGER,
        PRIMARY KEY (run_id, task)""",
    "steps": """
        run_id VARCHAR(80) NOT NULL, step VARCHAR(80) NOT NULL, task VARCHAR(80) NOT NULL,
        description TEXT, critical BOOLEAN, mode VARCHAR(40), execution_method VARCHAR(40),
        status VARCHAR(40) NOT NULL, method_used VARCHAR(40), expected_output_match BOOLEAN,
        message TEXT, skip_reason TEXT, resolved BOOLEAN NOT NULL, started_at VARCHAR(40),
        ended_at VARCHAR(40), attempts INTEGER NOT NULL, retries INTEGER NOT NULL,
        backups_used INTEGER NOT NULL, duration_ms FLOAT NOT NULL, tokens INTEGER NOT NULL,
        cost_usd FLOAT, PRIMARY KEY (run_id, step)""",
    "attempts": """
        run_id VARCHAR(80) NOT NULL, step VARCHAR(80) NOT NULL, n INTEGER NOT NULL,
        method VARCHAR(40) NOT NULL, attempt INTEGER NOT NULL, execution_method VARCHAR(40),
        outcome VARCHAR(20), verdict VARCHAR(20), failure_reason TEXT,
        transient BOOLEAN NOT NULL, exit_code INTEGER, duration_ms FLOAT,
        started_at VARCHAR(40), ended_at VARCHAR(40), input_tokens INTEGER,
        output_tokens INTEGER, cost_usd FLOAT, cached BOOLEAN NOT NULL,
        PRIMARY KEY (run_id, step, n)""",
    "gates": """
        run_id VARCHAR(80) NOT NULL, gate VARCHAR(80) NOT NULL, kind VARCHAR(40) NOT NULL,
        step VARCHAR(80), prompt TEXT, options JSON, response TEXT, answered_by VARCHAR(40),
        guidance TEXT, requested_at VARCHAR(40), answered_at VARCHAR(40),
        PRIMARY KEY (run_id, gate)""",
    "escalations": """
        run_id VARCHAR(80) NOT NULL, seq INTEGER NOT NULL, step VARCHAR(80), reasons JSON,
        from_mode VARCHAR(40), recommendation TEXT, ts VARCHAR(40),
        PRIMARY KEY (run_id, seq)""",
}


@migration("0001_initial")
def _initial(conn: Connection) -> None:
    """Runs, tasks, steps, attempts, gates and escalations."""
    for name, columns in _V1.items():
        conn.execute(text(f"CREATE TABLE {name} ({columns})"))
    conn.execute(text("CREATE INDEX ix_runs_started ON runs (started_at)"))


@migration("0002_failure_classes")
def _failure_classes(conn: Connection) -> None:
    """Attempts get a failure class (backfilled from the reason, exit code and verdict); the
    ``changes`` table records edits made by ``specs insights --apply``; runs are indexed by
    spec (steps and attempts get no index beyond their keys: each costs every insert)."""
    conn.execute(text("ALTER TABLE attempts ADD COLUMN failure_class VARCHAR(40)"))
    rows = conn.execute(text(
        "SELECT run_id, step, n, outcome, verdict, failure_reason, exit_code, transient "
        "FROM attempts WHERE outcome IS NOT NULL AND outcome <> 'success'")).all()
    update = text("UPDATE attempts SET failure_class = :c WHERE run_id = :r AND step = :s "
                  "AND n = :n")
    params = [{"c": failure_class(r.outcome, r.verdict, r.failure_reason, r.exit_code,
                                  bool(r.transient)), "r": r.run_id, "s": r.step, "n": r.n}
              for r in rows]
    if params:
        conn.execute(update, params)
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if conn.dialect.name == "sqlite" else \
        "SERIAL PRIMARY KEY"
    conn.execute(text(f"""CREATE TABLE changes (
        id {key}, suggestion_id VARCHAR(80) NOT NULL, kind VARCHAR(40) NOT NULL,
        descriptor VARCHAR(200) NOT NULL, step VARCHAR(80), parameters_path TEXT NOT NULL,
        sha_before VARCHAR(64) NOT NULL, sha_after VARCHAR(64) NOT NULL,
        summary TEXT NOT NULL, evidence JSON, applied_at VARCHAR(40) NOT NULL)"""))
    conn.execute(text("CREATE INDEX ix_runs_descriptor ON runs (descriptor, started_at)"))


@migration("0003_llm_calls")
def _llm_calls(conn: Connection) -> None:
    """Runs count their LLM calls (``specs runs`` shows them; rows recorded before stay 0
    until ``specs history rebuild``)."""
    conn.execute(text("ALTER TABLE runs ADD COLUMN llm_calls INTEGER NOT NULL DEFAULT 0"))


def _ensure_table(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE IF NOT EXISTS history_migrations "
                      "(name VARCHAR(200) NOT NULL PRIMARY KEY, applied_at VARCHAR(40) NOT NULL)"))


def applied(conn: Connection) -> list[str]:
    """The names of the migrations applied, in order (none on an empty database)."""
    if not conn.dialect.has_table(conn, "history_migrations"):
        return []
    return sorted(r[0] for r in conn.execute(text("SELECT name FROM history_migrations")))


def pending(conn: Connection) -> list[str]:
    """The names of the migrations not applied yet (read-only)."""
    done = set(applied(conn))
    return [m.name for m in MIGRATIONS if m.name not in done]


def migrate(begin: Callable[[], object], *, target: str | None = None) -> list[str]:
    """Apply the pending migrations (up to ``target`` included), each in one transaction;
    returns the names applied. ``begin()`` opens a writing transaction (a context manager
    yielding a :class:`Connection`: :meth:`specs.history.store.HistoryStore.writing`)."""
    done: list[str] = []
    for item in MIGRATIONS:
        with begin() as conn:  # type: ignore[attr-defined]
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            _ensure_table(conn)
            if item.name not in applied(conn):
                item.apply(conn)
                conn.execute(text("INSERT INTO history_migrations (name, applied_at) "
                                  "VALUES (:n, :t)"),
                             {"n": item.name, "t": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime())})
                done.append(item.name)
        if item.name == target:
            break
    return done
