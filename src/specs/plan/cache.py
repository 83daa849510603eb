"""Plans built once per spec object: a run, its progress documents and its timeline all read
the same spec's plan many times (:func:`spec_plan`)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from specs.plan.graph import Plan, PlanError, build_plan
from specs.spec.model import Spec

__all__ = ["per_spec", "spec_plan"]

_PLANS: dict[int, tuple[weakref.ref[Spec], Plan | None]] = {}


def per_spec(cache: dict[int, tuple[weakref.ref[Spec], Any]], spec: Spec,
              build: Callable[[Spec], Any]) -> Any:
    """``build(spec)``, kept while ``spec`` lives (a progress file is rewritten many times in
    a run, always for the same spec object)."""
    key = id(spec)
    found = cache.get(key)
    if found is not None and found[0]() is spec:
        return found[1]
    value = build(spec)

    def forget(_: object) -> None:
        cache.pop(key, None)

    cache[key] = (weakref.ref(spec, forget), value)
    return value


def _build_plan(spec: Spec) -> Plan | None:
    try:
        return build_plan(spec)
    except PlanError:
        return None


def spec_plan(spec: Spec) -> Plan | None:
    """``build_plan(spec)``, built once per spec object; None when the dependencies have a
    cycle."""
    plan: Plan | None = per_spec(_PLANS, spec, _build_plan)
    return plan
