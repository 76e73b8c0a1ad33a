"""The exporter's own ASGI endpoints: /metrics, the browser-timings beacon and the script.

Answered by the middleware itself, in front of the application, so they add no route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import browser_timings
from .recorder import Recorder

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class MetricsEndpoints:
    """Serves the paths ``Recorder.skip_paths`` reserves; ``app`` gets the excluded ones."""

    def __init__(self, app: Any, recorder: Recorder, cover: Callable[[], None]) -> None:
        self.app = app
        self._recorder = recorder
        self._metrics_path = recorder.metrics_path
        self._cover = cover  # lists the route templates, once, before they are needed

    async def __call__(self, path: str, scope: Scope, receive: Any, send: Any) -> None:
        if path == self._metrics_path:
            await self._serve_metrics(scope, send)
        elif path == self._recorder.client_timings_path:
            await self._client_timings(scope, receive, send)
        elif path == self._recorder.script_path:
            await self._reply(send, 200, browser_timings.script(), [
                ("Content-Type", "text/javascript; charset=utf-8"),
                ("Cache-Control", "max-age=3600")], scope["method"] == "HEAD")
        else:
            await self.app(scope, receive, send)

    async def _client_timings(self, scope: Scope, receive: Any, send: Any) -> None:
        self._cover()  # the route templates a batch may name
        plain = [("Content-Type", "text/plain; charset=utf-8")]
        recorder, origin = self._recorder, _header(scope, b"origin")
        if scope["method"] == "OPTIONS":  # a CORS preflight
            headers = browser_timings.cors(origin, recorder.browser_origins, True,
                                          recorder.browser_auth)
            if headers:
                await self._reply(send, 204, b"", headers)
            else:
                await self._reply(send, 403, b"403 Forbidden: origin not allowed\n", plain)
            return
        allowed = browser_timings.cors(origin, recorder.browser_origins) or []
        if scope["method"] != "POST":
            await self._reply(send, 405, b"405 Method Not Allowed\n", [*plain, ("Allow", "POST")])
            return
        body, limit = bytearray(), browser_timings.MAX_BODY_BYTES
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > limit:
                status, text = 400, f"body over {limit} bytes\n".encode()
                break
            if not message.get("more_body"):
                status, text = self._recorder.client_timings(
                    bytes(body), origin, _header(scope, b"authorization"))
                break
        await self._reply(send, status, text, (plain if text else []) + allowed)

    @staticmethod
    async def _reply(send: Any, status: int, body: bytes, headers: list[tuple[str, str]],
                     head: bool = False) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in headers]})
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _serve_metrics(self, scope: Scope, send: Any) -> None:
        self._cover()
        if scope["method"] not in ("GET", "HEAD"):
            status, body, headers = 405, b"405 Method Not Allowed\n", [
                ("Content-Type", "text/plain; charset=utf-8"), ("Allow", "GET, HEAD")]
        else:
            status, body, headers = await self._recorder.scrape(
                _header(scope, b"accept"),
                _header(scope, b"accept-encoding"),
                _header(scope, b"authorization"),
            )
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        })
        await send({
            "type": "http.response.body",
            "body": b"" if scope["method"] == "HEAD" else body,
        })

