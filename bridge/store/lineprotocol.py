"""InfluxDB 1.x line protocol encoding. Pure, no I/O.

Escaping (docs/schema.md, line protocol): measurement names escape comma and space;
tag keys, tag values and field keys escape comma, ``=`` and space. A newline cannot be
escaped anywhere, so it is written as the two characters ``\\n`` (as influxdb-client does;
``\\r`` and tab likewise): it can never start a new point. InfluxDB 1.x cannot read back a
backslash that ends a name or value or stands before a character that needs escaping, in any
form, so such a backslash is written as U+FF3C (a fullwidth one). Empty tag values are
left out. Fields are always floats; NaN and infinities are left out, and a point with no
field left is not written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})
_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"})

# Field and tag names InfluxDB refuses.
RESERVED_KEYS = frozenset({"time", "_field", "_measurement"})


# A backslash before a character that needs escaping, or at the end: InfluxDB 1.x cannot
# read it back in any form (doubling does not help), so it becomes U+FF3C.
_BAD_BACKSLASH_KEY = re.compile(r"\\(?=[,= \n\r\t]|$)")
_BAD_BACKSLASH_MEASUREMENT = re.compile(r"\\(?=[, \n\r\t]|$)")


def escape_measurement(name: str) -> str:
    """A measurement name for line protocol."""
    if "\\" in name:
        name = _BAD_BACKSLASH_MEASUREMENT.sub("\uff3c", name)
    return name.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    """A tag key, tag value or field key for line protocol."""
    if "\\" in text:
        text = _BAD_BACKSLASH_KEY.sub("\uff3c", text)
    return text.translate(_KEY)


_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r"})

Point = tuple[str, Mapping[str, str], Mapping[str, float | str], int]


def encode_points(points: Iterable[Point]) -> bytes:
    """A write body: one line per point that has a valid field (a fresh ``LineEncoder``)."""
    return LineEncoder().encode(points)


class LineEncoder:
    """The line-protocol encoder. Keep one per writer: the escaped ``measurement,tags`` head
    and escaped field keys are cached, since the same series come back every scrape.

    String fields (only ``scrape_health.last_error``) escape quotes and backslashes;
    newlines in them are written as ``\\n`` like everywhere else."""

    __slots__ = ("_heads", "_keys", "max_entries")

    def __init__(self, max_entries: int = 200_000) -> None:
        self._heads: dict[tuple[Any, ...], str] = {}
        self._keys: dict[str, str] = {}
        self.max_entries = max_entries

    def _head(self, measurement: str, tags: Mapping[str, str]) -> str:
        key = (measurement, *tags.items())
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= self.max_entries:
                self._heads.clear()
            head = self._heads[key] = escape_measurement(measurement) + "".join(
                f",{escape_key(k)}={escape_key(v)}"
                for k, v in sorted(tags.items()) if v != "" and k not in RESERVED_KEYS)
        return head

    def _field(self, key: str) -> str:
        escaped = self._keys.get(key)
        if escaped is None:
            if len(self._keys) >= self.max_entries:
                self._keys.clear()
            escaped = self._keys[key] = "" if key in RESERVED_KEYS else escape_key(key) + "="
        return escaped

    def encode(self, points: Iterable[Point]) -> bytes:
        """A write body: one line per point that has a valid field."""
        lines: list[str] = []
        append = lines.append
        known_keys = self._keys
        field_key = self._field
        head_of = self._head
        last_ts, ts_text = None, ""
        for measurement, tags, fields, timestamp_ms in points:
            parts = []
            for key, value in fields.items():
                escaped = known_keys.get(key)
                if escaped is None:
                    escaped = field_key(key)
                if not escaped or value is None:
                    continue
                if value.__class__ is float:
                    if value - value != 0.0:  # NaN or an infinity (x - x is 0 otherwise)
                        continue
                    parts.append(escaped + repr(value))
                elif isinstance(value, str):
                    parts.append(f'{escaped}"{value.translate(_STRING)}"')
                else:
                    number = float(value)
                    if number - number != 0.0:
                        continue
                    parts.append(escaped + repr(number))
            if parts:
                if timestamp_ms != last_ts:  # one scrape's points share their timestamp
                    last_ts, ts_text = timestamp_ms, str(int(timestamp_ms))
                append(f"{head_of(measurement, tags)} {','.join(parts)} {ts_text}")
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


