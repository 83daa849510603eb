"""The plan: a spec's steps as a dependency graph (a DAG), with its phases and critical path.

:func:`build_plan` turns a validated :class:`~specs.spec.model.Spec` into a frozen :class:`Plan`
that a scheduler consumes and ``specs plan`` prints. Nodes are steps, named by their ref
``"<task ref>.<step id>"`` (``"2.1.3"`` for step 3 of task 1 of SPECLet 2). An edge
``a -> b`` means *b depends on a*: b may start once a has finished.

Edges (docs/plan.md has examples). Implicit edges only reach steps that declare no
``depends_on``, so the sequential case is just a graph whose edges follow the ids:

- **Steps.** A step with ``depends_on`` depends exactly on those steps (``2`` and ``"2"``: step
  2 of the same task; ``"t.s"``: step s of task t; ``[]``: none). A step without it depends on
  the previous step of its task by id (*step order*), unless an earlier step of the task waits
  for it (a forward reference). Consecutive members of one ``parallel_group`` all depend on
  the step(s) before the group, and the step after them on every member
  (:mod:`specs.spec.steporder`).
- **Tasks.** A task's *entry* steps (no predecessor in the task) depend on every *sink* step
  (no successor in the task) of each task named in the task's ``depends_on``. In a task that
  declares no ``depends_on``, the entry steps that declare nothing depend on the sinks of the
  previous task (*task order*: in spec order, among the tasks of its SPECLet, or among the
  tasks outside SPECLets), unless an earlier task waits for the task. ``depends_on = []``
  declares "no prerequisites". ``implicit_task_order=False`` drops task order altogether.
- **SPECLets** (reference §5.2). The steps of a SPECLet that have no predecessor inside it
  depend on the sink steps of every SPECLet it depends on; a SPECLet's stage is the length of
  its longest dependency chain.

Derived views: ``order`` is the topological order closest to id order (ties broken by task
position, then step id, so a consistent spec keeps its id order); ``phases`` are Kahn layers
(phase 1 = no dependencies, phase k = dependencies all in earlier phases); ``critical_path`` is
the longest chain counted in steps (so its length is the number of phases), ties broken by
order; ``conflicts`` are pairs of steps of one phase that declare the same output file or the
same resource of capacity 1; ``parallel_opportunities`` are the phases where two steps or more
may really run together.

Building is O(V + E) plus a heap for the order (O((V + E) log V)); conflicts cost the pairs
that share an item. A cycle raises :class:`PlanError`, whose message prints the cycle.
Problems validation reports (unknown refs, duplicate ids) are tolerated: unknown refs are
ignored and the first of duplicate ids wins. :mod:`specs.plan.render` prints plans.
"""

from __future__ import annotations

import fnmatch
import graphlib
import heapq
import itertools
import posixpath
from collections.abc import Callable
from typing import Any

from specs.plan.model import (
    IMPLICIT,
    Conflict,
    ConflictKind,
    Edge,
    Opportunity,
    Plan,
    PlanError,
    PlanNode,
    PlanTask,
    Stage,
)
from specs.spec.model import Spec, Step, Task
from specs.spec.steporder import follows

__all__ = [
    "Conflict",
    "Edge",
    "Opportunity",
    "Plan",
    "PlanError",
    "PlanNode",
    "PlanTask",
    "Stage",
    "build_plan",
]

_EXPLAIN = {"step-order": "the implicit step order", "task-order": "the implicit task order"}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# --- building ----------------------------------------------------------------------------------


def build_plan(spec: Spec, *, implicit_task_order: bool = True,
               sequential: bool = False) -> Plan:
    """The plan of ``spec``. Raises :class:`PlanError` on a dependency or SPECLet cycle.

    ``implicit_task_order=False``: tasks that declare no ``depends_on`` (and no step of which
    depends on another task) do not follow the previous task. ``sequential=True``: the plan
    of a strictly sequential run (one step per phase, in ``order``; no conflicts).
    """
    return _Builder(spec, implicit_task_order).build(sequential)


class _Builder:
    """The mutable state of one :func:`build_plan` call."""

    def __init__(self, spec: Spec, implicit_task_order: bool) -> None:
        self.spec = spec
        self.implicit_task_order = implicit_task_order
        self.tasks: dict[str, Task] = {}
        for task in spec.tasks:
            self.tasks.setdefault(task.ref, task)
        self.position = {ref: i for i, ref in enumerate(self.tasks)}
        self.steps: dict[str, list[Step]] = {}
        self.step_of: dict[str, Step] = {}
        self.key: dict[str, tuple[int, int]] = {}
        self.task_of: dict[str, str] = {}
        for ref, task in self.tasks.items():
            unique: dict[int, Step] = {}
            for step in sorted(task.steps, key=lambda s: s.id):
                unique.setdefault(step.id, step)
            self.steps[ref] = list(unique.values())
            for step in unique.values():
                node = f"{ref}.{step.id}"
                self.key[node] = (self.position[ref], step.id)
                self.task_of[node] = ref
                self.step_of[node] = step
        self.preds: dict[str, dict[str, str]] = {node: {} for node in self.key}
        self.speclet_deps = _speclet_deps(spec)
        self.owner = _owners(spec, self.tasks, self.speclet_deps)
        self.allowed: dict[str, bool] = {}
        for speclet in spec.speclets or ():
            self.allowed.setdefault(str(speclet.id), speclet.parallel_allowed is True)

    def build(self, sequential: bool) -> Plan:
        stages, speclet_order = self.stages()
        entries, sinks = self.step_edges()
        self.task_edges(entries, sinks)
        self.speclet_edges(speclet_order)
        order = self.order()
        index = {node: i for i, node in enumerate(order)}
        deps = {n: tuple(sorted(p, key=index.__getitem__)) if len(p) > 1 else tuple(p)
                for n, p in self.preds.items()}
        phase: dict[str, int] = {}
        for node in order:
            phase[node] = 1 + max((phase[d] for d in deps[node]), default=0)
        dependents: dict[str, list[str]] = {node: [] for node in order}
        for node in order:
            for dep in deps[node]:
                dependents[dep].append(node)
        phases: tuple[tuple[str, ...], ...]
        conflicts: tuple[Conflict, ...] = ()
        opportunities: tuple[Opportunity, ...] = ()
        if sequential:
            phases = tuple((node,) for node in order)
            critical = order
            phase = {node: i + 1 for i, node in enumerate(order)}
        else:
            phases = _layers(order, phase)
            critical = _critical_path(order, deps, phase, index)
            conflicts = self.conflicts(phases)
            opportunities = self.opportunities(phases, conflicts)
        nodes = {node: self.node(node, deps[node], phase[node]) for node in order}
        edges = tuple(Edge(dep, node, self.preds[node][dep])
                      for node in order for dep in deps[node])
        tasks = tuple(PlanTask(ref, task.description, self.owner.get(ref),
                               tuple(f"{ref}.{s.id}" for s in self.steps[ref]))
                      for ref, task in self.tasks.items())
        execution = self.spec.execution
        return Plan(nodes=nodes, edges=edges, order=order, phases=phases,
                    critical_path=critical, stages=stages,
                    parallel_opportunities=opportunities, conflicts=conflicts, tasks=tasks,
                    dependents={n: tuple(d) for n, d in dependents.items()},
                    speclet_names={str(s.id): s.name or _first_line(s.description)
                                   for s in reversed(self.spec.speclets or ())},
                    sequential=sequential, implicit_task_order=self.implicit_task_order,
                    parallel_enabled=execution.parallel_enabled,
                    max_parallel=execution.max_parallel_steps)

    def node(self, ref: str, deps: tuple[str, ...], phase: int) -> PlanNode:
        task, step = self.task_of[ref], self.step_of[ref]
        return PlanNode(
            ref=ref, task=task, step_id=step.id, deps=deps, critical=step.critical_flag,
            parallel_safe=step.parallel_safe is not False, parallel_group=step.parallel_group,
            resources=tuple(dict.fromkeys(step.resources_required or ())),
            output_files=tuple(dict.fromkeys(step.output_files or ())),
            trigger_rule=step.trigger_rule or "all_success", description=step.description,
            phase=phase, speclet=self.owner.get(task))

    def edge(self, source: str, target: str, kind: str) -> None:
        if source != target:
            self.preds[target].setdefault(source, kind)

    # -- edges --------------------------------------------------------------------------------

    def step_edges(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Step-level edges; returns each task's entry and sink steps."""
        self.hoisted: set[str] = set()  # tasks that an earlier task waits for
        entries: dict[str, list[str]] = {}
        sinks: dict[str, list[str]] = {}
        for ref, steps in self.steps.items():
            waited_for: set[str] = set()
            for step in steps:
                node = f"{ref}.{step.id}"
                for dep in step.depends_on or ():
                    target = self.resolve_step(dep, ref)
                    if target is None or target == node:
                        continue
                    self.edge(target, node, "depends_on")
                    other = self.task_of[target]
                    if other != ref and self.position[other] > self.position[ref]:
                        self.hoisted.add(other)
                    elif other == ref and self.key[target] > self.key[node]:
                        waited_for.add(target)
            before = follows(steps)
            for step in steps:
                node = f"{ref}.{step.id}"
                if step.depends_on is None and node not in waited_for:
                    for previous in before[step.id]:
                        self.edge(f"{ref}.{previous}", node, "step-order")
            nodes = [f"{ref}.{s.id}" for s in steps]
            inside = {n for n in nodes for p in self.preds[n] if self.task_of[p] == ref}
            has_succ = {p for n in nodes for p in self.preds[n] if self.task_of[p] == ref}
            entries[ref] = [n for n in nodes if n not in inside]
            sinks[ref] = [n for n in nodes if n not in has_succ]
        return entries, sinks

    def resolve_step(self, dep: Any, task_ref: str) -> str | None:
        """A step ``depends_on`` entry as a node (same rules as validation's refs)."""
        if isinstance(dep, bool):
            return None
        if isinstance(dep, int):
            node = f"{task_ref}.{dep}"
        elif isinstance(dep, str):
            text = dep.strip()
            if text.isdecimal():
                node = f"{task_ref}.{int(text)}"
            else:
                other, _, step_id = text.rpartition(".")
                if other not in self.tasks or not step_id.isdecimal():
                    return None
                node = f"{other}.{int(step_id)}"
        else:
            return None
        return node if node in self.key else None

    def task_edges(self, entries: dict[str, list[str]], sinks: dict[str, list[str]]) -> None:
        feeds: dict[str, list[tuple[str, str]]] = {}
        previous: dict[str | None, str] = {}
        for ref, task in self.tasks.items():
            group = self.owner.get(ref)
            feeds[ref] = []
            if task.depends_on is not None:
                for dep in task.depends_on:
                    other = str(dep).strip()
                    if other in self.tasks and other != ref:
                        feeds[ref].append((other, "task"))
                        if self.position[other] > self.position[ref]:
                            self.hoisted.add(other)
            if (task.depends_on is None and self.implicit_task_order and group in previous
                    and ref not in self.hoisted):
                feeds[ref].append((previous[group], "task-order"))
            previous[group] = ref
        effective = _effective(sinks, {r: [t for t, _ in f] for r, f in feeds.items()})
        for ref, fed in feeds.items():
            for other, kind in fed:
                targets = entries[ref] if kind == "task" else [
                    e for e in entries[ref] if self.step_of[e].depends_on is None]
                for sink in effective(other):
                    for entry in targets:
                        self.edge(sink, entry, kind)

    def speclet_edges(self, speclet_order: list[str]) -> None:
        members: dict[str, list[str]] = {sid: [] for sid in speclet_order}
        for node in self.key:
            sid = self.owner.get(self.task_of[node])
            if sid in members:
                members[sid].append(node)
        sources: dict[str, list[str]] = {}
        sinks: dict[str, list[str]] = {}
        for sid, nodes in members.items():
            within = set(nodes)
            has_succ = {p for n in nodes for p in self.preds[n] if p in within}
            sources[sid] = [n for n in nodes if not any(p in within for p in self.preds[n])]
            sinks[sid] = [n for n in nodes if n not in has_succ]
        effective = _effective(sinks, self.speclet_deps)
        for sid in speclet_order:
            for dep in self.speclet_deps[sid]:
                for sink in effective(dep):
                    for source in sources[sid]:
                        self.edge(sink, source, "speclet")

    # -- derived views ------------------------------------------------------------------------

    def order(self) -> tuple[str, ...]:
        """Topological order, ties broken by (task position, step id); cycles raise.

        Kahn's algorithm over predecessor counts with a heap of ready nodes; on a cycle,
        graphlib names one (the error path only)."""
        waiting = {node: len(preds) for node, preds in self.preds.items()}
        after: dict[str, list[str]] = {}
        for node, preds in self.preds.items():
            for pred in preds:
                after.setdefault(pred, []).append(node)
        key = self.key
        heap = [(key[n], n) for n, count in waiting.items() if count == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            node = heapq.heappop(heap)[1]
            order.append(node)
            for child in after.get(node, ()):
                waiting[child] -= 1
                if not waiting[child]:
                    heapq.heappush(heap, (key[child], child))
        if len(order) < len(waiting):
            sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
                {node: preds.keys() for node, preds in self.preds.items()})
            try:
                sorter.prepare()
            except graphlib.CycleError as exc:
                raise self.cycle_error([str(n) for n in exc.args[1]]) from None
        return tuple(order)

    def cycle_error(self, found: list[str]) -> PlanError:
        ring = found[:-1][::-1]  # graphlib lists "runs before"; we print "depends on"
        start = min(range(len(ring)), key=lambda i: self.key[ring[i]])
        ring = ring[start:] + ring[:start]
        cycle = [*ring, ring[0]]
        implicit = [f"{a} -> {b} is {_EXPLAIN[self.preds[a][b]]}"
                    for a, b in itertools.pairwise(cycle)
                    if self.preds[a].get(b) in IMPLICIT]
        note = " (each depends on the next)"
        if implicit:
            note = (f" (each depends on the next; {'; '.join(implicit)}: declare depends_on "
                    "to change it)")
        return PlanError(cycle, note=note)

    def stages(self) -> tuple[tuple[Stage, ...], list[str]]:
        deps = self.speclet_deps
        if not deps:
            return (), []
        sorter = graphlib.TopologicalSorter(deps)
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            ring = [str(n) for n in exc.args[1]][::-1]
            raise PlanError(ring, "E-SPECLET-CYCLE", "SPECLet dependency cycle") from None
        depth: dict[str, int] = {}
        for sid in order:
            depth[sid] = 1 + max((depth[d] for d in deps[sid]), default=0)
        stages = []
        for number in range(1, max(depth.values(), default=0) + 1):
            ids = tuple(sid for sid in deps if depth[sid] == number)
            tasks = tuple(ref for ref in self.tasks if self.owner.get(ref) in ids)
            parallel = len(ids) > 1 and all(self.allowed[sid] for sid in ids)
            stages.append(Stage(number, ids, parallel, tasks))
        position = {sid: i for i, sid in enumerate(deps)}
        return tuple(stages), sorted(deps, key=lambda sid: (depth[sid], position[sid]))

    def conflicts(self, phases: tuple[tuple[str, ...], ...]) -> tuple[Conflict, ...]:
        """Pairs of steps in one phase that declare the same output file (a glob matching
        the other's path counts) or the same resource of capacity 1."""
        found: dict[tuple[str, str, ConflictKind], list[str]] = {}
        for phase in phases:
            if len(phase) < 2:
                continue
            for (kind, item), nodes in self.shared_items(phase).items():
                for i, first in enumerate(nodes):
                    for second in nodes[i + 1:]:
                        found.setdefault((first, second, kind), []).append(item)
        return tuple(Conflict(a, b, kind, tuple(sorted(set(items))))
                     for (a, b, kind), items in found.items())

    def shared_items(self, phase: tuple[str, ...]
                     ) -> dict[tuple[ConflictKind, str], list[str]]:
        """Output files and capacity-1 resources declared by two steps or more of a phase,
        each with its steps in phase order."""
        capacity = self.spec.resources or {}
        items: dict[tuple[ConflictKind, str], list[str]] = {}
        globs: list[tuple[str, str]] = []
        for node in phase:
            step = self.step_of[node]
            for name in dict.fromkeys(step.resources_required or ()):
                if capacity.get(name, 1) <= 1:
                    items.setdefault(("resources", name), []).append(node)
            for path in dict.fromkeys(_norm_path(p) for p in step.output_files or ()):
                items.setdefault(("output_files", path), []).append(node)
                if any(c in path for c in "*?["):
                    globs.append((node, path))
        literals = [p for k, p in items if k == "output_files" and not any(c in p for c in "*?[")]
        for node, pattern in globs:
            for path in fnmatch.filter(literals, pattern):
                if node not in items[("output_files", path)]:
                    items[("output_files", path)].append(node)
        rank = {node: i for i, node in enumerate(phase)}
        for nodes in items.values():
            nodes.sort(key=rank.__getitem__)
        return {key: nodes for key, nodes in items.items() if len(nodes) > 1}

    def opportunities(self, phases: tuple[tuple[str, ...], ...],
                      conflicts: tuple[Conflict, ...]) -> tuple[Opportunity, ...]:
        """Phases where at least two steps may run at once: both ``parallel_safe``, not in
        conflict, and in the same SPECLet or in two that both set ``parallel_allowed``."""
        phase_of = {node: i for i, phase in enumerate(phases, 1) for node in phase}
        by_phase: dict[int, list[Conflict]] = {}
        for c in conflicts:
            if phase_of[c.first] == phase_of[c.second]:
                by_phase.setdefault(phase_of[c.first], []).append(c)
        found = []
        for number, phase in enumerate(phases, 1):
            if len(phase) < 2:
                continue
            serial = tuple(n for n in phase if self.step_of[n].parallel_safe is False)
            groups: dict[str | None, int] = {}
            for node in phase:
                if node not in serial:
                    sid = self.owner.get(self.task_of[node])
                    groups[sid] = groups.get(sid, 0) + 1
            alone = tuple(sid for sid in groups if sid is not None and not self.allowed[sid])
            if len(groups) < 2:
                alone = ()
            shared = sum(n for sid, n in groups.items() if sid not in alone)
            pairs = sum(n * (n - 1) // 2 for n in groups.values())
            pairs += (shared * shared - sum(n * n for sid, n in groups.items()
                                            if sid not in alone)) // 2
            clashes = {(c.first, c.second) for c in by_phase.get(number, ())
                       if c.first not in serial and c.second not in serial
                       and self.together(c.first, c.second, alone)}
            if pairs > len(clashes):
                found.append(Opportunity(number, phase, serial, alone,
                                         tuple(by_phase.get(number, ()))))
        return tuple(found)

    def together(self, first: str, second: str, alone: tuple[str, ...]) -> bool:
        """Whether SPECLet rules let two steps of one phase run at once."""
        a, b = (self.owner.get(self.task_of[n]) for n in (first, second))
        return a == b or (a not in alone and b not in alone)


def _speclet_deps(spec: Spec) -> dict[str, list[str]]:
    """SPECLet id -> the known SPECLets it depends on (spec order; first of duplicates wins)."""
    deps: dict[str, list[str]] = {}
    for speclet in spec.speclets or ():
        deps.setdefault(str(speclet.id), [str(d) for d in speclet.depends_on])
    return {sid: list(dict.fromkeys(d for d in ds if d in deps and d != sid))
            for sid, ds in deps.items()}


def _owners(spec: Spec, tasks: dict[str, Task], speclets: dict[str, list[str]]
            ) -> dict[str, str]:
    """Task ref -> the SPECLet it belongs to (nested shape: ``Task.speclet``; template shape:
    listed in ``[[speclets]] tasks``). Tasks of no SPECLet are left out."""
    listed: dict[str, str] = {}
    for speclet in spec.speclets or ():
        sid = str(speclet.id)
        for item in speclet.tasks:
            ref = f"{sid}.{item}" if f"{sid}.{item}" in tasks else str(item)
            listed.setdefault(ref, sid)
    owners = {}
    for ref, task in tasks.items():
        if task.speclet is not None and str(task.speclet) in speclets:
            owners[ref] = str(task.speclet)
        elif ref in listed or str(task.id) in listed:
            owners[ref] = listed.get(ref, listed.get(str(task.id), ""))
    return {ref: sid for ref, sid in owners.items() if sid in speclets}


def _effective(sinks: dict[str, list[str]], feeds: dict[str, list[str]],
               ) -> Callable[[str], list[str]]:
    """``effective(x)``: the sinks of x, or, when x has no steps, those of what feeds x."""
    memo: dict[str, list[str]] = {}

    def effective(name: str) -> list[str]:
        if name not in memo:
            memo[name] = []  # guards against cycles through empty groups
            found = sinks.get(name) or [s for f in feeds.get(name, ()) for s in effective(f)]
            memo[name] = list(dict.fromkeys(found))
        return memo[name]

    return effective


def _layers(order: tuple[str, ...], phase: dict[str, int]) -> tuple[tuple[str, ...], ...]:
    layers: list[list[str]] = [[] for _ in range(max(phase.values(), default=0))]
    for node in order:
        layers[phase[node] - 1].append(node)
    return tuple(tuple(layer) for layer in layers)


def _critical_path(order: tuple[str, ...], deps: dict[str, tuple[str, ...]],
                   phase: dict[str, int], index: dict[str, int]) -> tuple[str, ...]:
    """The longest chain (in steps): it ends at the first deepest step in order and goes back
    through the earliest predecessor one phase up."""
    if not order:
        return ()
    node = min(order, key=lambda n: (-phase[n], index[n]))
    path = [node]
    while deps[node]:
        node = next(d for d in deps[node] if phase[d] == phase[node] - 1)
        path.append(node)
    return tuple(path[::-1])


def _norm_path(path: str) -> str:
    text = posixpath.normpath(path.strip().replace("\\", "/"))
    return text[2:] if text.startswith("./") else text
