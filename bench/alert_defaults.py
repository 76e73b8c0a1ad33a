"""How the defaults of alpha and for were chosen: state changes during 30 quiet minutes of
tests/alert_scenario.py's traffic (an endpoint exactly at its p95 limit, one at 3 % errors,
an active service at 17 requests/min), pure pipeline, no baselines (docs/alerts.md).

    .venv/bin/python bench/alert_defaults.py [--seeds 40]

Prints, per (alpha, for) and scrape interval, how many seeds saw any state change.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promflux.bridge.analyze.rules import RuleBook  # noqa: E402
from promflux.bridge.analyze.thresholds import DEFAULTS  # noqa: E402

from tests.alert_scenario import QUIET_END, Scenario  # noqa: E402

SETTINGS = [(0.01, 30.0), (0.001, 30.0), (0.0001, 30.0), (0.001, 60.0), (0.0001, 60.0)]


def noisy_seeds(alpha: float, for_s: float, interval: float, seeds: int) -> int:
    noisy = 0
    for seed in range(1, seeds + 1):
        scenario = Scenario(interval, 1_000_000.0, seed)
        scenario.evaluator.book = RuleBook({
            k: dataclasses.replace(v, alpha=alpha, for_seconds=for_s)
            for k, v in DEFAULTS.items()})
        changes = 0
        for step in range(int(QUIET_END / interval)):
            changes += sum(len(found) for _, _, found in scenario.scrape(step))
        noisy += changes > 0
    return noisy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    print(f"{'alpha':>7} {'for':>5}  seeds with a change (of {args.seeds}): 5 s, 15 s scrapes")
    for alpha, for_s in SETTINGS:
        found = [noisy_seeds(alpha, for_s, interval, args.seeds) for interval in (5.0, 15.0)]
        print(f"{alpha:7g} {for_s:4.0f}s  {found[0]:>3} {found[1]:>5}")


if __name__ == "__main__":
    main()
