"""The method ladder of a step (reference §3.5 R-RETRY, SPEC_FORMAT.md §1.3): its attempts
until one succeeds or every method is exhausted.

The primary method gets ``1 + max_retries`` attempts, then each backup in id order its own
``1 + max_retries`` (:func:`specs.engine.policy.ladder`). Between tries of one method, a
transient failure waits with backoff (:func:`specs.engine.policy.next_delay`); a failed
expected-output check retries at once with the reason in the context. Every attempt is
``attempt-started`` (written before it acts on the world) and ``attempt-ended`` with its
outcome; a backup's first attempt is preceded by ``backup-triggered``; the step ends
``completed`` at the first success, else ``failed``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from specs import events as ev
from specs.engine import policy
from specs.engine.checks import verdict as check_verdict
from specs.engine.part import RunPart
from specs.engine.state import StepState
from specs.engine.stops import Stopped
from specs.executors.base import Outcome, StepContext
from specs.spec.compose import task_folder, task_workspace
from specs.spec.model import Action, Step, Task

__all__ = ["BACKSTOP_S", "Ladder"]

#: after its timeout, how long an attempt may take to end itself before it is cancelled;
#: processes get longer (SIGTERM, SIGKILL after a grace, then their pipes:
#: specs.executors.command)
BACKSTOP_S = 0.5
PROCESS_BACKSTOP_S = 3.0
PROCESSES = frozenset({"command", "tool", "script"})


class Ladder(RunPart):
    """The method ladders of one run's steps; see the module docstring."""

    def __init__(self, run: Any) -> None:
        super().__init__(run)
        self._ladders: dict[int, list[policy.Method]] = {}  # per step (steps are immutable)
        self.outputs_root = Path("outputs")  # set when the run folder is known
        self._output_dirs: dict[str, Path] = {}
        self._folders: dict[str, tuple[Path, Path]] = {}  # task ref -> (workspace, folder)
        self._run_vars: dict[str, Any] | None = None

    def guidance(self, ref: str) -> str | None:
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

    def methods(self, step: Step) -> list[policy.Method]:
        found = self._ladders.get(id(step))
        if found is None:
            found = self._ladders[id(step)] = policy.ladder(step)
        return found

    async def climb(self, task: Task, step: Step, st: StepState, *, began: float | None = None,
                      last: tuple[str, str] = ("", "")) -> None:
        """The step's attempts until one succeeds or every method is exhausted. ``began`` and
        ``last`` carry on a ladder whose first attempt ran already (an inline step's)."""
        methods = self.methods(step)
        if task.research_enabled and task.ref not in self.state.research:
            await self._research(task)  # R-RES: the task's research phase, once, before its steps
        guidance = self.guidance(st.ref)
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
            found = policy.next_attempt(methods, st)
            if found is None:
                break
            index, number = found
            method = methods[index]
            if step.total_timeout_seconds and time.monotonic() - began > \
                    step.total_timeout_seconds:
                last = (method.label, f"total_timeout_seconds ({step.total_timeout_seconds:g}) "
                        "exceeded")
                break
            if method.backup_id is not None and method.backup_id not in st.backups_triggered:
                self._trigger_backup(st, method)
            self.emit(ev.AttemptStarted(step=st.ref, method=method.label, attempt=number,
                                        guidance=guidance))
            started = time.perf_counter()
            ctx = self.context(task, step, st, method.label, number, guidance, method.action,
                               left=step.total_timeout_seconds - (time.monotonic() - began)
                               if step.total_timeout_seconds else None)
            outcome = await self._attempt(ctx, method)
            verdict, reason = "unchecked", outcome.failure_reason
            if outcome.ok:
                self.journal.flush()
                verdict, check_reason = await check_verdict(method.action, step, ctx, outcome,
                                                            self.run.judge)
                reason = check_reason
            if self.attempt_ended(st, method, number, started, outcome, verdict, reason,
                                   guidance):
                return
            last = (method.label, reason or "failed")
            await self.retry_pause(st, method, number, outcome, reason)
        self.emit(ev.StepEnded(step=st.ref, status="failed", message=(
            f"every method failed; last: {last[0]}: {last[1]}" if last[0] else "failed")))

    async def _research(self, task: Task) -> None:
        if self.run.research is not None:
            await self.run.research(task)
            return
        self.emit(ev.ResearchEnded(
            task=task.ref, status="skipped",
            warning=f"task {task.ref} has research_enabled and no LLM provider is configured: "
                    "it runs without research findings (configure one with --provider, [llm] "
                    "or OPENAI_BASE_URL)"))
        self.journal.flush()

    def attempt_ended(self, st: StepState, method: policy.Method, number: int, started: float,
                       outcome: Outcome, verdict: str, reason: str | None,
                       guidance: str | None) -> bool:
        """Record an attempt's end (and the step's, when it succeeded); True on success."""
        success = outcome.ok and verdict != "mismatch"
        summary = outcome.summary()
        self.emit(ev.AttemptEnded(
            step=st.ref, method=method.label, attempt=number,
            outcome="success" if success else "error" if outcome.status == "error"
            else "failure", verdict=verdict, failure_reason=None if success and
            verdict != "partial" else reason, transient=outcome.transient,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            exit_code=outcome.exit_code, output_summary=summary,
            output=_jsonable(outcome.output), escalate=outcome.escalate,
            usage=outcome.usage, cost_usd=outcome.cost_usd, cached=outcome.cached,
            permanent=outcome.permanent, output_truncated=outcome.truncated))
        if success:
            self.emit(ev.StepEnded(
                step=st.ref, status="completed",
                method_used="human_guided" if guidance else method.label,
                expected_output_match=None if verdict == "unchecked" else
                verdict == "match", message=summary))
        return success

    async def retry_pause(self, st: StepState, method: policy.Method, number: int,
                           outcome: Outcome, reason: str | None) -> None:
        """R-RETRY-4: backoff before the next try of the same method, for transient failures."""
        if outcome.transient and number < method.tries:
            delay = policy.next_delay(self.spec.retry, number, True, self.run.rng)
            if delay > 0:
                self.emit(ev.RetryScheduled(step=st.ref, method=method.label, delay_s=round(
                    delay, 3), reason=reason or ""))
                self.journal.flush()
                await self.run.sleep(delay)

    def _trigger_backup(self, st: StepState, method: policy.Method) -> None:
        reasons: dict[str, str] = {}
        for attempt in st.round_attempts():
            if attempt.failure_reason:
                reasons[attempt.method] = attempt.failure_reason
        if st.start_method == method.label:
            self.emit(ev.BackupTriggered(
                step=st.ref, backup=method.backup_id or 0, trigger="human_choice",
                justification=f"chosen by a human; trying: {method.description}",
                failure_reasons=reasons))
            return
        previous = "primary" if method.backup_id == 1 or not st.backups_triggered else \
            f"backup_{st.backups_triggered[-1]}"
        trigger = "primary_failure" if previous == "primary" else f"{previous}_failure"
        self.emit(ev.BackupTriggered(
            step=st.ref, backup=method.backup_id or 0, trigger=trigger,
            justification=f"{previous} exhausted ({reasons.get(previous, 'failed')}); "
                          f"trying: {method.description}", failure_reasons=reasons))

    def context(self, task: Task, step: Step, st: StepState, method: str, number: int,
                 guidance: str | None, action: Action, *,
                 left: float | None = None) -> StepContext:
        """The attempt's context. Its ``timeout`` is the method's ``timeout_seconds`` (else
        the step's), cut to what ``left`` of the step's ``total_timeout_seconds`` remains."""
        ref = st.ref
        timeout = action.timeout_seconds or step.timeout_seconds
        if left is not None:
            timeout = max(0.001, left if timeout is None else min(timeout, left))
        reasons = {a.method: a.failure_reason for a in st.round_attempts()
                   if a.failure_reason} if len(st.attempts) > 1 else {}
        folders = self.folders_of(task)
        if self._run_vars is None:
            self._run_vars = {**(self.spec.vars or {}), **self.options.vars}
        return StepContext(
            spec=self.spec, task=task, step=step, ref=ref, method=method,
            attempt=number, workspace=folders[0], spec_folder=folders[1],
            output_dir=self._output_dir(ref),
            outputs=self.run.outputs, guidance=guidance, failure_reasons=reasons,
            vars=dict(self._run_vars),
            run_id=self.state.run_id, on_spawn=self.journal.record_spawn,
            timeout=timeout, max_output_bytes=self.options.max_output_bytes)

    def folders_of(self, task: Task) -> tuple[Path, Path]:
        """The task's (workspace, folder): computed once per run."""
        folders = self._folders.get(task.ref)
        if folders is None:
            folders = self._folders[task.ref] = (task_workspace(self.loaded, task),
                                                 task_folder(self.loaded, task))
        return folders

    def _output_dir(self, ref: str) -> Path:
        found = self._output_dirs.get(ref)
        if found is None:
            found = self._output_dirs[ref] = self.outputs_root.joinpath(ref)  # (faster than /)
        return found

    async def _attempt(self, ctx: StepContext, method: policy.Method) -> Outcome:
        await self.journal.before_acting()
        execution = method.action.effective_method
        if execution == "human":
            return await self._human_step(ctx, method)
        if method.action.is_cognitive and "cognitive" in self.run.executors:
            execution = "cognitive"
        executor = self.run.executors.get(execution)
        if executor is None:
            return Outcome("error", failure_reason=f"no executor for '{execution}' steps")
        try:
            if ctx.timeout is None:
                return await executor(method.action, ctx)
            # every execution method is bounded by its timeout: the executor ends its own
            # attempt (a command's process group is killed, an LLM call closed); this is the
            # backstop for one that does not
            grace = PROCESS_BACKSTOP_S if execution in PROCESSES else BACKSTOP_S
            return await asyncio.wait_for(executor(method.action, ctx), ctx.timeout + grace)
        except TimeoutError:
            return Outcome("failed", transient=True, failure_reason=(
                f"timed out after {ctx.timeout:g} s"))
        except (KeyboardInterrupt, asyncio.CancelledError, Stopped):  # Stopped: a budget
            raise
        except Exception as exc:  # an executor bug must not crash the run
            return Outcome("error", failure_reason=f"executor error: {exc.__class__.__name__}: "
                           f"{exc}")

    async def _human_step(self, ctx: StepContext, method: policy.Method) -> Outcome:
        gate_id = f"human_step:{ctx.ref}:{self.state.steps[ctx.ref].round}:" \
                  f"{method.label}:{ctx.attempt}"
        response, arg = await self.gates.ask(
            gate_id, "human_step", ctx.ref,
            f"Human step {ctx.ref}: {method.description}\nExpected: "
            f"{ctx.step.expected_output or '(not stated)'}\nApprove when done, or reject.",
            ["approve", "guidance", "reject", "abort"], auto=False)
        self.gates.abort_if(response, gate_id)
        self.gates.close(gate_id)
        if response in ("approve", "guidance"):
            return Outcome("ok", text=arg or "done")
        return Outcome("failed", failure_reason="the human reported the step was not done")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)
