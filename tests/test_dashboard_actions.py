"""The dashboard's actions (src/specs/dashboard/actions.py): a gate answered with the button
acts as `specs approve` does, and a paused run is continued in the dashboard."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dashboard_specs import client, specs_cli, write
from specs.api import read_run

HEADERS = {"origin": "http://127.0.0.1:8765"}


def test_a_paused_run_answered_and_resumed_from_the_dashboard_ends(tmp_path: Path) -> None:
    write(tmp_path, "demo")
    assert specs_cli("run", "demo", "--no-input", cwd=tmp_path).returncode == 3
    state = tmp_path / ".specs"

    async def go() -> None:
        async with client(state, action_token="t" * 24) as c:
            item = (await c.get("/inbox.json")).json()["items"][0]
            url = f"/runs/{item['run_id']}/gates/{item['gate']}"
            r = await c.post(url, json={"response": "approve"},
                             headers={**HEADERS, "x-specs-token": "t" * 24})
            assert r.status_code == 200, r.text
            answer = r.json()
            assert (answer["live"], answer["response"]) == (False, "approve")
            assert answer["resume"] == f"specs resume {item['run_id']}"
            again = await c.post(url, json={"response": "approve"},
                                 headers={**HEADERS, "x-specs-token": "t" * 24})
            assert again.status_code == 409 and again.json()["ok"] is False
            assert (await c.get("/inbox.json")).json()["items"] == []
            r = await c.post(f"/runs/{item['run_id']}/resume",
                             headers={**HEADERS, "x-specs-token": "t" * 24})
            assert r.status_code == 202, r.text
            for _ in range(300):
                run = (await c.get(f"/runs/{item['run_id']}.json")).json()["run"]
                if run["status"] == "completed":
                    break
                await asyncio.sleep(0.05)
            assert (run["status"], run["goal"]) == ("completed", "ACHIEVED")
            answered = [e for e in read_run(state / "runs" / item["run_id"])
                        if e.name == "gate-answered"]
            assert [(e.response, e.by) for e in answered] == [("approve", "dashboard")]

    asyncio.run(go())


def test_an_answer_the_gate_does_not_take_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "demo")
    assert specs_cli("run", "demo", "--no-input", cwd=tmp_path).returncode == 3

    async def go() -> None:
        async with client(tmp_path / ".specs", action_token="t" * 24) as c:
            item = (await c.get("/inbox.json")).json()["items"][0]
            url = f"/runs/{item['run_id']}/gates/{item['gate']}"
            headers = {**HEADERS, "x-specs-token": "t" * 24}
            for body, status in (({"response": "dance"}, 400), ({}, 400), ([1], 400)):
                r = await c.post(url, json=body, headers=headers)
                assert r.status_code == status, (body, r.text)
                assert r.json()["ok"] is False
            r = await c.post(url, content=b"{not json", headers=headers)
            assert r.status_code == 400 and "JSON" in r.json()["error"]
            r = await c.post(f"/runs/{item['run_id']}/gates/nope", json={"response": "approve"},
                             headers=headers)
            assert r.status_code == 409
            assert len((await c.get("/inbox.json")).json()["items"]) == 1  # nothing changed

    asyncio.run(go())
