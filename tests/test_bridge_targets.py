"""Per-target settings: credentials (never logged) and body and sample limits."""

from __future__ import annotations

import sys

import httpx
import pytest

from .conftest import Server, aiohttp_server, free_port, scraped_after, uvicorn_server, wait_for


def bridge_with(tmp_path, influxdb, targets_yaml: str, scrape_extra: str = "",
                env: dict | None = None) -> Server:
    port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influxdb.url}\n  database: targets\n"
        f"scrape:\n  interval: 1s\n  timeout: 1s\n{scrape_extra}"
        f"buffer:\n  path: {tmp_path / 'buffer'}\nlisten: 127.0.0.1:{port}\n"
        f"log_level: debug\ntargets:\n{targets_yaml}")
    return Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                  ready_path="/healthz", env=env)


def status(bridge: Server) -> dict:
    """/api/targets once every target has finished a scrape."""
    return scraped_after(bridge.url, 0)


def test_bearer_token_from_env_and_file_never_logged(tmp_path, influxdb):
    api = uvicorn_server("tests.apps.fastapi_app:app", env={"METRICS_TOKEN": "tok-93847"})
    token_file = tmp_path / "token"
    token_file.write_text("tok-93847\n")
    targets = (f"  - service: by-env\n    url: {api.url}/metrics\n"
               f"    bearer_token: {{env: SCRAPE_TOKEN}}\n"
               f"  - service: by-file\n    url: {api.url}/metrics\n"
               f"    bearer_token: {{file: {token_file}}}\n"
               f"  - service: no-token\n    url: {api.url}/metrics\n")
    bridge = bridge_with(tmp_path, influxdb, targets, env={"SCRAPE_TOKEN": "tok-93847"})
    try:
        seen = status(bridge)
        assert seen["by-env"]["up"] and seen["by-file"]["up"]
        assert not seen["no-token"]["up"] and "HTTP 401" in seen["no-token"]["last_error"]
    finally:
        bridge.stop()
        api.stop()
    assert "tok-93847" not in bridge.output()


def test_body_and_sample_limits_fail_the_scrape_with_a_clear_error(tmp_path, influxdb):
    big = aiohttp_server("tests.apps.bad_targets:big")
    targets = f"  - service: big\n    url: {big.url}/metrics\n"
    for extra, expected in (("  max_body_bytes: 10KB\n", "over the limit of 10000"),
                            ("  max_samples: 1000\n", "more than 1000 samples")):
        bridge = bridge_with(tmp_path, influxdb, targets, extra)
        try:
            seen = status(bridge)["big"]
            assert not seen["up"] and expected in seen["last_error"], seen
        finally:
            bridge.stop()
    big.stop()


def test_influxdb_credentials_from_the_environment_are_used_and_never_logged(tmp_path):
    from .influx import InfluxServer

    influx = InfluxServer(auth=True)
    # Retention policies and continuous queries need an admin user in InfluxDB 1.x.
    influx.query("CREATE USER writer WITH PASSWORD 'wr1ter-secret-77' WITH ALL PRIVILEGES")
    api = uvicorn_server("tests.apps.fastapi_app:app")
    bridge = bridge_with(tmp_path, influx, f"  - service: api\n    url: {api.url}/metrics\n",
                         env={"PROMFLUX_INFLUXDB_USERNAME": "writer",
                              "PROMFLUX_INFLUXDB_PASSWORD": "wr1ter-secret-77"})
    try:
        def health_rows() -> list:
            try:
                return influx.query('SELECT count("up") FROM "raw_7d"."scrape_health"',
                                    db="targets")
            except RuntimeError:  # the bridge has not created the database yet
                return []

        rows = wait_for(health_rows, bool, timeout=30)
        assert rows and rows[0]["values"][0][1] >= 1
        assert httpx.get(bridge.url + "/healthz").json()["schema_ready"] is True
    finally:
        bridge.stop()
        api.stop()
        influx.close()
    assert "wr1ter-secret-77" not in bridge.output()


def make_certificates(directory) -> tuple[str, str, str]:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl)."""
    import subprocess

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=promflux test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
        "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return (str(directory / "ca.pem"), str(directory / "server.pem"),
            str(directory / "server.key"))


def test_tls_targets_verify_against_a_custom_ca(tmp_path, influxdb):
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    ingest = Server([sys.executable, "-m", "tests.apps.tls_server", str(port), cert, key],
                    port, scheme="https")
    url = f"{ingest.url}/metrics"
    targets = (f"  - service: custom-ca\n    url: {url}\n    tls: {{ca_file: {ca}}}\n"
               f"  - service: default-trust\n    url: {url}\n"
               f"  - service: no-verify\n    url: {url}\n    tls: {{verify: false}}\n")
    bridge = bridge_with(tmp_path, influxdb, targets)
    try:
        seen = status(bridge)
        assert seen["custom-ca"]["up"] and seen["no-verify"]["up"]
        assert not seen["default-trust"]["up"]
        assert "certificate" in seen["default-trust"]["last_error"].lower()
    finally:
        bridge.stop()
        ingest.stop()


def test_credentials_in_urls_are_never_shown_logged_or_stored(tmp_path, influxdb):
    import subprocess

    api = uvicorn_server("tests.apps.fastapi_app:app")
    influx_url = influxdb.url.replace("http://", "http://iuser:ipass-777@")
    targets = (f"  - service: api\n    url: {api.url.replace('http://', 'http://tu:tpass-777@')}"
               f"/metrics\n"
               f"  - service: dead\n    url: http://du:dpass-777@127.0.0.1:9/metrics"
               f"?module=m&access_token=qpass-777\n")
    port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influx_url}\n  database: redact\n"
        f"scrape:\n  interval: 1s\n  timeout: 1s\nbuffer:\n  path: {tmp_path / 'buffer'}\n"
        f"listen: 127.0.0.1:{port}\nlog_level: debug\n"
        f"webhooks:\n  - url: http://wu:wpass-777@127.0.0.1:9/hook\n    retries: 0\n"
        f"  - url: http://127.0.0.1:9/hook2?key=kpass-777\n    retries: 0\n"
        f"targets:\n{targets}")
    checked = subprocess.run([sys.executable, "-m", "promflux.bridge", "--config", str(config),
                              "--check-config"], capture_output=True, text=True, check=True)
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                    ready_path="/healthz")
    try:
        seen = scraped_after(bridge.url, 0)
        assert seen["api"]["up"] and not seen["dead"]["up"]
        rows = wait_for(lambda: influxdb.query(
            'SHOW TAG VALUES FROM "raw_7d"."scrape_health" WITH KEY = "url"', db="redact")
            if influxdb.query("SHOW DATABASES")[0]["values"].count(["redact"]) else [],
            lambda r: r and len(r[0]["values"]) == 2)
        shown = [checked.stdout, httpx.get(bridge.url + "/api/targets").text,
                 httpx.get(bridge.url + "/").text, httpx.get(bridge.url + "/metrics").text,
                 httpx.get(bridge.url + "/api/status").text, str(rows),
                 str(influxdb.query('SELECT * FROM "raw_7d"."scrape_health"', db="redact"))]
        assert "***@127.0.0.1" in shown[1] and "du:" not in shown[1]
        assert "module=m&access_token=***" in shown[1]  # the rest of the query is kept
    finally:
        bridge.stop()
        api.stop()
    shown.append(bridge.output())
    for text in shown:
        assert "pass-777" not in text


@pytest.mark.parametrize(("text", "shown"), [
    ("http://h:1/metrics?token=abc&module=x", "http://h:1/metrics?token=***&module=x"),
    ("cannot reach http://u:p@h/m?api_key=Z#f", "cannot reach http://***@h/m?api_key=***#f"),
    ("http://h/x?X-Amz-Signature=abc;X-Amz-Credential=q&a=1",
     "http://h/x?X-Amz-Signature=***;X-Amz-Credential=***&a=1"),
    ("http://h/x?PASSWORD=p&sessionId=s", "http://h/x?PASSWORD=***&sessionId=***"),
    ("http://h/metrics?module=http_2xx&target=a", "http://h/metrics?module=http_2xx&target=a"),
    ("no url here: a=b", "no url here: a=b"),
])
def test_secrets_in_query_strings_are_hidden_and_the_rest_kept(text, shown):
    from promflux.bridge.redact import redact

    assert redact(text) == shown


def test_tls_contexts_are_built_once_per_setting(tmp_path):
    from promflux.bridge.config import TLS
    from promflux.bridge.tls import ssl_context

    ca, _, _ = make_certificates(tmp_path)
    first = ssl_context(TLS(ca_file=ca))
    assert first is ssl_context(TLS(ca_file=ca))  # the next scrape: the same context
    assert ssl_context(TLS(verify=False)) is False and ssl_context(TLS()) is True


def test_secret_files_are_read_once_a_minute_not_every_scrape(tmp_path):
    from promflux.bridge.config import Target
    from promflux.bridge.ingest.fetch import AuthCache

    secret = tmp_path / "token"
    secret.write_text("one\n")
    secret.chmod(0o600)
    now = [0.0]
    cache = AuthCache(Target(service="a", url="http://127.0.0.1:1/metrics",
                             bearer_token={"file": str(secret)}), clock=lambda: now[0])
    assert cache.headers()["Authorization"] == "Bearer one"
    secret.write_text("two\n")  # rotated
    now[0] = 59.0
    assert cache.headers()["Authorization"] == "Bearer one"  # not re-read per scrape
    now[0] = 60.0
    assert cache.headers()["Authorization"] == "Bearer two"  # picked up within a minute
