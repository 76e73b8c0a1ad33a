"""/metrics for processes without a web framework: background workers, schedulers.

    from promflux.exporter import start_metrics_server
    metrics = start_metrics_server(service="worker", port=9200)

    @metrics.job("sync_devices")
    def sync_devices() -> None: ...

Serves the same /metrics as ``instrument`` (resources, events, queues, jobs, multiprocess
mode) from a small threaded HTTP server on its own port, the way prometheus_client's
``start_http_server`` does, so sync and async workers alike keep their main thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import REGISTRY, CollectorRegistry

from .exposition import MetricsAuth
from .handle import Metrics
from .metrics import LATENCY_BUCKETS
from .recorder import Recorder, adopt_running_loop

FLUSH_TIMEOUT_S = 5.0


def flush_threadsafe(recorder: Recorder, timeout: float = FLUSH_TIMEOUT_S) -> None:
    """``flush`` from the server's thread. Queue waits are accumulated on the worker's
    event loop (when it has one), so the flush runs there; a loop too busy to answer within
    ``timeout`` leaves this scrape unflushed (the counts wait for the next one, none is
    lost or torn)."""
    loop = recorder.loop
    if loop is None or loop.is_closed() or not loop.is_running():
        recorder.flush()
        return

    async def flush() -> None:
        recorder.flush()

    future = asyncio.run_coroutine_threadsafe(flush(), loop)
    try:
        future.result(timeout)
    except Exception:
        future.cancel()


class MetricsServer:
    """A threaded HTTP server answering ``GET /metrics``; ``stop()`` closes it."""

    def __init__(self, recorder: Recorder, addr: str, port: int) -> None:
        self.recorder = recorder
        handler = _handler(recorder)
        self.httpd = ThreadingHTTPServer((addr, port), handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="promflux-metrics",
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "promflux"

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0] not in (recorder.metrics_path, "/"):
                self._send(404, b"404 Not Found: metrics are at " +
                           recorder.metrics_path.encode() + b"\n", [])
                return
            if recorder.auth is not None and not recorder.auth.allows(
                    self.headers.get("Authorization")):
                self._send(401, b"401 Unauthorized: /metrics needs credentials\n",
                           [("WWW-Authenticate", recorder.auth.challenge())])
                return
            flush_threadsafe(recorder)
            body, headers = recorder.render(self.headers.get("Accept"),
                                            self.headers.get("Accept-Encoding"))
            self.send_response(200)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body))), *headers]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds is not news

    return Handler


def start_metrics_server(
    service: str,
    port: int = 9200,
    *,
    addr: str = "0.0.0.0",
    disk_path: str = "/",
    auth: MetricsAuth | None = None,
    registry: CollectorRegistry | None = REGISTRY,
    buckets: Iterable[float] = LATENCY_BUCKETS,
) -> Metrics:
    """Serve /metrics for ``service`` on ``addr:port`` from a background thread; returns the
    ``Metrics`` handle (``job``, ``event``, ``queue``, ``size_callback``; ``server.port``
    is the port bound, useful with ``port=0``; ``server.stop()`` closes it).

    Resources (CPU, memory, disk, threads, fds) are those of this process, or of all the
    processes sharing ``PROMETHEUS_MULTIPROC_DIR`` in multiprocess mode."""
    recorder = Recorder(service, registry=registry, metrics_path="/metrics",
                        disk_path=disk_path, auth=auth, buckets=buckets)
    adopt_running_loop(recorder)  # an async worker calling this from its loop
    return Metrics(recorder, MetricsServer(recorder, addr, port))
