"""Bridge configuration: defaults, environment overrides and clear errors."""

from __future__ import annotations

import pytest
from promflux.bridge.config import ConfigError, load

GOOD = """
influxdb:
  url: http://127.0.0.1:8086
  database: performance
scrape:
  interval: 15s
  timeout: 5s
targets:
  - service: admin-api
    url: http://127.0.0.1:8001/metrics
"""


def write(tmp_path, text):
    path = tmp_path / "bridge.yml"
    path.write_text(text)
    return path


def test_the_documented_example_loads_with_defaults(tmp_path):
    config = load(write(tmp_path, GOOD), environ={})
    assert config.scrape.interval == 15 and config.scrape.timeout == 5
    assert config.targets[0].service == "admin-api" and config.targets[0].preset == "promflux"
    assert config.retention.raw == 7 * 86400 and config.retention.daily == 90 * 86400
    assert config.influxdb.url == "http://127.0.0.1:8086"


def test_environment_overrides_influxdb_settings(tmp_path):
    config = load(write(tmp_path, GOOD), environ={
        "PROMFLUX_INFLUXDB_URL": "http://influxdb:8086/",
        "PROMFLUX_INFLUXDB_DATABASE": "perf2",
        "PROMFLUX_INFLUXDB_USERNAME": "writer",
        "PROMFLUX_INFLUXDB_PASSWORD": "pw"})
    assert config.influxdb.url == "http://influxdb:8086"
    assert config.influxdb.database == "perf2" and config.influxdb.username == "writer"
    assert config.influxdb.password is not None
    assert "pw" not in repr(config)


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("interval: 15s", "interval: fast"), "scrape.interval"),
    (GOOD.replace("timeout: 5s", "timeout: 30s"), "timeout must not exceed"),
    (GOOD.replace("url: http://127.0.0.1:8001/metrics", "url: ftp://x"), "targets.0.url"),
    (GOOD + "    preset: nope\n", "unknown preset"),
    (GOOD.replace("targets:", "targetz:"), "targetz"),
    ("influxdb: [1, 2]\ntargets: []\n", "influxdb"),
    ("targets: [\n", "not valid YAML"),
    ("- a\n- b\n", "top level must be a mapping"),
    (GOOD + "    bearer_token: {env: A, file: /x}\n", "exactly one of"),
    (GOOD + "thresholds:\n  p95_ms: {warning: 800, critical: 400}\n",
     "p95_ms: critical must not be below warning"),
    (GOOD + "thresholds:\n  requests_per_minute: {warning: 1, critical: 10}\n",
     "requests_per_minute: critical must not be above warning"),
    (GOOD + "thresholds:\n  p95_ms: {warning: 500, critical: 900, for: soon}\n",
     "thresholds.p95_ms.for"),
    (GOOD + "thresholds:\n  latency: {warning: 1, critical: 2}\n", "thresholds.latency"),
    (GOOD + "webhooks:\n  - url: mailto:ops@example.org\n", "webhooks.0.url"),
    (GOOD + "webhooks:\n  - url: http://hook/x\n    retries: 99\n", "webhooks.0.retries"),
    (GOOD + "    active: maybe\n", "targets.0.active"),
    (GOOD + "thresholds:\n  window: 0s\n", "thresholds.window"),
    (GOOD + "thresholds:\n  alpha: 2\n", "thresholds.alpha"),
    (GOOD + "thresholds:\n  overrides:\n    - endpoint: /x\n      latency: off\n",
     "thresholds.overrides.0.latency"),
    (GOOD + "thresholds:\n  overrides:\n    - p95_ms: on\n", "thresholds.overrides.0.p95_ms"),
    (GOOD + "thresholds:\n  regression:\n    ratio: 0.5\n", "thresholds.regression.ratio"),
    (GOOD + "alertmanagers:\n  - url: am:9093\n", "alertmanagers.0.url"),
    (GOOD + "alertmanagers:\n  - url: http://am:9093\n    resend_interval: never\n",
     "alertmanagers.0.resend_interval"),
])
def test_errors_name_the_key_and_the_problem(tmp_path, text, expected):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text), environ={})
    assert expected in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.yml")


def test_environment_variables_in_values(tmp_path):
    text = GOOD.replace("http://127.0.0.1:8001/metrics",
                        "http://${API_HOST:-127.0.0.1}:${API_PORT}/metrics")
    text += "listen: ${LISTEN:-127.0.0.1:9108}\n"
    config = load(write(tmp_path, text), environ={"API_HOST": "api", "API_PORT": "8001"})
    assert config.targets[0].url == "http://api:8001/metrics"
    assert config.listen == "127.0.0.1:9108"
    # A value cannot smuggle in YAML structure: it stays one (here invalid) string.
    with pytest.raises(ConfigError, match=r"targets.0.url: .*must be an http"):
        load(write(tmp_path, text), environ={"API_PORT": "8001/metrics\nextra: 1"})
    with pytest.raises(ConfigError, match=r"targets.0.url: environment variable API_PORT"):
        load(write(tmp_path, text), environ={})


def test_threshold_settings_load(tmp_path):
    text = GOOD + ("    active: true\nthresholds:\n  p95_ms: {warning: 300, critical: 600, "
                   "for: 1m}\n  min_requests: 20\n  down_for: 30s\nwebhooks:\n"
                   "  - url: https://hooks.example/x\n    bearer_token: {env: HOOK}\n")
    config = load(write(tmp_path, text), environ={})
    p95 = config.thresholds.p95_ms
    assert (p95.warning, p95.critical, p95.for_) == (300, 600, 60)
    assert config.thresholds.error_rate_percent.warning == 5  # defaults kept
    assert config.thresholds.min_requests == 20 and config.thresholds.down_for == 30
    assert config.targets[0].active
    assert config.webhooks[0].retries == 5 and config.webhooks[0].bearer_token.env == "HOOK"


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    import time

    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    rows.append("targets: *i")  # 9^9 values from a few hundred bytes
    start = time.process_time()
    with pytest.raises(ConfigError, match="expands to more than"):
        load(write(tmp_path, "\n".join(rows) + "\n"), environ={})
    assert time.process_time() - start < 5


@pytest.mark.parametrize(("text", "reason"), [
    ("{" * 5000, "brackets nested more than 64 deep"),
    ("targets: " + "[" * 100 + "]" * 100 + "\n", "brackets nested more than 64 deep"),
    ("a: &a [*a]\n", "a YAML alias inside the value it names"),
    ("a: &a {b: *a}\n", "a YAML alias inside the value it names"),
    ("".join(" " * i + f"k{i}:\n" for i in range(1500)), "nested too deeply to read"),
    ("targets: []\n# " + "x" * (5 * 1024**2) + "\n", "over 4 MiB, too large"),
    ("targets: []\n# \xff\xfe\n", "not UTF-8 text"),
])
def test_a_hostile_file_is_refused_quickly_with_its_real_cause(tmp_path, text, reason):
    """Only ConfigError, whatever the file (never RecursionError or a traceback), naming
    the cause; in well under a second."""
    import time

    path = tmp_path / "bridge.yml"
    path.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text
                     else text.encode("latin-1"))
    start = time.process_time()
    with pytest.raises(ConfigError) as refused:
        load(path, environ={})
    assert reason in str(refused.value)
    assert "alias" not in str(refused.value) or "alias" in reason
    assert time.process_time() - start < 2


def test_quotes_and_brackets_in_ordinary_values_are_not_nesting(tmp_path):
    text = GOOD + "# don't [worry] about {this}\n"
    assert load(write(tmp_path, text), environ={}).targets


def test_variables_set_to_the_empty_string_are_set(tmp_path):
    text = GOOD.replace("database: performance", "database: perf${SUFFIX}") + \
        "listen: 127.0.0.1:${PORT:-9999}\n"
    config = load(write(tmp_path, text), environ={"SUFFIX": "", "PORT": ""})
    assert config.influxdb.database == "perf"  # ${SUFFIX}: its (empty) value
    assert config.listen == "127.0.0.1:9999"  # ${PORT:-9999}: empty takes the default
    with pytest.raises(ConfigError, match="SUFFIX is not set"):
        load(write(tmp_path, text), environ={})


@pytest.mark.parametrize("name", ["back\\slash", "a/b", 'q"uote', "new\nline", "x" * 256, ""])
def test_database_names_influxdb_refuses_are_refused_here(tmp_path, name):
    import json

    text = GOOD.replace("database: performance", f"database: {json.dumps(name)}")
    with pytest.raises(ConfigError, match="influxdb.database"):
        load(write(tmp_path, text), environ={})


@pytest.mark.parametrize("edit, where", [
    (("url: http://127.0.0.1:8001/metrics",
      "url: http://u:p@127.0.0.1:8001/metrics\n    bearer_token: {value: t}"), "targets.0"),
    (("url: http://127.0.0.1:8001/metrics",
      "url: http://u:p@127.0.0.1:8001/metrics\n    basic_auth: {username: u, password: "
      "{value: p}}"), "targets.0"),
    (("url: http://127.0.0.1:8086", "url: http://u:p@127.0.0.1:8086\n  username: u"),
     "influxdb"),
    (("targets:", "webhooks:\n  - url: http://u:p@127.0.0.1:9/hook\n    bearer_token: "
      "{value: t}\ntargets:"), "webhooks.0"),
])
def test_credentials_in_a_url_and_in_a_setting_are_refused_before_start(tmp_path, edit,
                                                                        where):
    with pytest.raises(ConfigError, match=f"{where}.*not both|{where}.*one of"):
        load(write(tmp_path, GOOD.replace(*edit)), environ={})


def test_a_world_readable_secret_file_is_warned_about(tmp_path, caplog):
    import logging

    from promflux.bridge.config import Secret

    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert Secret(file=secret).resolve() == "s3cret"
    assert "readable by every user" in caplog.text and "s3cret" not in caplog.text
    caplog.clear()
    quiet = tmp_path / "quiet"
    quiet.write_text("x")
    quiet.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        Secret(file=quiet).resolve()
    assert "readable by every user" not in caplog.text


def test_the_4xx_threshold_is_off_unless_given(tmp_path):
    from promflux.bridge.analyze.rule_book import thresholds_of

    assert "client_error_rate_percent" not in thresholds_of(load(write(tmp_path, GOOD),
                                                                 environ={}))
    text = GOOD + "thresholds:\n  client_error_rate_percent: {warning: 20, critical: 50}\n"
    limits = thresholds_of(load(write(tmp_path, text), environ={}))
    assert limits["client_error_rate_percent"].level(25.0) == "warning"
    with pytest.raises(ConfigError, match="critical must not be below"):
        load(write(tmp_path, text.replace("critical: 50", "critical: 5")), environ={})


def test_windows_overrides_and_regressions_from_the_config(tmp_path):
    from promflux.bridge.analyze.rule_book import rule_book

    text = GOOD + (
        "thresholds:\n  window: 2m\n  for: 30s\n  min_requests: 50\n"
        "  p95_ms: {warning: 400, critical: 800, resolve: 1m}\n"
        "  regression: {ratio: 2, for: 0s}\n"
        "  overrides:\n"
        "    - service: ingest*\n      endpoint: POST /ingest/*\n"
        "      p95_ms: {warning: 50, critical: 200}\n"
        "    - endpoint: /reports/*\n      p95_ms: off\n      p95_regression: false\n"
        "alertmanagers:\n  - url: http://127.0.0.1:9093/\n")
    config = load(write(tmp_path, text), environ={})
    book = rule_book(config)
    p95 = book.rule("api", "GET /items", "p95_ms")
    assert p95 is not None
    assert (p95.warning, p95.critical, p95.window_seconds, p95.for_seconds,
            p95.resolve_seconds, p95.min_requests) == (400, 800, 120, 30, 60, 50)
    errors = book.rule("api", "GET /items", "error_rate_percent")
    assert errors is not None and errors.resolve_seconds == 180  # the default
    ingest = book.rule("ingest-eu", "POST /ingest/batch", "p95_ms")
    assert ingest is not None and (ingest.warning, ingest.window_seconds) == (50, 120)
    assert book.rule("ingest-eu", "GET /health", "p95_ms").warning == 400  # type: ignore[union-attr]
    assert book.rule("api", "GET /reports/{id}", "p95_ms") is None
    assert book.rule("api", "GET /reports/{id}", "p95_regression") is None
    regression = book.rule("api", "GET /items", "p95_regression")
    assert regression is not None and (regression.ratio, regression.for_seconds) == (2, 0)
    assert config.alertmanagers[0].url == "http://127.0.0.1:9093"
    off = load(write(tmp_path, GOOD + "thresholds:\n  regression: {enabled: false}\n"),
               environ={})
    assert rule_book(off).rule("api", "GET /items", "p95_regression") is None


NAMES = ["perf\u2028x", "p\u200bx", "a\u00a0b", "a\u3000b", "x\u00adz", "x\u0378y", ".", "..",
         "perf\u00e9", "perf x", "perf.x", "a..b", "a'b", "a,b", "a=b", "\u6027\u80fd", " "]


def test_the_database_rule_is_influxdbs_own(tmp_path, influxdb):
    """Each name is tried on a real InfluxDB: --check-config accepts it exactly when
    InfluxDB creates the database and stores a point in it."""
    import json

    import httpx

    for name in NAMES:
        created = httpx.post(influxdb.url + "/query",
                             params={"q": f'CREATE DATABASE "{name}"'}).json()
        written = httpx.post(influxdb.url + "/write", params={"db": name},
                             content=b"m v=1\n").status_code
        influx_takes = "error" not in created["results"][0] and written == 204
        text = GOOD.replace("database: performance", f"database: {json.dumps(name)}")
        try:
            load(write(tmp_path, text), environ={})
            we_take = True
        except ConfigError as exc:
            assert "influxdb.database" in str(exc) and "printable" in str(exc)
            we_take = False
        assert we_take == influx_takes, (name, created, written)


def test_the_rule_book_reads_every_figure_an_override_can_set():
    from promflux.bridge.analyze.rule_book import OVERRIDABLE
    from promflux.bridge.config import Override

    assert set(OVERRIDABLE) == set(Override.model_fields) - {"service", "endpoint"}


def test_the_buffer_lives_in_a_state_directory_not_where_the_bridge_starts(tmp_path):
    from pathlib import Path

    from promflux.bridge.config import state_directory

    assert state_directory({"STATE_DIRECTORY": "/run/x:/run/y"}, uid=1000) == Path("/run/x")
    assert state_directory({}, uid=0) == Path("/var/lib/promflux")
    assert state_directory({"XDG_STATE_HOME": "/home/u/.st"}, uid=1000) == Path(
        "/home/u/.st/promflux")
    assert state_directory({}, uid=1000) == Path.home() / ".local" / "state" / "promflux"
    for text in ("", "buffer:\n  path: \n", "buffer:\n  path: ''\n"):
        config = load(write(tmp_path, GOOD + text), environ={})
        assert config.buffer.path == state_directory() / "buffer"
        assert config.buffer.path.is_absolute()
