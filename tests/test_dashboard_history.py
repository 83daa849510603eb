"""The dashboard's history pages (src/specs/dashboard/history_pages.py): runs of another
machine sharing the history database appear on the runs page and open; backups, metrics and
insights are drawn from the history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from dashboard_specs import client, served, specs_cli, write
from test_dashboard_live import messages


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Two state folders recording into one history: here (one run) and there (eleven:
    enough for insights to suggest promoting the backup that always wins)."""
    root = tmp_path_factory.mktemp("hist")
    url = f"sqlite:///{root / 'shared.db'}"
    for name, count in (("here", 1), ("there", 11)):
        folder = root / name
        write(folder, "demo")
        for _ in range(count):
            done = specs_cli("run", "demo", "--yes", "--database-url", url, cwd=folder)
            assert done.returncode == 0, done.stderr
    return root / "here" / ".specs", root / "there" / ".specs", url


def get_json(state: Path, path: str, **settings: object) -> dict:
    async def go() -> dict:
        async with client(state, **settings) as c:
            r = await c.get(path)
            data = json.loads(r.text)
            assert data["ok"] is (r.status_code == 200), data
            return data
    return asyncio.run(go())


def test_runs_of_another_machine_appear_and_open(machines: tuple[Path, Path, str]) -> None:
    here, _there, url = machines
    rows = get_json(here, "/runs.json", database_url=url)["runs"]
    assert sorted(r["source"] for r in rows) == ["history"] * 11 + ["state"]
    other = next(r for r in rows if r["source"] == "history")
    assert (other["status"], other["goal"], other["steps_done"]) == ("completed", "ACHIEVED", 3)
    data = get_json(here, f"/runs/{other['run_id']}.json", database_url=url)
    assert data["source"] == "history" and data["run"]["live"] is False
    steps = {s["ref"]: s for s in data["steps"]}
    assert [(e["label"], e["outcome"], e["won"]) for e in steps["1.2"]["lane"]] == [
        ("primary", "failure", False), ("backup 1", "success", True)]
    assert steps["2.1"]["lane"][0]["label"] == "approval"
    # without the shared database only this folder's run is listed
    assert [r["source"] for r in get_json(here, "/runs.json")["runs"]] == ["state"]


def test_the_backups_page_counts_the_method_that_won(machines: tuple[Path, Path, str]) -> None:
    here, _there, url = machines
    data = get_json(here, "/backups.json", database_url=url)
    assert data["available"] is True
    step = next(s for s in data["steps"] if s["step"] == "1.2")
    assert step["methods"] == {"backup_1": {"tried": 12, "won": 12},
                               "primary": {"tried": 12, "won": 0}}
    assert "<svg" in data["charts"][0]["svg"]


def test_the_metrics_page_has_a_point_per_run(machines: tuple[Path, Path, str]) -> None:
    here, _there, url = machines
    data = get_json(here, "/metrics.json?spec=demo", database_url=url)
    assert len(data["runs"]) == 12
    assert all(p["failure_rate"] == 0 and p["duration_s"] is not None for p in data["runs"])
    assert [c["title"] for c in data["charts"]] == [
        "Duration per run", "Retries per run", "Share of steps failed per run",
        "Tokens per run", "Cost per run"]
    assert get_json(here, "/metrics.json?spec=other", database_url=url)["runs"] == []


def test_the_insights_page_lists_the_suggestions(machines: tuple[Path, Path, str]) -> None:
    here, _there, url = machines
    data = get_json(here, "/insights.json", database_url=url)
    assert data["available"] is True and data["runs_considered"] == 12
    promote = next(i for i in data["items"] if i["kind"] == "promote-backup")
    assert promote["step"] == "1.2" and "backup_1" in promote["evidence"]
    assert promote["cli"].endswith(f"--diff {promote['id']}")
    assert promote["diff"].startswith("---") and "+" in promote["diff"]


def test_a_history_runs_page_is_followed_by_polling_on_sqlite(
        machines: tuple[Path, Path, str]) -> None:
    """SQLite sends no notifications: the stream of a run only the history has sends its
    page's data, then again only when the run's last sequence number grows (here: never)."""
    here, _there, url = machines
    rows = get_json(here, "/runs.json", database_url=url)
    assert rows["notifications"] is None
    other = next(r for r in rows["runs"] if r["source"] == "history")
    with served(here, database_url=url, heartbeat_s=0.3) as base, \
            httpx.Client(base_url=base, timeout=30) as c, \
            c.stream("GET", f"/runs/{other['run_id']}/stream?after=0") as r:
        seen = []
        for ident, event, data in messages(r):
            seen.append((event, ident))
            if event == "change":
                assert data is not None and data["run"]["status"] == "completed"
                assert ident == str(data["run"]["seq"]) and data["source"] == "history"
            if len(seen) == 5:
                break
    assert seen[0][0] == "change" and {e for e, _ in seen[1:]} == {"heartbeat"}
