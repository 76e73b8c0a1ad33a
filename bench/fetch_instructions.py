"""Instructions per fetched answer of the bridge's scrape request (``ingest.fetch.fetch``:
aiohttp's request and answer, inflating the gzip'd page, reading the body within its
limit, decoding it), this tree against a git revision (valgrind --tool=callgrind).

    .venv/bin/python bench/fetch_instructions.py --against 78ecbd7

Debian's nginx serves bench/bridge_vs_prometheus.py's page (about 2,140 samples, 278 KB,
gzip'd at nginx's level 1 to about 11 KB) on loopback; only the fetching process runs under
callgrind. Runs with N = 20 and N = 120 fetches over one kept-alive connection cancel
start-up: (I120 - I20) / 100, and per scraped sample.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHORT, LONG = 20, 120


def work(url: str, fetches: int) -> None:
    """``fetches`` scrape requests of ``url`` as the bridge makes them."""
    import promflux

    promflux.__path__.insert(0, os.environ["PROMFLUX_ROOT"])
    import aiohttp
    from promflux.bridge.config import Target
    from promflux.bridge.ingest.fetch import AuthCache, fetch

    try:  # (a revision from before zlib-ng inflates with Python's zlib)
        from promflux.bridge.inflate import use_fastest_zlib
    except ImportError:
        pass
    else:
        use_fastest_zlib()

    async def run() -> None:
        target = Target(service="svc", url=url)
        auth = AuthCache(target)
        async with aiohttp.ClientSession(auto_decompress=True) as session:  # (as the bridge's)
            for _ in range(fetches):
                fetched = await fetch(session, target, 30.0, 50_000_000, auth)
                assert fetched.text.endswith("\n")

    asyncio.run(run())


def instructions(root: Path, url: str, fetches: int) -> int:
    from bench.bridge_instructions import callgrind_total

    env = {**os.environ, "PYTHONHASHSEED": "0", "PROMFLUX_ROOT": str(root)}
    return callgrind_total([sys.executable, __file__, "--work", url, str(fetches)], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="a git revision to compare with")
    parser.add_argument("--work", nargs=2, metavar=("URL", "FETCHES"))
    args = parser.parse_args()
    if args.work:
        work(args.work[0], int(args.work[1]))
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from bridge_vs_prometheus import page_template, render, start_nginx

    from bench.bridge_instructions import export

    sides = [("this tree", ROOT)]
    if args.against:
        sides.insert(0, (args.against, export(args.against)))
    template = page_template(50, 1.0)
    samples = sum(1 for head, _, _ in template if head[:1] not in "#")
    d = Path(tempfile.mkdtemp(prefix="fetch-instructions"))
    nginx, port = start_nginx(d)
    try:
        (d / "www" / "page.txt").write_text(render(template, 100))
        url = f"http://127.0.0.1:{port}/t1/metrics"
        print(f"one answer of {samples} samples, gzip'd by nginx; instructions per answer "
              "(and per sample)")
        for label, root in sides:
            short = instructions(root, url, SHORT)
            long = instructions(root, url, LONG)
            per_answer = (long - short) / (LONG - SHORT)
            print(f"  {label:16s} {per_answer:11,.0f} ({per_answer / samples:,.0f})")
    finally:
        nginx.terminate()
        nginx.wait(20)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
