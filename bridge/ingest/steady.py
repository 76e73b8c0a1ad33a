"""Steady pages: parse and derive in one compiled pass.

Between two scrapes a target's page keeps its lines: the same series in the same order,
only the values change. For such a page the compiled core checks each line's series text
against the page before, reads its value, and adds its increase straight into the sums it
belongs to: no Python object per sample (``steady_scan`` in bridge/_native.c). Anything
else (a new or missing series, a line out of place, a counter that went down, NaN, a new
start time, a page cut short, OpenMetrics) makes the scan give up with nothing changed,
and the usual parse and derive take the page. Both ways give the same points
(tests/test_bridge_steady.py).
"""

from __future__ import annotations

from ..analyze.derive import Derived, TargetDeriver
from ..model import Scrape
from ..native import compiled
from .exposition import bad_type_line

MAX_BACKOFF = 64  # scrapes at most between two tries on a page that keeps changing


class SteadyPages:
    """One target's steady scans. After a page that changed, the next try waits a number
    of scrapes doubling up to ``MAX_BACKOFF``: a page that changes every time costs a
    wasted pass only now and then."""

    __slots__ = ("deriver", "packed", "types", "_misses", "_wait")

    def __init__(self, deriver: TargetDeriver) -> None:
        self.deriver = deriver
        self.packed = b""  # the series texts of the page laid out, packed by the parser
        self.types = b""  # its TYPE lines, each ending in a newline
        self._misses = 0
        self._wait = 0

    def derive(self, text: str, openmetrics: bool, max_samples: int | None, timestamp: float,
               monotonic: float, target: str) -> tuple[int, Derived] | None:
        """(samples, what ``derive_all`` would give) for a counted scrape of a steady page;
        None when the page must take the usual way."""
        layout = self.deriver.steady
        if (compiled is None or layout is None or openmetrics
                or (max_samples is not None and len(layout.kinds) > max_samples)):
            return None
        packed, types = self.packed, self.types

        def scan() -> tuple[list[tuple[object, float]], list[tuple[object, float]]] | None:
            return compiled.steady_scan(  # type: ignore[no-any-return]
                text, packed, layout.kinds, layout.last, layout.slots, layout.roles,
                layout.groups, types, bad_type_line, "buckets")

        derived = self.deriver.derive_steady(scan, timestamp, monotonic, target)
        if derived is None:
            self._misses = min(self._misses + 1, MAX_BACKOFF.bit_length())
            self._wait = min(2 ** self._misses - 1, MAX_BACKOFF)
            return None
        self._misses = 0
        return len(layout.kinds), derived

    def arm(self, scrape: Scrape, text: str) -> None:
        """After the usual parse and derive of ``scrape`` (from ``text``): lay its page
        out for the next."""
        if compiled is None:
            return
        if self._wait:
            self._wait -= 1
            return
        order = self.deriver.cache.order
        if not order or len(order[1]) != len(scrape.samples) or any(
                a is not b for a, (b, _) in zip(order[1], scrape.samples, strict=True)):
            return  # (a line the parser could not place: too long a text)
        if self.deriver.arm(scrape.samples):
            self.packed = order[0]
            self.types = "".join(line + "\n" for line in text.split("\n")
                                 if line.startswith("# TYPE ")).encode()
