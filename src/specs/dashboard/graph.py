"""The run page's dependency graph, as an inline SVG drawn on the server.

Steps are placed in columns by phase (the plan's, from the timeline data; else their depth
in the dependency graph) and coloured by status; an edge joins a step to each step it
depends on, and the critical path is drawn thicker. Past :data:`MAX_STEPS` steps the graph
is drawn per task instead (a box per task, an edge where a step depends on another task's
step), which stays readable and light at 5,000 steps.
"""

from __future__ import annotations

from html import escape
from typing import Any

from specs.record.timeline import TimelineData

__all__ = ["MAX_STEPS", "dependency_svg"]

MAX_STEPS = 300
W, H, GAP_X, GAP_Y = 84, 22, 36, 8


def _depths(nodes: list[str], deps: dict[str, list[str]]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for ref in nodes:  # the rows are in plan order: a dependency comes first
        depth[ref] = 1 + max((depth.get(d, 0) for d in deps.get(ref, []) if d in depth),
                             default=0)
    return depth


def _layout(nodes: list[tuple[str, str, str, bool]], deps: dict[str, list[str]],
            phases: dict[str, int | None]) -> str:
    """nodes: (id, label, status, on the critical path)."""
    ids = [n[0] for n in nodes]
    depth = _depths(ids, deps)
    column = {ref: phases.get(ref) or depth[ref] for ref in ids}
    rows: dict[int, int] = {}
    where: dict[str, tuple[int, int]] = {}
    for ref in ids:
        col = column[ref]
        row = rows.get(col, 0)
        rows[col] = row + 1
        where[ref] = (8 + (col - 1) * (W + GAP_X), 8 + row * (H + GAP_Y))
    width = 16 + max(column.values(), default=1) * (W + GAP_X)
    height = 16 + max(rows.values(), default=1) * (H + GAP_Y)
    critical = {n[0] for n in nodes if n[3]}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="dependency graph">']
    for ref in ids:
        x2, y2 = where[ref]
        for dep in deps.get(ref, []):
            if dep not in where:
                continue
            x1, y1 = where[dep]
            thick = " critical" if ref in critical and dep in critical else ""
            parts.append(f'<path class="edge{thick}" d="M{x1 + W},{y1 + H // 2} '
                         f'C{x1 + W + GAP_X // 2},{y1 + H // 2} {x2 - GAP_X // 2},'
                         f'{y2 + H // 2} {x2},{y2 + H // 2}"/>')
    for ref, label, status, on_path in nodes:
        x, y = where[ref]
        extra = " critical" if on_path else ""
        parts.append(f'<g class="node s-{escape(status)}{extra}" data-ref="{escape(ref)}">'
                     f'<title>{escape(label)} ({escape(status)})</title>'
                     f'<rect x="{x}" y="{y}" width="{W}" height="{H}" rx="4"/>'
                     f'<text x="{x + 6}" y="{y + 15}">{escape(label[:12])}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def dependency_svg(data: TimelineData, statuses: dict[str, str] | None = None) -> str:
    """The graph of a run's timeline data (``statuses``: the live statuses by step)."""
    bars = data.bars()
    status = {bar.ref: (statuses or {}).get(bar.ref, bar.status) for bar in bars}
    path = set(data.critical_path)
    if len(bars) <= MAX_STEPS:
        nodes = [(b.ref, b.ref, status[b.ref], b.ref in path) for b in bars]
        deps = {b.ref: list(b.dependencies) for b in bars}
        return _layout(nodes, deps, {b.ref: b.phase for b in bars})
    task_of = {b.ref: b.task for b in bars}
    task_deps: dict[str, set[str]] = {}
    for bar in bars:
        for dep in bar.dependencies:
            other = task_of.get(dep)
            if other is not None and other != bar.task:
                task_deps.setdefault(bar.task, set()).add(other)
    task_nodes: list[tuple[str, str, str, bool]] = []
    for task in data.tasks:
        refs = [b.ref for b in task.bars]
        task_nodes.append((task.ref, f"task {task.ref} ({len(refs)})", task.status,
                           any(r in path for r in refs)))
    return _layout(task_nodes, {k: sorted(v) for k, v in task_deps.items()}, {})


def graph_summary(data: TimelineData) -> dict[str, Any]:
    """The graph as data (the ``.json`` twin): nodes with their dependencies."""
    return {"steps": [{"ref": b.ref, "task": b.task, "phase": b.phase,
                       "dependencies": list(b.dependencies), "status": b.status}
                      for b in data.bars()], "critical_path": list(data.critical_path)}
