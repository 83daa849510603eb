"""Putting a run together: what every face of the library (CLI, dashboard, ``specs mcp``) gets
alike, done once here.

For a spec and the caller's choices (:class:`LlmChoice`, budget, cache, backend, subscribers),
:func:`assemble` makes the :class:`~specs.engine.runner.Runner` with:

- the LLM provider (spec ``[llm]`` < environment < explicit choice; ``--record`` wraps it in a
  recorder, ``--replay`` answers from a run's cassette), only when the spec can call an LLM
  (a cognitive step or backup, ``verify_with = "llm"``, a research phase);
- the cognitive executor (the agent loop with the workspace tools and the tools of the MCP
  servers ``[mcp_tools]`` names), the LLM judge and the research phase, sharing one budget
  (``[budget]`` < ``max_cost_usd``/``max_tokens``) and, when asked, the response cache;
- the projections: progress_X.json, and notepad_X.md when knowledge capture is on;
- the backend's executors (Dask), when one is chosen.

:func:`services` wraps the run's coroutine so that the MCP servers are started and checked
(rule 1.11) and the provider checked before the run, and all of them closed after it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs import backends
from specs import events as ev
from specs.api.runs import find_run
from specs.engine.human import Human, InboxHuman
from specs.engine.journal import Subscriber
from specs.engine.runner import Runner, RunOptions, RunResult
from specs.errors import UsageError
from specs.llm import mcp
from specs.llm.agent import make_llm_executor
from specs.llm.budget import BudgetTracker, budget_diagnostics
from specs.llm.cache import ResponseCache, cache_dir
from specs.llm.judge import LlmJudge
from specs.llm.providers import RecordingProvider, ReplayProvider, provider_from_settings
from specs.llm.providers.base import Provider
from specs.llm.research import research_once
from specs.record.notepad import NotepadWriter
from specs.record.progress import ProgressWriter
from specs.spec.files import LoadedSpec

__all__ = ["CASSETTE", "LLM_ENV", "LlmChoice", "assemble", "has_cognitive", "make_provider",
           "services"]

#: the environment variables that configure an LLM provider (docs/providers.md)
LLM_ENV = ("SPECS_LLM_PROVIDER", "SPECS_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY",
           "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")
#: a run's recorded LLM exchanges, in its run folder
CASSETTE = "exchanges.jsonl"

Start = Callable[[], Coroutine[Any, Any, RunResult]]


@dataclass(frozen=True)
class LlmChoice:
    """The caller's say about the LLM of a run (each overrides the spec and environment)."""

    provider: str | None = None  # "openai" (any OpenAI-compatible server) or "anthropic"
    model: str | None = None
    record: bool = False  # store every exchange in the run folder (exchanges.jsonl)
    replay: str | None = None  # a run id (or prefix): answer from its recorded exchanges
    cache: bool | None = None  # reuse answers of unchanged cognitive steps ([execution] cache)


def has_cognitive(loaded: LoadedSpec) -> bool:
    """True when the run may call an LLM: a cognitive step or backup, an LLM judge
    (``verify_with = "llm"``) or a task's research phase (``research_enabled``)."""
    spec = loaded.require()
    if any(task.research_enabled for task in spec.tasks):
        return True
    return any(action.is_cognitive or action.verify_with == "llm"
               for _task, step in spec.steps() for action in (step, *step.backups))


def make_provider(loaded: LoadedSpec, state_dir: Path, run_id: str, choice: LlmChoice,
                  environ: Mapping[str, str] | None = None) -> Provider | None:
    """The LLM provider of the run, or None (nothing in the spec calls an LLM, or nothing is
    configured: the pre-flight then reports E-NO-PROVIDER, a research phase warns).
    Configuration errors raise :class:`~specs.errors.ProviderError`."""
    env = os.environ if environ is None else environ
    spec = loaded.require()
    if not has_cognitive(loaded):
        return None
    if choice.replay:
        cassette = find_run(state_dir, choice.replay) / CASSETTE
        if not cassette.is_file():
            raise UsageError(f"--replay {choice.replay}: {cassette} not found (record with "
                             "--record)")
        return ReplayProvider(cassette)
    configured = choice.provider or choice.model or spec.llm is not None or any(
        env.get(name) for name in LLM_ENV)
    if not configured:
        return None
    built: Provider = provider_from_settings(spec.llm, env, provider=choice.provider,
                                             model=choice.model)
    if choice.record:
        return RecordingProvider(built, state_dir / "runs" / run_id / CASSETTE)
    return built


def install_llm(runner: Runner, loaded: LoadedSpec, llm: Provider, *, hub: Any = None,
                cache: bool | None = None) -> None:
    """The run's cognitive executor (with the MCP servers' tools, when ``hub``), LLM judge
    and research phase, on ``llm``, sharing one budget; the budget's pre-flight check."""
    limits, options = runner.spec.budget, runner.options
    max_cost = options.max_cost_usd if options.max_cost_usd is not None else (
        limits.max_cost_usd if limits else None)
    max_tokens = options.max_tokens if options.max_tokens is not None else (
        limits.max_tokens if limits else None)
    use_cache = cache if cache is not None else bool(runner.spec.execution.cache)
    budget = BudgetTracker(max_cost, max_tokens)
    runner.executors["cognitive"] = make_llm_executor(
        llm, spec=runner.spec, loaded=loaded, state_getter=lambda: runner.state,
        emit=runner.emit, mcp=hub, budget=budget, state_dir=options.state_dir,
        cache=ResponseCache(cache_dir(options.state_dir)) if use_cache else None)
    runner.preflight_checks.append(lambda: budget_diagnostics(loaded, llm.model, max_cost))
    runner.judge = LlmJudge(llm, runner.spec, emit=runner.emit, budget=budget)
    locks: dict[str, asyncio.Lock] = {}

    async def research(task: Any) -> None:
        await research_once(runner, task, locks)

    runner.research = research


def projections(loaded: LoadedSpec) -> list[Subscriber]:
    """The files a run keeps up to date beside the spec: progress_X.json, and notepad_X.md
    when ``[knowledge_capture]`` is on."""
    spec = loaded.require()
    spec_files = {"spec": loaded.markdown_path.name if loaded.markdown_path else None,
                  "parameters": loaded.parameters_path.name if loaded.parameters_path else None,
                  "parameters_sha256": loaded.parameters_sha256}
    found: list[Subscriber] = [ProgressWriter(spec, loaded.progress_path, spec_files=spec_files)]
    if spec.knowledge_capture.enabled:
        found.append(NotepadWriter(spec, loaded.notepad_path, descriptor=loaded.descriptor))
    return found


def mcp_hub(loaded: LoadedSpec) -> mcp.McpHub | None:
    """The MCP servers the spec names, not started yet (None when it names none). A bad
    definition file raises :class:`~specs.llm.mcp.McpConfigError`."""
    named = loaded.require().mcp_tools
    if named is None or not [*named.required, *named.recommended, *named.optional]:
        return None
    return mcp.McpHub.for_spec(loaded)


def assemble(loaded: LoadedSpec, options: RunOptions, *, llm: Provider | None,
             hub: mcp.McpHub | None, cache: bool | None, human: Human | None,
             subscribers: list[Subscriber], backend: Any = None, wait: bool = False) -> Runner:
    """The runner of one run (or resume), with everything wired; see the module docstring.
    Gates are answered by ``human`` raced with the run's inbox (answers from ``specs
    approve``/``reject`` and the dashboard); with ``wait`` and no ``human``, by the inbox
    alone (else a gate pauses the run)."""
    runner = Runner(loaded, options, subscribers=subscribers,
                    executors=backend.executors() if backend is not None else None)
    inner = None if options.no_input else human  # no_input: nobody is asked at a terminal
    if inner is not None or wait:
        runner.human = InboxHuman(lambda: runner.run_dir, inner)
    if llm is not None:
        install_llm(runner, loaded, llm, hub=hub, cache=cache)
    return runner


def services(runner: Runner, llm: Provider | None, hub: mcp.McpHub | None, start: Start, *,
             warn: Callable[[str], None], backend: Any = None) -> Start:
    """``start`` with the MCP servers started and checked (rule 1.11: a required one that
    is missing raises :class:`~specs.llm.mcp.McpUnavailable`), the provider checked, and the
    backend open, before the run; all of them closed after it (also when cancelled)."""
    spec_mcp = runner.spec.mcp_tools

    async def go() -> RunResult:
        try:
            if hub is not None and spec_mcp is not None:
                checked = await mcp.verify(spec_mcp, hub)
                if checked.fatal:
                    raise mcp.McpUnavailable(checked.fatal)
                for warning in checked.warnings:
                    warn(warning)
                runner.preflight_events.append(ev.McpToolsVerified(
                    record=checked.record, warnings=checked.warnings))
            if llm is not None:
                await llm.check()
            return await backends.run_with(backend, start)
        finally:
            if hub is not None:
                await hub.aclose()
            if llm is not None:
                await llm.aclose()

    return go
