"""A timeline as a self-contained HTML page: inline CSS and an SVG chart, no script and nothing
fetched; each bar, attempt and marker has a hover title (``<title>``)."""

from __future__ import annotations

import html
from collections.abc import Callable

from specs.record.timeline.display import (
    axis_ticks,
    bar_info,
    run_facts,
    seconds,
    shorten,
    tick_label,
)
from specs.record.timeline.model import Bar, Marker, Segment, TimelineData

__all__ = ["render_html"]

LABEL_W, CHART_W, INFO_W = 270, 740, 140
ROW_H, TASK_H, TOP, BOTTOM = 22, 28, 44, 16
BAR_H = 12

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #1f2937; background: #ffffff; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
p.meta { margin: 2px 0; color: #4b5563; font-size: 13px; }
table.summary { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
table.summary td { padding: 2px 12px 2px 0; }
table.summary td:first-child { color: #6b7280; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; margin: 10px 0 14px 0;
          color: #374151; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
svg { font-size: 12px; max-width: 100%; height: auto; }
svg text { fill: #1f2937; }
.grid { stroke: #e5e7eb; stroke-width: 1; }
.axis { fill: #6b7280; font-size: 11px; }
.task { font-weight: 600; font-size: 13px; }
.taskline { stroke: #d1d5db; stroke-width: 1; }
.label { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.info { fill: #4b5563; font-size: 11px; }
.info.failed { fill: #b91c1c; }
.crit-row { fill: #fef3c7; }
.crit .label { font-weight: 700; }
.span { stroke: #9ca3af; stroke-width: 2; stroke-dasharray: 2 2; }
.primary.ok { fill: #2563eb; }
.backup.ok { fill: url(#stripes-backup); stroke: #c2410c; stroke-width: 1; }
.primary.failed { fill: #dc2626; }
.backup.failed { fill: url(#stripes-failed); stroke: #991b1b; stroke-width: 1; }
.running { fill: #06b6d4; }
.fail-mark { fill: #991b1b; font-weight: 700; font-size: 11px; }
.skip { fill: #ffffff; stroke: #6b7280; stroke-width: 1.5; }
.gate { fill: #a21caf; }
.gate-wait { stroke: #a21caf; stroke-width: 1.5; stroke-dasharray: 1 2; }
.backup-mark { fill: #c2410c; }
.pause { fill: #dbeafe; opacity: 0.8; }
.run-mark { fill: #1d4ed8; }
"""

DEFS = """<defs>
<pattern id="stripes-backup" width="6" height="6" patternUnits="userSpaceOnUse" \
patternTransform="rotate(45)"><rect width="6" height="6" fill="#fb923c"/>\
<rect width="3" height="6" fill="#ea580c"/></pattern>
<pattern id="stripes-failed" width="6" height="6" patternUnits="userSpaceOnUse" \
patternTransform="rotate(45)"><rect width="6" height="6" fill="#f87171"/>\
<rect width="3" height="6" fill="#b91c1c"/></pattern>
</defs>"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(ts: str | None) -> str:
    """``10:15:00.123`` of an event time."""
    if not ts or "T" not in ts:
        return ts or "?"
    return ts.split("T", 1)[1].rstrip("Z")


def _segment_title(bar: Bar, s: Segment) -> str:
    took = seconds(s.end - s.start) if s.end is not None else "-"
    parts = [f"{bar.ref} {s.method} attempt {s.attempt}"
             + (f" (round {s.round})" if s.round > 1 else "") + f": {s.outcome}, {took}",
             f"{_clock(s.started_at)} -> {_clock(s.ended_at)}"]
    if s.failure_reason:
        parts.append(f"reason: {s.failure_reason}")
    if s.exit_code is not None:
        parts.append(f"exit code {s.exit_code}")
    if s.verdict != "unchecked":
        parts.append(f"expected output: {s.verdict}")
    return "\n".join(parts)


def _bar_title(bar: Bar) -> str:
    parts = [f"{bar.ref} {bar.description}".rstrip(),
             f"status {bar.status}" + (f" via {bar.method_used}" if bar.method_used else "")
             + (f", {seconds(bar.duration)}" if bar.duration is not None else "")]
    if bar.critical:
        parts.append("critical step")
    if bar.on_critical_path:
        parts.append("on the critical path")
    if bar.execution_id:
        parts.append(f"execution {bar.execution_id}"
                     + (f", thread {bar.slot}" if bar.slot is not None else ""))
    if bar.parallel_group:
        parts.append(f"parallel group {bar.parallel_group}")
    if bar.phase is not None:
        parts.append(f"phase {bar.phase}")
    if bar.dependencies:
        parts.append("after " + ", ".join(bar.dependencies))
    if bar.parallel_execution:
        parts.append("ran beside other steps")
    if bar.message:
        parts.append(bar.message)
    return "\n".join(parts)


def render_html(data: TimelineData) -> str:
    """A self-contained HTML page (inline CSS and SVG; no script, nothing fetched)."""
    scale = CHART_W / data.duration if data.duration > 0 else 0.0

    def x(t: float) -> float:
        return round(LABEL_W + max(0.0, t) * scale, 2)

    rows = sum(TASK_H + ROW_H * len(t.bars) for t in data.tasks) + (ROW_H if data.markers else 0)
    height = TOP + rows + BOTTOM
    width = LABEL_W + CHART_W + INFO_W
    svg: list[str] = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
                      'role="img" aria-label="Gantt chart of the run">']
    step, ticks = axis_ticks(data.duration, 10)
    for tick in ticks:
        tx = x(tick)
        svg.append(f'<line class="grid" x1="{tx}" y1="{TOP - 6}" x2="{tx}" y2="{height - BOTTOM}"'
                   '/>')
        svg.append(f'<text class="axis" x="{tx}" y="{TOP - 12}" text-anchor="middle">'
                   f'{_e(tick_label(tick, step))}</text>')
    svg.append(f'<text class="axis" x="8" y="{TOP - 12}">seconds since '
               f'{_e(_clock(data.origin_at))}</text>')
    for marker in data.markers:
        if marker.kind == "pause":
            end = marker.end if marker.end is not None else data.duration
            svg.append(f'<rect class="pause" x="{x(marker.at)}" y="{TOP}" '
                       f'width="{max(2.0, round((end - marker.at) * scale, 2))}" '
                       f'height="{rows}"><title>{_e(marker.label)}</title></rect>')
    y = TOP
    for task in data.tasks:
        svg.append(f'<line class="taskline" x1="0" y1="{y + 2}" x2="{width}" y2="{y + 2}"/>')
        svg.append(f'<text class="task" x="4" y="{y + 19}">Task {_e(task.ref)} '
                   f'{_e(shorten(task.description, 90))}<title>{_e(task.status)}</title></text>')
        y += TASK_H
        for bar in task.bars:
            svg.append(_svg_bar(bar, y, x, scale, width))
            y += ROW_H
    if data.markers:
        mid = y + ROW_H // 2
        svg.append(f'<text class="task" x="4" y="{mid + 4}">run</text>')
        for marker in data.markers:
            svg.append(_svg_marker(marker, x(marker.at), mid, "run-mark"))
    svg.append("</svg>")
    return _page(data, "\n".join(svg))


def _svg_bar(bar: Bar, y: int, x: Callable[[float], float], scale: float,
             width: int) -> str:
    out: list[str] = [f'<g class="step{" crit" if bar.on_critical_path else ""}">']
    mid = y + ROW_H // 2
    if bar.on_critical_path:
        out.append(f'<rect class="crit-row" x="0" y="{y}" width="{width}" height="{ROW_H}">'
                   '<title>on the critical path</title></rect>')
    label = ("» " if bar.on_critical_path else "") + shorten(f"{bar.ref} {bar.description}", 34)
    out.append(f'<text class="label" x="8" y="{mid + 4}">{_e(label)}'
               f'<title>{_e(_bar_title(bar))}</title></text>')
    if bar.start is not None:
        end = bar.end if bar.end is not None else bar.start
        out.append(f'<line class="span" x1="{x(bar.start)}" y1="{mid}" x2="{x(end)}" y2="{mid}">'
                   f'<title>{_e(_bar_title(bar))}</title></line>')
    for marker in bar.markers:
        if marker.kind == "gate" and marker.end is not None:
            out.append(f'<line class="gate-wait" x1="{x(marker.at)}" y1="{mid}" '
                       f'x2="{x(marker.end)}" y2="{mid}"/>')
    for s in bar.segments:
        end = s.end if s.end is not None else s.start
        kind = "backup" if s.backup else "primary"
        state = "running" if s.outcome == "running" else "failed" if s.failed else "ok"
        w = max(2.0, round((end - s.start) * scale, 2))
        out.append(f'<rect class="attempt {kind} {state}" x="{x(s.start)}" y="{mid - BAR_H // 2}"'
                   f' width="{w}" height="{BAR_H}" rx="2"><title>{_e(_segment_title(bar, s))}'
                   '</title></rect>')
        if s.failed:
            out.append(f'<text class="fail-mark" x="{round(x(s.start) + w + 1, 2)}" '
                       f'y="{mid - BAR_H // 2 - 1}">✗</text>')
    for marker in bar.markers:
        out.append(_svg_marker(marker, x(marker.at), mid, ""))
    info = shorten(bar_info(bar), 20)
    failed = " failed" if bar.status == "failed" else ""
    out.append(f'<text class="info{failed}" x="{LABEL_W + CHART_W + 10}" y="{mid + 4}">'
               f'{_e(info)}</text>')
    out.append("</g>")
    return "".join(out)


def _svg_marker(marker: Marker, mx: float, mid: int, extra: str) -> str:
    title = f"<title>{_e(_clock(marker.ts) + ' ' + marker.label)}</title>"
    if marker.kind == "skipped":
        return f'<circle class="skip" cx="{mx}" cy="{mid}" r="5">{title}</circle>'
    if marker.kind == "gate":
        return (f'<path class="gate {extra}" d="M{mx} {mid - 6} L{mx + 6} {mid} L{mx} {mid + 6} '
                f'L{mx - 6} {mid} Z">{title}</path>')
    if marker.kind in ("backup", "retry", "reopened", "escalation"):
        return (f'<path class="backup-mark" d="M{mx} {mid + 6} L{mx + 4} {mid + 11} '
                f'L{mx - 4} {mid + 11} Z">{title}</path>')
    if marker.kind == "pause":
        return (f'<path class="run-mark" d="M{mx - 3} {mid - 6} h2 v12 h-2 Z M{mx + 1} {mid - 6} '
                f'h2 v12 h-2 Z">{title}</path>')
    return f'<circle class="{extra or "run-mark"}" cx="{mx}" cy="{mid}" r="4">{title}</circle>'


def _swatch(css: str, shape: str = "rect") -> str:
    body = (f'<rect class="{css}" x="1" y="1" width="24" height="10" rx="2"/>' if shape == "rect"
            else shape)
    return f'<svg width="26" height="12" viewBox="0 0 26 12">{body}</svg>'


def _page(data: TimelineData, chart: str) -> str:
    title = f"Timeline of {data.run_id or 'a run'}" + (f" ({data.descriptor})"
                                                      if data.descriptor else "")
    status = f"{data.status}" + (f", goal {data.goal}" if data.goal else "")
    s = data.summary
    rows = [
        ("execution", "parallel" if s.get("enabled") else "sequential"),
        ("limit / measured concurrency",
         f"{s.get('max_parallel')} / {s.get('max_concurrent_steps')} steps at once"),
        ("makespan", seconds(s.get("makespan_s"))),
        ("sum of step times", seconds(s.get("sum_of_step_durations_s"))),
        ("time saved by parallelism", seconds(s.get("time_saved_s"))),
        ("synchronisation points", str(s.get("synchronisation_points", 0))),
        ("critical path (measured)", " → ".join(data.critical_path) or "-"),
        ("critical path (plan)", " → ".join(data.planned_critical_path) or "-"),
    ]
    table = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    legend = "".join(f"<span>{_swatch(css, shape)}{_e(text)}</span>" for css, shape, text in (
        ("primary ok", "rect", "primary attempt"),
        ("backup ok", "rect", "backup attempt"),
        ("primary failed", "rect", "failed attempt (✗)"),
        ("running", "rect", "running"),
        ("", '<line class="span" x1="1" y1="6" x2="25" y2="6"/>', "step span (waiting)"),
        ("", '<circle class="skip" cx="13" cy="6" r="4.5"/>', "skipped"),
        ("", '<path class="gate" d="M13 0 L19 6 L13 12 L7 6 Z"/>', "gate"),
        ("", '<path class="backup-mark" d="M13 3 L17 10 L9 10 Z"/>',
         "backup takes over / retry"),
        ("crit-row", "rect", "critical path (»)"),
        ("pause", "rect", "run paused"),
    ))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<svg width="0" height="0" style="position: absolute" aria-hidden="true">{DEFS}</svg>
<h1>{_e(title)}</h1>
<p class="meta">{_e(status)}; opened {_e(data.started_at or "?")}, ended \
{_e(data.ended_at or "(not yet)")}</p>
<p class="meta">{"<br>".join(_e(f) for f in run_facts(data))}</p>
<table class="summary">{table}</table>
<div class="legend">{legend}</div>
{chart}
</body>
</html>
"""
