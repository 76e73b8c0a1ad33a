"""Who of an HA pair stores a slot (``store/handover.py``, pure): the verdicts one by one,
then a whole pair simulated slot by slot over random stalls of either replica, checked
against the counter's true increase: every slot stored once, by one replica, in full."""

from __future__ import annotations

import random

import pytest
from promflux.bridge.store.handover import Handover, StoredSlots, verdict

KEY = ("svc", "http://t/metrics")


@pytest.mark.parametrize(("since", "stamp", "primary", "known", "expired", "expected"), [
    (4, 5, (0, 5), True, False, "drop"),  # the primary stored it
    (4, 5, (0, 4), True, False, "wait"),  # not yet
    (4, 5, (0, 4), True, True, "write"),  # not in time
    (4, 5, (5, 9), True, False, "write"),  # the primary counts from this slot on
    (4, 5, (7, 9), True, False, "write"),  # ... or a later one
    (2, 5, (3, 9), True, False, "wait"),  # part of this interval is the primary's
    (4, 5, None, True, False, "write"),  # the primary does not scrape this target
    (4, 5, (None, None), True, False, "wait"),  # it has just started
    (4, 5, (0, 9), False, False, "wait"),  # no answer this time
    (4, 5, (0, 9), False, True, "write"),  # the primary is down
    (5, 5, (0, 5), True, False, "drop"),  # a baseline or a failed scrape: the primary's
    (5, 5, (7, 9), True, False, "drop"),  # health point of this slot serves
    (5, 5, (None, None), True, False, "wait"),
])
def test_verdicts(since, stamp, primary, known, expired, expected):
    assert verdict(since, stamp, primary, known, expired) == expected


def point(slot: int, value: int) -> tuple:
    return ("m", {"service": "svc"}, {"requests": float(value)}, slot)


class Replica:
    """One replica's rate state for the target, with the loop's rule for a gap: ask the
    twin, and when it stored the gap, count from here (and leave the next interval too)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.since: int | None = None  # covered_since
        self.until: int | None = None
        self.resync = False

    def scrape(self, slot: int, truth: list[int], twin_covers) -> int | None:
        """The increase stored for ``slot`` (None: a baseline, nothing counted)."""
        last, self.last = self.last, slot
        self.until = slot
        if last is None:
            self.since = slot
            return None
        resync, self.resync = self.resync, False
        if slot - last > 1 or resync:
            stored = twin_covers(last, slot - 1)
            self.resync = stored and not resync
            if stored:
                self.since = slot
                return None
        return truth[slot] - truth[last]


def simulate(rng: random.Random, slots: int) -> tuple[dict[int, float], int, int]:
    """Returns what InfluxDB holds (slot -> requests) and the true total after the first
    slot both replicas scraped, and the slots the standby wrote."""
    truth = [0]
    for _ in range(slots):
        truth.append(truth[-1] + rng.randrange(0, 20))
    stalls = {0: set(), 1: set()}  # slots each replica misses
    for who in (0, 1):
        for _ in range(rng.randrange(0, 3)):
            start = rng.randrange(3, slots - 5)
            stalls[who].update(range(start, start + rng.randrange(1, 8)))
    # Stalls of both at once, or less than two slots apart: the documented limit.
    stalls[0] -= {s + d for s in stalls[1] for d in range(-3, 4)}
    primary, standby = Replica(), Replica()
    handover, stored_slots = Handover(deadline_s=4), StoredSlots()
    db: dict[int, float] = {}
    written = 0
    settled = 0  # the primary's writes land up to a slot late

    def store(points: list) -> None:
        nonlocal written
        for _, _, fields, slot in points:
            db[slot] = fields["requests"]
            written += 1

    def primary_coverage() -> dict:
        return {KEY: (primary.since, stored_slots.until(KEY, settled))}

    def covers(coverage: tuple) -> object:
        def ask(since: int, until: int) -> bool:
            first, last = coverage
            return first is not None and last is not None and first <= since and last >= until
        return ask

    for slot in range(1, slots + 1):
        if slot not in stalls[0]:
            increase = primary.scrape(slot, truth, covers((standby.since, standby.until)))
            if increase is not None:
                db[slot] = increase
            stored_slots.queued(KEY, slot, slot)
        if slot not in stalls[1]:
            increase = standby.scrape(slot, truth, covers(primary_coverage()[KEY]))
            counted = [] if increase is None else [point(slot, increase)]
            store(handover.hold(KEY, slot, True, counted, slot))
            down = slot in stalls[0] and slot - 1 in stalls[0]
            store(handover.settle(None if slot in stalls[0] else primary_coverage(), slot,
                                  down))
        if slot not in stalls[0]:  # a write lands within a slot (the deadline is 4)
            settled = slot - rng.randrange(2)
    settled = slots
    store(handover.settle(primary_coverage(), slots + 100))
    return db, truth[slots] - truth[1], written


@pytest.mark.parametrize("seed", range(300))
def test_a_pair_stores_every_slot_once_through_stalls_of_either_replica(seed):
    rng = random.Random(seed)
    db, truth, _ = simulate(rng, 40)
    assert sum(db.values()) == truth, sorted(db.items())


def test_the_standby_writes_nothing_while_the_primary_stores_every_slot():
    handover, stored = Handover(deadline_s=4), StoredSlots()
    out = []
    for slot in range(1, 50):
        stored.queued(KEY, slot, slot)
        out += handover.hold(KEY, slot, True, [point(slot, 1)], slot)
        out += handover.settle({KEY: (1, stored.until(KEY, slot - 1))}, slot)
    assert out == [] and len(handover.held[KEY]) == 1  # the newest, not yet stored


def test_a_held_back_queue_is_bounded():
    handover = Handover(deadline_s=1e9, max_held=3)
    out = []
    for slot in range(1, 11):
        out += handover.hold(KEY, slot, True, [point(slot, 1)], slot)
    assert [p[3] for p in out] == list(range(1, 8)) and len(handover.held[KEY]) == 3
