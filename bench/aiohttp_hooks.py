"""Where to record an aiohttp request: instructions per request in a real aiohttp server
process (callgrind), bare against two hooks, interleaved rounds (docs/performance.md).

    .venv/bin/python bench/aiohttp_hooks.py [--rounds 3]

* ``promflux``: the exporter as shipped, recording from aiohttp's access-logger call, which
  aiohttp makes after every response anyway;
* ``entrypoint``: the exporter wrapping the application's request entry point instead (what
  it did before, and still does on a server that cancels handlers).

Each figure is (I(9,000 requests) - I(1,000)) / 8,000 over keep-alive GETs of a no-op route.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.exporter_overhead import server_instructions  # noqa: E402

VARIANTS = ("bare", "promflux", "entrypoint")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    counts: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:  # interleaved: drift hits every variant alike
            counts[variant].append(server_instructions("aiohttp", variant, 1000, 9000))
    bare = statistics.median(counts["bare"])
    for variant, values in counts.items():
        shown = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{variant:10} {shown}  median ratio {statistics.median(values) / bare:.4f}")


if __name__ == "__main__":
    main()
