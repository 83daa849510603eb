"""The dashboard hears the PostgreSQL history's notifications (src/specs/dashboard/listen.py):
a run recorded by another process into the shared history, with no state folder shared with
the dashboard, reaches the runs stream and its own page's stream while it runs, although the
history's fallback poll is set to an hour (only a notification can bring it); the listener
connects again after the server restarts and still delivers; it closes its connection when
the dashboard stops."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from dashboard_specs import SLOW, served, start, write
from history_pg import PostgresServer, own_server
from specs.dashboard.listen import APPLICATION, conninfo
from specs.history import HistoryStore
from test_dashboard_live import messages

#: the history's fallback poll in these tests: never, in practice
NEVER_S = 3600.0


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A server of this module's own: one test restarts it."""
    with own_server() as server:
        yield server


@pytest.fixture()
def shared(pg: PostgresServer, tmp_path: Path) -> tuple[str, Path, Path]:
    """A new history database, the dashboard's (empty) state folder, and another machine's
    folder with the slow spec."""
    url = pg.new_database()
    HistoryStore(url).close()
    here = tmp_path / "here" / ".specs"
    here.mkdir(parents=True)
    write(tmp_path / "there", "slow", SLOW, pause=0.3)
    return url, here, tmp_path / "there"


def notifications(c: httpx.Client) -> dict:
    found = c.get("/runs.json").json()["notifications"]
    assert found is not None
    return found


def wait_connected(c: httpx.Client, connects: int = 1, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = notifications(c)
        if found["connected"] and found["connects"] >= connects:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the listener did not connect: {notifications(c)}")


@contextlib.contextmanager
def a_running_run(c: httpx.Client, url: str, there: Path,
                  timeout: float = 30) -> Iterator[str]:
    """Start the slow spec on 'another machine'; the id of the run once the runs stream
    shows it running (the block runs while it does; the run is waited for at its end)."""
    proc = start("run", "slow", "--yes", "--database-url", url, cwd=there)
    try:
        yield running_on_stream(c, timeout)
    finally:
        proc.wait(60)


def running_on_stream(c: httpx.Client, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    with c.stream("GET", "/runs/stream") as r:
        for _ident, event, data in messages(r):
            assert time.monotonic() < deadline, "the run never reached the runs stream"
            if event != "runs" or data is None:
                continue
            rows = [row for row in data["runs"] if row["source"] == "history"]
            if rows and rows[0]["status"] == "running":
                return str(rows[0]["run_id"])
    raise AssertionError("the runs stream ended")


def test_another_machines_run_arrives_by_notification(shared: tuple[str, Path, Path]) -> None:
    url, here, there = shared
    with served(here, database_url=url, history_poll_s=NEVER_S, heartbeat_s=0.5) as base, \
            httpx.Client(base_url=base, timeout=30) as c:
        assert wait_connected(c)["poll_s"] == NEVER_S
        statuses = []
        with a_running_run(c, url, there) as run_id, c.stream(
                "GET", f"/runs/{run_id}/stream?after=0") as r:
            # the run's own page follows it to its end, still by notification
            last, deadline = 0, time.monotonic() + 30
            for ident, event, data in messages(r):
                assert time.monotonic() < deadline, f"the run's page saw {statuses} only"
                if event != "change" or data is None:
                    continue
                assert int(ident or 0) > last and data["source"] == "history"
                last = int(ident or 0)
                statuses.append(data["run"]["status"])
                if data["run"]["status"] == "completed":
                    break
        assert statuses[0] == "running" and statuses[-1] == "completed"
        assert notifications(c)["received"] > 1


def test_the_listener_outlives_a_server_restart(pg: PostgresServer,
                                                shared: tuple[str, Path, Path]) -> None:
    url, here, there = shared
    with served(here, database_url=url, history_poll_s=NEVER_S, heartbeat_s=0.5) as base, \
            httpx.Client(base_url=base, timeout=30) as c:
        wait_connected(c)
        pg.restart()
        again = wait_connected(c, connects=2)
        assert again["error"] is None
        with a_running_run(c, url, there):
            pass
        listening = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = " \
                    f"'{APPLICATION}'"
        with psycopg.connect(conninfo(url), autocommit=True) as conn:
            assert conn.execute(listening).fetchone() == (1,)
    # the dashboard stopped: its listener's connection is closed
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while conn.execute(listening).fetchone() != (0,):
            assert time.monotonic() < deadline, "the listener's connection stayed open"
            time.sleep(0.1)
