"""Drive N GET /noop requests through a FastAPI app at the ASGI level (no network).

    python bench/drive_asgi.py VARIANT N          # prints microseconds per request
Run under callgrind by exporter_overhead.py for instruction counts. DRIVE_PATH=/missing
drives a path no route matches (the 404 path) instead.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.apps import fastapi_app  # noqa: E402

PATH = os.environ.get("DRIVE_PATH", "/noop")
SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"",
    "root_path": "", "headers": [(b"host", b"bench"), (b"user-agent", b"bench")],
    "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
}


async def drive(app: object, n: int) -> float:
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict:
        return request

    async def send(message: dict) -> None:
        pass

    start = time.perf_counter()
    for _ in range(n):
        await app(dict(SCOPE), receive, send)  # type: ignore[operator]
    return (time.perf_counter() - start) / n * 1e6


async def main(variant: str, n: int) -> None:
    app = fastapi_app(variant)
    # Lifespan start-up and a warm-up, so both sides pay one-time costs before counting.
    await drive(app, 200)
    # Long-lived objects out of the collector's way, so that a full collection landing
    # inside one run but not the other does not swamp a few thousand instructions.
    gc.freeze()
    print(f"{await drive(app, n):.2f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
