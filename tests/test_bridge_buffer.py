"""The on-disk buffer: order, bound, survival across restarts, removal by identity, and
files that are not ours or cannot be read."""

from __future__ import annotations

import logging
import os

import pytest
from promflux.bridge.store.buffer import DiskBuffer


def take(buffer: DiskBuffer) -> tuple[str, bytes]:
    entry = buffer.peek()
    assert entry is not None
    buffer.remove(entry)
    return entry.rp, entry.body


def test_fifo_order_survives_a_restart(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=10_000)
    buffer.push("raw_7d", b"m v=1.0 1\n")
    buffer.push("", b"m v=2.0 2\n")
    again = DiskBuffer(tmp_path, max_bytes=10_000)
    assert len(again) == 2
    assert take(again) == ("raw_7d", b"m v=1.0 1\n")
    again.push("raw_7d", b"m v=3.0 3\n")
    assert take(again) == ("", b"m v=2.0 2\n")
    assert take(again) == ("raw_7d", b"m v=3.0 3\n")
    assert again.peek() is None and again.size_bytes == 0


def test_bound_drops_oldest_and_counts_points(tmp_path, caplog):
    buffer = DiskBuffer(tmp_path, max_bytes=60)
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            buffer.push("raw_7d", f"m v={i}.0 {i}\nm w={i}.0 {i}\n".encode())  # 20 bytes each
    assert len(buffer) == 3 and buffer.dropped_points == 4 and buffer.size_bytes == 60
    assert "dropped the oldest" in caplog.text  # a full buffer says so
    assert buffer.peek().body.startswith(b"m v=2.0")
    (tmp_path / "junk.tmp").write_bytes(b"half")
    assert len(DiskBuffer(tmp_path, max_bytes=60)) == 3
    assert not (tmp_path / "junk.tmp").exists()


def test_remove_takes_the_entry_it_is_given_and_no_other(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=40)
    buffer.push("raw_7d", b"m v=1.0 1\nm v=1.0 2\n")  # 20 bytes
    in_flight = buffer.peek()
    buffer.push("raw_7d", b"m v=2.0 3\nm v=2.0 4\n")
    buffer.push("raw_7d", b"m v=3.0 5\nm v=3.0 6\n")  # over the bound: the oldest is trimmed
    assert buffer.dropped_points == 2
    buffer.remove(in_flight)  # already trimmed: must not remove the next batch
    assert len(buffer) == 2
    assert take(buffer)[1].startswith(b"m v=2.0") and take(buffer)[1].startswith(b"m v=3.0")


def test_what_is_left_of_a_batch_replaces_it(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=10_000)
    buffer.push("raw_7d", b"m v=1.0 1\nm v=2.0 2\n")
    entry = buffer.peek()
    buffer.rewrite(entry, b"m v=2.0 2\n")
    assert buffer.size_bytes == 10
    assert DiskBuffer(tmp_path, max_bytes=10_000).peek().body == b"m v=2.0 2\n"


@pytest.mark.parametrize("name", ["notes.txt", "foo.lp", "12-raw_7d.lp", "subdir",
                                  "0000000000000001-bad rp.lp"])
def test_foreign_files_are_quarantined_not_fatal(tmp_path, caplog, name):
    buffer = DiskBuffer(tmp_path, max_bytes=10_000)
    buffer.push("raw_7d", b"m v=1.0 1\n")
    stray = tmp_path / name
    if name == "subdir":
        stray.mkdir()
    else:
        stray.write_bytes(b"not ours")
    with caplog.at_level(logging.WARNING):
        again = DiskBuffer(tmp_path, max_bytes=10_000)
    assert len(again) == 1 and again.quarantined == 1
    assert (tmp_path / "quarantine" / name).exists() and not stray.exists()
    assert name in caplog.text
    again.push("raw_7d", b"m v=2.0 2\n")  # and the buffer goes on numbering after its own
    assert [take(again)[1] for _ in range(2)] == [b"m v=1.0 1\n", b"m v=2.0 2\n"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_batch_is_quarantined_and_the_next_one_read(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=10_000)
    buffer.push("raw_7d", b"m v=1.0 1\n")
    buffer.push("raw_7d", b"m v=2.0 2\n")
    first = sorted(tmp_path.glob("*.lp"))[0]
    first.chmod(0)
    assert buffer.peek().body == b"m v=2.0 2\n" and buffer.quarantined == 1


def test_an_unreadable_batch_as_root_is_a_directory_in_its_place(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=10_000)
    buffer.push("raw_7d", b"m v=1.0 1\n")
    buffer.push("raw_7d", b"m v=2.0 2\n")
    first = sorted(tmp_path.glob("*.lp"))[0]
    first.unlink()
    first.mkdir()  # reading it fails with IsADirectoryError, whoever we are
    assert buffer.peek().body == b"m v=2.0 2\n" and buffer.quarantined == 1
    assert (tmp_path / "quarantine" / first.name).is_dir()


def test_sequence_numbers_past_sixteen_digits_keep_order_and_policy(tmp_path):
    (tmp_path / "9999999999999999-raw_7d.lp").write_bytes(b"m v=1.0 1\n")
    buffer = DiskBuffer(tmp_path, max_bytes=10_000, rps=("", "raw_7d"))
    buffer.push("raw_7d", b"m v=2.0 2\n")  # number 10^16: seventeen digits
    buffer.push("", b"m v=3.0 3\n")
    again = DiskBuffer(tmp_path, max_bytes=10_000, rps=("", "raw_7d"))
    assert [take(again) for _ in range(3)] == [
        ("raw_7d", b"m v=1.0 1\n"), ("raw_7d", b"m v=2.0 2\n"), ("", b"m v=3.0 3\n")]


def test_a_batch_for_a_policy_the_bridge_never_writes_is_not_ours(tmp_path):
    (tmp_path / "0000000000000001-bogus.lp").write_bytes(b"m v=1.0 1\n")
    buffer = DiskBuffer(tmp_path, max_bytes=10_000, rps=("", "raw_7d"))
    assert len(buffer) == 0 and buffer.quarantined == 1
