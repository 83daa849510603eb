"""The history database's notifications: the dashboard hears of another machine's run as soon
as the transaction that recorded it commits, instead of at its next poll.

On PostgreSQL every transaction of the history's writers that changed a run also sends
``NOTIFY specs_history, '<run id>'`` (:meth:`specs.history.HistoryStore.notify`).
:class:`HistoryListener` holds a connection of its own (psycopg's asynchronous connection, on
the dashboard's event loop, in autocommit mode) that ``LISTEN``\\ s on that channel and calls
``on_change(run_id)`` for each notification. After :data:`CHECK_S` without one it asks the
server ``SELECT 1``, so that a connection lost without a word (a cable, a firewall) is noticed
too. When the server goes away it connects again, waiting :data:`FIRST_BACKOFF_S` and then
twice as long after each failure, up to :data:`MAX_BACKOFF_S`; once connected it calls
``on_change(None)``: what changed while it was away is unknown, so everything is looked at
again. :meth:`HistoryListener.close` (the dashboard stops) closes the connection.

SQLite has no notifications: there the dashboard keeps polling the history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from specs.history.store import CHANNEL

__all__ = ["APPLICATION", "CHECK_S", "FIRST_BACKOFF_S", "MAX_BACKOFF_S", "HistoryListener",
           "conninfo"]

#: silence after which the connection is checked (a ``SELECT 1``)
CHECK_S = 30.0
#: the first wait before connecting again; doubled after each failure
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
#: the listener's connection's ``application_name`` (as ``pg_stat_activity`` shows it)
APPLICATION = "specs-dashboard"


def conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://``
    becomes ``postgresql://``, the password kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class HistoryListener:
    """``LISTEN specs_history`` on one connection, for as long as the dashboard runs; see
    the module docstring. ``on_change`` is called on the event loop."""

    def __init__(self, url: str, on_change: Callable[[str | None], None], *,
                 check_s: float = CHECK_S) -> None:
        self.conninfo = conninfo(url)
        self.on_change = on_change
        self.check_s = check_s
        self.connected = False
        self.connects = 0  # connections made so far (1 + the reconnections)
        self.notices = 0  # notifications received so far
        self.error: str | None = None  # why the last connection failed or ended
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Listen from now on (on the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="history-listener")

    async def close(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected = False

    async def _run(self) -> None:
        try:
            import psycopg
        except ImportError as exc:  # a psycopg2 URL: no listener, the history is polled
            self.error = f"no notifications: psycopg (3) is not installed ({exc})"
            return

        delay = FIRST_BACKOFF_S
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, connect_timeout=10,
                    application_name=APPLICATION)
            except (psycopg.Error, OSError) as exc:
                self.error = _first_line(exc)
            else:
                try:
                    async with conn:
                        await conn.execute(f"LISTEN {CHANNEL}")
                        self.connected, self.error = True, None
                        self.connects += 1
                        delay = FIRST_BACKOFF_S
                        self._tell(None)
                        await self._listen(conn)
                except (psycopg.Error, OSError) as exc:
                    self.error = _first_line(exc)
                finally:
                    self.connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    async def _listen(self, conn: Any) -> None:
        while True:
            async for notice in conn.notifies(timeout=self.check_s):
                self.notices += 1
                self._tell(notice.payload or None)
            await conn.execute("SELECT 1")  # silence: is the server still there?

    def _tell(self, run_id: str | None) -> None:
        try:
            self.on_change(run_id)
        except Exception as exc:  # the listener outlives a bad page: the poll still works
            self.error = f"{exc.__class__.__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
