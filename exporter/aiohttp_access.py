"""Recording aiohttp requests from the access-logger call aiohttp makes after every response.

aiohttp calls its access logger once per request with the request, the response and the
time since it began handling it. Recording there costs about 2 % of a no-op request, where
wrapping the application's entry point costs 4-5 % (docs/performance.md). The logger
class is a server setting, so it is put on the server the application makes, chaining to
the user's own logger. The aiohttp internals this needs are checked first
(``compat.aiohttp``); without them the caller takes another path.

What a logger does not see comes from elsewhere, at no cost per good request: requests
started are aiohttp's own per-server count; an unhandled exception's type (and a client
that went away, a 499) from ``RequestHandler.handle_error``, which runs on errors only. A
server that cancels handlers (a cancelled handler is never logged) keeps the wrapped entry
point instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.log import access_logger
from aiohttp.web_log import AccessLogger

from .accumulator import FOLD_AT
from .compat import aiohttp as hooks

_MAX_ERRORS = 10_000
INSTRUMENTATION = web.AppKey("promflux.instrumentation", object) if hasattr(
    web, "AppKey") else "promflux.instrumentation"


def logger_class(inst: Any, chained: type[AbstractAccessLogger] | None
                 ) -> type[AbstractAccessLogger]:
    """An access-logger class that records into ``inst`` (an AiohttpInstrumentation),
    then hands the request to ``chained`` (the user's logger class) when that logs."""
    cache, fold = inst.cache, inst.recorder.requests.fold
    fields = hooks.request_fields()

    def log(self: Any, request: Any, response: Any, time: float) -> None:
        try:  # (free in CPython 3.11 when nothing raises)
            # (Fields, not properties: compat.aiohttp checked they exist before this logger
            # was installed; each property call is a tenth of this method's cost. Cached
            # routes have one method, so the route stands for it.)
            series = cache[request._match_info._route][response._status]
        except Exception:  # not cached yet; or a request aiohttp could not parse (no match)
            series = None
        # A response whose end was never sent: the client went away (a 499).
        if series is None or not response._eof_sent:
            logged(inst, request, response, time)
        else:
            series.append(time)  # bucketed in batches: see accumulator
            if len(series) >= FOLD_AT:
                fold(series)

    def log_public(self: Any, request: Any, response: Any, time: float) -> None:
        # Without those fields: the general path, through the public properties.
        logged(inst, request, response, time)

    def log_and_chain(self: Any, request: Any, response: Any, time: float) -> None:
        record(self, request, response, time)
        if self.chained is not None:
            self.chained.log(request, response, time)

    # Without a logger to chain to, nothing but the recording runs per request.
    record = log if fields else log_public
    chosen = record if chained is None else log_and_chain

    class PromfluxAccessLogger(AbstractAccessLogger):
        __slots__ = ("chained",)
        log = chosen

        def __init__(self, logger: logging.Logger, log_format: str) -> None:
            super().__init__(logger, log_format)
            user = chained(logger, log_format) if chained is not None else None
            # (aiohttp before 3.10 has no ``enabled``: its logger checks the level itself.)
            self.chained = user if user is not None and getattr(user, "enabled", True) else None

        @property
        def enabled(self) -> bool:
            return True  # aiohttp calls log() only when this is true

    return PromfluxAccessLogger


def logged(inst: Any, request: Any, response: Any, elapsed: float) -> None:
    """Every request the cache does not know: new series, errors, WebSockets, exclusions."""
    try:
        error = inst.errors.pop(id(request), None)
        # A request aiohttp could not parse was answered before any routing.
        if _match_info(request) is None or request.path in inst.recorder.skip_paths:
            inst.started[0] -= 1  # counted as started by aiohttp; never recorded
            return
        if isinstance(response, web.WebSocketResponse):
            inst.websocket_closed(request)  # measured as a connection, not a request
            return
        if error is not None:
            status, exc = error
            if status and not inst.websocket_closed(request, exc):
                inst.record(request, status, elapsed)
            return
        inst.record(request, response.status if response._eof_sent else 499, elapsed)
    except Exception as exc:
        inst.recorder.internal_error("request", exc)


def _match_info(request: Any) -> Any:
    try:
        return request.match_info  # (a request aiohttp could not parse has none)
    except (AttributeError, AssertionError):
        return None


def install(app: web.Application, inst: Any) -> bool:
    """Record ``app``'s requests from the access logger of every server it makes; False
    when this aiohttp lacks what that needs (the caller takes another path)."""
    make = hooks.server_maker(app)
    if make is None:
        return False

    def make_handler(*args: Any, **kwargs: Any) -> Any:
        server = make(*args, **kwargs)
        settings = hooks.server_settings(server)
        if settings is None or getattr(server, "handler_cancellation", False):
            # (request_handler: the server's public attribute)
            server.request_handler = inst.timed(server.request_handler)
            return server
        try:
            user_log = settings.get("access_log", access_logger)
            chained = settings.get("access_log_class", AccessLogger) if user_log else None
            logger = logger_class(inst, chained)
        except Exception as error:  # a logger class of another shape: time the handler
            inst.recorder.internal_error("access_log", error)
            server.request_handler = inst.timed(server.request_handler)
            return server
        settings["access_log_class"] = logger
        settings["access_log"] = user_log or logging.getLogger("aiohttp.access")
        inst.servers.append(server)
        return server

    hooks.replace_server_maker(app, make_handler)
    hooks.hook_handle_error(_handle_error)
    return True


def _handle_error(original: Callable[..., Any]) -> Callable[..., Any]:
    """Learn of unhandled exceptions (their type; a client gone is a 499, not an error)
    from aiohttp's error handler, which runs on errors only."""

    def handle_error(self: Any, request: Any, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None) -> Any:
        inst = None
        if exc is not None and (inst := _access_logged(request)) is not None:
            try:
                _note_error(inst, request, status, exc)
            except Exception as error:  # never in the way of aiohttp's own answer
                inst.recorder.internal_error("exception", error)
        try:
            return original(self, request, status, exc, message)
        except ConnectionError:
            # The response had started (a stream): aiohttp drops the request without
            # logging it. Recorded here: 499 when the client went away, else 500.
            if inst is not None:
                _broken_stream(inst, request)
            raise

    return handle_error


def _broken_stream(inst: Any, request: Any) -> None:
    """Record a request whose started response broke (handle_error could not answer it)."""
    try:
        status = inst.errors.pop(id(request), (0, None))[0]
        if not status:
            return  # a WebSocket's, recorded as its close
        start = hooks.handling_started()
        if start is None:  # (an aiohttp that keeps no start time: left out, not in progress)
            inst.started[0] -= 1
            return
        inst.record(request, status, asyncio.get_running_loop().time() - start)
    except Exception as error:
        inst.recorder.internal_error("request", error)


def _access_logged(request: Any) -> Any:
    """The instrumentation recording this request from an access logger, or None."""
    try:
        inst = request.config_dict.get(INSTRUMENTATION)
    except Exception:  # a request aiohttp could not parse: no application
        return None
    return inst if inst is not None and inst.servers else None


def _note_error(inst: Any, request: Any, status: int, exc: BaseException) -> None:
    errors = inst.errors
    if len(errors) >= _MAX_ERRORS:
        errors.clear()
    if id(request) in inst.websockets:  # a WebSocket's handler failed: a 1011 close
        inst.count_exception(request, exc)
        inst.websocket_closed(request, exc)
        errors[id(request)] = (0, None)  # done: nothing to record if it is logged
        return
    transport = request.transport
    if isinstance(exc, ConnectionResetError) and (transport is None or
                                                  transport.is_closing()):
        # The client went away while its body was read: a 499, as on ASGI.
        errors[id(request)] = (499, None)
    else:
        inst.count_exception(request, exc)
        errors[id(request)] = (status, exc)

