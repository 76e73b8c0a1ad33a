"""Statements over bucket rows (``analyze.bucket_fields`` names their fields)."""

from __future__ import annotations

from ...analyze.bucket_fields import PREFIX
from ..lineprotocol import stored


def literal(value: str) -> str:
    """An InfluxQL string literal for a tag value as stored."""
    return "'" + stored(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(source: str, where: str, group: str = "") -> str:
    """The statement summing the bucket fields of ``source`` (a quoted measurement,
    optionally with its retention policy); the answer's columns are ``sum_le_<bound>``.
    Rows without a service are left out: the zero point that declares the fields in each
    shard (jobs/layout.py) is no service's."""
    return (f"SELECT sum(/^{PREFIX}/) FROM {source} WHERE ({where}) AND \"service\" != ''"
            + (f" GROUP BY {group}" if group else ""))
