"""Adaptive learning: suggestions to improve a spec, drawn from its run history, with evidence.

``specs insights [PATH]`` (see docs/insights.md): :func:`analyse` makes a :class:`Report` of
:class:`Suggestion` s (kinds in :data:`KINDS`), :func:`diff` shows and :func:`apply` makes the
edit a suggestion proposes; :func:`history_analysis` is R-POST over the history.
"""

from __future__ import annotations

from specs.insights.analysis import (
           analyse,
           apply,
           diff,
           history_analysis,
           save_report,
           saved_report,
)
from specs.insights.model import KINDS, InsightOptions, Report, Suggestion
from specs.insights.patch import PatchError
from specs.insights.stats import wilson

__all__ = ["KINDS", "InsightOptions", "PatchError", "Report", "Suggestion", "analyse", "apply",
           "diff", "history_analysis", "save_report", "saved_report", "wilson"]
