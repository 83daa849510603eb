"""What every family of pre-flight checks shares: :class:`Checker` (the loaded spec and the
helpers that make located diagnostics) and small helpers on refs and texts."""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from specs.diagnostics import Diagnostic, Location, Severity
from specs.spec.files import LoadedSpec
from specs.spec.model import Spec, Step, Task
from specs.spec.sources import DocPath

BUILD_GOAL = re.compile(r"\b(build|create|develop|system|application|app)\b", re.I)
_CRITICAL = operator.attrgetter("critical_flag")
_DESCRIPTION = operator.attrgetter("description")
_ID = operator.attrgetter("id")
_EXPECTED = operator.attrgetter("expected_output")


class Checker:
    """A family of pre-flight rules over one loaded spec; each ``check_*`` method yields
    diagnostics. The helpers make located diagnostics: ``error``, ``rule`` (a constitution
    quality rule: a warning that ``--strict`` makes an error), ``diag``."""

    def __init__(self, loaded: LoadedSpec) -> None:
        assert loaded.spec is not None
        self.loaded = loaded
        self.spec: Spec = loaded.spec

    @classmethod
    def checks(cls) -> list[str]:
        """The ``check_*`` methods of this family, by name."""
        return sorted(n for n in dir(cls) if n.startswith("check_"))

    def run(self) -> list[Diagnostic]:
        """Every check of this family, in name order."""
        return [d for name in self.checks() for d in getattr(self, name)()]

    def at(self, path: DocPath) -> Location:
        return self.loaded.sources.at(path)

    def diag(self, severity: Severity, code: str, message: str, path: DocPath,
             hint: str = "", strict: bool = False) -> Diagnostic:
        return Diagnostic(severity, code, message, self.at(path), hint, strict)

    def error(self, code: str, message: str, path: DocPath, hint: str = "") -> Diagnostic:
        return self.diag(Severity.ERROR, code, message, path, hint)

    def rule(self, code: str, message: str, path: DocPath, hint: str = "") -> Diagnostic:
        """A constitution quality rule: a warning that ``--strict`` makes an error."""
        return self.diag(Severity.WARNING, code, message, path, hint, strict=True)

    def steps(self) -> Iterator[tuple[int, Task, int, Step, DocPath]]:
        for ti, task in enumerate(self.spec.tasks):
            for si, step in enumerate(task.steps):
                yield ti, task, si, step, ("tasks", ti, "steps", si)

    @property
    def goal(self) -> str:
        return self.spec.goal.description or ""

    @property
    def build_goal(self) -> bool:
        return bool(BUILD_GOAL.search(self.goal))


def _has_action(action: Any) -> bool:
    return bool(action.command or action.callable or action.tool_path)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[*_`]", "", text).split()).lower().rstrip(".")


def _refs(pairs: list[tuple[int, int]], limit: int = 5) -> str:
    shown = ", ".join(f"{t}.{s}" for t, s in pairs[:limit])
    return shown + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def _step_ref(dep: Any, task: Task, ids: AbstractSet[int], tasks: dict[str, Task]) -> str | None:
    """Resolve a ``depends_on`` entry (``2`` or ``"1.2"``) to a step node name."""
    if isinstance(dep, int) and not isinstance(dep, bool):
        return f"{task.ref}.{dep}" if dep in ids else None
    if isinstance(dep, str):
        text = dep.strip()
        if text.isdigit():
            return f"{task.ref}.{text}" if int(text) in ids else None
        task_ref, _, step_id = text.rpartition(".")
        target = tasks.get(task_ref)
        if target is not None and step_id.isdigit() and any(
                s.id == int(step_id) for s in target.steps):
            return f"{target.ref}.{step_id}"
    return None
