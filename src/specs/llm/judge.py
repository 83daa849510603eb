"""The LLM judge of ``verify_with = "llm"``: a model compares an attempt's output with the
step's expected output (SPEC_FORMAT.md §2 "checks"; reference A16).

After an attempt succeeded and its other checks passed (``expected_files``, ``output_schema``,
``verify``: the judge is not asked when one of them failed already), :class:`LlmJudge` sends one
request: the goal, the step, the method tried, the expected output and the output (the answer
text, the structured output, the heads of the ``expected_files``; each bounded, cuts said), and
asks for the JSON object :data:`VERDICT_SCHEMA` in the provider's structured-output mode:

``{"verdict": "match" | "partial" | "mismatch", "reason": "...", "reflection": "..."}``

- ``match``: the check passes;
- ``partial``: the step completes with ``expected_output_match = false``;
- ``mismatch``: the attempt fails with ``LLM judge: <reason>`` as its failure reason, which the
  next attempt's prompt shows among the earlier failures, and the ladder goes on (retries,
  then backups) exactly as after a failed ``verify`` command.

A reply that is not such an object (garbage, no JSON, a verdict outside the three) gets one
more request that says what was wrong; a second bad reply is a ``mismatch`` whose reason says
the judge gave no valid verdict. A provider error is a ``mismatch`` too, marked transient when
the error is (429, 5xx, timeouts: the engine backs off before the next attempt).

The judge's model is ``[llm] judge_model``, else the step's (the provider's) model. Its tokens
and cost are added to the attempt's ``usage`` and ``cost_usd``. Each verdict is recorded as a
``check-ended`` event of kind ``llm`` (verdict, reason, reflection, model, calls, tokens); the
reflection goes to the notepad with the task's insights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specs import events as ev
from specs.engine.checks import schema_error
from specs.engine.stops import Stopped
from specs.errors import BadResponse, ProviderError
from specs.executors.base import Outcome, StepContext
from specs.llm.budget import BudgetTracker, Reservation, estimate_call
from specs.llm.deadline import Deadline
from specs.llm.providers.base import Message, Provider, Request, Usage
from specs.llm.providers.prices import cost
from specs.spec.model import Action, Spec, Step

__all__ = ["JUDGE_OUTPUT_CHARS", "VERDICT_SCHEMA", "LlmJudge", "judge_messages",
]

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["match", "partial", "mismatch"]},
        "reason": {"type": "string"},
        "reflection": {"type": "string"},
    },
    "required": ["verdict", "reason", "reflection"],
    "additionalProperties": False,
}
#: The most of an output the judge is shown (the answer text; the structured output; each
#: expected file's head), in characters.
JUDGE_OUTPUT_CHARS = 12_000
FILE_CHARS = 4_000
MAX_FILES = 3  # expected files shown (their heads)

JUDGE_SYSTEM = (
    "You are the reviewer of a SPEC Engine run. You judge whether the output of one step meets "
    "the step's expected output. Judge only against the expected output and the step's "
    "description; do not redo the work. Answer with one JSON object and nothing else:\n"
    '{"verdict": "match" | "partial" | "mismatch", "reason": "...", "reflection": "..."}\n'
    "- match: the output meets the expected output;\n"
    "- partial: the output is usable but incomplete or meets it only in part;\n"
    "- mismatch: the output does not meet it (wrong, missing, a placeholder, a failure "
    "presented as success).\n"
    "reason: one or two sentences that name the specific gap (for match: why it meets it); it "
    "is shown to whoever tries the step next. reflection: one sentence worth keeping in the "
    "run's notepad (an insight about the step, its method or its output).")


def judge_messages(spec: Spec, step: Step, action: Action, outcome: Outcome,
                   workspace: Path | None = None, files: list[str] | None = None
                   ) -> list[Message]:
    """The judge's request (deterministic: the same inputs give the same text)."""
    lines = [f"## Goal\n{spec.goal.description.strip() or '(the spec states no goal)'}",
             f"## Step\n{step.description.strip() or '(no description)'}"]
    if action is not step:
        described = getattr(action, "description", "") or ""
        lines.append(f"## Method\nA backup method: {described.strip() or '(no description)'}")
    lines.append("## Expected output\n" + ((step.expected_output or "").strip()
                                            or "(not stated: judge against the description)"))
    lines.append("## Output\n" + _output_text(outcome, files or [], workspace))
    lines.append("Give your verdict as the JSON object described.")
    return [Message("system", JUDGE_SYSTEM), Message("user", "\n\n".join(lines))]


def _bounded(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit:,} characters of {what} cut ...]"


def _output_text(outcome: Outcome, files: list[str], workspace: Path | None) -> str:
    parts = []
    text = outcome.text.strip()
    if text:
        parts.append("The answer (standard output):\n" + _bounded(text, JUDGE_OUTPUT_CHARS,
                                                                   "the answer"))
    if outcome.output is not None and not (isinstance(outcome.output, str)
                                           and outcome.output.strip() == text):
        dumped = outcome.output if isinstance(outcome.output, str) else json.dumps(
            outcome.output, indent=2, ensure_ascii=False, default=str)
        parts.append("The structured output:\n" + _bounded(dumped, JUDGE_OUTPUT_CHARS,
                                                           "the structured output"))
    for path in _files(workspace, files) if workspace is not None else []:
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                head = handle.read(FILE_CHARS + 1)
        except OSError:
            continue
        assert workspace is not None
        shown = path.relative_to(workspace) if path.is_relative_to(workspace) else path.name
        if len(head) > FILE_CHARS:
            head = f"{head[:FILE_CHARS]}\n[... the rest of the file {shown} cut ...]"
        parts.append(f"The file `{shown}`:\n{head}")
    return "\n\n".join(parts) or "(the step produced no output)"


def _files(workspace: Path, patterns: list[str]) -> list[Path]:
    """The first :data:`MAX_FILES` expected files that are regular files (a glob: its first
    match in name order)."""
    found: list[Path] = []
    for pattern in patterns:
        try:
            paths = sorted(workspace.glob(pattern)) if any(c in pattern for c in "*?[") \
                else [workspace / pattern]
        except (OSError, ValueError, NotImplementedError):
            continue
        found += [p for p in paths if p.is_file()][:1]
        if len(found) >= MAX_FILES:
            break
    return found


def _problem(value: Any) -> str | None:
    """Why ``value`` is not a verdict object (one line), or None."""
    found = schema_error(value, VERDICT_SCHEMA)
    return found[:200] if found else None


class _Asked:
    """What the judge has been told so far: the verdict (``mismatch`` until one is given)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage = Usage()
        self.calls = 0
        self.verdict, self.reason, self.reflection = "mismatch", "", ""
        self.judged = False


class LlmJudge:
    """The judge of one run: a provider, the judge model, and where its verdicts are recorded
    (``emit`` gets the ``check-ended`` events)."""

    def __init__(self, provider: Provider, spec: Spec, *,
                 emit: Callable[[ev.Event], None] | None = None,
                 budget: BudgetTracker | None = None) -> None:
        llm = spec.llm
        self.budget = budget  # the run's tracker, shared with the agent loop ([budget])
        self.provider = provider
        self.spec = spec
        self.model = (llm.judge_model or "").strip() if llm else ""
        self.temperature = llm.temperature if llm else None
        self.max_output_tokens = llm.max_output_tokens if llm else None
        self.prices = llm.prices if llm else None
        self.emit = emit

    async def __call__(self, action: Action, ctx: StepContext, outcome: Outcome,
                       workspace: Path | None = None, files: list[str] | None = None
                       ) -> tuple[str, str | None]:
        """(verdict, reason) for ``outcome`` of ``action`` (the step or a backup of
        ``ctx.step``); adds the judge's tokens and cost to ``outcome``."""
        messages = judge_messages(self.spec, ctx.step, action, outcome, workspace, files)
        asked = _Asked(self.model or self.provider.model)
        deadline = Deadline(ctx.timeout)  # as long as the attempt may take, from now
        timer = deadline.timer()
        try:
            async with timer:
                await self._ask(messages, ctx, outcome, asked)
        except TimeoutError:
            if not timer.expired():
                raise
            asked.verdict, asked.judged = "mismatch", False
            asked.reason = f"the judge could not be asked: {deadline.reason('no verdict')}"
            outcome.transient = True
        usage, model = asked.usage, asked.model
        spent = self._cost(model, usage)
        self._add(outcome, usage, spent)
        if self.emit is not None:
            self.emit(ev.CheckEnded(
                step=ctx.ref, method=ctx.method, attempt=ctx.attempt, kind="llm",
                verdict=asked.verdict, reason=asked.reason, reflection=asked.reflection,
                model=model, calls=asked.calls,
                usage={"input_tokens": usage.input_tokens,
                       "output_tokens": usage.output_tokens},
                cost_usd=spent))
        if asked.verdict == "match":
            return "match", None
        if not asked.judged:
            return asked.verdict, f"LLM judge: {asked.reason}"
        return asked.verdict, f"LLM judge ({asked.verdict}): {asked.reason or 'no reason given'}"

    async def _ask(self, messages: list[Message], ctx: StepContext, outcome: Outcome,
                   asked: _Asked) -> None:
        """Ask for a verdict, once more after a reply that is not one (``asked`` is filled
        in as the calls end, so a timeout keeps what they used)."""
        for _try in range(2):
            request = Request(model=self.model, messages=tuple(messages),
                              json_schema=VERDICT_SCHEMA, temperature=self.temperature,
                              max_output_tokens=self.max_output_tokens)
            asked.calls += 1
            reservation = await self._reserve(request, ctx)
            try:
                completion = await self.provider.complete(request)
            except BadResponse as exc:  # garbage at the HTTP level: a bad reply, asked again
                self._release(reservation)
                asked.reason = f"the judge gave no valid verdict: {exc}"
                continue
            except ProviderError as exc:
                self._release(reservation)
                asked.reason = f"the judge could not be asked: {exc}"
                outcome.transient = outcome.transient or exc.transient
                return
            except BaseException:
                self._release(reservation)
                raise
            if self.budget is not None and reservation is not None:
                self.budget.settle(reservation, completion.usage.total_tokens,
                                   self._cost(completion.model or asked.model,
                                              completion.usage))
            asked.usage = asked.usage + completion.usage
            asked.model = completion.model or asked.model
            try:
                value = completion.json()
                problem = _problem(value)
            except BadResponse as exc:
                value, problem = None, str(exc)
            if problem is None and isinstance(value, dict):
                asked.verdict = value["verdict"]
                asked.reason = value["reason"].strip()
                asked.reflection = value["reflection"].strip()
                asked.judged = True
                return
            asked.reason = f"the judge gave no valid verdict: {problem}"
            messages = [*messages, Message("assistant", (completion.text or "")[:2000]),
                        Message("user", f"That reply is not the JSON object asked for "
                                        f"({problem}). Answer again with only the object.")]

    async def _reserve(self, request: Request, ctx: StepContext) -> Reservation | None:
        """Take the call's estimate from the run's budget first (as the agent loop does);
        a call that cannot fit with nothing else running stops the run (resumable)."""
        if self.budget is None:
            return None
        tokens, cost_usd = estimate_call(request, self.model or self.provider.model,
                                         self.prices)
        while isinstance(found := self.budget.reserve(
                tokens, cost_usd, what=f"the LLM judge's call for step {ctx.ref}"), str):
            if not self.budget.open:
                raise Stopped("halted", f"{found}; raise the budget ([budget] in the spec, or "
                              "--max-cost / --max-tokens), then `specs resume`", ctx.ref)
            await self.budget.changed()
        return found

    def _release(self, reservation: Reservation | None) -> None:
        if self.budget is not None and reservation is not None:
            self.budget.release(reservation)

    def _cost(self, model: str, usage: Usage) -> float | None:
        try:
            return cost(model, usage, self.prices)
        except ProviderError:
            return None

    @staticmethod
    def _add(outcome: Outcome, usage: Usage, spent: float | None) -> None:
        before = outcome.usage or {}
        outcome.usage = {**before,
                         "input_tokens": before.get("input_tokens", 0) + usage.input_tokens,
                         "output_tokens": before.get("output_tokens", 0) + usage.output_tokens}
        if spent is not None:
            outcome.cost_usd = (outcome.cost_usd or 0.0) + spent
