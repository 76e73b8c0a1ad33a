"""Many targets from one real aiohttp server, for discovery, shard and HA tests.

    GET  /t/{n}/metrics   target n's exposition: a request histogram whose counts the test
                          sets; each scrape is logged (time and path)
    POST /t/{n}/add?count=k  k more requests (within 0.1 s) for target n
    POST /t/{n}/fail?on=1    target n answers 500 (on=0: works again)
    POST /t/{n}/race?count=k k more requests right after each slot's first scrape, so an HA
                          pair's two scrapes of one slot always differ (count=0: off)
    GET  /scrapes         {n: [scrape times]}
    GET/POST /sd          the HTTP SD answer (POST sets it; ?type= overrides its Content-Type)
    GET  /health
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

from aiohttp import web

BOUNDS = ("0.1", "0.5", "+Inf")


def make_app() -> web.Application:
    counts: dict[str, int] = defaultdict(int)
    failing: set[str] = set()
    race: dict[str, int] = defaultdict(int)
    raced: dict[str, int] = defaultdict(int)  # requests added by races
    scrapes: dict[str, list[float]] = defaultdict(list)
    sd = {"body": "[]", "type": "application/json"}

    async def metrics(request: web.Request) -> web.Response:
        n = request.match_info["n"]
        first_of_slot = not scrapes[n] or time.time() - scrapes[n][-1] > 0.3
        scrapes[n].append(time.time())
        if n in failing:
            return web.Response(status=500, text="failing on purpose")
        c = counts[n]
        if first_of_slot and race[n]:  # counted after this answer, before the twin's
            counts[n] += race[n]
            raced[n] += race[n]
        head = 'http_request_duration_seconds_bucket{route="/x",method="GET",status="200",le='
        lines = ["# TYPE http_request_duration_seconds histogram"]
        lines += [f'{head}"{le}"}} {c}' for le in BOUNDS]
        tail = '{route="/x",method="GET",status="200"}'
        lines += [f"http_request_duration_seconds_count{tail} {c}",
                  f"http_request_duration_seconds_sum{tail} {c * 0.05}"]
        return web.Response(text="\n".join(lines) + "\n")

    async def add(request: web.Request) -> web.Response:
        counts[request.match_info["n"]] += int(request.query.get("count", "1"))
        return web.Response(text=str(counts[request.match_info["n"]]))

    async def fail(request: web.Request) -> web.Response:
        n = request.match_info["n"]
        (failing.add if request.query.get("on", "1") == "1" else failing.discard)(n)
        return web.Response(text="ok")

    async def set_race(request: web.Request) -> web.Response:
        n = request.match_info["n"]
        race[n] = int(request.query.get("count", "1"))
        return web.Response(text=str(raced[n]))  # the requests races added so far

    async def get_scrapes(request: web.Request) -> web.Response:
        return web.json_response(scrapes)

    async def get_sd(request: web.Request) -> web.Response:
        return web.Response(body=sd["body"].encode(), headers={"Content-Type": sd["type"]})

    async def set_sd(request: web.Request) -> web.Response:
        sd["body"] = await request.text()
        sd["type"] = request.query.get("type", "application/json")
        return web.Response(text="ok")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"ok": True}))

    app = web.Application()
    app.router.add_get("/t/{n}/metrics", metrics)
    app.router.add_post("/t/{n}/add", add)
    app.router.add_post("/t/{n}/fail", fail)
    app.router.add_post("/t/{n}/race", set_race)
    app.router.add_get("/scrapes", get_scrapes)
    app.router.add_get("/sd", get_sd)
    app.router.add_post("/sd", set_sd)
    app.router.add_get("/health", health)
    return app


def app(argv: list[str] | None = None) -> web.Application:  # for python -m aiohttp.web
    return make_app()
