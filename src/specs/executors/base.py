"""The executor protocol: :class:`StepContext` in, :class:`Outcome` out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from specs.spec.model import Action, Spec, Step, Task

Status = Literal["ok", "failed", "error"]


@dataclass(slots=True)
class Outcome:
    """What one attempt produced.

    ``status``: ``ok``, ``failed`` (ran, did not succeed) or ``error`` (could not run).
    ``transient`` marks failures worth retrying after a pause (timeouts, rate limits, exit codes
    the step lists in ``retry_on_exit_codes``); ``permanent`` those no retry of the same method
    can mend (a program not found or not executable, a callable that cannot be imported, a
    rejected API key): the ladder goes on at the next method at once, ``failure_reason``
    saying why. ``truncated`` says what of the output was cut at ``max_output_bytes`` and
    what that cost (a JSON object on standard output that could not be read). ``output`` is
    the structured output (a JSON object from stdout or ``output_file``, or what a callable
    returned); ``text`` the captured standard output. ``verdict`` may be set by a callable
    that judges itself (``match``/``partial``/``mismatch``); ``escalate`` names a trigger of
    ``[execution] escalation_triggers``.
    """

    status: Status
    text: str = ""
    output: Any = None
    failure_reason: str | None = None
    transient: bool = False
    permanent: bool = False
    truncated: str | None = None
    exit_code: int | None = None
    stderr: str = ""
    verdict: str | None = None
    escalate: str | None = None
    artifacts: list[str] = field(default_factory=list)
    usage: dict[str, int] | None = None  # LLM tokens: input_tokens, output_tokens
    cost_usd: float | None = None  # what those tokens cost, when the price is known
    cached: bool = False  # reused from the cache of cognitive attempts (no call made)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self, limit: int = 200) -> str:
        """A one-line summary for logs: the last non-empty line of the output, shortened."""
        text = self.text.strip() or self.stderr.strip()
        line = text.splitlines()[-1] if text else ""
        if not line.isprintable():
            line = "".join(c if c.isprintable() else "?" for c in line)
            if line.count("?") > len(line) // 2:
                return f"({len(self.text)} characters of binary output)"
        return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(slots=True)
class StepContext:
    """Everything an executor may use for one attempt."""

    spec: Spec
    task: Task
    step: Step
    ref: str
    method: str  # primary | backup_<n>
    attempt: int
    workspace: Path
    spec_folder: Path
    output_dir: Path | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    guidance: str | None = None
    failure_reasons: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_output_bytes: int = 1_000_000
    run_id: str = ""
    on_spawn: Callable[[int], None] | None = None  # told each process group an attempt starts

    @property
    def output(self) -> Any:
        """Shortcut: the structured outputs of earlier steps, by ref (``"1.2"``)."""
        return self.outputs


Executor = Callable[[Action, StepContext], Awaitable[Outcome]]
