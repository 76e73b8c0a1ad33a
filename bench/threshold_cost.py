"""CPU of threshold evaluation per scrape, per scraped sample (docs/performance.md).

    .venv/bin/python bench/threshold_cost.py

bench/bridge_throughput.py's busy target, derived scrape after scrape until its 5-minute
window is full and every endpoint has a baseline; then ``Evaluator.observe`` of one more
scrape (add to the windows, judge every figure and regression), min of 20 runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bridge_throughput import exposition  # noqa: E402

WINDOW_SCRAPES = 20
from promflux.bridge.analyze.alerts import Evaluator  # noqa: E402
from promflux.bridge.analyze.derive import TargetDeriver  # noqa: E402
from promflux.bridge.analyze.regression import Baseline  # noqa: E402
from promflux.bridge.analyze.rules import RuleBook  # noqa: E402
from promflux.bridge.analyze.thresholds import DEFAULTS, REGRESSION_DEFAULTS  # noqa: E402
from promflux.bridge.ingest.exposition import parse  # noqa: E402


def main() -> None:
    texts = [exposition(0, step) for step in range(WINDOW_SCRAPES + 2)]
    samples = sum(1 for line in texts[1].split("\n") if line and line[0] != "#")
    deriver = TargetDeriver("svc")
    evaluator = Evaluator(RuleBook({**DEFAULTS, **REGRESSION_DEFAULTS}))
    scrapes = []
    for step, text in enumerate(texts):
        derived = deriver.derive_all(parse(text, deriver.cache), step * 15.0, target="t")
        scrapes.append((derived.increments, step * 15.0))
    # A full window (20 scrapes at 15 s), then a baseline for every endpoint, so each
    # scrape runs every check the bridge runs: windows, ratios, regressions.
    for found, now in scrapes[:-1]:
        evaluator.observe("svc", "t", found, now)
    run = evaluator.windows["svc"].run(300.0)
    evaluator.baselines = {("svc", e): Baseline(c, "bench") for e, c in run.endpoints.items()}
    evaluator.baselines[("svc", "_all")] = Baseline(run.service(), "bench")
    found, now = scrapes[-1]
    if "--profile" in sys.argv:
        import cProfile
        import pstats
        profile = cProfile.Profile()
        profile.runcall(lambda: [evaluator.observe("svc", "t", found, now + r * 15.0)
                                 for r in range(20)])
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        return
    best = float("inf")
    for repeat in range(20):
        started = time.process_time()
        evaluator.observe("svc", "t", found, now + repeat * 15.0)
        best = min(best, time.process_time() - started)
    print(f"{len(run.endpoints)} endpoints, {samples} samples: "
          f"{best * 1000:.2f} ms per scrape, {best / samples * 1e6:.3f} µs per scraped sample")


if __name__ == "__main__":
    main()
