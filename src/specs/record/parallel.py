"""The parallel-execution facts of a run, measured from its events' times (reference §5.1
item 7; docs/timeline.md).

:class:`ParallelFacts` gives the progress document the parallel fields of each step
(``execution_id`` .. ``dependencies_satisfied``), each task's ``phases`` and the run's
``parallel_execution_summary`` (:func:`parallel_summary`); the timeline
(:mod:`specs.record.timeline`) draws the same measures. A step's span runs from its first
launch to its last end; a step still running (or cut short) counts up to the moment described:
the last event, or the time a live writer passes. :func:`overlapping` finds the steps that ran
beside another, :func:`synchronisation_points` the phases the run really waited at, and
:func:`measured_critical_path` the chain of steps that set the run's length. Every function
is pure and reads no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from specs import events as ev
from specs.engine.state import STEP_FINAL, RunState, StepState, TaskState
from specs.record.facts import Span, spec_facts, to_epoch
from specs.spec.model import Spec

__all__ = ["ParallelFacts", "measured_critical_path", "overlapping", "parallel_summary",
           "synchronisation_points"]


def overlapping(spans: Mapping[str, Span]) -> set[str]:
    """The keys whose span overlaps another one's (touching at an end point does not count).

    One sweep in start order: a span overlaps an earlier one iff the latest end so far is past
    its start, and then it overlaps the span that holds that end as well.
    """
    found: set[str] = set()
    best_end, best_key = -math.inf, ""
    for start, end, key in sorted([(start, end, key) for key, (start, end) in spans.items()]):
        if best_end > start:
            found.update((key, best_key))
        if end > best_end:
            best_end, best_key = end, key
    return found


def synchronisation_points(phases: Sequence[Sequence[str]], spans: Mapping[str, Span]) -> int:
    """Phases where more than one step ran, at least two of them at the same time, and the
    next phase started only after all of them had ended (a barrier the run really waited at)."""
    count = 0
    for here, after in pairwise(phases):
        if len(here) < 2:
            continue
        ran = {ref: spans[ref] for ref in here if ref in spans}
        starts = [spans[ref][0] for ref in after if ref in spans]
        if len(ran) > 1 and starts and overlapping(ran) \
                and min(starts) >= max(end for _, end in ran.values()):
            count += 1
    return count


def measured_critical_path(spans: Mapping[str, Span], deps: Mapping[str, Sequence[str]],
                           order: Sequence[str] = ()) -> list[str]:
    """The chain of steps that set the run's length: from the step that ended last, back
    through the dependency each one waited for longest (the one that ended last; steps that
    did not run are looked through). Ties go to the later step in ``order``."""
    if not spans:
        return []
    rank = {ref: i for i, ref in enumerate(order)}

    def key(ref: str) -> tuple[float, int, str]:
        return spans[ref][1], rank.get(ref, len(rank)), ref

    def latest(refs: Sequence[str]) -> str:
        """``max(refs, key=key)``, comparing the ends first (the keys are unique)."""
        if len(refs) == 1:
            return refs[0]
        last = max(spans[ref][1] for ref in refs)
        ended_last = [ref for ref in refs if spans[ref][1] == last]
        return ended_last[0] if len(ended_last) == 1 else max(ended_last, key=key)

    # the two shortcuts below (a chain; every dependency ran) spare the look-through walk
    # its allocations: 3-31 % of a first build, most on sequential runs and chains
    node = latest(list(spans))
    path, seen = [node], {node}
    while True:
        direct = deps.get(node, ())
        if len(direct) == 1 and direct[0] in spans and direct[0] not in seen:  # a chain
            node = direct[0]
            path.append(node)
            seen.add(node)
            continue
        found = [d for d in direct if d in spans and d not in seen]
        if len(found) == len(direct):  # every dependency ran: no need to look through
            if not found:
                return path[::-1]
            node = latest(found)
            path.append(node)
            seen.add(node)
            continue
        found = []
        stack, visited = list(direct), set()
        while stack:
            dep = stack.pop()
            if dep in visited or dep in seen:
                continue
            visited.add(dep)
            if dep in spans:
                found.append(dep)
            else:
                stack.extend(deps.get(dep, ()))
        if not found:
            return path[::-1]
        node = latest(found)
        path.append(node)
        seen.add(node)


def parallel_summary(planned: ev.ExecutionPlanned | None, max_concurrent: int,
                     spans: Mapping[str, Span], phases: Sequence[Sequence[str]],
                     critical_path: Sequence[str], deps: Mapping[str, Sequence[str]],
                     order: Sequence[str] = ()) -> dict[str, Any]:
    """``parallel_execution_summary``: the run's limit and measured concurrency, the sum of
    the steps' times against the makespan (first launch to last end), the time parallelism
    saved, the synchronisation points and the critical path (the plan's, and the measured
    one). ``spans`` holds the steps that started: those that ended, and those still running
    (or cut short by an interruption) up to the moment the summary describes."""
    total = sum(end - start for start, end in spans.values())
    makespan = (max(end for _, end in spans.values())
                - min(start for start, _ in spans.values())) if spans else 0.0
    return {
        "enabled": bool(planned is not None and planned.parallel),
        "max_parallel": planned.max_parallel if planned is not None else 1,
        "max_concurrent_steps": max_concurrent,
        "sum_of_step_durations_s": round(total, 3),
        "makespan_s": round(makespan, 3),
        "time_saved_s": round(max(0.0, total - makespan), 3),
        "synchronisation_points": synchronisation_points(phases, spans),
        "critical_path": list(critical_path),
        "measured_critical_path": measured_critical_path(spans, deps, order),
    }


class ParallelFacts:
    """The parallel-execution facts of one progress document, computed once from the times
    the events recorded (no clock is read). Per step (``execution_id``, ``parallel_group``,
    ``thread_id``, ``launched_at``, ``completed_at``, ``execution_time_ms``,
    ``parallel_execution``, ``dependencies_satisfied``; the progress document builds those
    from :attr:`closed`, :attr:`parallel` and :attr:`nodes`), per task (:meth:`task_phases`:
    the plan's phases restricted to the task's steps) and for the run (:meth:`summary`).
    Sequential runs get the same keys (one thread, ``enabled: false``)."""

    def __init__(self, spec: Spec, state: RunState, now: float | None = None) -> None:
        self.state = state
        self.facts = spec_facts(spec)
        self.plan = self.facts.plan
        self.nodes = self.facts.nodes
        if now is None:
            now = to_epoch(state.last_event_at)
        self.now = now
        """the moment the facts describe: the given time, else the last event's"""
        self.closed: dict[str, Span] = {}  # started and ended: first launch -> last end
        self.ends: dict[str, float] = {}  # every step that ended (a skipped one too)
        spans: dict[str, Span] = {}  # also those running: up to ``now``
        self.spans = spans
        for ref, step in state.steps.items():
            start = to_epoch(step.started_at)
            end = to_epoch(step.ended_at)
            if end is not None:
                self.ends[ref] = end
            if start is None:
                continue
            if end is not None:
                spans[ref] = self.closed[ref] = (start, max(start, end))
            elif step.status == "started" and now is not None:
                spans[ref] = (start, max(start, now))
        self.parallel = overlapping(spans)
        """the steps whose span overlaps another's"""

    def task_phases(self, task: TaskState) -> list[dict[str, Any]]:
        """``phases[]`` of a task: ``phase_id`` (the plan's phase number, as ``specs plan``
        prints it), ``steps_in_phase`` (step ids), ``parallel_groups``, and ``phase_start``
        (first launch), ``phase_end`` (last end, once every step of the phase is final) and
        ``phase_duration_ms``."""
        out = []
        all_steps, closed, ends = self.state.steps, self.closed, self.ends
        nodes = self.nodes
        for number, refs in self.facts.task_phases.get(task.ref, ()):
            # the common case (every phase of a sequential run or a chain), without the lists:
            # 20-46 % of such a document's build
            if len(refs) == 1 and refs[0] in all_steps:
                out.append(self._single_phase(number, all_steps[refs[0]], nodes))
                continue
            steps = [all_steps[r] for r in refs if r in all_steps]
            launched: list[tuple[float | None, str | None]] = [
                (closed[s.ref][0], s.started_at) for s in steps if s.ref in closed]
            launched += [(to_epoch(s.started_at), s.started_at) for s in steps
                         if s.started_at and s.ref not in closed]
            ended: list[tuple[float | None, str | None]] = [
                (ends[s.ref], s.ended_at) for s in steps if s.ref in ends]
            first = min(launched or ended, key=_first, default=(None, None))
            final = bool(steps) and all(s.status in STEP_FINAL
                                        and s.ended_at for s in steps)
            last = max(ended, key=_first) if final and ended else (None, None)
            groups = [nodes[r].parallel_group for r in refs if r in nodes]
            out.append({
                "phase_id": number,
                "steps_in_phase": [s.id for s in steps],
                "parallel_groups": list(dict.fromkeys(g for g in groups if g)),
                "phase_start": first[1],
                "phase_end": last[1],
                "phase_duration_ms": round((last[0] - first[0]) * 1000)
                if first[0] is not None and last[0] is not None else None,
            })
        return out

    def _single_phase(self, number: int, step: StepState,
                      nodes: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`task_phases` for a phase of one step (the same values, computed directly)."""
        ref = step.ref
        span = self.closed.get(ref)
        end = self.ends.get(ref)
        first_at: float | None
        if span is not None:
            first_at, first = span[0], step.started_at
        elif step.started_at:
            first_at, first = to_epoch(step.started_at), step.started_at
        elif end is not None:
            first_at, first = end, step.ended_at
        else:
            first_at = first = None
        last = step.ended_at if end is not None and step.ended_at \
            and step.status in STEP_FINAL else None
        node = nodes.get(ref)
        group = node.parallel_group if node is not None else None
        return {
            "phase_id": number,
            "steps_in_phase": [step.id],
            "parallel_groups": [group] if group else [],
            "phase_start": first,
            "phase_end": last,
            "phase_duration_ms": round((end - first_at) * 1000)
            if first_at is not None and last is not None and end is not None else None,
        }

    def summary(self) -> dict[str, Any]:
        """``parallel_execution_summary`` (see :func:`parallel_summary`)."""
        plan, planned = self.plan, self.state.planned
        if plan is not None:
            critical: Sequence[str] = plan.critical_path
            deps: Mapping[str, Sequence[str]] = self.facts.deps
        else:
            critical = planned.critical_path if planned is not None else []
            deps = {r: s.launch.get("dependencies_satisfied") or s.prior_step_dependencies
                    for r, s in self.state.steps.items()}
        return parallel_summary(planned, self.state.max_running, self.spans,
                                plan.phases if plan is not None else (), critical, deps,
                                plan.order if plan is not None else list(self.state.steps))


def _first(item: tuple[float | None, str | None]) -> float:
    return item[0] if item[0] is not None else math.inf
