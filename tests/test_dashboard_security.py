"""Who may read the dashboard and act on runs (src/specs/dashboard/security.py, config.py):
the loopback by default, a token for any other address (checked on every request, the event
stream included), actions only with the action token and from the dashboard's own origin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from dashboard_specs import client, specs_cli, write
from specs.dashboard import DashboardConfig
from specs.errors import UsageError

TOKEN = "s3cret-token-for-tests-0123"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sec")
    write(root, "demo")
    assert specs_cli("run", "demo", "--no-input", cwd=root).returncode == 3
    return root / ".specs"


def test_any_address_but_the_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.delenv("SPECS_DASHBOARD_TOKEN", raising=False)
    for host in ("0.0.0.0", "192.0.2.7", "::", "example.org"):
        with pytest.raises(UsageError, match="--token"):
            DashboardConfig.make(tmp_path, host=host)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert DashboardConfig.make(tmp_path, host=host).token is None
    with pytest.raises(UsageError, match="at least 16"):
        DashboardConfig.make(tmp_path, host="0.0.0.0", token="short")
    monkeypatch.setenv("SPECS_DASHBOARD_TOKEN", TOKEN)
    config = DashboardConfig.make(tmp_path, host="0.0.0.0")
    assert config.token == TOKEN and config.action_token == TOKEN


def test_the_cli_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    done = specs_cli("dashboard", "--host", "0.0.0.0", "--state-dir", str(tmp_path),
                     cwd=tmp_path)
    assert done.returncode == 2
    assert "--token" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def run(coro_fn):  # type: ignore[no-untyped-def]
    return asyncio.run(coro_fn())


def test_with_a_token_every_request_needs_it(state: Path) -> None:
    async def go() -> None:
        async with client(state, token=TOKEN, host="0.0.0.0") as c:
            run_id = (await c.get("/runs.json", headers={"authorization": f"Bearer {TOKEN}"})
                      ).json()["runs"][0]["run_id"]
            for path in ("/runs.json", "/runs", f"/runs/{run_id}.json", "/inbox.json",
                         f"/runs/{run_id}/stream", "/runs/stream", "/inbox/stream",
                         f"/runs/{run_id}/steps/1.1/stream", "/static/dashboard.js",
                         "/metrics.json", "/nothing"):
                r = await c.get(path)
                assert r.status_code == 401, path
                assert r.json() == {"ok": False, "status": 401, "error": r.json()["error"]}
                r = await c.get(path, headers={"authorization": "Bearer wrong-token-wrong"})
                assert r.status_code == 403, path
                r = await c.get(path, headers={"cookie": "specs_dashboard=nope"})
                assert r.status_code == 403, path
            r = await c.get("/runs.json", headers={"cookie": f"specs_dashboard={TOKEN}"})
            assert r.status_code == 200
            r = await c.get(f"/runs?token={TOKEN}")
            assert r.status_code == 200
            assert "HttpOnly" in r.headers["set-cookie"] and TOKEN in r.headers["set-cookie"]
            c.cookies.clear()
            r = await c.get("/runs", headers={"accept": "text/html"})
            assert r.status_code == 401 and "token" in r.text and "<p>" in r.text

    run(go)


def test_the_event_stream_needs_the_token_too(state: Path) -> None:
    """Checked before any byte of the stream: a refused stream never opens."""
    async def go() -> None:
        async with client(state, token=TOKEN, host="0.0.0.0") as c:
            run_id = (await c.get(f"/runs.json?token={TOKEN}")).json()["runs"][0]["run_id"]
            c.cookies.clear()
            async with c.stream("GET", f"/runs/{run_id}/stream?after=0") as r:
                assert r.status_code == 401
                assert r.headers["content-type"] == "application/json"

    run(go)


def _answer(c: httpx.AsyncClient, url: str, **headers: str):  # type: ignore[no-untyped-def]
    return c.post(url, json={"response": "reject"}, headers=headers)


def test_actions_need_the_action_token_and_the_same_origin(state: Path) -> None:
    async def go() -> None:
        async with client(state, action_token="a" * 24) as c:
            item = (await c.get("/inbox.json")).json()["items"][0]
            url = f"/runs/{item['run_id']}/gates/{item['gate']}"
            good = "http://127.0.0.1:8765"
            assert (await _answer(c, url, origin=good)).status_code == 401
            assert (await _answer(c, url, origin=good, **{"x-specs-token": "b" * 24})
                    ).status_code == 403
            for origin in ("http://evil.example", "http://127.0.0.1:9999", "null"):
                r = await _answer(c, url, origin=origin, **{"x-specs-token": "a" * 24})
                assert r.status_code == 403 and "cross-origin" in r.json()["error"], origin
            r = await _answer(c, url, **{"x-specs-token": "a" * 24, "sec-fetch-site":
                                         "cross-site"})
            assert r.status_code == 403
            resume = await c.post(f"/runs/{item['run_id']}/resume",
                                  headers={"origin": "http://evil.example",
                                           "x-specs-token": "a" * 24})
            assert resume.status_code == 403
            assert len((await c.get("/inbox.json")).json()["items"]) == 1  # nothing acted
            for method in ("PUT", "DELETE", "PATCH"):
                assert (await c.request(method, url)).status_code == 405
            # a GET never acts: the answer route takes POSTs only
            assert (await c.get(url)).status_code == 405

    run(go)


def test_the_pages_carry_the_action_token(state: Path) -> None:
    async def go() -> None:
        async with client(state, action_token="c" * 24) as c:
            html = (await c.get("/runs", headers={"accept": "text/html"})).text
            assert 'name="specs-action-token" content="' + "c" * 24 in html

    run(go)


def test_a_page_for_another_host_name_is_refused_on_the_loopback(state: Path) -> None:
    """DNS rebinding: a name that resolves to 127.0.0.1 is not the dashboard's."""
    async def go() -> None:
        async with client(state) as c:
            assert (await c.get("/runs.json", headers={"host": "evil.example:8765"})
                    ).status_code == 403
            for host in ("localhost:8765", "127.0.0.1:8765", "[::1]:8765"):
                assert (await c.get("/runs.json", headers={"host": host})).status_code == 200

    run(go)


def test_no_file_outside_the_state_folder_is_served(state: Path) -> None:
    async def go() -> None:
        async with client(state) as c:
            run_id = (await c.get("/runs.json")).json()["runs"][0]["run_id"]
            for path in ("/static/..%2F..%2F..%2Fpyproject.toml", "/static/%2e%2e/app.py",
                         f"/runs/{run_id}/..%2F..%2F..%2Fetc%2Fpasswd",
                         f"/runs/{run_id}/steps/..%2F..%2F..%2Fetc%2Fpasswd.json",
                         f"/runs/{run_id}/tasks/..%2Fx.json",
                         "/runs/..%2Fruns%2F" + run_id + ".json",
                         f"/runs/{run_id}%2F..%2F..%2Fhistory.db",
                         "/runs/%2Fetc%2Fpasswd/timeline"):
                r = await c.get(path)
                assert r.status_code == 404, (path, r.status_code, r.text[:200])
                assert r.json()["ok"] is False

    run(go)
