"""The on-disk buffer: order, bound, and survival across restarts."""

from __future__ import annotations

from promflux.bridge.store.buffer import DiskBuffer


def test_fifo_order_survives_a_restart(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=10_000)
    buffer.push("raw_7d", b"m v=1.0 1\n")
    buffer.push("", b"m v=2.0 2\n")
    again = DiskBuffer(tmp_path, max_bytes=10_000)
    assert len(again) == 2
    assert again.peek() == ("raw_7d", b"m v=1.0 1\n")
    again.pop()
    again.push("raw_7d", b"m v=3.0 3\n")
    assert again.peek() == ("", b"m v=2.0 2\n")
    again.pop()
    assert again.peek() == ("raw_7d", b"m v=3.0 3\n")
    again.pop()
    assert again.peek() is None and again.size_bytes == 0


def test_bound_drops_oldest_and_counts_points(tmp_path):
    buffer = DiskBuffer(tmp_path, max_bytes=60)
    for i in range(5):
        buffer.push("raw_7d", f"m v={i}.0 {i}\nm w={i}.0 {i}\n".encode())  # 20 bytes each
    assert len(buffer) == 3 and buffer.dropped_points == 4 and buffer.size_bytes == 60
    assert buffer.peek()[1].startswith(b"m v=2.0")
    (tmp_path / "junk.tmp").write_bytes(b"half")
    assert len(DiskBuffer(tmp_path, max_bytes=60)) == 3
    assert not (tmp_path / "junk.tmp").exists()
