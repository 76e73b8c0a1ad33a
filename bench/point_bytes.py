"""Line-protocol bytes of one scrape of the busy target (bench/bridge_throughput.py's,
4,721 samples), as written and without the ``interval_s`` field the rate panels divide by:
what that field costs per scrape (docs/performance.md).

    .venv/bin/python bench/point_bytes.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bridge_throughput import exposition  # noqa: E402
from promflux.bridge.analyze.derive import TargetDeriver  # noqa: E402
from promflux.bridge.ingest.exposition import parse  # noqa: E402
from promflux.bridge.store.lineprotocol import LineEncoder  # noqa: E402


def main() -> None:
    texts = [exposition(0, step) for step in range(2)]
    deriver = TargetDeriver("svc")
    deriver.derive(parse(texts[0], deriver.cache), 0.0)  # the baseline scrape
    points = deriver.derive(parse(texts[1], deriver.cache), 15.0)
    without = [(m, t, {k: v for k, v in f.items() if k != "interval_s"}, ts)
               for m, t, f, ts in points]
    written = len(LineEncoder().encode(points))
    bare = len(LineEncoder().encode(without))
    samples = sum(1 for line in texts[1].split("\n") if line and line[0] != "#")
    print(f"{samples} samples, {len(points)} points, "
          f"{sum('interval_s' in p[2] for p in points)} with interval_s; "
          f"{written:,} bytes as written, {bare:,} without it ({written / bare - 1:+.1%})")


if __name__ == "__main__":
    main()
