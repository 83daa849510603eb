"""Gates: where a run waits for a human decision (reference §3.3 R-MODE, §3.8 escalation,
R-CRIT-2 critical failures).

A gate is asked once (``gate-requested``) and answered once (``gate-answered``: by the person at
the terminal, ``--yes``, ``specs approve``/``reject`` from another process, or ``--decision`` on
resume), then closed when its answer was applied (``gate-closed``). With nobody to answer now,
:meth:`Gates.ask` raises :class:`~specs.engine.stops.Paused` and the run pauses (exit code 3);
``specs resume`` finds the answer in the log and goes on from the same gate.

Kinds: ``before_step`` / ``education`` (the mode's approval before a step), ``human_step`` (a
person did the step), ``critical_failure`` (a critical step finally failed, in collaborative
and education modes), ``escalation`` (a dynamic or silent run escalates: consecutive failures,
backups exhausted, low confidence, named triggers), ``propagation_review`` (a step may depend on
an unresolved critical failure).
"""

from __future__ import annotations

import asyncio

from specs import events as ev
from specs.engine import policy
from specs.engine.human import parse_response
from specs.engine.part import RunPart
from specs.engine.state import StepState
from specs.engine.stops import Paused, Stopped
from specs.spec.model import Step, Task

__all__ = ["Gates", "join_response"]


def join_response(verb: str, arg: str | None) -> str:
    """An answer as the log records it: ``verb`` or ``verb:arg``."""
    return f"{verb}:{arg}" if arg else verb


class Gates(RunPart):
    """The gates of one run; see the module docstring."""

    _human_lock: asyncio.Lock | None = None

    async def after_failure(self, task: Task, step: Step) -> str | None:
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
        mode, strategy = self.state.mode, self.steps.strategy()
        if mode in ("collaborative", "education") or strategy == "collaborative_review":
            options = ["retry", "guidance", "choose", "accept_failure", "skip", "abort",
                       "switch_mode"]
            response, arg = await self.ask(gate_id, "critical_failure", st.ref,
                                             self._failure_prompt(step, st), options)
            self.abort_if(response, gate_id)
            if response in ("retry", "guidance", "choose"):
                self.emit(ev.StepReopened(step=st.ref, reason=f"human: {response}",
                                          start_method=arg if response == "choose" else None))
                self.close(gate_id)
                await self.steps.step(task, step)
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
            self.close(gate_id)
            return "decided"
        if strategy == "halt_on_critical":
            self.emit(ev.Escalated(step=st.ref, reasons=["critical_failure"], from_mode=mode,
                                   recommendation="fix the cause, then `specs resume`"))
            raise Stopped("halted", f"critical step {st.ref} failed: {st.message}", st.ref)
        return None  # continue_and_log: logged as unresolved; the goal is capped at the end

    async def escalations(self, task: Task, step: Step, st: StepState) -> None:
        mode = self.state.mode
        if mode not in ("dynamic", "silent"):
            return
        reasons, measures, reset, advice = policy.escalation_reasons(
            self.state, self.spec, mode, st)
        trigger = self.named_trigger(st)
        if trigger:
            reasons.append(f"trigger:{trigger}")
        if not reasons:
            return
        number = len(self.state.escalations) + 1
        gate_id = f"escalation:{number}"
        self.emit(ev.Escalated(step=st.ref, reasons=reasons, measurements=measures,
                               from_mode=mode, recommendation=advice, reset=reset))
        response, arg = await self.ask(
            gate_id, "escalation", st.ref,
            f"Escalation after step {st.ref}: {', '.join(reasons)}"
            + (f". {advice}" if advice else ""),
            ["approve", "guidance", "switch_mode", "abort"])
        self.abort_if(response, gate_id)
        if response == "switch_mode" and arg:
            self.emit(ev.ModeSwitched(from_mode=mode, to_mode=arg, reason="human choice at "
                                      "an escalation", step=st.ref))
        self.close(gate_id)

    def named_trigger(self, st: StepState) -> str | None:
        """R-ESC-6: the step's executor raised one of ``[execution] escalation_triggers``."""
        triggers = self.spec.execution.escalation_triggers
        if not triggers:
            return None
        for attempt in reversed(st.round_attempts()):
            if attempt.escalate and attempt.escalate in triggers:
                return attempt.escalate
        return None

    async def pending(self, ref: str) -> None:
        """On resume: an escalation gate left open after this step is answered now."""
        for gate in list(self.state.open_gates()):
            if gate.step == ref and gate.kind == "escalation":
                response, arg = await self.ask(gate.id, gate.kind, ref, gate.prompt,
                                                 gate.options)
                self.abort_if(response, gate.id)
                if response == "switch_mode" and arg:
                    self.emit(ev.ModeSwitched(from_mode=self.state.mode, to_mode=arg,
                                              reason="human choice at an escalation", step=ref))
                self.close(gate.id)

    async def ask(self, gate_id: str, kind: str, ref: str | None, prompt: str,
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
            elif self.run.interactive:
                assert self.run.human is not None
                if self._human_lock is None:
                    self._human_lock = asyncio.Lock()
                async with self._human_lock:  # parallel branches ask one at a time
                    text = await self.run.human.ask(gate, self._context_line(ref))
                verb, arg = parse_response(text, options)
                self.emit(ev.GateAnswered(gate=gate_id, response=join_response(verb, arg),
                                          by=getattr(self.run.human, "last_by", "user"),
                                          guidance=arg if verb == "guidance" else None))
            else:
                raise Paused(gate_id, f"{kind.replace('_', ' ')} gate at step {ref}: "
                             f"{prompt.splitlines()[0]}")
        verb, _, arg = (gate.response or "").partition(":")
        if verb == "reject":
            verb = {"human_step": "reject", "before_step": "skip", "education": "skip",
                    "propagation_review": "skip"}.get(kind, "abort")
        return verb, (gate.guidance or arg or None)

    def close(self, gate_id: str) -> None:
        gate = self.state.gates.get(gate_id)
        if gate is not None and not gate.closed:
            self.emit(ev.GateClosed(gate=gate_id))

    def abort_if(self, response: str, gate_id: str) -> None:
        if response == "abort":
            self.close(gate_id)
            raise Stopped("aborted", f"aborted by a human at {gate_id}")

    def _context_line(self, ref: str | None) -> str:
        return f"[{self.state.run_id}] step {ref}" if ref else f"[{self.state.run_id}]"

    def prompt_before(self, step: Step, kind: str) -> str:
        methods = self.ladder.methods(step)
        lines = [f"{'Education checkpoint' if kind == 'education' else 'Approval'} before "
                 f"step: {step.description}",
                 f"Expected output: {step.expected_output or '(not stated)'}",
                 f"Critical: {'yes' if step.critical_flag else 'no'}"]
        lines += [f"  {r.label}: {r.description}" for r in methods]
        return "\n".join(lines)

    def _failure_prompt(self, step: Step, st: StepState) -> str:
        lines = [f"Critical step {st.ref} failed: {step.description}"]
        for attempt in st.round_attempts():
            lines.append(f"  {attempt.method} attempt {attempt.attempt}: {attempt.outcome}"
                         + (f" ({attempt.failure_reason})" if attempt.failure_reason else ""))
        return "\n".join(lines)
