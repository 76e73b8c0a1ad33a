"""Reading an outside answer's body within a bound. Thin I/O over aiohttp.

Every answer the bridge reads (targets, discovery, the HA peer, InfluxDB, Alertmanager and
webhook errors) is read whole up to a limit, and refused beyond it, so a peer that sends
without end costs at most the limit, never memory in proportion to its patience. (aiohttp's
``content.read(n)`` returns what has arrived so far, not ``n`` bytes: one network read.)
"""

from __future__ import annotations

import aiohttp

ERROR_TEXT_BYTES = 1024  # of an error answer, for a log line


class TooLarge(ValueError):
    """The body went over its limit (the rest is not read)."""


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, of at most ``limit`` bytes; raises TooLarge beyond."""
    length = response.content_length
    if length is not None and length > limit:
        raise TooLarge(f"body of {length} bytes is over the limit of {limit}")
    # What has arrived, as aiohttp holds it: a fixed chunk size would slice (copy) each
    # inflated piece again. aiohttp's own read limits (and inflate's) stay as they are.
    content, chunks, size = response.content, [], 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)  # (no copy for a body that came in one piece)


async def error_text(response: aiohttp.ClientResponse, limit: int = ERROR_TEXT_BYTES) -> str:
    """The start of an error answer's body (at most ``limit`` bytes, the rest not read),
    printable, for a message."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(limit):
        body += chunk
        if len(body) >= limit:
            break
    text = bytes(body[:limit]).decode("utf-8", "replace")
    return " ".join(text.split())
