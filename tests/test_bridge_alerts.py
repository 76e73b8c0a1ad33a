"""Threshold states: levels, minimum duration, recovery, and the figures a scrape gives."""

from __future__ import annotations

from promflux.bridge.analyze.alerts import Evaluator, figures
from promflux.bridge.analyze.thresholds import DEFAULTS, Threshold


def test_state_changes_once_per_level_and_once_when_resolved():
    evaluator = Evaluator(DEFAULTS)
    seen = []
    for t, p95 in enumerate([100, 120, 600, 650, 1200, 700, 90, 80]):
        seen += [(c.previous, c.level, c.threshold, c.at)
                 for c in evaluator.evaluate("api", {("_all", "p95_ms"): float(p95)}, t)]
    assert seen == [("ok", "warning", 500.0, 2), ("warning", "critical", 1000.0, 4),
                    ("critical", "warning", 500.0, 5), ("warning", "ok", None, 6)]
    assert evaluator.states[("api", "_all", "p95_ms")].level == "ok"


def test_minimum_duration_suppresses_flapping():
    slow = {"p95_ms": Threshold("p95_ms", 500, 1000, for_seconds=30)}
    evaluator = Evaluator(slow)
    changes = []
    # A breach that lasts 20 s, then one that lasts 40 s (scrapes every 10 s).
    for t, p95 in [(0, 100), (10, 600), (20, 600), (30, 100), (40, 600), (50, 600),
                   (60, 600), (70, 600), (80, 100), (90, 100), (100, 100), (110, 100)]:
        changes += evaluator.evaluate("api", {("_all", "p95_ms"): float(p95)}, t)
    assert [(c.level, c.at) for c in changes] == [("warning", 70), ("ok", 110)]


def test_figures_from_points_respect_min_requests_and_active():
    points = [
        ("performance_metrics", {"service": "api", "endpoint": "_all", "method": "_all"},
         {"requests": 40.0, "p95_ms": 700.0, "error_rate_percent": 2.5,
          "requests_per_minute": 4.0}, 0),
        ("performance_metrics", {"service": "api", "endpoint": "/x", "method": "GET"},
         {"requests": 3.0, "p95_ms": 9000.0, "error_rate_percent": 100.0}, 0),
        ("performance_metrics", {"service": "api", "endpoint": "/y", "method": "POST"},
         {"requests": 37.0, "p95_ms": 650.0, "error_rate_percent": 0.0}, 0),
        ("resources", {"service": "api", "pid": "1"}, {"cpu_percent": 50.0,
                                                       "memory_percent": 30.0}, 0),
        ("resources", {"service": "api", "pid": "2"}, {"cpu_percent": 45.0,
                                                       "memory_percent": 30.0}, 0),
        ("disk", {"service": "api", "path": "/"}, {"used_percent": 91.0}, 0),
    ]
    passive = figures(points, 5, active=False)
    assert passive == {("_all", "p95_ms"): 700.0, ("_all", "error_rate_percent"): 2.5,
                       ("POST /y", "p95_ms"): 650.0, ("POST /y", "error_rate_percent"): 0.0,
                       ("_all", "cpu_percent"): 95.0, ("_all", "memory_percent"): 60.0,
                       ("_all", "disk_percent"): 91.0}
    active = figures(points, 5, active=True)
    assert active[("_all", "requests_per_minute")] == 4.0
    changes = Evaluator(DEFAULTS).evaluate("api", active, 0.0)
    assert {(c.endpoint, c.metric, c.level) for c in changes} == {
        ("_all", "p95_ms", "warning"), ("POST /y", "p95_ms", "warning"),
        ("_all", "cpu_percent", "critical"), ("_all", "disk_percent", "warning"),
        ("_all", "requests_per_minute", "warning")}
