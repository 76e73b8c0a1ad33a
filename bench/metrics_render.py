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
import re
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    with tempfile.NamedTemporaryFile(suffix=".cg", delete=False) as out:
        path = out.name
    env = {**os.environ, "PYTHONHASHSEED": "0", "RENDER_ROOT": str(root)}
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}",
                    sys.executable, __file__, "--work", str(renders)],
                   env=env, check=True, capture_output=True)
    text = Path(path).read_text(errors="replace")
    os.unlink(path)
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    assert match, "no callgrind totals"
    return int(match.group(1))


def export(revision: str) -> Path:
    archive = subprocess.run(["git", "archive", revision, "exporter", "promflux"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    directory = Path(tempfile.mkdtemp(prefix="exporter-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="a2b53b4")
    parser.add_argument("--work", type=int)
    args = parser.parse_args()
    if args.work is not None:
        work(args.work)
        return
    sides = [(args.against, export(args.against)), ("this tree", ROOT)]
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
