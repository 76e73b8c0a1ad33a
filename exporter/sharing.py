"""Several instrumented applications in one process share one registry's metric objects.

prometheus_client refuses a second metric of one name in a registry ("Duplicated
timeseries"), so an application factory called once per test, or two applications served
side by side, would fail on the second ``instrument()``. Instead, the metric objects are
made once per registry and shared: the applications' counts add up in the same series
(per service label), the resource collector shows the process under each service name,
and an aioprometheus registry is shown once however often it is passed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from .metrics import ExporterMetrics
from .resources import ResourceCollector


@dataclass
class Shared:
    """One registry's metric objects, and who records into them."""

    metrics: ExporterMetrics
    buckets: tuple[float, ...]
    # service -> the recorders (one per application) of that service: requests in
    # progress are the sum of theirs
    recorders: dict[str, weakref.WeakSet[Any]] = field(default_factory=dict)


@dataclass
class Page:
    """What else one /metrics registry shows: resources, aioprometheus registries."""

    resources: ResourceCollector | None = None
    aioprometheus: list[Any] = field(default_factory=list)


_SHARED: weakref.WeakKeyDictionary[CollectorRegistry, Shared] = weakref.WeakKeyDictionary()
_PAGES: weakref.WeakKeyDictionary[CollectorRegistry, Page] = weakref.WeakKeyDictionary()


def shared_metrics(registry: CollectorRegistry, service: str, buckets: tuple[float, ...],
                   fast: bool) -> Shared:
    """This registry's metric objects, made on first use."""
    shared = _SHARED.get(registry)
    if shared is None:
        metrics = ExporterMetrics(service, registry, buckets, fast)
        shared = _SHARED[registry] = Shared(metrics, buckets)
    elif shared.buckets != buckets:
        raise ValueError(
            "instrument(): another application in this process uses this registry with "
            f"other latency buckets ({shared.buckets} here {buckets}); pass the same "
            "buckets, or registry=prometheus_client.CollectorRegistry() for a registry "
            "of its own")
    return shared


def join(shared: Shared, service: str, recorder: Any) -> None:
    """``recorder`` (made whole) records into ``shared`` from now on."""
    shared.recorders.setdefault(service, weakref.WeakSet()).add(recorder)


def show_resources(exposition: CollectorRegistry, service: str, disk_path: str,
                   pids: Callable[[], Iterable[int]] | None) -> None:
    """The process's resources on /metrics, under ``service`` too."""
    page = _PAGES.setdefault(exposition, Page())
    if page.resources is None:
        page.resources = ResourceCollector(service, disk_path, pids)
        exposition.register(page.resources)
    else:
        page.resources.services.setdefault(service, disk_path)


def show_aioprometheus(exposition: CollectorRegistry, registry: Any) -> None:
    """An aioprometheus registry's metrics on /metrics, once."""
    page = _PAGES.setdefault(exposition, Page())
    if any(shown is registry for shown in page.aioprometheus):
        return
    from .aioprom import AioprometheusCollector

    try:
        exposition.register(AioprometheusCollector(registry))
    except ValueError as exc:  # its names clash with metrics already on the page
        raise ValueError(f"instrument(): the aioprometheus registry's metrics clash with "
                         f"others on /metrics: {exc}") from None
    page.aioprometheus.append(registry)
