"""The research phase of a task with ``research_enabled`` (reference §3.10 R-RES).

Before the task's first step runs, one agent call (the cognitive executor's agent loop,
:meth:`specs.llm.agent.LlmExecutor.converse`) is asked to identify the knowledge gaps the
task's steps leave open, consult the task's ``research_sources`` through the tools the run
offers (every tool of a step's agent except those that change the workspace: the built-in
``read_file`` and ``list_files``, and any other tool the executor offers, such as search
servers), and answer with :data:`RESEARCH_SCHEMA`:

``{"queries": [...], "sources": [...], "key_findings": [...], "confidence": "low|medium|high"}``

The phase is recorded as ``research-started`` and ``research-ended`` events (the findings, the
time, the model calls, tool calls, tokens and cost: ``research_phase`` and ``research_cost`` in
the progress file). The findings go into the prompt of every step of the task
(:func:`specs.llm.prompt.build_prompt` reads them from the run state). A ``research-ended`` event
is never redone: a resumed run, a re-run step and a ``[[transitions]]`` loop reuse it; a crash
during the phase (started, not ended) runs it again.

The phase is bounded in time by :func:`research_timeout` (the longest ``timeout_seconds`` of
the task's steps, else 10 minutes), as an attempt is by its own.

With no LLM provider, or no tool to research with, the phase is ``skipped``; an answer that is
not the findings object, a provider error or the timeout makes it ``failed``. Either way the
event carries a ``warning`` and the task goes on without findings.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from specs import events as ev
from specs.engine.checks import schema_error
from specs.llm.agent import MUTATING_TOOLS, LlmExecutor
from specs.llm.providers.base import Message
from specs.spec.compose import task_workspace
from specs.spec.model import Spec, Task

if TYPE_CHECKING:
    from specs.engine.runner import Runner

__all__ = ["DEFAULT_SOURCES", "DEFAULT_TIMEOUT_S", "RESEARCH_SCHEMA", "research_messages",
           "research_once", "research_timeout"]

#: How long a research phase may take when no step of its task has a ``timeout_seconds``.
DEFAULT_TIMEOUT_S = 600.0
#: ``research_sources`` when a task names none (reference §2.2).
DEFAULT_SOURCES: tuple[str, ...] = ("web_search", "documentation")

_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
RESEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "queries": _STRINGS,
        "sources": _STRINGS,
        "key_findings": _STRINGS,
        "confidence": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    "required": ["queries", "sources", "key_findings", "confidence"],
    "additionalProperties": False,
}

RESEARCH_SYSTEM = (
    "You are the researcher of a SPEC Engine run. Before the steps of one task are carried "
    "out, you find what they need to know. You do not carry out the steps and you change "
    "nothing: your tools only read.\n"
    "1. Identify the knowledge gaps: what the steps below need to know that is not stated.\n"
    "2. Consult the research sources listed, through the tools you have. A source that no tool "
    "of yours reaches cannot be consulted: do not pretend it was; say so in a finding and "
    "lower your confidence.\n"
    "3. Synthesise: specific, checkable findings that the steps can use.\n"
    "Answer with one JSON object and nothing else: {\"queries\": [the questions or searches "
    "you made], \"sources\": [what you actually consulted: tool calls, files, pages], "
    "\"key_findings\": [one finding per item], \"confidence\": \"low\" | \"medium\" | "
    "\"high\"}.")


def research_messages(spec: Spec, task: Task, sources: list[str],
                      tools: list[str]) -> list[Message]:
    """The research agent's prompt (deterministic)."""
    steps = "\n".join(
        f"- step {task.ref}.{s.id}: {' '.join(s.description.split()) or '(no description)'}"
        + (f" (expected output: {' '.join(s.expected_output.split())})"
           if s.expected_output else "")
        for s in sorted(task.steps, key=lambda s: s.id))
    user = "\n\n".join([
        f"## Goal\n{spec.goal.description.strip() or '(the spec states no goal)'}",
        f"## Task {task.ref}\n{task.description.strip() or '(no description)'}",
        f"## Its steps\n{steps or '(none)'}",
        "## Research sources\n" + "\n".join(f"- {s}" for s in sources),
        "## Your tools\n" + ", ".join(tools),
        "Research now, then give the JSON object."])
    return [Message("system", RESEARCH_SYSTEM), Message("user", user)]


async def research_once(runner: Runner, task: Task, locks: dict[str, asyncio.Lock]) -> None:
    """Run the task's research phase unless the run has recorded it (``locks``: one per
    task, so parallel steps of the task wait for one phase)."""
    if task.ref in runner.state.research:
        return
    lock = locks.setdefault(task.ref, asyncio.Lock())
    async with lock:
        if task.ref in runner.state.research:
            return
        runner.emit(await _research(runner, task))
        runner.journal.flush()  # a resume must find it: the phase is not paid for twice


async def _research(runner: Runner, task: Task) -> ev.ResearchEnded:
    sources = [s for s in (task.research_sources or DEFAULT_SOURCES) if str(s).strip()]
    agent = runner.executors.get("cognitive")
    if not isinstance(agent, LlmExecutor):
        return ev.ResearchEnded(
            task=task.ref, status="skipped",
            warning=f"task {task.ref} has research_enabled and no LLM provider is configured: "
                    "it runs without research findings (configure one with --provider, [llm] "
                    "or OPENAI_BASE_URL)")
    tools = [name for name in agent.tool_names if name not in MUTATING_TOOLS]
    if not tools:
        return ev.ResearchEnded(
            task=task.ref, status="skipped",
            warning=f"task {task.ref} has research_enabled and no tool is available to "
                    "research with: it runs without research findings")
    runner.emit(ev.ResearchStarted(task=task.ref, sources=sources, tools=tools))
    runner.journal.flush()
    began = time.perf_counter()
    try:
        workspace = agent.workspace(task_workspace(runner.loaded, task))
    except (OSError, ValueError) as exc:
        return ev.ResearchEnded(task=task.ref, status="failed",
                                warning=f"task {task.ref} research failed: workspace: {exc}")
    talk = await agent.converse(research_messages(runner.spec, task, sources, tools),
                                RESEARCH_SCHEMA, workspace,
                                lambda name: name not in MUTATING_TOOLS,
                                (task.ref, "research", 1), research_timeout(task))
    outcome = talk.outcome
    ended = ev.ResearchEnded(task=task.ref, status="done",
                             time_seconds=round(time.perf_counter() - began, 3),
                             api_calls=talk.model_calls, tool_calls=talk.tool_calls,
                             usage=outcome.usage, cost_usd=outcome.cost_usd)
    problem = outcome.failure_reason if not outcome.ok else _problem(outcome.output)
    if problem is not None:
        ended.status = "failed"
        ended.warning = (f"task {task.ref} research failed, it runs without research findings: "
                         f"{problem}")
        return ended
    found: dict[str, Any] = outcome.output
    ended.queries, ended.sources = _clean(found["queries"]), _clean(found["sources"])
    ended.key_findings, ended.confidence = _clean(found["key_findings"]), found["confidence"]
    return ended


def research_timeout(task: Task) -> float:
    """How long the phase may take: the longest ``timeout_seconds`` of the task's steps (and
    their backups), else :data:`DEFAULT_TIMEOUT_S`."""
    limits = [a.timeout_seconds for s in task.steps for a in (s, *s.backups)
              if a.timeout_seconds]
    return max(limits, default=DEFAULT_TIMEOUT_S)


def _problem(value: Any) -> str | None:
    found = schema_error(value, RESEARCH_SCHEMA)
    return f"the findings are not the object asked for: {found}"[:300] if found else None


def _clean(items: list[str]) -> list[str]:
    return [" ".join(item.split()) for item in items if item.strip()]
