"""The cognitive executor: one attempt of an LLM step as an agent loop with tools.

:func:`make_llm_executor` binds a :class:`~specs.providers.base.Provider` to a run and gives
an :data:`~specs.executors.base.Executor`. Each attempt builds the step's prompt
(:func:`specs.prompt.build_prompt`, for the method being tried: the primary or a backup's
description), sends it with the built-in tools (:mod:`specs.agent_tools`, confined to the
task's workspace and to ``[llm.tools]``), runs the tools the model calls and sends their
results back, until the model gives its final answer or ``max_turns`` calls were made.

Mapping to :class:`~specs.executors.base.Outcome`:

- transient provider errors (429, 5xx, timeouts, connection errors) -> ``failed`` with
  ``transient=True`` (the engine backs off and tries again);
- a bad response (garbage, truncated JSON, an answer cut at ``max_output_tokens``) and a
  non-JSON answer to a step with ``output_schema`` -> a ``failed`` attempt (the ladder goes on);
- a configuration error (a rejected key) -> ``error``;
- a final answer starting with :data:`~specs.prompt.FAILURE_PREFIX` -> ``failed`` with the
  model's reason;
- otherwise ``ok``: ``output`` is the parsed JSON when the step has ``output_schema`` (the
  engine's checks validate it), else the answer text.

Tokens used (all turns of the attempt) and their cost (``[llm.prices]`` or the built-in table)
go on the outcome, and from there on the ``attempt-ended`` event; each call is also an
``llm-call`` event as soon as it ends (the run's totals add those up, so the tokens of an
attempt that never ends are counted too).

Before each call the run's :class:`~specs.budget.BudgetTracker` reserves the call's estimate;
when the budget would be exceeded no call is made and the run stops ``halted`` with a reason
starting ``budget_exceeded`` (:class:`~specs.engine.runner.Stopped`; ``specs resume`` after
raising the budget runs the attempt again). A 429 with ``Retry-After`` holds every step's next
call until then. With a :class:`~specs.executors.llm_cache.ResponseCache`, an attempt whose
first request was answered before is reused without a call (``cached`` on the outcome).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from specs import events as ev
from specs.agent_tools import Workspace, call_tool, tool_specs
from specs.budget import BudgetTracker, estimate_call
from specs.engine.checks import checks_of, load_schema
from specs.engine.policy import ladder
from specs.engine.runner import Stopped
from specs.engine.state import RunState
from specs.errors import BadResponse, ProviderConfigError, ProviderError, RateLimited
from specs.executors.base import Executor, Outcome, StepContext
from specs.executors.llm_cache import READ_ONLY_TOOLS, CacheEntry, ResponseCache, result_hash
from specs.load import LoadedSpec
from specs.model import Action, Spec
from specs.prompt import FAILURE_PREFIX, build_prompt, guardrails_of
from specs.providers.base import Completion, Message, Provider, Request, ToolSpec, Usage
from specs.providers.prices import cost
from specs.providers.replay import ReplayProvider

__all__ = ["DEFAULT_MAX_TURNS", "make_llm_executor"]

DEFAULT_MAX_TURNS = 8


def make_llm_executor(provider: Provider, *, spec: Spec, loaded: LoadedSpec | None = None,
                      state_getter: Callable[[], RunState | None] | None = None,
                      emit: Callable[[ev.Event], None] | None = None,
                      max_turns: int | None = None, budget: BudgetTracker | None = None,
                      cache: ResponseCache | None = None) -> Executor:
    """The executor of cognitive steps for one run (see the module docstring).

    ``state_getter`` gives the run's state (earlier outputs, failures, guidance, notes for the
    prompt; what a resumed run spent); ``loaded`` supplies the project constitution's
    guardrails. ``max_turns`` defaults to ``[llm] max_turns``, else :data:`DEFAULT_MAX_TURNS`.
    ``emit`` receives an ``llm-call`` event per call and warnings. ``budget`` is the run's
    shared tracker (default: one from ``[budget]``); ``cache`` the attempt cache (default:
    none).
    """
    llm = spec.llm
    turns = max_turns or (llm.max_turns if llm and llm.max_turns else DEFAULT_MAX_TURNS)
    temperature = llm.temperature if llm else None
    max_output_tokens = llm.max_output_tokens if llm else None
    prices = llm.prices if llm else None
    tools_config = llm.tools if llm else None
    guardrails = guardrails_of(loaded.project if loaded is not None else None)
    tools = tuple(ToolSpec(t["name"], t["description"], t["parameters"]) for t in tool_specs())
    offered = {t.name for t in tools}
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
                return Outcome("error", failure_reason=f"output_schema cannot be read: {exc}")
        try:
            workspace = Workspace.from_config(ctx.workspace, tools_config)
        except (OSError, ValueError) as exc:
            return Outcome("error", failure_reason=f"workspace: {exc}")

        messages: list[Message] = [Message("system", prompt.system),
                                   Message("user", prompt.user)]
        usage = Usage()
        model = provider.model
        calls = 0
        key: str | None = None
        reads: list[tuple[str, dict[str, Any], str]] = []
        acted = False  # a tool call that may have changed the world: not cacheable

        def outcome(status: Any, **kwargs: Any) -> Outcome:
            found = Outcome(status, **kwargs)
            found.usage = {"input_tokens": usage.input_tokens,
                           "output_tokens": usage.output_tokens}
            found.cost_usd = _cost(model, usage, prices)
            if cache is not None and key is not None and found.ok and not acted:
                problem = cache.store(CacheEntry(key, found.text, found.output, found.usage,
                                                 model, tuple(reads)))
                if problem:
                    say(ev.RunWarning(message=problem, step=ctx.ref))
            return found

        for turn in range(turns):
            request = Request(model="", messages=tuple(messages), tools=tools,
                              json_schema=schema, temperature=temperature,
                              max_output_tokens=max_output_tokens)
            if turn == 0 and cache is not None:
                key = cache.key(provider.name, provider.model, request)
                if (ctx.ref, key) not in served:
                    served.add((ctx.ref, key))
                    hit = await _lookup(cache, key, workspace, ctx.ref, say)
                    if hit is not None:
                        return Outcome("ok", text=hit.text, output=hit.output, cached=True,
                                       usage={"input_tokens": 0, "output_tokens": 0},
                                       cost_usd=0.0)
            est_tokens, est_cost = estimate_call(request, provider.model, prices)
            while isinstance(reservation := tracker.reserve(
                    est_tokens, est_cost, what=f"the next LLM call of step {ctx.ref}"), str):
                if not tracker.open:
                    raise Stopped("halted", f"{reservation}; raise the budget ([budget] in the "
                                  "spec, or --max-cost / --max-tokens), then `specs resume`")
                await tracker.changed()  # running calls may leave room when they settle
            try:
                await held.wait()
                completion: Completion = await provider.complete(request)
            except ProviderError as exc:
                tracker.release(reservation)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    held.until(exc.retry_after)
                if isinstance(exc, ProviderConfigError):
                    return outcome("error", failure_reason=str(exc))
                return outcome("failed", failure_reason=str(exc), transient=exc.transient)
            except BaseException:
                tracker.release(reservation)
                raise
            call_cost = _cost(completion.model or model, completion.usage, prices)
            tracker.settle(reservation, completion.usage.total_tokens, call_cost)
            usage = usage + completion.usage
            model = completion.model or model
            say(ev.LlmCall(step=ctx.ref, method=ctx.method, attempt=ctx.attempt, turn=turn + 1,
                           model=model, usage={"input_tokens": completion.usage.input_tokens,
                                               "output_tokens": completion.usage.output_tokens},
                           cost_usd=call_cost))
            if completion.tool_calls:
                messages.append(Message("assistant", completion.text or "",
                                        tool_calls=completion.tool_calls))
                for call in completion.tool_calls:
                    calls += 1
                    if call.name not in offered:
                        ok, content = False, (f"unknown tool {call.name!r}; available: "
                                              f"{', '.join(sorted(offered))}")
                    else:
                        result = await call_tool(workspace, call.name, call.arguments)
                        ok, content = result.ok, result.content
                        if call.name in READ_ONLY_TOOLS:
                            reads.append((call.name, dict(call.arguments),
                                          result_hash(ok, content)))
                        else:
                            acted = True
                    messages.append(Message("tool", content if ok else f"ERROR: {content}",
                                            tool_call_id=call.id))
                continue
            return _final(completion, schema, calls, outcome)
        return outcome("failed", failure_reason=f"no final answer within max_turns ({turns}); "
                                                f"{calls} tool calls made")

    return execute


class _Hold:
    """The run's "no call before" time, set by a 429's ``Retry-After`` (every step waits)."""

    def __init__(self, *, pause: bool) -> None:
        self.pause = pause
        self.not_before = 0.0

    def until(self, seconds: float) -> None:
        if self.pause:
            self.not_before = max(self.not_before, time.monotonic() + max(0.0, seconds))

    async def wait(self) -> None:
        delay = self.not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


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
           outcome: Callable[..., Outcome]) -> Outcome:
    text = completion.text or ""
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
