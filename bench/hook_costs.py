"""What the framework hooks save, and what the public path costs: instructions per no-op
request (valgrind --tool=callgrind) for bare, promflux with its hooks, and promflux with
every hook turned off (PROMFLUX_NO_HOOKS=all, the path a changed framework release takes);
FastAPI through ASGI for a matched route and for a 404; aiohttp through its own server
protocol over an in-memory transport (bench/drive_aiohttp.py: a server on loopback counts
the event loop's polling, which varies between runs by more than the cost in question).
Variants interleaved in each round, each round with its own PYTHONHASHSEED (0, 1, ...);
medians, and each seed's ratio (docs/performance.md).

    .venv/bin/python bench/hook_costs.py [--rounds 3] [--skip-aiohttp]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.exporter_overhead import ENV, PY, asgi_instructions, callgrind_total  # noqa: E402

SIDES = {"bare": ("bare", {}), "hooks": ("promflux", {}),
         "public": ("promflux", {"PROMFLUX_NO_HOOKS": "all"})}


# The two runs differ by a whole number of the exporter's batches (FOLD_AT, 128 durations
# folded into bucket counts at once) and by enough requests that the cycle collector's
# older generations run about as often per request in both: with 1,000 requests (7.8
# batches) one more or one fewer collection moved a figure by up to 2,000 instructions.
N1, N2 = 1000, 1000 + 32 * 128


def aiohttp_instructions(variant: str, env: dict[str, str], n1: int = N1,
                         n2: int = N2) -> float:
    script = str(Path(__file__).resolve().parent / "drive_aiohttp.py")
    first = callgrind_total([PY, script, variant, str(n1)], env=env)
    second = callgrind_total([PY, script, variant, str(n2)], env=env)
    return (second - first) / (n2 - n1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-aiohttp", action="store_true")
    args = parser.parse_args()
    cases = [("fastapi /noop", "/noop"), ("fastapi 404", "/missing")]
    if not args.skip_aiohttp:
        cases.append(("aiohttp /noop", None))
    counts = {(case, side): [] for case, _ in cases for side in SIDES}
    for round_ in range(args.rounds):
        for case, path in cases:
            for side, (variant, extra) in SIDES.items():  # interleaved
                # One hash seed per round: a run is deterministic for a seed, but where
                # objects and type-cache entries land moves a figure by up to 2,000
                # instructions from seed to seed; the median is over those layouts.
                env = {**ENV, **extra, "PYTHONHASHSEED": str(round_)}
                if path is None:
                    counts[case, side].append(aiohttp_instructions(variant, env))
                else:
                    counts[case, side].append(asgi_instructions(
                        variant, N1, N2, env={**env, "DRIVE_PATH": path}))
    for case, _ in cases:
        bare = statistics.median(counts[case, "bare"])
        row = [f"{case:14}"]
        for side in SIDES:
            value = statistics.median(counts[case, side])
            ratios = "/".join(f"{v / b:.4f}" for v, b in zip(counts[case, side],
                                                           counts[case, "bare"], strict=True))
            row.append(f"{side} {value:,.0f} ({value / bare:.4f}; by seed {ratios})")
        print("  ".join(row))


if __name__ == "__main__":
    main()
