"""The dashboard in a real browser (Debian's Chromium driven by Playwright): a run started
in another process is watched live without reloading, its backup shows in the attempt lane,
its gate is answered with the button, and after a dropped connection the page catches up with
nothing missed. Screenshots are saved in the folder printed at the start (SPECS_ARTIFACTS,
else a temporary folder); docs/dashboard.md uses some of them.

Skipped only when /usr/bin/chromium is absent (``apt-get install chromium``), and never
when SPECS_TEST_BROWSER=require (CI sets it)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard_specs import SLOW, free_port, served, specs_cli, start, write

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

if not CHROMIUM.exists():
    if os.environ.get("SPECS_TEST_BROWSER") == "require":  # CI: fail, never skip
        raise RuntimeError(f"{CHROMIUM} is absent and SPECS_TEST_BROWSER=require")
    print(f"\nbrowser tests skipped: {CHROMIUM} is absent (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("SPECS_ARTIFACTS") or tempfile.mkdtemp(prefix="dashboard-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        found = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield found
        found.close()


@pytest.fixture()
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1180, "height": 720})  # type: ignore[attr-defined]
    found = context.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    yield found
    context.close()
    assert errors == [], errors


def wait_until(check, timeout: float = 20.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def step_status(page, ref: str) -> str | None:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "ref => { const r = document.getElementById('step-' + ref); "
        "return r ? r.dataset.status : null }", ref)


def test_a_run_is_watched_live_answered_and_caught_up(tmp_path: Path, page, artifacts: Path  # type: ignore[no-untyped-def]
                                                     ) -> None:
    write(tmp_path, "slow", SLOW, pause=0.4)
    state = tmp_path / ".specs"
    port = free_port()
    proc = None
    try:
        with served(state, port=port) as url:
            page.goto(f"{url}/runs")
            proc = start("run", "slow", "--wait", cwd=tmp_path)
            page.wait_for_selector("#runs-body tr[data-run] a", timeout=20000)  # no reload
            page.click("#runs-body tr[data-run] a")
            page.wait_for_selector("#step-1\\.1")
            seen = {step_status(page, "1.1")}
            wait_until(lambda: seen.add(step_status(page, "1.1")) or "started" in seen,
                       what="step 1.1 running")
            assert step_status(page, "1.2") == "pending"
            page.screenshot(path=str(artifacts / "run-running.png"))
        # the server is gone (the connection dropped); the run goes on; the page waits
        page.wait_for_selector("#live.off", timeout=10000)
        wait_until(lambda: any(json.loads(line).get("event") == "gate-requested"
                               for line in (state / "runs").glob("*/events.jsonl").__next__()
                               .read_text().splitlines()), what="the gate")
        with served(state, port=port):
            page.wait_for_selector("#live.on", timeout=15000)
            wait_until(lambda: step_status(page, "1.2") == "completed", what="1.2 caught up")
            assert step_status(page, "1.1") == "completed"
            chips = page.eval_on_selector_all(
                "#step-1\\.2 .chip", "nodes => nodes.map(n => [n.dataset.method, "
                "n.classList.contains('won'), n.textContent])")
            assert [c[:2] for c in chips] == [["primary", False], ["backup_1", True]]
            assert chips[1][2].startswith("backup 1 ✓")
            # the gate waits: answer it with the button; the run (waiting at it) goes on
            page.wait_for_selector(".gate-item button[data-answer=approve]")
            page.screenshot(path=str(artifacts / "run-gate.png"))
            page.click(".gate-item button[data-answer=approve]")
            page.wait_for_function("() => document.querySelector('.answer-msg') && "
                                   "document.querySelector('.answer-msg').textContent")
            assert "goes on" in page.text_content(".answer-msg")  # the restarted server's too
            wait_until(lambda: step_status(page, "1.4") == "completed", what="the run's end")
            page.wait_for_selector("#h-status.s-completed", timeout=10000)
            page.click("#step-1\\.2")
            page.wait_for_selector("#p-body pre[data-stream='backup_1-1-stdout']")
            page.screenshot(path=str(artifacts / "run-done.png"))
            # nothing missed: the page shows what the log says
            events = [json.loads(line) for line in next((state / "runs").glob(
                "*/events.jsonl")).read_text().splitlines()]
            assert int(page.evaluate("document.body.dataset.seq")) == events[-1]["seq"]
            rows = page.eval_on_selector_all(".step", "ns => ns.map(n => n.dataset.status)")
            assert rows == ["completed"] * 4
            answered = [e for e in events if e["event"] == "gate-answered"]
            assert [(e["response"], e["by"]) for e in answered] == [("approve", "dashboard")]
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(10)


def test_step_output_is_shown_as_text(tmp_path: Path, page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    from dashboard_specs import DEMO

    write(tmp_path, "demo", DEMO)
    assert specs_cli("run", "demo", "--no-input", cwd=tmp_path).returncode == 3
    with served(tmp_path / ".specs") as url:
        page.goto(f"{url}/runs")
        page.click("#runs-body tr[data-run] a")
        page.click("#step-1\\.1")
        pane = page.wait_for_selector("#p-body pre[data-stream='primary-1-stdout']")
        assert pane.text_content() == "<script>alert(1)</script>\n"
        assert page.evaluate("window.__xss") is None
        assert page.query_selector("#p-body script") is None
        page.goto(f"{url}/inbox")
        page.wait_for_selector(".item button[data-answer=approve]")
        page.screenshot(path=str(artifacts / "inbox.png"))
        assert "specs approve" in page.text_content(".item .cli pre")
        # a paused run: the answer goes into its log, and the item offers to resume it
        page.click(".item button[data-answer=approve]")
        page.click(".item button[data-resume]", timeout=10000)
        page.goto(f"{url}/runs")
        page.wait_for_selector("#runs-body tr.r-completed", timeout=20000)
        page.screenshot(path=str(artifacts / "runs.png"))


def test_a_running_command_steps_output_appears_line_by_line(  # type: ignore[no-untyped-def]
        tmp_path: Path, page, artifacts: Path) -> None:
    write(tmp_path, "slow", SLOW, pause=0.5)
    proc = start("run", "slow", "--wait", cwd=tmp_path)
    try:
        with served(tmp_path / ".specs") as url:
            page.goto(f"{url}/runs")
            page.wait_for_selector("#runs-body tr[data-run] a", timeout=20000)
            page.click("#runs-body tr[data-run] a")
            page.wait_for_selector("#step-1\\.1[data-status=started]", timeout=20000)
            page.click("#step-1\\.1")
            texts: list[str] = []

            def grew() -> bool:
                node = page.query_selector("#p-body pre[data-stream='primary-1-stdout']")
                text = node.text_content() if node is not None else ""
                if text and (not texts or texts[-1] != text):
                    texts.append(text)
                    if len(texts) == 3:
                        page.screenshot(path=str(artifacts / "step-output.png"))
                return step_status(page, "1.1") == "completed"

            wait_until(grew, what="step 1.1's end")
            assert texts[0].count("\n") < 6 and texts[-1].count("\n") == 6, texts
            assert len(texts) >= 3, texts  # line by line, while it ran
    finally:
        proc.kill()
        proc.wait(10)


def test_the_page_comes_back_after_a_server_that_answered_with_an_error(  # type: ignore[no-untyped-def]
        tmp_path: Path, page) -> None:
    """A browser gives an EventSource up for good when a reconnection gets an HTTP error (a
    proxy's 502, a server stopping); the page opens a new one and still catches up."""
    import http.server
    import threading

    write(tmp_path, "slow", SLOW, pause=0.4)
    state = tmp_path / ".specs"
    port = free_port()
    proc = start("run", "slow", "--wait", cwd=tmp_path)
    try:
        with served(state, port=port) as url:
            page.goto(f"{url}/runs")
            page.wait_for_selector("#runs-body tr[data-run] a", timeout=20000)
            page.click("#runs-body tr[data-run] a")
            page.wait_for_selector("#step-1\\.1")

        class Refuse(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        refusing = http.server.ThreadingHTTPServer(("127.0.0.1", port), Refuse)
        thread = threading.Thread(target=refusing.serve_forever, daemon=True)
        thread.start()
        try:
            page.wait_for_selector("#live.off", timeout=10000)
            time.sleep(2.5)  # the browser's reconnection meets the 503 and gives up
        finally:
            refusing.shutdown()
            refusing.server_close()
        wait_until(lambda: any(json.loads(line).get("event") == "gate-requested"
                               for line in next((state / "runs").glob("*/events.jsonl"))
                               .read_text().splitlines()), what="the gate")
        with served(state, port=port):
            page.wait_for_selector("#live.on", timeout=15000)
            wait_until(lambda: step_status(page, "1.2") == "completed", what="1.2 caught up")
            assert step_status(page, "1.1") == "completed"
    finally:
        proc.kill()
        proc.wait(10)


def test_an_inbox_answer_slower_than_the_stream_still_offers_resume(  # type: ignore[no-untyped-def]
        tmp_path: Path, page) -> None:
    """The answer reaches the log, and the inbox's stream drops the gate, before the POST's
    response arrives: the answered item stays, with its resume button."""
    from dashboard_specs import DEMO

    write(tmp_path, "demo", DEMO)
    assert specs_cli("run", "demo", "--no-input", cwd=tmp_path).returncode == 3

    def slow(route) -> None:  # type: ignore[no-untyped-def]
        response = route.fetch()  # the server has answered the gate: the log has it
        time.sleep(2.0)  # meanwhile the inbox's stream sends the list without the gate
        route.fulfill(response=response)

    with served(tmp_path / ".specs") as url:
        page.goto(f"{url}/inbox")
        page.wait_for_selector(".item button[data-answer=approve]")
        page.route("**/gates/**", slow)
        page.click(".item button[data-answer=approve]")
        page.click(".item button[data-resume]", timeout=10000)
        page.goto(f"{url}/runs")
        page.wait_for_selector("#runs-body tr.r-completed", timeout=20000)
