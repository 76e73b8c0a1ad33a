"""Webhooks against real HTTP receivers: retries on 5xx and network errors, none on 4xx,
order kept, bearer token sent, a dead receiver never blocks another."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry
from promflux.bridge.analyze.alerts import Change
from promflux.bridge.config import Webhook
from promflux.bridge.notify.webhooks import Notifier

from .conftest import free_port
from .webhook_receiver import Receiver


def change(level: str, previous: str, at: float) -> Change:
    return Change("api", "_all", "p95_ms", level, previous, 700.0, 500.0, at)  # type: ignore[arg-type]


def test_retries_refusals_order_and_isolation(monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    flaky = Receiver([503, 500])           # two failures, then accepted
    refusing = Receiver([400])             # refused: not retried, the next one still sent
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens
    hooks = [Webhook.model_validate({"url": flaky.url, "bearer_token": {"env": "HOOK_TOKEN"}}),
             Webhook.model_validate({"url": refusing.url}),
             Webhook.model_validate({"url": dead, "retries": 1, "timeout": "1s"})]
    registry = CollectorRegistry()

    async def go() -> None:
        notifier = Notifier(hooks, registry)
        task = asyncio.create_task(notifier.run())
        notifier.notify(change("warning", "ok", 1.0))
        notifier.notify(change("ok", "warning", 2.0))
        def settled() -> bool:
            # The counters too: the receiver has an answer before the notifier counts it.
            count = registry.get_sample_value
            return (len([g for g in flaky.got if g[0] == 204]) == 2
                    and len(refusing.got) == 2
                    and count("promflux_bridge_webhooks_failed_total", {"url": dead}) == 2
                    and count("promflux_bridge_webhooks_sent_total", {"url": flaky.url}) == 2
                    and count("promflux_bridge_webhooks_sent_total",
                              {"url": refusing.url}) == 1)

        deadline = asyncio.get_running_loop().time() + 30
        while not settled() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(go())
    assert [(s, b["level"], b["resolved"]) for s, b, _ in flaky.got] == [
        (503, "warning", False), (500, "warning", False), (204, "warning", False),
        (204, "ok", True)]
    assert {auth for _, _, auth in flaky.got} == {"Bearer s3cret"}
    assert [(s, b["level"]) for s, b, _ in refusing.got] == [(400, "warning"), (204, "ok")]
    assert refusing.got[0][2] is None
    sent = registry.get_sample_value
    assert sent("promflux_bridge_webhooks_sent_total", {"url": flaky.url}) == 2
    assert sent("promflux_bridge_webhooks_failed_total", {"url": refusing.url}) == 1
    # Both changes given up on the dead receiver after its one retry, the others unharmed.
    assert sent("promflux_bridge_webhooks_failed_total", {"url": dead}) == 2


def test_a_receiver_that_does_not_answer_holds_a_bounded_queue(monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from promflux.bridge.notify import webhooks

    monkeypatch.setattr(webhooks, "MAX_WAITING", 10)
    gate, got = threading.Event(), []

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            gate.wait(30)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    registry = CollectorRegistry()
    count = registry.get_sample_value

    async def go() -> None:
        notifier = Notifier([Webhook.model_validate({"url": url, "timeout": "60s"})],
                            registry)
        task = asyncio.create_task(notifier.run())
        notifier.notify(change("warning", "ok", 0.0))
        while not got:  # the first is in flight, held by the receiver
            await asyncio.sleep(0.01)
        for at in range(1, 16):  # 15 more: 10 wait, the 5 oldest of them are dropped
            notifier.notify(change("warning", "ok", float(at)))
        gate.set()
        while count("promflux_bridge_webhooks_sent_total", {"url": url}) != 11:
            await asyncio.sleep(0.01)
        task.cancel()

    try:
        asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        gate.set()
        server.shutdown()
    assert count("promflux_bridge_webhooks_dropped_total", {"url": url}) == 5
    assert [body["at"] for body in got] == [0.0, *range(6, 16)]  # the newest kept


def test_webhooks_verify_tls_against_their_ca_and_pick_up_a_rotated_token(tmp_path,
                                                                          monkeypatch):
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from promflux.bridge import auth

    from .test_bridge_targets import make_certificates

    ca, cert, key = make_certificates(tmp_path)
    got: list[str | None] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            got.append(self.headers.get("Authorization"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/hook"
    token = tmp_path / "token"
    token.write_text("first\n")
    monkeypatch.setattr(auth, "TTL_S", 0.0)  # re-read the file on every post
    hooks = [Webhook.model_validate({"url": url, "tls": {"ca_file": ca},
                                     "bearer_token": {"file": str(token)}}),
             Webhook.model_validate({"url": url + "?untrusted", "retries": 0})]
    registry = CollectorRegistry()
    count = registry.get_sample_value

    async def go() -> None:
        notifier = Notifier(hooks, registry)
        task = asyncio.create_task(notifier.run())
        notifier.notify(change("warning", "ok", 1.0))
        while len(got) < 1:
            await asyncio.sleep(0.01)
        token.write_text("second\n")  # rotated
        notifier.notify(change("ok", "warning", 2.0))
        while (len(got) < 2 or count("promflux_bridge_webhooks_failed_total",
                                     {"url": url + "?untrusted"}) != 2):
            await asyncio.sleep(0.01)
        task.cancel()

    try:
        asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        server.shutdown()
    assert got == ["Bearer first", "Bearer second"]  # the trusted one, token re-read
