"""Histogram buckets as InfluxDB fields: one row per histogram and interval, one field per
bucket. Pure: the row's fields, the query that sums them, and reading the sums back.

A field ``le_<bound>`` holds the interval's requests in that bucket alone (not cumulative),
so sums over any time range and grouping stay exact, and a heatmap reads them as they are.
A row holds every bucket from the highest empty one below the first non-empty bucket (it
gives interpolation its lower bound) to the last non-empty one, zero buckets between them
included (the same reason). Summed rows keep that property, so ``histogram_quantile`` over
any sum equals the one over the exporter's own buckets. docs/schema.md shows the layout.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..native import compiled

PREFIX = "le_"
NAMES: dict[float, str] = {}
_NAMES_MAX = 10_000  # distinct bounds cached; a hostile exporter cannot grow it further


def field_name(le: float) -> str:
    """The field of the bucket whose upper bound is ``le``: ``le_0.25``, ``le_+Inf``."""
    name = NAMES.get(le)
    if name is None:
        name = PREFIX + ("+Inf" if le == math.inf else repr(le))
        if len(NAMES) < _NAMES_MAX:
            NAMES[le] = name
    return name


class NotCumulative(ValueError):
    """Bucket counts that fall as the bound rises: not a Prometheus histogram."""


# A fall no larger than this share of the count is float rounding (Prometheus allows
# 1e-12 when it computes a quantile; sums of increases round a little more).
TOLERANCE = 1e-9


def fields(buckets: Mapping[float, float],
           into: dict[float, float] | None = None) -> dict[str, float]:
    """Cumulative (bound -> count increase) -> the row's fields (empty if no requests).
    ``into``, if given, has the buckets added to it on the way (a service's sum).

    Raises NotCumulative, leaving ``into`` as it was, when a bucket holds fewer than the
    one below it by more than rounding: its own count would be negative.
    """
    if compiled is not None:  # (None from it: not cumulative, said below, or not floats)
        row: dict[str, float] | None = compiled.bucket_fields(buckets, into, TOLERANCE,
                                                              NAMES, field_name)
        if row is not None:
            return row
    out: dict[str, float] = {}
    pending: list[float] = []  # zero buckets after a non-empty one: kept if one follows
    previous: float | None = None
    below = 0.0
    ordered = sorted(buckets.items())
    for le, count in ordered:
        own = count - below
        if own < 0.0:
            if -own > TOLERANCE * below:
                raise NotCumulative(
                    f"bucket le={le!r} holds {count!r}, fewer than {below!r} below it")
            own = 0.0  # rounding: as Prometheus does, the count is raised to the one below
        else:
            below = count
        if own == 0.0:
            if out:
                pending.append(le)
            else:
                previous = le
            continue
        if not out and previous is not None:
            out[field_name(previous)] = 0.0
        for bound in pending:
            out[field_name(bound)] = 0.0
        pending.clear()
        out[field_name(le)] = own
    if into is not None:
        for le, count in ordered:
            into[le] = into.get(le, 0.0) + count
    return out


def is_cumulative(buckets: Mapping[float, float]) -> bool:
    """Whether (bound -> count) never falls as the bound rises, but for rounding."""
    try:
        fields(buckets)
    except NotCumulative:
        return False
    return True


def add_own(row: Mapping[str, Any], into: dict[float, float]) -> dict[float, float]:
    """Add a row's bucket fields into (bound -> requests in that bucket). Takes the stored
    names and InfluxQL's ``sum_le_<bound>``; other columns and nulls are skipped."""
    for name, value in row.items():
        at = name.find(PREFIX)
        if at < 0 or value is None:
            continue
        try:
            le = float(name[at + len(PREFIX):])
            count = float(value)
        except (TypeError, ValueError):
            continue
        if le == le:  # (NaN is no bound)
            into[le] = into.get(le, 0.0) + count
    return into


def cumulate(own: Mapping[float, float]) -> dict[float, float]:
    """(bound -> requests in that bucket) -> cumulative (bound -> count), with ``+Inf``
    (the total) always present: the input of ``histogram_quantile``."""
    out: dict[float, float] = {}
    total = 0.0
    for le in sorted(own):
        total += own[le]
        out[le] = total
    out[math.inf] = total
    return out


def cumulative(rows: Iterable[Mapping[str, Any]]) -> dict[float, float]:
    """Rows of bucket fields, summed -> cumulative buckets."""
    own: dict[float, float] = {}
    for row in rows:
        add_own(row, own)
    return cumulate(own)
