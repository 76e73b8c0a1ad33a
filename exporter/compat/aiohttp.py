"""aiohttp's internals the exporter hooks into, each checked before use.

- ``Application._make_handler`` (the server an application makes), the server's settings
  (``Server._kwargs``: the access-logger class goes there), ``RequestHandler.handle_error``
  (runs on errors only: the exception type, a client gone) and a response's ``_status``
  and ``_eof_sent`` (read by the access logger per request, cheaper than the properties):
  together, requests recorded from the access-logger call aiohttp makes anyway.
- a request's ``_method`` and ``_match_info`` and a match's ``_route``: the access logger's
  cache key, read as fields (the ``method`` and ``match_info`` properties are cached per
  request in a dict, and with ``route`` they cost about a third of the exporter's work per
  request); without them, those public properties.
- ``Application._handle``: the application's request entry point, wrapped instead.
- ``Application._add_subapp``: an instrumented application added as a sub-app gets a
  middleware, as aiohttp never calls a sub-app's entry point.
- the frame of ``RequestHandler._handle_request`` holds when handling began, read only
  when a started stream breaks.

Without them: ``@web.middleware`` (the public path), outermost in each instrumented
application.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from . import usable

ACCESS_LOG, ENTRY_POINT, ADD_SUBAPP = "aiohttp.access_log", "aiohttp.entry_point", \
    "aiohttp.add_subapp"
REQUEST_FIELDS = "aiohttp.request_fields"


def _params(function: Any) -> list[str] | None:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None


def _response_fields() -> bool:
    try:
        response = web.Response(status=204)
        return response._status == 204 and response._eof_sent is False
    except Exception:
        return False


def _handle_error_fits() -> bool:
    return _params(RequestHandler.handle_error) == ["self", "request", "status", "exc",
                                                     "message"]


def server_maker(app: web.Application) -> Callable[..., Any] | None:
    """``app._make_handler`` when the access-logger hooks all fit, else None."""
    make = getattr(app, "_make_handler", None)
    fits = callable(make) and _response_fields() and _handle_error_fits()
    return make if usable(ACCESS_LOG, fits) else None


def request_fields() -> bool:
    """Whether requests keep their method and match, and a match its route, in the fields
    the access logger reads (the request's declared in ``ATTRS``; the match's tried on
    one made here, as older releases store it without declaring it)."""
    from aiohttp.web_urldispatcher import UrlMappingMatchInfo

    request_attrs = getattr(web.Request, "ATTRS", ())
    try:
        marker = object()
        match_fits = UrlMappingMatchInfo({}, marker)._route is marker  # type: ignore[arg-type]
    except Exception:
        match_fits = False
    fits = "_method" in request_attrs and "_match_info" in request_attrs and match_fits
    return usable(REQUEST_FIELDS, fits)


def replace_server_maker(app: web.Application, make: Callable[..., Any]) -> None:
    object.__setattr__(app, "_make_handler", make)  # aiohttp forbids plain setattr


def server_settings(server: Any) -> dict[str, Any] | None:
    """The settings a server hands to each connection's handler (None: not that shape)."""
    settings = getattr(server, "_kwargs", None)
    return settings if isinstance(settings, dict) else None


def entry_point(app: web.Application) -> Callable[..., Any] | None:
    """``app._handle``, the coroutine aiohttp's server calls per request, or None."""
    handle = getattr(app, "_handle", None)
    fits = inspect.iscoroutinefunction(handle) and _params(handle) == ["request"]
    return handle if usable(ENTRY_POINT, fits) else None


def replace_entry_point(app: web.Application, handle: Callable[..., Any]) -> None:
    object.__setattr__(app, "_handle", handle)


def hook_handle_error(make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replace ``RequestHandler.handle_error`` by ``make(original)``, once per process
    (``server_maker`` checked its signature)."""
    original = RequestHandler.handle_error
    if getattr(original, "_promflux", False):
        return
    replacement = make(original)
    replacement._promflux = True  # type: ignore[attr-defined]
    RequestHandler.handle_error = replacement  # type: ignore[method-assign]


def hook_add_subapp(on_add: Callable[[Any, web.Application], None]) -> bool:
    """Call ``on_add(resource_factory, subapp)`` before aiohttp adds any sub-app (once per
    process); False when ``Application._add_subapp`` is not there or has another shape."""
    cls = web.Application
    current = getattr(cls, "_add_subapp", None)
    if getattr(current, "_promflux", False):
        return True
    if not usable(ADD_SUBAPP, _params(current) == ["self", "resource_factory", "subapp"]):
        return False
    original: Callable[..., Any] = current  # type: ignore[assignment]

    def _add_subapp(self: web.Application, resource_factory: Any,
                    subapp: web.Application) -> Any:
        on_add(resource_factory, subapp)
        return original(self, resource_factory, subapp)

    _add_subapp._promflux = True  # type: ignore[attr-defined]
    cls._add_subapp = _add_subapp  # type: ignore[method-assign]
    return True


def handling_started() -> float | None:
    """When aiohttp began handling the failing request, on its loop's clock: the
    ``start_time`` its request method holds (aiohttp 3.8 to 3.14) and passes to the
    access logger for every other request. Read from that frame only on an error path;
    None when no such frame is found."""
    frame = sys._getframe(1)
    for _ in range(7):
        frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return None
        if frame.f_code.co_name == "_handle_request":
            start = frame.f_locals.get("start_time")
            return start if isinstance(start, float) else None
    return None
