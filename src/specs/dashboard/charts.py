"""Small SVG charts drawn on the server (no chart library, no script): a bar chart of labelled
stacked parts and a chart of one value per run over time. Every label is escaped here, so a
chart can be written into a page as it is."""

from __future__ import annotations

from html import escape

__all__ = ["PALETTE", "series_chart", "stacked_bars"]

PALETTE = ("#2f6fd6", "#1f8a4c", "#b7791f", "#8e44ad", "#c8323a", "#16a2b8", "#6c757d")


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def stacked_bars(rows: list[tuple[str, list[tuple[str, float]]]], *, unit: str = "",
                 width: int = 760) -> str:
    """One horizontal bar per row, made of its parts ((name, value)); a legend of the part
    names (the same name has the same colour in every row)."""
    names: list[str] = []
    for _label, parts in rows:
        for name, _value in parts:
            if name not in names:
                names.append(name)
    top: float = max((sum(v for _n, v in parts) for _l, parts in rows), default=0.0) or 1.0
    left, bar, gap = 150, 18, 6
    height = 30 + len(rows) * (bar + gap) + 24
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img">']
    for i, name in enumerate(names):
        x = left + i * 130
        out.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{_color(i)}"/>'
                   f'<text x="{x + 14}" y="13">{escape(name)}</text>')
    for row, (label, parts) in enumerate(rows):
        y = 26 + row * (bar + gap)
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">'
                   f'{escape(label[:24])}</text>')
        at = float(left)
        for name, value in parts:
            w = (width - left - 60) * value / top
            out.append(f'<rect x="{at:.1f}" y="{y}" width="{max(w, 0):.1f}" height="{bar}" '
                       f'fill="{_color(names.index(name))}"><title>{escape(label)} '
                       f'{escape(name)}: {value:g}{escape(unit)}</title></rect>')
            at += w
        total = sum(v for _n, v in parts)
        out.append(f'<text x="{at + 4:.1f}" y="{y + 13}">{total:g}{escape(unit)}</text>')
    out.append("</svg>")
    return "".join(out)


def series_chart(points: list[tuple[str, float | None]], *, unit: str = "",
                 width: int = 760, height: int = 180) -> str:
    """One bar per run (oldest left), its label (a run id or a time) in the bar's title."""
    values = [v for _l, v in points if v is not None]
    top = max(values, default=0) or 1
    left, bottom = 56, 22
    inner_w, inner_h = width - left - 10, height - bottom - 12
    step = inner_w / max(len(points), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img">',
           f'<line x1="{left}" y1="{12 + inner_h}" x2="{width - 10}" y2="{12 + inner_h}" '
           'stroke="#c9ced8"/>',
           f'<text x="{left - 6}" y="18" text-anchor="end">{top:g}{escape(unit)}</text>',
           f'<text x="{left - 6}" y="{12 + inner_h}" text-anchor="end">0</text>']
    for i, (label, value) in enumerate(points):
        if value is None:
            continue
        h = inner_h * value / top
        out.append(f'<rect x="{left + i * step + 1:.1f}" y="{12 + inner_h - h:.1f}" '
                   f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" fill="{_color(0)}">'
                   f'<title>{escape(label)}: {value:g}{escape(unit)}</title></rect>')
    if points:
        out.append(f'<text x="{left}" y="{height - 6}">{escape(points[0][0][:19])}</text>')
        out.append(f'<text x="{width - 10}" y="{height - 6}" text-anchor="end">'
                   f'{escape(points[-1][0][:19])}</text>')
    out.append("</svg>")
    return "".join(out)
