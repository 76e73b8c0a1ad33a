"""What the framework hooks save, and what the public path costs: instructions per no-op
request (valgrind --tool=callgrind) for bare, promflux with its hooks, and promflux with
every hook turned off (PROMFLUX_NO_HOOKS=all, the path a changed framework release takes);
FastAPI through ASGI for a matched route and for a 404, aiohttp in a server process.
Variants interleaved in each round (docs/performance.md).

    .venv/bin/python bench/hook_costs.py [--rounds 3] [--skip-aiohttp]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.exporter_overhead import ENV, asgi_instructions, server_instructions  # noqa: E402

SIDES = {"bare": ("bare", {}), "hooks": ("promflux", {}),
         "public": ("promflux", {"PROMFLUX_NO_HOOKS": "all"})}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-aiohttp", action="store_true")
    args = parser.parse_args()
    cases = [("fastapi /noop", "/noop"), ("fastapi 404", "/missing")]
    if not args.skip_aiohttp:
        cases.append(("aiohttp /noop", None))
    counts = {(case, side): [] for case, _ in cases for side in SIDES}
    for _ in range(args.rounds):
        for case, path in cases:
            for side, (variant, extra) in SIDES.items():  # interleaved
                env = {**ENV, **extra}
                if path is None:
                    counts[case, side].append(
                        server_instructions("aiohttp", variant, 1000, 9000, env=env))
                else:
                    counts[case, side].append(asgi_instructions(
                        variant, env={**env, "DRIVE_PATH": path}))
    for case, _ in cases:
        bare = statistics.median(counts[case, "bare"])
        row = [f"{case:14}"]
        for side in SIDES:
            value = statistics.median(counts[case, side])
            row.append(f"{side} {value:,.0f} ({value / bare:.4f})")
        print("  ".join(row))


if __name__ == "__main__":
    main()
