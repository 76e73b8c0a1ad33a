"""The promflux-browser npm package in headless chromium: a React app bundled by esbuild
from npm packages (react, react-dom, axios), served from one origin, calling a real FastAPI
service on another through fetch and axios. Every call's timing reaches the service's
/metrics and, through a real bridge, InfluxDB; an origin not allowed gets nothing in."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .browser import browser  # noqa: F401
from .conftest import Server, free_port, scrape, scraped_after, uvicorn_server, wait_for

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "browser_app"
BEACON = "/metrics/client-timings"
COUNT = "http_client_request_duration_seconds_count"
sys.path.insert(0, str(ROOT / "browser"))
from build_script import SCRIPT, build  # noqa: E402


@pytest.fixture(scope="module")
def bundle() -> Path:
    """npm ci from the lock file, then the esbuild bundle (what the app's developers run)."""
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=APP, check=True,
                   timeout=600)
    subprocess.run(["npm", "run", "--silent", "build"], cwd=APP, check=True, timeout=120)
    return APP


def static_server(directory: Path) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                   "--directory", str(directory)], port, ready_path="/index.html")


def test_the_served_script_is_the_package_code():
    assert SCRIPT.read_text() == build()  # regenerate with: python browser/build_script.py


def test_react_app_on_another_origin_times_fetch_and_axios(bundle, browser,  # noqa: F811
                                                            influxdb, tmp_path):
    dashboard, elsewhere = static_server(bundle), static_server(bundle)
    api = uvicorn_server("tests.apps.fastapi_app:app",
                         env={"BROWSER_ORIGINS": dashboard.url})
    bridge_port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influxdb.url}\n  database: browser\n"
        f"scrape:\n  interval: 1s\n  timeout: 1s\nbuffer:\n  path: {tmp_path}/buf\n"
        f"listen: 127.0.0.1:{bridge_port}\n"
        f"targets:\n  - service: admin-api\n    url: {api.url}/metrics\n")
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)],
                    bridge_port, ready_path="/healthz")
    try:
        # The preflight: answered for the dashboard's origin, and only for it.
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}
        ok = httpx.options(api.url + BEACON, headers={**preflight, "Origin": dashboard.url})
        assert ok.status_code == 204
        assert ok.headers["Access-Control-Allow-Origin"] == dashboard.url
        refused = httpx.options(api.url + BEACON, headers={**preflight,
                                                           "Origin": elsewhere.url})
        assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers

        # The bridge's first scrape is its baseline: the page's calls must come after it.
        scraped_after(bridge.url, 0)
        page = browser.new_page()
        page.goto(f"{dashboard.url}/index.html?api={api.url}")
        page.wait_for_selector("#status:text('done')", timeout=30_000)
        samples = wait_for(lambda: scrape(api.url),
                           lambda s: s.get(COUNT, route="/items/{item_id}", method="GET",
                                           status="200") >= 20)
        assert samples.value(COUNT, route="/items/{item_id}", method="GET", status="200") == 20
        assert samples.value(COUNT, route="/items", method="POST", status="201") == 1
        assert samples.value(COUNT, route="/api/v1/users/{user_id}", method="GET",
                             status="200") == 1
        # Calls made just before the page goes away leave in a beacon (text/plain).
        page.evaluate(f"""async () => {{
            window.__promflux.stop();  // no interval flush: only the beacon can send them
            for (let i = 0; i < 3; i++) await fetch("{api.url}/items/" + (200 + i));
        }}""")
        page.goto("about:blank")  # pagehide
        samples = wait_for(lambda: scrape(api.url),
                           lambda s: s.get(COUNT, route="/items/{item_id}", method="GET",
                                           status="200") >= 23)
        assert samples.value(COUNT, route="/items/{item_id}", method="GET", status="200") == 23
        page.close()

        # A page of another origin: its calls fail CORS, its timings are refused.
        other = browser.new_page()
        other.goto(f"{elsewhere.url}/index.html?api={api.url}")
        # Its first call fails CORS (a TypeError in fetch): the app reports it and stops.
        other.wait_for_selector("#status:text('failed')", timeout=30_000)
        other.goto("about:blank")
        other.close()
        after = scrape(api.url)
        assert after.value(COUNT, route="/items/{item_id}", method="GET", status="200") == 23
        assert not after.find(COUNT, status="0")

        scraped_after(bridge.url, time.time())

        def stored() -> float:
            rows = influxdb.query(
                'SELECT sum("duration_count") FROM "client_requests" WHERE '
                '"endpoint" = \'/items/{item_id}\' AND "status" = \'200\'', db="browser")
            return rows[0]["values"][0][1] if rows else 0.0

        assert wait_for(stored, lambda n: n >= 23, timeout=30) == 23
        # The status page's table of browser-timed calls: the same count.
        page_html = httpx.get(bridge.url + "/?part=main").text
        assert ('<tr data-route="/items/{item_id}" data-label="GET"><td>/items/{item_id}</td>'
                "<td>GET</td><td>23</td>") in page_html
    finally:
        bridge.stop()
        api.stop()
        dashboard.stop()
        elsewhere.stop()
