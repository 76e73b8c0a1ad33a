"""InfluxDB 1.x line protocol encoding. Pure, no I/O.

Escaping (../shared/REFERENCE.md, section 3): measurement names escape comma and space;
tag keys, tag values and field keys escape comma, ``=`` and space. A newline cannot be
escaped anywhere, so it is written as the two characters ``\\n`` (as influxdb-client does;
``\\r`` and tab likewise): it can never start a new point. InfluxDB 1.x cannot read back a
backslash that ends a name or value or stands before a character that needs escaping, in any
form, so such a backslash is written as U+FF3C (a fullwidth one). Empty tag values are
left out. Fields are always floats; NaN and infinities are left out, and a point with no
field left is not written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

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


def format_float(value: float) -> str:
    """A float field value; repr round-trips exactly."""
    return repr(float(value))


_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r"})


def encode_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, float | str],
    timestamp_ms: int,
) -> str | None:
    """One point as a line (no newline), or None when no valid field remains.

    String fields (only ``scrape_health.last_error``) escape quotes and backslashes;
    newlines in them are written as ``\\n`` like everywhere else.
    """
    parts = []
    for key, value in fields.items():
        if key in RESERVED_KEYS or value is None:
            continue
        if isinstance(value, str):
            parts.append(f'{escape_key(key)}="{value.translate(_STRING)}"')
            continue
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            continue
        parts.append(f"{escape_key(key)}={format_float(value)}")
    if not parts:
        return None
    tag_text = "".join(
        f",{escape_key(k)}={escape_key(v)}"
        for k, v in sorted(tags.items())
        if v != "" and k not in RESERVED_KEYS
    )
    return f"{escape_measurement(measurement)}{tag_text} {','.join(parts)} {int(timestamp_ms)}"


def encode_points(
    points: Iterable[tuple[str, Mapping[str, str], Mapping[str, float | str], int]],
) -> bytes:
    """A write body: one line per point that has a valid field."""
    lines = [line for p in points if (line := encode_point(*p)) is not None]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
