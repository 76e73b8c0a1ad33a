"""The errors a new operator meets first, each one line that says what happened and what to
do: InfluxDB down, a server that is not InfluxDB, wrong credentials or database, a target
URL that is not a metrics page, a busy port, the bridge's extra missing, a secret file
that cannot be read. Real servers on loopback throughout."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from promflux.bridge.config import ScrapeConfig, Target
from promflux.bridge.ingest.loop import ScrapeMetrics, TargetScraper
from promflux.bridge.store.influx import InfluxClient, InfluxError

from .conftest import ROOT, free_port
from .test_bridge_outside_answers import serve


def one_line(text: str) -> str:
    assert "\n" not in text.strip() and "Traceback" not in text, text
    assert len(text) < 400, text
    return text


def query_error(url: str, database: str = "x", **auth: str) -> str:
    async def go() -> str:
        client = InfluxClient(url, database, **auth)
        try:
            await client.query("SHOW DATABASES")
        except InfluxError as exc:
            return str(exc)
        finally:
            await client.close()
        raise AssertionError("no error")

    return one_line(asyncio.run(go()))


def test_influxdb_down():
    url = f"http://127.0.0.1:{free_port()}"
    assert query_error(url) == (f"cannot connect to InfluxDB at {url}: connection refused "
                                "(is influxd running and listening there?)")


def test_a_server_that_is_not_influxdb():
    async def go() -> str:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text="<html>welcome</html>", content_type="text/html")

        runner, url = await serve(page)
        try:
            client = InfluxClient(url, "x")
            try:
                await client.query("SHOW DATABASES")
            except InfluxError as exc:
                return f"{url} {exc}"
            finally:
                await client.close()
        finally:
            await runner.cleanup()
        raise AssertionError("no error")

    url, _, message = asyncio.run(go()).partition(" ")
    assert one_line(message) == (
        f"{url} answered HTTP 200 (text/html; charset=utf-8) but not with InfluxDB's JSON: "
        "is influxdb.url an InfluxDB 1.x HTTP API (usually port 8086)?")


def test_wrong_credentials_and_a_missing_database():
    from .influx import InfluxServer

    server = InfluxServer(auth=True)
    try:
        refused = query_error(server.url, username="admin", password="wrong")
        assert refused.startswith("InfluxDB refused the credentials (HTTP 401): check "
                                  "influxdb.username and influxdb.password")

        async def write() -> str:
            client = InfluxClient(server.url, "nowhere", username="admin",
                                  password="adm1n-pw")
            try:
                await client.write(b"m v=1\n")
            except InfluxError as exc:
                return str(exc)
            finally:
                await client.close()
            raise AssertionError("no error")

        missing = one_line(asyncio.run(write()))
    finally:
        server.close()
    assert missing.startswith("write failed with 404: database not found")
    assert missing.endswith("(the bridge creates it at start-up unless "
                            "influxdb.manage_schema is false)")


@pytest.mark.parametrize("body, why", [
    ("<!DOCTYPE html><html><body>Sign in</body></html>", "HTML or XML"),
    ('{"status": "ok"}', "JSON")])
def test_a_target_url_that_is_not_a_metrics_page(body, why):
    async def go() -> str:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text=body)

        runner, url = await serve(page)
        try:
            async def sink(*args: object) -> None:
                pass

            scraper = TargetScraper(
                Target.model_validate({"service": "svc", "url": url + "/"}),
                ScrapeConfig(), ScrapeMetrics(CollectorRegistry()), sink)
            async with aiohttp.ClientSession() as session:
                await scraper.scrape_once(session)
            return scraper.status.last_error
        finally:
            await runner.cleanup()

    error = one_line(asyncio.run(go()))
    assert error.startswith(f"the answer is {why}, not a metrics page (is the URL the "
                            "/metrics path?): line 1: ")


def test_a_missing_token_file_fails_the_scrape_in_one_line(tmp_path):
    async def go() -> str:
        async def sink(*args: object) -> None:
            pass

        scraper = TargetScraper(
            Target.model_validate({"service": "svc", "url": "http://127.0.0.1:9/metrics",
                                   "bearer_token": {"file": str(tmp_path / "gone")}}),
            ScrapeConfig(), ScrapeMetrics(CollectorRegistry()), sink)
        async with aiohttp.ClientSession() as session:
            await scraper.scrape_once(session)
        return scraper.status.last_error

    assert one_line(asyncio.run(go())) == (
        f"cannot read secret file {tmp_path / 'gone'}: No such file or directory")


def bridge_command(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    run = f"{code or 'pass'}; from promflux.bridge.__main__ import main; raise SystemExit(main())"
    return subprocess.run([sys.executable, "-c", run, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def config_file(tmp_path, extra: str = "", listen: str = "") -> str:
    path = tmp_path / "bridge.yml"
    path.write_text(f"influxdb:\n  url: http://127.0.0.1:{free_port()}\n"
                    f"buffer:\n  path: {tmp_path / 'buffer'}\n"
                    + (f"listen: {listen}\n" if listen else "")
                    + "targets:\n  - service: svc\n    url: http://127.0.0.1:9/metrics\n"
                    + extra)
    return str(path)


def test_a_busy_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = bridge_command("--config", config_file(tmp_path, listen=f"127.0.0.1:{port}"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert one_line(done.stderr.strip().splitlines()[-1]) == (
        f"promflux-bridge: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another process listens there: stop it, or set listen: to a free port)")


def test_the_bridge_extra_missing(tmp_path):
    # As in an environment with `pip install promflux` alone: no PyYAML.
    done = bridge_command("--config", config_file(tmp_path),
                          code="import sys; sys.modules['yaml'] = None")
    assert done.returncode == 2
    assert one_line(done.stderr.strip()) == (
        "promflux-bridge: the bridge's dependencies are not installed (no module yaml): "
        "pip install 'promflux[bridge]'")


def test_check_config_reads_every_secret(tmp_path):
    extra = (f"    bearer_token: {{file: {tmp_path / 'token'}}}\n"
             "webhooks:\n  - url: http://127.0.0.1:9/hook\n"
             "    bearer_token: {env: PROMFLUX_TEST_UNSET_VARIABLE}\n")
    path = config_file(tmp_path, extra)
    done = bridge_command("--config", path, "--check-config")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"promflux-bridge: {path}: targets.0.bearer_token: cannot read secret file "
        f"{tmp_path / 'token'}: No such file or directory",
        f"promflux-bridge: {path}: webhooks.0.bearer_token: environment variable "
        "PROMFLUX_TEST_UNSET_VARIABLE is not set"]
    (tmp_path / "token").write_text("t0ken\n")
    (tmp_path / "token").chmod(0o600)
    fixed = bridge_command("--config", path, "--check-config",
                           code="import os; os.environ['PROMFLUX_TEST_UNSET_VARIABLE'] = 'x'")
    assert fixed.returncode == 0, fixed.stderr
