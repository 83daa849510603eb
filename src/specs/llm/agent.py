"""The cognitive executor: one attempt of an LLM step as an agent loop with tools.

:func:`make_llm_executor` binds a :class:`~specs.llm.providers.base.Provider` to a run and gives
an :data:`~specs.executors.base.Executor`. Each attempt builds the step's prompt
(:func:`specs.llm.prompt.build_prompt`, for the method being tried: the primary or a backup's
description), sends it with the built-in tools (:mod:`specs.llm.tools`, confined to the
task's workspace and to ``[llm.tools]``), runs the tools the model calls and sends their
results back, until the model gives its final answer or ``max_turns`` calls were made.

Mapping to :class:`~specs.executors.base.Outcome`:

- transient provider errors (429, 5xx, timeouts, connection errors) -> ``failed`` with
  ``transient=True`` (the engine backs off and tries again);
- a bad response (garbage, truncated JSON, an answer cut at ``max_output_tokens``) and a
  non-JSON answer to a step with ``output_schema`` -> a ``failed`` attempt (the ladder goes on);
- a configuration error (a rejected key) -> ``error``;
- a final answer starting with :data:`~specs.llm.prompt.FAILURE_PREFIX` -> ``failed`` with the
  model's reason;
- otherwise ``ok``: ``output`` is the parsed JSON when the step has ``output_schema`` (the
  engine's checks validate it), else the answer text.

Tokens used (all turns of the attempt) and their cost (``[llm.prices]`` or the built-in table)
go on the outcome, and from there on the ``attempt-ended`` event; each call is also an
``llm-call`` event as soon as it ends (the run's totals add those up, so the tokens of an
attempt that never ends are counted too).

The attempt's timeout (``StepContext.timeout``) is a hard deadline for the whole attempt
(:mod:`specs.llm.deadline`): every model call, tool call, MCP call and wait is cancelled when it
is up (connections closed, process groups killed) and the attempt fails as transient
("timed out after N s (what it was doing)").

Before each call the run's :class:`~specs.llm.budget.BudgetTracker` reserves the call's estimate;
when the budget would be exceeded no call is made and the run stops ``halted`` with a reason
starting ``budget_exceeded`` (:class:`~specs.engine.runner.Stopped`; ``specs resume`` after
raising the budget runs the attempt again). A 429 with ``Retry-After`` holds every step's next
call until then; a hold longer than the attempt's time left (or than
:data:`~specs.llm.deadline.MAX_WAIT_S`) fails the attempt at once, as transient. With a
:class:`~specs.llm.cache.ResponseCache`, an attempt whose first request was answered before is
reused without a call (``cached`` on the outcome).

The executor is an :class:`LlmExecutor`: called as an executor, and with its agent loop open to
other callers (:meth:`LlmExecutor.converse`: any messages, any answer schema, a subset of the
tools), which the research phase (:mod:`specs.llm.research`) uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from specs import events as ev
from specs.engine.checks import checks_of, load_schema
from specs.engine.policy import ladder
from specs.engine.state import RunState
from specs.engine.stops import Stopped
from specs.errors import BadResponse, ProviderConfigError, ProviderError, RateLimited
from specs.executors.base import Executor, Outcome, StepContext
from specs.llm.budget import BudgetTracker, estimate_call
from specs.llm.cache import READ_ONLY_TOOLS, CacheEntry, ResponseCache, result_hash
from specs.llm.deadline import MAX_WAIT_S, Deadline
from specs.llm.prompt import FAILURE_PREFIX, build_prompt, guardrails_of
from specs.llm.providers.base import Completion, Message, Provider, Request, ToolSpec, Usage
from specs.llm.providers.prices import cost
from specs.llm.providers.replay import ReplayProvider
from specs.llm.sandbox import Protected
from specs.llm.tools import SECRET_ENV, Workspace, call_tool, tool_specs
from specs.spec.load import LoadedSpec
from specs.spec.model import Action, Spec

if TYPE_CHECKING:
    from specs.llm.mcp import McpHub

__all__ = ["DEFAULT_MAX_TURNS", "MUTATING_TOOLS", "Conversation", "LlmExecutor",
           "make_llm_executor", "summarize_arguments"]

DEFAULT_MAX_TURNS = 8
#: the bytes of a final answer kept when the caller names no cap (a step's attempt uses its
#: ``max_output_bytes``, as a command's output does)
MAX_ANSWER_BYTES = 1_000_000
#: argument names whose values never go into an event
SECRET_ARG = re.compile(r"key|token|secret|passw|credential|authorization|cookie", re.I)
#: values that look like credentials wherever they appear
SECRET_VALUE = re.compile(r"\b(sk-|sk_|ghp_|gho_|github_pat_|xox[abpr]-|hf_|AKIA)[A-Za-z0-9_-]{8,}"
                          r"|(?i:bearer)\s+\S+")
#: Built-in tools that change the workspace; the research phase is offered every other tool.
MUTATING_TOOLS = frozenset({"write_file", "run_command"})


class Conversation(NamedTuple):
    """What one agent loop gave: the outcome, the model calls and the tool calls made."""

    outcome: Outcome
    model_calls: int
    tool_calls: int


#: who makes the tool calls of a conversation, for their ``tool-called`` events:
#: (step ref, method, attempt); the research phase uses (task ref, "research", 1)
Caller = tuple[str, str, int]
Converse = Callable[..., Awaitable[Conversation]]


class LlmExecutor:
    """The executor of cognitive steps (call it as an :data:`Executor`), with its agent loop
    open to other callers (the research phase, :mod:`specs.llm.research`)."""

    def __init__(self, execute: Executor, converse: Converse,
                 tool_names: Callable[[], tuple[str, ...]],
                 workspace: Callable[[Path], Workspace]) -> None:
        self._execute, self._converse = execute, converse
        self._tool_names = tool_names
        self._workspace = workspace

    def workspace(self, root: Path) -> Workspace:
        """The workspace the tools of a conversation in ``root`` use: ``[llm.tools]`` and the
        run's protected paths (raises OSError or ValueError as
        :meth:`~specs.llm.tools.Workspace.from_config` does)."""
        return self._workspace(root)

    @property
    def tool_names(self) -> tuple[str, ...]:
        """The names of the tools a step's agent is offered now (the built-in ones and those
        of the MCP servers running)."""
        return self._tool_names()

    async def __call__(self, action: Action, ctx: StepContext) -> Outcome:
        return await self._execute(action, ctx)

    async def converse(self, messages: list[Message], schema: dict[str, Any] | None,
                       workspace: Workspace, only: Callable[[str], bool] | None = None,
                       caller: Caller | None = None,
                       timeout: float | None = None) -> Conversation:
        """Run the agent loop over ``messages`` (the tools the model calls run in
        ``workspace``) until a final answer, as a step's attempt does: ``schema`` asks for a
        JSON answer (the outcome's ``output``); ``only`` keeps the offered tools whose names
        it accepts; ``caller`` names who calls the tools in their ``tool-called`` events;
        ``timeout`` ends it (a transient failure, :mod:`specs.llm.deadline`). Usage and cost
        are on the outcome."""
        return await self._converse(messages, schema, workspace, only, caller, timeout)


def make_llm_executor(provider: Provider, *, spec: Spec, loaded: LoadedSpec | None = None,
                      state_getter: Callable[[], RunState | None] | None = None,
                      emit: Callable[[ev.Event], None] | None = None,
                      max_turns: int | None = None, mcp: McpHub | None = None,
                      budget: BudgetTracker | None = None,
                      cache: ResponseCache | None = None,
                      state_dir: Path | None = None) -> LlmExecutor:
    """The executor of cognitive steps for one run (see the module docstring).

    ``state_getter`` gives the run's state (earlier outputs, failures, guidance, notes for the
    prompt); ``loaded`` supplies the project constitution's guardrails. ``max_turns``
    defaults to ``[llm] max_turns``, else :data:`DEFAULT_MAX_TURNS`. ``emit`` receives a
    ``tool-called`` event per tool call; ``mcp`` offers the tools of the run's MCP servers
    (read at each conversation, so servers started after this call count). ``emit`` also
    receives an ``llm-call`` event per model call and warnings. ``budget`` is the run's shared
    tracker (default: one from ``[budget]``; what a resumed run spent is read from the state);
    ``cache`` the attempt cache (default: none). ``state_dir`` is the run's state folder:
    the agent's tools neither read nor write it, and never write the files of ``loaded``
    (:class:`~specs.llm.sandbox.Protected`).
    """
    llm = spec.llm
    turns = max_turns or (llm.max_turns if llm and llm.max_turns else DEFAULT_MAX_TURNS)
    temperature = llm.temperature if llm else None
    max_output_tokens = llm.max_output_tokens if llm else None
    prices = llm.prices if llm else None
    tools_config = llm.tools if llm else None
    protected = Protected.for_run(loaded, state_dir)

    def workspace_at(root: Path) -> Workspace:
        return Workspace.from_config(root, tools_config, protected=protected)
    guardrails = guardrails_of(loaded.project if loaded is not None else None)
    builtin = tuple(ToolSpec(t["name"], t["description"], t["parameters"])
                    for t in tool_specs())
    builtin_names = {t.name for t in builtin}
    if budget is None:
        limits = spec.budget
        budget = BudgetTracker(limits.max_cost_usd if limits else None,
                               limits.max_tokens if limits else None)
    if budget.spent_before is None and state_getter is not None:
        budget.spent_before = lambda: _spent(state_getter())
    tracker = budget
    held = _Hold(pause=not isinstance(provider, ReplayProvider))
    served: set[tuple[str, str]] = set()  # (step, key) answered in this run: no cache for a retry

    def say(event: ev.Event) -> None:
        if emit is not None:
            emit(event)

    def current_tools() -> tuple[tuple[ToolSpec, ...], dict[str, Any]]:
        """The tools offered now: the built-in ones, then the MCP servers' (by name)."""
        found = {t.name: t for t in mcp.tools()} if mcp is not None else {}
        return builtin + tuple(ToolSpec(t.name, t.description, t.parameters)
                               for t in found.values() if t.name not in builtin_names), found

    async def execute(action: Action, ctx: StepContext) -> Outcome:
        rungs = ladder(ctx.step)
        method = next((r for r in rungs if r.label == ctx.method), rungs[0])
        state = state_getter() if state_getter is not None else None
        prompt = build_prompt(ctx.spec, ctx.task, ctx.step, method=method, state=state,
                              guidance=ctx.guidance, guardrails=guardrails,
                              spec_folder=ctx.spec_folder)
        schema_source = checks_of(action, ctx.step).output_schema
        schema: dict[str, Any] | None = None
        if schema_source is not None:
            try:
                schema = load_schema(schema_source, ctx.spec_folder)
            except (OSError, ValueError) as exc:
                return Outcome("error", permanent=True,
                               failure_reason=f"output_schema cannot be read: {exc}")
        try:
            workspace = workspace_at(ctx.workspace)
        except (OSError, ValueError) as exc:
            return Outcome("error", permanent=True, failure_reason=f"workspace: {exc}")
        messages = [Message("system", prompt.system), Message("user", prompt.user)]
        key: str | None = None
        if cache is not None:
            first = Request(model="", messages=tuple(messages), tools=current_tools()[0],
                            json_schema=schema, temperature=temperature,
                            max_output_tokens=max_output_tokens)
            key = cache.key(provider.name, provider.model, first)
            if (ctx.ref, key) not in served:
                served.add((ctx.ref, key))
                hit = await _lookup(cache, key, workspace, ctx.ref, say)
                if hit is not None:
                    return Outcome("ok", text=hit.text, output=hit.output, cached=True,
                                   usage={"input_tokens": 0, "output_tokens": 0},
                                   cost_usd=0.0)
        trace = _Trace()
        found = (await converse(messages, schema, workspace, None,
                                (ctx.ref, ctx.method, ctx.attempt), ctx.timeout,
                                trace, ctx.max_output_bytes)).outcome
        if cache is not None and key is not None and found.ok and not trace.acted:
            problem = cache.store(CacheEntry(key, found.text, found.output, found.usage or {},
                                             trace.model or provider.model,
                                             tuple(trace.reads)))
            if problem:
                say(ev.RunWarning(message=problem, step=ctx.ref))
        return found

    async def converse(messages: list[Message], schema: dict[str, Any] | None,
                       workspace: Workspace, only: Callable[[str], bool] | None = None,
                       caller: Caller | None = None, timeout: float | None = None,
                       trace: _Trace | None = None, cap: int = MAX_ANSWER_BYTES
                       ) -> Conversation:
        """The agent loop over ``messages`` (see :meth:`LlmExecutor.converse`), ended by its
        deadline (``timeout`` seconds); ``trace`` collects the read-only tool calls made (for
        the cache); the final answer is kept up to ``cap`` bytes."""
        tally = _Tally(provider.model, prices)
        tally.cap = cap
        deadline = Deadline(timeout)
        timer = deadline.timer()
        try:
            async with timer:
                return await talk(messages, schema, workspace, only, caller,
                                  trace if trace is not None else _Trace(), tally, deadline)
        except TimeoutError:
            if not timer.expired():
                raise
            # whatever was under way was cancelled: the HTTP call (its connection closed), a
            # command (its process group killed), an MCP call, a wait
            return Conversation(tally.outcome("failed", transient=True,
                                              failure_reason=deadline.reason(tally.doing)),
                                tally.turns, tally.calls)

    async def talk(messages: list[Message], schema: dict[str, Any] | None,
                   workspace: Workspace, only: Callable[[str], bool] | None,
                   caller: Caller | None, trace: _Trace, tally: _Tally,
                   deadline: Deadline) -> Conversation:
        who = caller[0] if caller is not None else ""
        tools, mcp_tools = current_tools()
        offer = tools if only is None else tuple(t for t in tools if only(t.name))
        names = {t.name for t in offer}
        outcome = tally.outcome

        for turn in range(turns):
            tally.turns = turn + 1
            wait = held.wait_time()
            if wait > 0:
                if not deadline.fits(wait):
                    return Conversation(outcome("failed", transient=True, failure_reason=(
                        f"rate limited: the provider asked to wait {wait:.0f} s more "
                        f"(Retry-After), longer than {_room(deadline)}")), turn, tally.calls)
                tally.doing = "waiting out the provider's Retry-After"
                await asyncio.sleep(wait)
            request = Request(model="", messages=tuple(messages), tools=offer,
                              json_schema=schema, temperature=temperature,
                              max_output_tokens=max_output_tokens)
            est_tokens, est_cost = estimate_call(request, provider.model, prices)
            tally.doing = "waiting for room in the budget"
            while isinstance(reservation := tracker.reserve(
                    est_tokens, est_cost, what=f"the next LLM call of step {who}" if who
                    else "the next LLM call"), str):
                if not tracker.open:
                    raise Stopped("halted", f"{reservation}; raise the budget ([budget] in the "
                                  "spec, or --max-cost / --max-tokens), then `specs resume`")
                await tracker.changed()  # running calls may leave room when they settle
            tally.doing = f"waiting for the model's answer, call {turn + 1}"
            try:
                completion: Completion = await provider.complete(request)
            except ProviderError as exc:
                tracker.release(reservation)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    held.until(exc.retry_after)
                if isinstance(exc, ProviderConfigError):  # a rejected key: no retry mends it
                    return Conversation(outcome("error", failure_reason=str(exc),
                                                permanent=True), turn + 1, tally.calls)
                return Conversation(outcome("failed", failure_reason=str(exc),
                                            transient=exc.transient), turn + 1, tally.calls)
            except BaseException:
                tracker.release(reservation)
                raise
            call_cost = _cost(completion.model or tally.model, completion.usage, prices)
            tracker.settle(reservation, completion.usage.total_tokens, call_cost)
            tally.usage = tally.usage + completion.usage
            tally.model = trace.model = completion.model or tally.model
            say(ev.LlmCall(step=who, method=caller[1] if caller else "", attempt=caller[2]
                           if caller else 0, turn=turn + 1, model=tally.model,
                           usage={"input_tokens": completion.usage.input_tokens,
                                  "output_tokens": completion.usage.output_tokens},
                           cost_usd=call_cost))
            if not completion.tool_calls:
                return Conversation(_final(completion, schema, tally.calls, outcome,
                                           tally.cap), turn + 1, tally.calls)
            messages.append(Message("assistant", completion.text or "",
                                    tool_calls=completion.tool_calls))
            for call in completion.tool_calls:
                tally.calls += 1
                tally.doing = f"running the tool {call.name}"
                began = time.monotonic()
                server: str | None = None
                if call.name not in names:
                    ok, content = False, (f"unknown tool {call.name!r}; available: "
                                          f"{', '.join(sorted(names))}")
                elif call.name in builtin_names:
                    result = await call_tool(workspace, call.name, call.arguments)
                    ok, content = result.ok, result.content
                    if call.name in READ_ONLY_TOOLS:
                        trace.reads.append((call.name, dict(call.arguments),
                                            result_hash(ok, content)))
                    else:
                        trace.acted = True
                else:  # offered, not built in: an MCP server's
                    trace.acted = True  # its effects are unknown: not cacheable
                    assert mcp is not None
                    server = mcp_tools[call.name].server
                    answer = await mcp.call(call.name, call.arguments)
                    ok, content = answer.ok, answer.content
                if emit is not None and caller is not None:
                    emit(ev.ToolCalled(
                        step=caller[0], method=caller[1], attempt=caller[2],
                        tool=call.name, server=server, ok=ok,
                        duration_ms=round((time.monotonic() - began) * 1000),
                        arguments=summarize_arguments(call.arguments),
                        error=None if ok else _cut(content, 300)))
                messages.append(Message("tool", content if ok else f"ERROR: {content}",
                                        tool_call_id=call.id))
        return Conversation(outcome("failed", failure_reason=f"no final answer within max_turns "
                                                             f"({turns}); {tally.calls} tool "
                                                             "calls made"), turns, tally.calls)

    return LlmExecutor(execute, converse, lambda: tuple(t.name for t in current_tools()[0]),
                       workspace_at)


class _Trace:
    """What a conversation's tool calls did, for the cache: the read-only calls with a hash of
    their results, and whether any call may have changed the world."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, dict[str, Any], str]] = []
        self.acted = False
        self.model = ""


class _Tally:
    """What one conversation has used and done so far (kept when its deadline ends it)."""

    def __init__(self, model: str, prices: dict[str, Any] | None) -> None:
        self.model, self.prices = model, prices
        self.usage = Usage()
        self.turns = 0  # model calls started
        self.calls = 0  # tool calls made
        self.doing = ""  # what it is waiting for, for a timeout's reason
        self.cap = MAX_ANSWER_BYTES  # the final answer is kept up to this many bytes

    def outcome(self, status: Any, **kwargs: Any) -> Outcome:
        found = Outcome(status, **kwargs)
        found.usage = {"input_tokens": self.usage.input_tokens,
                       "output_tokens": self.usage.output_tokens}
        found.cost_usd = _cost(self.model, self.usage, self.prices)
        return found


class _Hold:
    """The run's "no call before" time, set by a 429's ``Retry-After`` (every step waits)."""

    def __init__(self, *, pause: bool) -> None:
        self.pause = pause
        self.not_before = 0.0

    def until(self, seconds: float) -> None:
        if self.pause:
            self.not_before = max(self.not_before, time.monotonic() + max(0.0, seconds))

    def wait_time(self) -> float:
        return max(0.0, self.not_before - time.monotonic())


def _room(deadline: Deadline) -> str:
    left = deadline.left()
    if left is not None and left < MAX_WAIT_S:
        return f"the {left:.0f} s left of the attempt's timeout"
    return f"the {MAX_WAIT_S:g} s a call may wait"


def _spent(state: RunState | None) -> tuple[int, float]:
    if state is None:
        return 0, 0.0
    return int(state.llm_usage["total_tokens"]), float(state.llm_usage["cost_usd"])


async def _lookup(cache: ResponseCache, key: str, workspace: Workspace, ref: str,
                  say: Callable[[ev.Event], None]) -> CacheEntry | None:
    """The cached attempt of ``key`` when the files it read still read the same."""
    entry, problem = cache.load(key)
    if problem:
        say(ev.RunWarning(message=problem, step=ref))
    if entry is None:
        return None
    for tool, arguments, digest in entry.reads:
        result = await call_tool(workspace, tool, arguments)
        if result_hash(result.ok, result.content) != digest:
            return None  # an input changed since: call the model
    return entry


def _final(completion: Completion, schema: dict[str, Any] | None, calls: int,
           outcome: Callable[..., Outcome], cap: int = 0) -> Outcome:
    text = completion.text or ""
    size = len(text.encode("utf-8")) if cap and len(text) * 4 > cap else len(text)
    if cap and size > cap:  # kept like a command's output: the rest is dropped
        text = text.encode("utf-8")[:cap].decode("utf-8", "ignore")
        cut = (f"the answer cut at {cap:,} bytes (max_output_bytes; {size - cap:,} more "
               "dropped)")
        if schema is not None:
            return outcome("failed", text=text, truncated=cut,
                           failure_reason=f"{cut}: its JSON is not read")
        return outcome("ok", text=text, output=text, truncated=cut)
    stripped = text.strip()
    note = f" ({calls} tool calls)" if calls else ""
    if stripped.startswith(FAILURE_PREFIX):
        reason = stripped[len(FAILURE_PREFIX):].strip() or "the model gave up"
        return outcome("failed", text=text, failure_reason=f"the model reported failure: "
                                                           f"{reason}")
    if completion.finish_reason == "length":
        return outcome("failed", text=text,
                       failure_reason="the answer was cut at max_output_tokens")
    if not stripped:
        return outcome("failed", failure_reason="the model gave an empty answer")
    if schema is not None:
        try:
            value = completion.json()
        except BadResponse as exc:
            return outcome("failed", text=text, failure_reason=str(exc))
        return outcome("ok", text=text + note if note else text, output=value)
    return outcome("ok", text=text, output=text)


def _cost(model: str, usage: Usage, prices: dict[str, Any] | None) -> float | None:
    try:
        return cost(model, usage, prices)
    except ProviderError:
        return None


def summarize_arguments(arguments: Any, limit: int = 300) -> str:
    """A tool call's arguments for the log: JSON with strings cut to 80 characters, values of
    secret-looking names (key, token, password ...) masked, and the whole cut to ``limit``."""

    secrets = [v for k, v in os.environ.items() if len(v) >= 8 and SECRET_ENV.search(k)]

    def mask(text: str) -> str:
        for value in secrets:
            text = text.replace(value, "***")
        return SECRET_VALUE.sub("***", text)

    def shrink(value: Any, key: str = "") -> Any:
        if key and SECRET_ARG.search(key):
            return "***"
        if isinstance(value, str):
            return _cut(mask(value), 80)
        if isinstance(value, dict):
            return {str(k): shrink(v, str(k)) for k, v in list(value.items())[:20]}
        if isinstance(value, list):
            return [shrink(v) for v in value[:20]]
        return value

    try:
        text = json.dumps(shrink(arguments), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(arguments)
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
