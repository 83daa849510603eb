"""Composed specs (:mod:`specs.spec.compose`): the root and every included spec checked on their
own tasks and files."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from specs.diagnostics import Diagnostic
from specs.spec.compose import OWN_VIEW_SKIPS, ComposedSources, IncludedSpec
from specs.spec.files import LoadedSpec
from specs.spec.model import Task, copy_with
from specs.spec.sources import SourceMap
from specs.spec.validate.base import (
    Checker,
)
from specs.spec.validate.checks import CHECKERS, run_checks
from specs.spec.validate.files import FileChecks
from specs.spec.validate.structure import StructureChecks


class IncludeChecks(Checker):
    """The checks a composed spec adds (its include problems are the loader's)."""

    def check_includes(self) -> Iterable[Diagnostic]:
        """A composed spec (specs.spec.compose): the root's Markdown against its own tasks, and each
        included spec checked on its own tasks, with its own files. The include problems
        (missing, cycle, alias, shared) are the loader's: they are in the loaded diagnostics."""
        yield from included_diagnostics(self.loaded)


def included_diagnostics(loaded: LoadedSpec) -> list[Diagnostic]:
    """What the validator adds for a composed spec (its ``check_includes``).

    The validator checks the composed spec as one spec (every task in view: dependencies,
    duplicate refs, SPECLets, the quality rules of the run as a whole). This adds: the root's
    Markdown against the root's own tasks (bridging, goal drift; a composed spec has no single
    Markdown), and each included spec checked as ``specs validate`` checks it (its tasks and
    those of the specs it includes, its own folder, Markdown and files), in the composed refs,
    keeping what is located in its own files (the specs it includes report theirs). The include
    problems themselves are loader diagnostics (``loaded.diagnostics``).
    """
    composed = loaded.composition
    if composed is None:
        return []
    found: list[Diagnostic] = []
    if composed.root.spec is not None:
        found += [*StructureChecks(composed.root).check_goal(),
                  *FileChecks(composed.root).check_bridging()]
    for record in composed.included:
        spec = record.loaded.spec
        if spec is None:
            continue
        own = dataclasses.replace(record.loaded, spec=copy_with(spec, {"tasks": record.own}))
        found += [*StructureChecks(own).check_goal(), *FileChecks(own).check_bridging()]
        reach = _reach(record)
        view = dataclasses.replace(
            record.loaded, spec=copy_with(spec, {"tasks": [t for t, _, _ in reach]}),
            sources=ComposedSources(record.loaded.sources, [(m, i) for _, m, i in reach]),
            markdown=None)
        files = {str(path) for path in (record.loaded.parameters_path,
                                        record.loaded.markdown_path, record.loaded.exe_path)
                 if path is not None}
        found += [d for d in run_checks(view, CHECKERS)
                  if d.code not in OWN_VIEW_SKIPS and d.location.file in files]
    return found


def _reach(record: IncludedSpec) -> list[tuple[Task, SourceMap, int]]:
    """The tasks of ``record``'s spec as composed on its own: its includes' first, then its
    own; each with the source map and index it has in its own file."""
    out: list[tuple[Task, SourceMap, int]] = []
    seen: set[int] = set()

    def visit(item: IncludedSpec) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        for child in item.includes:
            visit(child)
        out.extend((task, item.loaded.sources, i) for i, task in enumerate(item.own))

    visit(record)
    return out
