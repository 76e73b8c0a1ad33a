"""The whole job "Prometheus metrics into InfluxDB", three ways, in one run
(docs/performance.md):

* the bridge, writing its derived points to influxd;
* Prometheus 2.42 (Debian's ``prometheus``), remote-writing every sample to influxd's
  Prometheus endpoint (``/api/v1/prom/write``);
* vmagent (Debian's ``victoria-metrics``), remote-writing every sample the same way.

    .venv/bin/python bench/pipelines_into_influxdb.py [--targets 50] [--seconds 30]
        [--warmup 310] [--rounds 1]

The same targets as bench/bridge_vs_prometheus.py (nginx serving a 2,140-sample page whose
every counter grows each second), scraped at 1 s. Each pipeline runs alone on the machine
with its own new influxd, in turn, rounds interleaved. Over the measured window, after the
warm-up: CPU seconds of the scraper and of its influxd from /proc, per scraped sample;
scrapes kept (nginx's log); and what reached InfluxDB: points influxd accepted (its
``/debug/vars`` write statistics) per scraped sample, and for the alternatives the share
of the scraped samples that is (one point per sample when all arrive). The bridge stores
fewer points than samples by design (percentiles and rates, not every bucket); its
delivery is its own dropped-points counter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bridge_vs_prometheus import (  # noqa: E402
    bridge_argv,
    bridge_config,
    cpu_seconds,
    own_counters,
    prometheus_config,
    scrapes,
    served_fleet,
)
from bench.exporter_overhead import free_port, wait_port  # noqa: E402
from tests.influx import InfluxServer  # noqa: E402


def accepted_points(influx: InfluxServer) -> float:
    """Points influxd's points writer was asked to store (every write endpoint)."""
    stats = httpx.get(influx.url + "/debug/vars", timeout=10).json()
    return float(stats["write"]["values"].get("pointReq", 0))


def start_scraper(kind: str, d: Path, port: int, targets: int, influx: InfluxServer,
                  listen: int) -> subprocess.Popen[bytes]:
    if kind == "bridge":
        config = bridge_config(d, "pipe", influx.url, port, targets, listen)
        return subprocess.Popen(bridge_argv(config, None), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    influx.query("CREATE DATABASE prom")
    write = f"{influx.url}/api/v1/prom/write?db=prom"
    config = prometheus_config(d, port, targets)
    if kind == "prometheus":
        text = config.read_text() + f"remote_write:\n  - url: {write}\n"
        config.write_text(text)
        tsdb = d / f"tsdb{time.monotonic_ns()}"
        return subprocess.Popen(["prometheus", f"--config.file={config}",
                                 f"--storage.tsdb.path={tsdb}",
                                 f"--web.listen-address=127.0.0.1:{listen}",
                                 "--log.level=warn"], stderr=subprocess.DEVNULL)
    queue = d / f"vmagent{time.monotonic_ns()}"
    return subprocess.Popen(["vmagent", f"-promscrape.config={config}",
                             f"-remoteWrite.url={write}", f"-remoteWrite.tmpDataPath={queue}",
                             f"-httpListenAddr=127.0.0.1:{listen}", "-loggerLevel=ERROR"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


AGENTS = {"bridge": "Python", "prometheus": "Prometheus", "vmagent": "vm_promscrape"}


def measure(args: argparse.Namespace, kind: str, d: Path, port: int, samples: int) -> None:
    influx = InfluxServer()
    listen = free_port()
    scraper = start_scraper(kind, d, port, args.targets, influx, listen)
    try:
        wait_port(listen)
        time.sleep(args.warmup)
        assert influx.proc is not None
        pids = {"scraper": scraper.pid, "influxd": influx.proc.pid}
        before = {n: cpu_seconds(pid) for n, pid in pids.items()}
        points_before, start = accepted_points(influx), time.time()
        time.sleep(args.seconds)
        end = time.time()
        after = {n: cpu_seconds(pid) for n, pid in pids.items()}
        points = accepted_points(influx) - points_before
        own = own_counters(listen) if kind == "bridge" else {}
    finally:
        scraper.terminate()
        scraper.wait(30)
        influx.close()
    time.sleep(1.5)  # nginx flushes its log buffer every second
    kept = sum(len(t) for t in scrapes(d / "access.log", start, end)
               .get(AGENTS[kind], {}).values())
    scraped = max(kept * samples, 1)
    cpu = {n: after[n] - before[n] for n in pids}
    line = (f"  {kind:10} scraper {cpu['scraper'] / scraped * 1e6:5.2f} + influxd "
            f"{cpu['influxd'] / scraped * 1e6:5.2f} = "
            f"{(cpu['scraper'] + cpu['influxd']) / scraped * 1e6:5.2f} us per scraped sample "
            f"({(cpu['scraper'] + cpu['influxd']) / args.seconds * 100:.0f} % of a core); "
            f"scrapes kept {kept / (args.targets * args.seconds) * 100:5.1f} %; "
            f"{points / scraped:.3f} points per scraped sample")
    if kind == "bridge":
        line += f"; points dropped (whole run) {own['promflux_bridge_points_dropped_total']:,.0f}"
    else:
        line += f" ({min(points / scraped, 1.0) * 100:.0f} % of the samples stored)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=310.0,
                        help="seconds before measuring (310: the bridge's windows are full)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with served_fleet("bench-pipelines-") as (d, _, port, pages):
        print(f"{args.targets} targets x {pages.samples} samples at 1 s, "
              f"{args.seconds:.0f} s measured after {args.warmup:.0f} s", flush=True)
        for round_ in range(args.rounds):
            print(f"-- round {round_ + 1}", flush=True)
            for kind in AGENTS:  # interleaved: drift hits every side alike
                measure(args, kind, d, port, pages.samples)


if __name__ == "__main__":
    main()
