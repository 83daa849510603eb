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
import sys
from collections.abc import Iterable
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
                line = await asyncio.to_thread(sys.stdin.readline)
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
