"""Microseconds to inflate one gzip answer of bench/bridge_vs_prometheus.py's page, by
Python's zlib and by zlib-ng's (bridge/inflate.py), the way aiohttp does it (a
decompressor per answer, gzip framing, at most 256 KiB at a time), in interleaved rounds.

    .venv/bin/python bench/inflate.py [--rounds 7] [--level 1]

The answer is compressed at nginx's default level (1) unless told otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
import zlib
from pathlib import Path
from types import ModuleType

PIECE = 2**18  # the most aiohttp inflates at once (its DEFAULT_CHUNK_SIZE)

sys.path.insert(0, str(Path(__file__).resolve().parent))


def inflated(module: ModuleType, body: bytes) -> list[bytes]:
    """``body`` inflated as aiohttp inflates an answer: pieces of at most ``PIECE`` bytes."""
    inflating = module.decompressobj(16 + module.MAX_WBITS)
    pieces = [inflating.decompress(body, PIECE)]
    while inflating.unconsumed_tail:
        pieces.append(inflating.decompress(inflating.unconsumed_tail, PIECE))
    return pieces


def per_answer(module: ModuleType, body: bytes, number: int) -> float:
    """Microseconds per answer inflated by ``module`` (each answer's pieces dropped before
    the next, as the bridge drops a page once parsed)."""
    started = time.perf_counter()
    for _ in range(number):
        inflated(module, body)
    return (time.perf_counter() - started) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--number", type=int, default=500)
    args = parser.parse_args()
    from bridge_vs_prometheus import page_template, render
    from zlib_ng import zlib_ng

    page = render(page_template(50, 1.0), 100).encode()
    body = gzip.compress(page, args.level)
    print(f"page {len(page):,} bytes, gzip level {args.level} {len(body):,} bytes")
    assert b"".join(inflated(zlib, body)) == b"".join(inflated(zlib_ng, body)) == page
    times: dict[str, list[float]] = {"zlib": [], "zlib-ng": []}
    for _ in range(args.rounds):  # (interleaved: drift falls on both)
        times["zlib"].append(per_answer(zlib, body, args.number))
        times["zlib-ng"].append(per_answer(zlib_ng, body, args.number))
    for name, values in times.items():
        print(f"  {name:8s} median {statistics.median(values):7.1f} us per answer "
              f"(min {min(values):.1f}, max {max(values):.1f})")
    ratio = statistics.median(times["zlib"]) / statistics.median(times["zlib-ng"])
    print(f"  zlib / zlib-ng: {ratio:.1f}")


if __name__ == "__main__":
    main()
