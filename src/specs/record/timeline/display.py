"""What both renderings of a timeline write: durations, the axis's ticks, a bar's outcome and
the run's facts, in the same words."""

from __future__ import annotations

import math

from specs.record.timeline.model import Bar, TimelineData

__all__ = ["axis_ticks", "bar_info", "outcome_word", "run_facts", "seconds", "shorten",
           "tick_label"]


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if 0 < value < 0.01:
        return f"{value * 1000:.0f}ms"
    if value < 10:
        return f"{value:.2f}s"
    if value < 120:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m{int(value % 60):02d}s"


def axis_ticks(duration: float, slots: int) -> tuple[float, list[float]]:
    """A 1-2-5 step giving at most ``slots`` intervals over ``duration``, and the ticks."""
    duration = max(duration, 1e-3)
    raw = duration / max(1, slots)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw - 1e-12)
    count = int(duration / step + 1e-9)
    return step, [i * step for i in range(count + 1)]


def tick_label(value: float, step: float) -> str:
    if value == 0:
        return "0s"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{value:.{decimals}f}s"


def outcome_word(bar: Bar) -> str:
    """``✓``, ``✓ backup_1``, ``✗ failed``, ``○ skipped``, ``▸ running``, ``pending``."""
    if bar.status == "completed":
        return "✓" + (f" {bar.method_used}" if bar.method_used not in (None, "primary") else "")
    if bar.status == "skipped":
        return "○ skipped"
    if bar.status == "started":
        return "▸ running"
    if bar.status == "failed":
        return "✗ failed"
    return bar.status


def bar_info(bar: Bar) -> str:
    took = seconds(bar.duration) if bar.duration is not None else (
        "" if bar.start is None else "...")
    return f"{took} {outcome_word(bar)}".strip()


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def run_facts(data: TimelineData) -> tuple[str, str]:
    """Two lines: how the run executed, and what parallelism saved."""
    s = data.summary
    mode = (f"parallel run, up to {s.get('max_parallel')} steps at once" if s.get("enabled")
            else "sequential run")
    points = s.get("synchronisation_points", 0)
    return (f"{mode}; {s.get('max_concurrent_steps', 0)} at most at the same time; {points} "
            f"synchronisation point{'s' * (points != 1)}",
            f"makespan {seconds(s.get('makespan_s'))}, sum of step times "
            f"{seconds(s.get('sum_of_step_durations_s'))}, saved by running steps together "
            f"{seconds(s.get('time_saved_s'))}")
