"""The dashboard's pages and their JSON twins (src/specs/dashboard/), in-process: real runs
made by the CLI, read back through every route, one error shape, output shown as text,
gates answered and runs resumed, and the static export."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from dashboard_specs import client, specs_cli, write
from specs.dashboard import export_run


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of one spec: one approved to its end (--yes), one paused at its gate."""
    root = tmp_path_factory.mktemp("dash")
    write(root, "demo")
    done = specs_cli("run", "demo", "--yes", cwd=root)
    assert done.returncode == 0, done.stderr
    paused = specs_cli("run", "demo", "--no-input", cwd=root)
    assert paused.returncode == 3, paused.stderr
    return root / ".specs"


def get(state: Path, path: str, **headers: str) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with client(state) as c:
            r = await c.get(path, headers=headers)
            return r.status_code, r.text
    return asyncio.run(go())


def get_json(state: Path, path: str) -> dict:
    status, text = get(state, path)
    data = json.loads(text)
    assert data["ok"] is (status == 200), data
    return data


def runs(state: Path) -> list[dict]:
    return get_json(state, "/runs.json")["runs"]


def test_the_runs_page_lists_every_run_newest_first(state: Path) -> None:
    rows = runs(state)
    assert [r["status"] for r in rows] == ["awaiting_human", "completed"]
    paused, done = rows
    assert paused["spec"] == "demo" and paused["pending_gate"]
    assert (done["steps_done"], done["steps_total"], done["goal"]) == (3, 3, "ACHIEVED")
    assert done["duration_s"] is not None and done["source"] == "state"
    status, html = get(state, "/runs", accept="text/html")
    assert status == 200 and paused["run_id"] in html and "<table" in html


def test_runs_are_filtered_by_spec_status_and_date(state: Path) -> None:
    assert len(get_json(state, "/runs.json?status=completed")["runs"]) == 1
    assert get_json(state, "/runs.json?spec=nothing-like-it")["runs"] == []
    assert len(get_json(state, "/runs.json?spec=DEM")["runs"]) == 2
    day = runs(state)[0]["started"][:10]
    assert len(get_json(state, f"/runs.json?since={day}&until={day}")["runs"]) == 2
    assert get_json(state, "/runs.json?until=2000-01-01")["runs"] == []


def test_the_run_page_has_the_tree_and_the_attempt_lanes(state: Path) -> None:
    paused = runs(state)[0]["run_id"]
    data = get_json(state, f"/runs/{paused}.json")
    assert data["run"]["status"] == "awaiting_human" and data["run"]["steps_total"] == 3
    assert [(t["ref"], t["counts"]["completed"], t["total"]) for t in data["tasks"]] == [
        ("1", 2, 2), ("2", 0, 1)]
    steps = {s["ref"]: s for s in data["steps"]}
    lane = [(e["label"], e.get("outcome"), bool(e.get("won"))) for e in steps["1.2"]["lane"]]
    assert lane == [("primary", "failure", False), ("backup 1", "success", True)]
    assert steps["1.2"]["method_used"] == "backup_1"
    gate = steps["2.1"]["lane"][0]
    assert (gate["kind"], gate["label"], gate["open"]) == ("gate", "approval", True)
    assert data["gates"][0]["step"] == "2.1"
    # each backup's win rate over the spec's other runs: the first run won with backup 1
    assert data["win_rates"]["1.2"] == {"primary": [1, 0], "backup_1": [1, 1]}
    status, html = get(state, f"/runs/{paused}", accept="text/html")
    assert status == 200 and 'data-task="2"' in html and 'id="data"' in html


def test_a_step_shows_its_output_as_text(state: Path) -> None:
    run_id = runs(state)[1]["run_id"]
    data = get_json(state, f"/runs/{run_id}/steps/1.1.json")
    assert data["attempts"][0]["stdout"] == "<script>alert(1)</script>\n"
    status, html = get(state, f"/runs/{run_id}/steps/1.1", accept="text/html")
    assert status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    failed = get_json(state, f"/runs/{run_id}/steps/1.2.json")["attempts"]
    assert failed[0]["stdout"] == "primary tried\n" and failed[0]["exit_code"] == 3
    assert failed[0]["failure_reason"]


def test_run_data_in_a_page_cannot_end_its_script_element(state: Path) -> None:
    run_id = runs(state)[1]["run_id"]
    status, html = get(state, f"/runs/{run_id}", accept="text/html")
    data = html.split('<script type="application/json" id="data">', 1)[1]
    assert status == 200 and "<" not in data.split("</script>", 1)[0]


def test_a_task_opens_with_its_steps(state: Path) -> None:
    run_id = runs(state)[0]["run_id"]
    data = get_json(state, f"/runs/{run_id}/tasks/1.json")
    assert [s["ref"] for s in data["steps"]] == ["1.1", "1.2"]
    assert get_json(state, f"/runs/{run_id}/tasks/9.json")["status"] == 404


def test_the_timeline_and_the_graph_are_drawn(state: Path) -> None:
    run_id = runs(state)[1]["run_id"]
    status, html = get(state, f"/runs/{run_id}/timeline")
    assert status == 200 and "<svg" in html and "1.2" in html
    status, svg = get(state, f"/runs/{run_id}/graph")
    assert status == 200 and svg.startswith("<svg") and 'data-ref="2.1"' in svg
    graph = get_json(state, f"/runs/{run_id}/graph.json")
    assert {s["ref"] for s in graph["steps"]} == {"1.1", "1.2", "2.1"}


def test_the_inbox_lists_the_pending_gate_with_its_cli_equivalent(state: Path) -> None:
    items = get_json(state, "/inbox.json")["items"]
    assert len(items) == 1
    item = items[0]
    run_id = runs(state)[0]["run_id"]
    assert (item["run_id"], item["step"], item["kind"], item["live"]) == (
        run_id, "2.1", "before_step", False)
    assert "approve" in item["buttons"] and "reject" in item["buttons"]
    assert item["cli"]["approve"] == f"specs approve {run_id} 2.1"
    assert item["cli"]["reject"] == f"specs reject {run_id} 2.1"
    assert item["link"] == f"/inbox#{run_id}--{item['gate']}"
    status, html = get(state, "/inbox", accept="text/html")
    assert status == 200 and item["gate"] in html


@pytest.mark.parametrize("path", [
    "/runs/no_such_run.json", "/runs/no_such_run", "/runs/run_x/steps/1.1.json",
    "/nothing/here.json", "/runs/..%2F..%2Fetc%2Fpasswd.json", "/static/../app.py",
    "/static/dashboard.py", "/runs/%2E%2E/events.jsonl"])
def test_every_error_has_one_shape(state: Path, path: str) -> None:
    status, text = get(state, path, accept="application/json")
    assert status == 404, (path, text)
    body = json.loads(text)
    assert body["ok"] is False and body["status"] == 404 and body["error"]


def test_an_unknown_step_of_a_real_run_is_404(state: Path) -> None:
    run_id = runs(state)[0]["run_id"]
    for path in (f"/runs/{run_id}/steps/7.7.json", f"/runs/{run_id}/steps/..%2F..%2Flock",
                 f"/runs/{run_id}/steps/1.1%2F..%2F..%2Fevents.jsonl"):
        status, text = get(state, path, accept="application/json")
        assert status == 404, (path, text)
    status, html = get(state, f"/runs/{run_id}/steps/7.7", accept="text/html")
    assert status == 404 and "<html" in html and "7.7" in html


def test_history_pages_say_when_there_is_no_history(tmp_path: Path) -> None:
    for kind in ("backups", "metrics", "insights"):
        data = get_json(tmp_path / ".specs", f"/{kind}.json")
        assert data["available"] is False and "history" in data["reason"]


def test_the_export_opens_from_disk_with_its_data(state: Path, tmp_path: Path) -> None:
    run_id = runs(state)[1]["run_id"]
    index = export_run(state, run_id[:-2], tmp_path / "snap")  # a unique prefix
    html = index.read_text()
    assert (tmp_path / "snap" / "timeline.html").is_file()
    data = json.loads((tmp_path / "snap" / "run.json").read_text())
    assert data["run"]["run_id"] == run_id and "1.2" in data["details"]
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing loads from elsewhere"
    assert '<link rel="stylesheet"' not in html and "<script src=" not in html
    embedded = html.split('<script type="application/json" id="data">', 1)[1].split(
        "</script>", 1)[0]
    details = json.loads(embedded)["details"]
    assert details["1.1"]["attempts"][0]["stdout"] == "<script>alert(1)</script>\n"
