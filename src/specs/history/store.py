"""The history database: where it is, opening it (migrations applied), writing and reading.

By default the history is SQLite at ``<state dir>/history.db`` in WAL mode (readers never wait
for the writer; ``synchronous = NORMAL``: a power cut may lose the last commits, which
``specs history rebuild`` recovers from the events). ``SPECS_DATABASE_URL`` or
``--database-url`` names another SQLAlchemy URL, such as
``postgresql+psycopg://user@host/db``, so several machines and the dashboard share one history.

Several processes may write at once. Every write is one transaction of upserts keyed by the
engine's names (a run id, a step ref), so writing the same rows twice changes nothing; SQLite
writers take the write lock when the transaction begins (``BEGIN IMMEDIATE``) and wait for it up
to 60 s (``busy_timeout``), PostgreSQL writers upsert with ``ON CONFLICT ... DO UPDATE``.

On PostgreSQL a transaction that changed runs also sends ``NOTIFY specs_history, '<run id>'``
(:meth:`HistoryStore.notify`, one per run per transaction, delivered by the server only when the
transaction commits): a dashboard listening on :data:`CHANNEL` shows another machine's run at
once instead of at its next poll. SQLite has no notifications; its readers poll.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from specs.errors import SpecsError, UsageError
from specs.history import migrations, schema

__all__ = ["CHANNEL", "ENV_URL", "HistoryError", "HistoryStore", "database_url", "open_store"]

ENV_URL = "SPECS_DATABASE_URL"
BUSY_TIMEOUT_S = 60
#: the PostgreSQL notification channel of runs that changed (the payload is the run id)
CHANNEL = "specs_history"
_NOTIFY = text("SELECT pg_notify(:channel, run_id) FROM unnest(CAST(:runs AS text[])) "
               "AS changed(run_id)")


class HistoryError(SpecsError):
    """The history database cannot be opened, read or written (exit code 1)."""


def database_url(state_dir: Path, url: str | None = None) -> str:
    """The history's URL: ``url``, else ``$SPECS_DATABASE_URL``, else SQLite in the state dir."""
    found = url or os.environ.get(ENV_URL)
    if found:
        return found
    return f"sqlite:///{(state_dir / 'history.db').resolve()}"


def _describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class HistoryStore:
    """One history database: an SQLAlchemy engine with the newest schema.

    :meth:`writing` is a transaction that writes; :meth:`reading` a connection that reads;
    :meth:`upsert` writes rows of :mod:`specs.history.schema` tables.
    """

    def __init__(self, url: str, *, migrate: bool = True,
                 target: str | None = None) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise UsageError(f"the history database URL {url!r} is not an SQLAlchemy URL "
                             "(e.g. sqlite:///path/history.db or "
                             "postgresql+psycopg://user@host/db)") from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise UsageError(f"the history database must be SQLite or PostgreSQL, not "
                             f"{self.dialect!r} ({_describe(url)})")
        if self.dialect == "sqlite" and parsed.database:
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"cannot create the folder of {parsed.database}: "
                                   f"{exc.strerror or exc}") from None
        try:
            self.engine: Engine = self._engine(url)
        except NoSuchModuleError as exc:
            raise UsageError(f"no SQLAlchemy driver for {_describe(url)} ({exc}); for "
                             "PostgreSQL install `specs-engine[postgres]`") from None
        except ModuleNotFoundError as exc:
            raise UsageError(f"the driver of {_describe(url)} is not installed ({exc.name}); "
                             "for PostgreSQL install `specs-engine[postgres]`") from None
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        self._upserts: dict[tuple[str, tuple[str, ...]],
                            tuple[str, tuple[str, ...] | None, tuple[str, ...]]] = {}
        if migrate:
            self.migrate(target=target)

    def _engine(self, url: str) -> Engine:
        if self.dialect == "sqlite":
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S,
                                                      "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _connect(dbapi: Any, _record: Any) -> None:
                dbapi.isolation_level = None  # we BEGIN ourselves (pysqlite's would be deferred)
                cursor = dbapi.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                immediate = conn.get_execution_options().get("history_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        return create_engine(url, pool_pre_ping=True)

    # -- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction that writes: committed on leaving, rolled back on an exception."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(history_write=True)
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise HistoryError(f"cannot write the history database {_describe(self.url)}: "
                               f"{_first_line(exc)}") from exc

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise HistoryError(f"cannot read the history database {_describe(self.url)}: "
                               f"{_first_line(exc)}") from exc

    def migrate(self, *, target: str | None = None) -> list[str]:
        """Apply the pending migrations (see :mod:`specs.history.migrations`)."""
        try:
            return migrations.migrate(self.writing, target=target)
        except SQLAlchemyError as exc:
            raise HistoryError(f"cannot migrate the history database {_describe(self.url)}: "
                               f"{_first_line(exc)}") from exc

    def applied(self) -> list[str]:
        with self.reading() as conn:
            return migrations.applied(conn)

    # -- rows --------------------------------------------------------------------------------

    def upsert(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (dicts with the same keys), or update the rows with their keys.

        The statement is compiled once per (table, keys) and run with the driver's
        ``executemany`` (values bound as they are, JSON columns encoded here): SQLAlchemy's
        per-row parameter processing costs more than the database's own work."""
        if not rows:
            return
        keys = tuple(rows[0])
        found = self._upserts.get((table.name, keys))
        if found is None:
            found = self._upserts[(table.name, keys)] = self._compile(table, keys)
        sql, order, encoded = found
        if encoded:
            rows = [{**row, **{k: _json(row[k]) for k in encoded}} for row in rows]
        if order is not None:
            conn.exec_driver_sql(sql, [tuple(row[k] for k in order) for row in rows])
        else:
            conn.exec_driver_sql(sql, [dict(row) for row in rows])

    def _compile(self, table: Table, keys: tuple[str, ...]) -> tuple[
            str, tuple[str, ...] | None, tuple[str, ...]]:
        primary = [c.name for c in table.primary_key.columns]
        insert = self._insert(table).values({k: bindparam(k) for k in keys})
        update = {k: insert.excluded[k] for k in keys if k not in primary}
        stmt = insert.on_conflict_do_update(index_elements=primary, set_=update) \
            if update else insert.on_conflict_do_nothing(index_elements=primary)
        compiled = stmt.compile(dialect=self.engine.dialect)
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        encoded = tuple(k for k in keys if isinstance(table.c[k].type, JSON))
        return str(compiled), order, encoded

    def notify(self, conn: Connection, run_ids: Iterable[str]) -> None:
        """Tell the listeners of :data:`CHANNEL` that these runs changed: one notification
        per run, sent by the server when ``conn``'s transaction commits (never on a rollback).
        Nothing on SQLite."""
        if self.dialect != "postgresql":
            return
        runs = sorted(set(run_ids))
        if runs:
            conn.execute(_NOTIFY, {"channel": CHANNEL, "runs": runs})

    def delete_run(self, conn: Connection, run_id: str) -> None:
        """Remove every row of one run (before it is projected again)."""
        for table in reversed(schema.TABLES):
            conn.execute(delete(table).where(table.c.run_id == run_id))

    def close(self) -> None:
        self.engine.dispose()


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__


def open_store(state_dir: Path, url: str | None = None) -> HistoryStore:
    """The history of a state folder (or the database ``url`` / ``$SPECS_DATABASE_URL``)."""
    return HistoryStore(database_url(state_dir, url))
