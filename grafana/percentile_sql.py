"""The exact percentile of every request in a Grafana bin, in InfluxQL, from the bucket rows.

InfluxQL 1.x has no histogram quantile, and the rows hold each bucket's own requests
(``le_<bound>`` fields, docs/schema.md), so any bin's buckets are their sums. Prometheus's
``histogram_quantile`` over those sums (rank ``r = q * total``; the bucket where the
cumulative count first reaches ``r``; linear interpolation inside it) is written here as
arithmetic InfluxQL has:

    value = sum over finite buckets i of  width_i * clamp((r - below_i) / (own_i + EPSILON))

where ``below_i`` is the count under bucket i and ``clamp`` to [0, 1] is
``(abs(x) - abs(x - 1) + 1) / 2``. Buckets wholly under the rank add their whole width,
the bucket holding it the interpolated part, those above nothing; a rank in the +Inf bucket
gives the highest finite bound, as Prometheus does. ``EPSILON`` only keeps an empty bucket
from dividing by zero: counts are whole numbers, so it moves a value by at most a
millionth of its bucket's width.

Three nested statements: the bin's sums, their running totals, the percentiles. Pure
strings, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

EPSILON = 1e-6


def field(bound: float) -> str:
    """The stored field of a bucket (the bridge writes the bound's ``repr``)."""
    return "le_+Inf" if bound == math.inf else f"le_{float(bound)!r}"


def percentiles_query(bounds: Iterable[float], source: str, where: str, group: str,
                      quantiles: Mapping[str, float], others: Iterable[float] = ()) -> str:
    """One statement giving, per bin of ``$__interval`` and per tag in ``group`` (a quoted
    tag list, or ""), a column per ``quantiles`` item (alias -> q). Bins without requests
    have no row. ``bounds``: the finite bucket bounds to interpolate over; ``others``:
    bounds whose fields are counted in the bucket of the next bound up (+Inf above all).
    Every field named must exist in each shard read (InfluxDB gives null for a field a
    shard lacks, even with fill(0)): the bridge declares them (jobs/layout.py)."""
    finite = sorted({float(b) for b in bounds if math.isfinite(b) and b > 0})
    members: list[list[str]] = [[field(b)] for b in finite] + [[field(math.inf)]]
    for other in sorted({float(b) for b in others} - set(finite)):
        members[next((i for i, b in enumerate(finite) if b > other), len(finite))].append(
            field(other))
    inner = ", ".join(" + ".join(f'sum("{name}")' for name in names) + f' AS "b{i}"'
                      for i, names in enumerate(members))
    by = f", {group}" if group else ""
    sums = (f"SELECT {inner} FROM {source} WHERE {where} "
            f"GROUP BY time($__interval){by} fill(0)")
    running = ", ".join(
        f'{" + ".join(f"b{j}" for j in range(i + 1))} AS "c{i}"' for i in range(len(members)))
    running += ", " + ", ".join(f'b{i} AS "b{i}"' for i in range(len(finite)))
    totals = f"SELECT {running} FROM ({sums})"
    total = f"c{len(finite)}"
    columns = ", ".join(
        f'{_value(q, finite, total)} AS "{alias}"' for alias, q in quantiles.items())
    return (f"SELECT {columns} FROM ({totals}) WHERE {total} > 0"
            + (f" GROUP BY {group}" if group else ""))


def _number(value: float) -> str:
    """A float as InfluxQL reads it: no exponent (``1e-06`` is not a number there)."""
    text = repr(float(value))
    return text if "e" not in text else f"{value:.20f}".rstrip("0")


def _value(q: float, finite: list[float], total: str) -> str:
    """The expression of the ``q`` quantile in milliseconds over the running-total fields."""
    terms = []
    lower = 0.0
    for i, upper in enumerate(finite):
        below = f"c{i - 1}" if i else "0"
        x = f"({_number(q)} * {total} - {below}) / (b{i} + {_number(EPSILON)})"
        half_width_ms = (upper - lower) * 1000 / 2
        terms.append(f"{_number(half_width_ms)} * (abs({x}) - abs({x} - 1))")
        lower = upper
    return f"({_number(finite[-1] * 1000 / 2)} + " + " + ".join(terms) + ")"
