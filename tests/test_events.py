"""The event log: what is written when, and the grouped fsync on its helper thread."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from specs import events as ev
from specs.engine import journal
from specs.engine.journal import EventLog


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

    monkeypatch.setattr(journal.os, "fsync", fsync)
    return calls


def helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fsync ")]


def started(step: str = "1.1") -> ev.Event:
    return ev.StepStarted(step=step, mode="dynamic", critical=True)


def test_buffered_events_are_written_in_order_at_flush(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", fsync_interval=60)
    log.append(started("1.1"), flush=False)
    log.append(started("1.2"), flush=False)
    assert (tmp_path / "events.jsonl").read_bytes() == b""
    log.flush()
    assert [e.step for e in ev.read_events(tmp_path / "events.jsonl")] == ["1.1", "1.2"]
    log.close()


def test_interval_zero_syncs_every_flush_on_the_caller_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_fsync(monkeypatch)
    log = EventLog(tmp_path / "events.jsonl", fsync_interval=0)
    for n in range(3):
        log.append(started(f"1.{n}"))
    assert len(calls) == 3 and not helpers()
    log.close()
    assert len(calls) == 3  # nothing new to sync at close


def test_grouped_sync_runs_on_the_helper_thread_and_close_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_fsync(monkeypatch)
    clock = FakeClock()
    log = EventLog(tmp_path / "events.jsonl", fsync_interval=0.2, clock=clock)
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
    log = EventLog(tmp_path / "events.jsonl", fsync_interval=60)
    log.append(started())
    log.close()
    assert len(calls) == 1


def test_sync_soon_then_close_leaves_everything_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_fsync(monkeypatch)
    log = EventLog(tmp_path / "events.jsonl", fsync_interval=60)
    log.append(started(), flush=False)
    log.sync_soon()
    log.close()
    assert len(calls) == 1  # the helper's, or close's when the helper had not begun yet
    assert not helpers()


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, fsync_interval=60)
    log.append(started("1.1"))
    log.close()
    with path.open("ab") as handle:
        handle.write(b'{"event": "step-sta')  # a crash mid-write
    assert [e.step for e in ev.read_events(path)] == ["1.1"]
    log = EventLog(path, fsync_interval=60)
    log.append(started("1.2"))
    log.close()
    assert [e.step for e in ev.read_events(path)] == ["1.1", "1.2"]


def _sample(cls: type[ev.Event]) -> ev.Event:
    """An instance with every field filled with a value of an awkward kind."""
    import dataclasses

    values: dict[str, object] = {}
    for number, f in enumerate(dataclasses.fields(cls)):
        if not f.init:
            continue
        kind = number % 6
        values[f.name] = ["ünïcode \"quoted\"\n", 2**40, 0.5, None, {"k": [1, "v", {"n": None}]},
                          [True, "x"]][kind]
    event = cls(**values)  # type: ignore[arg-type]
    event.seq, event.ts = 7, "2026-11-26T01:02:03.004Z"
    return event


@pytest.mark.parametrize("name", sorted(ev.EVENT_TYPES))
def test_every_event_encodes_to_the_json_of_its_dict(name: str) -> None:
    import json

    event = _sample(ev.EVENT_TYPES[name])
    line = ev.encode_event(event)
    assert line == ev._encode(event.to_dict())  # the same bytes as the plain way
    assert json.loads(line) == json.loads(json.dumps(event.to_dict(), default=str))
    assert list(json.loads(line)) == list(event.to_dict())  # "event" first, fields in order
    assert ev.event_from_dict(json.loads(line)) == event


def test_nested_keys_that_are_not_strings_are_encoded_as_before() -> None:
    event = ev.AttemptEnded(step="1.1", method="primary", attempt=1, outcome="success",
                            output={1: "one", "two": {3: None}})
    assert ev.encode_event(event) == ev._encode(event.to_dict())
    assert json.loads(ev.encode_event(event))["output"] == {"1": "one", "two": {"3": None}}


def test_an_event_orjson_cannot_encode_falls_back_to_json() -> None:
    import json

    event = ev.AttemptEnded(step="1.1", method="primary", attempt=1, outcome="success",
                            output={"big": 2**70, "path": Path("/tmp/x")})
    data = json.loads(ev.encode_event(event))
    assert data["output"] == {"big": 2**70, "path": "/tmp/x"}
    assert data["event"] == "attempt-ended"


def test_iso_formats_milliseconds_and_reuses_the_last_one() -> None:
    assert ev.iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert ev.iso(1764118923.1239) == "2025-11-26T01:02:03.123Z"
    assert ev.iso(1764118923.1231) == "2025-11-26T01:02:03.123Z"
    assert ev.iso(1764118923.9999) == "2025-11-26T01:02:03.999Z"
    assert ev.iso(1764118924.0) == "2025-11-26T01:02:04.000Z"
