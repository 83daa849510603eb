"""Reading a run's event log for a person: every event, and every line that is not one."""

from __future__ import annotations

from pathlib import Path

from specs import events as ev
from specs.engine.journal import EventLog
from specs.record.eventlog import read_log


def _log(path: Path, *extra: bytes, torn: bytes = b"") -> list[ev.Event]:
    written = [ev.RunOpened(run_id="r", descriptor="d", spec={}, options={}, totals={}),
               ev.TaskStarted(task="1"), ev.StepStarted(step="1.1", mode="silent",
                                                        critical=True)]
    log = EventLog(path, fsync_interval=0)
    for event in written:
        log.append(event)
    log.close()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"".join(extra) + b"".join(lines[1:]) + torn)
    return written


def test_damaged_lines_are_named_and_the_events_kept(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    written = _log(path, b"{not json\n", b"[1, 2]\n", b'{"event": "no-such-thing"}\n',
                   b'{"event": "step-ended", "seq": 9}\n', b"\xff\xfe\n")
    found = read_log(path)
    assert [e.name for e in found.events] == [e.name for e in written]
    assert [(d.line, d.reason.split(" (")[0]) for d in found.damaged] == [
        (2, "not JSON"), (3, "no event name"), (4, "unknown event 'no-such-thing'"),
        (5, "step-ended: fields do not fit"), (6, "not JSON")]
    assert found.damaged[0].message(path) == f"{path}:2: damaged event line skipped (not JSON)"
    assert not found.torn
    # the engine's reader skips the same lines, silently
    assert [e.to_dict() for e in found.events] == [e.to_dict() for e in ev.read_events(path)]


def test_a_torn_last_line_is_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _log(path, torn=b'{"event": "step-end')
    found = read_log(path)
    assert (len(found.events), found.damaged, found.torn) == (3, [], True)


def test_a_whole_log_reads_clean(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _log(path)
    found = read_log(path)
    assert (len(found.events), found.damaged, found.torn) == (3, [], False)
