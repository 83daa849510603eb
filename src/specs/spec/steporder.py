"""The implicit order of a task's steps: id order, with each parallel group side by side.

A step that declares no ``depends_on`` follows the step before it (by id). Consecutive steps of
one ``parallel_group`` form a *run*: each member follows what came before the run, not the
member before it, so the members may run at the same time, and the step after the run follows
every member (docs/plan.md "Parallel groups"). A step with ``depends_on`` keeps what it
declares but stays in its run.

The plan (:mod:`specs.plan.graph`) builds its ``step-order`` edges from :func:`follows`; the
validator's "runs before" for conditions uses :func:`run_index`.
"""

from __future__ import annotations

from collections.abc import Sequence

from specs.spec.model import Step

__all__ = ["follows", "group_runs", "run_index"]


def group_runs(steps: Sequence[Step]) -> list[list[Step]]:
    """``steps`` (in id order) cut into runs: one step, or consecutive members of one group."""
    runs: list[list[Step]] = []
    for step in steps:
        group = step.parallel_group
        if runs and group is not None and runs[-1][-1].parallel_group == group:
            runs[-1].append(step)
        else:
            runs.append([step])
    return runs


def follows(steps: Sequence[Step]) -> dict[int, tuple[int, ...]]:
    """Step id -> the ids it follows in the implicit order: every step of the previous run
    (empty for the first run). Only meaningful for steps that declare no ``depends_on``."""
    out: dict[int, tuple[int, ...]] = {}
    before: tuple[int, ...] = ()
    for run in group_runs(steps):
        ids = tuple(step.id for step in run)
        for step_id in ids:
            out.setdefault(step_id, before)
        before = ids
    return out


def run_index(steps: Sequence[Step]) -> dict[int, int]:
    """Step id -> the position of its run: a step runs before another of its task (by the
    implicit order) when its run index is smaller."""
    out: dict[int, int] = {}
    for index, run in enumerate(group_runs(steps)):
        for step in run:
            out.setdefault(step.id, index)
    return out
