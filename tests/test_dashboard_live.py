"""Live updates (src/specs/dashboard/live.py): server-sent events from a real dashboard on
127.0.0.1 following a run that another process is running; the event sequence numbers as
SSE ids, a reconnect with Last-Event-ID that misses nothing, heartbeats, and a gate answered
while the run waits at it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard_specs import SLOW, served, start, write
from specs.api import read_run


def messages(response: httpx.Response) -> Iterator[tuple[str | None, str, dict | None]]:
    """(id, event, data) of each server-sent event; (None, "heartbeat", None) for comments."""
    ident, event, data = None, "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield None, "heartbeat", None
        elif line.startswith("id: "):
            ident = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield ident, event, json.loads("\n".join(data))
            ident, event, data = None, "message", []


def wait_for_run(state: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list((state / "runs").glob("*/events.jsonl")) if (state / "runs").is_dir() else []
        if runs:
            return runs[0].parent.name
        time.sleep(0.05)
    raise AssertionError("the run did not start")


@pytest.fixture()
def slow_run(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A run in another process that waits at its gate for an answer (--wait)."""
    write(tmp_path, "slow", SLOW, pause=0.3)
    proc = start("run", "slow", "--wait", cwd=tmp_path)
    try:
        yield tmp_path / ".specs", wait_for_run(tmp_path / ".specs")
    finally:
        proc.kill()
        proc.wait(10)


def test_a_watcher_sees_every_event_once_and_can_answer_the_gate(
        slow_run: tuple[Path, str]) -> None:
    state, run_id = slow_run
    seen: list[int] = []
    steps: dict[str, str] = {}
    with served(state, action_token="t" * 24) as url, httpx.Client(base_url=url,
                                                                    timeout=30) as c:
        with c.stream("GET", f"/runs/{run_id}/stream?after=0") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for ident, event, data in messages(r):
                if data is None:
                    continue
                assert ident is not None and int(ident) == data["seq"]
                if event == "catch-up":
                    assert data["after"] == 0
                else:
                    assert event == "change" and data["seq"] > (seen[-1] if seen else 0)
                seen.append(data["seq"])
                for step in data.get("steps", []):
                    steps[step["ref"]] = step["status"]
                gates = [g for g in data.get("gates", []) if g["step"] == "1.3"]
                if gates:
                    answer = c.post(f"/runs/{run_id}/gates/{gates[0]['gate']}",
                                    json={"response": "approve"},
                                    headers={"x-specs-token": "t" * 24, "origin": url})
                    assert answer.status_code == 200 and answer.json()["live"] is True
                if data["run"]["status"] == "completed":
                    break
        events = read_run(state / "runs" / run_id)
        # the catch-up stood for the events before it; then each event exactly once
        first = seen[0]
        assert seen[1:] == [e.seq for e in events if e.seq > first]
        assert steps == {"1.1": "completed", "1.2": "completed", "1.3": "completed",
                         "1.4": "completed"}
        final = c.get(f"/runs/{run_id}.json").json()
        assert final["run"]["status"] == "completed" and final["run"]["seq"] == events[-1].seq


def test_a_reconnect_with_last_event_id_misses_nothing(slow_run: tuple[Path, str]) -> None:
    state, run_id = slow_run
    with served(state, heartbeat_s=0.2) as url, httpx.Client(base_url=url, timeout=30) as c:
        last = 0
        with c.stream("GET", f"/runs/{run_id}/stream?after=0") as r:
            for ident, _event, data in messages(r):
                if data is not None and ident is not None:
                    last = int(ident)
                    if any(s["ref"] == "1.1" and s["status"] == "started"
                           for s in data.get("steps", [])):
                        break  # the browser goes away while step 1.1 runs
        deadline = time.monotonic() + 20  # the run goes on meanwhile: 1.1 ends, 1.2 falls back
        while not any(e.name == "gate-requested" for e in read_run(state / "runs" / run_id)):
            assert time.monotonic() < deadline, "the run did not reach its gate"
            time.sleep(0.05)
        missed = [e for e in read_run(state / "runs" / run_id) if e.seq > last]
        assert {"attempt-ended", "backup-triggered", "step-ended"} <= {e.name for e in missed}
        changed = {e.step for e in missed if isinstance(getattr(e, "step", None), str)}
        heartbeats = 0
        with c.stream("GET", f"/runs/{run_id}/stream",
                      headers={"last-event-id": str(last)}) as r:
            for _ident, event, data in messages(r):
                if event == "heartbeat":
                    heartbeats += 1
                    if heartbeats >= 2:
                        break
                    continue
                if event == "catch-up":
                    assert data is not None and data["after"] == last
                    assert {s["ref"] for s in data["steps"]} >= changed
                    assert data["seq"] >= missed[-1].seq
                    assert [line[0] for line in data["lines"]][:len(missed)] == [
                        e.seq for e in missed][: len(data["lines"])]
        assert heartbeats >= 2


def test_the_runs_page_stream_sends_the_rows_when_a_run_changes(
        slow_run: tuple[Path, str]) -> None:
    state, run_id = slow_run
    with served(state) as url, httpx.Client(base_url=url, timeout=30) as c, c.stream(
            "GET", "/runs/stream?spec=slow") as r:
        for _ident, event, data in messages(r):
            if event == "runs" and data is not None:
                assert [row["run_id"] for row in data["runs"]] == [run_id]
                assert data["runs"][0]["status"] in ("running", "awaiting_human")
                break
