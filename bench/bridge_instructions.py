"""Bridge instructions per scraped sample (valgrind --tool=callgrind), this tree against a git
revision: parse + derive + encode, repeatable where timings on this VM are not.

    .venv/bin/python bench/bridge_instructions.py [--against d00f3e9 | --mypyc | --native]

--native: this tree's pure-Python core (PROMFLUX_PURE=1) against its compiled one.

The expositions (bench/bridge_throughput.py's busy target, 4,721 samples) are made once and
saved; a worker reads them, takes the baseline scrape, then runs N scrapes. Runs with N = 1 and
N = 3 under callgrind: (I3 - I1) / (2 x samples) cancels start-up. PYTHONHASHSEED is fixed and
the objects made before the scrapes are frozen out of the garbage collector.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stages(root: Path) -> tuple:
    """TargetDeriver, parse and LineEncoder of the tree at ``root``, in either layout, or of
    a compiled copy (``bench/compiled.py``: ``root`` is its promflux folder)."""
    if root.name == "promflux" and (root / "bridge").is_dir():
        import promflux

        promflux.__path__.insert(0, str(root))
        sys.path.append(str(root.parent))  # the shared mypyc runtime
        from promflux.bridge.analyze.derive import TargetDeriver
        from promflux.bridge.ingest.exposition import parse
        from promflux.bridge.store.lineprotocol import LineEncoder
    elif (root / "promflux").is_dir():  # the namespace layout: bridge/ is promflux.bridge
        import promflux

        promflux.__path__.append(str(root))
        from promflux.bridge.analyze.derive import TargetDeriver
        from promflux.bridge.ingest.exposition import parse
        from promflux.bridge.store.lineprotocol import LineEncoder
    else:  # the flat layout of earlier revisions
        from bridge.derive import TargetDeriver  # type: ignore[no-redef]
        from bridge.exposition import parse  # type: ignore[no-redef]
        from bridge.lineprotocol import LineEncoder  # type: ignore[no-redef]
    return TargetDeriver, parse, LineEncoder


def work(texts_path: str, scrapes: int) -> None:
    TargetDeriver, parse, LineEncoder = stages(Path(os.environ["PYTHONPATH"]))

    texts = json.loads(Path(texts_path).read_text())
    deriver, encoder = TargetDeriver("svc"), LineEncoder()
    encoder.encode(deriver.derive(parse(texts[0], deriver.cache), 0.0))
    gc.collect()
    gc.freeze()
    for step in range(1, scrapes + 1):
        encoder.encode(deriver.derive(parse(texts[step], deriver.cache), 15.0 * step))


def instructions(root: Path, texts_path: str, scrapes: int, pure: bool = False) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(root)}
    env.pop("PROMFLUX_PURE", None)
    if pure:
        env["PROMFLUX_PURE"] = "1"
    return callgrind_total([sys.executable, __file__, "--work", texts_path, str(scrapes)], env)


def callgrind_total(argv: list[str], env: dict[str, str]) -> int:
    """The instructions ``argv`` runs, all told (valgrind --tool=callgrind)."""
    with tempfile.NamedTemporaryFile(suffix=".cg", delete=False) as out:
        path = out.name
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}", *argv],
                   env=env, check=True, capture_output=True)
    text = Path(path).read_text(errors="replace")
    os.unlink(path)
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    assert match, "no callgrind totals"
    return int(match.group(1))


def export(revision: str, package: str = "bridge") -> Path:
    """A package (bridge/ or exporter/, with promflux/ where the revision has it) as it was
    at ``revision``, in a temporary directory (benches compare it with this tree)."""
    folders = [package] + [name for name in ("promflux",) if subprocess.run(
        ["git", "cat-file", "-e", f"{revision}:{name}"], cwd=ROOT,
        stderr=subprocess.DEVNULL).returncode == 0]
    archive = subprocess.run(["git", "archive", revision, *folders], cwd=ROOT, check=True,
                             capture_output=True).stdout
    directory = Path(tempfile.mkdtemp(prefix=f"{package}-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="d00f3e9")
    parser.add_argument("--mypyc", action="store_true",
                        help="this tree against itself with its hot modules compiled")
    parser.add_argument("--native", action="store_true",
                        help="this tree's pure-Python core against its compiled one")
    parser.add_argument("--work", nargs=2, metavar=("TEXTS", "SCRAPES"))
    args = parser.parse_args()
    if args.work:
        work(args.work[0], int(args.work[1]))
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from bridge_throughput import exposition

    texts = [exposition(0, step) for step in range(4)]
    samples = sum(1 for line in texts[1].split("\n") if line and line[0] != "#")
    texts_path = Path(tempfile.mkdtemp()) / "texts.json"
    texts_path.write_text(json.dumps(texts))
    print(f"1 target x {samples} samples; instructions per scraped sample "
          "(parse + derive + encode)")
    if args.mypyc:
        from compiled import compiled_copy

        sides = [("this tree", ROOT), ("mypyc", compiled_copy())]
    elif args.native:
        sides = [("pure", ROOT), ("compiled C", ROOT)]
    else:
        sides = [(args.against, export(args.against)), ("this tree", ROOT)]
    for label, root in sides:
        pure = label == "pure"
        one = instructions(root, str(texts_path), 1, pure)
        three = instructions(root, str(texts_path), 3, pure)
        print(f"  {label:12s} {(three - one) / (2 * samples):8.0f}")


if __name__ == "__main__":
    main()
