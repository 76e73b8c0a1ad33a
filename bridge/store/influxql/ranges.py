"""The summed bucket increases of one endpoint (or a whole service) over a time range."""

from __future__ import annotations

from ...analyze import schema
from ..rollups import RAW
from .buckets import literal, select


def range_buckets(service: str, endpoint: str | None, method: str | None, start: float,
                  end: float) -> str:
    """Over [start, end) in epoch seconds, from the raw bucket rows."""
    where = [f'"service" = {literal(service)}']
    if endpoint:
        where.append(f'"endpoint" = {literal(endpoint)}')
    if method:
        where.append(f'"method" = {literal(method)}')
    return select(f'"{RAW}"."{schema.LATENCY_BUCKETS}"',
                  f'{" AND ".join(where)} AND time >= {int(start * 1e9)} '
                  f'AND time < {int(end * 1e9)}')


def state_changes(service: str, endpoint: str, start: float, end: float,
                  limit: int = 200) -> str:
    """The threshold state changes of one endpoint key ("GET /x", or "_all") over
    [start, end), newest first. epoch=ms."""
    return (f'SELECT "previous", "level", "value" FROM "{RAW}"."{schema.STATES}" '
            f'WHERE "service" = {literal(service)} AND "endpoint" = {literal(endpoint)} '
            f"AND time >= {int(start * 1e9)} AND time < {int(end * 1e9)} "
            f'GROUP BY "metric" ORDER BY time DESC LIMIT {int(limit)}')
