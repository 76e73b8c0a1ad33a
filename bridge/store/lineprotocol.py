"""InfluxDB 1.x line protocol encoding. Pure, no I/O.

Names and tag values must come back from InfluxDB exactly, and two different ones must
never become one. Line protocol escapes comma, ``=`` and space with a backslash, but
InfluxDB 1.x cannot read back a backslash before those characters or at the end of a
value, and a newline cannot be escaped at all. So, besides those escapes, a name or tag
value is percent-encoded in the few characters that line protocol cannot carry: ``%``
itself, the backslash, and the control characters (U+0000-U+001F, U+007F) become ``%XX``.
That is injective (``decode`` inverts it; tested through a real InfluxDB) and leaves
every usual label value as it is. Empty tag values are left out. Fields are floats (or
the one string field); NaN and infinities are left out, and a point with no field left is
not written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..model import Point
from ..native import compiled

_PERCENT = {c: f"%{ord(c):02X}" for c in ["%", "\\", *map(chr, range(0x20)), "\x7f"]}
_MEASUREMENT = str.maketrans({**_PERCENT, ",": r"\,", " ": r"\ "})
_KEY = str.maketrans({**_PERCENT, ",": r"\,", "=": r"\=", " ": r"\ "})
_DECODE = {v: k for k, v in _PERCENT.items()}

# Field and tag names InfluxDB refuses.
RESERVED_KEYS = frozenset({"time", "_field", "_measurement"})


def escape_measurement(name: str) -> str:
    """A measurement name for line protocol."""
    return name.translate(_MEASUREMENT)


def escape_key(text: str) -> str:
    """A tag key, tag value or field key for line protocol."""
    return text.translate(_KEY)


_STORED = str.maketrans(_PERCENT)


def stored(value: str) -> str:
    """A name or tag value as InfluxDB holds it (what a query must compare with)."""
    return value.translate(_STORED)


def decode(stored: str) -> str:
    """The original of a name or tag value as InfluxDB gives it back (``%XX`` undone)."""
    if "%" not in stored:
        return stored
    out, i = [], 0
    while i < len(stored):
        code = stored[i:i + 3]
        if code in _DECODE:
            out.append(_DECODE[code])
            i += 3
        else:
            out.append(stored[i])
            i += 1
    return "".join(out)


_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r"})


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
        # Names, then values: no (name, value) tuple per tag, and the strings are the
        # points' own (shared), so a cached series costs one small tuple.
        key = (measurement, *tags.keys(), *tags.values())
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
        if compiled is not None:  # (the same lines, one compiled loop: bytes out)
            body: bytes = compiled.encode_points(points, self._heads, self._keys, self._head,
                                                 self._field, self.line)
            return body
        lines = [line for line in map(self.line, points) if line]
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""

    def line(self, point: Point) -> str:
        """One point's line, without its newline ("" when it has no valid field)."""
        measurement, tags, fields, timestamp_ms = point
        parts = []
        known_keys = self._keys
        for key, value in fields.items():
            escaped = known_keys.get(key)
            if escaped is None:
                escaped = self._field(key)
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
        if not parts:
            return ""
        return f"{self._head(measurement, tags)} {','.join(parts)} {int(timestamp_ms)}"
