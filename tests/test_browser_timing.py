"""promflux-fetch.js in headless chromium against real instrumented services."""

from __future__ import annotations

from .browser import browser  # noqa: F401
from .conftest import scrape, wait_for

NAME = "http_client_request_duration_seconds"


def run_page(browser, server, calls: str, routes: list[str]) -> None:  # noqa: F811
    page = browser.new_page()
    page.goto(server.url + "/health")  # any page of the service's origin
    page.add_script_tag(url="/metrics/promflux-fetch.js")
    page.evaluate(f"""async () => {{
        promflux.install({{routes: {routes!r}, flushMs: 60000}});
        {calls}
        fetch.promflux.flush();
    }}""")
    page.close()


def test_fastapi_page_timings_arrive_by_route_template(browser, fastapi_service):  # noqa: F811
    run_page(browser, fastapi_service, """
        await fetch("/items/3?delay_ms=120");
        await fetch("/items/4");
        await fetch("/items", {method: "POST"});
        await fetch("/no/such/page/17");
        try { await fetch("http://127.0.0.1:9/elsewhere"); } catch (e) {}
    """, ["/items/{item_id}", "/items"])
    samples = wait_for(lambda: scrape(fastapi_service.url),
                       lambda s: sum(v for _, _, v in s.find(NAME + "_count")) >= 4)
    count = NAME + "_count"
    assert samples.value(count, route="/items/{item_id}", method="GET", status="200") == 2
    # One of the two waited 120 ms on the server, so the browser saw it above 0.1 s: at
    # most the other one is in the 0.1 s bucket (it is, unless the machine is loaded).
    assert samples.value(NAME + "_bucket", route="/items/{item_id}", method="GET",
                         status="200", le="0.1") <= 1
    assert samples.value(NAME + "_sum", route="/items/{item_id}", method="GET",
                         status="200") >= 0.12
    assert samples.value(count, route="/items", method="POST", status="201") == 1
    assert samples.value(count, route="<unmatched>", method="GET", status="404") == 1
    assert sum(v for _, _, v in samples.find(count)) == 4  # the cross-origin call: not timed


def test_aiohttp_page_timings_arrive(browser, aiohttp_service):  # noqa: F811
    run_page(browser, aiohttp_service, """
        for (let i = 0; i < 3; i++) await fetch("/readings/s" + i);
    """, ["/readings/{sensor}"])
    samples = wait_for(lambda: scrape(aiohttp_service.url),
                       lambda s: s.get(NAME + "_count", route="/readings/{sensor}",
                                       method="GET", status="200") >= 3)
    assert samples.value(NAME + "_count", route="/readings/{sensor}", method="GET",
                         status="200") == 3
