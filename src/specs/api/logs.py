"""A run's step outputs: what each attempt printed (``specs logs``).

Commands keep their captured stdout and stderr in the run folder, one file per attempt and
stream: ``outputs/<step>/<method>-<n>.stdout`` (and ``.stderr``); cognitive steps have their
model calls and tool calls in the events (``llm-call``, ``tool-called``) and their answer's
summary in ``attempt-ended``. :func:`attempt_logs` reads them for a run, one
:class:`AttemptLog` per attempt in the order they started; :func:`follow` yields what appears
while a run goes on (new attempts, new output, their ends), until the run stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from specs import events as ev
from specs.api.runs import run_is_live

__all__ = ["AttemptLog", "attempt_logs", "call_line", "follow"]

STREAMS = ("stdout", "stderr")


@dataclass
class AttemptLog:
    """One attempt: who it was, how it ended, and its output files (those that exist)."""

    step: str
    method: str
    attempt: int
    started: str
    ended: ev.AttemptEnded | None = None
    files: dict[str, Path] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # a cognitive attempt's model and tool calls

    @property
    def title(self) -> str:
        how = "running" if self.ended is None else self.ended.outcome + (
            f" (exit {self.ended.exit_code})" if self.ended.exit_code is not None else "") + (
            f": {self.ended.failure_reason}" if self.ended.failure_reason else "")
        return f"{self.step} {self.method} attempt {self.attempt}: {how}"

    def read(self, stream: str) -> str:
        path = self.files.get(stream)
        try:
            return path.read_text(errors="replace") if path is not None else ""
        except OSError:
            return ""


def _path(run_dir: Path, step: str, method: str, attempt: int, stream: str) -> Path:
    return run_dir / "outputs" / step / f"{method}-{attempt}.{stream}"


def attempt_logs(run_dir: Path, events: list[ev.Event],
                 step: str | None = None) -> list[AttemptLog]:
    """The attempts of the run (of ``step`` only, when given), in the order they started."""
    found: list[AttemptLog] = []
    open_: dict[tuple[str, str, int], AttemptLog] = {}
    for event in events:
        if isinstance(event, ev.AttemptStarted) and (step is None or event.step == step):
            log = AttemptLog(event.step, event.method, event.attempt, event.ts)
            found.append(log)
            open_[(event.step, event.method, event.attempt)] = log
        elif isinstance(event, ev.AttemptEnded):
            ended = open_.get((event.step, event.method, event.attempt))
            if ended is not None:
                ended.ended = event
        elif isinstance(event, ev.LlmCall | ev.ToolCalled):
            calling = open_.get((event.step, event.method, event.attempt))
            if calling is not None:
                calling.calls.append(call_line(event))
    for log in found:
        for stream in STREAMS:
            path = _path(run_dir, log.step, log.method, log.attempt, stream)
            if path.is_file():
                log.files[stream] = path
    return found


def call_line(event: ev.LlmCall | ev.ToolCalled) -> str:
    """A cognitive attempt's model call or tool call, in one line (``specs logs``, the
    dashboard's step panel)."""
    if isinstance(event, ev.ToolCalled):
        where = f"{event.server}." if event.server else ""
        how = "ok" if event.ok else f"failed: {event.error}"
        return f"tool {where}{event.tool}({event.arguments}): {how}"
    tokens = sum(int(v) for v in event.usage.values())
    return f"model call {event.turn} ({event.model}, {tokens:,} tokens)"


def follow(run_dir: Path, step: str | None = None, *, poll: float = 0.2,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """Lines to print as the run goes on: each attempt's title when it starts and when it
    ends, and its output as it grows; ends once the run has stopped (ended, paused, or its
    process gone) and everything was shown."""
    shown: dict[tuple[str, str, int, str], int] = {}  # bytes shown per attempt file
    titled: dict[tuple[str, str, int], bool] = {}  # attempt -> its end shown
    log_path = run_dir / "events.jsonl"
    while True:
        live = run_is_live(run_dir)
        events = list(ev.read_events(log_path)) if log_path.is_file() else []
        for attempt in attempt_logs(run_dir, events, step):
            key = (attempt.step, attempt.method, attempt.attempt)
            if key not in titled:
                titled[key] = False
                yield f"== {attempt.step} {attempt.method} attempt {attempt.attempt} =="
            for stream in STREAMS:
                path = _path(run_dir, *key, stream)
                done = shown.get((*key, stream), 0)
                try:
                    with path.open("rb") as handle:
                        handle.seek(done)
                        more = handle.read()
                except OSError:
                    continue
                if more:
                    shown[(*key, stream)] = done + len(more)
                    text = more.decode(errors="replace")
                    prefix = "" if stream == "stdout" else "[stderr] "
                    yield from (prefix + line for line in text.splitlines())
            if attempt.ended is not None and not titled[key]:
                titled[key] = True
                yield f"== {attempt.title} =="
        stopped = any(isinstance(e, ev.RunEnded | ev.RunPaused) for e in events[-3:])
        if not live and (stopped or events):
            return
        sleep(poll)
