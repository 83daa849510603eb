"""The history's notifications on PostgreSQL (src/specs/history/store.py ``notify``): a
transaction that changed runs sends ``NOTIFY specs_history, '<run id>'`` when it commits, and
nothing when it is rolled back; the recorder of a run in another process sends them; SQLite
sends none and takes no harm."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dashboard_specs import specs_cli, write
from history_pg import PostgresServer, postgres_server_fixture  # noqa: F401
from specs.history import HistoryStore
from specs.history.store import CHANNEL


def listening(server: PostgresServer, url: str) -> psycopg.Connection:
    conn = psycopg.connect(f"host=127.0.0.1 port={server.port} user={server.user} "
                           f"dbname={url.rsplit('/', 1)[1]}", autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def received(conn: psycopg.Connection, timeout: float = 0.5) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=timeout) if n.channel == CHANNEL]


def test_a_commit_notifies_each_run_once_and_a_rollback_nothing(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database()
    store = HistoryStore(url)
    listener = listening(postgres_server, url)
    try:
        with store.writing() as conn:
            store.notify(conn, ["run-b", "run-a", "run-b"])
            assert received(listener, 0.3) == []  # not before the commit
        assert sorted(received(listener)) == ["run-a", "run-b"]
        with pytest.raises(RuntimeError), store.writing() as conn:
            store.notify(conn, ["run-c"])
            raise RuntimeError("rolled back")
        with store.writing() as conn:
            store.notify(conn, [])
        assert received(listener) == []
    finally:
        listener.close()
        store.close()


def test_a_run_of_another_process_notifies_its_id(postgres_server: PostgresServer,
                                                   tmp_path: Path) -> None:
    url = postgres_server.new_database()
    HistoryStore(url).close()  # migrated first: the run's own migration sends nothing
    listener = listening(postgres_server, url)
    try:
        write(tmp_path, "demo")
        done = specs_cli("run", "demo", "--yes", "--database-url", url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        run_id = next((tmp_path / ".specs" / "runs").iterdir()).name
        got = received(listener, 2.0)
        assert got and set(got) == {run_id}
        # the run the notifications name is in the history, whole
        row = listener.execute("SELECT status FROM runs WHERE run_id = %s",
                               (run_id,)).fetchone()
        assert row == ("completed",)
    finally:
        listener.close()


def test_sqlite_sends_nothing_and_writes_on(tmp_path: Path) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    with store.writing() as conn:
        store.notify(conn, ["run-a"])
    assert store.applied()
    store.close()
