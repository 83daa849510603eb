"""The run loop: execute a loaded spec step by step, recording every decision as an event.

The loop owns one :class:`~specs.engine.state.RunState` and changes it only by emitting
events (:meth:`Runner.emit`: number, timestamp, apply to the state, append to events.jsonl,
notify subscribers). Every decision reads the state, so ``specs resume`` (replay the events,
then run the same loop) continues exactly where a crashed, interrupted or paused run stopped:
finished steps are not run again; an attempt that had started but not ended runs again
(at-least-once).

Per task (R-LOOP-2/4): task-started, the steps, task-ended with its status and a notepad entry.
Per step (R-LOOP-3): propagation check (R-EP) -> gate (R-MODE) -> step-started -> the method
ladder (R-RETRY: primary ``1 + max_retries`` attempts, then each backup in id order, backoff
only for transient failures) with expected-output checks (R-VER-1) -> step-ended -> on a
critical failure the strategy (R-CRIT-2: escalate, halt, or continue and log) -> escalation
triggers (R-ESC) -> notepad.

Stopping: a gate with no human to answer raises :class:`~specs.engine.stops.Paused` (status
``awaiting_human``, exit 3); ``halt_on_critical`` and ``abort`` raise
:class:`~specs.engine.stops.Stopped`; Ctrl-C ends the run as ``halted`` (exit 130), resumable.

This module holds the run's lifecycle (open, pre-flight, mode, the loop, the end, resume); the
parts it is made of hold the rest: :mod:`specs.engine.journal` (the event log, group commit,
the lock), :mod:`specs.engine.steps` (the rules of a step and of a task),
:mod:`specs.engine.attempts` (the method ladder), :mod:`specs.engine.gates` (gates and
escalation) and :mod:`specs.engine.inline` (steps started inline).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs import events as ev
from specs.diagnostics import Diagnostic, Severity
from specs.engine import policy, preflight
from specs.engine.attempts import Ladder
from specs.engine.checks import Judge
from specs.engine.completion import provisional_completion, verify_completion
from specs.engine.gates import Gates, join_response
from specs.engine.human import Human, InboxHuman, parse_response
from specs.engine.inline import Inline
from specs.engine.journal import Journal, SpecLock, Subscriber
from specs.engine.scheduler import Scheduler
from specs.engine.state import RUN_ENDED, RunState
from specs.engine.steps import Steps
from specs.engine.stops import Paused, Stopped, WriteFailed
from specs.errors import UsageError
from specs.executors.base import Executor
from specs.executors.command import run_command, run_tool
from specs.executors.python import run_python
from specs.plan.cache import spec_plan
from specs.plan.graph import Plan, build_plan
from specs.spec.fingerprint import spec_fingerprint
from specs.spec.load import LoadedSpec
from specs.spec.model import Spec, Task
from specs.spec.project import critical_range
from specs.version import __version__

__all__ = ["RunOptions", "RunResult", "Runner", "file_sha256", "new_run_id"]

EXIT_OK, EXIT_FAILED, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 3, 130


@dataclass
class RunOptions:
    """How to run: the CLI's options (SPEC_FORMAT.md §3), all with defaults."""

    state_dir: Path = field(default_factory=lambda: Path(".specs"))
    run_id: str | None = None
    mode: str | None = None
    yes: bool = False
    no_input: bool = False
    strict: bool = False
    vars: dict[str, Any] = field(default_factory=dict)
    fsync_interval: float = 0.2
    max_output_bytes: int = 1_000_000
    force: bool = False
    decision: str | None = None
    parallel: bool | None = None  # --parallel (True) / the spec decides (None)
    sequential: bool = False  # --sequential: strict id order, whatever the spec says
    max_parallel: int | None = None
    max_cost_usd: float | None = None  # --max-cost: overrides [budget] max_cost_usd
    max_tokens: int | None = None  # --max-tokens: overrides [budget] max_tokens


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    goal: str | None
    exit_code: int
    state: RunState
    #: something the run could not write after its end was recorded (a projection is stale:
    #: ``specs resume`` rewrites it once the cause is fixed)
    problem: str | None = None


def new_run_id(now: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"run_{stamp}_{secrets.token_hex(2)}"


def file_sha256(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


class OutputsView(Mapping[str, Any]):
    """Structured outputs of completed steps, by ref, read live from the state."""

    def __init__(self, state: RunState) -> None:
        self._state = state

    def __getitem__(self, ref: str) -> Any:
        step = self._state.steps[ref]
        if step.status != "completed":
            raise KeyError(ref)
        return step.output

    def __iter__(self) -> Iterator[str]:
        return (r for r, s in self._state.steps.items() if s.status == "completed")

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Runner:
    """Runs one spec; see the module docstring. One instance per run (or resume), made of
    parts: the journal (:mod:`~specs.engine.journal`), the step rules
    (:mod:`~specs.engine.steps`), the method ladder (:mod:`~specs.engine.attempts`), the gates
    (:mod:`~specs.engine.gates`) and the inline steps (:mod:`~specs.engine.inline`)."""

    def __init__(self, loaded: LoadedSpec, options: RunOptions | None = None, *,
                 human: Human | None = None, subscribers: list[Subscriber] | None = None,
                 executors: dict[str, Executor] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.loaded = loaded
        self.spec: Spec = loaded.require()
        self.options = options or RunOptions()
        self.human = human
        self.subscribers = list(subscribers or [])
        self.executors: dict[str, Executor] = {
            "command": run_command, "tool": run_tool, "script": run_tool,
            "python": run_python, **(executors or {})}
        self.clock, self.sleep = clock, sleep
        self.rng = rng or random.Random()
        self.state = RunState(self.spec)
        self.journal = Journal(self.state, self.subscribers, clock=clock,
                               fsync_interval=self.options.fsync_interval)
        self.emit = self.journal.emit
        self.run_dir = Path()
        self.judge: Judge | None = None  # verify_with = "llm" (specs.llm.judge.LlmJudge)
        #: the research phase of ``research_enabled`` tasks (:func:`specs.llm.research.
        #: research_once`, installed with the LLM); without it the phase is skipped, with a
        #: warning in its event
        self.research: Callable[[Task], Coroutine[Any, Any, None]] | None = None
        self.workspace = loaded.folder / (self.spec.execution.workspace or "")
        self.outputs = OutputsView(self.state)
        self.step_by_ref = {f"{t.ref}.{s.id}": s for t, s in self.spec.steps()}
        self.task_by_ref = {t.ref: t for t in self.spec.tasks}
        #: what the scheduler noted at a step's launch (slot, group, ...), for step-started
        self.launch_info: dict[str, dict[str, Any]] = {}
        #: events of checks made before the run (the MCP servers', rule 1.11), recorded
        #: after validation passes
        self.preflight_events: list[ev.Event] = []
        #: more pre-flight checks (the LLM budget's), run by :meth:`preflight`
        self.preflight_checks: list[Callable[[], list[Diagnostic]]] = []
        self._plan: Plan | None = None
        self._spec_lock = SpecLock(loaded.progress_path)
        self.steps, self.ladder = Steps(self), Ladder(self)
        self.gates, self.inline = Gates(self), Inline(self)
        for part in (self.steps, self.ladder, self.gates, self.inline):
            part.steps, part.ladder, part.gates, part.inline = \
                self.steps, self.ladder, self.gates, self.inline

    def _open(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.ladder.outputs_root = run_dir / "outputs"
        self._spec_lock.acquire(run_dir.name)  # before anything is written: a refusal leaves
        try:  # no trace
            self.journal.open(run_dir)
        except UsageError:
            self._spec_lock.release()
            raise

    def _close(self, code: int) -> RunResult:
        self.journal.close()
        for subscriber in self.subscribers:  # (a projection's timer stops with the run)
            close = getattr(subscriber, "close", None)
            if callable(close):
                close()
        self._spec_lock.release()
        failure, problem = self.journal.failure, None
        if failure is not None:
            code = EXIT_FAILED
            unlogged = self.journal.unlogged_from
            end = self.state.end
            if end is None or (unlogged is not None and end.seq >= unlogged):
                # the log does not have the run's end: halted, resumable from what it has
                self.emit(ev.RunEnded(status="halted", reason=failure.reason,
                                      goal_achievement_status=self._goal_so_far()))
            elif end.reason != failure.reason:
                problem = failure.reason  # the end is recorded; a projection is stale
        end = self.state.end
        return RunResult(self.state.run_id, self.run_dir, self.state.status,
                         end.goal_achievement_status if end else None, code, self.state,
                         problem)

    def preflight(self) -> list[Diagnostic]:
        """Validation for running: the validator's findings plus run-time requirements."""
        found = preflight.diagnostics(self.loaded, strict=self.options.strict,
                                      cognitive="cognitive" in self.executors,
                                      judge=self.judge is not None)
        for check in self.preflight_checks:
            found.extend(check())
        return found

    async def start(self) -> RunResult:
        """Open a new run: pre-flight, mode selection, then the loop."""
        now = self.clock()
        run_id = self.options.run_id or new_run_id(now)
        run_dir = self.options.state_dir / "runs" / run_id
        events = run_dir / "events.jsonl"
        if events.exists() and any(isinstance(e, ev.RunOpened) for e in ev.read_events(events)):
            raise UsageError(f"run {run_id} already exists; use `specs resume {run_id}`")
        if events.exists():
            events.unlink()  # a run killed before it could record anything: start it afresh
        self._open(run_dir)
        loaded = self.loaded
        try:
            self.emit(ev.RunOpened(
                run_id=run_id, descriptor=loaded.descriptor,
                spec={"folder": str(loaded.folder.resolve()),
                      "parameters": str(loaded.parameters_path.resolve())
                      if loaded.parameters_path else None,
                      "parameters_sha256": loaded.parameters_sha256,
                      "markdown": str(loaded.markdown_path.resolve())
                      if loaded.markdown_path else None,
                      "markdown_sha256": file_sha256(loaded.markdown_path),
                      "progress": str(loaded.progress_path.resolve()),
                      "notepad": str(loaded.notepad_path.resolve()),
                      **self._fingerprint()},
                options={"mode": self.options.mode, "yes": self.options.yes,
                         "no_input": self.options.no_input, "strict": self.options.strict,
                         "vars": self.options.vars, **self._budget_options()},
                totals={"tasks": len(self.spec.tasks), "steps": self.spec.step_count()},
                engine_version=__version__))
            if not self._prepare():
                return self._close(EXIT_FAILED)
        except WriteFailed:
            return self._close(EXIT_FAILED)
        return await self._execute()

    def _prepare(self) -> bool:
        """Pre-flight validation and mode selection, unless the run already did them.

        Returns False when validation failed (the run then ended as halted_validation).
        """
        if self.state.validation is None:
            found = self.preflight()
            errors = [d for d in found if d.severity is Severity.ERROR]
            warnings = [d for d in found if d.severity is Severity.WARNING]
            self.emit(ev.ValidationSummary(
                status="FAIL" if errors else "WARN" if warnings else "PASS",
                errors=[d.render() for d in errors], warnings=[d.render() for d in warnings],
                violations=[preflight.violation(d) for d in warnings if d.strict],
                critical_range=list(critical_range(self.spec, self.loaded.project))))
            if errors:
                self.emit(ev.RunEnded(status="halted_validation",
                                      reason=f"{len(errors)} validation error"
                                      + "s" * (len(errors) != 1)))
                return False
        for event in self.preflight_events:
            self.emit(event)
        self.preflight_events.clear()
        if self.state.mode_selected_at is None:
            mode, by = self._select_mode()
            strategy = self.spec.error_propagation.propagation_strategy or \
                policy.default_strategy(mode)
            self.emit(ev.ModeSelected(mode=mode, selected_by=by, strategy=strategy))
        return True

    async def resume(self, run_dir: Path, replay: list[ev.Event]) -> RunResult:
        """Continue a run from its events (already read by the caller)."""
        self._open(run_dir)
        for event in replay:
            self.state.apply(event)
        self.journal.seq = replay[-1].seq if replay else 0
        status = self.state.status
        if status in RUN_ENDED:
            self._close(EXIT_OK)
            raise UsageError(f"run {self.state.run_id} has ended ({status}); nothing to resume")
        answer = self._decision()
        self.journal.stop_leftovers()
        interrupted = [f"{s.ref} {a.method} attempt {a.attempt}"
                       for s in self.state.steps.values() if (a := s.open_attempt)]
        try:
            self.emit(ev.RunResumed(interrupted=interrupted,
                                    options={"yes": self.options.yes,
                                             "no_input": self.options.no_input,
                                             **self._budget_options()}))
            end = self.state.end
            if end is not None and end.status == "halted" and end.step:
                self.emit(ev.StepReopened(step=end.step, reason="resumed after a halt"))
            if answer is not None:
                self.emit(answer)
            if not self._prepare():
                return self._close(EXIT_FAILED)
        except WriteFailed:
            return self._close(EXIT_FAILED)
        return await self._execute()

    def _fingerprint(self) -> dict[str, Any]:
        """With LLM steps: the spec's hash without [budget] (a resume accepts a new budget)."""
        if "cognitive" not in self.executors:
            return {}
        return {"fingerprint_without_budget": spec_fingerprint(self.spec)}

    def _budget_options(self) -> dict[str, Any]:
        """--max-cost / --max-tokens, recorded so that a resume keeps them."""
        found = {"max_cost_usd": self.options.max_cost_usd, "max_tokens": self.options.max_tokens}
        return {k: v for k, v in found.items() if v is not None}

    def _decision(self) -> ev.GateAnswered | None:
        """``--decision``, checked before anything is written (a refusal leaves no trace)."""
        if not self.options.decision:
            return None
        open_gates = [g for g in self.state.open_gates() if g.response is None]
        try:
            if not open_gates:
                raise UsageError("--decision given, but no decision is pending")
            gate = open_gates[0]
            verb, arg = parse_response(self.options.decision, gate.options)
        except UsageError:
            self._close(EXIT_FAILED)
            raise
        return ev.GateAnswered(gate=gate.id, response=join_response(verb, arg), by="cli",
                               guidance=arg if verb == "guidance" else None)

    def _select_mode(self) -> tuple[str, str]:
        if self.options.mode:
            return self.options.mode, "cli"
        origin = self.loaded.provenance.get(("execution", "default_mode"), "")
        if origin.startswith("project"):
            return self.spec.execution.default_mode, "project"
        explicit = "default_mode" in self.spec.execution.model_fields_set
        education = self.spec.education
        if not explicit and education is not None and education.enabled:
            return "education", "spec"
        return self.spec.execution.default_mode, "spec" if explicit else "default"

    @property
    def interactive(self) -> bool:
        """Someone can answer a gate now: a human, unless ``no_input`` (a human that only
        waits for answers from other processes, :class:`~specs.engine.human.InboxHuman`
        with no one inside, still counts)."""
        human = self.human
        return human is not None and (not self.options.no_input or (
            isinstance(human, InboxHuman) and human.inner is None))

    async def _execute(self) -> RunResult:
        try:
            await self._loop()
            await self._finish()
            end = self.state.end
            goal = end.goal_achievement_status if end else None
            return self._close(EXIT_OK if goal == "ACHIEVED" else EXIT_FAILED)
        except Paused as pause:
            return self._end(ev.RunPaused(reason=pause.reason, gate=pause.gate), EXIT_PAUSED)
        except Stopped as stop:
            if isinstance(stop, WriteFailed) and self.state.end is not None:
                return self._close(EXIT_FAILED)  # the end is recorded; a projection failed
            return self._end(ev.RunEnded(status=stop.status, reason=stop.reason,
                                         step=stop.step,
                                         goal_achievement_status=self._goal_so_far()),
                             EXIT_FAILED)
        except (KeyboardInterrupt, asyncio.CancelledError):
            self._end(ev.RunEnded(status="halted", reason="interrupted by the user",
                                  goal_achievement_status=self._goal_so_far()),
                      EXIT_INTERRUPTED)
            raise

    def _goal_so_far(self) -> str:
        """The goal of a run that stops before its end, as the steps stand (NOT_ACHIEVED or
        PARTIAL: the checks did not run; a resume can change it)."""
        return str(provisional_completion(self.state)["goal_achievement_status"])

    def _end(self, event: ev.Event, code: int) -> RunResult:
        """Record how the run stopped (as far as it can be written), then close it."""
        with contextlib.suppress(WriteFailed):
            self.emit(event)
        return self._close(code)

    def _parallel(self) -> tuple[bool, str]:
        """Parallel or sequential, and why (SPEC_FORMAT.md §1.7)."""
        options, execution = self.options, self.spec.execution
        project = self.loaded.project.parallel_execution if self.loaded.project else None
        if options.sequential:
            return False, "--sequential"
        if self.spec.transitions:
            return False, "[[transitions]] loops need the sequential task order"
        if options.parallel:
            note = " (overriding the project constitution's parallel_execution = false)" \
                if project is False else ""
            return True, "--parallel" + note
        if not execution.parallel_enabled:
            return False, "[execution] parallel_enabled is not set"
        if project is False:
            return False, "the project constitution sets parallel_execution = false"
        return True, "[execution] parallel_enabled = true"

    def _plan_for(self, parallel: bool) -> Plan:
        """The plan of a parallel or sequential run, built once: the parallel one is the spec's
        cached plan (:func:`~specs.plan.cache.spec_plan`, which progress documents read)."""
        if self._plan is None or self._plan.sequential == parallel:
            found = spec_plan(self.spec) if parallel else None
            self._plan = found if found is not None else build_plan(self.spec,
                                                                   sequential=not parallel)
        return self._plan

    async def _loop(self) -> None:
        planned = self.state.planned
        if planned is None:
            parallel, reason = self._parallel()
            limit = self.options.max_parallel or self.spec.execution.max_parallel_steps
            plan = self._plan_for(parallel)
            self.emit(ev.ExecutionPlanned(
                parallel=parallel, max_parallel=limit if parallel else 1,
                failure_policy=self.spec.execution.parallel_failure_policy, reason=reason,
                phases=len(plan.phases), width=plan.width if parallel else 1,
                critical_path=list(plan.critical_path)))
            planned = self.state.planned
        assert planned is not None
        plan = self._plan_for(planned.parallel)
        if planned.parallel:
            scheduler = Scheduler(self, plan, planned.max_parallel, planned.failure_policy)
            await scheduler.run()
        elif self.spec.transitions:
            await self.steps.sequential()  # loops go back by task: the task-by-task loop
        else:
            # sequential = the same scheduler over the plan's order, one step at a time, so a
            # step waits for the steps it depends on even in a later task
            await Scheduler(self, plan, 1, "finish_siblings").run()

    async def _finish(self) -> None:
        self.journal.flush()
        env = {**os.environ, "SPECS_RUN_ID": self.state.run_id,
               "SPECS_SPEC_DIR": str(self.loaded.folder)}
        result = await verify_completion(self.spec, self.state, self.workspace, env)
        self.emit(ev.CompletionVerified(**result))
        self.emit(ev.RunEnded(status="completed",
                              goal_achievement_status=result["goal_achievement_status"]))
