"""Every bucket field the percentile panels read, declared in each InfluxDB shard.

The panels' InfluxQL sums each bucket field by name (grafana/percentile_sql.py), and
InfluxDB answers null, not 0, for a field its shard has never seen, even with ``fill(0)``:
one missing bound would blank a whole bin. So each retention policy gets, in the shard of
today and of tomorrow (shards are whole UTC days here), one point without tags whose
bucket fields are all 0. It adds nothing to any sum, and no service shows it.
"""

from __future__ import annotations

import logging
import math
import time

from ..analyze import bucket_fields, schema
from ..model import Point
from ..store import rollups
from ..store.influx import InfluxError
from ..store.storage import Storage

log = logging.getLogger("promflux.bridge")
DAY_MS = 86_400_000


def layout_points(now_s: float) -> list[Point]:
    """The zero points of today's and tomorrow's shard (UTC midnights), for request and job
    durations. Pure."""
    latency = {bucket_fields.field_name(b): 0.0 for b in (
        *schema.PANEL_BOUNDS, *schema.OTHER_EXPORTER_BOUNDS, math.inf)}
    jobs = {bucket_fields.field_name(b): 0.0 for b in (*schema.JOB_PANEL_BOUNDS, math.inf)}
    today = int(now_s * 1000) // DAY_MS * DAY_MS
    return [(measurement, {}, fields, day) for day in (today, today + DAY_MS)
            for measurement, fields in ((schema.LATENCY_BUCKETS, latency),
                                        (schema.JOB_BUCKETS, jobs))]


async def declare_bucket_fields(storage: Storage, now_s: float | None = None) -> None:
    """Write ``layout_points`` into each retention policy (idempotent: same points)."""
    points = layout_points(time.time() if now_s is None else now_s)
    for rp in (rollups.RAW, rollups.HOURLY, rollups.DAILY):
        try:
            await storage.write(points, rp)
        except InfluxError as exc:
            log.warning("declaring the bucket fields in %s failed: %s", rp, exc)
