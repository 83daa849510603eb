"""Live updates: server-sent events fed by tailing the runs' event logs.

:class:`Hub` follows each run that a browser watches: one poller looks at the run's
``events.jsonl`` every ``poll_s`` (a ``stat``; the file is read only when it grew), applies
the new events to the run's :class:`~specs.dashboard.model.RunModel` once, encodes one
message per event once, and hands the same bytes to every watcher. Each message's SSE
``id:`` is the event's sequence number; a browser that reconnects sends it back as
``Last-Event-ID`` and gets one catch-up message with the current records of the steps that
changed since, then the live messages: nothing missed, nothing twice. A watcher that falls
more than :data:`QUEUE` messages behind is let go (its browser reconnects and catches up)
rather than held in memory. Every stream gets a comment line every ``heartbeat_s`` so
proxies keep it open.

The runs page's stream sends the whole (filtered) list of runs when any run's log changed,
or the history database's runs did: at its next poll, or, on PostgreSQL, as soon as a
notification says so (:meth:`Hub.history_changed`, at most every :data:`NOTICE_GAP_S`). The
page of a run only the history has follows it the same way (:meth:`Hub.history_stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from specs.dashboard.config import DashboardConfig
from specs.dashboard.model import RunModel
from specs.dashboard.runs import RunFilter, RunIndex
from specs.errors import SpecsError

__all__ = ["QUEUE", "Hub", "sse"]

#: messages a watcher may be behind before it is let go (it reconnects and catches up)
QUEUE = 5000
#: how long a run's model is kept after its last watcher left
KEEP_S = 120.0
#: the runs page's fingerprint is taken this often
RUNS_POLL_S = 0.5
#: the least time between two sendings caused by the history's notifications (a run on
#: another machine commits every 0.1 s: its watchers need not hear every one)
NOTICE_GAP_S = 0.25


def sse(data: Any, *, event: str = "change", id: int | str | None = None) -> bytes:
    """One server-sent event (``data`` as JSON on one line)."""
    head = f"id: {id}\n".encode() if id is not None else b""
    return head + b"event: " + event.encode() + b"\ndata: " + orjson.dumps(
        data, default=str) + b"\n\n"


HEARTBEAT = b": heartbeat\n\n"


@dataclass
class Feed:
    """One followed run: its model and its watchers' queues."""

    model: RunModel
    queues: set[asyncio.Queue[bytes | None]] = field(default_factory=set)
    idle_since: float = field(default_factory=time.monotonic)


class Hub:
    """The live part of one dashboard: models of followed runs, and the pollers."""

    def __init__(self, config: DashboardConfig, index: RunIndex) -> None:
        self.config = config
        self.index = index
        self.feeds: dict[str, Feed] = {}
        self.loading: dict[str, asyncio.Future[Feed]] = {}
        self.runs_watchers: dict[asyncio.Queue[bytes | None], RunFilter] = {}
        self.on_runs_change: list[Callable[[], None]] = []
        self._poller: asyncio.Task[None] | None = None
        self._fingerprint: tuple[Any, ...] = ()
        self._runs_version = 0
        self._rows: dict[asyncio.Queue[bytes | None],
                         Callable[[RunFilter], Any]] = {}
        self.sent = 0  # messages handed to watchers (the bench reads it)
        self.closing = False  # the server stops: every stream ends
        self._history_due = False  # a notification came: look at the runs at once
        self._history_waiters: dict[str, set[asyncio.Event]] = {}

    # -- models ------------------------------------------------------------------------------

    async def feed(self, run_id: str) -> Feed:
        """The run's feed, its model brought up to date (loaded in a worker thread the first
        time: a big run takes a while to rebuild)."""
        self.index.folder(run_id)  # UsageError (404) for an unknown id, before any work
        found = self.feeds.get(run_id)
        if found is None:
            pending = self.loading.get(run_id)
            if pending is None:
                pending = self.loading[run_id] = asyncio.get_running_loop().create_future()
                try:
                    model = await asyncio.to_thread(RunModel.load, self.index.state_dir,
                                                    run_id)
                except BaseException as exc:
                    pending.set_exception(exc)
                    pending.exception()  # retrieved: no "never retrieved" warning
                    raise
                finally:
                    self.loading.pop(run_id, None)
                found = self.feeds[run_id] = Feed(model)
                pending.set_result(found)
            else:
                found = await asyncio.shield(pending)
        self._publish(found, found.model.update())
        self._ensure_poller()
        return found

    def _publish(self, feed: Feed, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            data = sse(message, id=message["seq"])
            for queue in list(feed.queues):
                try:
                    queue.put_nowait(data)
                    self.sent += 1
                except asyncio.QueueFull:  # too far behind: let it reconnect and catch up
                    feed.queues.discard(queue)
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.get_nowait()
                        queue.put_nowait(None)

    # -- streams -----------------------------------------------------------------------------

    async def run_stream(self, run_id: str, after: int | None) -> AsyncIterator[bytes]:
        """A run's event stream: a catch-up message when ``after`` (the last sequence number
        the browser saw) is behind, then one message per event, and heartbeats."""
        feed = await self.feed(run_id)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        model = feed.model
        # no await between the catch-up and joining the watchers: no event can slip between
        first = [b"retry: 1000\n\n"]
        if after is None or after < model.seq:
            first.append(sse(model.catch_up(after or 0), event="catch-up", id=model.seq))
        feed.queues.add(queue)
        try:
            for chunk in first:
                yield chunk
            async for chunk in self._drain(queue):
                yield chunk
        finally:
            feed.queues.discard(queue)
            feed.idle_since = time.monotonic()

    async def _drain(self, queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), self.config.heartbeat_s)
            except TimeoutError:
                yield HEARTBEAT
                continue
            if item is None:
                return
            yield item

    async def runs_stream(self, keep: RunFilter, rows: Callable[[RunFilter], Any], *,
                          event: str = "runs") -> AsyncIterator[bytes]:
        """The runs page's (or the inbox's) stream: ``rows(keep)`` whenever any run
        changed, as ``{event: rows}``."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(64)
        self.runs_watchers[queue] = keep
        self._rows[queue] = lambda k: {event: rows(k), "kind": event}
        self._ensure_poller()
        try:
            yield b"retry: 1000\n\n"
            async for chunk in self._drain(queue):
                yield chunk
        finally:
            self.runs_watchers.pop(queue, None)
            self._rows.pop(queue, None)

    # -- polling -----------------------------------------------------------------------------

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        last_runs = 0.0
        while self.feeds or self.runs_watchers:
            now = time.monotonic()
            for run_id, feed in list(self.feeds.items()):
                if feed.queues:
                    self._publish(feed, feed.model.update())
                elif now - feed.idle_since > KEEP_S:
                    self.feeds.pop(run_id, None)
            due = now - last_runs >= (NOTICE_GAP_S if self._history_due else RUNS_POLL_S)
            if self.runs_watchers and due:
                last_runs = now
                self._history_due = False
                self._runs_changed()
            await asyncio.sleep(self.config.poll_s)

    def _runs_changed(self) -> None:
        fingerprint = self.index.fingerprint()
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        self._runs_version += 1
        for queue, keep in list(self.runs_watchers.items()):
            payload = self._rows[queue](keep)
            data = sse(payload, event=payload["kind"], id=self._runs_version)
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                continue

    def history_changed(self, run_id: str | None) -> None:
        """The history database says ``run_id`` changed (None: maybe any run): the runs
        streams send again within :data:`NOTICE_GAP_S`, the run's followers at once."""
        self._history_due = True
        waiters = self._history_waiters.values() if run_id is None else [
            self._history_waiters.get(run_id, set())]
        for group in list(waiters):
            for waiter in group:
                waiter.set()

    async def history_stream(self, run_id: str, after: int | None,
                             snapshot: Callable[[], dict[str, Any] | None],
                             poll_s: Callable[[], float]) -> AsyncIterator[bytes]:
        """The stream of a run only the history has: its page's data (as one ``change``
        message, the run's last sequence number as its id) whenever that grew; looked at when
        a notification names the run, else every ``poll_s()``."""
        waiter = asyncio.Event()
        self._history_waiters.setdefault(run_id, set()).add(waiter)
        seen, beat, read = after or 0, time.monotonic(), -math.inf
        try:
            yield b"retry: 1000\n\n"
            while not self.closing:
                if waiter.is_set() or time.monotonic() - read >= poll_s():
                    waiter.clear()
                    read = time.monotonic()
                    try:
                        data = await asyncio.to_thread(snapshot)
                    except SpecsError:  # the database is away for now: the next look may do
                        data = None
                    if data is not None and data["run"]["seq"] > seen:
                        seen = data["run"]["seq"]
                        yield sse({**data, "event": "change", "seq": seen}, id=seen)
                    await asyncio.sleep(NOTICE_GAP_S)  # notifications come in bursts
                now = time.monotonic()
                wait = min(read + poll_s(), beat + self.config.heartbeat_s) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), max(0.0, wait))
                if time.monotonic() - beat >= self.config.heartbeat_s:
                    beat = time.monotonic()
                    yield HEARTBEAT
        finally:
            group = self._history_waiters.get(run_id, set())
            group.discard(waiter)
            if not group:
                self._history_waiters.pop(run_id, None)

    def poke(self, run_id: str) -> None:
        """Look at a run's log now (an action just wrote to it)."""
        feed = self.feeds.get(run_id)
        if feed is not None:
            self._publish(feed, feed.model.update())
        self._fingerprint = ()

    async def close(self) -> None:
        """End every stream (the server stops)."""
        self.closing = True
        for group in self._history_waiters.values():
            for waiter in group:
                waiter.set()
        queues = [q for feed in self.feeds.values() for q in feed.queues]
        for queue in [*queues, *self.runs_watchers]:
            with contextlib.suppress(asyncio.QueueEmpty):
                while queue.full():
                    queue.get_nowait()
            queue.put_nowait(None)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
