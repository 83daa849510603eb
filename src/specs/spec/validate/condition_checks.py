"""Conditions and transition ``when`` texts: syntax, references, order, schema fields and types
(docs/conditions.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from specs.diagnostics import Diagnostic, Location, Severity
from specs.spec import conditions as cond
from specs.spec.model import Step
from specs.spec.sources import DocPath
from specs.spec.steporder import run_index
from specs.spec.validate.base import (
    _ID,
    Checker,
    _step_ref,
)


class ConditionChecks(Checker):
    """Conditions and transition ``when`` texts (docs/conditions.md)."""

    def check_conditions(self) -> Iterable[Diagnostic]:
        """Every task/step ``condition`` and ``[[transitions]] when`` parses (E-COND-SYNTAX) and
        reads only steps that exist (E-COND-REF) and run before it (E-COND-ORDER), fields the
        step's inline ``output_schema`` allows (E-/W-COND-FIELD) with operand types that fit
        (E-COND-TYPE), and ``vars`` that ``[vars]`` defines (W-COND-VAR). docs/conditions.md
        defines "runs before"; locations point at the offending character when they can."""

        tasks, files = self.spec.tasks, dict[str, list[str]]()
        by_ref = {task.ref: task for task in tasks}
        found: list[tuple[DocPath, str, int, Any]] = []  # (path, text, task index, reader)
        for ti, task in enumerate(tasks):
            if task.condition:
                found.append((("tasks", ti, "condition"), task.condition, ti, None))
            found += [(("tasks", ti, "steps", si, "condition"), step.condition, ti, step)
                      for si, step in enumerate(task.steps) if step.condition]
        for i, item in enumerate(self.spec.transitions or []):
            origin = by_ref.get(str(item.from_task))
            if item.when and origin is not None:
                at = next(ti for ti, task in enumerate(tasks) if task is origin)
                found.append((("transitions", i, "when"), item.when, at, "end"))
        if not found:
            return
        steps = {f"{t.ref}.{s.id}": (ti, s) for ti, t in reversed(list(enumerate(tasks)))
                 for s in reversed(t.steps)}  # reversed: the first of duplicates wins
        task_ids = {t.ref: {x.id for x in t.steps} for t in tasks}
        deps = {f"{t.ref}.{s.id}": {r for d in s.depends_on or [] if (r := _step_ref(
            d, t, task_ids[t.ref], by_ref))} for t in tasks for s in t.steps}

        def upstream(node: str) -> set[str]:  # depends_on, directly or transitively
            seen, todo = set[str](), [node]
            while todo:
                new = deps.get(todo.pop(), set()) - seen
                seen |= new
                todo += new
            return seen

        def diag(code: str, message: str, path: DocPath, text: str, offset: int | None,
                 hint: str = "") -> Diagnostic:
            loc = self.at(path)
            try:
                lines = files.get(loc.file) or files.setdefault(loc.file, Path(
                    loc.file).read_text(encoding="utf-8").removeprefix("\ufeff").split("\n"))
                line = lines[loc.line - 1] if loc.line > 0 and offset is not None else ""
            except (OSError, UnicodeError):
                line = ""
            key = re.escape(str(path[-1]))
            m = re.compile(rf"""(?:{key}|"{key}"|'{key}')[ \t]*=[ \t]*(["'])""").match(
                line, max(loc.col - 1, 0))
            if m and offset is not None:
                start, quote = m.end(1), m[1]
                if (line[start:start + len(text) + 1] == text + quote and quote * 3 != line[
                        start - 1:start + 2] and (quote == "'" or "\\" not in text)):
                    loc = Location(loc.file, loc.line, start + offset + 1)
            severity = Severity.WARNING if code.startswith("W") else Severity.ERROR
            return Diagnostic(severity, code, message, loc, hint,
                              excerpt=cond.excerpt(text, offset))

        for path, text, ti, reader in found:
            task = tasks[ti]
            try:
                parsed = cond.parse(text)
            except cond.ConditionError as exc:
                yield diag("E-COND-SYNTAX", f"condition: {exc}", path, text, exc.offset,
                           "see docs/conditions.md")
                continue
            me = f"{task.ref}.{reader.id}" if isinstance(reader, Step) else None
            schemas: dict[cond.Reference, frozenset[str] | None] = {}
            for ref in parsed.references():
                if ref.kind == "var":
                    if str(ref.field[0]) not in (self.spec.vars or {}):
                        yield diag("W-COND-VAR", f"condition reads vars.{ref.field[0]}, which "
                                   "[vars] does not define", path, text, ref.offset,
                                   f"add it to [vars] or pass --var {ref.field[0]}=...")
                    continue
                target = cond.step_ref(ref, task.ref) or ""
                if target not in steps:
                    yield diag("E-COND-REF", f"condition refers to step {target}, which does not "
                               "exist", path, text, ref.offset)
                    continue
                tpos, tstep = steps[target]
                if target == me:
                    why = "is the step itself"
                elif reader == "end":
                    why = "" if tpos <= ti else "runs after the transition's task"
                elif reader is None:
                    why = "" if tpos < ti else "is not in an earlier task (a task's condition " \
                        "is checked before its steps run)"
                else:
                    if tpos == ti:  # the implicit step order: by id, parallel groups aside
                        runs = run_index(sorted(task.steps, key=_ID))
                        before = runs[tstep.id] < runs[reader.id]
                    else:
                        before = tpos < ti
                    why = "" if before or target in upstream(me or "") else \
                        f"does not run before step {me}"
                if why:
                    yield diag("E-COND-ORDER", f"condition refers to step {target}, which {why}",
                               path, text, ref.offset, "a step reads earlier steps of its task, "
                               "steps it depends_on and steps of earlier tasks")
                schema = tstep.output_schema
                if ref.kind != "output" or not isinstance(schema, dict) or any(
                        b.output_schema not in (None, schema) for b in tstep.backups):
                    continue
                missing, forbidden, kinds = cond.schema_lookup(schema, ref.field)
                schemas[ref] = kinds
                if missing is not None:
                    yield diag("E-COND-FIELD" if forbidden else "W-COND-FIELD",
                               f"condition reads {ref.source()}, but step {target}'s "
                               f"output_schema {'does not allow' if forbidden else 'does not list'}"
                               f" {missing!r}", path, text, ref.offset)
            for message, offset in cond.type_errors(parsed, schemas.get):
                yield diag("E-COND-TYPE", f"condition: {message}", path, text, offset)
