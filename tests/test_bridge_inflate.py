"""The zlib that inflates the targets' gzip answers: zlib-ng's where installed, the same
pages either way, the body limit held on the inflated size."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import zlib
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import compression_utils, web
from promflux.bridge.config import Target
from promflux.bridge.inflate import fastest_zlib, use_fastest_zlib
from promflux.bridge.ingest.fetch import ScrapeError, fetch

from .local_http import local_server

zlib_ng = pytest.importorskip("zlib_ng.zlib_ng")

PAGE = "".join(f'http_requests_total{{endpoint="/api/things{i}",method="GET"}} {i * 7.5}\n'
               for i in range(5_000))


@pytest.fixture
def restored() -> Iterator[None]:
    """aiohttp's zlib is the process's: put Python's own back after the test."""
    yield
    aiohttp.set_zlib_backend(zlib)


async def scrape_gzip(page: str, limit: int) -> str:
    """The bridge's fetch of ``page`` served gzip by a real aiohttp server."""
    async def metrics(request: web.Request) -> web.Response:
        assert "gzip" in request.headers.get("Accept-Encoding", "")
        return web.Response(body=gzip.compress(page.encode(), 1), headers={
            "Content-Encoding": "gzip", "Content-Type": "text/plain; version=0.0.4"})

    async with local_server("/metrics", metrics) as url, aiohttp.ClientSession() as session:
        target = Target(service="api", url=f"{url}/metrics")
        return (await fetch(session, target, 10, limit)).text


@pytest.mark.usefixtures("restored")
def test_zlib_ng_inflates_where_installed_and_the_pages_are_the_same():
    assert use_fastest_zlib().startswith("zlib-ng ")
    assert compression_utils.ZLibBackend.name == zlib_ng.__name__
    assert asyncio.run(scrape_gzip(PAGE, 10**7)) == PAGE
    aiohttp.set_zlib_backend(zlib)
    assert asyncio.run(scrape_gzip(PAGE, 10**7)) == PAGE


@pytest.mark.usefixtures("restored")
def test_the_body_limit_holds_on_the_inflated_size_with_zlib_ng():
    """A small gzip answer that inflates past the limit is refused (a zip bomb costs the
    limit, not the page)."""
    use_fastest_zlib()
    bomb = "x" * 2_000_000 + "\n"
    assert len(gzip.compress(bomb.encode(), 1)) < 20_000
    with pytest.raises(ScrapeError, match="over the limit of 100000"):
        asyncio.run(scrape_gzip(bomb, 100_000))


def test_python_zlib_when_asked_and_version_says_which(monkeypatch):
    def version(**env: str) -> str:
        return subprocess.run([sys.executable, "-m", "promflux.bridge", "--version"],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, **env}).stdout

    assert "inflate: zlib (PROMFLUX_ZLIB=zlib)" in version(PROMFLUX_ZLIB="zlib")
    assert "inflate: zlib-ng " in version()
    monkeypatch.setenv("PROMFLUX_ZLIB", "zlib")
    assert fastest_zlib() == (None, "zlib (PROMFLUX_ZLIB=zlib)")
    assert use_fastest_zlib() == "zlib (PROMFLUX_ZLIB=zlib)"
    assert compression_utils.ZLibBackend.name == "zlib"
