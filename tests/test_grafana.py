"""The Grafana dashboards: generated from grafana/build.py, importable by hand, and every
panel's InfluxQL (with $timeFilter, $__interval and template variables substituted as
Grafana does) returns data from a real InfluxDB filled by the real bridge from the real
example services."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from .conftest import ROOT, Server, scraped_after, wait_for
from .stack import ExampleStack

sys.path.insert(0, str(ROOT / "grafana"))
import build  # noqa: E402

DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
RANGES = {"now-1h": 3600, "now-6h": 6 * 3600, "now-7d": 7 * 86400}


def test_committed_json_is_what_build_makes():
    built = build.build()
    assert sorted(built) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert path.read_text() == built[path.name], f"run python grafana/build.py ({path})"


def test_dashboards_type_check_against_grafanas_published_schema():
    """Every dashboard, as TypeScript, against the ``Dashboard`` type of the @grafana/schema
    npm package (no Grafana runs here; its own types are the next best judge)."""
    check = ROOT / "grafana" / "schema-check"
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=check,
                   check=True, timeout=600)
    parts = ['import { ThresholdsMode } from "@grafana/schema";',
             'import type { Dashboard } from "@grafana/schema";']
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for key in ("__inputs", "__requires"):  # Grafana's import wrapper, not the model
            board.pop(key)
        # A string enum takes its members, not string literals, in TypeScript.
        text = json.dumps(board, indent=1).replace('"mode": "absolute"',
                                                   '"mode": ThresholdsMode.Absolute')
        name = path.stem.replace("-", "_")
        parts.append(f"export const {name} = {text} satisfies Dashboard;")
    (check / "dashboards.gen.ts").write_text("\n".join(parts) + "\n")
    done = subprocess.run(["node_modules/.bin/tsc", "--noEmit", "--strict", "--skipLibCheck",
                           "--moduleResolution", "node", "--module", "esnext", "--target",
                           "es2020", "dashboards.gen.ts"], cwd=check, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_import_by_hand_with_a_datasource_input(path):
    board = json.loads(path.read_text())
    assert [i["name"] for i in board["__inputs"]] == ["DS_INFLUXDB"]
    text = path.read_text()
    uids = set(re.findall(r'"uid": "([^"]*)"', text)) - {board["uid"]}
    assert uids == {"${DS_INFLUXDB}"}  # no hard-coded datasource
    datasource = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    # The same name as the import input, and no current value (a provisioned dashboard
    # would look for a datasource literally named "${DS_INFLUXDB}").
    assert [(v["name"], v["query"], v.get("current")) for v in datasource] == [
        ("DS_INFLUXDB", "influxdb", None)]
    assert "8086" not in text and "performance" not in text.lower().replace(
        "performance_metrics", "").replace("performance_trends", "")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["targets"] and all(t["rawQuery"] for t in panel["targets"])


def test_provisioning_files_refer_to_the_dashboards_and_the_environment():
    source = yaml.safe_load((ROOT / "grafana/provisioning/datasources/influxdb.yml").read_text())
    ds = source["datasources"][0]
    assert ds["type"] == "influxdb" and ds["url"] == "${PROMFLUX_INFLUXDB_URL}"
    assert ds["jsonData"]["dbName"] == "${PROMFLUX_INFLUXDB_DATABASE}"
    # Grafana's smallest bin is the bridge's scrape interval, the one value both are given.
    assert ds["jsonData"]["timeInterval"] == "${SCRAPE_INTERVAL}"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert compose["grafana"]["environment"]["SCRAPE_INTERVAL"] == compose["bridge"][
        "environment"]["SCRAPE_INTERVAL"] == "${SCRAPE_INTERVAL:-15s}"
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/promflux.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def regex_escape(value: str) -> str:
    # Grafana's regexEscape for InfluxDB template variables.
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def substitute(query: str, seconds: int, variables: dict[str, list[str]]) -> str:
    now_ms = int(time.time() * 1000)
    query = query.replace("$timeFilter",
                          f"time >= {now_ms - seconds * 1000}ms and time <= {now_ms}ms")
    interval_s = max(1, seconds // 1000)  # Grafana's: about 1,000 points over the range
    query = query.replace("$__interval_ms", str(interval_s * 1000))
    query = query.replace("$__interval", f"{interval_s}s")
    query = query.replace("$__range_s", str(seconds))
    for name, values in variables.items():
        escaped = [regex_escape(v) for v in values]
        text = escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"  # () if none
        query = query.replace(f"${name}", text)
    assert "$" not in query.replace("$/", ""), query
    return query


@pytest.fixture(scope="module")
def filled(influxdb, tmp_path_factory):
    """The example stack under the load generator for a while, then the roll-ups and trends
    of the current hour and day run by the backfill command."""
    stack = ExampleStack(influxdb, "grafana", tmp_path_factory.mktemp("buffer"),
                         env={"DEMO_ERROR_PERCENT": "40"},
                         # judged over seconds, so a test sees states change
                         bridge_env={"ALERT_WINDOW": "2s", "ALERT_FOR": "0s",
                                     "ALERT_RESOLVE": "0s", "ALERT_MIN_REQUESTS": "2"})
    load = Server([sys.executable, "-m", "examples.loadgen", "--api", stack.api.url,
                   "--ingest", stack.ingest.url, "--rate", "60"], stack.api.port,
                  ready_path="/health")
    try:
        stack.wait_for_baseline()
        batch = {"timings": [{"route": "/api/devices/{device_id}", "method": "GET",
                              "status": 200, "duration_ms": 30}] * 5}
        assert httpx.post(stack.api.url + "/metrics/client-timings",
                          json=batch).status_code == 204
        wait_for(lambda: stack.query('SELECT count("websocket_messages_received") FROM '
                                     '"connections"'), lambda s: bool(s), timeout=20)
        wait_for(lambda: stack.query('SELECT count("exceptions") FROM "exceptions"'),
                 lambda s: bool(s), timeout=20)
        wait_for(lambda: stack.query('SELECT count("closes") FROM "websocket_closes"'),
                 lambda s: bool(s), timeout=30)  # a WebSocket client has reconnected
        wait_for(lambda: stack.query('SELECT count("level") FROM "threshold_states"'),
                 lambda s: bool(s), timeout=30)  # the 40 % errors are judged
        # Two more scrapes of everything: the posted timings are stored too.
        scraped_after(stack.bridge.url, time.time())
        scraped_after(stack.bridge.url, time.time())
    finally:
        load.stop()
        stack.worker.stop()  # its calls to the services would land between truth and panel
    hour = int(time.time()) // 3600 * 3600
    # Week over week and slopes need earlier hours and days: the one thing a test cannot
    # wait for. They are written as the roll-ups would have stored them; all else comes
    # from the services through the bridge.
    day = hour - hour % 86400
    history = {"hourly_30d": [hour - 7 * 86400, hour - 2 * 86400, hour - 86400],
               "daily_90d": [day - 2 * 86400, day - 86400]}
    for rp, starts in history.items():
        # An endpoint's row and its bucket row, and the job's service-wide row: 1,200
        # requests at or under 0.1 s, 6 of them errors.
        lines = [line for start in starts for s in ("admin-api", "ingest") for line in (
            f"performance_metrics,endpoint=/x,method=GET,service={s} requests=1200,"
            f"requests_per_minute=20,errors=6 {start * 1000}",
            f"latency_buckets,endpoint=/x,method=GET,service={s} le_0.075=0,le_0.1=1200 "
            f"{start * 1000}",
            f"performance_metrics,endpoint=_all,method=_all,service={s} p95_ms=95,"
            f"requests=1200,requests_per_minute=20,errors=6 {start * 1000}")]
        written = httpx.post(influxdb.url + "/write", params={"db": "grafana", "rp": rp,
                                                              "precision": "ms"},
                             content="\n".join(lines).encode())
        assert written.status_code == 204, written.text
    config = Path(tmp_path_factory.mktemp("cfg")) / "bridge.yml"
    config.write_text(f"influxdb:\n  url: {influxdb.url}\n  database: grafana\ntargets:\n"
                      "  - service: x\n    url: http://127.0.0.1:1/metrics\n")
    done = subprocess.run([sys.executable, "-m", "promflux.bridge", "--config", str(config),
                           "--backfill", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                       time.gmtime(hour))],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    yield stack
    stack.stop()


def field_keys(influx, query: str) -> set[str]:
    keys = set()
    for rp, measurement in re.findall(r'FROM (?:"(\w+)"\.)?"(\w+)"', query):
        rp = rp or "raw_7d"
        for series in influx.query(f'SHOW FIELD KEYS FROM "{rp}"."{measurement}"',
                                   db="grafana"):
            keys |= {row[0] for row in series["values"]}
    return keys


def variable_choices(board: dict, seconds: int, influx) -> list[dict[str, list[str]]]:
    """Every choice of the first query variable (each service), with the later variables
    at All or their first value, as a user would click through them."""
    query_vars = [v for v in board["templating"]["list"] if v["type"] == "query"]
    if not query_vars:
        return [{}]

    def values(var: dict, chosen: dict[str, list[str]]) -> list[str]:
        series = influx.query(substitute(var["query"], seconds, chosen), db="grafana")
        return sorted({row[1] for s in series for row in s["values"]})

    first, rest = query_vars[0], query_vars[1:]
    choices = []
    services = values(first, {})
    assert services, f"variable {first['name']} has no values"
    # A worker has no HTTP endpoints: its endpoint list is empty (its panels show nothing).
    for value in services:
        chosen = {first["name"]: [value]}
        for var in rest:
            found = values(var, chosen)
            chosen[var["name"]] = found if var.get("includeAll") else found[:1]
        choices.append(chosen)
    if first.get("includeAll"):
        choices.append({first["name"]: values(first, {})})
    return choices


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_returns_data_from_fields_that_exist(path, filled, influxdb):
    board = json.loads(path.read_text())
    seconds = RANGES[board["time"]["from"]]
    without_data: dict[str, str] = {}
    with_data: set[str] = set()
    for variables in variable_choices(board, seconds, influxdb):
        for panel in board["panels"]:
            for target in panel["targets"]:
                name = f"{panel['title']} [{target['refId']}]"
                # (a roll-up tier over two days: the daily row of today starts at 00:00)
                rollup = without_age_limit(target["query"]) != target["query"]
                query = substitute(without_age_limit(target["query"]),
                                   max(seconds, 2 * 86400) if rollup else seconds, variables)
                series = influxdb.query(query, db="grafana")
                if any(v is not None for s in series for row in s["values"] for v in row[1:]):
                    with_data.add(name)
                else:
                    without_data[name] = query
                known = field_keys(influxdb, query)
                if "FROM (" in query:  # an outer query reads the subquery's aliases
                    known |= set(re.findall(r'AS "([^"]+)"', query))
                used = set(re.findall(
                    r'\b(?:mean|max|min|sum|last|first|count)\("([^"]+)"\)', query))
                if PERCENTILES_OF_BIN.search(target["query"]):
                    # Every bucket the data has is read (a bound the data lacks is 0).
                    assert {k for k in known if k.startswith("le_")} <= used, name
                    used = {u for u in used if not u.startswith("le_")}
                assert used <= known, f"{name}: no such field {used - known}"
    empty = sorted(set(without_data) - with_data)  # no data whatever the variables
    assert not empty, "panels without data:\n" + "\n".join(
        f"{n}: {without_data[n]}" for n in empty)


def without_age_limit(query: str) -> str:
    """A roll-up tier's query without the age its rows start at (this fixture's roll-ups
    are of the current hour and day)."""
    match = PERCENTILES_OF_BIN.search(query)
    if match is None or '"."' not in match.group("source"):  # (raw rows: no policy named)
        return query
    return query.replace(f' AND {match.group("tier")} ', " ")


# The stack scrapes every second: bins of one scrape interval, a minute, 5 minutes, an hour,
# a day.
BIN_WIDTHS = (1, 60, 300, 3600, 86400)
PANEL = re.compile(r'SELECT (?P<select>.+?) FROM (?P<source>\S+) WHERE (?P<where>.+?) '
                   r'GROUP BY time\(\$__interval\)(?:, "(?P<tag>\w+)")? fill\((?:none|0)\)$')
RATE = re.compile(r'sum\("(\w+)"\) \* 60000 / \$__interval_ms')
RATIO = re.compile(r'100 \* sum\("(\w+)"\) / sum\("(\w+)"\)')
PERCENTILE = re.compile(r'max\("p(\d+)_ms"\)')
COUNT = re.compile(r'sum\("(\w+)"\)')


def fixed_range(query: str, start_ms: int, end_ms: int, width: int,
                variables: dict[str, list[str]]) -> str:
    query = query.replace("$timeFilter", f"time >= {start_ms}ms and time < {end_ms}ms")
    query = query.replace("$__interval_ms", str(width * 1000))
    query = query.replace("$__interval", f"{width}s")
    for name, values in variables.items():
        escaped = [regex_escape(v) for v in values]
        query = query.replace(f"${name}", escaped[0] if len(escaped) == 1
                              else "(" + "|".join(escaped) + ")")
    return query


def binned(influxdb, source: str, where: str, tags: list[str], width: int) -> dict:
    """Raw rows of ``source`` matching ``where``, as {(tag values, bin start ms): [rows]}."""
    group = ", ".join(f'"{t}"' for t in tags)
    out: dict = {}
    for series in influxdb.query(f"SELECT * FROM {source} WHERE {where}"
                                 + (f" GROUP BY {group}" if tags else ""), db="grafana"):
        key = tuple(series.get("tags", {}).get(t, "") for t in tags)
        columns = series["columns"]
        for row in series["values"]:
            record = dict(zip(columns, row, strict=True))
            start = record["time"] - record["time"] % (width * 1000)
            out.setdefault((key, start), []).append(record)
    return out


def bucket_width_ms(bounds: list[float], value_ms: float) -> float:
    upper = next((b for b in bounds if b * 1000 >= value_ms), bounds[-1])
    lower = max((b for b in bounds if b < upper), default=0.0)
    return (upper - lower) * 1000


@pytest.mark.parametrize("width", BIN_WIDTHS)
def test_panels_tell_the_truth_at_every_bin_width(filled, influxdb, width):
    """Every rate, count, ratio and percentile panel against the truth computed from the
    raw points in the same bin: counts and rates within 1 %, ratios exact, percentiles never
    below the bin's true value minus one bucket width (a breach is never hidden)."""
    # (The stack still writes: a range that ends a few seconds ago holds settled rows, so the
    # panel and the truth read the same ones.)
    end_ms = int(time.time() * 1000) - 5000
    start_ms = end_ms - 2 * 3600 * 1000
    checked = {"rate": 0, "count": 0, "ratio": 0, "percentile": 0, "heatmap": 0,
               "roll-up percentile": 0, "rate of a whole bin": 0, "job percentile": 0}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        if board["uid"] == "promflux-trends":
            continue  # roll-up rows (hour and day bins) come from the roll-up tests
        for choice, variables in enumerate(variable_choices(board, 7200, influxdb)):
            for panel in board["panels"]:
                for target_ in panel.get("targets", []):
                    if choice and "job_buckets" not in target_["query"]:
                        continue  # (the other services: for the job panels, the worker's)
                    rates = RATE_OF_BIN.match(target_["query"])
                    if rates is not None:
                        check_rates(influxdb, rates, start_ms, end_ms, width, variables,
                                    checked, panel["title"])
                        continue
                    exact = PERCENTILES_OF_BIN.search(target_["query"])
                    if exact is not None:
                        check_percentiles(influxdb, target_["query"], exact, start_ms,
                                          end_ms, width, variables, checked, panel["title"])
                        continue
                    match = PANEL.match(target_["query"])
                    if match is None:
                        continue
                    check_panel(influxdb, match, start_ms, end_ms, width, variables, checked,
                                panel["title"])
    print(f"bins of {width} s: {checked}")
    assert checked["rate"] >= 3 and checked["ratio"] >= 3 and checked["percentile"] >= 2 \
        and checked["heatmap"] >= 3 and checked["job percentile"] >= 1, checked
    if width >= 3600:
        assert checked["roll-up percentile"] >= 2, checked


# The innermost statement of a percentile panel (grafana/percentile_sql.py): the bin's sums.
PERCENTILES_OF_BIN = re.compile(
    r'FROM (?P<source>\S*"(?:latency|job)_buckets") WHERE (?P<where>.+?) AND '
    r'(?P<tier>time [<>]=? now\(\) - \d+d(?: AND time > now\(\) - \d+d)?) '
    r'GROUP BY time\(\$__interval\)(?:, "(?P<tag>\w+)")? fill\(0\)\)')
QUANTILE_COLUMN = re.compile(r'AS "p(\d+)"')


def check_percentiles(influxdb, query, match, start_ms, end_ms, width, variables, checked,
                      title) -> None:
    """A percentile panel's every bin against the exact percentile of the bin's requests,
    from the bucket rows it reads. The roll-up tiers are read without their age limit (the
    fixture's roll-ups are of this hour and day), at hour and day bins; that their bucket
    rows are the raw ones summed is the roll-up tests' part."""
    source, tag = match.group("source"), match.group("tag")
    raw = '"."' not in source  # (a roll-up tier names its retention policy)
    if not raw:
        if width < (86400 if "daily" in source else 3600):
            return
        query = without_age_limit(query)
        start_ms = min(start_ms, end_ms - 2 * 86_400_000)  # (today's row starts at 00:00)
    shown = {}
    for series in influxdb.query(fixed_range(query, start_ms, end_ms, width, variables),
                                 db="grafana"):
        key = (series.get("tags", {}).get(tag, ""),) if tag else ()
        for row in series["values"]:
            shown[(key, row[0])] = dict(zip(series["columns"], row, strict=True))
    where = fixed_range(match.group("where"), start_ms, end_ms, width, variables)
    if not shown:  # nothing drawn: only where the rows hold nothing (a service without jobs)
        assert not binned(influxdb, source, where.replace(f" AND {ALL_ROW_SQL}", ""),
                          [], width), (title, source)
        return
    for (key, start), values in shown.items():
        for column in QUANTILE_COLUMN.findall(query):
            truth, width_ms = true_percentile(influxdb, where, tag, key, start, width,
                                              int(column) / 100, source)
            assert truth is not None, (title, key, start)  # a row only for bins with requests
            got = values[f"p{column}"]
            assert abs(got - truth) <= 1e-6 * width_ms + 1e-9, (title, key, start, got, truth)
            checked["percentile" if raw else "roll-up percentile"] += 1
            checked["job percentile"] += "job_buckets" in source


# A rate panel (grafana/build.py ``rate``): per series, summed counts over summed interval_s.
RATE_OF_BIN = re.compile(
    r'SELECT (?P<outer>.+?) FROM \(SELECT (?P<inner>.+?) FROM (?P<source>"\w+") WHERE '
    r'(?P<where>.+?) GROUP BY time\(\$__interval\), \* fill\(none\)\) WHERE \$timeFilter '
    r'GROUP BY time\(\$__interval\), (?P<group>.+?) fill\(none\)$')
RATE_COLUMN = re.compile(r'sum\("(\w+)"\) \* 60 / sum\("interval_s"\) AS "([^"]+)"')


def check_rates(influxdb, match, start_ms, end_ms, width, variables, checked, title) -> None:
    """A rate panel's every bin against the raw rows: each series' requests over the time
    its rows cover, summed over the group's series (exact); and, in bins of a minute or more
    inside the range whose series were scraped all through them, against the counts over
    the bin's minutes (within 2 %: scrapes are not exactly a second apart)."""
    query = fixed_range(match.group(0), start_ms, end_ms, width, variables)
    tags = re.findall(r'"(\w+)"', match.group("group"))
    shown = {}
    for series in influxdb.query(query, db="grafana"):
        key = tuple(series.get("tags", {}).get(t, "") for t in tags)
        for row in series["values"]:
            shown[(key, row[0])] = dict(zip(series["columns"], row, strict=True))
    where = fixed_range(match.group("where"), start_ms, end_ms, width, variables)
    raw = binned(influxdb, match.group("source"), where, [], width)
    for (_, start), records in raw.items():
        for field, column in RATE_COLUMN.findall(match.group("inner")):
            per_series: dict = {}
            for r in records:
                if r.get(field) is None or r.get("interval_s") is None:
                    continue
                series_key = tuple(sorted((k, v) for k, v in r.items() if isinstance(v, str)))
                count, seconds = per_series.get(series_key, (0.0, 0.0))
                per_series[series_key] = (count + r[field], seconds + r["interval_s"])
            truth: dict = {}
            counts: dict = {}
            whole: dict = {}  # every series of the group scraped through the whole bin
            for series_key, (count, seconds) in per_series.items():
                key = tuple(dict(series_key).get(t, "") for t in tags)
                truth[key] = truth.get(key, 0.0) + count * 60 / seconds
                counts[key] = counts.get(key, 0.0) + count
                whole[key] = whole.get(key, True) and seconds >= 0.98 * width
            for key, value in truth.items():
                got = shown.get((key, start), {}).get(column)
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (title, key, start)
                inside = start_ms <= start and start + width * 1000 <= end_ms
                if width >= 60 and inside and whole[key] and value > 0:
                    assert got == pytest.approx(counts[key] * 60 / width, rel=0.02), (
                        title, key, start)
                    checked["rate of a whole bin"] += 1
                checked["rate"] += 1


def check_panel(influxdb, match, start_ms, end_ms, width, variables, checked, title) -> None:
    query = fixed_range(match.group(0), start_ms, end_ms, width, variables)
    shown = {}
    tag = match.group("tag")
    for series in influxdb.query(query, db="grafana"):
        key = (series.get("tags", {}).get(tag, ""),) if tag else ()
        for row in series["values"]:
            shown[(key, row[0])] = dict(zip(series["columns"], row, strict=True))
    where = fixed_range(match.group("where"), start_ms, end_ms, width, variables)
    source = match.group("source")
    raw = binned(influxdb, source, where, [tag] if tag else [], width)
    items = [i.strip() for i in match.group("select").split(", ")]
    for item in items:
        expression, _, alias = item.partition(" AS ")
        column = alias.strip('"') if alias else next(c for c in next(iter(shown.values()), {})
                                                      if c != "time") if shown else None
        for (key, start), values in shown.items():
            got = values.get(column)
            rows = raw.get((key, start), [])
            if got is None or not rows:
                continue
            if expression == "sum(/^le_/)":  # the heatmap: one column per bucket
                for name, value in values.items():
                    if name.startswith("sum_le_"):
                        truth = sum(r.get(name.removeprefix("sum_")) or 0.0 for r in rows)
                        assert value == pytest.approx(truth, rel=1e-9, abs=1e-9), (
                            title, name, start)
                        checked["heatmap"] += 1
            elif (rate := RATE.fullmatch(expression)) is not None:
                truth = sum(r.get(rate.group(1)) or 0 for r in rows) * 60 / width
                assert got == pytest.approx(truth, rel=0.01, abs=1e-9), (title, key, start)
                checked["rate"] += 1
            elif (ratio := RATIO.fullmatch(expression)) is not None:
                total = sum(r.get(ratio.group(2)) or 0 for r in rows)
                if total == 0:  # no requests in the bin: InfluxQL divides by zero as 0
                    assert got == 0, (title, key, start)
                    continue
                truth = 100 * sum(r.get(ratio.group(1)) or 0 for r in rows) / total
                assert got == pytest.approx(truth, rel=1e-9), (title, key, start)
                checked["ratio"] += 1
            elif (pct := PERCENTILE.fullmatch(expression)) is not None:
                truth, width_ms = true_percentile(influxdb, where, tag, key, start, width,
                                                  int(pct.group(1)) / 100)
                if truth is not None:
                    assert got >= truth - width_ms - 1e-9, (title, key, start, got, truth)
                    checked["percentile"] += 1
            elif (count := COUNT.fullmatch(expression)) is not None:
                truth = sum(r.get(count.group(1)) or 0 for r in rows)
                assert got == pytest.approx(truth, rel=0.01), (title, key, start)
                checked["count"] += 1


def true_percentile(influxdb, where, tag, key, start, width, q, source='"latency_buckets"'):
    """The bin's exact percentile from the bucket rows of ``source`` (the raw ones unless
    told; all endpoints for a service-wide row), and the width of the bucket it falls in."""
    from promflux.bridge.analyze.quantile import normalize, quantile

    bucket_where = where.replace(f" AND {ALL_ROW_SQL}", "").replace(f"{ALL_ROW_SQL} AND ", "")
    rows = binned(influxdb, source, bucket_where, [tag] if tag else [], width)
    own: dict[float, float] = {}  # each bucket's own requests in the bin, summed
    for (tags, bin_start), records in rows.items():
        if bin_start == start and (not tag or tags[0] == key[0]):
            for record in records:
                for name, value in record.items():
                    if name.startswith("le_") and value is not None:
                        own[float(name[3:])] = own.get(float(name[3:]), 0.0) + value
    summed, total = {}, 0.0
    for le in sorted(own):
        total += own[le]
        summed[le] = total
    summed[float("inf")] = total
    if not summed or summed.get(float("inf"), 0) <= 0:
        return None, 0.0
    value = quantile(q, normalize(summed.items()))
    if value is None:
        return None, 0.0
    bounds = sorted(b for b in summed if b != float("inf"))
    return value * 1000, bucket_width_ms(bounds, value * 1000)


ALL_ROW_SQL = "\"endpoint\" = '_all'"


FORBIDDEN = [
    (re.compile(r'(?:sum|mean)\("\w+_per_minute"\)'),
     "a per-minute rate summed or averaged (rates are summed counts over the bin's minutes)"),
    (re.compile(r'(?:sum|mean|median)\("p\d+_ms"\)'), "a percentile summed or averaged"),
    (re.compile(r'(?:sum|mean)\("\w*rate_percent"\)'), "a ratio summed or averaged"),
    (re.compile(r'(?:sum|mean|median)\("\w*_change_\w*"\)'),
     "a change (a ratio of two periods) summed or averaged"),
]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_no_panel_aggregates_against_the_contract(path):
    broken = []
    for panel in json.loads(path.read_text())["panels"]:
        for target_ in panel.get("targets", []):
            for pattern, why in FORBIDDEN:
                if pattern.search(target_["query"]):
                    broken.append(f'{panel["title"]}: {why}: {target_["query"]}')
    assert not broken, "\n".join(broken)
