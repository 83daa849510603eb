"""The commands that execute: ``specs run`` and ``specs resume``.

Registered on :data:`specs.cli.common.app`; see that module for the exit codes. Each parses its
options, calls the library (:mod:`specs.api`), and renders: the live view or JSON lines
(:mod:`specs.record.console`), and one closing line on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from specs.api.runs import state_dir
from specs.cli.common import EXIT_INVALID, EXIT_USAGE, _err, _render, app
from specs.cli.runs import StateDir, spent
from specs.diagnostics import Diagnostic
from specs.engine.runner import RunOptions, RunResult
from specs.errors import ProviderError, SpecLoadError, UsageError
from specs.spec.model import MODES

if TYPE_CHECKING:
    from specs.api.session import Run
    from specs.api.wiring import LlmChoice
    from specs.engine.human import TerminalHuman


Json = Annotated[bool, typer.Option("--json", help="Events as JSON lines on stdout.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Approve approval gates automatically.")]
NoInput = Annotated[bool, typer.Option(
    "--no-input", help="Never prompt: pause at gates (exit code 3) instead.")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", metavar="URL", help="The run history database (SQLAlchemy URL, e.g. "
    "postgresql://...; default: $SPECS_DATABASE_URL, else history.db in the state folder).")]
Wait = Annotated[bool, typer.Option(
    "--wait", help="At a gate, wait for an answer from `specs approve`/`reject` or the "
    "dashboard (also while a terminal asks), instead of pausing.")]
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


def _views(goal: str, as_json: bool) -> list[Any]:
    """The live view on stderr (and the JSON lines on stdout with ``--json``)."""
    from specs.record.console import make_view
    return list(make_view(Console(stderr=True, highlight=False),
                          json_stream=sys.stdout if as_json else None, goal=goal))


class _Live:
    """The live view among ``views`` (found when needed: a resume makes its views late),
    paused while a question is on screen."""

    def __init__(self, views: list[Any]) -> None:
        self.views = views

    def _call(self, name: str) -> None:
        for view in self.views:
            if hasattr(view, "pause") and hasattr(view, "resume"):
                getattr(view, name)()
                return

    def pause(self) -> None:
        self._call("pause")

    def resume(self) -> None:
        self._call("resume")


def _human(no_input: bool, views: list[Any]) -> TerminalHuman | None:
    """Ask at the terminal unless --no-input or stdin is not a terminal."""
    from specs.engine.human import TerminalHuman
    if no_input or not sys.stdin.isatty():
        return None
    return TerminalHuman(before_prompt=_Live(views))


def _fan_out(views: list[Any]) -> Callable[[Any, Any], None]:
    """One subscriber calling each of ``views`` (the list may still grow)."""

    def call(event: Any, state: Any) -> None:
        for view in views:
            view(event, state)

    return call


def _warn(text: str) -> None:
    _err().print(f"specs: warning: {text}", markup=False)


def _execute(views: list[Any], begin: Callable[[], Run]) -> RunResult:
    """Run to the end in this process: the views around it, SIGTERM handled as Ctrl-C (the
    attempt's process group is killed and the run ends ``halted``, resumable: exit 130)."""
    # One run per process: the modules, the loaded spec and the runner live until exit.
    # Freezing them keeps the cyclic garbage collector from rescanning them during the run
    # (a full collection over a big spec's objects takes tens of milliseconds).
    gc.freeze()
    started: list[Run] = []

    async def go() -> RunResult:
        run = begin()  # (the run's task starts at the first await)
        started.append(run)
        for view in views:
            getattr(view, "start", lambda: None)()
        return await _terminable(run.wait())

    try:
        return asyncio.run(go())
    except (KeyboardInterrupt, asyncio.CancelledError):
        run_id = started[0].run_id if started else ""
        _err().print("specs: interrupted" + (f"; continue with `specs resume {run_id}`"
                                              if run_id else ""), markup=False)
        raise typer.Exit(130) from None
    except ProviderError as exc:  # the provider's check before the run (exit 2)
        _err().print(f"specs: error: {exc}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        for view in views:
            getattr(view, "stop", lambda: None)()


async def _terminable(coro: Coroutine[Any, Any, RunResult]) -> RunResult:
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


def _report(result: RunResult) -> None:
    status, goal = result.status, result.goal
    if result.exit_code == 3:
        gate = result.state.paused.gate if result.state.paused else None
        _err().print(f"specs: run {result.run_id} is waiting for a human decision ({gate}); "
                     f"answer with `specs approve {result.run_id}` or `specs reject "
                     f"{result.run_id}`, then `specs resume {result.run_id}`", markup=False)
    else:
        reason = result.state.end.reason if result.state.end else ""
        stale = (f"; but {result.problem}: fix it, then `specs resume {result.run_id}` "
                 "rewrites the progress file and notepad") if result.problem else ""
        _err().print(f"specs: run {result.run_id} {status}"
                     + (f", goal {goal}" if goal else "") + spent(result.state)
                     + (f" ({reason})" if reason else "") + stale, markup=False)


def _print_errors(found: list[Diagnostic]) -> None:
    for d in found:
        _err().print(_render(d), markup=False)


@app.command("run")
def run_cmd(
    path: Annotated[Path, typer.Argument(help="A spec folder or parameters file.")],
    mode: Annotated[str | None, typer.Option(
        "--mode", help=f"Run mode: {', '.join(MODES)} (default: the spec's).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Quality rules are errors.")] = False,
    yes: Yes = False,
    no_input: NoInput = False,
    wait: Wait = False,
    database_url: DatabaseUrl = None,
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
    from specs.api.session import start_run
    from specs.api.wiring import LlmChoice
    if mode is not None and mode not in MODES:
        raise UsageError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    if parallel and sequential:
        raise UsageError("--parallel and --sequential exclude each other")
    if record and replay:
        raise UsageError("--record and --replay exclude each other")
    if prompts and not dry_run:
        raise UsageError("--prompts goes with --dry-run (for one step: `specs prompt PATH "
                         "STEP`)")
    from specs.spec.load import load_spec

    loaded = load_spec(path)
    if loaded.spec is None:
        _print_errors(loaded.errors)
        raise typer.Exit(EXIT_INVALID)
    options = RunOptions(state_dir=state_dir(state), run_id=run_id, mode=mode, yes=yes,
                         no_input=no_input, strict=strict, vars=_parse_vars(var or []),
                         parallel=parallel or None, sequential=sequential,
                         max_parallel=max_parallel, max_cost_usd=max_cost,
                         max_tokens=max_tokens)
    choice = LlmChoice(provider=provider, model=model, record=record and not dry_run,
                       replay=replay, cache=cache)
    if dry_run:
        raise typer.Exit(_dry_run(loaded, options, choice, as_json, prompts))
    views = _views(loaded.spec.goal.description, as_json)
    result = _execute(views, lambda: start_run(
        loaded, options, llm=choice, human=_human(no_input, views), on_event=_fan_out(views),
        backend=backend, scheduler=scheduler, warn=_warn, wait=wait,
        history=database_url or True))
    if result.status == "halted_validation":
        for line in (result.state.validation.errors if result.state.validation else []):
            _err().print(line, markup=False)
    _report(result)
    raise typer.Exit(result.exit_code)


def _dry_run(loaded: Any, options: RunOptions, choice: LlmChoice, as_json: bool,
             prompts: bool) -> int:
    from specs.api.preview import dry_run
    from specs.cli.prompt import render_text
    from specs.llm.prompt import Prompt
    try:
        found = dry_run(loaded, options, llm=choice, prompts=prompts)
    except ProviderError as exc:
        _err().print(f"specs: error: {exc}", markup=False)
        return EXIT_USAGE
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return 0 if found["valid"] else EXIT_INVALID
    for d in found["diagnostics"]:
        if d["severity"] == "error":
            _err().print(_render(Diagnostic.from_dict(d)), markup=False)
    plan, about_llm = found["plan"], found["llm"]
    typer.echo(f"mode {found['mode']}, strategy {found['strategy']}, {len(plan)} steps "
               "(dry run: nothing runs)")
    if about_llm is not None:
        judge = about_llm["judge_model"]
        typer.echo(f"llm {about_llm['provider']} {about_llm['model']}"
                   + (f", judge {judge}" if judge != about_llm["model"] else ""))
    for item in plan:
        if item["research"]:
            ref = item["step"].rpartition(".")[0]
            typer.echo(f"  task {ref}: research phase before its first step "
                       f"({', '.join(item['research_sources'])})")
        gate = f"  [gate: {item['gate']}]" if item["gate"] else ""
        typer.echo(f"{item['step']:>6} {'●' if item['critical'] else '○'} "
                   f"{item['description']}{gate}")
        for method in item["ladder"]:
            typer.echo(f"         {method['method']} ×{method['attempts']} "
                       f"({method['action']}): {method['run']}")
            if method["checks"]:
                typer.echo(f"           checks: {'; '.join(method['checks'])}")
        if item.get("prompt") is not None:
            typer.echo(f"--- prompt of step {item['step']} (primary, first attempt) ---")
            typer.echo(render_text(Prompt(item["prompt"]["system"], item["prompt"]["user"])))
            typer.echo(f"--- end of the prompt of step {item['step']} ---")
    return 0 if found["valid"] else EXIT_INVALID


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
    wait: Wait = False,
    database_url: DatabaseUrl = None,
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
    from specs.api.session import resume_run
    from specs.api.wiring import LlmChoice
    options = RunOptions(state_dir=state_dir(state), yes=yes, no_input=no_input,
                         decision=decision, max_cost_usd=max_cost, max_tokens=max_tokens)
    choice = LlmChoice(provider=provider, model=model, record=record, cache=cache)
    views: list[Any] = []

    def begin() -> Run:
        try:
            handle = resume_run(run, options, force=force, llm=choice,
                                human=_human(no_input, views), on_event=_fan_out(views),
                                backend=backend, scheduler=scheduler, warn=_warn, wait=wait,
                                history=database_url or True)
        except SpecLoadError as exc:
            _print_errors(list(exc.diagnostics))
            raise typer.Exit(EXIT_INVALID) from None
        views.extend(_views(handle.runner.spec.goal.description, as_json))
        return handle

    result = _execute(views, begin)
    _report(result)
    raise typer.Exit(result.exit_code)
