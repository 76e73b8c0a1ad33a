"""CPU of threshold evaluation per scrape, per scraped sample (docs/performance.md).

    .venv/bin/python bench/threshold_cost.py

One derived scrape of bench/bridge_throughput.py's busy target (4,721 samples); then
``alerts.figures`` + ``Evaluator.evaluate`` on its points, min of 20 runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bridge_throughput import exposition  # noqa: E402
from promflux.bridge.analyze.alerts import Evaluator, figures  # noqa: E402
from promflux.bridge.analyze.derive import TargetDeriver  # noqa: E402
from promflux.bridge.analyze.thresholds import DEFAULTS  # noqa: E402
from promflux.bridge.ingest.exposition import parse  # noqa: E402


def main() -> None:
    texts = [exposition(0, step) for step in range(2)]
    samples = sum(1 for line in texts[1].split("\n") if line and line[0] != "#")
    deriver = TargetDeriver("svc")
    deriver.derive(parse(texts[0], deriver.cache), 0.0)
    points = deriver.derive(parse(texts[1], deriver.cache), 15.0)
    evaluator = Evaluator(DEFAULTS)
    best = float("inf")
    for run in range(20):
        started = time.process_time()
        evaluator.evaluate("svc", figures(points, 5, False), 15.0 + run)
        best = min(best, time.process_time() - started)
    print(f"{len(points)} points from {samples} samples: "
          f"{best / samples * 1e6:.3f} µs per scraped sample")


if __name__ == "__main__":
    main()
