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
go on the outcome, and from there on the ``attempt-ended`` event.

The executor is an :class:`LlmExecutor`: called as an executor, and with its agent loop open to
other callers (:meth:`LlmExecutor.converse`: any messages, any answer schema, a subset of the
tools), which the research phase (:mod:`specs.engine.research`) uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from specs import events as ev
from specs.agent_tools import Workspace, call_tool, tool_specs
from specs.engine.checks import checks_of, load_schema
from specs.engine.policy import ladder
from specs.engine.state import RunState
from specs.errors import BadResponse, ProviderConfigError, ProviderError
from specs.executors.base import Executor, Outcome, StepContext
from specs.load import LoadedSpec
from specs.model import Action, Spec
from specs.prompt import FAILURE_PREFIX, build_prompt, guardrails_of
from specs.providers.base import Completion, Message, Provider, Request, ToolSpec, Usage
from specs.providers.prices import cost

__all__ = ["DEFAULT_MAX_TURNS", "MUTATING_TOOLS", "Conversation", "LlmExecutor",
           "make_llm_executor"]

DEFAULT_MAX_TURNS = 8
#: Built-in tools that change the workspace; the research phase is offered every other tool.
MUTATING_TOOLS = frozenset({"write_file", "run_command"})


class Conversation(NamedTuple):
    """What one agent loop gave: the outcome, the model calls and the tool calls made."""

    outcome: Outcome
    model_calls: int
    tool_calls: int


Converse = Callable[[list[Message], "dict[str, Any] | None", Workspace,
                     "Callable[[str], bool] | None"], Awaitable[Conversation]]


class LlmExecutor:
    """The executor of cognitive steps (call it as an :data:`Executor`), with its agent loop
    open to other callers (the research phase, :mod:`specs.engine.research`)."""

    def __init__(self, execute: Executor, converse: Converse, tool_names: tuple[str, ...]
                 ) -> None:
        self._execute, self._converse = execute, converse
        self.tool_names = tool_names
        """The names of the tools a step's agent is offered."""

    async def __call__(self, action: Action, ctx: StepContext) -> Outcome:
        return await self._execute(action, ctx)

    async def converse(self, messages: list[Message], schema: dict[str, Any] | None,
                       workspace: Workspace, only: Callable[[str], bool] | None = None
                       ) -> Conversation:
        """Run the agent loop over ``messages`` (the tools the model calls run in
        ``workspace``) until a final answer, as a step's attempt does: ``schema`` asks for a
        JSON answer (the outcome's ``output``); ``only`` keeps the offered tools whose names
        it accepts. Usage and cost are on the outcome."""
        return await self._converse(messages, schema, workspace, only)


def make_llm_executor(provider: Provider, *, spec: Spec, loaded: LoadedSpec | None = None,
                      state_getter: Callable[[], RunState | None] | None = None,
                      emit: Callable[[ev.Event], None] | None = None,
                      max_turns: int | None = None) -> LlmExecutor:
    """The executor of cognitive steps for one run (see the module docstring).

    ``state_getter`` gives the run's state (earlier outputs, failures, guidance, notes for the
    prompt); ``loaded`` supplies the project constitution's guardrails. ``max_turns``
    defaults to ``[llm] max_turns``, else :data:`DEFAULT_MAX_TURNS`. ``emit`` is kept for
    per-call events (none are emitted yet).
    """
    llm = spec.llm
    turns = max_turns or (llm.max_turns if llm and llm.max_turns else DEFAULT_MAX_TURNS)
    temperature = llm.temperature if llm else None
    max_output_tokens = llm.max_output_tokens if llm else None
    prices = llm.prices if llm else None
    tools_config = llm.tools if llm else None
    guardrails = guardrails_of(loaded.project if loaded is not None else None)
    tools = tuple(ToolSpec(t["name"], t["description"], t["parameters"]) for t in tool_specs())
    del emit  # reserved for per-call events

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
        messages = [Message("system", prompt.system), Message("user", prompt.user)]
        return (await converse(messages, schema, workspace)).outcome

    async def converse(messages: list[Message], schema: dict[str, Any] | None,
                       workspace: Workspace, only: Callable[[str], bool] | None = None
                       ) -> Conversation:
        """The agent loop over ``messages`` (see :meth:`LlmExecutor.converse`)."""
        offer = tools if only is None else tuple(t for t in tools if only(t.name))
        names = {t.name for t in offer}
        usage = Usage()
        model = provider.model
        calls = 0

        def outcome(status: Any, **kwargs: Any) -> Outcome:
            found = Outcome(status, **kwargs)
            found.usage = {"input_tokens": usage.input_tokens,
                           "output_tokens": usage.output_tokens}
            found.cost_usd = _cost(model, usage, prices)
            return found

        for turn in range(turns):
            request = Request(model="", messages=tuple(messages), tools=offer,
                              json_schema=schema, temperature=temperature,
                              max_output_tokens=max_output_tokens)
            try:
                completion: Completion = await provider.complete(request)
            except ProviderConfigError as exc:
                return Conversation(outcome("error", failure_reason=str(exc)), turn + 1,
                                    calls)
            except ProviderError as exc:
                return Conversation(outcome("failed", failure_reason=str(exc),
                                            transient=exc.transient), turn + 1, calls)
            usage = usage + completion.usage
            model = completion.model or model
            if completion.tool_calls:
                messages.append(Message("assistant", completion.text or "",
                                        tool_calls=completion.tool_calls))
                for call in completion.tool_calls:
                    calls += 1
                    if call.name not in names:
                        ok, content = False, (f"unknown tool {call.name!r}; available: "
                                              f"{', '.join(sorted(names))}")
                    else:
                        result = await call_tool(workspace, call.name, call.arguments)
                        ok, content = result.ok, result.content
                    messages.append(Message("tool", content if ok else f"ERROR: {content}",
                                            tool_call_id=call.id))
                continue
            return Conversation(_final(completion, schema, calls, outcome), turn + 1, calls)
        return Conversation(outcome("failed", failure_reason=f"no final answer within max_turns "
                                                             f"({turns}); {calls} tool calls "
                                                             "made"), turns, calls)

    return LlmExecutor(execute, converse, tuple(t.name for t in tools))


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
