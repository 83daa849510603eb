"""What a run would do, without running anything (``specs run --dry-run``).

:func:`dry_run` checks the spec as a run would (pre-flight, with the LLM the run would use:
resolved, not contacted) and lists each step in order with its gate in the run's mode, its
method ladder (each method's tries, execution method, command or description, and checks),
the research phase of its task, and with ``prompts`` each cognitive step's first prompt.
"""

from __future__ import annotations

import asyncio
from typing import Any

from specs.api.wiring import LlmChoice, install_llm, make_provider
from specs.diagnostics import Severity
from specs.engine import policy
from specs.engine.checks import checks_of
from specs.engine.runner import Runner, RunOptions
from specs.llm.prompt import build_prompt, guardrails_of
from specs.llm.research import DEFAULT_SOURCES
from specs.spec.compose import task_folder
from specs.spec.files import LoadedSpec
from specs.spec.model import Action, Step, Task

__all__ = ["dry_run", "step_prompt"]


def dry_run(loaded: LoadedSpec, options: RunOptions | None = None, *,
            llm: LlmChoice | None = None, prompts: bool = False) -> dict[str, Any]:
    """The plan of a run, as data (the JSON ``specs run --dry-run --json`` prints):
    ``mode``, ``strategy``, ``valid``, ``llm`` (provider, model, judge model, or None),
    ``diagnostics`` and ``plan`` (one item per step)."""
    options = options or RunOptions()
    provider = make_provider(loaded, options.state_dir, options.run_id or "", llm or LlmChoice())
    runner = Runner(loaded, options)
    if provider is not None:
        install_llm(runner, loaded, provider)
        asyncio.run(provider.aclose())  # resolved only: nothing was sent
    found = runner.preflight()
    spec = runner.spec
    mode = options.mode or spec.execution.default_mode
    strategy = spec.error_propagation.propagation_strategy or policy.default_strategy(mode)
    model = getattr(provider, "model", None)
    about_llm = None if provider is None else {
        "provider": getattr(provider, "name", None), "model": model,
        "judge_model": (spec.llm.judge_model if spec.llm else None) or model}
    plan: list[dict[str, Any]] = []
    for task in spec.tasks:
        first = min(task.steps, key=lambda s: s.id) if task.steps else None
        for step in sorted(task.steps, key=lambda s: s.id):
            methods = policy.ladder(step)
            item: dict[str, Any] = {
                "step": f"{task.ref}.{step.id}", "description": step.description,
                "critical": step.critical_flag, "gate": policy.gate_kind(step, mode, spec),
                "research": task.research_enabled and step is first,
                "research_sources": list(task.research_sources or DEFAULT_SOURCES),
                "ladder": [{"method": r.label, "attempts": r.tries,
                            "action": r.action.effective_method,
                            "run": r.action.command or r.action.callable or r.action.tool_path
                            or r.description,
                            "checks": check_phrases(checks_of(r.action, step))} for r in methods]}
            if prompts:
                item["prompt"] = _first_prompt(loaded, task, step, methods[0])
            plan.append(item)
    return {"mode": mode, "strategy": strategy,
            "valid": not any(d.severity is Severity.ERROR for d in found), "llm": about_llm,
            "diagnostics": [d.to_dict() for d in found], "plan": plan}


def check_phrases(action: Action) -> list[str]:
    """The expected-output checks of a method, one phrase each."""
    found = [f"expected_files {', '.join(action.expected_files)}"] \
        if action.expected_files else []
    found += [f"verify `{c}`" for c in action.verify or []]
    if action.output_schema is not None:
        found.append("output_schema")
    if action.verify_with == "llm":
        found.append("LLM judge")
    return found


def step_prompt(loaded: LoadedSpec, task: Task, step: Step,
                method: policy.Method) -> dict[str, Any]:
    """The prompt of one attempt of ``method`` of a step, before anything ran (prior steps
    "not yet run", no failure reasons or guidance): ``system``, ``user`` and its sections."""
    prompt = build_prompt(loaded.require(), task, step, method=method,
                          guardrails=guardrails_of(loaded.project),
                          spec_folder=task_folder(loaded, task))
    return prompt.to_dict()


def _first_prompt(loaded: LoadedSpec, task: Task, step: Step,
                  method: policy.Method) -> dict[str, Any] | None:
    """The prompt of the step's first attempt (cognitive steps only)."""
    if not method.action.is_cognitive:
        return None
    return step_prompt(loaded, task, step, method)
