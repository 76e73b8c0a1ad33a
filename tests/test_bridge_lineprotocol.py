"""Line-protocol encoding checked against influxdb-client's serializer."""

from __future__ import annotations

import math
import re

from hypothesis import assume, given
from hypothesis import strategies as st
from influxdb_client import Point
from promflux.bridge.store.lineprotocol import encode_points, escape_key


def encode_point(measurement, tags, fields, ts):
    """One point's line without the newline, or None when it writes nothing."""
    return encode_points([(measurement, tags, fields, ts)]).decode().rstrip("\n") or None


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
names = text.filter(lambda s: s not in {"time", "_field", "_measurement"} and not s.startswith("#"))


@given(names, st.dictionaries(names, text, max_size=4),
       st.dictionaries(names, st.floats(allow_nan=False, allow_infinity=False), min_size=1,
                       max_size=4),
       st.integers(0, 2**42))
def test_matches_influxdb_client(measurement, tags, fields, ts):
    # influxdb-client turns a final backslash into an escaped space (the value comes back
    # ending in " "); ours becomes U+FF3C (tested against InfluxDB itself).
    assume(not any(_bad_backslash(t) for t in [*tags.values(), *tags, *fields, measurement]))
    point = Point(measurement)
    for k, v in tags.items():
        point.tag(k, v)
    for k, v in fields.items():
        point.field(k, float(v))
    point.time(ts, "ms")
    expected = point.to_line_protocol()
    ours = encode_point(measurement, tags, fields, ts)
    assert ours is not None
    # influxdb-client prints whole floats without ".0" ("1" vs "1.0"); compare parsed.
    ours_head, ours_fields, ours_ts = _split(ours)
    exp_head, exp_fields, exp_ts = _split(expected)
    assert ours_head == exp_head and ours_ts == exp_ts
    assert {k: float(v) for k, v in ours_fields.items()} == {
        k: float(v) for k, v in exp_fields.items()}


def _bad_backslash(text: str) -> bool:
    return bool(re.search(r"\\(?=[,= \n\r\t]|$)", text))


def _split(line: str) -> tuple[str, dict[str, str], str]:
    # At unescaped spaces: head, fields, timestamp.
    head, field_text, ts = _split_unescaped(line, " ")
    fields = {}
    for item in _split_unescaped(field_text, ","):
        key, value = _split_unescaped(item, "=", 1)
        fields[key] = value
    return head, fields, ts


def _split_unescaped(text: str, sep: str, limit: int = -1) -> list[str]:
    out, current, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current += text[i:i + 2]
            i += 2
            continue
        if text[i] == sep and (limit < 0 or len(out) < limit):
            out.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    out.append(current)
    return out


@given(st.text(max_size=30))
def test_no_value_can_start_a_new_point(value):
    line = encode_point("m", {"t": value}, {"f": 1.0}, 1)
    if line is not None:
        assert "\n" not in line and "\r" not in line


def test_special_cases():
    assert encode_point("m", {"a": "", "b": "x"}, {"f": 1.0}, 5) == "m,b=x f=1.0 5"
    assert encode_point("m", {}, {"f": math.nan, "g": math.inf}, 5) is None
    assert encode_point("m", {}, {"f": math.nan, "g": 2.5}, 5) == "m g=2.5 5"
    assert encode_point("m", {}, {"time": 1.0}, 5) is None
    assert escape_key("ends\\") == "ends\uff3c"
    assert escape_key("two\\\\") == "two\\\uff3c"
    assert escape_key("a b,c=d") == r"a\ b\,c\=d"
    assert encode_point("m", {"t": "x\ny"}, {"f": 1.0}, 1) == r"m,t=x\ny f=1.0 1"
    assert encode_points([("m", {}, {"f": 1.0}, 1), ("m", {}, {"f": math.nan}, 2)]) == \
        b"m f=1.0 1\n"
    assert encode_points([]) == b""


NASTY = ["a\\ b", "a\\,b",
         "plain", "with space", "comma,here", "equals=sign", 'quote"d', "back\\slash",
         "ends\\", "ends\\\\", "ends\\\\\\", "new\nline", "tab\there", "ünïcödé ✓",
         "a=b,c d\\", "  lead", "#hash", "trail ", "\\", "=", ",", " "]


def _expected(value: str) -> str:
    """What InfluxDB gives back for a tag value we wrote (docs/schema.md)."""
    value = re.sub(r"\\(?=[,= \n\r\t]|$)", "\uff3c", value)
    return value.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def test_round_trip_through_influxdb(influxdb):
    influxdb.query('CREATE DATABASE "lp"')
    points = [("perf test", {"endpoint": v, "n": str(i)}, {"v": float(i)}, 1_000 + i)
              for i, v in enumerate(NASTY)]
    response = influxdb.write("lp", encode_points(points))
    assert response.status_code == 204, response.text
    series = influxdb.query('SELECT "v", "endpoint", "n" FROM "perf test"', db="lp")
    rows = series[0]["values"]
    assert len(rows) == len(NASTY)  # no value created an extra point
    back = {int(n): endpoint for _, _, endpoint, n in rows}
    assert back == {i: _expected(v) for i, v in enumerate(NASTY)}
    # Values without newlines, tabs or trailing backslashes come back exactly.
    for i, v in enumerate(NASTY):
        if not any(c in v for c in "\n\r\t") and not _bad_backslash(v):
            assert back[i] == v


point_strategy = st.tuples(
    st.sampled_from(["m", "perf test", "a,b"]),
    st.dictionaries(st.sampled_from(["service", "endpoint", "le", "time", "a b"]),
                    st.text(max_size=8), max_size=4),
    st.dictionaries(st.sampled_from(["count", "p95_ms", "time", "x=y", "last_error"]),
                    st.one_of(st.floats(), st.integers(-10, 10), st.text(max_size=5)),
                    max_size=4),
    st.integers(0, 2**41))


@given(st.lists(point_strategy, max_size=20))
def test_cached_encoder_gives_the_same_bytes(points):
    from promflux.bridge.store.lineprotocol import LineEncoder

    encoder = LineEncoder(max_entries=5)  # small, so the caches also get cleared
    assert encoder.encode(points) == encode_points(points)  # cached == fresh
    assert encoder.encode(points) == encode_points(points)
