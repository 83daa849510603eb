"""The families of pre-flight checks, and running them in one order.

Each family is a :class:`~specs.spec.validate.base.Checker` subclass in its own module;
:func:`run_checks` runs the ``check_*`` methods of the families given, all of them in name
order (the order they always ran and reported in). :data:`CHECKERS` is every family but the
include checks, which run it on each included spec (:mod:`specs.spec.validate.includes`).
"""

from __future__ import annotations

from collections.abc import Sequence

from specs.diagnostics import Diagnostic
from specs.spec.files import LoadedSpec
from specs.spec.validate.base import Checker
from specs.spec.validate.condition_checks import ConditionChecks
from specs.spec.validate.files import FileChecks
from specs.spec.validate.quality import QualityChecks
from specs.spec.validate.references import ReferenceChecks
from specs.spec.validate.structure import StructureChecks

__all__ = ["CHECKERS", "run_checks"]

CHECKERS: tuple[type[Checker], ...] = (
    StructureChecks, QualityChecks, ReferenceChecks, ConditionChecks, FileChecks)


def run_checks(loaded: LoadedSpec, families: Sequence[type[Checker]]) -> list[Diagnostic]:
    """The diagnostics of every check of ``families`` over ``loaded``, in check-name order."""
    instances = [family(loaded) for family in families]
    names = sorted((name, i) for i, family in enumerate(families)
                   for name in family.checks())
    return [d for name, i in names for d in getattr(instances[i], name)()]
