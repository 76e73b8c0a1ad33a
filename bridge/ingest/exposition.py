"""Parsing Prometheus text format 0.0.4 and OpenMetrics. Pure, no I/O.

This is the bridge's hot path (every sample of every scrape), so it is built for speed:
a target sends the same series every scrape, so the text before the value (name and
labels) is parsed once and then found in a cache by that very text. Per line the work is
a few C-level string operations and one dict lookup. The careful label parser runs only
for series not seen before, and for OpenMetrics lines with exemplars.

Checked against prometheus_client's parser by property tests (tests/test_bridge_exposition.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from ..model import NO_LABELS, Scrape, Series, SeriesCache, intern_series, live_series
from ..native import compiled

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_TYPES = frozenset(
    {"counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset",
     "gaugehistogram"})
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}




class ExpositionError(ValueError):
    """Malformed exposition text; says which line and why."""

    def __init__(self, lineno: int, reason: str, line: str) -> None:
        shown = line if len(line) <= 120 else line[:117] + "..."
        super().__init__(f"line {lineno}: {reason}: {shown!r}")
        self.lineno = lineno


class _Malformed(Exception):
    """A bad line; ``parse`` adds the line number and text."""

    line = ""


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """``a="1",b="x\\"y"`` (the inside of the braces) as sorted pairs. Strict."""
    labels: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq == -1:
            raise _Malformed("label without '='")
        name = text[i:eq].strip()
        if not _LABEL_NAME.match(name):
            raise _Malformed(f"invalid label name {name!r}")
        j = eq + 1
        while j < n and text[j] in " \t":
            j += 1
        if j >= n or text[j] != '"':
            raise _Malformed(f"label {name} value is not quoted")
        j += 1
        chars: list[str] = []
        while True:
            if j >= n:
                raise _Malformed(f"label {name} value is not terminated")
            c = text[j]
            if c == '"':
                break
            if c == "\\":
                if j + 1 >= n:
                    raise _Malformed("dangling backslash")
                escaped = _ESCAPES.get(text[j + 1])
                if escaped is None:  # Prometheus keeps unknown escapes as they are
                    chars.append("\\" + text[j + 1])
                else:
                    chars.append(escaped)
                j += 2
                continue
            chars.append(c)
            j += 1
        if name in labels:
            raise _Malformed(f"duplicate label {name}")
        labels[sys.intern(name)] = sys.intern("".join(chars))
        j += 1
        while j < n and text[j] in " \t":
            j += 1
        if j < n:
            if text[j] != ",":
                raise _Malformed("expected ',' between labels")
            j += 1
        i = j
    pairs = _PAIRS
    if len(pairs) > _pairs_limit:
        _keep_live_pairs()
    return tuple([pairs.setdefault(pair, pair) for pair in sorted(labels.items())])


# One copy of each (name, value) pair and string across series and targets: the 26 lines
# of a histogram share all labels but `le`, and every target shares the `le` values.
# Memory per tracked series is what matters here, not speed (this runs once per new series).
_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}
MIN_PAIRS = 50_000  # about 8 MB of pairs before the table is first pruned
_pairs_limit = MIN_PAIRS


def _keep_live_pairs() -> None:
    """Prune the pair table to the pairs of live series; the next prune comes when it has
    doubled. A target that sends new label values every scrape (a user id, a timestamp)
    thus costs at most twice its live series' pairs, not a table that grows until
    cleared."""
    global _pairs_limit
    kept = {pair: pair for series in live_series() for pair in series.labels}
    _PAIRS.clear()
    _PAIRS.update(kept)
    _pairs_limit = max(MIN_PAIRS, 2 * len(kept))


def _parse_series(key: str) -> Series:
    brace = key.find("{")
    if brace == -1:
        name, labels = key.strip(), NO_LABELS
    else:
        if not key.endswith("}"):
            raise _Malformed("unterminated label set")
        name = key[:brace].strip()
        labels = parse_labels(key[brace + 1:-1])
    if not _METRIC_NAME.match(name):
        raise _Malformed(f"invalid metric name {name!r}")
    return intern_series(sys.intern(name), labels)


def series_of(key: str) -> Series:
    """The series a sample line's key (``name{labels}``) stands for; ValueError if bad."""
    try:
        return _parse_series(key)
    except _Malformed as error:
        raise ValueError(str(error)) from None


def _split_openmetrics_exemplar(line: str) -> str:
    """The line without an OpenMetrics exemplar (`` # {...} value [ts]``)."""
    in_quotes = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and in_quotes:
            i += 2
            continue
        if c == '"':
            in_quotes = not in_quotes
        elif c == "#" and not in_quotes and i > 0 and line[i - 1] == " ":
            return line[:i - 1]
        i += 1
    return line


def parse(text: str, cache: SeriesCache | None = None, openmetrics: bool = False,
          max_samples: int | None = None) -> Scrape:
    """Parse an exposition. ``cache`` carries series across scrapes of one target.

    Raises ExpositionError on the first malformed line (the scrape fails as a whole) and
    as soon as there are more than ``max_samples`` samples (so a flood of new series is
    never parsed whole). Either way the cache keeps at most about one scrape's series.
    """
    cache = cache if cache is not None else SeriesCache()
    known = cache.entries
    scrape = Scrape()
    samples = scrape.samples
    ascii_text = text.isascii()  # (else each value is checked: float() reads "١" as 1)
    lines: list[str] | None = None
    try:
        if compiled is None or not _scan_compiled(text, cache, scrape, openmetrics,
                                                  max_samples, ascii_text):
            lines = text.split("\n")
            _scan(lines, known, scrape, openmetrics, max_samples, ascii_text)
    except _Malformed as error:
        # (an exemplar was cut off the line: it is a prefix of the line as sent)
        lines = text.split("\n") if lines is None else lines
        number = next((i for i, raw in enumerate(lines) if raw.startswith(error.line)), 0)
        raise ExpositionError(number + 1, str(error), error.line) from None
    finally:
        if len(known) > 2 * len(samples) + 1024:
            # Series that are gone (a restarted target, old label values, a failed
            # scrape's flood): keep this scrape's. One set, so linear time.
            current = {s for s, _ in samples}
            cache.entries = {k: v for k, v in known.items() if v in current}
    return scrape


def _scan(lines: list[str], known: dict[str, Series], scrape: Scrape, openmetrics: bool,
          max_samples: int | None, ascii_text: bool) -> None:
    """The pure-Python parse of a whole answer into ``scrape`` (the reference)."""
    samples = scrape.samples
    # In chunks, counting samples after each: a body far over the limit stops early,
    # at no cost per sample.
    ended = False
    for start in range(0, len(lines), _CHUNK):
        if _parse_lines(lines[start:start + _CHUNK], known, scrape.types, samples.append,
                        openmetrics, ascii_text):
            ended = True  # "# EOF"
            break
        if max_samples is not None and len(samples) > max_samples:
            raise ExpositionError(start + _CHUNK, f"more than {max_samples} samples", "")
    _check_end(lambda: len(lines), lines[-1], ended, openmetrics, len(samples), max_samples)


def _scan_compiled(text: str, cache: SeriesCache, scrape: Scrape, openmetrics: bool,
                   max_samples: int | None, ascii_text: bool) -> bool:
    """The same parse by the compiled core; False when it cannot take the text (lone
    surrogates, which no HTTP answer decodes to), which the pure parse then takes."""
    types, append, known = scrape.types, scrape.samples.append, cache.entries

    def slow(line: str) -> bool:  # every line out of the usual, the pure way
        return _parse_lines([line], known, types, append, openmetrics, ascii_text)

    try:
        ended, over, cache.order = compiled.scan_lines(  # type: ignore[union-attr]
            text, known, scrape.samples, slow, openmetrics, _CHUNK,
            -1 if max_samples is None else max_samples, cache.order)
    except UnicodeEncodeError:
        return False
    known.clear()  # (the order holds this answer's series; a line out of place refills it)
    if over:
        raise ExpositionError(over, f"more than {max_samples} samples", "")
    _check_end(lambda: text.count("\n") + 1, text[text.rfind("\n") + 1:], ended, openmetrics,
               len(scrape.samples), max_samples)
    return True


def _check_end(count: Callable[[], int], last: str, ended: bool, openmetrics: bool,
               samples: int, max_samples: int | None) -> None:
    """``count``: the lines of the answer, for the message (counted only for one)."""
    # An answer cut short (a dropped connection, a proxy's limit) may end inside a
    # value, turning 1234 into 12: refused whole, as Prometheus and promtool do.
    if openmetrics and not ended:
        raise ExpositionError(count(), "cut short: no '# EOF' line at the end", "")
    if last and not openmetrics:
        raise ExpositionError(count(), "cut short: the last line has no newline", last)
    if max_samples is not None and samples > max_samples:
        raise ExpositionError(count(), f"more than {max_samples} samples", "")


_CHUNK = 16384


def _parse_lines(lines: list[str], known: dict[str, Series], types: dict[str, str],
                 append: Callable[[tuple[Series, float]], None], openmetrics: bool,
                 ascii_text: bool = True) -> bool:
    """Parse ``lines`` into samples; True when an OpenMetrics ``# EOF`` ended the text."""
    line = ""
    try:
        for line in lines:
            if not line or line[0] == "#":
                if line.startswith("# TYPE "):
                    _type_line(line, types)
                elif openmetrics and line.startswith("# EOF"):
                    return True
                continue
            if openmetrics and " # " in line:
                line = _split_openmetrics_exemplar(line)
            close = line.rfind("}")  # (``_split``, inlined: this runs once per sample)
            if close == -1:
                key, _, rest = line.partition(" ")
            else:
                key, rest = line[:close + 1], line[close + 1:]
            series = known.get(key)
            if series is None:  # a series not seen before, or a line out of the usual
                key, rest = _odd_line(line, key, rest, openmetrics)
                if not key:
                    continue  # a comment, indented
                series = known.get(key)
                if series is None:
                    series = known[key] = _parse_series(key)
            if "_" in rest or not (ascii_text or rest.isascii()):
                # Python reads "1_000" as 1000 and other scripts' digits; Prometheus does not
                raise _Malformed(f"invalid value {rest.strip()!r}")
            try:
                append((series, float(rest)))  # " 1.5": float() skips the blanks
            except ValueError:
                append((series, _value_and_timestamp(rest)))
    except _Malformed as error:
        error.line = line
        raise
    return False


def _split(line: str) -> tuple[str, str]:
    """A sample line as (series text, value and timestamp), split at the closing brace,
    or at the first blank when there are no labels."""
    close = line.rfind("}")
    if close == -1:
        key, _, rest = line.partition(" ")
        return key, rest
    return line[:close + 1], line[close + 1:]


def _odd_line(line: str, key: str, rest: str, openmetrics: bool) -> tuple[str, str]:
    """(key, rest) of a line the fast split may have cut wrong; ("", "") for a comment.

    The text format separates tokens by blanks or tabs and allows blanks before a comment
    (as Prometheus does); OpenMetrics allows neither, so there such a line is an error.
    """
    if not line or line[0] in " \t":
        stripped = line.lstrip(" \t")
        if openmetrics or not stripped:
            raise _Malformed("line starts with white space")
        if stripped[0] == "#":
            return "", ""
        # A sample line indented: Prometheus's text parsers skip the blanks.
        return _odd_line(stripped, *_split(stripped), openmetrics)
    if "\t" in key and "{" not in key and not openmetrics:  # "name<TAB>value"
        key, _, tail = line.partition("\t")
        cut = key.find(" ")
        if cut != -1:
            key, tail = key[:cut], key[cut:] + "\t" + tail
        return key, tail
    return key, rest


def _type_line(line: str, types: dict[str, str]) -> None:
    parts = line.split(None, 3)
    if len(parts) != 4 or parts[3].strip() not in _TYPES:
        raise _Malformed("malformed TYPE line")
    types[parts[2]] = parts[3].strip()


def bad_type_line(line: str) -> bool:
    """Whether a ``# TYPE`` line is malformed (the parse refuses the answer for it)."""
    try:
        _type_line(line, {})
    except _Malformed:
        return True
    return False


def _value_and_timestamp(rest: str) -> float:
    fields = rest.split()
    if not fields or len(fields) > 2:
        raise _Malformed("expected a value and an optional timestamp")
    try:
        value = float(fields[0])
        if len(fields) == 2:
            float(fields[1])
    except ValueError:
        raise _Malformed(f"invalid value {rest.strip()!r}") from None
    return value


def not_metrics(text: str) -> str:
    """Why an answer that failed to parse is no metrics page at all (an HTML error or login
    page, JSON), or "" when it looks like one that is merely malformed."""
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype html", "<html", "<head", "<body", "<?xml", "<")):
        return "the answer is HTML or XML, not a metrics page (is the URL the /metrics path?)"
    if head.startswith(("{", "[")):
        return "the answer is JSON, not a metrics page (is the URL the /metrics path?)"
    return ""
