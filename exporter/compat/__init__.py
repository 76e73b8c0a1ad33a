"""Every use of another library's internals, one module per library, each behind a check.

The exporter is fast because it hooks into the frameworks where their own work already
happens (aiohttp's access logger, Starlette's outermost error middleware, prometheus_client's
bucket values). Those places are not public API, so each hook here is checked once, when
``instrument()`` runs, against the shape it needs; when it is missing or different, the
adapter takes the framework's public path instead (an ASGI middleware, aiohttp's
``@web.middleware``, ``Histogram.observe``) and logs one warning naming the library, its
version and the hook. Counts stay exact either way; only the cost differs
(docs/performance.md).

``PROMFLUX_NO_HOOKS`` (a comma-separated list of hook names, or ``all``) turns hooks off
without a release, should one misbehave somewhere: the public path is used instead.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os

log = logging.getLogger("promflux.exporter")

HOOKS = {  # name -> (library, what it uses)
    "aiohttp.access_log": ("aiohttp", "Application._make_handler, the server's settings, "
                           "RequestHandler.handle_error and the response's status fields"),
    "aiohttp.request_fields": ("aiohttp", "Request._method, Request._match_info and "
                               "UrlMappingMatchInfo._route"),
    "aiohttp.entry_point": ("aiohttp", "Application._handle"),
    "aiohttp.add_subapp": ("aiohttp", "Application._add_subapp"),
    "starlette.build_stack": ("starlette", "Starlette.build_middleware_stack"),
    "starlette.error_middleware": ("starlette", "ServerErrorMiddleware's handler, debug "
                                   "and error responses"),
    "prometheus_client.histogram_values": ("prometheus_client",
                                           "Histogram children's bucket and sum values"),
}
_warned: set[str] = set()


def turned_off(hook: str) -> bool:
    """Whether ``PROMFLUX_NO_HOOKS`` names ``hook`` (or says ``all``)."""
    names = {n.strip() for n in os.environ.get("PROMFLUX_NO_HOOKS", "").split(",")}
    return "all" in names or hook in names


def usable(hook: str, fits: bool, why: str = "") -> bool:
    """``fits``: whether the library has the shape the hook needs. False (the public path
    is taken) when it does not or the hook is turned off; said once per hook."""
    if fits and not turned_off(hook):
        return True
    if hook not in _warned:
        _warned.add(hook)
        library, what = HOOKS[hook]
        if not fits:
            log.warning("promflux: %s %s has no usable %s%s; taking the public path instead "
                        "(counts stay exact; see docs/performance.md for the cost)",
                        library, version(library), what, f" ({why})" if why else "")
    return False


def version(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"
