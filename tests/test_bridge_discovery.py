"""Discovery documents in Prometheus's format -> targets; shards by Prometheus's hashmod;
file sources that keep their last good targets. Pure parts exhaustively, files for real."""

from __future__ import annotations

import json
import os

import pytest
from promflux.bridge.config import ConfigError, DiscoveryDefaults, FileSD, load
from promflux.bridge.discover.groups import GroupError, merge, parse, shard_of, targets_of
from promflux.bridge.discover.sources import FileSource

DEFAULTS = DiscoveryDefaults()


def test_a_group_becomes_targets_with_prometheus_meta_labels():
    groups = parse(json.dumps([
        {"targets": ["10.0.0.1:9100", "10.0.0.2:9100"],
         "labels": {"service": "api", "zone": "a", "__metrics_path__": "/m",
                    "__meta_consul_dc": "x"}},
        {"targets": ["10.0.0.3:443"],
         "labels": {"service": "ingest", "__scheme__": "https", "instance": "ingest-1"}},
    ]), yaml_ok=False)
    targets, problems = targets_of(groups, DEFAULTS, "sd.json")
    assert problems == []
    assert [(t.service, t.url, t.labels) for t in targets] == [
        ("api", "http://10.0.0.1:9100/m", {"instance": "10.0.0.1:9100", "zone": "a"}),
        ("api", "http://10.0.0.2:9100/m", {"instance": "10.0.0.2:9100", "zone": "a"}),
        ("ingest", "https://10.0.0.3:443/metrics", {"instance": "ingest-1"})]


@pytest.mark.parametrize("group, problem", [
    ({"targets": ["h:1"]}, "no service label"),
    ({"targets": ["h:1"], "labels": {"service": "a", "endpoint": "x"}},
     "a tag the bridge writes itself"),
    ({"targets": ["h:1"], "labels": {"service": "a", "bad-name": "x"}},
     "must be a Prometheus label name"),
    ({"targets": ["h:1/path"], "labels": {"service": "a"}}, "not a host:port address"),
    ({"targets": ["h:1"], "labels": {"service": "a", "__scheme__": "ftp"}},
     "cannot make a URL"),
    ({"targets": "h:1", "labels": {"service": "a"}}, "a list of targets"),
    ({"targets": ["h:1"], "labels": {"service": 5}}, "labels must map names to strings"),
    ("not a group", "must be a mapping"),
    # Labels that would be stored ambiguously or not at all:
    ({"targets": ["h:1"], "labels": {"service": "a", "up": "1"}},
     "label 'up' is a field the bridge writes"),
    ({"targets": ["h:1"], "labels": {"service": "a", "requests": "x"}},
     "label 'requests' is a field the bridge writes"),
    ({"targets": ["h:1"], "labels": {"service": "a", "time": "now"}},
     "label 'time' is InfluxDB's timestamp"),
])
def test_a_bad_group_is_skipped_with_its_reason_and_the_others_kept(group, problem):
    good = {"targets": ["ok:1"], "labels": {"service": "fine"}}
    targets, problems = targets_of([group, good], DEFAULTS, "f.json")
    assert [t.service for t in targets] == ["fine"]
    assert len(problems) == 1 and problem in problems[0] and "f.json: group 0" in problems[0]


@pytest.mark.parametrize("text, yaml_ok, problem", [
    ("{not json", False, "not valid JSON"),
    ('{"targets": []}', False, "must be a list"),
    ("a: [", True, "not valid YAML"),
])
def test_unreadable_documents_say_why(text, yaml_ok, problem):
    with pytest.raises(GroupError, match=problem):
        parse(text, yaml_ok)


def test_empty_yaml_is_no_targets():
    assert parse("", yaml_ok=True) == []


def test_shards_follow_prometheus_hashmod_and_split_without_overlap():
    # Prometheus's own relabel test vectors (hashmod of "baz" and "foo\nbar" mod 1000).
    assert shard_of("baz", 1000) == 976 and shard_of("foo\nbar", 1000) == 734
    groups = [{"targets": [f"10.0.{i // 250}.{i % 250}:9100" for i in range(300)],
               "labels": {"service": "api"}}]
    targets, _ = targets_of(groups, DEFAULTS, "x")
    shards = [merge([targets], 3, i) for i in range(3)]
    urls = [{t.url for t in shard} for shard in shards]
    assert set.union(*urls) == {t.url for t in targets}
    assert sum(len(u) for u in urls) == 300  # none in two shards
    assert all(70 <= len(u) <= 130 for u in urls)  # roughly even
    assert merge([targets, targets], 1, 0) == targets  # a target listed twice is kept once


def test_file_source_reads_changes_and_keeps_the_last_good_targets(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps([{"targets": ["a:1"], "labels": {"service": "a"}}]))
    source = FileSource(FileSD(files=[str(tmp_path / "*.json"), str(tmp_path / "*.yml")]))
    assert source.refresh() and [t.service for t in source.targets] == ["a"]
    assert not source.refresh()  # nothing changed
    (tmp_path / "two.yml").write_text("- targets: ['b:1']\n  labels: {service: b}\n")
    assert source.refresh() and [t.service for t in source.targets] == ["a", "b"]
    one.write_text("{broken")
    os.utime(one, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert not source.refresh()  # the file's last good targets are kept
    assert [t.service for t in source.targets] == ["a", "b"]
    assert "not valid JSON" in source.problems[str(one)][0]
    one.unlink()
    assert source.refresh() and [t.service for t in source.targets] == ["b"]
    assert str(one) not in source.problems


def test_a_config_needs_a_source_and_valid_shards_and_labels(tmp_path):
    def config(text: str) -> str:
        path = tmp_path / "bridge.yml"
        path.write_text(text)
        try:
            load(path, environ={})
        except ConfigError as exc:
            return str(exc)
        return "ok"

    assert "give targets, file_sd_configs or http_sd_configs" in config("listen: 127.0.0.1:9\n")
    assert config("file_sd_configs:\n  - files: [/x/*.json]\n") == "ok"
    assert "shard: Value error, index must be below count" in config(
        "file_sd_configs:\n  - files: [/x]\nshard: {count: 2, index: 2}\n")
    assert "is a tag the bridge writes itself" in config(
        "targets:\n  - service: a\n    url: http://h:1/metrics\n    labels: {method: x}\n")
    assert "http_sd_configs.0.url" in config("http_sd_configs:\n  - url: inventory\n")
    assert "influxdb.consistency" in config(
        "targets: [{service: a, url: 'http://h:1/m'}]\ninfluxdb: {consistency: most}\n")


def test_two_urls_of_one_service_are_told_apart_by_instance():
    from promflux.bridge.config import Target

    def target(service: str, url: str, **labels: str) -> Target:
        return Target(service=service, url=url, labels=labels)

    got = merge([[target("api", "http://a:1/metrics"), target("api", "http://b:1/metrics"),
                  target("api", "http://b:1/other"), target("solo", "http://c:1/metrics"),
                  target("named", "http://d:1/m", instance="d1"),
                  target("named", "http://d:2/m")]], 1, 0)
    assert [(t.service, t.labels) for t in got] == [
        ("api", {"instance": "a:1"}), ("api", {"instance": "b:1/metrics"}),
        ("api", {"instance": "b:1/other"}), ("solo", {}),
        ("named", {"instance": "d1"}), ("named", {"instance": "d:2"})]


def test_hostile_documents_are_refused_quickly():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    with pytest.raises(GroupError, match="expands to more than"):
        parse(laughs, yaml_ok=True)
    with pytest.raises(GroupError, match="nested too deeply|not valid JSON"):
        parse("[" * 100_000 + "]" * 100_000, yaml_ok=False)
