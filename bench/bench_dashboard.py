"""Benchmark: the dashboard under load (not a test; docs/dashboard.md reports the numbers).

1. **Live**: C concurrent SSE clients (default 50) follow one N-step run (default 1,000
   python steps of a few ms each, in tasks of 50) that ``specs run`` executes in another
   process, through a real ``specs dashboard`` on 127.0.0.1. Reported: the event-to-client
   latency (the client's clock when the message arrives minus the event's own timestamp,
   written by the engine) p50/p95/p99 over every message of every client, whether every
   client got every event once, and the dashboard process's CPU (user + system seconds over
   the run's wall time). The baseline, measured in the same run: one reader tailing the
   events.jsonl itself every 50 ms (what no server can beat: the engine's own write delay
   plus the poll).
2. **A big run's page**: an M-step run (default 5,000 no-op python steps) is made, then its
   page is opened L times (default 3) in Debian's Chromium (Playwright): time to first
   contentful paint and to interactive (the page's script done drawing: tasks, open rows,
   live stream connected), medians; the HTML's size; opening a task of 50 steps.

Usage: python bench/bench_dashboard.py [--steps 1000] [--clients 50] [--pause-ms 5]
                                      [--page-steps 5000] [--loads 3] [--skip-page]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psutil

STEPS_PY = """import time


def pause(context=None):
    time.sleep({pause})
    return 1


def noop(context=None):
    return 1


def wait(context=None):
    time.sleep(2.0)
    return 1
"""
TS = re.compile(rb'"ts":"([^"]+)"')
SEQ = re.compile(rb"^id: (\d+)$", re.M)


def write_spec(folder: Path, steps: int, callable_: str, pause_s: float) -> Path:
    """N python steps in tasks of 50; the first one waits 2 s (the clients connect)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_dash.py").write_text(STEPS_PY.format(pause=pause_s))
    lines = ["[meta]", f'goal_descriptor = "{folder.name}"', "", "[goal]",
             f'description = "Benchmark: {steps} python steps"', "", "[execution]",
             'default_mode = "silent"', "", "[knowledge_capture]", "enabled = false", ""]
    for t in range(steps // 50):
        lines += ["[[tasks]]", f"id = {t + 1}", f'description = "task {t + 1}"']
        for s in range(50):
            fn = "wait" if t == 0 and s == 0 and callable_ == "pause" else callable_
            lines += ["  [[tasks.steps]]", f"  id = {s + 1}",
                      f'  description = "step {s + 1} of task {t + 1}"',
                      '  expected_output = "returns"', "  critical_flag = false",
                      "  max_retries = 0", '  execution_method = "python"',
                      f'  callable = "bench_dash:{fn}"', ""]
    (folder / f"parameters_{folder.name}.toml").write_text("\n".join(lines))
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SPECS_")}


def epoch(ts: bytes) -> float:
    return datetime.fromisoformat(ts.decode().replace("Z", "+00:00")).timestamp()


def start_dashboard(state: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "specs", "dashboard", "--state-dir",
                             str(state), "--port", str(port)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the dashboard did not start")


def run_folder(state: Path, timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((state / "runs").glob("*/events.jsonl")) if (state / "runs").is_dir() \
            else []
        if found:
            return found[0].parent
        time.sleep(0.02)
    raise SystemExit("the run did not start")


async def client(port: int, run_id: str, stop: asyncio.Event,
                 got: list[tuple[int, float]]) -> int | None:
    """One SSE client: (seq, latency) of every change message; the catch-up's seq."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /runs/{run_id}/stream?after=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    caught: int | None = None
    buffer = b""
    while not stop.is_set():
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 0.5)
        except TimeoutError:
            continue
        if not chunk:
            break
        now = time.time()
        buffer += chunk
        *messages, buffer = buffer.split(b"\n\n")
        for message in messages:
            ident = SEQ.search(message)
            if ident is None:
                continue
            seq = int(ident.group(1))
            if b"event: catch-up" in message:
                caught = seq
                continue
            ts = TS.search(message)
            if ts is not None:
                got.append((seq, now - epoch(ts.group(1))))
    writer.close()
    return caught


async def tail_baseline(log: Path, stop: asyncio.Event, got: list[float]) -> None:
    offset = 0
    while not stop.is_set():
        try:
            with log.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except OSError:
            data = b""
        end = data.rfind(b"\n") + 1
        if end:
            offset += end
            now = time.time()
            for line in data[:end].splitlines():
                ts = TS.search(line)
                if ts is not None:
                    got.append(now - epoch(ts.group(1)))
        await asyncio.sleep(0.05)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def live(args: argparse.Namespace, root: Path) -> dict[str, object]:
    spec = write_spec(root / "live_spec", args.steps, "pause", args.pause_ms / 1000)
    state = root / "live" / ".specs"
    port = free_port()
    server = start_dashboard(state, port)
    watched = psutil.Process(server.pid)
    engine = subprocess.Popen([sys.executable, "-m", "specs", "run", str(spec), "--no-input",
                               "--state-dir", str(state)], env=env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = run_folder(state)

    async def go() -> tuple[list[list[tuple[int, float]]], list[int | None], list[float],
                            float, float]:
        stop = asyncio.Event()
        got: list[list[tuple[int, float]]] = [[] for _ in range(args.clients)]
        base: list[float] = []
        tasks = [asyncio.create_task(client(port, folder.name, stop, got[i]))
                 for i in range(args.clients)]
        tail = asyncio.create_task(tail_baseline(folder / "events.jsonl", stop, base))
        cpu0 = sum(watched.cpu_times()[:2])
        t0 = time.monotonic()
        while engine.poll() is None:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the last messages
        wall = time.monotonic() - t0
        cpu = sum(watched.cpu_times()[:2]) - cpu0
        stop.set()
        caught = await asyncio.gather(*tasks)
        await tail
        return got, caught, base, wall, cpu

    try:
        got, caught, base, wall, cpu = asyncio.run(go())
    finally:
        server.terminate()
        server.wait(10)
    events = [json.loads(line)["seq"] for line in (folder / "events.jsonl").read_text()
              .splitlines()]
    complete = sum(1 for c, g in zip(caught, got, strict=True)
                   if [s for s, _ in g] == [e for e in events if e > (c or 0)])
    latencies = [lat for g in got for _s, lat in g]
    return {
        "steps": args.steps, "clients": args.clients, "events": len(events),
        "messages": len(latencies), "clients_complete": complete, "run_wall_s": round(wall, 2),
        "latency_ms": {k: round(1000 * pct(latencies, p), 1)
                       for k, p in (("p50", 50), ("p95", 95), ("p99", 99))},
        "baseline_tail_ms": {k: round(1000 * pct(base, p), 1)
                             for k, p in (("p50", 50), ("p95", 95), ("p99", 99))},
        "server_cpu_s": round(cpu, 2), "server_cpu_share": round(cpu / wall, 3)}


def page(args: argparse.Namespace, root: Path) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    spec = write_spec(root / "page_spec", args.page_steps, "noop", 0)
    state = root / "page" / ".specs"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "specs", "run", str(spec), "--no-input",
                    "--state-dir", str(state)], env=env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    made = time.monotonic() - t0
    folder = run_folder(state)
    port = free_port()
    server = start_dashboard(state, port)
    url = f"http://127.0.0.1:{port}/runs/{folder.name}"
    loads: list[dict[str, float]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking",
                                              "--disable-component-update", "--disable-sync"])
            for _ in range(args.loads + 1):  # the first load warms the server's cache
                tab = browser.new_page(viewport={"width": 1280, "height": 800})
                tab.goto(url)
                tab.wait_for_function("document.body.dataset.ready", timeout=120000)
                timing = tab.evaluate("""() => {
                  const nav = performance.getEntriesByType('navigation')[0];
                  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                  return {response: nav.responseEnd, fcp: fcp ? fcp.startTime : null,
                          ready: Number(document.body.dataset.ready),
                          bytes: nav.transferSize || nav.encodedBodySize}; }""")
                start = time.monotonic()
                tab.click("details.task[data-task='7'] > summary")
                tab.wait_for_selector("#step-7\\.50")
                timing["open_task_ms"] = (time.monotonic() - start) * 1000
                loads.append(timing)
                tab.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    loads = loads[1:]

    def med(key: str) -> float:
        return round(statistics.median(x[key] for x in loads), 1)

    return {"steps": args.page_steps, "run_made_s": round(made, 1), "loads": len(loads),
            "html_bytes": int(loads[0]["bytes"]), "response_ms": med("response"),
            "first_contentful_paint_ms": med("fcp"), "interactive_ms": med("ready"),
            "open_task_of_50_ms": med("open_task_ms")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pause-ms", type=float, default=5.0)
    parser.add_argument("--page-steps", type=int, default=5000)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--skip-page", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        root = Path(tmp)
        out: dict[str, object] = {}
        if not args.skip_live:
            out["live"] = live(args, root)
            print(json.dumps({"live": out["live"]}, indent=1), flush=True)
        if not args.skip_page:
            out["page"] = page(args, root)
            print(json.dumps({"page": out["page"]}, indent=1), flush=True)


if __name__ == "__main__":
    main()
