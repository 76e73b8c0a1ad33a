"""With `p95_ms: {warning: 500, critical: 500}` (the seed's limit as the critical level): how
long a p95 of 600-800 ms takes to become critical, in tests/alert_scenario.py's traffic,
pure pipeline (docs/performance.md).

    .venv/bin/python bench/alert_critical_at_limit.py [--seeds 10]
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

from tests.alert_scenario import PROBLEMS, QUIET_END, Scenario  # noqa: E402

PROBLEM = "p95 600-800 ms (over 500)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    start = PROBLEMS[PROBLEM][0]
    for interval in (5.0, 15.0):
        delays, quiet = [], 0
        for seed in range(1, args.seeds + 1):
            scenario = Scenario(interval, 0.0, seed)
            rules = dict(DEFAULTS)
            rules["p95_ms"] = dataclasses.replace(DEFAULTS["p95_ms"], critical=500.0)
            scenario.evaluator.book = RuleBook(rules)
            found = None
            for step in range(int((start + 600) / interval)):
                for _, _, changes in scenario.scrape(step):
                    quiet += sum(1 for c in changes if c.at < QUIET_END)
                    for c in changes:
                        if found is None and (c.endpoint, c.metric, c.level) == (
                                "GET /report", "p95_ms", "critical"):
                            found = c.at - start
            delays.append(found)
        print(f"{interval:.0f} s scrapes: quiet changes {quiet}; critical after {delays} s")


if __name__ == "__main__":
    main()
