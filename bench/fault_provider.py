"""Fault trials: `specs run` against an LLM provider that misbehaves, one fault per run.

Issue 13 found that a provider that hangs or trickles never ended a step, and that a 429 asking
for an hour slept an hour. This reruns those trials and the others of the issue against the real
command: each trial writes a one-step cognitive spec (``timeout_seconds`` = ``--timeout``,
``max_retries`` = 1, no backup), starts ``python -m specs run --json`` on it with
``OPENAI_BASE_URL`` pointing at tests/llm_server.py (a real HTTP server on 127.0.0.1) scripted
with the fault for every request, and reads the ``attempt-ended`` events from the JSON stream.

Faults: ``hang`` (no answer), ``trickle`` (one byte every 2 s), ``429-3600`` (Retry-After: one
hour), ``429-1`` (Retry-After: 1 s, then a good answer), ``500``, ``529``, ``garbage`` (a 200 whose
body is not JSON), ``truncated`` (a 200 holding half a JSON document), ``dropped`` (the
connection closes mid-body), ``reset`` (TCP reset instead of an answer), ``empty`` (a 200 with
no body), ``401`` (a rejected key), ``no-choices`` (JSON without ``choices``), ``slow-ok`` (a
good answer after half the timeout).

Printed per trial: the slowest attempt against the timeout (``ok`` when it ended within the
timeout + 1 s), the run's wall time, the exit code, each attempt's outcome and the last
failure reason. Nothing here is a test: the figures go to the report (docs/providers.md).

Usage:
  python bench/fault_provider.py [--timeout 3] [--only hang,trickle] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from llm_server import LlmServer, Reply, openai_chat

SPEC = """\
[meta]
goal_descriptor = "fault"

[goal]
description = "Say hello"

[execution]
default_mode = "silent"

[[tasks]]
id = 1
description = "Greet"

[[tasks.steps]]
id = 1
description = "Write a greeting"
expected_output = "a greeting"
critical_flag = true
max_retries = 1
timeout_seconds = {timeout}
"""

#: the longest a trial may take before it is called hung (and killed)
HUNG_S = 120.0


def _faults(timeout: float) -> dict[str, Callable[[int], Reply | dict[str, Any]]]:
    """Fault name -> the reply to the n-th request (0-based)."""
    good = openai_chat("Hello, team!")
    error = {"error": {"message": "boom"}}
    return {
        "hang": lambda n: Reply.hang(HUNG_S * 2),
        "trickle": lambda n: Reply.trickle(good, 2.0),
        "429-3600": lambda n: Reply.json(error, 429, {"Retry-After": "3600"}),
        "429-1": lambda n: Reply.json(error, 429, {"Retry-After": "1"}) if n == 0 else good,
        "500": lambda n: Reply.json(error, 500),
        "529": lambda n: Reply.json({"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}}, 529),
        "garbage": lambda n: Reply.garbage(),
        "truncated": lambda n: Reply.truncated_json(good),
        "dropped": lambda n: Reply.dropped(good),
        "reset": lambda n: Reply.connection_reset(),
        "empty": lambda n: Reply.text("", 200, "application/json"),
        "401": lambda n: Reply.json({"error": {"message": "invalid key"}}, 401),
        "no-choices": lambda n: {"id": "x", "object": "chat.completion"},
        "slow-ok": lambda n: Reply(200, json.dumps(good).encode(),
                                   {"Content-Type": "application/json"}, delay=timeout / 2),
    }


@dataclass
class Trial:
    fault: str
    timeout: float
    wall_s: float
    exit_code: int | None
    outcomes: list[str]
    slowest_s: float
    reason: str
    requests: int

    @property
    def within(self) -> bool:
        """Every attempt ended within the timeout + 1 s (a hung run did not)."""
        return self.exit_code is not None and self.slowest_s <= self.timeout + 1.0


def run_trial(fault: str, reply: Callable[[int], Reply | dict[str, Any]], timeout: float,
              work: Path) -> Trial:
    folder = work / fault / "fault"
    folder.mkdir(parents=True)
    (folder / "parameters_fault.toml").write_text(SPEC.format(timeout=timeout),
                                                  encoding="utf-8")
    with LlmServer() as server:
        count = [0]

        def answer(recorded: Any) -> Reply | dict[str, Any]:
            if recorded.method == "GET":  # the pre-flight check: a healthy server
                return {"object": "list", "data": [{"id": "test-model"}]}
            count[0] += 1
            return reply(count[0] - 1)

        server.handler = answer
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SPECS_", "OPENAI_", "ANTHROPIC_"))}
        env.update(OPENAI_BASE_URL=server.openai_url, NO_COLOR="1", TERM="dumb")
        began = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "specs", "run", str(folder), "--json", "--no-input",
                 "--state-dir", str(work / fault / "state")],
                env=env, capture_output=True, text=True, timeout=HUNG_S)
            code: int | None = done.returncode
            out = done.stdout
        except subprocess.TimeoutExpired as exc:
            code, out = None, (exc.stdout or b"").decode() if isinstance(
                exc.stdout, bytes) else (exc.stdout or "")
        wall = time.monotonic() - began
        requests = len(server.posts)
    ended = [e for e in (_json(line) for line in out.splitlines())
             if e.get("event") == "attempt-ended"]
    reasons = [e.get("failure_reason") or "" for e in ended]
    return Trial(fault, timeout, wall, code, [e["outcome"] for e in ended],
                 max((e.get("duration_ms") or 0) / 1000 for e in ended) if ended else wall,
                 next((r for r in reversed(reasons) if r), ""), requests)


def _json(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def table(trials: list[Trial], markdown: bool) -> str:
    head = ["fault", "timeout s", "slowest attempt s", "within +1 s", "run wall s", "exit",
            "attempts", "requests", "last failure reason"]
    rows = [[t.fault, f"{t.timeout:g}", f"{t.slowest_s:.2f}", "yes" if t.within else "NO",
             f"{t.wall_s:.2f}", "hung" if t.exit_code is None else str(t.exit_code),
             " ".join(t.outcomes) or "-", str(t.requests),
             (t.reason[:90] + "…") if len(t.reason) > 90 else t.reason] for t in trials]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                  for row in rows]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     for row in [head, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="timeout_seconds of the step (default 3)")
    parser.add_argument("--only", default="", help="comma-separated faults to run")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    faults = _faults(args.timeout)
    chosen = [f for f in args.only.split(",") if f] or list(faults)
    unknown = [f for f in chosen if f not in faults]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(faults)}")
    trials = []
    with tempfile.TemporaryDirectory(prefix="specs-faults-") as tmp:
        for fault in chosen:
            trials.append(run_trial(fault, faults[fault], args.timeout, Path(tmp)))
            print(f"{fault}: {trials[-1].wall_s:.2f} s", file=sys.stderr, flush=True)
    print(table(trials, args.markdown))
    bad = [t.fault for t in trials if not t.within]
    print(f"\n{len(trials) - len(bad)} of {len(trials)} trials ended within the timeout + 1 s"
          + (f"; not: {', '.join(bad)}" if bad else ""))


if __name__ == "__main__":
    main()
