"""Where one scrape's points go: straight to the writer, or, on the standby of an HA pair,
held until the primary's coverage decides them (``handover``)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ..model import Point
from .handover import Coverage, Handover, Key, StoredSlots
from .rollups import RAW
from .writer import Writer


class PairStore:
    def __init__(self, writer: Writer, role: str = "single", deadline_s: float = 30.0
                 ) -> None:
        self.writer = writer
        self.role = role  # "single", or in an HA pair "primary" or "standby"
        self.handover = Handover(deadline_s) if role == "standby" else None
        # Only a primary's twin asks which slots InfluxDB has taken.
        self.slots = StoredSlots() if role == "primary" else None

    def store(self, key: Key, stamp: float, up: bool, points: list[Point]) -> None:
        """One scrape's points, stamped with its slot."""
        if self.handover is not None:
            self._write(self.handover.hold(key, stamp, up, points, time.monotonic()))
            return
        number = self.writer.submit(points, RAW)
        if self.slots is not None and up and number is not None:  # (a failed scrape
            self.slots.queued(key, number, stamp)                 # stores no interval)

    def _write(self, points: list[Point]) -> None:
        if points:
            self.writer.submit(points, RAW)

    def coverage(self, key: Key, derived: Coverage) -> Coverage:
        """Since which slot, up to which, this replica has stored every interval of a
        target, or will: ``derived`` (what its scrapes counted) up to the last slot
        InfluxDB took; a standby's as derived, as it writes whatever the primary does not
        store (a single bridge has no twin to ask: as derived too)."""
        if self.slots is None:
            return derived
        return derived[0], self.slots.until(key, self.writer.settled)

    def settle(self, coverage: Mapping[Key, Coverage] | None, primary_down: bool) -> int:
        """A standby's held points decided by the primary's answer; returns how many
        were written."""
        if self.handover is None:
            return 0
        points = self.handover.settle(coverage, time.monotonic(), primary_down)
        self._write(points)
        return len(points)

    def forget(self, key: Key) -> None:
        if self.handover is not None:
            self.handover.forget(key)
        if self.slots is not None:
            self.slots.forget(key)
