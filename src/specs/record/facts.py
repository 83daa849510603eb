"""What the projections read from a spec and from the events' times.

:func:`spec_facts` derives, once per spec object, what the progress document and the timeline
need from the spec and its plan (:class:`SpecFacts`): each task's phases, the dependencies and
the order, the steps' declared backups. :func:`to_epoch` turns an event's time into a Unix
time, the unit every measured span (:data:`Span`) is in.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from specs.plan.cache import per_spec, spec_plan
from specs.spec.model import Spec

__all__ = ["Span", "SpecFacts", "spec_facts", "to_epoch"]

Span = tuple[float, float]
"""A step's time on the clock: (first launch, last end), as Unix times."""

_FACTS: dict[int, tuple[weakref.ref[Spec], SpecFacts]] = {}


class SpecFacts:
    """What the progress document reads from a spec and its plan, derived once per spec
    object (see :func:`spec_facts`): the plan's phases of each task, its dependencies and
    order, and the steps' declared backups and dependencies."""

    def __init__(self, spec: Spec) -> None:
        self.plan = plan = spec_plan(spec)
        self.nodes: Mapping[str, Any] = plan.nodes if plan is not None else {}
        phases: dict[str, dict[int, list[str]]] = {}
        if plan is not None:
            for ref in plan.order:
                node = plan.nodes[ref]
                phases.setdefault(node.task, {}).setdefault(node.phase, []).append(ref)
        self.task_phases = {task: sorted(found.items()) for task, found in phases.items()}
        """task ref -> [(phase number, the task's steps in that phase)], by phase number"""
        self.deps: dict[str, Sequence[str]] = {r: n.deps for r, n in self.nodes.items()}
        steps = [(f"{task.ref}.{step.id}", task, step) for task, step in spec.steps()]
        self.declared = {ref: step.backups for ref, _, step in steps}
        """step ref -> its declared backups"""
        self.backup_ids = sorted({b.id for _, _, step in steps for b in step.backups})
        self.backup_texts = {(ref, b.id): b.description
                             for ref, _, step in steps for b in step.backups}
        self.depends_on = [
            (ref, [str(d) if "." in str(d) else f"{task.ref}.{d}" for d in step.depends_on])
            for ref, task, step in steps if step.depends_on]
        """(step ref, the refs it depends on, task-local ids qualified), in spec order"""


def spec_facts(spec: Spec) -> SpecFacts:
    """:class:`SpecFacts` of ``spec``, built once per spec object."""
    facts: SpecFacts = per_spec(_FACTS, spec, SpecFacts)
    return facts


# every build reads each step's times again: cached, a first build is 7-21 % cheaper
# (docs/performance.md, the projection ablation)
@functools.lru_cache(maxsize=65536)
def _parse(ts: str) -> float | None:
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


def to_epoch(ts: str | None) -> float | None:
    """An event time (``2026-03-01T10:15:00.123Z``) as a Unix time; None when absent or bad."""
    return _parse(ts) if ts else None
