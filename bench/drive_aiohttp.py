"""Drive N keep-alive GET /noop requests through an aiohttp server's own protocol in one
process, with an in-memory transport (no sockets, no polling).

    python bench/drive_aiohttp.py VARIANT N       # prints microseconds per request
Run under callgrind by hook_costs.py: a server over loopback counts the event loop's polling,
which varies between runs by more than the exporter's cost (docs/performance.md). Here each
request is the same work on every run: aiohttp's request parsing, its handler task, the
application, the response writer.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.apps import aiohttp_app  # noqa: E402

REQUEST = b"GET /noop HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n"


class MemoryTransport(asyncio.Transport):
    """Takes the server's writes; wakes the driver when a whole response has gone out."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: asyncio.Future[None] | None = None
        self._closing = False

    def write(self, data: Any) -> None:
        if bytes(data).endswith(b"{}") and self.answered is not None:
            self.answered.set_result(None)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default)

    def get_write_buffer_size(self) -> int:
        return 0


async def drive(protocol: Any, transport: MemoryTransport, n: int) -> float:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    for _ in range(n):
        transport.answered = loop.create_future()
        protocol.data_received(REQUEST)
        await transport.answered
    return (time.perf_counter() - start) / n * 1e6


async def main(variant: str, n: int) -> None:
    from aiohttp import web

    runner = web.AppRunner(aiohttp_app(variant), access_log=None)
    await runner.setup()
    assert runner.server is not None
    protocol = runner.server()
    transport = MemoryTransport()
    protocol.connection_made(transport)
    await drive(protocol, transport, 200)  # warm-up, as in the ASGI driver
    gc.freeze()
    print(f"{await drive(protocol, transport, n):.2f}")
    protocol.connection_lost(None)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
