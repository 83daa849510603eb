"""Inline steps: steps the scheduler can start inline, with no asyncio task of their own.

That is a fresh step whose primary method is a python callable with no timeout and no checks,
run by the built-in python executor, with no condition, no research phase, no gate in the
current mode, no guidance and no unresolved critical failure in the run: nothing can make such
a step wait before its function runs. A plain function (which the executor calls on the loop's
thread anyway) runs at once; an ``async def`` gets a task that only awaits it. The events are
the same, in the same order, as through :meth:`specs.engine.steps.Steps.step`; after a failed
first attempt the step goes on through the general path (retries, backups, gates).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from specs import events as ev
from specs.engine import policy
from specs.engine.checks import verdict as check_verdict
from specs.engine.part import RunPart
from specs.engine.state import StepState
from specs.executors.base import Outcome, StepContext
from specs.executors.python import call_async, call_sync, resolve, run_python, to_outcome
from specs.executors.python import failure as python_failure
from specs.spec.model import Step, Task

__all__ = ["Inline", "InlineCall"]

T = TypeVar("T")
#: a step's python function, and whether it is ``async def`` (see :meth:`Inline.function`)
InlineCall = tuple[Callable[..., Any], bool]


@dataclass(slots=True)
class _Begun:
    """An inline step between its start and its first attempt (see :meth:`Inline.start_batch`)."""

    task: Task
    step: Step
    st: StepState
    method: policy.Method
    began: float
    ctx: StepContext


class Inline(RunPart):
    """The inline steps of one run; see the module docstring."""

    def __init__(self, run: Any) -> None:
        super().__init__(run)
        self._calls: dict[int, InlineCall | None] = {}  # per step: see function
        self._funcs: dict[tuple[str, Path], InlineCall | None] = {}

    def function(self, task: Task, step: Step) -> InlineCall | None:
        """The function of a step the scheduler can start *inline* now, else None.

        That is a fresh step whose primary method is a python callable with no timeout and no
        checks, run by the built-in python executor, with no condition, no research phase, no
        gate in the current mode, no guidance and no unresolved critical failure in the run:
        nothing can make such a step wait before its function runs. The scheduler then starts
        it without going through the general step logic (:meth:`start_batch`): a plain
        function (which the executor calls on the loop's thread anyway) runs at once, with no
        task of its own; an ``async def`` gets a task that only awaits it. The events are the
        same, in the same order.
        """
        if id(step) in self._calls:
            found = self._calls[id(step)]
        else:
            found = self._calls[id(step)] = self._static(task, step)
        if found is None:
            return None
        st = self.state.steps[f"{task.ref}.{step.id}"]
        if st.status != "pending" or st.attempts or st.start_method is not None or \
                self.state.unresolved or policy.gate_kind(step, self.state.mode, self.spec) or \
                (self.state.gates and self.ladder.guidance(st.ref) is not None):
            return None
        return found

    def _static(self, task: Task, step: Step) -> InlineCall | None:
        if self.run.executors.get("python") is not run_python or step.effective_method != "python" \
                or not step.callable or step.condition or task.research_enabled or \
                step.timeout_seconds is not None or step.expected_files or step.verify or \
                step.output_schema is not None or step.verify_with:
            return None
        folder = self.ladder.folders_of(task)[1]
        key = (step.callable, folder)
        if key not in self._funcs:
            self._funcs[key] = _callable_of(step.callable, str(folder))
        return self._funcs[key]

    def start_batch(self, batch: list[tuple[Task, Step, InlineCall]]
                    ) -> list[Coroutine[Any, Any, None] | None]:
        """Start steps :meth:`function` chose that are ready together (none depends
        on another): trigger rule, step-started and the first attempt's start for all (one
        write for their events), then each plain function runs and ends at once, as branches
        launched together would. One result per step, in order: None when the step is over,
        else a coroutine that does the rest (awaits an ``async`` function; after a failure the
        retries and backups; an escalation gate), to be run as the step's branch."""
        started = [self._start(task, step) for task, step, _ in batch]
        self.journal.flush()
        return [None if begun is None else self._run(begun, call)
                for begun, (_, _, call) in zip(started, batch, strict=True)]

    def _start(self, task: Task, step: Step) -> _Begun | None:
        ref = f"{task.ref}.{step.id}"
        st = self.state.steps[ref]
        scope = self.steps.scope(task, step)
        if self.steps.skipped_by_trigger_rule(ref, step, scope):
            return None
        self.steps.started(ref, step, self.steps.consulted(task, step, scope), "none")
        began = time.monotonic()
        method = policy.primary(step)  # (the whole ladder only if this attempt fails)
        self.emit(ev.AttemptStarted(step=ref, method=method.label, attempt=1))
        return _Begun(task, step, st, method, began,
                      self.ladder.context(task, step, st, method.label, 1, None, method.action))

    def _run(self, begun: _Begun, call: InlineCall) -> Coroutine[Any, Any, None] | None:
        func, is_async = call
        if is_async:
            return self._async(begun, func)
        started = time.perf_counter()
        result = call_sync(func, begun.ctx)
        if inspect.isawaitable(result):  # a plain function returned an awaitable: await it
            return self._awaited_rest(begun, started, result)
        return self._ended(begun, started, to_outcome(result))

    async def _async(self, begun: _Begun, func: Callable[..., Any]) -> None:
        started = time.perf_counter()
        rest = self._ended(begun, started, to_outcome(await call_async(func, begun.ctx)))
        if rest is not None:
            await rest

    async def _awaited_rest(self, begun: _Begun, started: float, result: Any) -> None:
        rest = self._ended(begun, started, to_outcome(await _awaited(result)))
        if rest is not None:
            await rest

    def _ended(self, begun: _Begun, started: float,
                     outcome: Outcome) -> Coroutine[Any, Any, None] | None:
        """Record an inline step's first attempt; what is left to do, if anything."""
        task, step, st, method = begun.task, begun.step, begun.st, begun.method
        verdict, reason = "unchecked", outcome.failure_reason
        if outcome.ok and outcome.verdict:  # the function's own verdict (no checks to run)
            verdict, reason = _now(check_verdict(method.action, step, begun.ctx, outcome,
                                                 self.run.judge))
        if not self.ladder.attempt_ended(st, method, 1, started, outcome, verdict, reason, None):
            return self._failed(task, step, st, method, outcome, reason, begun.began)
        if self.state.mode in ("dynamic", "silent") and self.steps.escalation_due(st):
            return self.steps.tail(task, step, st)
        self.steps.notes_after(task, st)
        return None

    async def _failed(self, task: Task, step: Step, st: StepState, method: policy.Method,
                            outcome: Outcome, reason: str | None, began: float) -> None:
        """The rest of an inline step whose first attempt failed: the ladder goes on."""
        await self.ladder.retry_pause(st, method, 1, outcome, reason)
        await self.ladder.climb(task, step, st, began=began,
                                last=(method.label, reason or "failed"))
        if st.status == "failed" and await self.gates.after_failure(task, step) == "rerun":
            return
        await self.steps.tail(task, step, st)


def _callable_of(target: str, folder: str) -> InlineCall | None:
    """The function ``module:function`` names, and whether it is ``async def``."""
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
