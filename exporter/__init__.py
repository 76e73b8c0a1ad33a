"""promflux exporter: Prometheus /metrics for FastAPI, Starlette and aiohttp services,
and for workers without a web framework.

    from promflux.exporter import instrument, start_metrics_server
    metrics = instrument(app, service="admin-api")
    metrics.event("device_update")

    worker = start_metrics_server(service="worker", port=9200)
    with worker.job("sync_devices"): ...

See docs/metrics.md for every metric it exports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

from prometheus_client import REGISTRY, CollectorRegistry

from promflux import __version__

from .exposition import MetricsAuth
from .handle import Metrics
from .metrics import LATENCY_BUCKETS, UNMATCHED
from .queues import InstrumentedQueue
from .recorder import Recorder
from .worker import start_metrics_server

if TYPE_CHECKING:
    from aiohttp import web
    from starlette.applications import Starlette

__all__ = [
    "App",
    "InstrumentedQueue",
    "LATENCY_BUCKETS",
    "Metrics",
    "MetricsAuth",
    "UNMATCHED",
    "__version__",
    "instrument",
    "start_metrics_server",
]


# The two kinds of application instrument() takes (types only: neither framework is
# imported at run time unless the application uses it).
App = Union["Starlette", "web.Application"]


def instrument(
    app: App,
    service: str,
    *,
    metrics_path: str = "/metrics",
    exclude_paths: Iterable[str] = ("/health", "/healthz"),
    disk_path: str = "/",
    auth: MetricsAuth | None = None,
    aioprometheus_registry: Any = None,
    registry: CollectorRegistry | None = REGISTRY,
    browser_origins: Iterable[str] | None = None,
    browser_auth: bool = False,
    buckets: Iterable[float] = LATENCY_BUCKETS,
    exclude_docs: bool = True,
) -> Metrics:
    """Instrument a FastAPI/Starlette app or an aiohttp ``web.Application``.

    Adds the request middleware, serves ``GET metrics_path`` and registers the resource
    collectors. Returns the ``Metrics`` handle for events, queues and size callbacks.

    ``exclude_paths`` are not recorded (``metrics_path`` never is). ``auth`` protects
    /metrics (off by default). ``aioprometheus_registry`` shows an aioprometheus
    registry's metrics on the same /metrics (pass ``aioprometheus.REGISTRY``).

    The browser-timings beacon (``POST metrics_path/client-timings``) is open by default,
    like any endpoint a page can call; ``browser_origins`` limits it to pages of those
    origins (the request's ``Origin``), ``browser_auth`` makes it need ``auth`` too.
    Either way a batch is all or nothing and the series it can create are bounded.

    ``buckets``: the latency histogram's upper bounds in seconds (default
    ``LATENCY_BUCKETS``, 1 ms to 10 s); keep your p95 limit (500 ms) among them.

    ``exclude_docs``: FastAPI's documentation routes (``/docs``, ``/redoc``,
    ``/openapi.json``, the OAuth2 redirect) are not endpoints of the service's API and
    are not recorded; ``False`` records them like any route.
    """
    if _instrumented(app):
        raise RuntimeError(
            "this application is already instrumented: call instrument() once per "
            "application and keep the Metrics it returned (an app factory makes a new "
            "application each time, which is fine)")
    if exclude_docs:
        exclude_paths = (*exclude_paths, *_docs_paths(app))
    recorder = Recorder(
        service,
        registry=registry,
        metrics_path=metrics_path,
        exclude_paths=exclude_paths,
        disk_path=disk_path,
        auth=auth,
        aioprometheus_registry=aioprometheus_registry,
        browser_origins=browser_origins,
        browser_auth=browser_auth,
        buckets=buckets,
    )
    if _is_aiohttp(app):
        from .aiohttp_adapter import instrument_aiohttp

        instrument_aiohttp(app, recorder)  # type: ignore[arg-type]
    elif hasattr(app, "add_middleware") and hasattr(app, "routes"):
        from .starlette_adapter import instrument_starlette

        instrument_starlette(app, recorder)
    else:
        raise TypeError(
            f"instrument() takes a FastAPI/Starlette app or an aiohttp web.Application, "
            f"not {type(app).__name__}"
        )
    return Metrics(recorder)


def _instrumented(app: object) -> bool:
    """Whether ``instrument`` ran on ``app`` already (its mark on either framework)."""
    if _is_aiohttp(app):
        from .aiohttp_access import INSTRUMENTATION

        return INSTRUMENTATION in app  # type: ignore[operator]
    return (getattr(getattr(app, "build_middleware_stack", None), "promflux", False) is True
            or getattr(app, "promflux_instrumented", False) is True)


def _is_aiohttp(app: object) -> bool:
    module = type(app).__module__
    return module.startswith("aiohttp.") and hasattr(app, "router") and hasattr(app, "middlewares")


def _docs_paths(app: object) -> list[str]:
    """The documentation routes a FastAPI application serves (none for others)."""
    names = ("docs_url", "redoc_url", "openapi_url", "swagger_ui_oauth2_redirect_url")
    paths = [getattr(app, name, None) for name in names]
    return [path for path in paths if isinstance(path, str) and path]
