"""The catalog of templates as Markdown: what ``specs templates --markdown`` prints and
docs/templates.md embeds (a test keeps the page equal to it)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from specs.templates.instantiate import preview
from specs.templates.model import Template
from specs.templates.variables import Variable, display

__all__ = ["catalog_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _constraints(v: Variable) -> str:
    parts = []
    if v.choices:
        parts.append("one of " + ", ".join(f"`{c}`" for c in v.choices))
    if v.pattern:
        parts.append(f"matches `{v.pattern}`")
    if v.min is not None or v.max is not None:
        unit = "" if v.type == "int" else " characters" if v.type in ("str", "path") else \
            " items"
        low, high = v.min, v.max
        parts.append(f"{low} to {high}{unit}" if low is not None and high is not None else
                     f"at least {low}{unit}" if low is not None else f"at most {high}{unit}")
    if v.when:
        parts.append(f"asked when `{v.when}`")
    if v.must_exist:
        parts.append("must exist")
    if v.type == "path" and v.base == "as_given":
        parts.append("kept as given")
    if v.secret:
        parts.append(f"secret: read from `${v.env_name}`, never written")
    return "; ".join(parts)


def _default(v: Variable) -> str:
    if v.secret:
        return "(environment)"
    if v.default is None:
        return "**required**"
    value = display(v, v.default) if not isinstance(v.default, list) else json.dumps(v.default)
    return f"`{value}`" if value else "(empty)"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def catalog_markdown(templates: Iterable[Template]) -> str:
    """One section per template: summary, when to pick it, variables, tasks."""
    out: list[str] = []
    for t in sorted(templates, key=lambda t: (t.category, t.name)):
        summary = t.summary if t.summary.endswith((".", "!", "?")) or not t.summary else \
            t.summary + "."
        out += [f"### `{t.name}`: {t.title or t.name}", "",
                f"{summary} Category `{t.category}`, version {t.version}, default descriptor "
                f"`{t.default_descriptor}`.", ""]
        if t.pick_when:
            out += [f"**Pick it for** {t.pick_when}.", ""]
        if t.variables:
            out += ["| variable | type | default | question | constraints |",
                    "| --- | --- | --- | --- | --- |"]
            out += [f"| `{v.name}` | {v.type} | {_cell(_default(v))} | {_cell(v.prompt)} | "
                    f"{_cell(_constraints(v))} |" for v in t.variables]
            out.append("")
        created = preview(t, strict=False)
        spec = created.loaded.spec if created.loaded is not None else None
        if spec is not None:
            out.append("Tasks:")
            out.append("")
            for task in spec.tasks:
                steps = task.steps
                checks = sum(1 for s in steps if s.effective_method == "command")
                critical = sum(1 for s in steps if s.critical_flag)
                out.append(f"{task.ref}. {_cell(task.description)} ({_n(len(steps), 'step')}, "
                           f"{critical} critical, {_n(checks, 'command step')})")
            out.append("")
    return "\n".join(out).rstrip() + "\n"
