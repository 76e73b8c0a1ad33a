"""Framework internals changed as a new release might change them, for the fallback tests:
``CHANGED_INTERNALS`` (comma-separated) names what to change in this process before the
application is instrumented. Each change keeps the framework itself working."""

from __future__ import annotations

import functools
import os
from typing import Any


def apply() -> None:
    for name in filter(None, os.environ.get("CHANGED_INTERNALS", "").split(",")):
        CHANGES[name]()


def _handle_error() -> None:
    from aiohttp.web_protocol import RequestHandler

    original = RequestHandler.handle_error

    @functools.wraps(original)  # (wraps keeps the name, not the signature's check)
    def handle_error(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, request, *args, **kwargs)

    del handle_error.__wrapped__  # another signature, as a release might make it
    RequestHandler.handle_error = handle_error  # type: ignore[method-assign]


def _add_subapp() -> None:
    from aiohttp import web

    original = web.Application._add_subapp

    def _add_subapp(self: Any, factory: Any, app: Any) -> Any:  # renamed parameters
        return original(self, factory, app)

    web.Application._add_subapp = _add_subapp  # type: ignore[method-assign]


def _request_fields() -> None:
    from aiohttp import web_urldispatcher

    class Renamed(web_urldispatcher.UrlMappingMatchInfo):
        """A match that keeps its route under another name, as a release might."""

        def __init__(self, match_dict: Any, route: Any) -> None:
            super().__init__(match_dict, route)
            del self._route
            self._target = route

        @property
        def route(self) -> Any:
            return self._target

        @property
        def handler(self) -> Any:
            return self._target.handler

        @property
        def expect_handler(self) -> Any:
            return self._target.handle_expect_header

        def get_info(self) -> Any:
            return self._target.get_info()

    web_urldispatcher.UrlMappingMatchInfo = Renamed  # type: ignore[misc]


def _entry_point() -> None:
    from aiohttp import web

    original = web.Application._handle

    def _handle(self: Any, request: Any) -> Any:  # a plain function returning a coroutine
        return original(self, request)

    web.Application._handle = _handle  # type: ignore[method-assign]


def _build_stack() -> None:
    from fastapi import FastAPI
    from starlette.applications import Starlette

    for cls in (Starlette, FastAPI):  # (recent FastAPI releases have their own)
        if "build_middleware_stack" in vars(cls):
            original = vars(cls)["build_middleware_stack"]

            def build_middleware_stack(self: Any, *extra: Any, _original: Any = original
                                       ) -> Any:  # another signature
                return _original(self)

            cls.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]


def _error_middleware() -> None:
    from starlette.middleware.errors import ServerErrorMiddleware

    del ServerErrorMiddleware.debug_response  # (only used with debug=True)


CHANGES = {"aiohttp.handle_error": _handle_error, "aiohttp.add_subapp": _add_subapp,
           "aiohttp.entry_point": _entry_point,
           "aiohttp.request_fields": _request_fields, "starlette.build_stack": _build_stack,
           "starlette.error_middleware": _error_middleware}
