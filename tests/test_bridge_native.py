"""One truth, two implementations: the compiled core (bridge/_native.c) against the
pure-Python reference, on generated answers, hostile text and scrape sequences with resets,
reordered labels and churn. Both must give the same samples (the same Series objects), the
same points, counts and warnings, and the same errors, word for word."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import random
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_latest
from promflux.bridge import native
from promflux.bridge.analyze import derive, rates, schema
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.analyze.window import Counts
from promflux.bridge.ingest import exposition
from promflux.bridge.ingest.exposition import ExpositionError, SeriesCache, parse, series_of
from promflux.bridge.model import intern_series

from tests.test_bridge_exposition import registries

try:
    from promflux.bridge import _native
except ImportError:  # an install without a C compiler (the sdist test sets the variable)
    _native = None  # type: ignore[assignment]
# Only an install made on purpose without a compiler may lack the compiled core.
NO_COMPILER = os.environ.get("PROMFLUX_NO_COMPILER") == "1"
needs_core = pytest.mark.skipif(_native is None and NO_COMPILER,
                                reason="installed without a C compiler")
USERS = (exposition, rates, derive)  # the modules that pick a core at import


def test_the_compiled_core_is_built_wherever_a_compiler_was():
    assert (_native is None) == NO_COMPILER


@contextlib.contextmanager
def core(compiled: bool) -> Iterator[None]:
    saved = [module.compiled for module in USERS]
    for module in USERS:
        module.compiled = _native if compiled else None
    try:
        yield
    finally:
        for module, value in zip(USERS, saved, strict=True):
            module.compiled = value


def alike(module: ModuleType, run: Callable[[], object]) -> None:
    """``run()`` on ``module``'s pure core, then on the compiled one: the same outcome."""
    saved = module.compiled
    try:
        module.compiled = None
        pure = run()
        module.compiled = _native
        assert run() == pure
    finally:
        module.compiled = saved


def outcome(texts: list[str], openmetrics: bool, max_samples: int | None) -> list:
    """What parsing ``texts`` in turn through one cache gives: per text its types and
    samples (series objects and value texts), or its error."""
    cache = SeriesCache()
    seen: list = []
    number: dict[int, int] = {}  # each Series object by first appearance
    held: list = []  # (kept alive, as a deriver's counter state keeps them)
    for text in texts:
        try:
            scrape = parse(text, cache, openmetrics, max_samples)
        except ExpositionError as error:
            seen.append(("error", str(error), error.lineno))
        else:
            assert all(s is intern_series(s.name, s.labels) for s, _ in scrape.samples)
            held += [s for s, _ in scrape.samples]
            seen.append(("ok", scrape.types,
                         [(number.setdefault(id(series), len(number)), series.name,
                           series.labels, repr(value)) for series, value in scrape.samples]))
        # (each text the cache keeps is the one of its series)
        assert all(series is intern_series(series.name, series.labels)
                   and series_of(text) is series for text, series in cache.texts().items())
    return seen


def both(texts: list[str], openmetrics: bool = False, max_samples: int | None = None) -> list:
    with core(False):
        pure = outcome(texts, openmetrics, max_samples)
    with core(True):
        compiled = outcome(texts, openmetrics, max_samples)
    assert compiled == pure
    return pure


EDITS = ["cut", "insert", "crlf", "repeat", "timestamp", "indent", "tab", "exemplar",
         "reorder", "digits", "underscore", "drop", "comment", "nul"]
NOISE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6) | st.sampled_from(
    [" ", "\t", "}", "{", '"', "\\", "#", "\n", " # ", "=", ",", "١", "\r", "_", "e", "-"])


def edit(text: str, kind: str, at: int, noise: str) -> str:
    """``text`` with one ordinary fault of a real target in it."""
    lines = text.split("\n")
    i = at % max(len(lines) - 1, 1)
    line = lines[i]
    if kind == "cut":
        return text[:at % (len(text) + 1)]
    if kind == "insert":
        cut = at % (len(text) + 1)
        return text[:cut] + noise + text[cut:]
    if kind == "crlf":
        return text.replace("\n", "\r\n")
    if kind == "repeat":
        lines.insert(i, line)
    elif kind == "timestamp" and line and not line.startswith("#"):
        lines[i] = line + " 1700000000000"
    elif kind == "indent":
        lines[i] = "  " + line
    elif kind == "tab":
        lines[i] = line.replace(" ", "\t")
    elif kind == "exemplar" and line and not line.startswith("#"):
        lines[i] = line + ' # {trace_id="a"} 1.0'
    elif kind == "reorder" and "{" in line and "," in line:
        head, _, tail = line.partition("{")
        inside, _, value = tail.rpartition("}")
        pairs = inside.split(",")
        lines[i] = head + "{" + ",".join(reversed(pairs)) + "}" + value
    elif kind == "digits":
        lines[i] = line[:-1] + "١" if line else line
    elif kind == "underscore":
        lines[i] = line + "_0" if line else line
    elif kind == "drop":
        del lines[i]
    elif kind == "comment":
        lines.insert(i, "# " + noise)
    elif kind == "nul":
        lines[i] = line + "\x00"
    return "\n".join(lines)


@st.composite
def answers(draw: st.DrawFn) -> tuple[str, bool]:
    registry = draw(registries())
    openmetrics = draw(st.booleans())
    text = (om_latest if openmetrics else text_latest)(registry).decode()
    for _ in range(draw(st.integers(0, 3))):
        text = edit(text, draw(st.sampled_from(EDITS)), draw(st.integers(0, 10_000)),
                    draw(NOISE))
    return text, openmetrics


@needs_core
@settings(max_examples=400, deadline=None)
@given(answers(), answers(), st.sampled_from([None, 0, 1, 5, 1000]))
def test_both_cores_parse_every_answer_alike(first, second, max_samples):
    """Two answers in turn through one cache (the second may be the first, faulted)."""
    (text, openmetrics), (other, _) = first, second
    both([text, other, text], openmetrics, max_samples)


@needs_core
@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.booleans())
def test_both_cores_take_any_text_alike(text, openmetrics):
    both([text, text + "\n", "# EOF\n" + text], openmetrics)


@needs_core
def test_every_edit_is_exercised_with_errors_and_samples():
    """The generators above reach the slow and the fast lines: a fixed page with every
    edit gives samples or the same error in both cores."""
    base = ('# TYPE a counter\na_total{x="1",y="2"} 3\nb 4.5\n'
            'c_bucket{le="+Inf"} 7\nd{v="é"} NaN\n')
    results = [both([base, edit(base, kind, at, "x")])[1] for kind in EDITS
               for at in range(6)]
    assert any(r[0] == "error" for r in results) and any(r[0] == "ok" for r in results)


@needs_core
def test_a_large_answer_stops_at_the_sample_limit_at_the_same_line():
    text = "".join(f'm{{i="{i}"}} {i}\n' for i in range(40_000))
    result = both([text, text], max_samples=20_000)
    assert result[0][0] == "error" and "more than 20000 samples" in result[0][1]


BOUNDS = ["0.1", "0.5", "+Inf"]


@st.composite
def scrape_sequences(draw: st.DrawFn) -> list[str]:
    """Our exporter's pages over several scrapes: counters that grow, reset (a restart),
    go missing and come back (churn), labels in any order, odd values, repeats."""
    routes = draw(st.lists(st.sampled_from(["/a", "/b", "/c/{id}", "/d"]), min_size=1,
                           max_size=4, unique=True))
    counts = {(r, s): [0, 0, 0] for r in routes for s in ("200", "500")}
    start = 1000.0
    pages = []
    for _ in range(draw(st.integers(2, 6))):
        event = draw(st.sampled_from(["grow", "grow", "restart", "churn", "reorder", "odd",
                                      "repeat"]))
        if event == "restart":
            start += 60.0
            counts = {k: [0, 0, 0] for k in counts}
        for key in counts:
            step = draw(st.integers(0, 5))
            counts[key] = [counts[key][0] + step, counts[key][1] + 2 * step,
                           counts[key][2] + 3 * step]
        lines = ["# TYPE http_request_duration_seconds histogram"]
        for (route, status), cumulative in counts.items():
            if event == "churn" and draw(st.booleans()):
                continue
            pairs = ['method="GET"', f'route="{route}"', 'service="api"',
                     f'status="{status}"']
            for le, c in zip(BOUNDS, cumulative, strict=True):
                labels = [*pairs, f'le="{le}"']
                if event == "reorder":
                    random.Random(draw(st.integers(0, 99))).shuffle(labels)
                value = draw(st.sampled_from(["-1", "NaN", "+Inf"])) if (
                    event == "odd" and draw(st.booleans())) else str(c)
                lines.append(f"http_request_duration_seconds_bucket{{{','.join(labels)}}} "
                             f"{value}")
                if event == "repeat" and le == "0.1":
                    lines.append(lines[-1])
            inner = ",".join(pairs)
            lines.append(f"http_request_duration_seconds_count{{{inner}}} {cumulative[-1]}")
            lines.append(f"http_request_duration_seconds_sum{{{inner}}} "
                         f"{cumulative[-1] * 0.2}")
        lines += [f"process_start_time_seconds {start}",
                  f'events_processed_total{{kind="u",service="api"}} {len(pages) * 3}',
                  f'service_cpu_seconds_total{{pid="7",service="api"}} {len(pages) * 1.5}',
                  'service_cpu_limit_cores{service="api"} 2',
                  'service_memory_rss_bytes{pid="7",service="api"} 1048576']
        pages.append("\n".join(lines) + "\n")
    return pages


def plain(value: object) -> object:
    """``value`` with every object as its fields, for comparing across cores."""
    if isinstance(value, Counts):
        return ("Counts", plain(value.requests), plain(value.errors),
                plain(value.client_errors), plain(value.buckets))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, *(plain(getattr(value, f.name))
                                        for f in dataclasses.fields(value)))
    if isinstance(value, dict):
        return [(plain(k), plain(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return repr(value)  # (NaN equals NaN as text)


def derived(pages: list[str]) -> list[object]:
    deriver = TargetDeriver("api")
    seen = []
    for step, page in enumerate(pages):
        try:
            scrape = parse(page, deriver.cache)
        except ExpositionError as error:
            seen.append(str(error))
            continue
        seen.append(plain(deriver.derive_all(scrape, 15.0 * step, 15.0 * step)))
    seen.append(repr((deriver.restarts, deriver.duplicates, deriver.refused_histograms)))
    return seen


@needs_core
@settings(max_examples=150, deadline=None)
@given(scrape_sequences())
def test_both_cores_derive_the_same_points_counts_and_warnings(pages):
    with core(False):
        pure = derived(pages)
    with core(True):
        compiled = derived(pages)
    assert compiled == pure


def test_the_core_in_use_is_chosen_by_the_environment_and_said_by_version():
    """PROMFLUX_PURE=1 forces the reference; --version says which core runs."""
    def version(**env: str) -> str:
        run = subprocess.run([sys.executable, "-m", "promflux.bridge", "--version"],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, **env})
        return run.stdout

    assert "core: pure Python (PROMFLUX_PURE is set)" in version(PROMFLUX_PURE="1")
    pure = bool(os.environ.get("PROMFLUX_PURE")) or NO_COMPILER
    assert f"core: {'pure Python' if pure else 'compiled (C)'}" in version()
    assert (native.compiled is None) == pure


def test_the_event_loop_is_uvloop_where_installed_and_asyncio_when_asked():
    """--version says which loop runs: uvloop where it is installed, asyncio's own with
    PROMFLUX_LOOP=asyncio or without uvloop."""
    def version(**env: str) -> str:
        return subprocess.run([sys.executable, "-m", "promflux.bridge", "--version"],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, **env}).stdout

    assert "event loop: asyncio (PROMFLUX_LOOP=asyncio)" in version(PROMFLUX_LOOP="asyncio")
    try:
        import uvloop
    except ImportError:
        assert "event loop: asyncio (uvloop is not installed)" in version()
    else:
        from importlib.metadata import version as installed

        assert uvloop.new_event_loop
        assert f"event loop: uvloop {installed('uvloop')}" in version()


def test_a_missing_build_falls_back_to_the_reference():
    """Where the extension was not built (an sdist without a compiler), the bridge runs
    the pure core and says why."""
    code = ("import sys; sys.modules['promflux.bridge._native'] = None; "
            "from promflux.bridge import native; print(native.CORE)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items()
                                          if k != "PROMFLUX_PURE"})
    assert run.stdout.startswith("pure Python (the compiled core was not built")


@needs_core
def test_the_parser_refuses_what_it_refused_before_in_both_cores():
    for kind in (False, True):
        with core(kind), pytest.raises(ExpositionError, match="line 2: invalid value"):
            parse("a 1\nb 1_000\n")


bounds = st.sampled_from([0.005, 0.01, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf, -1.0, 0.0,
                          math.nan])
counts = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, 1.0, 1.0 + 1e-13, 1.0 - 1e-13, 5.0, 1e9])
bucket_maps = st.dictionaries(bounds, counts, max_size=8) | st.lists(
    st.floats(0, 100, allow_nan=False), max_size=8).map(
    lambda steps: dict(zip([0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf],
                           itertools.accumulate(steps), strict=False))) | st.dictionaries(
    # (more buckets than the compiled core sorts on its stack, in any order)
    st.floats(-10, 1e3, allow_nan=False) | st.just(math.inf), counts, min_size=60, max_size=90)


@needs_core
@settings(max_examples=500, deadline=None)
@given(bucket_maps, st.one_of(st.none(), bucket_maps))
def test_both_cores_make_the_same_bucket_rows_percentiles_and_window_sums(buckets, into):
    """The per-bucket loops of every endpoint (a bucket row's fields, the sorted monotonic
    buckets percentiles read, a window's sums) give the same figures in both cores,
    the refusal of buckets that are not cumulative included."""
    from promflux.bridge.analyze import bucket_fields, quantile, window

    modules = (bucket_fields, quantile, window)

    def figures() -> object:
        out: list[object] = []
        target = None if into is None else dict(into)
        try:
            out.append(bucket_fields.fields(dict(buckets), target))
        except bucket_fields.NotCumulative as error:
            out.append(("refused", str(error)))
        out.append(target)
        # A service's sum: the same bound objects, sorted, as the rows before put them there
        # (the compiled core walks it side by side with the row's buckets).
        same = dict(sorted(buckets.items(), key=lambda item: item[0]))
        try:
            out.append(bucket_fields.fields(dict(buckets), same))
        except bucket_fields.NotCumulative as error:
            out.append(("refused", str(error)))
        out.append(same)
        ordered = quantile.normalize_map(buckets)
        out.append(ordered)
        out.append([quantile.quantile(q, ordered) for q in (0.0, 0.5, 0.95, 0.99, 1.0)])
        total = window.Counts(buckets=dict(into or {}))
        total.add(window.Counts(buckets=dict(buckets)), -1.0)
        total.add(window.Counts(buckets=dict(buckets)))
        out.append(total.buckets)
        return plain(out)

    saved = [m.compiled for m in modules]
    try:
        for m in modules:
            m.compiled = None
        pure = figures()
        for m in modules:
            m.compiled = _native
        assert figures() == pure
    finally:
        for m, value in zip(modules, saved, strict=True):
            m.compiled = value


pair_lists = st.lists(st.tuples(bounds, counts), max_size=6) | st.lists(
    st.tuples(st.integers(-2, 5), st.integers(0, 9)), max_size=4)
ranks = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, 0.5, 0.95, 1.0, -0.0, 1.0 + 1e-16])


@needs_core
@settings(max_examples=500, deadline=None)
@given(ranks, pair_lists)
def test_both_cores_read_the_same_percentile_from_any_pairs(q, pairs):
    """Any quantile of any (bound, count) pairs, sorted or not, NaN, infinite, negative,
    empty, or ints (which the compiled core leaves to the reference): the same answer."""
    from promflux.bridge.analyze import quantile

    alike(quantile, lambda: plain(quantile.quantile(q, pairs)))


def _fresh(value: object) -> object:
    """A float as a new object of the same value (an int as it is)."""
    return float(repr(value)) if isinstance(value, float) else value


@needs_core
@settings(max_examples=400, deadline=None)
@given(bucket_maps, st.lists(counts, max_size=8), st.sampled_from([1.0, -1.0]),
       st.sampled_from(["same", "reversed", "fewer", "more", "equal keys"]))
def test_both_cores_add_bucket_counts_alike_whatever_the_order_of_keys(
        source, values, sign, layout):
    """The window's bucket sums walk the sums and the counts side by side while their keys
    are the same objects: in any order, with keys missing or extra, or equal keys that are
    other objects, the sums are the pure code's; no float another holds changes."""
    keys = list(source)
    if layout == "reversed":
        keys.reverse()
    elif layout == "fewer":
        keys = keys[1:]
    elif layout == "more":
        keys = [*keys[:1], 123.0, *keys[1:]]
    elif layout == "equal keys":
        keys = [float(repr(k)) for k in keys]

    def run() -> tuple[object, object, object]:
        padded = [*values, *[0.0] * len(keys)][:len(keys)]
        target = {k: _fresh(v) for k, v in zip(keys, padded, strict=True)}
        seen = list(target.values())[::2]  # (held here too: these may not change)
        before = plain(seen)
        counts = Counts(buckets=target)
        counts.add(Counts(buckets=source), sign)
        assert plain(seen) == before
        return plain(counts.buckets), plain(list(counts.buckets)), plain(source)

    from promflux.bridge.analyze import window

    alike(window, run)


figures = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, 1.0, 3.0, 1e9]) | st.integers(0, 5)
count_maps = st.dictionaries(st.sampled_from(["GET /a", "GET /b", "_all"]), st.builds(
    lambda r, e, c, b: Counts(r, e, c, b), figures, figures, figures,
    st.dictionaries(bounds, figures, max_size=4)), max_size=3)


@needs_core
@settings(max_examples=400, deadline=None)
@given(count_maps, count_maps, st.sampled_from([1.0, -1.0]), st.booleans())
def test_both_cores_add_and_take_away_the_same_window_counts(into, more, sign, lazily):
    """A window's sums per endpoint: what is added or taken away, the keys left empty that
    go, and the requests returned, alike in both cores (ints and NaN left to the method)."""
    from promflux.bridge.analyze import window

    def run() -> object:
        mine = {k: window.Counts(c.requests, c.errors, c.client_errors, dict(c.buckets))
                for k, c in into.items()}
        pairs = ((k, c) for k, c in more.items()) if lazily else more.items()
        added = window.add_counts(mine, pairs, sign)
        return plain((mine, added))

    alike(window, run)


@needs_core
@settings(max_examples=500, deadline=None)
@given(figures, figures, figures, figures, st.sampled_from([15.0, 1.0, 0.0, -1.0, math.nan]),
       bucket_maps, st.sampled_from([0.5, 0.25, 0.3, math.inf, 0.0]),
       st.dictionaries(st.sampled_from(["200", "500"]), figures, max_size=2))
def test_both_cores_make_the_same_performance_rows(count, errors, client_errors, total,
                                                    seconds, buckets, limit, by_status):
    """An endpoint's row (rates, error shares, the requests within the p95 limit, the
    percentiles) alike in both cores, with NaN, infinite, negative, int and missing
    figures, any buckets, and intervals that are not positive."""
    group = derive._Latency({"service": "s", "endpoint": "/a", "method": "GET"})
    group.count, group.errors, group.client_errors, group.total = (
        count, errors, client_errors, total)
    group.buckets, group.by_status = dict(buckets), dict(by_status)
    alike(derive, lambda: plain(derive._performance_row(group, seconds, 1_000, limit)))


field_values = (st.floats() | st.sampled_from(
    [0.0, -0.0, 1.0, -3.0, 1e15, 1e16, -1e16, 9007199254740993.0, 0.1, 1e-7, 123456.5,
     math.inf, math.nan]) | st.integers(-10, 10) | st.none() | st.text(max_size=4))
points = st.lists(st.tuples(
    st.sampled_from(["performance_metrics", "latency buckets", "m,x", "mé"]),
    st.dictionaries(st.sampled_from(["service", "endpoint", "tag=x", "time"]),
                    st.text(max_size=5), max_size=3),
    st.dictionaries(st.sampled_from(["requests", "le_0.1", "le_+Inf", "p95_ms", "time",
                                     "fïeld", "a b"]), field_values, max_size=5),
    st.integers(0, 2_000_000_000_000) | st.sampled_from([2**63, -1, -5, 10, 1.5e12, True])).map(
        lambda point: list(point) if point[3] == -1 else point), max_size=6)


@needs_core
@settings(max_examples=400, deadline=None)
@given(points)
def test_both_cores_write_the_same_line_protocol(batch):
    from promflux.bridge.store import lineprotocol

    saved = lineprotocol.compiled
    try:
        lineprotocol.compiled = None
        pure = lineprotocol.LineEncoder().encode(batch)
        lineprotocol.compiled = _native
        assert lineprotocol.LineEncoder().encode(batch) == pure
        encoder = lineprotocol.LineEncoder(max_entries=2)  # (its caches cleared as it goes)
        assert encoder.encode(iter(batch)) == pure == encoder.encode(batch)
    finally:
        lineprotocol.compiled = saved


@needs_core
@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 2**33).map(float)
                | st.integers(0, 300).map(float) | st.integers(-3, 3) | st.sampled_from(
                    [-0.0, 255.0, 256.0, 65_535.0, 65_536.0, 4_294_967_295.0, 4_294_967_296.0]),
                max_size=40))
def test_both_cores_pack_and_unpack_window_entries_alike(values):
    """A closed window entry's figures packed in the narrowest array (its bytes made in C)
    and read back as doubles: the same type and figures in both cores."""
    from promflux.bridge.analyze import window

    def run() -> object:
        packed = window.narrowest(list(values))
        wide = window._widened(packed) if packed.typecode != "d" else packed
        return packed.typecode, repr(packed.tolist()), wide.typecode, repr(wide.tolist())

    alike(window, run)


def float_values(seed: int) -> list[float]:
    """Doubles of every kind: any bit pattern, figures of the sizes rows hold, rates of
    whole counts, every power of two and ten, the edges of the exponent form, subnormals."""
    rng = random.Random(seed)
    bits = (struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            for _ in range(60_000))
    values = [x for x in bits if math.isfinite(x)]
    values += [rng.random() * 10.0 ** rng.randint(-8, 20) for _ in range(60_000)]
    values += [rng.randint(0, 10**6) / rng.choice([60.0, 7.0, 3.0]) for _ in range(20_000)]
    values += [2.0 ** e for e in range(-1074, 1024)] + [10.0 ** e for e in range(-323, 309)]
    values += [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 1e15,
               9999999999999998.0, 1e-4, 1e-5, 9.999999999999999e-05, 0.1, 0.3, 1 / 3,
               2.0**53, 2.0**53 + 2, 1e22, 1e23, 4.35, 0.1 + 0.2, -0.0, 0.0]
    return values + [-x for x in values]


@needs_core
@pytest.mark.parametrize("seed", [1, 2])
def test_the_compiled_encoder_writes_floats_as_repr_does(seed):
    """The compiled encoder writes a float's shortest digits itself (Ryu): the same text
    as repr, the pure encoder's, for some 290,000 doubles."""
    from promflux.bridge.store import lineprotocol

    values = float_values(seed)
    body = lineprotocol.LineEncoder().encode([("m", {}, {"v": x}, 1) for x in values])
    written = [line[4:-2] for line in body.decode().split("\n")[:-1]]  # (between v= and " 1")
    assert len(written) == len(values)
    wrong = [(repr(x), text) for x, text in zip(values, written, strict=True)
             if text != repr(x)]
    assert not wrong, wrong[:10]


@needs_core
@settings(max_examples=100, deadline=None)
@given(answers(), st.randoms(use_true_random=False))
def test_a_page_in_another_order_or_with_lines_gone_gives_the_same_series(answer, rng):
    """The compiled parser finds a line's series by its place in the answer before: pages
    reordered, cut down or grown between scrapes still give every core the same samples."""
    text, openmetrics = answer
    body = [line for line in text.split("\n") if line and not line.startswith("# EOF")]
    shuffled = body[:]
    rng.shuffle(shuffled)
    fewer = [line for i, line in enumerate(body) if i % 3]
    pages = ["\n".join(lines) + ("\n# EOF\n" if openmetrics else "\n")
             for lines in (body, shuffled, body, fewer, body, body)]
    both(pages, openmetrics)


tracker_values = st.floats(allow_nan=True) | st.integers(-5, 50) | st.sampled_from(
    [0.0, 1.0, 1.0 - 1e-12, math.inf, -1.0])


@needs_core
@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from("abcdef"), tracker_values, max_size=6),
                min_size=1, max_size=8), st.lists(st.booleans(), min_size=8, max_size=8))
def test_both_cores_count_the_same_increases(scrapes, restarts):
    """Counter increases with restarts, absences, values no counter can have, and ints."""
    from promflux.bridge.analyze.rates import CounterTracker

    def run(give: bool = False) -> list:
        tracker: CounterTracker[str] = CounterTracker(stale_after=30.0)
        out = []
        for step, values in enumerate(scrapes):
            # given, the values become the tracker's state: a copy, as derive's are its own
            increases, seconds = tracker.update(10.0 * step, dict(values) if give else values,
                                                restarts[step], give=give)
            out.append(plain((increases, seconds, dict(tracker.last_values()),
                              tracker.restarts, len(tracker))))
        return out

    saved = rates.compiled
    try:
        rates.compiled = None
        pure = run()
        assert run(give=True) == pure
        rates.compiled = _native
        assert run() == pure
        assert run(give=True) == pure
    finally:
        rates.compiled = saved


statuses = st.dictionaries(st.sampled_from(["200", "404", "500", "503", "", "4", "x"]),
                           figures, max_size=3)


# An endpoint idle over the interval: its series there, every figure of them 0.
idle_groups = st.tuples(st.sampled_from([0.0, -0.0, 0]), st.sampled_from([0.0, 0]),
                        st.just(0.0), figures,
                        st.dictionaries(bounds, st.sampled_from([0.0, -0.0]), max_size=8),
                        st.dictionaries(st.sampled_from(["200", "500"]), st.just(0.0),
                                        max_size=2))


@needs_core
@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(figures, figures, figures, figures, bucket_maps, statuses)
                | idle_groups, max_size=4),
       st.sampled_from([15.0, 1.0, 0.25, -1.0, math.nan]),
       st.sampled_from([0.5, 0.25, 0.3, math.inf]))
def test_both_cores_make_the_same_request_points(groups, seconds, limit):
    """An interval's request points of several endpoints (a point per status, the bucket
    rows, refused rows, the performance rows, the service's row), the counts for the
    windows and what is left in each group, alike in both cores: with NaN, infinite,
    negative, int and missing figures, buckets not cumulative, statuses of every class,
    and idle endpoints (rows, no counts)."""
    from promflux.bridge.analyze import bucket_fields

    def run() -> object:
        made = []
        for i, (count, errors, client_errors, total, buckets, by_status) in enumerate(groups):
            group = derive._Latency({"service": "s", "endpoint": f"/e{i}", "method": "GET"})
            group.count, group.errors, group.client_errors, group.total = (
                count, errors, client_errors, total)
            group.buckets, group.by_status = dict(buckets), dict(by_status)
            made.append(group)
        counts: dict[str, Counts] = {}
        points, total = derive.latency_points(
            made, {"service": "s", "endpoint": "_all", "method": "_all"}, seconds, 1_000,
            limit, counts)
        return plain((points, total, counts, [
            (g.refused, g.errors, g.client_errors, g.buckets, g.by_status) for g in made]))

    saved = derive.compiled, bucket_fields.compiled
    try:  # (the pure run's bucket rows by the pure code too)
        derive.compiled = bucket_fields.compiled = None
        pure = run()
        derive.compiled = bucket_fields.compiled = _native
        assert run() == pure
    finally:
        derive.compiled, bucket_fields.compiled = saved


@pytest.mark.parametrize("core", ["pure", pytest.param("compiled", marks=needs_core)])
def test_an_idle_endpoint_has_its_rows_but_adds_nothing_to_the_windows(core):
    """An endpoint whose series are all unchanged over the interval still gets its
    performance row (0 requests over the interval's seconds: rates sum over time), but no
    counts for the threshold windows; a busy one gets both, and the service's total is
    theirs alone."""
    from promflux.bridge.analyze import bucket_fields

    def group(endpoint: str, count: float, bucket: float) -> derive._Latency:
        made = derive._Latency({"service": "s", "endpoint": endpoint, "method": "GET"})
        made.count, made.total = count, 0.1 * count
        made.buckets = {0.1: bucket, 1.0: bucket, math.inf: bucket}
        made.by_status = {"200": count}
        return made

    saved = derive.compiled, bucket_fields.compiled
    try:
        derive.compiled = bucket_fields.compiled = None if core == "pure" else _native
        counts: dict[str, Counts] = {}
        points, total = derive.latency_points(
            [group("/idle", 0.0, 0.0), group("/busy", 3.0, 3.0)],
            {"service": "s", "endpoint": "_all", "method": "_all"}, 15.0, 1_000, 0.5, counts)
    finally:
        derive.compiled, bucket_fields.compiled = saved
    rows = {p[1]["endpoint"]: p[2] for p in points if p[0] == schema.PERFORMANCE}
    assert rows["/idle"]["requests"] == 0.0 and rows["/idle"]["interval_s"] == 15.0
    assert rows["/busy"]["requests"] == 3.0 and rows["_all"]["requests"] == 3.0
    assert list(counts) == ["GET /busy"] and counts["GET /busy"].requests == 3.0
    assert total is not None and total.requests == 3.0
    assert type(total.requests) is float
