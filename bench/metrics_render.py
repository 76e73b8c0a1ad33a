"""/metrics render cost of a 450-series service (50 routes x 3 methods x 3 statuses, the
default buckets): instructions per render (valgrind --tool=callgrind), this tree against a
git revision, and wall time per render (docs/performance.md).

    .venv/bin/python bench/metrics_render.py [--against a2b53b4]

Each side renders N and N + 5 times in separate callgrind runs; the difference over 5 is the
cost of one render (set-up and imports cancel out). Resources (psutil) are left out: they
cost the same on both sides.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bridge_instructions import export  # noqa: E402
from bench.exporter_overhead import ENV, callgrind_total  # noqa: E402


def recorder(root: Path):  # noqa: ANN201 - either tree's Recorder
    import promflux

    promflux.__path__.insert(0, str(root))  # this tree's, or an exported revision's
    from prometheus_client import CollectorRegistry
    from promflux.exporter.recorder import Recorder

    rec = Recorder("api", registry=CollectorRegistry(), resources=False)
    for r in range(50):
        for method in ("GET", "POST", "PUT"):
            for status in ("200", "404", "500"):
                for i in range(3):
                    rec.requests.observe((f"/api/v1/things{r}/{{thing_id}}", method, status),
                                         0.001 * (1 + i + r % 7))
    rec.flush()
    return rec


def work(renders: int) -> None:
    rec = recorder(Path(os.environ["RENDER_ROOT"]))
    for _ in range(renders):
        rec.flush()
        rec.render(None, None)


def instructions(root: Path, renders: int) -> int:
    env = {**ENV, "RENDER_ROOT": str(root)}
    return callgrind_total([sys.executable, __file__, "--work", str(renders)], env=env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="a2b53b4")
    parser.add_argument("--work", type=int)
    args = parser.parse_args()
    if args.work is not None:
        work(args.work)
        return
    sides = [(args.against, export(args.against, "exporter")), ("this tree", ROOT)]
    print("450 request series; per render:")
    for label, root in sides:
        per_render = (instructions(root, 6) - instructions(root, 1)) / 5
        print(f"  {label:12} {per_render / 1e6:8.1f} M instructions")
    for label, root in sides:  # wall time, interleaved in fresh processes
        code = (f"import sys, time; sys.argv=['x']; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
                f"import metrics_render as m; r = m.recorder(m.Path({str(root)!r})); "
                "t = time.perf_counter(); [r.render(None, None) for _ in range(20)]; "
                "print((time.perf_counter() - t) / 20 * 1000)")
        ms = float(subprocess.run([sys.executable, "-c", code], check=True,
                                  capture_output=True, text=True).stdout)
        print(f"  {label:12} {ms:8.2f} ms of wall time (mean of 20)")


if __name__ == "__main__":
    main()
