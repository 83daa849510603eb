"""The project constitution (``project_constitution.toml``, the "DNA profile") and its defaults.

A project constitution gives defaults for every spec of a project (reference §2.4). Two schemas
exist: the DNA interview's (``[execution]``, ``[error_handling]``, ``[retry]``,
``[optional_features]`` ...) and the original dashboard's (``[preferences]`` with
``risk_tolerance`` and ``autonomy_level``), which is mapped onto the first.

:func:`project_defaults` flattens a constitution into ``{spec path: value}`` pairs that the
loader applies where the spec itself is silent (precedence: built-in < project < spec < CLI).
``[project_constitution].applies_settings`` in a spec limits which project keys are inherited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specs.diagnostics import Diagnostic
from specs.spec.model import Spec
from specs.spec.sources import SourceMap

DocPath = tuple[str | int, ...]

#: project key (dotted) -> spec path it provides a default for
PROJECT_TO_SPEC: dict[str, DocPath] = {
    "execution.default_mode": ("execution", "default_mode"),
    "execution.escalation_threshold": ("execution", "escalation_threshold"),
    "execution.confidence_threshold": ("execution", "confidence_threshold"),
    "error_handling.propagation_enabled": ("error_propagation", "enabled"),
    "error_handling.propagation_strategy": ("error_propagation", "propagation_strategy"),
    "error_handling.failure_threshold": ("error_propagation", "failure_threshold"),
    "error_handling.read_prior_steps": ("error_propagation", "read_prior_steps"),
    "retry.max_retries": ("retry", "max_retries"),
    "retry.backoff_strategy": ("retry", "backoff_strategy"),
}

RISK_STRATEGY = {"high": "halt_on_critical", "moderate": "collaborative_review",
                 "low": "continue_and_log"}
RISK_THRESHOLD = {"high": 2, "moderate": 3, "low": 5}
RISK_CRITICAL_RANGE = {"high": "60-80", "moderate": "40-60", "low": "20-40"}
AUTONOMY_MODE = {"high": "silent", "medium": "dynamic", "low": "collaborative"}
TOLERANCE_RISK = {"high": "high", "medium": "moderate", "low": "low"}


@dataclass
class ProjectConstitution:
    """A loaded project constitution: the raw document, where it is, what it says."""

    path: Path
    doc: dict[str, Any]
    sources: SourceMap
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.doc
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def dna_code(self) -> str | None:
        value = self.get("metadata.dna_code")
        return value if isinstance(value, str) else None

    @property
    def risk_level(self) -> str | None:
        risk = self.get("project.risk_level")
        if risk is None:
            tolerance = self.get("preferences.risk_tolerance")
            risk = TOLERANCE_RISK.get(str(tolerance).lower()) if tolerance else None
        return str(risk).lower() if risk is not None else None

    @property
    def parallel_execution(self) -> bool | None:
        value = self.get("optional_features.parallel_execution")
        return value if isinstance(value, bool) else None

    def critical_range(self) -> tuple[float, float] | None:
        """The Art. VI critical-step range, as fractions (``quality.critical_percentage``)."""
        text = self.get("quality.critical_percentage")
        if text is None and self.risk_level in RISK_CRITICAL_RANGE:
            text = RISK_CRITICAL_RANGE[self.risk_level or ""]
        return parse_range(text)


def parse_range(text: Any) -> tuple[float, float] | None:
    """``"40-60"`` -> ``(0.4, 0.6)``; ``None`` when it is not such a range."""
    if not isinstance(text, str) or "-" not in text:
        return None
    low, _, high = text.partition("-")
    try:
        lo, hi = float(low.strip().rstrip("%")) / 100, float(high.strip().rstrip("%")) / 100
    except ValueError:
        return None
    return (lo, hi) if 0 <= lo <= hi <= 1 else None


def project_defaults(
    project: ProjectConstitution, applies: list[str] | None = None
) -> dict[DocPath, tuple[Any, str]]:
    """``{spec path: (value, project key)}`` for every default the constitution provides."""
    out: dict[DocPath, tuple[Any, str]] = {}

    def offer(key: str, path: DocPath, value: Any) -> None:
        if value is None or (applies is not None and key not in applies):
            return
        out.setdefault(path, (value, key))

    for key, path in PROJECT_TO_SPEC.items():
        offer(key, path, project.get(key))
    risk = project.risk_level
    if risk in RISK_STRATEGY:
        offer("error_handling.propagation_strategy", ("error_propagation", "propagation_strategy"),
              RISK_STRATEGY[risk or ""])
        offer("error_handling.failure_threshold", ("error_propagation", "failure_threshold"),
              RISK_THRESHOLD[risk or ""])
    autonomy = project.get("preferences.autonomy_level")
    if isinstance(autonomy, str) and autonomy.lower() in AUTONOMY_MODE:
        offer("execution.default_mode", ("execution", "default_mode"),
              AUTONOMY_MODE[autonomy.lower()])
    # research_enabled_default is the DNA template's spelling of the same key (reference §2.4)
    names = ("optional_features.research_enabled", "optional_features.research_enabled_default")
    for key in names:
        research = project.get(key)
        if isinstance(research, bool):
            if applies is None or any(name in applies for name in names):
                out.setdefault(("tasks", "*", "research_enabled"), (research, key))
            break
    return out


def critical_range(spec: Spec, project: ProjectConstitution | None) -> tuple[float, float]:
    """The Art. VI range of critical steps, as fractions: the spec's
    ``[constitutional_compliance]`` bounds, else its ``[constitution]
    critical_percentage_target``, else the project constitution's
    (``quality.critical_percentage`` or its risk level, unless ``[project_constitution]
    applies_settings`` leaves it out), else 40-60 %."""
    compliance = spec.constitutional_compliance or {}
    low = compliance.get("article_vi_critical_balance_min")
    high = compliance.get("article_vi_critical_balance_max")
    if isinstance(low, int | float) and isinstance(high, int | float):
        return float(low), float(high)
    found = parse_range((spec.constitution or {}).get("critical_percentage_target"))
    if found is None and project is not None and inherits(spec, "quality.critical_percentage"):
        found = project.critical_range()
    return found or (0.4, 0.6)


def inherits(spec: Spec, project_key: str) -> bool:
    """Whether ``[project_constitution] applies_settings`` (if given) lets the key through."""
    applies = (spec.project_constitution or {}).get("applies_settings")
    return not isinstance(applies, list) or project_key in [str(k) for k in applies]
