"""Ways to show a :class:`~specs.plan.graph.Plan`: text, Mermaid, Graphviz DOT and JSON data.

Every renderer is a pure function of the plan. The diagrams group steps in one subgraph
(cluster) per task, nested in one per SPECLet when the spec has SPECLets; edges the plan added
by itself (implicit step and task order) are dashed, and the critical path is drawn thick.
``specs plan --format`` picks one; docs/plan.md shows each.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

from specs.plan.graph import Conflict, Plan, PlanTask

__all__ = ["FORMATS", "render", "render_dot", "render_mermaid", "render_text", "to_json"]

#: the names ``specs plan --format`` accepts
FORMATS = ("text", "mermaid", "dot", "json")


def render_text(plan: Plan) -> str:
    """The plan for a terminal: summary, phases, critical path, stages, conflicts, steps."""
    out = [plan.summary(), "",
           "Phases" + (" (sequential run: one step at a time)" if plan.sequential else "")]
    width = len(str(len(plan.phases)))
    out += [f"  {i:>{width}}  {'  '.join(phase)}" for i, phase in enumerate(plan.phases, 1)]
    out += ["", f"Critical path ({len(plan.critical_path)} steps)",
            "  " + (" -> ".join(plan.critical_path) or "-")]
    if plan.stages:
        out += ["", "SPECLet stages"]
        out += [f"  {s.number}  {', '.join(_speclet(plan, i) for i in s.speclets)}"
                f"{' (parallel)' if s.parallel else ''}: tasks {', '.join(s.tasks) or '-'}"
                for s in plan.stages]
    if plan.parallel_opportunities:
        out += ["", "Parallel opportunities"
                + ("" if plan.parallel_enabled else " (with [execution] parallel_enabled)")]
        for o in plan.parallel_opportunities:
            note = f"; runs alone: {', '.join(o.serial)}" if o.serial else ""
            if o.speclets_alone:
                note += f"; SPECLets that run alone: {', '.join(o.speclets_alone)}"
            note += f"; {len(o.conflicts)} conflicts" if o.conflicts else ""
            out.append(f"  phase {o.phase}: {', '.join(o.steps)}{note}")
    if plan.conflicts:
        out += ["", "Conflicts (never run at the same time)"]
        out += [f"  {c.first} / {c.second}: both "
                f"{'write' if c.kind == 'output_files' else 'need resource'} {', '.join(c.items)}"
                for c in plan.conflicts]
    out += ["", "Steps (in order; * = on the critical path)"]
    on_path = set(plan.critical_path)
    ref_w = max((len(r) for r in plan.order), default=0)
    dep_w = min(30, max((len(", ".join(n.deps)) for n in plan.nodes.values()), default=1))
    for ref in plan.order:
        node = plan.nodes[ref]
        deps = ", ".join(node.deps) or "-"
        out.append(f"  {'*' if ref in on_path else ' '} {ref:<{ref_w}}  phase {node.phase:<{width}}"
                   f"  after {deps:<{dep_w}}  {'critical' if node.critical else 'optional'}"
                   f"  {_short(node.description, 60)}".rstrip())
    return "\n".join(out) + "\n"


def render_mermaid(plan: Plan) -> str:
    """A Mermaid ``flowchart TD``: one subgraph per task (inside one per SPECLet), dashed
    implicit edges, thick critical-path edges and a ``critical`` class on its steps."""
    ids = _ids(plan.order, "s")
    out = ["flowchart TD"]
    for speclet, tasks in _grouped(plan):
        indent = "  "
        if speclet is not None:
            title = _mm(_short(_speclet(plan, speclet), 50))
            out.append(f'  subgraph {_ids([speclet], "g")[speclet]}["SPECLet {title}"]')
            indent = "    "
        for task in tasks:
            out.append(f'{indent}subgraph {_ids([task.ref], "t")[task.ref]}'
                       f'["Task {_mm(task.ref)}: {_mm(_short(task.description, 40))}"]')
            for ref in task.steps:
                label = f"{ref} {_short(plan.nodes[ref].description, 40)}".strip()
                out.append(f'{indent}  {ids[ref]}["{_mm(label)}"]')
            out.append(f"{indent}end")
        if speclet is not None:
            out.append("  end")
    path = set(itertools.pairwise(plan.critical_path))
    for e in plan.edges:
        arrow = "==>" if (e.source, e.target) in path else "-.->" if e.implicit else "-->"
        out.append(f"  {ids[e.source]} {arrow} {ids[e.target]}")
    if plan.critical_path:
        out.append("  classDef critical stroke:#c0392b,stroke-width:3px,font-weight:bold")
        out.append(f"  class {','.join(ids[r] for r in plan.critical_path)} critical")
    return "\n".join(out) + "\n"


def render_dot(plan: Plan) -> str:
    """Graphviz DOT: a cluster per task (inside one per SPECLet), dashed implicit edges, the
    critical path bold."""
    out = ["digraph plan {", '  graph [rankdir=TB, fontname="Helvetica"];',
           '  node [shape=box, style=rounded, fontname="Helvetica"];']
    on_path = set(plan.critical_path)
    for speclet, tasks in _grouped(plan):
        indent = "  "
        if speclet is not None:
            out.append(f'  subgraph {_dot(f"cluster_speclet_{speclet}")} {{')
            out.append(f'    label={_dot("SPECLet " + _short(_speclet(plan, speclet), 50))};')
            indent = "    "
        for task in tasks:
            out.append(f'{indent}subgraph {_dot(f"cluster_task_{task.ref}")} {{')
            title = f"Task {task.ref}: " + _short(task.description, 40)
            out.append(f"{indent}  label={_dot(title)};")
            for ref in task.steps:
                label = f"{ref}\n{_short(plan.nodes[ref].description, 40)}".strip()
                style = ', style="rounded,bold", penwidth=2.5' if ref in on_path else ""
                out.append(f"{indent}  {_dot(ref)} [label={_dot(label)}{style}];")
            out.append(f"{indent}}}")
        if speclet is not None:
            out.append("  }")
    path = set(itertools.pairwise(plan.critical_path))
    for e in plan.edges:
        attrs = (["style=bold", "penwidth=2.5"]
                 if (e.source, e.target) in path else ["style=dashed"] if e.implicit else [])
        out.append(f"  {_dot(e.source)} -> {_dot(e.target)}"
                   + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"


def to_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON data (``json.dumps`` takes it as is)."""
    on_path = set(plan.critical_path)
    return {
        "sequential": plan.sequential,
        "implicit_task_order": plan.implicit_task_order,
        "parallel_enabled": plan.parallel_enabled,
        "max_parallel": plan.max_parallel,
        "width": plan.width,
        "nodes": [{"ref": n.ref, "task": n.task, "step_id": n.step_id, "speclet": n.speclet,
                   "description": n.description, "deps": list(n.deps), "phase": n.phase,
                   "critical": n.critical, "on_critical_path": n.ref in on_path,
                   "parallel_safe": n.parallel_safe, "parallel_group": n.parallel_group,
                   "resources": list(n.resources), "output_files": list(n.output_files),
                   "trigger_rule": n.trigger_rule}
                  for n in (plan.nodes[r] for r in plan.order)],
        "edges": [{"from": e.source, "to": e.target, "kind": e.kind} for e in plan.edges],
        "order": list(plan.order),
        "phases": [list(phase) for phase in plan.phases],
        "critical_path": list(plan.critical_path),
        "tasks": [{"ref": t.ref, "description": t.description, "speclet": t.speclet,
                   "steps": list(t.steps)} for t in plan.tasks],
        "speclets": plan.speclet_names,
        "stages": [{"stage": s.number, "speclets": list(s.speclets), "parallel": s.parallel,
                    "tasks": list(s.tasks)} for s in plan.stages],
        "parallel_opportunities": [{"phase": o.phase, "steps": list(o.steps),
                                    "serial": list(o.serial),
                                    "speclets_alone": list(o.speclets_alone),
                                    "conflicts": [_conflict(c) for c in o.conflicts]}
                                   for o in plan.parallel_opportunities],
        "conflicts": [_conflict(c) for c in plan.conflicts],
    }


def _speclet(plan: Plan, sid: str) -> str:
    name = plan.speclet_names.get(sid, "")
    return f"{sid} {name}" if name and name != sid else sid


def _conflict(c: Conflict) -> dict[str, Any]:
    return {"steps": [c.first, c.second], "kind": c.kind, "items": list(c.items)}


def _grouped(plan: Plan) -> list[tuple[str | None, list[PlanTask]]]:
    """Tasks with steps, grouped by SPECLet (in order of first appearance)."""
    groups: dict[str | None, list[PlanTask]] = {}
    for task in plan.tasks:
        if task.steps:
            groups.setdefault(task.speclet, []).append(task)
    return list(groups.items())


def _ids(refs: Iterable[str], prefix: str) -> dict[str, str]:
    """Mermaid-safe ids: ``prefix_`` + the ref with every other character as ``_``."""
    out: dict[str, str] = {}
    for ref in refs:
        out[ref] = f"{prefix}_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in ref)
    if len(set(out.values())) < len(out):  # two refs that differ only in punctuation
        out = {ref: f"{name}_{i}" for i, (ref, name) in enumerate(out.items())}
    return out


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _mm(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;") \
        .replace(">", "#gt;")


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render(plan: Plan, fmt: str) -> str:
    """The plan in one of :data:`FORMATS` (JSON indented by 2)."""
    if fmt == "json":
        return json.dumps(to_json(plan), indent=2) + "\n"
    renderers = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
    if fmt not in renderers:
        raise ValueError(f"unknown plan format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderers[fmt](plan)
