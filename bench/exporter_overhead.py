"""Exporter overhead, both sides measured in one run (docs/performance.md).

    .venv/bin/python bench/exporter_overhead.py [--rounds 5] [--skip-wrk] [--skip-callgrind]

1. Instructions per request (valgrind --tool=callgrind) for a no-op FastAPI route driven
   through ASGI with no network: runs of N1 and N2 requests, (I2 - I1) / (N2 - N1), so
   start-up cancels out. PYTHONHASHSEED is fixed and long-lived objects are frozen out
   of the garbage collector so the counts repeat exactly.
2. The same in the server process, FastAPI under uvicorn and aiohttp, while a client sends
   N1 / N2 keep-alive requests over loopback (the event loop's polling makes these counts vary
   by a few thousand instructions per request between runs; see docs/performance.md).
3. Microseconds per request at the ASGI level: variants interleaved, several rounds, min.
4. Requests/s under uvicorn (and aiohttp) pinned to core 0 with wrk on core 1: bare and
   instrumented interleaved, several rounds, median.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.apps import AIOHTTP_VARIANTS, FASTAPI_VARIANTS  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}


def callgrind_total(argv: list[str], stop: object = None,
                    env: dict[str, str] | None = None) -> int:
    with tempfile.NamedTemporaryFile(suffix=".cg", delete=False) as out:
        path = out.name
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}", *argv]
    if stop is None:
        subprocess.run(cmd, env=env or ENV, check=True, capture_output=True)
    else:
        stop(cmd)  # type: ignore[operator]
    text = Path(path).read_text(errors="replace")
    os.unlink(path)
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    assert match, "no callgrind totals"
    return int(match.group(1))


def asgi_instructions(variant: str, n1: int = 300, n2: int = 1300,
                      env: dict[str, str] | None = None) -> float:
    script = str(ROOT / "bench" / "drive_asgi.py")
    a = callgrind_total([PY, script, variant, str(n1)], env=env)
    b = callgrind_total([PY, script, variant, str(n2)], env=env)
    return (b - a) / (n2 - n1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} did not open")


def aiohttp_server_argv(variant: str, port: int) -> list[str]:
    return [PY, "-c", "import sys; from aiohttp import web; from bench.apps import aiohttp_app;"
            f" web.run_app(aiohttp_app({variant!r}), host='127.0.0.1', port={port},"
            " access_log=None, print=None)"]


def server_instructions(kind: str, variant: str, n1: int = 500, n2: int = 4500,
                        env: dict[str, str] | None = None) -> float:
    """Instructions per request in a server process (aiohttp, or FastAPI under uvicorn)."""
    argv_of = aiohttp_server_argv if kind == "aiohttp" else uvicorn_argv

    def run(n: int) -> int:
        def stop(cmd: list[str]) -> None:
            port = int(cmd[-1].split("port=")[1].split(",")[0])
            proc = subprocess.Popen(cmd, env=env or ENV, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            wait_port(port)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(200):  # warm-up, as in the ASGI driver
                conn.request("GET", "/noop")
                conn.getresponse().read()
            for _ in range(n):
                conn.request("GET", "/noop")
                conn.getresponse().read()
            conn.close()
            proc.send_signal(signal.SIGINT)
            proc.wait(120)

        port = free_port()
        return callgrind_total(argv_of(variant, port), stop)

    return (run(n2) - run(n1)) / (n2 - n1)


def asgi_microseconds(variants: tuple[str, ...], rounds: int, n: int = 3000) -> dict[str, float]:
    best: dict[str, float] = {v: float("inf") for v in variants}
    script = str(ROOT / "bench" / "drive_asgi.py")
    for _ in range(rounds):
        for variant in variants:  # interleaved: drift hits every variant alike
            out = subprocess.run([PY, script, variant, str(n)], env=ENV, check=True,
                                 capture_output=True, text=True).stdout
            best[variant] = min(best[variant], float(out.strip()))
    return best


def wrk_rps(argv: list[str], port: int, seconds: int, side: list[str] | None = None) -> float:
    """Requests/s of the server ``argv`` on core 0, driven by wrk from core 1 (``side``: a
    command run beside wrk on core 1 meanwhile, such as a scraper)."""
    server = subprocess.Popen(["taskset", "-c", "0", *argv], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d1s",
                        f"http://127.0.0.1:{port}/noop"], capture_output=True, check=True)
        beside = subprocess.Popen(["taskset", "-c", "1", *side]) if side else None
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{seconds}s",
                              f"http://127.0.0.1:{port}/noop"],
                             capture_output=True, text=True, check=True).stdout
        if beside is not None:
            beside.wait(30)
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        return float(match.group(1))
    finally:
        server.terminate()
        server.wait(10)


def uvicorn_argv(variant: str, port: int) -> list[str]:
    return [PY, "-c", "import uvicorn; from bench.apps import fastapi_app;"
            f" uvicorn.run(fastapi_app({variant!r}), host='127.0.0.1', port={port},"
            " log_level='warning', access_log=False)"]


def wrk_compare(kind: str, variants: tuple[str, ...], rounds: int,
                seconds: int) -> dict[str, float]:
    results: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            port = free_port()
            argv = uvicorn_argv(variant, port) if kind == "fastapi" else aiohttp_server_argv(
                variant, port)
            results[variant].append(wrk_rps(argv, port, seconds))
    return {v: statistics.median(r) for v, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--skip-wrk", action="store_true")
    parser.add_argument("--skip-callgrind", action="store_true")
    args = parser.parse_args()

    if not args.skip_callgrind:
        print("## Instructions per request, FastAPI no-op route at ASGI level (callgrind)")
        counts = {v: asgi_instructions(v) for v in FASTAPI_VARIANTS}
        for v, c in counts.items():
            print(f"{v:20s} {c:10.0f}  ratio {c / counts['bare']:.3f}")
        print("\n## Instructions per request, FastAPI under uvicorn, server process (callgrind)")
        counts = {v: server_instructions("fastapi", v, 300, 1300) for v in ("bare", "promflux")}
        for v, c in counts.items():
            print(f"{v:20s} {c:10.0f}  ratio {c / counts['bare']:.3f}")
        print("\n## Instructions per request, aiohttp server process (callgrind)")
        counts = {v: server_instructions("aiohttp", v) for v in AIOHTTP_VARIANTS}
        for v, c in counts.items():
            print(f"{v:20s} {c:10.0f}  ratio {c / counts['bare']:.3f}")

    print(f"\n## Microseconds per request at ASGI level (min of {args.rounds} interleaved rounds)")
    us = asgi_microseconds(FASTAPI_VARIANTS, args.rounds)
    for v, t in us.items():
        print(f"{v:20s} {t:8.2f} us  ratio {t / us['bare']:.3f}")

    if not args.skip_wrk:
        for kind, variants in (("fastapi", ("bare", "promflux", "instrumentator")),
                               ("aiohttp", AIOHTTP_VARIANTS)):
            print(f"\n## {kind}: requests/s, server on core 0, wrk -t1 -c16 on core 1 "
                  f"(median of {args.rounds} interleaved rounds of {args.seconds} s)")
            rps = wrk_compare(kind, variants, args.rounds, args.seconds)
            for v, r in rps.items():
                print(f"{v:20s} {r:10.0f} req/s  ratio {r / rps['bare']:.3f}")


if __name__ == "__main__":
    main()
