"""References between parts of the spec: step and task ``depends_on`` (unknown, self, cycles),
SPECLets, transitions."""

from __future__ import annotations

import graphlib
from collections import Counter
from collections.abc import Iterable

from specs.diagnostics import Diagnostic, Severity
from specs.spec.model import Task
from specs.spec.sources import DocPath
from specs.spec.validate.base import (
    Checker,
    _step_ref,
)


class ReferenceChecks(Checker):
    """``depends_on`` of steps and tasks, SPECLets, transitions."""

    def check_dependencies(self) -> Iterable[Diagnostic]:
        tasks_by_ref = {task.ref: task for task in self.spec.tasks}
        if len(tasks_by_ref) == len(self.spec.tasks) and not any(
                task.depends_on for task in self.spec.tasks) and all(
                _depends_backwards(task) for task in self.spec.tasks):
            return  # nothing unknown, nothing on itself, and no cycle can form
        graph: dict[str, set[str]] = {}
        where: dict[str, DocPath] = {}
        # Cycles can only run through declared edges: a task's start/end nodes are needed only
        # when some task declares depends_on (then every step hangs between them).
        task_level = any(task.depends_on for task in self.spec.tasks)
        # step id -> node name, per task: an int depends_on entry resolves by one lookup
        names = [{step.id: f"{task.ref}.{step.id}" for step in task.steps}
                 for task in self.spec.tasks]
        # Every node gets a rank (its first place in the spec); while each edge goes to a lower
        # rank, as in any spec whose steps depend on earlier ones, there can be no cycle.
        rank = {name: i for i, name in enumerate(dict.fromkeys(
            name for nodes in names for name in nodes.values()))}
        forward = not task_level
        for ti, task in enumerate(self.spec.tasks):
            start, end = f"task {task.ref} start", f"task {task.ref}"
            if task_level:
                graph.setdefault(start, set())
                graph.setdefault(end, set())
            for dep in task.depends_on or []:
                target = tasks_by_ref.get(str(dep))
                if target is None:
                    yield self.error("E-DEP-UNKNOWN", f"task {task.ref} depends on task {dep}, "
                                     "which does not exist", ("tasks", ti, "depends_on"))
                else:
                    graph[start].add(f"task {target.ref}")
                    where.setdefault(start, ("tasks", ti, "depends_on"))
            nodes = names[ti]
            for si, step in enumerate(task.steps):
                if not task_level and not step.depends_on:
                    continue
                node = nodes[step.id]
                node_rank = rank[node]
                if task_level:
                    graph.setdefault(node, set()).add(start)
                    graph[end].add(node)
                edges: set[str] | None = None
                for dep in step.depends_on or []:
                    if type(dep) is int:
                        target_node = nodes.get(dep)
                    else:
                        target_node = _step_ref(dep, task, nodes.keys(), tasks_by_ref)
                    if target_node is None:
                        yield self.error("E-DEP-UNKNOWN", f"step {node} depends on {dep!r}, "
                                         "which is not a step of this spec",
                                         ("tasks", ti, "steps", si, "depends_on"),
                                         "use a step id of the same task or \"task.step\"")
                    elif target_node == node:
                        yield self.error("E-DEP-SELF", f"step {node} depends on itself",
                                         ("tasks", ti, "steps", si, "depends_on"))
                    else:
                        if edges is None:
                            edges = graph.setdefault(node, set())
                            where.setdefault(node, ("tasks", ti, "steps", si, "depends_on"))
                        edges.add(target_node)
                        if forward and rank.get(target_node, node_rank) >= node_rank:
                            forward = False
        if not forward:
            yield from self.cycle(graph, where, "E-DEP-CYCLE", "dependency cycle")

    def cycle(self, graph: dict[str, set[str]], where: dict[str, DocPath], code: str,
              what: str) -> Iterable[Diagnostic]:
        if _acyclic(graph):
            return
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            nodes = [str(n) for n in exc.args[1]][::-1]  # first == last
            shown = [n for n in nodes[:-1] if not n.endswith(" start")]
            shown += shown[:1]  # close the loop even when it passes a task's start
            first = next((n for n in nodes if n in where), nodes[0])
            yield self.error(code, f"{what}: {' -> '.join(shown)}", where.get(first, ()),
                             "remove one of these dependencies")

    def check_speclets(self) -> Iterable[Diagnostic]:
        speclets = self.spec.speclets
        if not speclets:
            return
        ids = [str(s.id) for s in speclets]
        counts = Counter(ids)
        task_refs = {task.ref for task in self.spec.tasks}
        task_ids = {str(task.id) for task in self.spec.tasks}
        owners: dict[str, list[str]] = {}
        graph: dict[str, set[str]] = {}
        where: dict[str, DocPath] = {}
        for si, speclet in enumerate(speclets):
            sid, path = str(speclet.id), ("speclets", si)
            if counts[sid] > 1:
                yield self.error("E-DUP-SPECLET", f"SPECLet id {sid} is used {counts[sid]} "
                                 "times", (*path, "id"))
                counts[sid] = 0
            graph.setdefault(sid, set())
            for dep in speclet.depends_on:
                if str(dep) == sid:
                    yield self.error("E-SPECLET-SELF", f"SPECLet {sid} depends on itself",
                                     (*path, "depends_on"))
                elif str(dep) not in counts:
                    yield self.error("E-SPECLET-UNKNOWN", f"SPECLet {sid} depends on {dep!r}, "
                                     "which is not a SPECLet", (*path, "depends_on"))
                else:
                    graph[sid].add(str(dep))
                    where.setdefault(sid, (*path, "depends_on"))
            if not speclet.tasks and not speclet.spec:
                yield self.diag(Severity.WARNING, "W-SPECLET-EMPTY", f"SPECLet {sid} has no "
                                "tasks", path)
            for listed in speclet.tasks:
                ref = f"{sid}.{listed}" if f"{sid}.{listed}" in task_refs else str(listed)
                if ref not in task_refs and str(listed) not in task_ids:
                    yield self.error("E-SPECLET-TASK", f"SPECLet {sid} lists task {listed}, "
                                     "which does not exist", (*path, "tasks"))
                owners.setdefault(ref, []).append(sid)
        for ti, task in enumerate(self.spec.tasks):
            claimed = owners.get(task.ref, owners.get(str(task.id), []))
            if len(claimed) != 1:
                yield self.error("E-SPECLET-ASSIGN", f"task {task.ref} belongs to "
                                 f"{len(claimed)} SPECLets; each task belongs to exactly one",
                                 ("tasks", ti))
        yield from self.cycle(graph, where, "E-SPECLET-CYCLE", "SPECLet dependency cycle")
        if len(speclets) == 1:
            yield self.diag(Severity.WARNING, "W-SPECLET-SINGLE", "only one SPECLet; the "
                            "plain task structure is simpler", ("speclets",))
        if all(s.parallel_allowed is False for s in speclets) and len(speclets) > 1:
            yield self.diag(Severity.WARNING, "W-SPECLET-SERIAL", "no SPECLet allows parallel "
                            "execution", ("speclets",))
        depth = _depth(graph)
        if depth > 4:
            yield self.diag(Severity.WARNING, "W-SPECLET-DEEP", f"the SPECLet dependency chain "
                            f"is {depth} deep (more than 4)", ("speclets",))

    def check_transitions(self) -> Iterable[Diagnostic]:
        refs = {task.ref for task in self.spec.tasks}
        for i, transition in enumerate(self.spec.transitions or []):
            for key in ("from_task", "to_task"):
                value = str(getattr(transition, key))
                if value not in refs:
                    yield self.error("E-TRANSITION-TASK", f"transition {key} = {value!r} is "
                                     "not a task of this spec", ("transitions", i, key))


def _acyclic(graph: dict[str, set[str]]) -> bool:
    """Kahn's count: True when ``graph`` (node -> predecessors) has no cycle (fast path)."""
    indegree = {node: len(preds) for node, preds in graph.items()}
    followers: dict[str, list[str]] = {}
    for node, preds in graph.items():
        for pred in preds:
            if pred in followers:
                followers[pred].append(node)
            else:
                followers[pred] = [node]
                indegree.setdefault(pred, 0)
    ready = [node for node, count in indegree.items() if count == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for follower in followers.get(node, ()):
            indegree[follower] -= 1
            if indegree[follower] == 0:
                ready.append(follower)
    return seen == len(indegree)


def _depends_backwards(task: Task) -> bool:
    """True when every ``depends_on`` entry of ``task``'s steps is the int id of a step placed
    before the depending one (the first step with each id counts): no such entry can be unknown
    or the step itself, and edges that all point back in the spec cannot close a cycle."""
    ids = [step.id for step in task.steps]
    first = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))  # first index
    for step in task.steps:
        if step.depends_on:
            me = first[step.id]
            for dep in step.depends_on:
                if type(dep) is not int or first.get(dep, me) >= me:
                    return False
    return True


def _depth(graph: dict[str, set[str]]) -> int:
    memo: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str]) -> int:
        if node in memo:
            return memo[node]
        if node in seen:
            return 0
        value = 1 + max((depth(d, seen | {node}) for d in graph.get(node, ())), default=0)
        memo[node] = value
        return value

    return max((depth(n, frozenset()) for n in graph), default=0)
