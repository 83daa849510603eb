"""The rules of one step, from ready to final (reference §3.4 R-LOOP, R-EP, R-CRIT, R-ESC):
trigger rule, condition, propagation check and gate before it starts, the method ladder
(:mod:`specs.engine.attempts`), then the failure strategy, escalations and the notepad; and
the rules of a task around its steps (its condition, its end status, ``[[transitions]]`` loops).

:meth:`Steps.step` runs one step completely; the scheduler calls it for each ready step (a
sequential run is the same scheduler with one step at a time), except ``[[transitions]]``
runs, which go task by task (:meth:`Steps.sequential`).
"""

from __future__ import annotations

import itertools
from typing import Any

from specs import events as ev
from specs.engine import policy
from specs.engine.notes import task_notes
from specs.engine.part import RunPart
from specs.engine.state import TASK_FINAL, StepState
from specs.engine.stops import Stopped
from specs.spec.conditions import ConditionError, Scope, evaluate, parse
from specs.spec.model import Step, Task

__all__ = ["Steps"]


class Steps(RunPart):
    """The step and task rules of one run; see the module docstring."""

    def __init__(self, run: Any) -> None:
        super().__init__(run)
        self._parsed: dict[str, Any] = {}  # condition text -> parsed
        self._scopes: dict[int, tuple[str, ...]] = {}  # per step: its dependencies' refs
        self._previous: dict[str, str] = {}  # step ref -> the step before it in its task
        for task in self.spec.tasks:
            ordered = sorted(task.steps, key=lambda s: s.id)
            for before, after in itertools.pairwise(ordered):
                self._previous[f"{task.ref}.{after.id}"] = f"{task.ref}.{before.id}"

    async def sequential(self) -> None:
        tasks = self.spec.tasks
        index = 0
        while index < len(tasks):
            task = tasks[index]
            task_state = self.state.tasks[task.ref]
            if task_state.status in TASK_FINAL:
                index += 1
                continue
            if task_state.status == "pending":
                self.emit(ev.TaskStarted(task=task.ref, description=task.description))
                if await self.task_skipped(task):
                    index += 1
                    continue
            for step in self.step_order(task):
                await self.step(task, step)
            self.end_task(task)
            jump = self.transition(task)
            index = index + 1 if jump is None else jump

    def step_order(self, task: Task) -> list[Step]:
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

    async def task_skipped(self, task: Task) -> bool:
        """A task condition (or ``mode_specific`` against ``vars.operational_mode``) that does
        not hold skips every step of the task."""
        reason = None
        text = task.condition
        variables = self.vars()
        if not text and task.mode_specific and "operational_mode" in variables:
            if str(variables["operational_mode"]).strip().lower() != \
                    task.mode_specific.strip().lower():
                reason = f"mode_specific {task.mode_specific!r} is not the operational mode"
        elif text:
            held, problem = self.condition(text, task.ref)
            if problem is not None:
                for step in task.steps:
                    ref = f"{task.ref}.{step.id}"
                    self.emit(ev.StepStarted(step=ref, mode=step.mode or self.state.mode,
                                             critical=step.critical_flag))
                    self.emit(ev.StepEnded(step=ref, status="failed",
                                           message=f"task condition error: {problem}"))
                    await self.gates.after_failure(task, step)
                self.end_task(task)
                return True
            if not held:
                reason = f"task condition is false: {text}"
        if reason is None:
            return False
        for step in task.steps:
            self.emit(ev.StepEnded(step=f"{task.ref}.{step.id}", status="skipped",
                                   skip_reason="condition_false", message=reason))
        self.end_task(task)
        return True

    def vars(self) -> dict[str, Any]:
        return {**(self.spec.vars or {}), **self.options.vars}

    def condition(self, text: str, task_ref: str) -> tuple[bool, str | None]:
        """Evaluate a condition: (value, None), or (False, reason) when it cannot be."""
        try:
            parsed = self._parsed.get(text)
            if parsed is None:
                parsed = self._parsed[text] = parse(text)
            scope = Scope(task=task_ref, outputs=self.run.outputs,
                          statuses={r: s.status for r, s in self.state.steps.items()},
                          vars=self.vars())
            return bool(evaluate(parsed, scope)), None
        except ConditionError as exc:
            return False, str(exc)

    def transition(self, task: Task) -> int | None:
        """After ``task``: a ``[[transitions]]`` loop back: the index of the task to go to."""
        if not self.spec.transitions:
            return None
        refs = [t.ref for t in self.spec.tasks]
        for item in self.spec.transitions or []:
            if str(item.from_task) != task.ref or str(item.to_task) not in refs:
                continue
            if item.when:
                held, problem = self.condition(item.when, task.ref)
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

    def end_task(self, task: Task) -> None:
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
            self.emit(self.notes(task.ref))
        self.emit(ev.TaskEnded(task=task.ref, status=status))

    async def step(self, task: Task, step: Step) -> None:
        ref = f"{task.ref}.{step.id}"
        st = self.state.steps[ref]
        if st.status in ("completed", "skipped"):
            await self.gates.pending(ref)
            return
        if st.status == "failed":
            # resumed: only a critical-failure gate answered now goes on as the live run would
            if await self.gates.after_failure(task, step) != "decided":
                await self.gates.pending(ref)
                return
        else:
            if st.status == "pending" and not await self._before_step(task, step, st):
                if st.status == "failed":  # its condition could not be evaluated
                    await self.gates.after_failure(task, step)
                return
            await self.ladder.climb(task, step, st)
            if st.status == "failed" and await self.gates.after_failure(task, step) == "rerun":
                return  # the re-run (a nested _step) evaluated escalations and the notepad
        await self.tail(task, step, st)

    async def tail(self, task: Task, step: Step, st: StepState) -> None:
        """After the step's final status: escalation triggers, then its notepad entry."""
        if st.status in ("completed", "failed"):
            await self.gates.escalations(task, step, st)
        self.notes_after(task, st)

    def notes_after(self, task: Task, st: StepState) -> None:
        capture = self.spec.knowledge_capture
        if capture.enabled and capture.update_frequency == "per_step" and st.status != "pending":
            self.emit(self.notes(task.ref, st.ref))

    def escalation_due(self, st: StepState) -> bool:
        reasons = policy.escalation_reasons(self.state, self.spec, self.state.mode, st)[0]
        return bool(reasons) or self.gates.named_trigger(st) is not None

    def notes(self, task_ref: str, step: str | None = None) -> ev.NotepadUpdated:
        notes = task_notes(self.spec, self.state, task_ref)
        return ev.NotepadUpdated(task=task_ref, step=step, insights=notes["insights"],
                                 technical_notes=notes["technical_notes"],
                                 ideas=notes["ideas"], human=notes["human"])

    async def _before_step(self, task: Task, step: Step, st: StepState) -> bool:
        """Trigger rule, condition, propagation check and gate; emits step-started.

        False when the step did not start (skipped, or failed by its condition)."""
        ref = st.ref
        scope = self.scope(task, step)
        if self.skipped_by_trigger_rule(ref, step, scope):
            return False
        if step.condition:
            held, problem = self.condition(step.condition, task.ref)
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
        deps = self.consulted(task, step, scope)
        blocking = self.state.unresolved_critical_failures(scope)
        decision = "none"
        if blocking:
            strategy = self.strategy()
            if strategy == "continue_and_log":
                decision = "continue_with_warning"
            elif strategy == "collaborative_review":
                decision = "review_requested"
                for failed in blocking:
                    response, _ = await self.gates.ask(
                        f"review:{failed}", "propagation_review", ref,
                        f"Critical step {failed} failed and is unresolved; step {ref} may "
                        "depend on it. Continue?", ["approve", "skip", "abort"])
                    if response == "skip":
                        self.gates.close(f"review:{failed}")
                        self.emit(ev.StepEnded(step=ref, status="skipped", skip_reason="human",
                                               message=f"skipped: {failed} failed"))
                        return False
                    self.gates.abort_if(response, f"review:{failed}")
                    self.gates.close(f"review:{failed}")
            else:
                raise Stopped("halted", f"critical step {blocking[0]} failed", blocking[0])
        kind = policy.gate_kind(step, self.state.mode, self.spec)
        if kind is not None:
            gate_id = f"{kind}:{ref}" + (f"#{st.round}" if st.round else "")
            options = ["approve", "guidance", "choose", "skip", "abort", "switch_mode"]
            response, arg = await self.gates.ask(gate_id, kind, ref,
                                                 self.gates.prompt_before(step, kind),
                                             options)
            if response == "skip":
                self.gates.close(gate_id)
                self.emit(ev.StepEnded(step=ref, status="skipped", skip_reason="human",
                                       resolved=True))
                return False
            self.gates.abort_if(response, gate_id)
            if response == "switch_mode" and arg:
                self.emit(ev.ModeSwitched(from_mode=self.state.mode, to_mode=arg,
                                          reason="human choice at a gate", step=ref))
            self.gates.close(gate_id)
        self.started(ref, step, deps, decision)
        return True

    def skipped_by_trigger_rule(self, ref: str, step: Step, scope: list[str] | None) -> bool:
        """Apply the step's trigger rule: True when it skipped the step (step-ended)."""
        blocked = self._trigger_rule(step, scope)
        if blocked is None:
            return False
        self.emit(ev.StepEnded(step=ref, status="skipped", skip_reason=blocked[0],
                               message=blocked[1]))
        return True

    def started(self, ref: str, step: Step, deps: list[str], decision: str) -> None:
        """step-started, with what the scheduler noted at launch (slot, group, ...)."""
        self.emit(ev.StepStarted(step=ref, mode=step.mode or self.state.mode,
                                 critical=step.critical_flag, prior_step_dependencies=deps,
                                 error_propagation_decision=decision,
                                 **self.run.launch_info.pop(ref, {})))

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
        found = self.run.step_by_ref.get(ref)
        return found is None or found.skip_ok is not False

    def scope(self, task: Task, step: Step) -> list[str] | None:
        """R-EP-2: the declared dependencies, or None for "every earlier step of the run"."""
        if not step.depends_on:
            return None
        found = self._scopes.get(id(step))
        if found is None:
            found = self._scopes[id(step)] = tuple(
                text if "." in text else f"{task.ref}.{text}"
                for text in map(str, step.depends_on))
        return list(found)  # a new list each time: step-started keeps it

    def consulted(self, task: Task, step: Step, scope: list[str] | None) -> list[str]:
        """What step-started logs as read (R-EP-1): the declared dependencies, else the step
        before it in its task (the check itself covers every earlier step of the run)."""
        if scope is not None:
            return scope
        previous = self._previous.get(f"{task.ref}.{step.id}")
        return [previous] if previous else []

    def strategy(self) -> str:
        if self.spec.error_propagation.propagation_strategy:
            return self.spec.error_propagation.propagation_strategy
        return policy.default_strategy(self.state.mode)
