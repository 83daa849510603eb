"""What a timeline shows: the run's rows (:class:`TaskRow`, :class:`Bar`), the attempts inside a
step's bar (:class:`Segment`), what happened at a moment (:class:`Marker`), and the whole chart
(:class:`TimelineData`), in seconds since execution began."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Bar", "Marker", "Segment", "TaskRow", "TimelineData"]


@dataclass
class Segment:
    """One attempt of one method inside a step's bar."""

    method: str  # primary | backup_<n>
    attempt: int
    round: int
    start: float
    end: float | None
    started_at: str
    ended_at: str | None = None
    outcome: str = "running"  # success | failure | error | interrupted | running
    failure_reason: str | None = None
    exit_code: int | None = None
    verdict: str = "unchecked"

    @property
    def backup(self) -> bool:
        return self.method != "primary"

    @property
    def failed(self) -> bool:
        return self.outcome in ("failure", "error", "interrupted")


@dataclass
class Marker:
    """Something that happened at a moment; gates and pauses also have an ``end``."""

    kind: str  # skipped | gate | backup | retry | escalation | reopened | pause | resume |
    #            transition | mode
    at: float
    ts: str
    label: str
    step: str | None = None
    end: float | None = None


@dataclass
class Bar:
    """One step: its span, attempts and markers."""

    ref: str
    task: str
    step_id: str
    description: str = ""
    critical: bool = False
    status: str = "pending"
    start: float | None = None
    end: float | None = None
    started_at: str | None = None
    ended_at: str | None = None
    round: int = 0
    execution_id: str | None = None
    slot: int | None = None
    parallel_group: str | None = None
    dependencies: list[str] = field(default_factory=list)
    phase: int | None = None
    method_used: str | None = None
    skip_reason: str | None = None
    message: str = ""
    segments: list[Segment] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    on_critical_path: bool = False
    parallel_execution: bool = False

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    @property
    def running(self) -> bool:
        return self.start is not None and self.status == "started"


@dataclass
class TaskRow:
    ref: str
    description: str = ""
    status: str = "pending"
    bars: list[Bar] = field(default_factory=list)


@dataclass
class TimelineData:
    """What the chart shows; see the module docstring. ``duration`` is the axis length."""

    run_id: str = ""
    descriptor: str = ""
    status: str = "initializing"
    goal: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    origin_at: str | None = None
    """Time 0 of the axis: when execution began (the first event of the run otherwise)."""
    duration: float = 0.0
    parallel: bool = False
    max_parallel: int = 1
    tasks: list[TaskRow] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    critical_path: list[str] = field(default_factory=list)
    """The measured critical path (the chain that set the run's length) once steps ran, the
    planned one before."""
    planned_critical_path: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def bars(self) -> list[Bar]:
        """Every bar, in row order."""
        return [bar for task in self.tasks for bar in task.bars]

    def bar(self, ref: str) -> Bar:
        return next(bar for bar in self.bars() if bar.ref == ref)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (for scripts and other renderers)."""
        return dataclasses.asdict(self)
