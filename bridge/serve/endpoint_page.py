"""One endpoint over a chosen range: its exact p50/p90/p95/p99 and requests (the numbers of
``/api/percentiles``), and its alert history. Server-rendered HTML. Pure, no I/O."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..analyze.thresholds import Threshold
from .status_page import COLOURS, endpoint_link, figure_level

RANGES = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def _when(ms: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + " UTC"


def render_endpoint(service: str, endpoint: str, method: str, range_: str,
                    figures: Mapping[str, float | None] | None,
                    changes: Sequence[Mapping[str, Any]], *, p95_rule: Threshold | None,
                    end: float, error: str = "") -> str:
    """The page. ``figures``: ``range_percentiles.answer`` (None when InfluxDB could not
    say, and ``error`` says why); ``changes``: the state changes of the range, newest
    first."""
    title = f"{method} {endpoint}" if method else endpoint
    ranges = " ".join(
        f'<a href="{escape(endpoint_link(service, endpoint, method, name))}"'
        + (' aria-current="page" class="current"' if name == range_ else "")
        + f">{name}</a>" for name in RANGES)
    parts = [f'<p><a href="/">← all services</a></p><h2>{escape(service)} · {escape(title)}'
             f'</h2><p class="ranges">Range: {ranges} · from {_when((end - RANGES[range_]) * 1000)}'
             f" to {_when(end * 1000)}</p>"]
    if error:
        parts.append(f'<p class="error" role="alert">InfluxDB: {escape(error)}</p>')
    if figures is not None:
        requests = figures.get("requests") or 0.0
        limits = {} if p95_rule is None else {"p95_ms": p95_rule}  # (the others: unjudged)
        cells = "".join(
            f'<td data-figure="{name}" data-level="'
            f'{figure_level(name, figures.get(name), limits)}"'
            f">{_ms(figures.get(name))}</td>"
            for name in ("p50_ms", "p90_ms", "p95_ms", "p99_ms"))
        parts.append(
            '<table id="percentiles"><caption>Exact over the range: from the summed bucket '
            "counts of every request in it (also at /api/percentiles)</caption><thead><tr>"
            "<th>Requests</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th></tr></thead>"
            f'<tbody><tr><td data-figure="requests">{requests:,.0f}</td>{cells}</tr>'
            "</tbody></table>")
    rows = "".join(
        f'<tr data-level="{escape(str(c.get("level")))}"><td>{_when(c["time"])}</td>'
        f'<td>{escape(str(c.get("metric") or ""))}</td>'
        f'<td>{escape(str(c.get("previous") or ""))} → <span style="color:'
        f'{COLOURS.get(str(c.get("level")), COLOURS["none"])}">{escape(str(c.get("level")))}'
        f"</span></td><td>{_number(c.get('value'))}</td></tr>" for c in changes)
    parts.append('<h2>Alert history</h2><table id="history"><thead><tr><th>When</th>'
                 "<th>Figure</th><th>Change</th><th>Value</th></tr></thead>"
                 f"<tbody>{rows or '<tr><td colspan=4>no state change in the range</td></tr>'}"
                 "</tbody></table>")
    return "".join(parts)


def _number(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) else "–"


def render_document(title: str, main: str, style: str) -> str:
    """A whole page around ``main`` (no refresh: the range is the reader's choice)."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
            f'{escape(title)}</title><meta name="viewport" content="width=device-width, '
            f'initial-scale=1"><style>{style}</style></head><body><h1>promflux bridge</h1>'
            f'<main id="main">{main}</main></body></html>')
