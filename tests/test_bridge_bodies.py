"""Answers read whole within a bound from a real aiohttp server: a body that comes in many
pieces with no length comes back whole and in order; one that goes past the bound is refused
without being read to its end."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from promflux.bridge.bodies import TooLarge, read_bounded

from .local_http import local_server

PIECES = [f"piece {i:05d} ".encode() * (1 + i % 7) for i in range(2_000)]
WHOLE = b"".join(PIECES)
ENDLESS = 100_000  # rounds of the pieces an endless body would send (about 13 GB)


async def served(limit: int, endless: bool = False) -> tuple[bytes | str, int]:
    """(what ``read_bounded`` gave, or the TooLarge message; bytes the server sent) for a
    chunked answer of the pieces, once or without end."""
    sent = 0

    async def stream(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse()  # chunked: no Content-Length
        await response.prepare(request)
        try:
            for _ in range(ENDLESS if endless else 1):
                for i, piece in enumerate(PIECES):
                    await response.write(piece)
                    sent += len(piece)
                    if i % 50 == 0:
                        await asyncio.sleep(0)  # (sent as several network reads)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        return response

    async with local_server("/", stream) as url, aiohttp.ClientSession() as session, \
            session.get(url + "/") as response:
        assert response.content_length is None
        try:
            return await read_bounded(response, limit), sent
        except TooLarge as exc:
            return str(exc), sent


def test_a_body_in_many_pieces_comes_back_whole_and_in_order() -> None:
    body, sent = asyncio.run(served(10 * len(WHOLE)))
    assert sent == len(WHOLE)
    assert body == WHOLE


def test_a_body_exactly_at_the_limit_is_read_and_one_byte_over_is_refused() -> None:
    assert asyncio.run(served(len(WHOLE)))[0] == WHOLE
    assert asyncio.run(served(len(WHOLE) - 1))[0] == (
        f"body is over the limit of {len(WHOLE) - 1} bytes")


@pytest.mark.parametrize("limit", [1, 1_000_000])
def test_an_endless_body_is_refused_at_the_limit_without_reading_it_all(limit: int) -> None:
    message, sent = asyncio.run(served(limit, endless=True))
    assert message == f"body is over the limit of {limit} bytes"
    assert sent < limit + 20_000_000  # (what the socket buffers held, not the whole body)
