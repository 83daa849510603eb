"""The plan's values: :class:`Plan` and its parts (nodes, edges, tasks, SPECLet stages,
conflicts, parallel opportunities), and :class:`PlanError`. All frozen; :func:`build_plan`
(:mod:`specs.plan.graph`) makes them and :mod:`specs.plan.render` prints them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from specs.errors import SpecError
from specs.spec.model import TriggerRule

__all__ = ["IMPLICIT", "Conflict", "ConflictKind", "Edge", "EdgeKind", "Opportunity", "Plan",
           "PlanError", "PlanNode", "PlanTask", "Stage"]

EdgeKind = Literal["depends_on", "step-order", "task", "task-order", "speclet"]
ConflictKind = Literal["output_files", "resources"]
#: edge kinds the plan adds by itself (the others are declared in the spec)
IMPLICIT: frozenset[str] = frozenset({"step-order", "task-order"})


class PlanError(SpecError):
    """The dependencies form a cycle; ``cycle`` lists it, each ref depending on the next."""

    def __init__(self, cycle: list[str], code: str = "E-DEP-CYCLE",
                 what: str = "dependency cycle", note: str = "") -> None:
        self.cycle = cycle
        self.code = code
        super().__init__(f"{what}: {' -> '.join(cycle)}{note}")


@dataclass(frozen=True, slots=True)
class PlanNode:
    """One step of the plan."""

    ref: str
    """``"<task ref>.<step id>"``."""
    task: str
    """The task's ref (``Task.ref``)."""
    step_id: int
    deps: tuple[str, ...]
    """Direct predecessors, in plan order."""
    critical: bool
    """The step's ``critical_flag``."""
    parallel_safe: bool
    """False only when the step says ``parallel_safe = false``."""
    parallel_group: str | None
    resources: tuple[str, ...]
    output_files: tuple[str, ...]
    trigger_rule: TriggerRule
    """When failed dependencies still let it run (default ``all_success``)."""
    description: str = ""
    phase: int = 1
    """1-based index into :attr:`Plan.phases`."""
    speclet: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """``target`` depends on ``source``; ``kind`` says which rule made the edge."""

    source: str
    target: str
    kind: str

    @property
    def implicit(self) -> bool:
        return self.kind in IMPLICIT


@dataclass(frozen=True, slots=True)
class PlanTask:
    """A task as the plan groups it (for rendering): its steps in id order."""

    ref: str
    description: str
    speclet: str | None
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Stage:
    """A SPECLet stage (reference §5.2): the SPECLets whose longest dependency chain is
    ``number`` long. ``parallel`` when there are several and all set ``parallel_allowed``."""

    number: int
    speclets: tuple[str, ...]
    parallel: bool
    tasks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two steps that could run at once but write the same file or need the same resource."""

    first: str
    second: str
    kind: ConflictKind
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A phase with more than one step: what could run in parallel, and what may not."""

    phase: int
    steps: tuple[str, ...]
    serial: tuple[str, ...]
    """Steps with ``parallel_safe = false``: they run alone."""
    speclets_alone: tuple[str, ...]
    """SPECLets of this phase without ``parallel_allowed = true``: they do not run beside
    another SPECLet (their own steps may still run together)."""
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class Plan:
    """The validated dependency graph of a spec; see the module docstring for its rules."""

    nodes: dict[str, PlanNode]
    edges: tuple[Edge, ...]
    order: tuple[str, ...]
    phases: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]
    stages: tuple[Stage, ...]
    parallel_opportunities: tuple[Opportunity, ...]
    conflicts: tuple[Conflict, ...]
    tasks: tuple[PlanTask, ...]
    dependents: dict[str, tuple[str, ...]]
    """Direct successors of each step, in plan order."""
    speclet_names: dict[str, str]
    """SPECLet id -> its name (or description), for display."""
    sequential: bool = False
    """Built for a strictly sequential run: one step per phase, in ``order``."""
    implicit_task_order: bool = True
    parallel_enabled: bool = False
    """``[execution] parallel_enabled`` of the spec (the plan is the same either way)."""
    max_parallel: int = 2

    @property
    def width(self) -> int:
        """The most steps in one phase."""
        return max((len(phase) for phase in self.phases), default=0)

    def summary(self) -> str:
        """One paragraph: size, phases, width, critical path, stages and conflicts."""
        parts = [f"{_count(len(self.nodes), 'step')} in {_count(len(self.phases), 'phase')}, "
                 f"width {self.width}"]
        if self.critical_path:
            parts.append(f"critical path {_count(len(self.critical_path), 'step')}: "
                         + _chain(self.critical_path))
        if self.stages:
            parts.append(_count(len(self.stages), "SPECLet stage"))
        if not self.sequential:
            parts.append(_count(len(self.parallel_opportunities), "phase") + " with parallel work")
            parts.append(_count(len(self.conflicts), "conflict"))
        parts.append("sequential run" if self.sequential else
                     f"parallel execution {'on' if self.parallel_enabled else 'off'}")
        return "; ".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _chain(refs: tuple[str, ...], limit: int = 12) -> str:
    if len(refs) <= limit:
        return " -> ".join(refs)
    return " -> ".join(refs[:limit - 2]) + f" -> ... ({len(refs) - limit + 1} more) -> " \
        + refs[-1]
