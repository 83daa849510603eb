"""The Markdown spec (``spec_<d>.md``) written from a spec model, so that a drafted
parameters file comes with its human-readable mirror (Art. III): the same goal, the Definition
of Complete, and every task, step and backup with the same ids, in the bullet form
``- **Step t.s:** ...`` that :mod:`specs.spec.markdown` reads back."""

from __future__ import annotations

from specs.spec.model import Spec

__all__ = ["markdown_for"]


def _line(text: str | None) -> str:
    return " ".join((text or "").split())


def markdown_for(spec: Spec, descriptor: str) -> str:
    """The Markdown spec of ``spec``."""
    out = [f"# {descriptor}", "", "## Goal", "", _line(spec.goal.description), ""]
    criteria = spec.completion_criteria
    items = [*(criteria.acceptance_criteria or []), *(criteria.quality_standards or [])] \
        if criteria else []
    if items:
        out += ["## Definition of Complete", "", *(f"- {_line(i)}" for i in items), ""]
    out += ["## Tasks", ""]
    for task in spec.tasks:
        out += [f"### Task {task.ref}: {_line(task.description)}", ""]
        for step in task.steps:
            out.append(f"- **Step {task.ref}.{step.id}:** {_line(step.description)}")
            if step.primary_method:
                out.append(f"  - **Primary method:** {_line(step.primary_method)}")
            elif step.command:
                out.append(f"  - **Primary method:** `{_line(step.command)}`")
            if step.expected_output:
                out.append(f"  - **Expected output:** {_line(step.expected_output)}")
            out.append(f"  - **Critical:** {'yes' if step.critical_flag else 'no'}")
            if step.mode:
                out.append(f"  - **Mode:** {step.mode}")
            out += [f"  - **Backup {b.id}:** {_line(b.description or b.command)}"
                    for b in step.backups]
        out.append("")
    return "\n".join(out)
