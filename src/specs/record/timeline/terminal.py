"""A timeline drawn in the terminal with Rich: one row per step on a time axis scaled to the
width, primary and backup attempts in different characters and colours, failed attempts
marked, the critical-path rows highlighted, and a legend."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from specs.record.timeline.display import (
    axis_ticks,
    bar_info,
    run_facts,
    shorten,
    tick_label,
)
from specs.record.timeline.model import Bar, TimelineData

__all__ = ["render_terminal"]

CHAR_PRIMARY, CHAR_BACKUP, CHAR_FAILED, CHAR_WAIT = "█", "▓", "✗", "·"
CHAR_SKIPPED, CHAR_GATE, CHAR_PAUSE, CHAR_RUNNING, CHAR_CRITICAL = "○", "◆", "‖", "▸", "»"
STYLES = {"primary": "green", "backup": "yellow", "failed": "bold red", "running": "cyan",
          "wait": "dim", "skipped": "dim", "gate": "magenta", "pause": "blue",
          "critical": "bold bright_white on grey23", "task": "bold", "axis": "dim"}
LEGEND = (f"{CHAR_PRIMARY} primary attempt   {CHAR_BACKUP} backup attempt   {CHAR_FAILED} "
          f"attempt failed   {CHAR_RUNNING} running   {CHAR_WAIT} waiting (retry, gate)   "
          f"{CHAR_SKIPPED} skipped   {CHAR_GATE} gate   {CHAR_PAUSE} run paused   "
          f"{CHAR_CRITICAL} critical path")


class _Row:
    """One chart row: ``width`` cells of (character, style)."""

    def __init__(self, width: int, scale: float) -> None:
        self.cells: list[tuple[str, str]] = [(" ", "")] * width
        self.width, self.scale = width, scale

    def col(self, t: float) -> int:
        return min(self.width - 1, max(0, int(t * self.scale)))

    def span(self, start: float, end: float) -> range:
        first = self.col(start)
        last = max(first + 1, min(self.width, round(end * self.scale)))
        return range(first, last)

    def fill(self, start: float, end: float, char: str, style: str, *,
             after: int = 0) -> range:
        """Cells ``start``..``end`` (at least one), beginning no earlier than ``after``."""
        cells = self.span(start, end)
        if cells.start < after < self.width:
            cells = range(after, max(after + 1, cells.stop))
        for i in cells:
            self.cells[i] = (char, style)
        return cells

    def put(self, t: float, char: str, style: str) -> None:
        self.cells[self.col(t)] = (char, style)

    def text(self) -> Text:
        out = Text()
        for char, style in self.cells:
            out.append(char, style)
        return out


def _bar_row(bar: Bar, width: int, scale: float) -> _Row:
    row = _Row(width, scale)
    for marker in bar.markers:
        if marker.kind == "gate" and marker.end is not None:
            row.fill(marker.at, marker.end, CHAR_WAIT, STYLES["wait"])
    if bar.start is not None:
        row.fill(bar.start, bar.end if bar.end is not None else bar.start, CHAR_WAIT,
                 STYLES["wait"])
    free = 0  # each attempt gets a cell of its own (a short failure stays visible)
    for segment in bar.segments:
        end = segment.end if segment.end is not None else segment.start
        kind = "backup" if segment.backup else "primary"
        style = STYLES["failed"] if segment.failed else STYLES[
            "running" if segment.outcome == "running" else kind]
        cells = row.fill(segment.start, end, CHAR_BACKUP if segment.backup else CHAR_PRIMARY,
                         style, after=free)
        free = cells.stop
        if segment.failed:
            row.cells[cells[-1]] = (CHAR_FAILED, STYLES["failed"])
        elif segment.outcome == "running":
            row.cells[cells[-1]] = (CHAR_RUNNING, STYLES["running"])
    for marker in bar.markers:
        if marker.kind == "skipped":
            row.put(marker.at, CHAR_SKIPPED, STYLES["skipped"])
        elif marker.kind == "gate":
            row.put(marker.at, CHAR_GATE, STYLES["gate"])
    return row


def _run_row(data: TimelineData, width: int, scale: float) -> _Row | None:
    if not data.markers:
        return None
    row = _Row(width, scale)
    for marker in data.markers:
        if marker.kind == "pause":
            row.fill(marker.at, marker.end if marker.end is not None else data.duration,
                     CHAR_PAUSE, STYLES["pause"])
        elif marker.kind == "gate":
            row.put(marker.at, CHAR_GATE, STYLES["gate"])
        elif marker.kind in ("transition", "mode", "escalation"):
            row.put(marker.at, {"transition": "↺", "mode": "⇄", "escalation": "!"}[marker.kind],
                    STYLES["gate"])
    return row


def render_terminal(data: TimelineData, console_width: int = 100) -> Group:
    """The chart as Rich renderables for a console ``console_width`` columns wide."""
    info_w = 17
    labels = [f"{b.ref} {b.description}".rstrip() for b in data.bars()]
    label_w = max(12, min(max((len(x) for x in labels), default=12), console_width // 4))
    chart_w = max(10, console_width - label_w - info_w - 5)
    scale = chart_w / data.duration if data.duration > 0 else 0.0
    lines: list[Text] = []

    def line(*parts: tuple[str, str] | Text) -> None:
        out = Text(no_wrap=True, overflow="crop")
        for part in parts:
            if isinstance(part, Text):
                out.append_text(part)
            else:
                out.append(*part)
        lines.append(out)

    title = f"Timeline of {data.run_id or 'a run'}"
    title += f" ({data.descriptor})" if data.descriptor else ""
    title += f": {data.status}" + (f", goal {data.goal}" if data.goal else "")
    line((title, "bold"))
    for fact in run_facts(data):
        line((fact, ""))
    line(("", ""))
    step, ticks = axis_ticks(data.duration, max(1, chart_w // 10))
    axis = [" "] * chart_w
    ruler = ["─"] * chart_w
    taken = -1
    for tick in ticks:
        col = min(chart_w - 1, int(tick * scale))
        ruler[col] = "┼"
        label = tick_label(tick, step)
        begin = max(0, min(col, chart_w - len(label)))
        if begin > taken:
            axis[begin:begin + len(label)] = label
            taken = begin + len(label)
    ruler[0] = "├"
    pad = " " * (label_w + 3)
    line((pad + "".join(axis), STYLES["axis"]))
    line((pad + "".join(ruler), STYLES["axis"]))
    for task in data.tasks:
        status = f"  [{task.status}]" if task.status != "pending" else ""
        line((shorten(f"Task {task.ref}  {task.description}", console_width - len(status) - 1)
              + status, STYLES["task"]))
        for bar in task.bars:
            mark = CHAR_CRITICAL if bar.on_critical_path else " "
            label = shorten(f"{bar.ref} {bar.description}".rstrip(), label_w)
            style = STYLES["critical"] if bar.on_critical_path else ""
            info = shorten(bar_info(bar), info_w)
            info_style = "red" if bar.status == "failed" else "dim" if bar.status in (
                "skipped", "pending") else ""
            line((f"{mark} ", style), (f"{label:<{label_w}}", style), (" ", ""),
                 _bar_row(bar, chart_w, scale).text(), (" ", ""), (info, info_style))
    run_row = _run_row(data, chart_w, scale)
    if run_row is not None:
        line((f"  {'run':<{label_w}} ", STYLES["task"]), run_row.text())
    line(("", ""))
    if data.critical_path:
        line((shorten("Critical path: " + " -> ".join(data.critical_path), console_width),
              STYLES["critical"]))
    words = LEGEND.split("   ")
    current = "Legend: "
    for word in words:
        if len(current) + len(word) + 3 > console_width and current.strip() != "Legend:":
            line((current.rstrip(), "dim"))
            current = "        "
        current += word + "   "
    line((current.rstrip(), "dim"))
    return Group(*lines)
