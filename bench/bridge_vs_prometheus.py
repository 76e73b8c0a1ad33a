"""The whole bridge process beside Debian's Prometheus, measured from outside, in one run
(docs/performance.md).

    .venv/bin/python bench/bridge_vs_prometheus.py [--targets 50] [--seconds 40]
        [--rounds 1] [--against REVISION] [--mypyc] [--pure] [--asyncio] [--changing 0.1]
        [--alone] [--together] [--profile stacks.txt]

Every target serves the same realistic page (a 50-route service from the exporter itself:
76 latency series and the resource gauges, about 2,140 samples), from Debian's nginx, so
the targets cost neither scraper anything. The page's counters grow every second, as a
busy service's do. The bridge (``python -m promflux.bridge``, default settings, writing to
a real influxd), Prometheus (``prometheus`` 2.42, its own TSDB) and vmagent (Debian's
``victoria-metrics``, remote-writing to nginx, which discards the writes) scrape all
targets at 1 s at the same time. Over the measured window, after a warm-up:

* CPU seconds of each process from /proc (bridge, Prometheus, and influxd, which only the
  bridge feeds), per scraped sample;
* scrapes kept: requests nginx logged per scraper over targets x seconds, and the p99 gap
  between two scrapes of one target;
* the bridge's RSS growth per tracked sample series, against a bridge scraping one target.

With ``--against``, a git revision's bridge runs in alternate rounds against the same
targets and influxd (before and after in one run); with ``--together`` the sides' bridges
run at the same time instead, measured over one window, so that the machine's drift
between rounds weighs on none of them more than another. ``--profile`` samples the bridge with
py-spy during the measured window (collapsed stacks: where its CPU goes).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.exporter_overhead import free_port, wait_port  # noqa: E402
from tests.influx import InfluxServer  # noqa: E402

_GROWS = re.compile(r"_(bucket|count|sum|total)(\{|\s)")


_ROUTE = re.compile(r"things(\d+)/")


def page_template(routes: int = 50, changing: float = 1.0) -> list[tuple[str, float, bool]]:
    """The page as (text before the value, value, grows) per line. ``changing``: the share
    of routes that get requests (the others' lines stay as they are, as on a real page
    between two scrapes); the process's own counters always grow."""
    from prometheus_client import CollectorRegistry
    from promflux.exporter.recorder import Recorder

    rec = Recorder("api", registry=CollectorRegistry(), resources=True)
    for r in range(routes):
        combos = [("GET", "200")] + ([("GET", "404")] if r % 2 == 0 else [])
        combos += [("POST", "201")] if r == 0 else []
        for method, status in combos:
            for i in range(5):
                rec.requests.observe((f"/api/v1/things{r}/{{thing_id}}", method, status),
                                     0.001 * (1 + i * 20 + r % 7))
    rec.flush()
    body = rec.render(None, None)[0]
    text = body.decode() if isinstance(body, bytes) else body
    lines = []
    for line in text.splitlines():
        if line.startswith("#") or not line:
            lines.append((line, 0.0, False))
            continue
        head, _, value = line.rpartition(" ")
        route = _ROUTE.search(head)
        busy = route is None or int(route.group(1)) < round(routes * changing)
        lines.append((head, float(value), busy and bool(_GROWS.search(line))))
    return lines


def render(template: list[tuple[str, float, bool]], second: int) -> str:
    # Every counter grows, by whole requests as request counters do (a quarter of a
    # request does not happen); cumulative buckets stay ordered.
    factor = 1.0 + second
    out = []
    for head, value, grows in template:
        if not head or head.startswith("#"):
            out.append(head)
        elif grows:
            out.append(f"{head} {round(value * factor, 6)!r}")
        else:
            out.append(f"{head} {value!r}")
    return "\n".join(out) + "\n"


class Pages(threading.Thread):
    """Rewrites the served page every second (atomically: nginx never reads half a page)."""

    def __init__(self, root: Path, routes: int = 50, changing: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.root, self.template = root, page_template(routes, changing)
        self.samples = sum(1 for head, _, _ in self.template if head and head[0] != "#")
        self.stop = threading.Event()
        self.write(0)

    def write(self, second: int) -> None:
        tmp = self.root / "page.tmp"
        tmp.write_text(render(self.template, second))
        os.replace(tmp, self.root / "page.txt")

    def run(self) -> None:
        second = 0
        while not self.stop.wait(1.0):
            second += 1
            self.write(second)


NGINX = """
daemon off; master_process off; worker_processes 1; user root;
pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 8192; }}
http {{
  log_format scrape '$msec $http_user_agent $request_uri';
  access_log {d}/access.log scrape buffer=256k flush=1s;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  gzip on; gzip_types text/plain; gzip_comp_level 1; keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port};
    root {d}/www;
    location ~ ^/t[0-9]+/metrics$ {{ default_type text/plain; try_files /page.txt =404; }}
    # vmagent's remote write, read and thrown away: its cost stays its own
    location = /api/v1/write {{ access_log off; return 204; }}
  }}
}}
"""


def start_nginx(d: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (d / "www").mkdir()
    (d / "tmp").mkdir()
    (d / "nginx.conf").write_text(NGINX.format(d=d, port=port))
    proc = subprocess.Popen(["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)])
    wait_port(port)
    return proc, port


def bridge_config(d: Path, name: str, influx: str, port: int, targets: int,
                  listen: int = 0, interval: float = 1.0, query: str = "") -> Path:
    lines = [f"influxdb:\n  url: {influx}\n  database: {name}",
             f"scrape:\n  interval: {interval:g}s\n  timeout: {min(interval, 10):g}s",
             f"buffer:\n  path: {d}/{name}-buffer", f"listen: 127.0.0.1:{listen or free_port()}",
             "targets:"]
    lines += [f"  - service: svc{t}\n    url: http://127.0.0.1:{port}/t{t}/metrics{query}"
              for t in range(targets)]
    path = d / f"{name}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def prometheus_config(d: Path, port: int, targets: int) -> Path:
    groups = "".join(f"      - targets: ['127.0.0.1:{port}']\n"
                     f"        labels: {{__metrics_path__: /t{t}/metrics, service: svc{t}}}\n"
                     for t in range(targets))
    path = d / "prometheus.yml"
    path.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: bench\n    static_configs:\n" + groups)
    return path


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1048576


def scrapes(log: Path, start: float, end: float) -> dict[str, dict[str, list[float]]]:
    """Request times by scraper (user agent's first word) and target, within [start, end)."""
    seen: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in log.read_text().splitlines():
        fields = line.split(" ")  # $msec $http_user_agent $request_uri
        stamp, agent, uri = fields[0], fields[1], fields[-1]
        if start <= float(stamp) < end:
            seen[agent.split("/")[0]][uri].append(float(stamp))
    return seen


def kept_and_p99(by_target: list[list[float]]) -> tuple[int, float]:
    """Scrapes done (each target's request times) and the p99 gap between two of a target."""
    gaps = sorted(b - a for times in by_target for a, b in itertools.pairwise(times))
    return (sum(len(times) for times in by_target),
            gaps[int(len(gaps) * 0.99)] if gaps else float("nan"))


def bridge_argv(config: Path, root: Path | None) -> list[str]:
    """The bridge's command line: this tree's, or an exported revision's (``root``)."""
    if root is None:
        return [sys.executable, "-m", "promflux.bridge", "--config", str(config)]
    # (The folder above ``root`` holds a compiled copy's shared mypyc runtime, if any.)
    return [sys.executable, "-c", "import sys, os, promflux; promflux.__path__.insert(0, "
            "sys.argv[1]); sys.path.append(os.path.dirname(sys.argv[1]));"
            " from promflux.bridge.__main__ import main; sys.exit(main(sys.argv[2:]))",
            str(root), "--config", str(config)]


@contextmanager
def served_fleet(prefix: str, routes: int = 50, changing: float = 1.0,
                 ) -> Iterator[tuple[Path, InfluxServer, int, Pages]]:
    """A scratch folder, a real influxd, nginx serving the growing page on a port, and the
    page writer: (folder, influxd, port, pages), all stopped and removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    influx = InfluxServer()
    nginx, port = start_nginx(d)
    pages = Pages(d / "www", routes, changing)
    pages.start()
    try:
        yield d, influx, port, pages
    finally:
        pages.stop.set()
        nginx.terminate()
        nginx.wait(20)
        influx.close()
        shutil.rmtree(d, ignore_errors=True)


def bridge_rss_one_target(d: Path, influx: str, port: int, root: Path | None,
                          interval: float = 1.0, env: dict[str, str] | None = None) -> float:
    """RSS of a bridge scraping one target, settled: the fixed cost to subtract."""
    proc = subprocess.Popen(bridge_argv(bridge_config(d, "one", influx, port, 1,
                                                      interval=interval), root), cwd=ROOT,
                            env=env)
    try:
        # a dozen scrapes at 1 s (a few at longer intervals): caches at their steady size
        time.sleep(max(12.0, 3 * interval + 5))
        return rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)


OWN = ("promflux_bridge_points_written_total", "promflux_bridge_points_dropped_total",
       "promflux_bridge_scrapes_deferred_total", "promflux_bridge_write_queue_bytes",
       "promflux_bridge_write_duration_seconds_count")


def own_counters(port: int) -> dict[str, float]:
    """The bridge's own figures, summed over their labels (targets, reasons)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    sums = dict.fromkeys(OWN, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in sums:
                sums[sample.name] += sample.value
    return sums


def start_vmagent(d: Path, port: int, config: Path) -> subprocess.Popen[bytes]:
    """Debian's vmagent on the same scrape configuration, remote-writing to nginx, which
    reads and discards the writes."""
    listen = free_port()
    shutil.rmtree(d / "vmagent", ignore_errors=True)
    proc = subprocess.Popen(["vmagent", f"-promscrape.config={config}",
                             f"-remoteWrite.url=http://127.0.0.1:{port}/api/v1/write",
                             f"-remoteWrite.tmpDataPath={d}/vmagent",
                             f"-httpListenAddr=127.0.0.1:{listen}", "-loggerLevel=ERROR"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(listen)
    return proc


def start_others(d: Path, port: int, targets: int) -> dict[str, subprocess.Popen[bytes]]:
    """Prometheus and vmagent on the same targets, running."""
    prom_port = free_port()
    prom_config = prometheus_config(d, port, targets)
    shutil.rmtree(d / "tsdb", ignore_errors=True)
    prom = subprocess.Popen(["prometheus", f"--config.file={prom_config}",
                             f"--storage.tsdb.path={d}/tsdb",
                             f"--web.listen-address=127.0.0.1:{prom_port}",
                             "--log.level=warn"], stderr=subprocess.DEVNULL)
    wait_port(prom_port)
    return {"prometheus": prom, "vmagent": start_vmagent(d, port, prom_config)}


def measure(args: argparse.Namespace, d: Path, influx: InfluxServer, port: int,
            pages: Pages, root: Path | None, rss_one: float,
            env: dict[str, str] | None = None) -> None:
    """One round: the bridge, Prometheus and vmagent side by side, then all stopped."""
    name, listen = f"bench{time.monotonic_ns()}", free_port()
    bridge = subprocess.Popen(bridge_argv(bridge_config(d, name, influx.url, port,
                                                        args.targets, listen), root), cwd=ROOT,
                              env=env)
    others = {} if args.alone else start_others(d, port, args.targets)
    try:
        time.sleep(args.warmup)
        assert influx.proc is not None
        pids = {"bridge": bridge.pid, **{n: p.pid for n, p in others.items()},
                "influxd": influx.proc.pid}
        before = {n: cpu_seconds(pid) for n, pid in pids.items()}
        start = time.time()
        if args.profile:  # sampled from outside, without stopping the process
            spy = str(Path(sys.executable).with_name("py-spy"))
            subprocess.run([spy, "record", "--nonblocking", "--format", "raw", "-p",
                            str(bridge.pid), "-d", str(int(args.seconds)), "-o", args.profile],
                           check=True, capture_output=True)
        time.sleep(max(0.0, start + args.seconds - time.time()))
        end = time.time()
        after = {n: cpu_seconds(pid) for n, pid in pids.items()}
        rss = {n: rss_mib(pid) for n, pid in pids.items()}
        time.sleep(1.5)  # nginx flushes its log buffer every second
        report(args, pages.samples, scrapes(d / "access.log", start, end),
               {n: after[n] - before[n] for n in pids}, rss, rss_one)
        print("  bridge's own counters (whole run): " + "; ".join(
            f"{name} {value:,.0f}" for name, value in own_counters(listen).items()))
        stored = httpx.post(influx.url + "/query", params={
            "db": name, "q": "SHOW MEASUREMENTS"}).json()["results"][0]
        assert "series" in stored, "the bridge stored nothing"
    finally:
        for proc in (bridge, *others.values()):
            proc.terminate()
            proc.wait(20)


def measure_together(args: argparse.Namespace, d: Path, influx: InfluxServer, port: int,
                     pages: Pages, sides: list[tuple[str, Path | None, dict[str, str]]],
                     rss_one: dict[str, float]) -> None:
    """One round with every side's bridge running at once, on the same targets (each its
    own database), measured over the same window: what the machine does meanwhile weighs
    on all of them alike. A side's scrapes are told apart by a query string (?side=N)."""
    bridges = []
    for n, (_label, root, env) in enumerate(sides):
        config = bridge_config(d, f"bench{time.monotonic_ns()}", influx.url, port,
                               args.targets, query=f"?side={n}")
        bridges.append(subprocess.Popen(bridge_argv(config, root), cwd=ROOT, env=env))
    try:
        time.sleep(args.warmup)
        before = [cpu_seconds(b.pid) for b in bridges]
        start = time.time()
        time.sleep(args.seconds)
        end = time.time()
        cpu = [cpu_seconds(b.pid) - was for b, was in zip(bridges, before, strict=True)]
        rss = [rss_mib(b.pid) for b in bridges]
        time.sleep(1.5)  # nginx flushes its log buffer every second
        seen = scrapes(d / "access.log", start, end).get("Python", {})
        print(f"{len(sides)} bridges at once, {args.targets} targets x {pages.samples} "
              f"samples at 1 s, {args.seconds:.0f} s measured, {args.changing:.0%} of "
              "routes busy")
        for n, (label, _, _) in enumerate(sides):
            done, p99 = kept_and_p99([t for uri, t in seen.items() if uri.endswith(f"?side={n}")])
            growth = (rss[n] - rss_one[label]) * 1048576 / ((args.targets - 1) * pages.samples)
            print(f"  {label:40} CPU {cpu[n] / args.seconds * 100:5.1f} % of a core, "
                  f"{cpu[n] / max(done * pages.samples, 1) * 1e6:5.2f} us per scraped sample; "
                  f"kept {done / (args.targets * args.seconds) * 100:5.1f} %, p99 gap "
                  f"{p99:.3f} s; RSS {rss[n]:.0f} MiB, {growth:.0f} B per series")
    finally:
        for bridge in bridges:
            bridge.terminate()
            bridge.wait(20)


def with_native_core(root: Path) -> Path:
    """An exported revision with a compiled core of its own C source beside its bridge
    (this tree's build when the source is the same, else one built with setup.py's flags)."""
    from bench.scrape_instructions import native_core

    return native_core(root)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", help="a git revision whose bridge runs in alternate rounds")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the bridge here")
    parser.add_argument("--mypyc", action="store_true",
                        help="also run this tree's bridge with its hot modules compiled")
    parser.add_argument("--pure", action="store_true",
                        help="also run this tree's bridge on its pure-Python core")
    parser.add_argument("--alone", action="store_true",
                        help="the bridge without Prometheus and vmagent beside it")
    parser.add_argument("--changing", type=float, default=1.0,
                        help="share of routes whose counters grow each second (1: all)")
    parser.add_argument("--asyncio", action="store_true",
                        help="also run this tree's bridge on asyncio's own event loop")
    parser.add_argument("--together", action="store_true",
                        help="the bridges of all sides at once, measured over one window "
                             "(without Prometheus and vmagent)")
    args = parser.parse_args()
    sides: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.pure:
        sides.append(("this tree, pure core (PROMFLUX_PURE=1)", None))
    if args.asyncio:
        sides.append(("this tree, asyncio loop (PROMFLUX_LOOP=asyncio)", None))
    if args.against:
        from bench.bridge_instructions import export

        sides.append((args.against, with_native_core(export(args.against))))
    if args.mypyc:
        from bench.compiled import compiled_copy

        sides.append(("this tree, compiled by mypyc", compiled_copy()))
    clean = {k: v for k, v in os.environ.items() if k not in ("PROMFLUX_PURE", "PROMFLUX_LOOP")}
    envs = {label: {**clean, "PROMFLUX_PURE": "1"} if "pure core" in label else
            {**clean, "PROMFLUX_LOOP": "asyncio"} if "asyncio loop" in label else clean
            for label, _ in sides}
    with served_fleet("bench-vs-prom-", changing=args.changing) as (d, influx, port, pages):
        rss_one = {label: bridge_rss_one_target(d, influx.url, port, root, env=envs[label])
                   for label, root in sides}
        for round_ in range(args.rounds):
            if args.together:
                print(f"-- round {round_ + 1}, all at once")
                measure_together(args, d, influx, port, pages,
                                 [(label, root, envs[label]) for label, root in sides], rss_one)
                continue
            for label, root in sides:  # interleaved: drift hits both sides alike
                print(f"-- round {round_ + 1}, bridge of {label}")
                measure(args, d, influx, port, pages, root, rss_one[label], envs[label])


def report(args: argparse.Namespace, samples: int, seen: dict[str, dict[str, list[float]]],
           cpu: dict[str, float], rss: dict[str, float], rss_one: float) -> None:
    expected = args.targets * args.seconds
    print(f"{args.targets} targets x {samples} samples at 1 s, {args.seconds:.0f} s measured"
          f", {args.changing:.0%} of routes busy")
    # user agents' first words
    agents = {"bridge": "Python", "prometheus": "Prometheus", "vmagent": "vm_promscrape"}
    bridge_samples = sum(len(t) for t in seen.get("Python", {}).values()) * samples
    for name, agent in agents.items():
        if name not in cpu:
            continue
        done, p99 = kept_and_p99(list(seen.get(agent, {}).values()))
        per_sample = cpu[name] / max(done * samples, 1) * 1e6
        print(f"  {name:10} CPU {cpu[name] / args.seconds * 100:5.1f} % of a core, "
              f"{per_sample:5.2f} us per scraped sample; scrapes kept "
              f"{done / expected * 100:5.1f} %, p99 gap {p99:.3f} s; RSS {rss[name]:.0f} MiB")
    print(f"  influxd    CPU {cpu['influxd'] / args.seconds * 100:5.1f} % of a core, "
          f"{cpu['influxd'] / max(bridge_samples, 1) * 1e6:5.2f} us per sample the bridge "
          f"scraped; RSS {rss['influxd']:.0f} MiB")
    series = (args.targets - 1) * samples
    print(f"  bridge RSS growth per series: {(rss['bridge'] - rss_one) * 1048576 / series:.0f} "
          f"bytes ({rss_one:.0f} MiB at 1 target, {rss['bridge']:.0f} MiB at "
          f"{args.targets}; {series:,} series more)")


if __name__ == "__main__":
    main()
