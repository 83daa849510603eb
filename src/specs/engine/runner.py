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

Stopping: a gate with no human to answer raises :class:`Paused` (status ``awaiting_human``,
exit 3); ``halt_on_critical`` and ``abort`` raise :class:`Stopped`; Ctrl-C ends the run as
``halted`` (exit 130), resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import inspect
import itertools
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from specs import events as ev
from specs.diagnostics import Diagnostic, Severity
from specs.engine import policy, preflight
from specs.engine.checks import Judge
from specs.engine.checks import verdict as check_verdict
from specs.engine.completion import verify_completion
from specs.engine.human import Human, parse_response
from specs.engine.notes import task_notes
from specs.engine.scheduler import Scheduler
from specs.engine.state import RunState, StepState
from specs.engine.stops import Paused, Stopped
from specs.errors import UsageError
from specs.executors.base import Executor, Outcome, StepContext
from specs.executors.command import run_command, run_tool, stop_leftovers
from specs.executors.python import call_async, call_sync, run_python, to_outcome
from specs.executors.python import failure as python_failure
from specs.plan.cache import spec_plan
from specs.plan.graph import Plan, build_plan
from specs.spec.compose import task_folder, task_workspace
from specs.spec.fingerprint import spec_fingerprint
from specs.spec.load import LoadedSpec
from specs.spec.model import Action, Spec, Step, Task
from specs.spec.project import critical_range
from specs.version import __version__

Subscriber = Callable[[ev.Event, RunState], None]
T = TypeVar("T")
#: a step's python function, and whether it is ``async def`` (see Runner.eager_function)
EagerCall = tuple[Callable[..., Any], bool]

EXIT_OK, EXIT_FAILED, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 3, 130
#: events after which the log is written at once (a final status must survive a kill -9)
FLUSH_AFTER = frozenset({"step-ended", "step-reopened", "failure-resolved", "gate-requested",
                         "gate-answered", "gate-closed", "task-ended", "run-paused",
                         "run-ended", "mode-switched", "run-opened", "run-resumed"})
TASK_DONE = ("completed", "completed_with_failures", "failed", "skipped")


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


@dataclass(slots=True)
class _Eager:
    """An eager step between its start and its first attempt (see Runner.eager_steps)."""

    task: Task
    step: Step
    st: StepState
    rung: policy.Method
    began: float
    ctx: StepContext


class RunLock:
    """An exclusive lock on a run folder: one process runs (or answers) a run at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "lock"
        self._fd = -1

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = -1
            raise UsageError(f"run {self.path.parent.name} is in use by another specs "
                             "process; wait for it or stop it first") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class Runner:
    """Runs one spec; see the module docstring. One instance per run (or resume)."""

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
        self.log: ev.EventLog | None = None
        self.run_dir = Path()
        self._seq = 0
        self._lock: RunLock | None = None
        self.judge: Judge | None = None  # verify_with = "llm" (specs.llm.judge.LlmJudge)
        #: the research phase of ``research_enabled`` tasks (:func:`specs.llm.research.
        #: research_once`, installed with the LLM); without it the phase is skipped, with a
        #: warning in its event
        self.research: Callable[[Task], Coroutine[Any, Any, None]] | None = None
        self.workspace = loaded.folder / (self.spec.execution.workspace or "")
        self._outputs = OutputsView(self.state)
        self._parsed: dict[str, Any] = {}
        self.step_by_ref = {f"{t.ref}.{s.id}": s for t, s in self.spec.steps()}
        self.task_by_ref = {t.ref: t for t in self.spec.tasks}
        self._previous: dict[str, str] = {}
        for task in self.spec.tasks:
            ordered = sorted(task.steps, key=lambda s: s.id)
            for before, after in itertools.pairwise(ordered):
                self._previous[f"{task.ref}.{after.id}"] = f"{task.ref}.{before.id}"
        self.launch_info: dict[str, dict[str, Any]] = {}
        #: events of checks made before the run (the CLI's MCP check, rule 1.11), recorded
        #: after validation passes
        self.preflight_events: list[ev.Event] = []
        self._plan: Plan | None = None
        self._ladders: dict[int, list[policy.Method]] = {}  # per step (steps are immutable)
        self._eager: dict[int, EagerCall | None] = {}  # per step: see eager_function
        self._scopes: dict[int, tuple[str, ...]] = {}  # per step: its dependencies' refs
        self._eager_funcs: dict[tuple[str, Path], EagerCall | None] = {}
        self._human_lock: asyncio.Lock | None = None
        self._outputs_root = Path("outputs")
        self._output_dirs: dict[str, Path] = {}
        self._folders: dict[str, tuple[Path, Path]] = {}  # task ref -> (workspace, folder)
        self._run_vars: dict[str, Any] | None = None
        self._flush_pending = False
        #: parallel runs: the running branches (the scheduler's); while more than one runs,
        #: attempts started in one loop iteration share a write (``_flushed``)
        self.branches: Sized = ()
        self._flush_waiters: list[asyncio.Future[None]] = []
        self._spawned_fd = -1  # .specs/runs/<id>/spawned, opened at the first process
        self._spawned_lock = threading.Lock()
        #: more pre-flight checks (the LLM budget's), run by :meth:`preflight`
        self.preflight_checks: list[Callable[[], list[Diagnostic]]] = []

    # -- events ------------------------------------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        self._seq += 1
        event.seq = self._seq
        event.ts = ev.iso(self.clock())
        self.state.apply(event)
        if self.log is not None:
            name = event.name
            if name == "step-ended" and self._defer_flush():
                self.log.append(event, flush=False)
            elif name in ("run-ended", "run-paused"):
                # written now, fsync'd by the log's helper thread while the subscribers
                # write the progress file and the notepad; the log's close() waits for it
                self.log.append(event, flush=False)
                self.log.sync_soon()
            else:
                self.log.append(event, flush=name in FLUSH_AFTER)
        for subscriber in self.subscribers:
            subscriber(event, self.state)

    def _defer_flush(self) -> bool:
        """Group commit of step ends: one write at the end of this event-loop iteration for
        every step that ended in it (before anything else runs: the next attempt flushes
        first anyway). False outside a loop (the caller then writes at once)."""
        if self._flush_pending:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_pending = True
        loop.call_soon(self._deferred_flush)
        return True

    def _deferred_flush(self) -> None:
        self._flush_pending = False
        if self.log is not None and not self.log.closed:
            self.log.flush()

    # -- entry points ------------------------------------------------------------------------

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
        self.run_dir = self.options.state_dir / "runs" / run_id
        self._outputs_root = self.run_dir / "outputs"
        events = self.run_dir / "events.jsonl"
        if events.exists() and any(isinstance(e, ev.RunOpened) for e in ev.read_events(events)):
            raise UsageError(f"run {run_id} already exists; use `specs resume {run_id}`")
        if events.exists():
            events.unlink()  # a run killed before it could record anything: start it afresh
        self._open()
        loaded = self.loaded
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
                                      reason=f"{len(errors)} validation errors"))
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
        self.run_dir = run_dir
        self._outputs_root = run_dir / "outputs"
        self._open()
        for event in replay:
            self.state.apply(event)
        self._seq = replay[-1].seq if replay else 0
        status = self.state.status
        if status in ("completed", "aborted", "halted_validation", "failed"):
            self._close(EXIT_OK)
            raise UsageError(f"run {self.state.run_id} has ended ({status}); nothing to resume")
        answer = self._decision()
        self._stop_leftovers()
        interrupted = [f"{s.ref} {a.method} attempt {a.attempt}"
                       for s in self.state.steps.values() if (a := s.open_attempt)]
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
        return ev.GateAnswered(gate=gate.id, response=_join(verb, arg), by="cli",
                               guidance=arg if verb == "guidance" else None)

    # -- plumbing ----------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock = RunLock(self.run_dir)
            self._lock.acquire()
            self.log = ev.EventLog(self.run_dir / "events.jsonl",
                                   fsync_interval=self.options.fsync_interval)
        except PermissionError as exc:
            raise UsageError(f"cannot write the run folder {self.run_dir}: "
                             f"{exc.strerror or exc}; choose another --state-dir") from None
        except OSError as exc:
            raise UsageError(f"cannot write the run folder {self.run_dir}: "
                             f"{exc.strerror or exc}; choose another --state-dir") from None

    def _close(self, code: int) -> RunResult:
        if self.log is not None:
            self.log.close()
        with self._spawned_lock:
            if self._spawned_fd >= 0:
                os.close(self._spawned_fd)
                self._spawned_fd = -1
        if self._lock is not None:
            self._lock.release()
        end = self.state.end
        return RunResult(self.state.run_id, self.run_dir, self.state.status,
                         end.goal_achievement_status if end else None, code, self.state)

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
        return self.human is not None and not self.options.no_input

    async def _execute(self) -> RunResult:
        try:
            await self._loop()
            await self._finish()
            end = self.state.end
            goal = end.goal_achievement_status if end else None
            return self._close(EXIT_OK if goal == "ACHIEVED" else EXIT_FAILED)
        except Paused as pause:
            self.emit(ev.RunPaused(reason=pause.reason, gate=pause.gate))
            return self._close(EXIT_PAUSED)
        except Stopped as stop:
            self.emit(ev.RunEnded(status=stop.status, reason=stop.reason, step=stop.step))
            return self._close(EXIT_FAILED)
        except (KeyboardInterrupt, asyncio.CancelledError):
            self.emit(ev.RunEnded(status="halted", reason="interrupted by the user"))
            self._close(EXIT_INTERRUPTED)
            raise

    # -- the loop ----------------------------------------------------------------------------

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
            await self._sequential()  # loops go back by task: the task-by-task loop
        else:
            # sequential = the same scheduler over the plan's order, one step at a time, so a
            # step waits for the steps it depends on even in a later task
            await Scheduler(self, plan, 1, "finish_siblings").run()

    async def _sequential(self) -> None:
        tasks = self.spec.tasks
        index = 0
        while index < len(tasks):
            task = tasks[index]
            task_state = self.state.tasks[task.ref]
            if task_state.status in TASK_DONE:
                index += 1
                continue
            if task_state.status == "pending":
                self.emit(ev.TaskStarted(task=task.ref, description=task.description))
                if await self._task_skipped(task):
                    index += 1
                    continue
            for step in self._step_order(task):
                await self._step(task, step)
            self._end_task(task)
            jump = self._transition(task)
            index = index + 1 if jump is None else jump

    def _step_order(self, task: Task) -> list[Step]:
        """Steps by id, except that a step comes after the steps of its task it depends on."""
        by_id = {s.id: s for s in task.steps}
        graph: dict[int, set[int]] = {}
        for step in task.steps:
            graph[step.id] = {d for d in (step.depends_on or []) if isinstance(d, int)
                              and not isinstance(d, bool) and d in by_id and d != step.id}
        if not any(graph.values()):
            return sorted(task.steps, key=lambda s: s.id)
        order: list[Step] = []
        done: set[int] = set()
        pending = sorted(by_id)
        while pending:
            ready = next((i for i in pending if graph[i] <= done), pending[0])
            pending.remove(ready)
            done.add(ready)
            order.append(by_id[ready])
        return order

    async def _task_skipped(self, task: Task) -> bool:
        """A task condition (or ``mode_specific`` against ``vars.operational_mode``) that does
        not hold skips every step of the task."""
        reason = None
        text = task.condition
        variables = self._vars()
        if not text and task.mode_specific and "operational_mode" in variables:
            if str(variables["operational_mode"]).strip().lower() != \
                    task.mode_specific.strip().lower():
                reason = f"mode_specific {task.mode_specific!r} is not the operational mode"
        elif text:
            held, problem = self._condition(text, task.ref)
            if problem is not None:
                for step in task.steps:
                    ref = f"{task.ref}.{step.id}"
                    self.emit(ev.StepStarted(step=ref, mode=step.mode or self.state.mode,
                                             critical=step.critical_flag))
                    self.emit(ev.StepEnded(step=ref, status="failed",
                                           message=f"task condition error: {problem}"))
                    await self._after_failure(task, step)
                self._end_task(task)
                return True
            if not held:
                reason = f"task condition is false: {text}"
        if reason is None:
            return False
        for step in task.steps:
            self.emit(ev.StepEnded(step=f"{task.ref}.{step.id}", status="skipped",
                                   skip_reason="condition_false", message=reason))
        self._end_task(task)
        return True

    def _vars(self) -> dict[str, Any]:
        return {**(self.spec.vars or {}), **self.options.vars}

    def _condition(self, text: str, task_ref: str) -> tuple[bool, str | None]:
        """Evaluate a condition: (value, None), or (False, reason) when it cannot be."""
        from specs.spec.conditions import ConditionError, Scope, evaluate, parse

        try:
            parsed = self._parsed.get(text)
            if parsed is None:
                parsed = self._parsed[text] = parse(text)
            scope = Scope(task=task_ref, outputs=self._outputs,
                          statuses={r: s.status for r, s in self.state.steps.items()},
                          vars=self._vars())
            return bool(evaluate(parsed, scope)), None
        except ConditionError as exc:
            return False, str(exc)

    def _transition(self, task: Task) -> int | None:
        """After ``task``: a ``[[transitions]]`` loop back: the index of the task to go to."""
        if not self.spec.transitions:
            return None
        refs = [t.ref for t in self.spec.tasks]
        for item in self.spec.transitions or []:
            if str(item.from_task) != task.ref or str(item.to_task) not in refs:
                continue
            if item.when:
                held, problem = self._condition(item.when, task.ref)
                if problem is not None or not held:
                    continue
            taken = sum(1 for t in self.state.transitions
                        if t.from_task == task.ref and t.to_task == str(item.to_task))
            if taken >= item.max_iterations:
                if not any(t.from_task == task.ref for t in self.state.transition_limits):
                    self.emit(ev.TransitionLimit(from_task=task.ref, to_task=str(item.to_task),
                                                 max_iterations=item.max_iterations))
                continue
            self.emit(ev.TransitionTaken(from_task=task.ref, to_task=str(item.to_task),
                                         iteration=taken + 1, when=item.when))
            return refs.index(str(item.to_task))
        return None

    def _end_task(self, task: Task) -> None:
        steps = [self.state.steps[r] for r in self.state.tasks[task.ref].steps]
        if any(s.critical and s.status == "failed" and not s.resolved for s in steps):
            status = "failed"
        elif any(s.status == "failed" for s in steps):
            status = "completed_with_failures"
        elif steps and all(s.status == "skipped" for s in steps):
            status = "skipped"
        else:
            status = "completed"
        capture = self.spec.knowledge_capture
        if capture.enabled and capture.update_frequency in ("per_task", "end_only"):
            self.emit(self._notes(task.ref))
        self.emit(ev.TaskEnded(task=task.ref, status=status))

    async def _step(self, task: Task, step: Step) -> None:
        ref = f"{task.ref}.{step.id}"
        st = self.state.steps[ref]
        if st.status in ("completed", "skipped"):
            await self._pending_gates(ref)
            return
        if st.status == "failed":
            # resumed: only a critical-failure gate answered now goes on as the live run would
            if await self._after_failure(task, step) != "decided":
                await self._pending_gates(ref)
                return
        else:
            if st.status == "pending" and not await self._before_step(task, step, st):
                if st.status == "failed":  # its condition could not be evaluated
                    await self._after_failure(task, step)
                return
            await self._ladder(task, step, st)
            if st.status == "failed" and await self._after_failure(task, step) == "rerun":
                return  # the re-run (a nested _step) evaluated escalations and the notepad
        await self._step_tail(task, step, st)

    async def _step_tail(self, task: Task, step: Step, st: StepState) -> None:
        """After the step's final status: escalation triggers, then its notepad entry."""
        if st.status in ("completed", "failed"):
            await self._escalations(task, step, st)
        self._step_notes(task, st)

    def _step_notes(self, task: Task, st: StepState) -> None:
        capture = self.spec.knowledge_capture
        if capture.enabled and capture.update_frequency == "per_step" and st.status != "pending":
            self.emit(self._notes(task.ref, st.ref))

    # -- eager steps: run inline, no task ------------------------------------------------------

    def eager_function(self, task: Task, step: Step) -> EagerCall | None:
        """The function of a step the scheduler can start *inline* now, else None.

        That is a fresh step whose primary method is a python callable with no timeout and no
        checks, run by the built-in python executor, with no condition, no research phase, no
        gate in the current mode, no guidance and no unresolved critical failure in the run:
        nothing can make such a step wait before its function runs. The scheduler then starts
        it without going through the general step logic (:meth:`eager_steps`): a plain
        function (which the executor calls on the loop's thread anyway) runs at once, with no
        task of its own; an ``async def`` gets a task that only awaits it. The events are the
        same, in the same order.
        """
        if id(step) in self._eager:
            found = self._eager[id(step)]
        else:
            found = self._eager[id(step)] = self._eager_static(task, step)
        if found is None:
            return None
        st = self.state.steps[f"{task.ref}.{step.id}"]
        if st.status != "pending" or st.attempts or st.start_method is not None or \
                self.state.unresolved or policy.gate_kind(step, self.state.mode, self.spec) or \
                (self.state.gates and self._guidance(st.ref) is not None):
            return None
        return found

    def _eager_static(self, task: Task, step: Step) -> EagerCall | None:
        if self.executors.get("python") is not run_python or step.effective_method != "python" \
                or not step.callable or step.condition or task.research_enabled or \
                step.timeout_seconds is not None or step.expected_files or step.verify or \
                step.output_schema is not None or step.verify_with:
            return None
        folder = self._folders_of(task)[1]
        key = (step.callable, folder)
        if key not in self._eager_funcs:
            self._eager_funcs[key] = _eager_callable(step.callable, str(folder))
        return self._eager_funcs[key]

    def eager_steps(self, batch: list[tuple[Task, Step, EagerCall]]
                    ) -> list[Coroutine[Any, Any, None] | None]:
        """Start steps :meth:`eager_function` chose that are ready together (none depends
        on another): trigger rule, step-started and the first attempt's start for all (one
        write for their events), then each plain function runs and ends at once, as branches
        launched together would. One result per step, in order: None when the step is over,
        else a coroutine that does the rest (awaits an ``async`` function; after a failure the
        retries and backups; an escalation gate), to be run as the step's branch."""
        started = [self._eager_start(task, step) for task, step, _ in batch]
        self._flush()
        return [None if begun is None else self._eager_run(begun, call)
                for begun, (_, _, call) in zip(started, batch, strict=True)]

    def _eager_start(self, task: Task, step: Step) -> _Eager | None:
        ref = f"{task.ref}.{step.id}"
        st = self.state.steps[ref]
        scope = self._scope(task, step)
        if self._skipped_by_trigger_rule(ref, step, scope):
            return None
        self._started(ref, step, self._consulted(task, step, scope), "none")
        began = time.monotonic()
        rung = policy.primary(step)  # (the whole ladder only if this attempt fails)
        self.emit(ev.AttemptStarted(step=ref, method=rung.label, attempt=1))
        return _Eager(task, step, st, rung, began,
                      self._context(task, step, st, rung.label, 1, None, rung.action))

    def _eager_run(self, begun: _Eager, call: EagerCall) -> Coroutine[Any, Any, None] | None:
        func, is_async = call
        if is_async:
            return self._eager_async(begun, func)
        started = time.perf_counter()
        result = call_sync(func, begun.ctx)
        if inspect.isawaitable(result):  # a plain function returned an awaitable: await it
            return self._eager_awaited(begun, started, result)
        return self._eager_ended(begun, started, to_outcome(result))

    async def _eager_async(self, begun: _Eager, func: Callable[..., Any]) -> None:
        started = time.perf_counter()
        rest = self._eager_ended(begun, started, to_outcome(await call_async(func, begun.ctx)))
        if rest is not None:
            await rest

    async def _eager_awaited(self, begun: _Eager, started: float, result: Any) -> None:
        rest = self._eager_ended(begun, started, to_outcome(await _awaited(result)))
        if rest is not None:
            await rest

    def _eager_ended(self, begun: _Eager, started: float,
                     outcome: Outcome) -> Coroutine[Any, Any, None] | None:
        """Record an eager step's first attempt; what is left to do, if anything."""
        task, step, st, rung = begun.task, begun.step, begun.st, begun.rung
        verdict, reason = "unchecked", outcome.failure_reason
        if outcome.ok and outcome.verdict:  # the function's own verdict (no checks to run)
            verdict, reason = _now(check_verdict(rung.action, step, begun.ctx, outcome,
                                                 self.judge))
        if not self._attempt_ended(st, rung, 1, started, outcome, verdict, reason, None):
            return self._eager_failed(task, step, st, rung, outcome, reason, begun.began)
        if self.state.mode in ("dynamic", "silent") and self._escalation_due(st):
            return self._step_tail(task, step, st)
        self._step_notes(task, st)
        return None

    async def _eager_failed(self, task: Task, step: Step, st: StepState, rung: policy.Method,
                            outcome: Outcome, reason: str | None, began: float) -> None:
        """The rest of an eager step whose first attempt failed: the ladder goes on."""
        await self._retry_pause(st, rung, 1, outcome, reason)
        await self._ladder(task, step, st, began=began, last=(rung.label, reason or "failed"))
        if st.status == "failed" and await self._after_failure(task, step) == "rerun":
            return
        await self._step_tail(task, step, st)

    def _escalation_due(self, st: StepState) -> bool:
        reasons = policy.escalation_reasons(self.state, self.spec, self.state.mode, st)[0]
        return bool(reasons) or self._named_trigger(st) is not None

    def _notes(self, task_ref: str, step: str | None = None) -> ev.NotepadUpdated:
        notes = task_notes(self.spec, self.state, task_ref)
        return ev.NotepadUpdated(task=task_ref, step=step, insights=notes["insights"],
                                 technical_notes=notes["technical_notes"],
                                 ideas=notes["ideas"], human=notes["human"])

    async def _before_step(self, task: Task, step: Step, st: StepState) -> bool:
        """Trigger rule, condition, propagation check and gate; emits step-started.

        False when the step did not start (skipped, or failed by its condition)."""
        ref = st.ref
        scope = self._scope(task, step)
        if self._skipped_by_trigger_rule(ref, step, scope):
            return False
        if step.condition:
            held, problem = self._condition(step.condition, task.ref)
            if problem is not None:
                self.emit(ev.StepStarted(step=ref, mode=step.mode or self.state.mode,
                                         critical=step.critical_flag))
                self.emit(ev.StepEnded(step=ref, status="failed",
                                       message=f"condition error: {problem}"))
                return False
            if not held:
                self.emit(ev.StepEnded(step=ref, status="skipped", skip_reason="condition_false",
                                       message=f"condition is false: {step.condition}"))
                return False
        deps = self._consulted(task, step, scope)
        blocking = self.state.unresolved_critical_failures(scope)
        decision = "none"
        if blocking:
            strategy = self._strategy()
            if strategy == "continue_and_log":
                decision = "continue_with_warning"
            elif strategy == "collaborative_review":
                decision = "review_requested"
                for failed in blocking:
                    response, _ = await self._gate(
                        f"review:{failed}", "propagation_review", ref,
                        f"Critical step {failed} failed and is unresolved; step {ref} may "
                        "depend on it. Continue?", ["approve", "skip", "abort"])
                    if response == "skip":
                        self._close_gate(f"review:{failed}")
                        self.emit(ev.StepEnded(step=ref, status="skipped", skip_reason="human",
                                               message=f"skipped: {failed} failed"))
                        return False
                    self._apply_abort(response, f"review:{failed}")
                    self._close_gate(f"review:{failed}")
            else:
                raise Stopped("halted", f"critical step {blocking[0]} failed", blocking[0])
        kind = policy.gate_kind(step, self.state.mode, self.spec)
        if kind is not None:
            gate_id = f"{kind}:{ref}" + (f"#{st.round}" if st.round else "")
            options = ["approve", "guidance", "choose", "skip", "abort", "switch_mode"]
            response, arg = await self._gate(gate_id, kind, ref, self._gate_prompt(step, kind),
                                             options)
            if response == "skip":
                self._close_gate(gate_id)
                self.emit(ev.StepEnded(step=ref, status="skipped", skip_reason="human",
                                       resolved=True))
                return False
            self._apply_abort(response, gate_id)
            if response == "switch_mode" and arg:
                self.emit(ev.ModeSwitched(from_mode=self.state.mode, to_mode=arg,
                                          reason="human choice at a gate", step=ref))
            self._close_gate(gate_id)
        self._started(ref, step, deps, decision)
        return True

    def _skipped_by_trigger_rule(self, ref: str, step: Step, scope: list[str] | None) -> bool:
        """Apply the step's trigger rule: True when it skipped the step (step-ended)."""
        blocked = self._trigger_rule(step, scope)
        if blocked is None:
            return False
        self.emit(ev.StepEnded(step=ref, status="skipped", skip_reason=blocked[0],
                               message=blocked[1]))
        return True

    def _started(self, ref: str, step: Step, deps: list[str], decision: str) -> None:
        """step-started, with what the scheduler noted at launch (slot, group, ...)."""
        self.emit(ev.StepStarted(step=ref, mode=step.mode or self.state.mode,
                                 critical=step.critical_flag, prior_step_dependencies=deps,
                                 error_propagation_decision=decision,
                                 **self.launch_info.pop(ref, {})))

    def _trigger_rule(self, step: Step, scope: list[str] | None) -> tuple[str, str] | None:
        """Airflow's trigger rules over declared dependencies: (skip reason, message) to skip.

        A skipped dependency counts as a success when its ``skip_ok`` is true (the default).
        """
        if scope is None:
            return None
        steps = self.state.steps
        for ref in scope:  # the common case first: every dependency completed
            found_step = steps.get(ref)
            if found_step is None or found_step.status != "completed":
                break
        else:
            if step.trigger_rule != "one_failed":
                return None
        found = [(r, steps[r]) for r in scope if r in steps]
        failed = [r for r, s in found if s.status == "failed"]
        skipped = [r for r, s in found if s.status == "skipped" and not self._skip_ok(r)]
        succeeded = [r for r, s in found if s.status == "completed"
                     or (s.status == "skipped" and self._skip_ok(r))]
        rule = step.trigger_rule or "all_success"
        if rule == "all_done":
            return None
        if rule == "one_failed":
            return None if failed else ("trigger_rule", "one_failed: no dependency failed")
        if failed:
            return ("upstream_failed", f"{rule}: dependency {', '.join(failed)} failed")
        if rule == "all_success" and skipped:
            return ("upstream_skipped", f"all_success: dependency {', '.join(skipped)} skipped")
        if rule == "none_failed_min_one_success" and not succeeded:
            return ("upstream_skipped", f"{rule}: no dependency succeeded")
        return None

    def _skip_ok(self, ref: str) -> bool:
        found = self.step_by_ref.get(ref)
        return found is None or found.skip_ok is not False

    def _scope(self, task: Task, step: Step) -> list[str] | None:
        """R-EP-2: the declared dependencies, or None for "every earlier step of the run"."""
        if not step.depends_on:
            return None
        found = self._scopes.get(id(step))
        if found is None:
            found = self._scopes[id(step)] = tuple(
                text if "." in text else f"{task.ref}.{text}"
                for text in map(str, step.depends_on))
        return list(found)  # a new list each time: step-started keeps it

    def _consulted(self, task: Task, step: Step, scope: list[str] | None) -> list[str]:
        """What step-started logs as read (R-EP-1): the declared dependencies, else the step
        before it in its task (the check itself covers every earlier step of the run)."""
        if scope is not None:
            return scope
        previous = self._previous.get(f"{task.ref}.{step.id}")
        return [previous] if previous else []

    def _strategy(self) -> str:
        if self.spec.error_propagation.propagation_strategy:
            return self.spec.error_propagation.propagation_strategy
        return policy.default_strategy(self.state.mode)

    # -- the method ladder -------------------------------------------------------------------

    def _guidance(self, ref: str) -> str | None:
        """Guidance from the step's answered gates (latest wins). A chosen method is in the
        state already (``StepState.start_method``, set by the gate's answer or a reopen)."""
        if not self.state.gates:
            return None
        guidance = None
        for gate in self.state.gates.values():
            if gate.step != ref or gate.response is None:
                continue
            verb, _, arg = gate.response.partition(":")
            if verb == "guidance":
                guidance = gate.guidance or arg or guidance
        return guidance

    def _rungs(self, step: Step) -> list[policy.Method]:
        found = self._ladders.get(id(step))
        if found is None:
            found = self._ladders[id(step)] = policy.ladder(step)
        return found

    async def _ladder(self, task: Task, step: Step, st: StepState, *, began: float | None = None,
                      last: tuple[str, str] = ("", "")) -> None:
        """The step's attempts until one succeeds or every method is exhausted. ``began`` and
        ``last`` carry on a ladder whose first attempt ran already (an eager step's)."""
        rungs = self._rungs(step)
        if task.research_enabled and task.ref not in self.state.research:
            await self._research(task)  # R-RES: the task's research phase, once, before its steps
        guidance = self._guidance(st.ref)
        if began is None:
            began = time.monotonic()
        done = st.round_attempts() if st.attempts else None
        if done and done[-1].outcome == "success":
            # a crash between the successful attempt and the step's final status: finish it
            self.emit(ev.StepEnded(
                step=st.ref, status="completed",
                method_used="human_guided" if guidance else done[-1].method,
                expected_output_match=None if done[-1].verdict == "unchecked" else
                done[-1].verdict == "match", message=done[-1].output_summary))
            return
        while True:
            found = policy.next_attempt(rungs, st)
            if found is None:
                break
            index, number = found
            rung = rungs[index]
            if step.total_timeout_seconds and time.monotonic() - began > \
                    step.total_timeout_seconds:
                last = (rung.label, f"total_timeout_seconds ({step.total_timeout_seconds:g}) "
                        "exceeded")
                break
            if rung.backup_id is not None and rung.backup_id not in st.backups_triggered:
                self._trigger_backup(st, rung)
            self.emit(ev.AttemptStarted(step=st.ref, method=rung.label, attempt=number,
                                        guidance=guidance))
            started = time.perf_counter()
            ctx = self._context(task, step, st, rung.label, number, guidance, rung.action)
            outcome = await self._attempt(ctx, rung)
            verdict, reason = "unchecked", outcome.failure_reason
            if outcome.ok:
                self._flush()
                verdict, check_reason = await check_verdict(rung.action, step, ctx, outcome,
                                                            self.judge)
                reason = check_reason
            if self._attempt_ended(st, rung, number, started, outcome, verdict, reason,
                                   guidance):
                return
            last = (rung.label, reason or "failed")
            await self._retry_pause(st, rung, number, outcome, reason)
        self.emit(ev.StepEnded(step=st.ref, status="failed", message=(
            f"every method failed; last: {last[0]}: {last[1]}" if last[0] else "failed")))

    async def _research(self, task: Task) -> None:
        if self.research is not None:
            await self.research(task)
            return
        self.emit(ev.ResearchEnded(
            task=task.ref, status="skipped",
            warning=f"task {task.ref} has research_enabled and no LLM provider is configured: "
                    "it runs without research findings (configure one with --provider, [llm] "
                    "or OPENAI_BASE_URL)"))
        self._flush()

    def _attempt_ended(self, st: StepState, rung: policy.Method, number: int, started: float,
                       outcome: Outcome, verdict: str, reason: str | None,
                       guidance: str | None) -> bool:
        """Record an attempt's end (and the step's, when it succeeded); True on success."""
        success = outcome.ok and verdict != "mismatch"
        summary = outcome.summary()
        self.emit(ev.AttemptEnded(
            step=st.ref, method=rung.label, attempt=number,
            outcome="success" if success else "error" if outcome.status == "error"
            else "failure", verdict=verdict, failure_reason=None if success and
            verdict != "partial" else reason, transient=outcome.transient,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            exit_code=outcome.exit_code, output_summary=summary,
            output=_jsonable(outcome.output), escalate=outcome.escalate,
            usage=outcome.usage, cost_usd=outcome.cost_usd, cached=outcome.cached))
        if success:
            self.emit(ev.StepEnded(
                step=st.ref, status="completed",
                method_used="human_guided" if guidance else rung.label,
                expected_output_match=None if verdict == "unchecked" else
                verdict == "match", message=summary))
        return success

    async def _retry_pause(self, st: StepState, rung: policy.Method, number: int,
                           outcome: Outcome, reason: str | None) -> None:
        """R-RETRY-4: backoff before the next try of the same method, for transient failures."""
        if outcome.transient and number < rung.tries:
            delay = policy.next_delay(self.spec.retry, number, True, self.rng)
            if delay > 0:
                self.emit(ev.RetryScheduled(step=st.ref, method=rung.label, delay_s=round(
                    delay, 3), reason=reason or ""))
                self._flush()
                await self.sleep(delay)

    def _trigger_backup(self, st: StepState, rung: policy.Method) -> None:
        reasons: dict[str, str] = {}
        for attempt in st.round_attempts():
            if attempt.failure_reason:
                reasons[attempt.method] = attempt.failure_reason
        if st.start_method == rung.label:
            self.emit(ev.BackupTriggered(
                step=st.ref, backup=rung.backup_id or 0, trigger="human_choice",
                justification=f"chosen by a human; trying: {rung.description}",
                failure_reasons=reasons))
            return
        previous = "primary" if rung.backup_id == 1 or not st.backups_triggered else \
            f"backup_{st.backups_triggered[-1]}"
        trigger = "primary_failure" if previous == "primary" else f"{previous}_failure"
        self.emit(ev.BackupTriggered(
            step=st.ref, backup=rung.backup_id or 0, trigger=trigger,
            justification=f"{previous} exhausted ({reasons.get(previous, 'failed')}); "
                          f"trying: {rung.description}", failure_reasons=reasons))

    def _context(self, task: Task, step: Step, st: StepState, method: str, number: int,
                 guidance: str | None, action: Action) -> StepContext:
        ref = st.ref
        reasons = {a.method: a.failure_reason for a in st.round_attempts()
                   if a.failure_reason} if len(st.attempts) > 1 else {}
        folders = self._folders_of(task)
        if self._run_vars is None:
            self._run_vars = {**(self.spec.vars or {}), **self.options.vars}
        return StepContext(
            spec=self.spec, task=task, step=step, ref=ref, method=method,
            attempt=number, workspace=folders[0], spec_folder=folders[1],
            output_dir=self._output_dir(ref),
            outputs=self._outputs, guidance=guidance, failure_reasons=reasons,
            vars=dict(self._run_vars),
            run_id=self.state.run_id, on_spawn=self._record_spawn,
            timeout=action.timeout_seconds or step.timeout_seconds,
            max_output_bytes=self.options.max_output_bytes)

    def _folders_of(self, task: Task) -> tuple[Path, Path]:
        """The task's (workspace, folder): computed once per run."""
        folders = self._folders.get(task.ref)
        if folders is None:
            folders = self._folders[task.ref] = (task_workspace(self.loaded, task),
                                                 task_folder(self.loaded, task))
        return folders

    def _output_dir(self, ref: str) -> Path:
        found = self._output_dirs.get(ref)
        if found is None:
            found = self._output_dirs[ref] = self._outputs_root.joinpath(ref)  # (faster than /)
        return found

    def _record_spawn(self, pgid: int) -> None:
        """Note an attempt's process group, so a resume after kill -9 can stop it (called from
        the command executor's worker threads: one appending descriptor, one line a write)."""
        with contextlib.suppress(OSError), self._spawned_lock:
            if self._spawned_fd < 0:
                self._spawned_fd = os.open(self.run_dir / "spawned",
                                           os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._spawned_fd, f"{pgid}\n".encode())

    def _stop_leftovers(self) -> None:
        path = self.run_dir / "spawned"
        with contextlib.suppress(OSError):
            pgids = [int(line) for line in path.read_text().split() if line.isdigit()]
            stop_leftovers(pgids, self.state.run_id)
            path.unlink()

    def _flush(self) -> None:
        """Write buffered events before acting on the world or waiting (see events.py)."""
        if self.log is not None:
            self.log.flush()

    def _flushed(self) -> asyncio.Future[None]:
        """Done once the events buffered so far are written: the branches that start attempts
        in one event-loop iteration share one write at its end (group commit), and none acts
        before it. (A future per branch: cancelling one branch must not cancel the others.)"""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._flush_waiters:
            loop.call_soon(self._write_for_waiters)
        self._flush_waiters.append(waiter)
        return waiter

    def _write_for_waiters(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        error: Exception | None = None
        try:
            self._flush()
        except Exception as exc:  # e.g. the disk is full: every waiting branch fails with it
            error = exc
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    async def _attempt(self, ctx: StepContext, rung: policy.Method) -> Outcome:
        if len(self.branches) > 1:
            await self._flushed()
        else:  # alone (a chain, a sequential run): no group to wait for
            self._flush()
        method = rung.action.effective_method
        if method == "human":
            return await self._human_step(ctx, rung)
        if method in ("tool", "script") and not rung.action.tool_path and \
                "cognitive" in self.executors:
            method = "cognitive"
        executor = self.executors.get(method)
        if executor is None:
            return Outcome("error", failure_reason=f"no executor for '{method}' steps")
        try:
            return await executor(rung.action, ctx)
        except (KeyboardInterrupt, asyncio.CancelledError, Stopped):  # Stopped: a budget
            raise
        except Exception as exc:  # an executor bug must not crash the run
            return Outcome("error", failure_reason=f"executor error: {exc.__class__.__name__}: "
                           f"{exc}")

    async def _human_step(self, ctx: StepContext, rung: policy.Method) -> Outcome:
        gate_id = f"human_step:{ctx.ref}:{self.state.steps[ctx.ref].round}:" \
                  f"{rung.label}:{ctx.attempt}"
        response, arg = await self._gate(
            gate_id, "human_step", ctx.ref,
            f"Human step {ctx.ref}: {rung.description}\nExpected: "
            f"{ctx.step.expected_output or '(not stated)'}\nApprove when done, or reject.",
            ["approve", "guidance", "reject", "abort"], auto=False)
        self._apply_abort(response, gate_id)
        self._close_gate(gate_id)
        if response in ("approve", "guidance"):
            return Outcome("ok", text=arg or "done")
        return Outcome("failed", failure_reason="the human reported the step was not done")

    # -- failures, escalation, gates ---------------------------------------------------------

    async def _after_failure(self, task: Task, step: Step) -> str | None:
        """R-CRIT-2: a critical step finally failed.

        Returns ``"rerun"`` when a human had the step run again (a nested :meth:`_step` did
        everything after it), ``"decided"`` when a human decision was applied now, and None
        when there was nothing (more) to decide. Raises Stopped for halt_on_critical.
        """
        st = self.state.steps[f"{task.ref}.{step.id}"]
        if st.resolved or not step.critical_flag or st.status != "failed":
            return None
        gate_id = f"critical_failure:{st.ref}:{st.round}"
        asked = self.state.gates.get(gate_id)
        if asked is not None and asked.closed:
            return None  # decided and applied before (switch_mode leaves the step failed)
        mode, strategy = self.state.mode, self._strategy()
        if mode in ("collaborative", "education") or strategy == "collaborative_review":
            options = ["retry", "guidance", "choose", "accept_failure", "skip", "abort",
                       "switch_mode"]
            response, arg = await self._gate(gate_id, "critical_failure", st.ref,
                                             self._failure_prompt(step, st), options)
            self._apply_abort(response, gate_id)
            if response in ("retry", "guidance", "choose"):
                self.emit(ev.StepReopened(step=st.ref, reason=f"human: {response}",
                                          start_method=arg if response == "choose" else None))
                self._close_gate(gate_id)
                await self._step(task, step)
                return "rerun"
            if response == "accept_failure":
                self.emit(ev.FailureResolved(step=st.ref, how="accept_failure"))
            elif response == "skip":
                self.emit(ev.StepEnded(step=st.ref, status="skipped", skip_reason="human",
                                       resolved=True, message="skipped after failing"))
            elif response == "switch_mode" and arg:
                self.emit(ev.ModeSwitched(from_mode=mode, to_mode=arg,
                                          reason="human choice after a critical failure",
                                          step=st.ref))
            self._close_gate(gate_id)
            return "decided"
        if strategy == "halt_on_critical":
            self.emit(ev.Escalated(step=st.ref, reasons=["critical_failure"], from_mode=mode,
                                   recommendation="fix the cause, then `specs resume`"))
            raise Stopped("halted", f"critical step {st.ref} failed: {st.message}", st.ref)
        return None  # continue_and_log: logged as unresolved; the goal is capped at the end

    async def _escalations(self, task: Task, step: Step, st: StepState) -> None:
        mode = self.state.mode
        if mode not in ("dynamic", "silent"):
            return
        reasons, measures, reset, advice = policy.escalation_reasons(
            self.state, self.spec, mode, st)
        trigger = self._named_trigger(st)
        if trigger:
            reasons.append(f"trigger:{trigger}")
        if not reasons:
            return
        number = len(self.state.escalations) + 1
        gate_id = f"escalation:{number}"
        self.emit(ev.Escalated(step=st.ref, reasons=reasons, measurements=measures,
                               from_mode=mode, recommendation=advice, reset=reset))
        response, arg = await self._gate(
            gate_id, "escalation", st.ref,
            f"Escalation after step {st.ref}: {', '.join(reasons)}"
            + (f". {advice}" if advice else ""),
            ["approve", "guidance", "switch_mode", "abort"])
        self._apply_abort(response, gate_id)
        if response == "switch_mode" and arg:
            self.emit(ev.ModeSwitched(from_mode=mode, to_mode=arg, reason="human choice at "
                                      "an escalation", step=st.ref))
        self._close_gate(gate_id)

    def _named_trigger(self, st: StepState) -> str | None:
        """R-ESC-6: the step's executor raised one of ``[execution] escalation_triggers``."""
        triggers = self.spec.execution.escalation_triggers
        if not triggers:
            return None
        for attempt in reversed(st.round_attempts()):
            if attempt.escalate and attempt.escalate in triggers:
                return attempt.escalate
        return None

    async def _pending_gates(self, ref: str) -> None:
        """On resume: an escalation gate left open after this step is answered now."""
        for gate in list(self.state.open_gates()):
            if gate.step == ref and gate.kind == "escalation":
                response, arg = await self._gate(gate.id, gate.kind, ref, gate.prompt,
                                                 gate.options)
                self._apply_abort(response, gate.id)
                if response == "switch_mode" and arg:
                    self.emit(ev.ModeSwitched(from_mode=self.state.mode, to_mode=arg,
                                              reason="human choice at an escalation", step=ref))
                self._close_gate(gate.id)

    async def _gate(self, gate_id: str, kind: str, ref: str | None, prompt: str,
                    options: list[str], *, auto: bool = True) -> tuple[str, str | None]:
        """Ask (or find) the answer to a gate; raises Paused when nobody can answer now.

        ``--yes`` answers ``approve`` where the gate offers it, unless ``auto`` is False (a
        human step: only a person can say it is done).
        """
        gate = self.state.gates.get(gate_id)
        if gate is None:
            self.emit(ev.GateRequested(gate=gate_id, kind=kind, step=ref, prompt=prompt,
                                       options=options))
            gate = self.state.gates[gate_id]
        if gate.response is None:
            if self.options.yes and auto and "approve" in options:
                self.emit(ev.GateAnswered(gate=gate_id, response="approve", by="auto"))
            elif self.interactive:
                assert self.human is not None
                if self._human_lock is None:
                    self._human_lock = asyncio.Lock()
                async with self._human_lock:  # parallel branches ask one at a time
                    text = await self.human.ask(gate, self._context_line(ref))
                verb, arg = parse_response(text, options)
                self.emit(ev.GateAnswered(gate=gate_id, response=_join(verb, arg), by="user",
                                          guidance=arg if verb == "guidance" else None))
            else:
                raise Paused(gate_id, f"{kind.replace('_', ' ')} gate at step {ref}: "
                             f"{prompt.splitlines()[0]}")
        verb, _, arg = (gate.response or "").partition(":")
        if verb == "reject":
            verb = {"human_step": "reject", "before_step": "skip", "education": "skip",
                    "propagation_review": "skip"}.get(kind, "abort")
        return verb, (gate.guidance or arg or None)

    def _close_gate(self, gate_id: str) -> None:
        gate = self.state.gates.get(gate_id)
        if gate is not None and not gate.closed:
            self.emit(ev.GateClosed(gate=gate_id))

    def _apply_abort(self, response: str, gate_id: str) -> None:
        if response == "abort":
            self._close_gate(gate_id)
            raise Stopped("aborted", f"aborted by a human at {gate_id}")

    def _context_line(self, ref: str | None) -> str:
        return f"[{self.state.run_id}] step {ref}" if ref else f"[{self.state.run_id}]"

    def _gate_prompt(self, step: Step, kind: str) -> str:
        rungs = self._rungs(step)
        lines = [f"{'Education checkpoint' if kind == 'education' else 'Approval'} before "
                 f"step: {step.description}",
                 f"Expected output: {step.expected_output or '(not stated)'}",
                 f"Critical: {'yes' if step.critical_flag else 'no'}"]
        lines += [f"  {r.label}: {r.description}" for r in rungs]
        return "\n".join(lines)

    def _failure_prompt(self, step: Step, st: StepState) -> str:
        lines = [f"Critical step {st.ref} failed: {step.description}"]
        for attempt in st.round_attempts():
            lines.append(f"  {attempt.method} attempt {attempt.attempt}: {attempt.outcome}"
                         + (f" ({attempt.failure_reason})" if attempt.failure_reason else ""))
        return "\n".join(lines)

    # -- the end -----------------------------------------------------------------------------

    async def _finish(self) -> None:
        self._flush()
        env = {**os.environ, "SPECS_RUN_ID": self.state.run_id,
               "SPECS_SPEC_DIR": str(self.loaded.folder)}
        result = await verify_completion(self.spec, self.state, self.workspace, env)
        self.emit(ev.CompletionVerified(**result))
        self.emit(ev.RunEnded(status="completed",
                              goal_achievement_status=result["goal_achievement_status"]))


def _eager_callable(target: str, folder: str) -> EagerCall | None:
    """The function ``module:function`` names, and whether it is ``async def``."""
    from specs.executors.python import resolve

    try:
        func = resolve(target, folder)
    except (Exception, SystemExit):
        return None  # the executor reports it, as an attempt's error
    if inspect.isasyncgenfunction(func):
        return None
    return func, inspect.iscoroutinefunction(func)


def _now(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (checks with nothing to run)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the coroutine suspended")


async def _awaited(value: Any) -> Any:
    try:
        return await value
    except (Exception, SystemExit) as exc:
        return python_failure(exc)


def _join(verb: str, arg: str | None) -> str:
    return f"{verb}:{arg}" if arg else verb


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        import json

        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)
