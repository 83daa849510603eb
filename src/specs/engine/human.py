"""Human decisions: the responses a gate accepts, and who answers them.

A gate (reference R-MODE-4) offers some of these responses::

    approve               run as planned (for a human step: "done")
    guidance:<text>       add guidance to the step's context; its method is logged human_guided
    choose:<method>       run a given method: primary, backup_1, ...
    retry                 after a failure: run the method ladder again
    accept_failure        after a failure: leave the step failed, resolved, and go on
    skip                  mark the step skipped
    abort                 stop the run (status aborted)
    switch_mode:<mode>    change the run mode
    reject                approve's opposite: skip before a step, abort after a failure

:class:`TerminalHuman` asks at the terminal; :class:`ScriptedHuman` answers from a list (tests,
``--decision``). Without a human (``--no-input`` or no terminal) the engine pauses instead:
status ``awaiting_human``, exit code 3, and ``specs approve|reject`` or ``specs resume
--decision`` answer later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from specs.engine.state import GateState
from specs.errors import UsageError
from specs.spec.model import MODES

RESPONSES = ("approve", "guidance", "choose", "retry", "accept_failure", "skip", "abort",
             "switch_mode", "reject")


def parse_response(text: str, options: Iterable[str] | None = None) -> tuple[str, str | None]:
    """``"guidance: use the CSV"`` -> ``("guidance", "use the CSV")``; validates the verb.

    Raises UsageError for an unknown response or one the gate does not offer.
    """
    text = text.strip()
    verb, _, arg = text.partition(":")
    verb = verb.strip().lower().replace("-", "_")
    aliases = {"y": "approve", "yes": "approve", "ok": "approve", "done": "approve",
               "n": "reject", "no": "reject", "a": "abort", "s": "skip", "r": "retry"}
    verb = aliases.get(verb, verb)
    arg = arg.strip()
    if verb not in RESPONSES:
        raise UsageError(f"unknown decision {text!r}; use one of: {', '.join(RESPONSES)}")
    if verb in ("guidance", "choose", "switch_mode") and not arg:
        raise UsageError(f"decision '{verb}' needs a value, e.g. '{verb}:...'")
    if verb == "switch_mode" and arg not in MODES:
        raise UsageError(f"unknown mode {arg!r}; use one of: {', '.join(MODES)}")
    allowed = list(options) if options is not None else None
    if allowed is not None and verb not in allowed and verb != "reject":
        raise UsageError(f"this gate accepts {', '.join(allowed)}, not {verb!r}")
    return verb, (arg or None)


class Human(Protocol):
    """Someone who answers gates."""

    async def ask(self, gate: GateState, context: str) -> str: ...


class ScriptedHuman:
    """Answers gates from a list, in order (for tests and scripted runs)."""

    def __init__(self, answers: Iterable[str]) -> None:
        self.answers = list(answers)
        self.asked: list[GateState] = []

    async def ask(self, gate: GateState, context: str) -> str:
        self.asked.append(gate)
        if not self.answers:
            raise UsageError(f"no scripted answer left for gate {gate.id}")
        return self.answers.pop(0)


class TerminalHuman:
    """Asks at the terminal (stdin/stderr), re-asking until the answer is valid."""

    def __init__(self, before_prompt: object = None) -> None:
        self.before_prompt = before_prompt

    async def ask(self, gate: GateState, context: str) -> str:
        pause = getattr(self.before_prompt, "pause", None)
        if callable(pause):
            pause()
        try:
            while True:
                sys.stderr.write(f"\n{context}\n{gate.prompt}\n"
                                 f"Options: {', '.join(gate.options)} "
                                 "(guidance:<text>, choose:<method>, switch_mode:<mode>)\n> ")
                sys.stderr.flush()
                line = await _read_line()
                if not line:
                    raise EOFError("no more input")
                try:
                    parse_response(line, gate.options)
                except UsageError as exc:
                    sys.stderr.write(f"{exc}\n")
                    continue
                return str(line).strip()
        finally:
            resume = getattr(self.before_prompt, "resume", None)
            if callable(resume):
                resume()


#: a live run's folder for answers from other processes (``specs approve``, the dashboard)
INBOX = "inbox"


def inbox_file(run_dir: Path, gate_id: str) -> Path:
    """Where an answer to gate ``gate_id`` of a live run is delivered."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in gate_id)
    return run_dir / INBOX / f"{safe}.json"


async def _read_line() -> str:
    """A line from stdin, without a thread where the loop can watch stdin (so the question
    can be withdrawn: an answer came from elsewhere); else on a worker thread."""
    loop = asyncio.get_running_loop()
    try:
        fd = sys.stdin.fileno()
        future: asyncio.Future[str] = loop.create_future()

        def ready() -> None:
            if not future.done():
                future.set_result(sys.stdin.readline())

        loop.add_reader(fd, ready)
    except (OSError, ValueError, NotImplementedError, AttributeError):
        return await asyncio.to_thread(sys.stdin.readline)
    try:
        return await future
    finally:
        loop.remove_reader(fd)


class InboxHuman:
    """Answers from the run folder's inbox, written by another process while the run waits
    (``specs approve``/``reject``, the dashboard: :func:`specs.api.runs.answer_gate`), raced
    against ``inner`` (the terminal, or an API handle) when there is one: the first answer
    wins. ``run_dir`` gives the run's folder (known once the run is open)."""

    def __init__(self, run_dir: Callable[[], Path], inner: Human | None = None, *,
                 poll: float = 0.2) -> None:
        self.run_dir, self.inner, self.poll = run_dir, inner, poll
        #: who gave the last answer: the inbox file's ``by`` ("cli", "dashboard"), or "user"
        self.last_by = "user"

    async def ask(self, gate: GateState, context: str) -> str:
        watch = asyncio.ensure_future(self._watch(gate))
        racers: list[asyncio.Future[str]] = [watch]
        if self.inner is not None:
            racers.append(asyncio.ensure_future(self.inner.ask(gate, context)))
        try:
            done, _ = await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for racer in racers:
                racer.cancel()
        first = next(iter(done))
        self.last_by = "user" if first is not watch else self.last_by
        return first.result()

    async def _watch(self, gate: GateState) -> str:
        path = inbox_file(self.run_dir(), gate.id)
        while True:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                await asyncio.sleep(self.poll)
                continue
            with contextlib.suppress(OSError):
                path.unlink()
            try:
                parse_response(str(data.get("response", "")), gate.options)
            except UsageError:
                continue  # checked by the writer; a bad file is dropped
            self.last_by = str(data.get("by") or "cli")
            return str(data["response"])
