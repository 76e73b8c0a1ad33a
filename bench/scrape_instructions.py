"""Instructions per scraped sample of everything the bridge does with one scrape in process
(parse, derive, threshold windows and judgement, encode), this tree against a git revision,
both on their compiled cores (valgrind --tool=callgrind: repeatable where timings are not).
Pages go the scrape loop's way: the steady scan first where the revision has one.

    .venv/bin/python bench/scrape_instructions.py --against 886ffda [--changing 0.1]
    .venv/bin/python bench/scrape_instructions.py --parts  (up to derive, windows, encode)

The page is bench/bridge_vs_prometheus.py's (2,140 samples, every counter growing by whole
requests, or only ``--changing`` of the routes busy). A worker takes 300 scrapes a second
apart first (the 5-minute windows full, the scrapes of a window slot merged, as at 1 s
scrapes), then N more; runs with N = 2, 18 and 34 cancel start-up and the warm-up:
(I18 - I2) / (16 x samples) and (I34 - I18) / (16 x samples), and their mean (the
allocator's pools and arenas move one such window by a few hundred instructions per
sample either way). Sixteen scrapes are whole window slots, of 8 s or of the 4 s slots
before them: the work done once a slot (judging, and adding the slot's held scrapes to
the sums) is counted as often as it happens, wherever the slots begin. All runs make the
same pages beforehand, so that making them cancels out too. PYTHONHASHSEED
is fixed and the warm-up's objects are frozen out of the garbage collector. The revision
gets a compiled core built from its own C source with the flags setup.py gives
(``native_core``).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WARM = 300
# Scrapes counted: the difference of two runs is one window of 16 scrapes. Two windows
# in a row, because pymalloc's pools and arenas (emptied and taken again) move a
# window's count by a few hundred instructions per sample either way.
COUNTS = (2, 18, 34)


def native_core(root: Path) -> Path:
    """``root`` (an exported revision) with a compiled core of its own C source: this tree's
    build when the source is the same, else one built here."""
    source = root / "bridge" / "_native.c"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = ROOT / "bridge" / f"_native{suffix}"
    if source.read_bytes() == (ROOT / "bridge" / "_native.c").read_bytes() and built.exists():
        shutil.copy2(built, root / "bridge" / built.name)
        return root
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    subprocess.run([*compiler, "-shared", "-fPIC",
                    *(sysconfig.get_config_var("CFLAGS") or "").split(), "-O2",
                    *(sysconfig.get_config_var("CFLAGSFORSHARED") or "").split(),
                    f"-I{sysconfig.get_paths()['include']}", str(source),
                    "-o", str(root / "bridge" / f"_native{suffix}")], check=True)
    return root


def work(changing: float, scrapes: int, upto: str = "encode") -> None:
    """The warm-up, then ``scrapes`` counted ones done up to the part ``upto`` (derive,
    windows or encode)."""
    import promflux

    promflux.__path__.insert(0, os.environ["PROMFLUX_ROOT"])
    sys.path.insert(0, str(ROOT / "bench"))
    from bridge_vs_prometheus import page_template, render
    from promflux.bridge import native
    from promflux.bridge.analyze.alerts import Evaluator
    from promflux.bridge.analyze.derive import TargetDeriver
    from promflux.bridge.analyze.rules import RuleBook
    from promflux.bridge.analyze.thresholds import DEFAULTS, REGRESSION_DEFAULTS
    from promflux.bridge.ingest.exposition import parse
    from promflux.bridge.store.lineprotocol import LineEncoder

    assert native.compiled is not None, "the compiled core did not load"
    template = page_template(50, changing)
    # (as many pages made in either run: making them is not the bridge's work)
    texts = [render(template, second) for second in range(WARM + COUNTS[-1])]
    deriver, encoder = TargetDeriver("svc"), LineEncoder()
    evaluator = Evaluator(RuleBook({**DEFAULTS, **REGRESSION_DEFAULTS}))
    try:  # (as the scrape loop takes a page: the steady scan first, where there is one)
        from promflux.bridge.ingest.steady import SteadyPages
    except ImportError:
        steady = None
    else:
        steady = SteadyPages(deriver)

    def digest(text: str, now: float) -> Any:
        quick = None if steady is None else steady.derive(text, False, None, now, now, "t")
        if quick is not None:
            return quick[1]
        scraped = parse(text, deriver.cache)
        derived = deriver.derive_all(scraped, now, now, True, "t")
        if steady is not None:
            steady.arm(scraped, text)
        return derived

    def scrape(second: int, upto: str = "encode") -> None:
        now = 1_000.0 + second
        derived = digest(texts[second], now)
        if upto == "derive":
            return
        points = derived.points
        points += [change.point() for change in evaluator.observe(
            "svc", "t", derived.increments, now, True, True)]
        if upto != "windows":
            encoder.encode(points)

    for second in range(WARM):
        scrape(second)
    gc.collect()
    gc.freeze()
    for second in range(WARM, WARM + scrapes):
        scrape(second, upto)


def instructions(root: Path, changing: float, scrapes: int, upto: str = "encode") -> int:
    from bench.bridge_instructions import callgrind_total

    env = {**os.environ, "PYTHONHASHSEED": "0", "PROMFLUX_ROOT": str(root)}
    env.pop("PROMFLUX_PURE", None)
    return callgrind_total([sys.executable, __file__, "--work", str(changing), str(scrapes),
                            upto], env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", required=False, help="a git revision to compare with")
    parser.add_argument("--changing", type=float, default=1.0,
                        help="share of routes whose counters grow each second (1: all)")
    parser.add_argument("--parts", action="store_true",
                        help="this tree's figure up to derive, then windows, then encode")
    parser.add_argument("--work", nargs=3, metavar=("CHANGING", "SCRAPES", "UPTO"))
    args = parser.parse_args()
    if args.work:
        work(float(args.work[0]), int(args.work[1]), args.work[2])
        return
    sys.path.insert(0, str(ROOT))
    from bench.bridge_instructions import export

    sides = [("this tree", ROOT)]
    if args.against:
        sides.insert(0, (args.against, native_core(export(args.against))))
    sys.path.insert(0, str(ROOT / "bench"))
    from bridge_vs_prometheus import page_template

    samples = sum(1 for head, _, _ in page_template(50, args.changing) if head[:1] not in "#")
    print(f"1 target x {samples} samples at 1 s, windows full, {args.changing:.0%} of routes "
          "busy; instructions per scraped sample (parse, derive, windows and judgement, "
          "encode)")
    runs = [(label, root, "encode") for label, root in sides]
    if args.parts:  # (each part is the difference between two of these)
        runs = [(f"up to {upto}", ROOT, upto) for upto in ("derive", "windows", "encode")]
    for label, root, upto in runs:
        totals = [instructions(root, args.changing, n, upto) for n in COUNTS]
        windows = [(b - a) / ((m - n) * samples)
                   for (n, a), (m, b) in itertools.pairwise(zip(COUNTS, totals, strict=True))]
        print(f"  {label:16s} {sum(windows) / len(windows):8.0f}  (windows: "
              + ", ".join(f"{w:.0f}" for w in windows) + ")")


if __name__ == "__main__":
    main()
