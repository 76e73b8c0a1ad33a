"""A target's counter state as plain data, so a restarted bridge counts on from where
the last one stopped (``store.counters`` keeps it on disk). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..analyze.derive import TargetDeriver
from ..model import Series
from .exposition import series_of

VERSION = 1


def export_state(deriver: TargetDeriver) -> dict[str, Any] | None:
    """Each counter's last value by its exposition text, the target's start time and when
    they were seen (None before the first scrape)."""
    if deriver.last_wall is None:
        return None
    texts = {series: text for text, series in deriver.cache.texts().items()}
    values = [[texts[s], v] for s, v in deriver.tracker.last_values().items() if s in texts]
    return {"version": VERSION, "service": deriver.service, "wall": deriver.last_wall,
            "start_time": deriver.start_time, "values": values}


def import_state(deriver: TargetDeriver, state: Mapping[str, Any], wall_now: float,
                 monotonic_now: float) -> bool:
    """Take up ``export_state``'s output: the next scrape counts what each counter gained
    meanwhile. Refused (False) when it is not such a state, is another service's, or is
    older than the counter staleness bound (a long gap would land in one point)."""
    try:
        gap = wall_now - float(state["wall"])
        start = state.get("start_time")
        start_time = None if start is None else float(start)
        pairs = [(str(text), float(value)) for text, value in state["values"]]
    except (KeyError, TypeError, ValueError):
        return False
    if (state.get("version") != VERSION or state.get("service") != deriver.service
            or not 0 <= gap <= deriver.tracker.stale_after):
        return False
    known = deriver.cache.entries
    values: dict[Series, float] = {}
    for text, value in pairs:
        series = known.get(text)
        if series is None:
            try:
                series = known[text] = series_of(text)
            except ValueError:
                continue
        values[series] = value
    deriver.tracker.seed(values, monotonic_now - gap)
    deriver.start_time = start_time
    deriver.last_wall = wall_now - gap
    return True
