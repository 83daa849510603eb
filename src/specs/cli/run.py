"""The run commands of the CLI: run, resume, approve, reject, runs, show-run.

Registered on :data:`specs.cli.common.app`; see that module for the exit codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from specs import backends
from specs import events as ev
from specs.api.runs import answer_gate, find_run, read_run, run_dirs, state_dir, summarize
from specs.cli.common import EXIT_INVALID, EXIT_USAGE, _err, _render, app
from specs.diagnostics import Severity
from specs.engine.checks import checks_of
from specs.engine.human import TerminalHuman
from specs.engine.runner import Runner, RunOptions, RunResult, file_sha256, new_run_id
from specs.engine.state import RunState
from specs.errors import ProviderError, UsageError
from specs.spec.load import LoadedSpec, load_spec
from specs.spec.model import MODES

StateDir = Annotated[Path | None, typer.Option(
    "--state-dir", help="Where runs are kept (default: $SPECS_STATE_DIR or ./.specs).")]
Json = Annotated[bool, typer.Option("--json", help="Events as JSON lines on stdout.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Approve approval gates automatically.")]
NoInput = Annotated[bool, typer.Option(
    "--no-input", help="Never prompt: pause at gates (exit code 3) instead.")]
Backend = Annotated[str | None, typer.Option(
    "--backend", metavar="local|dask", help="Where step attempts run: local (this process, the "
    "default) or dask (a Dask cluster; docs/distributed.md).")]
Scheduler = Annotated[str | None, typer.Option(
    "--scheduler", metavar="ADDR", help="The Dask scheduler, e.g. tcp://HOST:8786 (implies "
    "--backend dask); without it --backend dask starts a local cluster.")]


ProviderOpt = Annotated[str | None, typer.Option(
    "--provider", metavar="openai|anthropic", help="The LLM provider of cognitive steps "
    "(openai: any OpenAI-compatible server, see OPENAI_BASE_URL).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="The LLM model name.")]
RecordOpt = Annotated[bool, typer.Option(
    "--record", help="Store every LLM exchange in the run folder (exchanges.jsonl).")]
ReplayOpt = Annotated[str | None, typer.Option(
    "--replay", metavar="RUN", help="Answer LLM calls from that run's recorded exchanges "
    "(no network).")]

MaxCostOpt = Annotated[float | None, typer.Option(
    "--max-cost", min=0, metavar="USD", help="Stop the run (halted, resumable) before an LLM "
    "call would take its cost past USD (overrides [budget] max_cost_usd).")]
MaxTokensOpt = Annotated[int | None, typer.Option(
    "--max-tokens", min=0, metavar="N", help="Stop the run before an LLM call would take its "
    "tokens past N (overrides [budget] max_tokens).")]
CacheOpt = Annotated[bool | None, typer.Option(
    "--cache/--no-cache", help="Reuse cognitive steps' answers when prompt, model and inputs "
    "are unchanged (overrides [execution] cache; docs/providers.md).", show_default=False)]

LLM_ENV = ("SPECS_LLM_PROVIDER", "SPECS_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY",
           "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")
CASSETTE = "exchanges.jsonl"


def _has_cognitive(loaded: LoadedSpec) -> bool:
    """True when the run may call an LLM: a cognitive step or backup, an LLM judge
    (``verify_with = "llm"``) or a task's research phase (``research_enabled``)."""
    spec = loaded.require()
    if any(task.research_enabled for task in spec.tasks):
        return True
    for _task, step in spec.steps():
        for action in [step, *step.backups]:
            method = action.effective_method
            if method == "cognitive" or (method in ("tool", "script") and not action.tool_path):
                return True
            if action.verify_with == "llm":
                return True
    return False


def _provider(loaded: LoadedSpec, states: Path, run_id: str, *, provider: str | None,
              model: str | None, record: bool, replay: str | None) -> Any:
    """The LLM provider of the run, or None (no cognitive step, LLM judge or research phase,
    or nothing configured: the pre-flight then reports E-NO-PROVIDER, a research phase warns).
    Configuration errors raise ProviderError."""
    from specs.llm.providers import RecordingProvider, ReplayProvider, provider_from_settings

    spec = loaded.require()
    if not _has_cognitive(loaded):
        return None
    if replay:
        cassette = find_run(states, replay) / CASSETTE
        if not cassette.is_file():
            raise UsageError(f"--replay {replay}: {cassette} not found (record with --record)")
        return ReplayProvider(cassette)
    configured = provider or model or spec.llm is not None or any(
        os.environ.get(name) for name in LLM_ENV)
    if not configured:
        return None
    built = provider_from_settings(spec.llm, os.environ, provider=provider, model=model)
    if record:
        return RecordingProvider(built, states / "runs" / run_id / CASSETTE)
    return built


def _with_provider(runner: Runner, loaded: LoadedSpec, llm: Any,
                   start: Callable[[], Coroutine[Any, Any, RunResult]], *,
                   cache: bool | None = None) -> Callable[[], Coroutine[Any, Any, RunResult]]:
    """``start`` with the MCP servers of ``[mcp_tools]`` started and checked (rule 1.11) and
    the provider checked before the run, and all of them closed after it (also on Ctrl-C);
    the run's budget (``[budget]``, ``--max-cost``, ``--max-tokens``) and cache (``--cache``)."""
    from specs.llm import mcp as mcp_tools

    spec_mcp = runner.spec.mcp_tools
    named = [*spec_mcp.required, *spec_mcp.recommended, *spec_mcp.optional] if spec_mcp else []
    hub = mcp_tools.McpHub.for_spec(loaded) if named else None  # a bad file: one line, exit 2
    if llm is None and hub is None:
        return start
    if llm is not None:
        _install_llm(runner, loaded, llm, mcp=hub, cache=cache)

    async def go() -> RunResult:
        try:
            if hub is not None and spec_mcp is not None:
                checked = await mcp_tools.verify(spec_mcp, hub)
                if checked.fatal:
                    raise mcp_tools.McpUnavailable(checked.fatal)
                for warning in checked.warnings:
                    _err().print(f"specs: warning: {warning}", markup=False)
                runner.preflight_events.append(ev.McpToolsVerified(
                    record=checked.record, warnings=checked.warnings))
            if llm is not None:
                await llm.check()
            return await start()
        finally:
            if hub is not None:
                await hub.aclose()
            if llm is not None:
                await llm.aclose()

    return go


def _install_llm(runner: Runner, loaded: LoadedSpec, llm: Any, mcp: Any = None,
                 cache: bool | None = None) -> None:
    """The run's cognitive executor (with the MCP servers' tools, when ``mcp``) and LLM
    judge, on ``llm``."""
    from specs.llm.agent import make_llm_executor
    from specs.llm.budget import BudgetTracker, budget_diagnostics
    from specs.llm.cache import ResponseCache, cache_dir
    from specs.llm.judge import LlmJudge
    from specs.llm.research import research_once

    limits, options = runner.spec.budget, runner.options
    max_cost = options.max_cost_usd if options.max_cost_usd is not None else (
        limits.max_cost_usd if limits else None)
    max_tokens = options.max_tokens if options.max_tokens is not None else (
        limits.max_tokens if limits else None)
    use_cache = cache if cache is not None else bool(runner.spec.execution.cache)
    budget = BudgetTracker(max_cost, max_tokens)  # one for the agent loop and the judge
    runner.executors["cognitive"] = make_llm_executor(
        llm, spec=runner.spec, loaded=loaded, state_getter=lambda: runner.state,
        emit=runner.emit, mcp=mcp, budget=budget,
        cache=ResponseCache(cache_dir(options.state_dir)) if use_cache else None)
    runner.preflight_checks.append(lambda: budget_diagnostics(loaded, llm.model, max_cost))
    runner.judge = LlmJudge(llm, runner.spec, emit=runner.emit, budget=budget)
    locks: dict[str, asyncio.Lock] = {}
    runner.research = lambda task: research_once(runner, task, locks)


def _parse_vars(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--var {item!r} is not name=value")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _subscribers(loaded: LoadedSpec, as_json: bool) -> tuple[list[Any], Any]:
    from specs.record.console import make_view
    from specs.record.notepad import NotepadWriter
    from specs.record.progress import ProgressWriter

    assert loaded.spec is not None
    spec_files = {"spec": loaded.markdown_path.name if loaded.markdown_path else None,
                  "parameters": loaded.parameters_path.name if loaded.parameters_path else None,
                  "parameters_sha256": loaded.parameters_sha256}
    progress = ProgressWriter(loaded.spec, loaded.progress_path, spec_files=spec_files)
    notepad = NotepadWriter(loaded.spec, loaded.notepad_path, descriptor=loaded.descriptor)
    console = Console(stderr=True, highlight=False)
    views = make_view(console, json_stream=sys.stdout if as_json else None,
                      goal=loaded.spec.goal.description)
    subscribers: list[Any] = [progress]
    if loaded.spec.knowledge_capture.enabled:
        subscribers.append(notepad)
    return subscribers + list(views), views


def _execute(runner: Runner, views: list[Any],
             coro: Coroutine[Any, Any, RunResult]) -> RunResult:
    # One run per process: the modules, the loaded spec and the runner live until exit.
    # Freezing them keeps the cyclic garbage collector from rescanning them during the run
    # (a full collection over a big spec's objects takes tens of milliseconds).
    gc.freeze()
    for view in views:
        getattr(view, "start", lambda: None)()
    try:
        return asyncio.run(_terminable(coro))
    except (KeyboardInterrupt, asyncio.CancelledError):
        run_id = runner.state.run_id
        _err().print("specs: interrupted" + (f"; continue with `specs resume {run_id}`"
                                              if run_id else ""), markup=False)
        raise typer.Exit(130) from None
    finally:
        for view in views:
            getattr(view, "stop", lambda: None)()


async def _terminable(coro: Coroutine[Any, Any, RunResult]) -> RunResult:
    """Await ``coro``; SIGTERM cancels it as Ctrl-C does (the attempt's process group is
    killed and the run ends ``halted``, resumable), instead of killing the engine outright."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed = False
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            installed = True
    try:
        return await coro
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def _human(no_input: bool, views: list[Any]) -> TerminalHuman | None:
    """Ask at the terminal unless --no-input or stdin is not a terminal; the live view (if
    any) pauses while the question is on screen."""
    if no_input or not sys.stdin.isatty():
        return None
    live = next((v for v in views if hasattr(v, "pause") and hasattr(v, "resume")), None)
    return TerminalHuman(before_prompt=live)


def _spent(state: RunState) -> str:
    """``, 3 LLM calls, 1,234 tokens, $0.0012`` (empty when the run made no LLM call)."""
    from specs.llm.budget import format_cost

    usage = state.llm_usage
    parts = []
    if usage["calls"]:
        calls = usage["calls"]
        parts.append(f"{calls} LLM call{'s' if calls != 1 else ''}, "
                     f"{usage['total_tokens']:,} tokens")
        if usage["calls"] > usage["unpriced_calls"]:
            parts.append(format_cost(usage["cost_usd"])
                         + (" (some calls of unknown price)" if usage["unpriced_calls"] else ""))
        else:
            parts.append("cost unknown")
    if usage["cached_attempts"]:
        parts.append(f"{usage['cached_attempts']} attempts from the cache")
    return "".join(f", {p}" for p in parts)


def _report(result: RunResult) -> None:
    status, goal = result.status, result.goal
    if result.exit_code == 3:
        gate = result.state.paused.gate if result.state.paused else None
        _err().print(f"specs: run {result.run_id} is waiting for a human decision ({gate}); "
                     f"answer with `specs approve {result.run_id}` or `specs reject "
                     f"{result.run_id}`, then `specs resume {result.run_id}`", markup=False)
    else:
        reason = result.state.end.reason if result.state.end else ""
        _err().print(f"specs: run {result.run_id} {status}"
                     + (f", goal {goal}" if goal else "") + _spent(result.state)
                     + (f" ({reason})" if reason else ""), markup=False)


@app.command("run")
def run_cmd(
    path: Annotated[Path, typer.Argument(help="A spec folder or parameters file.")],
    mode: Annotated[str | None, typer.Option(
        "--mode", help=f"Run mode: {', '.join(MODES)} (default: the spec's).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Quality rules are errors.")] = False,
    yes: Yes = False,
    no_input: NoInput = False,
    var: Annotated[list[str] | None, typer.Option(
        "--var", help="A variable for conditions and steps: name=value (repeatable).")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Name the run.")] = None,
    state: StateDir = None,
    as_json: Json = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check the spec and print what would run, in order; run nothing.")]
    = False,
    prompts: Annotated[bool, typer.Option(
        "--prompts", help="With --dry-run: also print each cognitive step's prompt (its "
        "first attempt, before anything ran).")] = False,
    parallel: Annotated[bool, typer.Option(
        "--parallel", help="Run ready steps at once (as [execution] parallel_enabled).")]
    = False,
    sequential: Annotated[bool, typer.Option(
        "--sequential", help="Run strictly in id order, one step at a time.")] = False,
    max_parallel: Annotated[int | None, typer.Option(
        "--max-parallel", min=1, help="At most N steps at once (parallel runs).")] = None,
    backend: Backend = None,
    scheduler: Scheduler = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    record: RecordOpt = False,
    replay: ReplayOpt = None,
    max_cost: MaxCostOpt = None,
    max_tokens: MaxTokensOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Execute a spec: steps, retries, backups, gates; progress_X.json and notepad_X.md.

    Exit 0 when the goal is ACHIEVED, 1 when the run ends otherwise (or the spec is invalid),
    2 when the LLM provider or a required MCP server ([mcp_tools]) is not available, 3 when it
    waits for a human, 130 when interrupted (resumable).
    """
    if mode is not None and mode not in MODES:
        raise UsageError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    loaded = load_spec(path)
    if loaded.spec is None:
        for d in loaded.diagnostics:
            if d.severity is Severity.ERROR:
                _err().print(_render(d), markup=False)
        raise typer.Exit(EXIT_INVALID)
    if parallel and sequential:
        raise UsageError("--parallel and --sequential exclude each other")
    if record and replay:
        raise UsageError("--record and --replay exclude each other")
    if prompts and not dry_run:
        raise UsageError("--prompts goes with --dry-run (for one step: `specs prompt PATH "
                         "STEP`)")
    if record and not dry_run:
        run_id = run_id or new_run_id(time.time())
    options = RunOptions(state_dir=state_dir(state), run_id=run_id, mode=mode, yes=yes,
                         no_input=no_input, strict=strict, vars=_parse_vars(var or []),
                         parallel=parallel or None, sequential=sequential,
                         max_parallel=max_parallel, max_cost_usd=max_cost,
                         max_tokens=max_tokens)
    llm = _llm_or_exit(loaded, options.state_dir, run_id or "", provider, model,
                       record and not dry_run, replay)
    if dry_run:
        raise typer.Exit(_dry_run(loaded, options, as_json, llm, prompts))
    remote = backends.select(backend, scheduler)  # an unreachable scheduler stops us here
    subscribers, views = _subscribers(loaded, as_json)
    runner = Runner(loaded, options, human=_human(no_input, views), subscribers=subscribers,
                    executors=remote.executors() if remote else None)
    result = _execute_checked(runner, views, backends.run_with(
        remote, _with_provider(runner, loaded, llm, runner.start, cache=cache)))
    if result.status == "halted_validation":
        for line in (result.state.validation.errors if result.state.validation else []):
            _err().print(line, markup=False)
    _report(result)
    raise typer.Exit(result.exit_code)


def _llm_or_exit(loaded: LoadedSpec, states: Path, run_id: str, provider: str | None,
                 model: str | None, record: bool, replay: str | None) -> Any:
    try:
        return _provider(loaded, states, run_id, provider=provider, model=model,
                         record=record, replay=replay)
    except ProviderError as exc:
        _err().print(f"specs: error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None


def _execute_checked(runner: Runner, views: list[Any],
                     coro: Coroutine[Any, Any, RunResult]) -> RunResult:
    """:func:`_execute`; a provider that fails its pre-flight check is one line, exit 2."""
    try:
        return _execute(runner, views, coro)
    except ProviderError as exc:
        _err().print(f"specs: error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None


def _dry_run(loaded: LoadedSpec, options: RunOptions, as_json: bool, llm: Any,
             prompts: bool) -> int:
    """Pre-flight, then the plan: each step in order with its method ladder, checks and gate;
    the LLM that would be used (resolved, not contacted); with ``prompts``, each cognitive
    step's first prompt."""
    from specs.engine import policy

    runner = Runner(loaded, options)
    if llm is not None:
        _install_llm(runner, loaded, llm)
        asyncio.run(llm.aclose())  # resolved only: nothing was sent
    found = runner.preflight()
    errors = [d for d in found if d.severity is Severity.ERROR]
    spec = runner.spec
    mode = options.mode or spec.execution.default_mode
    strategy = spec.error_propagation.propagation_strategy or policy.default_strategy(mode)
    judge_model = (spec.llm.judge_model if spec.llm else None) or getattr(llm, "model", None)
    about_llm = None if llm is None else {
        "provider": getattr(llm, "name", None), "model": getattr(llm, "model", None),
        "judge_model": judge_model}
    plan: list[dict[str, Any]] = []
    for task in spec.tasks:
        for step in sorted(task.steps, key=lambda s: s.id):
            rungs = policy.ladder(step)
            item: dict[str, Any] = {
                "step": f"{task.ref}.{step.id}", "description": step.description,
                "critical": step.critical_flag, "gate": policy.gate_kind(step, mode, spec),
                "research": task.research_enabled and step is min(
                    task.steps, key=lambda s: s.id),
                "ladder": [{"method": r.label, "attempts": r.tries,
                            "action": r.action.effective_method,
                            "run": r.action.command or r.action.callable or r.action.tool_path
                            or r.description,
                            "checks": _checks(checks_of(r.action, step))} for r in rungs]}
            if prompts:
                item["prompt"] = _first_prompt(loaded, task, step, rungs[0], runner)
            plan.append(item)
    if as_json:
        typer.echo(json.dumps({"mode": mode, "strategy": strategy, "valid": not errors,
                               "llm": about_llm,
                               "diagnostics": [d.to_dict() for d in found], "plan": plan},
                              indent=2))
        return EXIT_INVALID if errors else 0
    for d in errors:
        _err().print(_render(d), markup=False)
    typer.echo(f"mode {mode}, strategy {strategy}, {len(plan)} steps (dry run: nothing runs)")
    if about_llm is not None:
        typer.echo(f"llm {about_llm['provider']} {about_llm['model']}"
                   + (f", judge {judge_model}" if judge_model != about_llm["model"] else ""))
    for item in plan:
        if item["research"]:
            ref = item["step"].rpartition(".")[0]
            task = runner.task_by_ref[ref]
            sources = ", ".join(task.research_sources or ("web_search", "documentation"))
            typer.echo(f"  task {ref}: research phase before its first step ({sources})")
        gate = f"  [gate: {item['gate']}]" if item["gate"] else ""
        typer.echo(f"{item['step']:>6} {'●' if item['critical'] else '○'} "
                   f"{item['description']}{gate}")
        for rung in item["ladder"]:
            typer.echo(f"         {rung['method']} ×{rung['attempts']} "
                       f"({rung['action']}): {rung['run']}")
            if rung["checks"]:
                typer.echo(f"           checks: {'; '.join(rung['checks'])}")
        if item.get("prompt") is not None:
            from specs.cli.prompt import render_text
            from specs.llm.prompt import Prompt

            typer.echo(f"--- prompt of step {item['step']} (primary, first attempt) ---")
            typer.echo(render_text(Prompt(item["prompt"]["system"], item["prompt"]["user"])))
            typer.echo(f"--- end of the prompt of step {item['step']} ---")
    return EXIT_INVALID if errors else 0


def _checks(action: Any) -> list[str]:
    """The expected-output checks of a method, one phrase each."""
    found = [f"expected_files {', '.join(action.expected_files)}"] \
        if action.expected_files else []
    found += [f"verify `{c}`" for c in action.verify or []]
    if action.output_schema is not None:
        found.append("output_schema")
    if action.verify_with == "llm":
        found.append("LLM judge")
    return found


def _first_prompt(loaded: LoadedSpec, task: Any, step: Any, rung: Any,
                  runner: Runner) -> dict[str, Any] | None:
    """The prompt of the step's first attempt, before anything ran (cognitive steps only)."""
    from specs.llm.prompt import build_prompt, guardrails_of
    from specs.spec.compose import task_folder

    method = rung.action.effective_method
    if not (method == "cognitive" or (method in ("tool", "script")
                                      and not rung.action.tool_path)):
        return None
    prompt = build_prompt(runner.spec, task, step, method=rung,
                          guardrails=guardrails_of(loaded.project),
                          spec_folder=task_folder(loaded, task))
    return prompt.to_dict()


@app.command("resume")
def resume_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    decision: Annotated[str | None, typer.Option(
        "--decision", help="Answer the pending gate: approve, skip, retry, accept_failure, "
        "abort, guidance:TEXT, choose:METHOD, switch_mode:MODE.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Resume even though the spec changed since the run started.")] = False,
    yes: Yes = False,
    no_input: NoInput = False,
    state: StateDir = None,
    as_json: Json = False,
    backend: Backend = None,
    scheduler: Scheduler = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    record: RecordOpt = False,
    max_cost: MaxCostOpt = None,
    max_tokens: MaxTokensOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Continue a paused, halted, interrupted or crashed run from its events.

    A run that has ended is not continued (exit 2); its progress file and notepad are
    rewritten from its events, in case a crash stopped them just before the end. A run halted
    by its budget continues after the budget was raised: in the spec's [budget] (no --force
    needed when that is all that changed) or with --max-cost / --max-tokens.
    """
    run_dir = find_run(state_dir(state), run)
    events = read_run(run_dir)
    opened = next((e for e in events if isinstance(e, ev.RunOpened)), None)
    if opened is None:
        raise UsageError(f"run {run_dir.name} has no run-opened event; it cannot be resumed")
    parameters = opened.spec.get("parameters")
    if not parameters or not Path(parameters).is_file():
        raise UsageError(f"the spec of run {run_dir.name} is gone ({parameters})")
    loaded = load_spec(Path(parameters))
    if loaded.spec is None:
        for d in loaded.diagnostics:
            _err().print(_render(d), markup=False)
        raise typer.Exit(EXIT_INVALID)
    changed = [name for name, key, path in (
        ("parameters", "parameters_sha256", loaded.parameters_path),
        ("markdown", "markdown_sha256", loaded.markdown_path))
        if opened.spec.get(key) and file_sha256(path) != opened.spec.get(key)]
    if changed == ["parameters"] and not force and _only_budget_changed(opened, loaded):
        _err().print(f"specs: only [budget] changed in {loaded.parameters_path}; resuming "
                     "with the new budget", markup=False)
        changed = []
    if changed and not force:
        raise UsageError(f"the spec changed since run {run_dir.name} started "
                         f"({', '.join(changed)}); use --force to resume anyway")
    recorded = _recorded_budget(events)
    options = RunOptions(state_dir=state_dir(state), run_id=opened.run_id,
                         mode=opened.options.get("mode"), yes=yes, no_input=no_input,
                         strict=bool(opened.options.get("strict")),
                         vars=dict(opened.options.get("vars") or {}), force=force,
                         decision=decision,
                         max_cost_usd=max_cost if max_cost is not None else
                         recorded.get("max_cost_usd"),
                         max_tokens=max_tokens if max_tokens is not None else
                         recorded.get("max_tokens"))
    llm = _llm_or_exit(loaded, options.state_dir, opened.run_id, provider, model, record,
                       None)
    remote = backends.select(backend, scheduler)
    subscribers, views = _subscribers(loaded, as_json)
    runner = Runner(loaded, options, human=_human(no_input, views), subscribers=subscribers,
                    executors=remote.executors() if remote else None)
    try:
        result = _execute_checked(runner, views, backends.run_with(
            remote, _with_provider(runner, loaded, llm, lambda: runner.resume(run_dir, events),
                                   cache=cache)))
    except UsageError:
        if runner.state.end is not None:  # ended: bring the projections up to date
            for writer in subscribers:
                if writer not in views:
                    writer.flush(runner.state)
        raise
    _report(result)
    raise typer.Exit(result.exit_code)


def _only_budget_changed(opened: ev.RunOpened, loaded: LoadedSpec) -> bool:
    """The parameters file differs from the run's only in ``[budget]``."""
    from specs.spec.fingerprint import spec_fingerprint

    recorded = opened.spec.get("fingerprint_without_budget")
    return bool(recorded) and loaded.spec is not None and \
        spec_fingerprint(loaded.spec) == recorded


def _recorded_budget(events: list[ev.Event]) -> dict[str, Any]:
    """The --max-cost / --max-tokens the run was last started or resumed with."""
    found: dict[str, Any] = {}
    for event in events:
        if isinstance(event, ev.RunOpened | ev.RunResumed):
            found.update({k: v for k, v in event.options.items()
                          if k in ("max_cost_usd", "max_tokens")})
    return found


def _answer(run: str, step: str | None, response: str, state: Path | None) -> None:
    run_dir = find_run(state_dir(state), run)
    answer = answer_gate(run_dir, step, response)
    typer.echo(f"{run_dir.name}: {answer.gate} answered '{answer.response}'; continue with "
               f"`specs resume {run_dir.name}`")


@app.command("approve")
def approve_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    step: Annotated[str | None, typer.Argument(help="The step ref, e.g. 2.1.")] = None,
    guidance: Annotated[str | None, typer.Option(
        "--guidance", help="Approve with guidance added to the step's context.")] = None,
    state: StateDir = None,
) -> None:
    """Approve a paused run's pending decision (optionally with guidance)."""
    _answer(run, step, f"guidance:{guidance}" if guidance else "approve", state)


@app.command("reject")
def reject_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    step: Annotated[str | None, typer.Argument(help="The step ref, e.g. 2.1.")] = None,
    state: StateDir = None,
) -> None:
    """Reject a pending decision: skip the step before it runs; abort after a failure."""
    _answer(run, step, "reject", state)


@app.command("runs")
def runs_cmd(
    state: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """List the runs in the state folder, newest last."""
    rows = [summarize(read_run(d), d.name) for d in run_dirs(state_dir(state))]
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    from specs.llm.budget import format_cost

    table = Table("run", "spec", "status", "goal", "steps", "started", "tokens", "cost",
                  "waiting for")
    for r in rows:
        table.add_row(r.run_id, r.descriptor, r.status, r.goal or "",
                      f"{r.steps_done}/{r.steps_total}", r.started,
                      f"{r.tokens:,}" if r.llm_calls else "",
                      format_cost(r.cost_usd) if r.cost_usd is not None else "",
                      r.pending_gate or "")
    Console(highlight=False).print(table)


@app.command("show-run")
def show_run_cmd(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'last').")],
    state: StateDir = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the run's progress document as JSON.")] = False,
) -> None:
    """One run: its steps, attempts and decisions, rebuilt from its events."""
    from specs.record.progress import progress_document

    run_dir = find_run(state_dir(state), run)
    events = read_run(run_dir)
    opened = next((e for e in events if isinstance(e, ev.RunOpened)), None)
    parameters = opened.spec.get("parameters") if opened else None
    loaded = load_spec(Path(parameters)) if parameters and Path(parameters).is_file() else None
    if loaded is None or loaded.spec is None:
        summary = summarize(events, run_dir.name)
        typer.echo(json.dumps(summary.__dict__, indent=2) if as_json else
                   f"{summary.run_id}: {summary.status} (the spec is no longer readable)")
        raise typer.Exit(0 if loaded is None else EXIT_USAGE)
    run_state = RunState(loaded.spec)
    for event in events:
        run_state.apply(event)
    document = progress_document(loaded.spec, run_state)
    if as_json:
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    console = Console(highlight=False)
    console.print(f"[bold]{run_state.run_id}[/bold] {run_state.descriptor}: {run_state.status}"
                  + (f", goal {document.get('goal_achievement_status')}"
                     if document.get("goal_achievement_status") else ""))
    if run_state.llm_usage["calls"] or run_state.llm_usage["cached_attempts"]:
        console.print("LLM:" + _spent(run_state).removeprefix(","), markup=False)
    for task in document.get("tasks", []):
        console.print(f"Task {task.get('ref')} {task.get('description')}: {task.get('status')}",
                      markup=False)
        for step in task.get("steps", []):
            console.print(f"  {step.get('ref')} {step.get('status'):<9} "
                          f"{step.get('method_used') or '':<12} "
                          f"{len(step.get('attempts') or [])} attempts  "
                          f"{step.get('description')}", markup=False)
            for attempt in step.get("attempts") or []:
                if attempt.get("outcome") != "success":
                    console.print(f"      {attempt.get('method')} #{attempt.get('attempt')}: "
                                  f"{attempt.get('outcome')}: {attempt.get('failure_reason')}",
                                  markup=False, style="dim")
