"""The statistics of insights: Wilson intervals, percentiles, medians, reason clusters.

Rates are shown with their 95 % Wilson score interval (Wilson 1927): for k successes in n
tries, ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with z = 1.96. Unlike the
normal approximation it stays inside [0, 1] and is honest for small n and for rates of 0 or 1,
which are common here (a backup that always succeeded, a step that always failed).
Percentiles are nearest-rank: the smallest value with at least p % of the values at or below.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

__all__ = ["Z95", "cluster_reasons", "median", "normalise_reason", "percentile", "wilson"]

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n tries ((0, 1) when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


_NOISE = [(re.compile(r"(/[\w.\-]+)+"), "<path>"), (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
          (re.compile(r"\b\d+(\.\d+)?\b"), "<n>"), (re.compile(r"'[^']*'|\"[^\"]*\""), "<text>"),
          (re.compile(r"\s+"), " ")]


def normalise_reason(reason: str) -> str:
    """A failure reason with its variable parts (paths, numbers, quoted text) replaced, so
    reasons that differ only in them fall in one cluster."""
    text = reason.strip().splitlines()[0] if reason.strip() else ""
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return text[:200]


def cluster_reasons(reasons: Sequence[str], limit: int = 3) -> list[dict[str, object]]:
    """The most frequent reason clusters: ``{pattern, count, example}``, most frequent first."""
    clusters: dict[str, list[str]] = {}
    for reason in reasons:
        clusters.setdefault(normalise_reason(reason), []).append(reason)
    ranked = sorted(clusters.items(), key=lambda item: (-len(item[1]), item[0]))
    return [{"pattern": pattern, "count": len(found), "example": found[-1][:300]}
            for pattern, found in ranked[:limit]]
