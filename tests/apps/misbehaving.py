"""A target whose counts the test sets, and whose next answer misbehaves on request.

``POST /advance?n=20`` adds n requests to every route (all in the first bucket; with
``slow=1``, route 0's in the 0.75 s bucket) and returns the true total;
``POST /next?mode=html`` makes the next /metrics answer one of the ordinary faults below;
``GET /served`` says how many answers of each mode were sent, so a test waits on the
bridge having seen one rather than sleeping.
"""

from __future__ import annotations

import os
from collections import Counter

from aiohttp import web

ROUTES = int(os.environ.get("MISBEHAVING_ROUTES", "100"))
# "flat": each bucket holds only its own requests (not cumulative), as a broken exporter's do.
SHAPE = os.environ.get("MISBEHAVING_SHAPE", "cumulative")
BOUNDS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0",
          "+Inf"]
HTML = ("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
        "<body><h1>Bad Gateway</h1></body></html>\n")


class _State:
    def __init__(self) -> None:
        self.count = 0  # requests per route so far
        self.slow = 0  # of them, in the 0.75 s bucket (over the 500 ms p95 limit)
        self.cpu = 1234.567891  # a float counter, in CPU seconds
        self.modes: list[str] = []
        self.served: Counter[str] = Counter()


def page(state: _State, reorder: bool = False, repeat: bool = False,
         cpu_back: bool = False) -> str:
    """The exposition: ``ROUTES`` routes of the request histogram, a CPU counter."""
    lines = ["# HELP http_request_duration_seconds Request latency.",
             "# TYPE http_request_duration_seconds histogram"]
    n, slow = state.count, state.slow
    for r in range(ROUTES):
        pairs = [("method", "GET"), ("route", f"/r{r}"), ("service", "fault"),
                 ("status", "200")]
        if reorder:
            pairs.reverse()
        labels = ",".join(f'{k}="{v}"' for k, v in pairs)
        body = []
        for i, le in enumerate(BOUNDS):
            le_pair = f'le="{le}"'
            inner = f"{le_pair},{labels}" if reorder else f"{labels},{le_pair}"
            fast = n - slow if r == 0 else n  # only route 0 has slow requests
            if SHAPE == "flat":
                value = fast if i == 0 else (n - fast if le == "1.0" else 0)
            else:
                value = fast if i < BOUNDS.index("1.0") else n
            body.append(f"http_request_duration_seconds_bucket{{{inner}}} {value}")
        body.append(f"http_request_duration_seconds_count{{{labels}}} {n}")
        body.append(f"http_request_duration_seconds_sum{{{labels}}} {n * 0.004}")
        lines += body
        if repeat:  # the same series again, labels in another order (dropped, as Prometheus)
            flipped = ",".join(f'{k}="{v}"' for k, v in reversed(pairs))
            lines.append(f"http_request_duration_seconds_count{{{flipped}}} {n}")
    cpu = state.cpu - (1e-13 if cpu_back else 0.0)
    lines += ["# TYPE service_cpu_seconds_total counter",
              f'service_cpu_seconds_total{{pid="1",service="fault"}} {cpu!r}',
              'service_cpu_limit_cores{service="fault"} 1']
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    state: _State = request.app["state"]
    mode = state.modes.pop(0) if state.modes else "good"
    state.served[mode] += 1
    if mode == "html":
        return web.Response(text=HTML, content_type="text/html")
    if mode == "empty":
        return web.Response(text="")
    if mode == "cut":  # cut inside a value, half way through
        text = page(state)
        at = text.index(" ", len(text) // 2) + 2
        return web.Response(text=text[:at])
    if mode == "cut_line":  # cut at a line's end: looks whole, half the series missing
        text = page(state)
        return web.Response(text=text[:text.index("\n", len(text) // 2) + 1])
    return web.Response(text=page(state, reorder=mode == "reorder", repeat=mode == "repeat",
                                  cpu_back=mode == "cpu_back"))


async def advance(request: web.Request) -> web.Response:
    state: _State = request.app["state"]
    added = int(request.query.get("n", "1"))
    state.count += added
    if request.query.get("slow"):
        state.slow += added
    return web.json_response({"per_route": state.count, "total": state.count * ROUTES})


async def next_mode(request: web.Request) -> web.Response:
    request.app["state"].modes.append(request.query["mode"])
    return web.json_response({"queued": len(request.app["state"].modes)})


async def served(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app["state"].served))


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def app(argv: object = None) -> web.Application:
    application = web.Application()
    application["state"] = _State()
    application.router.add_get("/metrics", metrics)
    application.router.add_post("/advance", advance)
    application.router.add_post("/next", next_mode)
    application.router.add_get("/served", served)
    application.router.add_get("/health", health)
    return application
