"""Pre-flight validation: the checks of reference §3.2 plus our own keys.

:func:`validate` takes a :class:`~specs.spec.load.LoadedSpec` and returns every diagnostic at once
(the loader's own plus these checks), sorted by file and line. It never raises on bad input.

Two strictness levels (SPEC_FORMAT.md §1.2). Structural problems are errors: duplicate ids,
unknown references, dependency cycles, mismatched backup triggers, no tasks, leftover
placeholders. The constitution's quality rules (software stack for build goals, counts, critical
balance, critical steps without backups, the "for <users>" rule, missing expected outputs) are
warnings marked ``strict``; ``strict=True`` (``--strict`` or ``[validation] strict = true`` in the
project constitution) turns them into errors, as the original constitution demands.

Codes are stable: ``E-*`` errors, ``W-*`` warnings, ``I-*`` info. docs/validation.md lists them.

The checks come in families, one module each (:mod:`~specs.spec.validate.checks` lists them):
``structure`` (goal, tasks, steps, actions, backups), ``quality`` (the constitution's rules;
``placeholders``), ``references`` (dependencies, SPECLets, transitions), ``condition_checks``,
``files`` (bridging, exe, MCP servers) and ``includes`` (composed specs).
"""

from __future__ import annotations

from specs.diagnostics import RANKS, Diagnostic, Severity
from specs.spec.files import LoadedSpec
from specs.spec.validate.base import BUILD_GOAL
from specs.spec.validate.checks import CHECKERS, run_checks
from specs.spec.validate.includes import IncludeChecks, included_diagnostics
from specs.spec.validate.placeholders import placeholder
from specs.spec.validate.quality import FOR_USERS

__all__ = ["BUILD_GOAL", "FOR_USERS", "included_diagnostics", "is_strict", "placeholder",
           "validate"]


def is_strict(loaded: LoadedSpec, strict: bool = False) -> bool:
    """``--strict``, or ``[validation] strict = true`` in the project constitution."""
    return strict or bool(loaded.project and loaded.project.get("validation.strict") is True)


def validate(loaded: LoadedSpec, strict: bool = False) -> list[Diagnostic]:
    """All diagnostics for ``loaded``: the loader's and the pre-flight checks', sorted."""
    found = list(loaded.diagnostics)
    if loaded.spec is not None:
        found += run_checks(loaded, (*CHECKERS, IncludeChecks))
    if is_strict(loaded, strict):
        found = [d.escalated() if d.strict and d.severity is Severity.WARNING else d
                 for d in found]
    return _sorted_unique(found)


def _sorted_unique(found: list[Diagnostic]) -> list[Diagnostic]:
    """``found`` without repeats (the first of equal diagnostics stays), sorted by file, line,
    column, severity and code; ties keep their order.

    Equal diagnostics have equal sort keys, so after a stable sort every repeat sits in the run
    of its key, behind its first: only runs of two or more need comparing, and the thousands
    of one-of-a-kind diagnostics of a big spec are never hashed.
    """
    ranks = RANKS
    keys = [(d.location.file, d.location.line, d.location.col, ranks[d.severity._value_],
             d.code) for d in found]
    result: list[Diagnostic] = []
    run: list[Diagnostic] = []
    previous: object = None
    for index in sorted(range(len(found)), key=keys.__getitem__):
        key, diagnostic = keys[index], found[index]
        if key != previous:
            previous, run = key, [diagnostic]
        elif diagnostic in run:
            continue
        else:
            run.append(diagnostic)
        result.append(diagnostic)
    return result
