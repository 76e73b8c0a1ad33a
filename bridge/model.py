"""The bridge's core types, shared by ingest, analyze and store: a series with a canonical
identity, one parsed scrape, and one InfluxDB point. Pure data, no I/O."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .native import compiled

# One InfluxDB point: measurement, tags, fields, time in ms.
Point = tuple[str, Mapping[str, str], Mapping[str, float | str], int]

NO_LABELS: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Series:
    """A parsed series: metric name and labels (sorted (name, value) pairs).

    Compared and hashed by identity, which keeps per-sample dict work cheap;
    ``intern_series`` makes identity mean the label set: while a Series object is alive,
    every parse of the same name and labels, in any order and through any cache, returns
    that object. So state keyed by Series survives a pruned cache (a new object would
    count from zero). Build them with ``intern_series``, never directly.
    """

    name: str
    labels: tuple[tuple[str, str], ...]

    def label(self, name: str, default: str = "") -> str:
        """The value of label ``name``."""
        for key, value in self.labels:
            if key == name:
                return value
        return default


@dataclass
class Scrape:
    """One parsed exposition: family types, and samples as (Series, value) in order."""

    types: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[Series, float]] = field(default_factory=list)


class SeriesCache:
    """Series text -> Series for one target. After each successful parse it holds exactly
    the series of that scrape, so it never grows past one scrape's worth."""

    __slots__ = ("entries", "order")

    def __init__(self) -> None:
        self.entries: dict[str, Series] = {}
        # The compiled parser's: the last answer's series texts, packed (per text, two
        # 16-bit lengths, shared with the text before and following, then those bytes),
        # and its series in the same order. It keeps ``entries`` empty between answers.
        self.order: tuple[bytes, list[Series]] | tuple[()] = ()

    def texts(self) -> dict[str, Series]:
        """Every series text the cache holds, with its series."""
        out = dict(self.entries)
        if self.order:
            packed, series = self.order
            text, at = b"", 0
            for one in series:
                shared = packed[at] | packed[at + 1] << 8
                rest = packed[at + 2] | packed[at + 3] << 8
                text = text[:shared] + packed[at + 4:at + 4 + rest]
                at += 4 + rest
                out.setdefault(text.decode("utf-8", "surrogatepass"), one)
        return out

    def __len__(self) -> int:
        """Series texts held (the compiled parser keeps them in ``order`` instead)."""
        return len(self.entries) + (len(self.order[1]) if self.order else 0)


# (name, labels) -> its one live Series. Weak: an entry lives exactly as long as some
# state (a cache, a counter tracker, a role table) still holds the series.
_CANONICAL: weakref.WeakValueDictionary[tuple[str, tuple[tuple[str, str], ...]], Series] = (
    weakref.WeakValueDictionary())


def intern_series(name: str, labels: tuple[tuple[str, str], ...] = NO_LABELS) -> Series:
    """The one Series for ``name`` and ``labels`` (sorted pairs)."""
    key = (name, labels)
    found = _CANONICAL.get(key)
    if found is None:
        found = _CANONICAL[key] = Series(name, labels)
    return found


def live_series() -> list[Series]:
    """Every Series some state still holds. (``valuerefs`` copies in C, so this is safe
    while a thread parses a large answer and adds series.)"""
    return [s for s in (ref() for ref in _CANONICAL.valuerefs()) if s is not None]


if compiled is not None and not TYPE_CHECKING:
    # The compiled core's Series: the same interface and identity rules, but not tracked
    # by the cycle collector and interned without a weak reference each, so that a target
    # churning series gives the collector nothing to walk (docs/scaling.md). One kind of
    # Series per process: the choice is made here, once.
    Series = compiled.Series
    intern_series = compiled.intern_series
    live_series = compiled.live_series
