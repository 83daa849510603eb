"""What an import or a rebuild did with each file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ImportResult"]


@dataclass
class ImportResult:
    """One file imported (or not): what it was read as, the run id, and what was kept."""

    path: Path
    kind: str  # events | events-import | progress-F1 .. progress-F5 | skipped
    run_id: str | None = None
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)
