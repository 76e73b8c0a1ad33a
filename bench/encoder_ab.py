"""Line-protocol encoder A/B: this tree's LineEncoder against the one at a git revision.

    .venv/bin/python bench/encoder_ab.py --against HEAD~1 [--rounds 15]

Both encode the same points (one derived scrape of bench/bridge_throughput.py's busy
target), alternating, in one process; prints min CPU µs per scraped sample for each.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bridge_throughput import exposition  # noqa: E402
from promflux.bridge.analyze.derive import TargetDeriver  # noqa: E402
from promflux.bridge.ingest.exposition import parse  # noqa: E402
from promflux.bridge.store.lineprotocol import LineEncoder  # noqa: E402


def encoder_at(revision: str) -> type:
    for path in ("bridge/store/lineprotocol.py", "bridge/lineprotocol.py"):  # new, old layout
        shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT,
                               capture_output=True, text=True)
        if shown.returncode == 0:
            break
    source = shown.stdout
    path = Path(tempfile.mkdtemp()) / "lineprotocol_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("lineprotocol_old", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.LineEncoder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="HEAD~1")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    texts = [exposition(0, step) for step in range(2)]
    samples = sum(1 for line in texts[1].split("\n") if line and line[0] != "#")
    deriver = TargetDeriver("svc")
    deriver.derive(parse(texts[0], deriver.cache), 0.0)
    points = deriver.derive(parse(texts[1], deriver.cache), 15.0)
    encoders = {args.against: encoder_at(args.against)(), "this tree": LineEncoder()}
    outputs = {e.encode(points) for e in encoders.values()}
    assert len(outputs) == 1, "the two encoders disagree"
    best = dict.fromkeys(encoders, float("inf"))
    for _ in range(args.rounds):
        for name, encoder in encoders.items():
            started = time.process_time()
            encoder.encode(points)
            encoder.encode(points)
            spent = (time.process_time() - started) / 2 / samples * 1e6
            best[name] = min(best[name], spent)
    print(f"{len(points)} points from {samples} samples; encode CPU µs per sample (min of "
          f"{args.rounds} rounds)")
    for name, us in best.items():
        print(f"  {name:12s} {us:.3f}")


if __name__ == "__main__":
    main()
