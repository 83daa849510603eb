"""The event log: what is written when, and the grouped fsync on its helper thread."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from specs import events as ev


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting_fsync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the real fsyncs (they still happen)."""
    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(ev.os, "fsync", fsync)
    return calls


def helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fsync ")]


def started(step: str = "1.1") -> ev.Event:
    return ev.StepStarted(step=step, mode="dynamic", critical=True)


def test_buffered_events_are_written_in_order_at_flush(tmp_path: Path) -> None:
    log = ev.EventLog(tmp_path / "events.jsonl", fsync_interval=60)
    log.append(started("1.1"), flush=False)
    log.append(started("1.2"), flush=False)
    assert (tmp_path / "events.jsonl").read_bytes() == b""
    log.flush()
    assert [e.step for e in ev.read_events(tmp_path / "events.jsonl")] == ["1.1", "1.2"]
    log.close()


def test_interval_zero_syncs_every_flush_on_the_caller_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_fsync(monkeypatch)
    log = ev.EventLog(tmp_path / "events.jsonl", fsync_interval=0)
    for n in range(3):
        log.append(started(f"1.{n}"))
    assert len(calls) == 3 and not helpers()
    log.close()
    assert len(calls) == 3  # nothing new to sync at close


def test_grouped_sync_runs_on_the_helper_thread_and_close_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_fsync(monkeypatch)
    clock = FakeClock()
    log = ev.EventLog(tmp_path / "events.jsonl", fsync_interval=0.2, clock=clock)
    log.append(started("1.1"))
    assert calls == []  # within the interval: written, not synced
    clock.now = 0.5
    log.append(started("1.2"))  # interval passed: the helper syncs
    assert helpers()
    log.append(started("1.3"))  # written after that sync was asked for
    log.close()
    assert not helpers() and log.closed
    assert 1 <= len(calls) <= 2  # the helper's sync, and close's if 1.3 came after it
    assert [e.step for e in ev.read_events(tmp_path / "events.jsonl")] == ["1.1", "1.2", "1.3"]


def test_close_syncs_what_nobody_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_fsync(monkeypatch)
    log = ev.EventLog(tmp_path / "events.jsonl", fsync_interval=60)
    log.append(started())
    log.close()
    assert len(calls) == 1


def test_sync_soon_then_close_leaves_everything_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_fsync(monkeypatch)
    log = ev.EventLog(tmp_path / "events.jsonl", fsync_interval=60)
    log.append(started(), flush=False)
    log.sync_soon()
    log.close()
    assert len(calls) == 1  # the helper's, or close's when the helper had not begun yet
    assert not helpers()


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = ev.EventLog(path, fsync_interval=60)
    log.append(started("1.1"))
    log.close()
    with path.open("ab") as handle:
        handle.write(b'{"event": "step-sta')  # a crash mid-write
    assert [e.step for e in ev.read_events(path)] == ["1.1"]
    log = ev.EventLog(path, fsync_interval=60)
    log.append(started("1.2"))
    log.close()
    assert [e.step for e in ev.read_events(path)] == ["1.1", "1.2"]
