"""What insights produce: suggestions with their evidence, and the options that decide them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["KINDS", "InsightOptions", "Report", "Suggestion", "suggestion_id"]

#: every kind of suggestion, in the order reports list them
KINDS = ("promote-backup", "redesign-step", "retries", "no-retry", "timeout", "flag-critical",
         "unflag-critical", "regression", "dominant-step", "template")


@dataclass(frozen=True)
class InsightOptions:
    """How much evidence a suggestion needs, and which runs count (docs/insights.md)."""

    #: runs of a step needed for a run-level suggestion (``--min-runs``)
    min_runs: int = 5
    #: tries of each method needed to compare methods or retries (``--min-tries``)
    min_tries: int = 10
    #: only the newest N runs of the spec count (after ``since`` and outages): recent runs
    #: weigh more by leaving old ones out (``--window``)
    window: int = 100
    #: only runs started at or after this ISO time (``--since``)
    since: str | None = None
    #: the share of eventual successes a retry count must keep
    keep_successes: float = 0.95
    #: regressions: the recent runs compared with the baseline before them
    recent_runs: int = 5
    baseline_runs: int = 30
    #: templates: distinct specs a task shape must recur in
    min_specs: int = 3
    #: a step dominates when its median share of the run's time or cost is at least this
    dominant_share: float = 0.5


def suggestion_id(kind: str, *parts: str) -> str:
    """A stable id: the kind and a hash of what the suggestion is about (spec, step, method),
    so the same finding keeps its id from one analysis to the next."""
    digest = hashlib.sha1("\x1f".join((kind, *parts)).encode()).hexdigest()[:8]
    return f"{kind}-{digest}"


@dataclass
class Suggestion:
    """One suggestion: what to change, where, and the evidence for it.

    ``evidence`` holds the counts, rates with their 95 % Wilson intervals (``[low, high]``),
    ``last_seen`` (the newest time the pattern was observed), ``examples`` of failure
    reasons and ``run_ids``; ``patch`` says what ``--apply`` would change (None: advice only);
    ``impact`` what it would have changed in past runs."""

    id: str
    kind: str
    descriptor: str
    step: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    patch: dict[str, Any] | None = None
    impact: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    """An analysis: the suggestions, and which runs were counted or left out and why."""

    descriptor: str | None
    parameters_path: str | None
    parameters_sha256: str | None
    analysed_at: str
    runs_considered: int
    runs_excluded: dict[str, list[str]] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["suggestions"] = [s.to_dict() for s in self.suggestions]
        return out

    def find(self, suggestion: str) -> Suggestion | None:
        return next((s for s in self.suggestions if s.id == suggestion), None)
