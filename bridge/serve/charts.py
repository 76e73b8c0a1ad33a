"""Line charts for the status page: inline SVG with axes, units, a labelled limit line and
each point's time and value on hover. Pure, no I/O, no script."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from html import escape

LINE = "#0969da"
LIMIT = "#c62828"
GRID = "#d0d7de"
TEXT = "#57606a"
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 22  # margins for the axes' labels


def nice_top(value: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of
    ten) at or above ``value``: the chart's top, whose half is round too."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


def _tick(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:,.2g}"
    return f"{text}{unit}"


def _clock(ms: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000)) + " UTC"


def line_chart(points: Sequence[tuple[int, float]], *, title: str, unit: str,
               start_ms: int, end_ms: int, limit: float | None = None,
               width: int = 380, height: int = 150, digits: int = 1) -> str:
    """``points`` (time ms, value) over [start_ms, end_ms]: y from 0 to a round top (three
    labelled grid lines), x labelled in minutes before ``end_ms``, a dashed line at
    ``limit`` with its value, and a dot per point whose tooltip gives its time and value."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    top = nice_top(max([v for _, v in points] + [limit or 0.0]) * 1.05)
    span = max(end_ms - start_ms, 1)

    def x(t: float) -> float:
        return LEFT + (t - start_ms) / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - min(v, top) / top * plot_h

    parts = [f'<svg class="chart" width="{width}" height="{height}" role="img" '
             f'viewBox="0 0 {width} {height}" data-top="{top:g}">'
             f"<title>{escape(title)}</title>"]
    for fraction in (0.0, 0.5, 1.0):  # grid and y labels
        value = top * fraction
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="{GRID}"/>'
                     f'<text class="y-label" x="{LEFT - 4}" y="{y(value) + 4:.1f}" '
                     f'text-anchor="end" fill="{TEXT}" font-size="11">'
                     f"{escape(_tick(value, unit))}</text>")
    minutes = span / 60_000
    for fraction in (0.0, 0.5, 1.0):  # x labels: minutes before the end
        ago = minutes * (1 - fraction)
        label = "now" if ago == 0 else f"−{ago:.0f} min"
        anchor = ("start", "middle", "end")[int(fraction * 2)]
        parts.append(f'<text class="x-label" x="{LEFT + fraction * plot_w:.1f}" '
                     f'y="{height - 6}" text-anchor="{anchor}" fill="{TEXT}" '
                     f'font-size="11">{label}</text>')
    if limit is not None:
        parts.append(f'<line class="limit" x1="{LEFT}" x2="{width - RIGHT}" '
                     f'y1="{y(limit):.1f}" y2="{y(limit):.1f}" stroke="{LIMIT}" '
                     f'stroke-dasharray="5 3"><title>limit {limit:g}{escape(unit)}</title>'
                     f'</line><text x="{width - RIGHT - 2}" y="{y(limit) - 3:.1f}" '
                     f'text-anchor="end" fill="{LIMIT}" font-size="11">'
                     f"limit {limit:g}{escape(unit)}</text>")
    if not points:
        parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
                     f'text-anchor="middle" fill="{TEXT}" font-size="12">no data</text>')
    else:
        line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        parts.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="1.5" '
                     f'points="{line}"/>')
        parts += [f'<circle class="point" cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.2" '
                  f'fill="{LINE}"><title>{_clock(t)}: {v:,.{digits}f}{escape(unit)}'
                  f"</title></circle>" for t, v in points]
    parts.append("</svg>")
    return "".join(parts)
