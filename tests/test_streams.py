"""Region hashing: the mapped path (forked children) must agree with the read path."""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

import pytest

from imgscope.archive import streams
from imgscope.archive.streams import RegionHasher, hash_mapped_region, hash_region
from imgscope.errors import CorruptInput, LimitExceeded


def _incompressible(blocks: int) -> bytes:
    """`blocks` distinct 32-byte digests: data no compressor shrinks."""
    return b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(blocks))


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[int, bytes]:
    # Not a multiple of the page size, with regions that straddle mapping windows.
    data = bytes((i * 7 + i // 4093) % 251 for i in range(3 * mmap.ALLOCATIONGRANULARITY + 12345))
    path = tmp_path / "blob"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield fd, data
    os.close(fd)


@pytest.mark.parametrize("offset,size", [(0, 0), (0, 1), (1, 5000), (4095, 4097),
                                         (mmap.ALLOCATIONGRANULARITY - 3, 2 * 4096 + 11),
                                         (17, 3 * mmap.ALLOCATIONGRANULARITY)])
def test_mapped_and_read_hashes_agree(data_file, offset: int, size: int, monkeypatch) -> None:
    fd, data = data_file
    monkeypatch.setattr(streams, "MAP_WINDOW", 2 * mmap.ALLOCATIONGRANULARITY)
    expected = "sha256:" + hashlib.sha256(data[offset:offset + size]).hexdigest()
    assert hash_region(fd, offset, size) == (expected, size)
    assert hash_mapped_region(fd, offset, size) == (expected, size)


def test_a_region_past_the_end_reports_the_bytes_it_found(data_file) -> None:
    fd, data = data_file
    offset = len(data) - 100
    expected = "sha256:" + hashlib.sha256(data[offset:]).hexdigest()
    assert hash_region(fd, offset, 1000) == (expected, 100)
    assert hash_mapped_region(fd, offset, 1000) == (expected, 100)
    assert hash_mapped_region(fd, len(data) + 10, 5)[1] == 0


def test_the_forked_hasher_returns_each_region(data_file) -> None:
    fd, data = data_file
    hasher = RegionHasher([(fd, 0, len(data), "none"), (fd, 10, 20, "none")])
    try:
        whole = "sha256:" + hashlib.sha256(data).hexdigest()
        part = "sha256:" + hashlib.sha256(data[10:30]).hexdigest()
        assert hasher.result(1) == (part, part, 20)
        assert hasher.result(0) == (whole, whole, len(data))
    finally:
        hasher.close()


def test_a_file_that_cannot_be_mapped_is_read_instead(data_file, monkeypatch) -> None:
    fd, data = data_file

    def refuse(*args, **kwargs):
        raise OSError(19, "No such device")  # what mmap says on a file system without it

    monkeypatch.setattr(streams.mmap, "mmap", refuse)
    expected = "sha256:" + hashlib.sha256(data[5:]).hexdigest()
    assert hash_mapped_region(fd, 5, len(data) - 5) == (expected, len(data) - 5)


# -- moving a light hashing child between cores (CoreRotation) --------------------------------


@pytest.fixture
def affinity_calls(monkeypatch) -> list[set[int]]:
    """os.sched_setaffinity recorded instead of done: the test process stays where it is."""
    calls: list[set[int]] = []
    monkeypatch.setattr(streams.os, "sched_setaffinity",
                        lambda pid, cores: calls.append(set(cores)), raising=False)
    return calls


def test_a_rotation_visits_the_cores_in_turn(affinity_calls) -> None:
    rotation = streams.CoreRotation([2, 5])
    for _ in range(5):
        rotation.step()
    assert affinity_calls == [{2}, {5}, {2}, {5}, {2}]
    rotation.release()
    assert affinity_calls[-1] == {2, 5}
    rotation.step()  # released: it no longer moves
    assert len(affinity_calls) == 6


def test_a_core_that_refuses_ends_the_rotation(monkeypatch) -> None:
    calls: list[set[int]] = []

    def narrowed(pid: int, cores) -> None:
        calls.append(set(cores))
        if cores == {1}:
            raise OSError(22, "Invalid argument")  # a cpuset without core 1

    monkeypatch.setattr(streams.os, "sched_setaffinity", narrowed, raising=False)
    rotation = streams.CoreRotation([0, 1])
    for _ in range(4):
        rotation.step()
    assert calls == [{0}, {1}, {0, 1}]  # back on every core, then left alone


@pytest.mark.parametrize("cores,busy,expected", [
    ({0, 1}, 3, [0, 1]),  # three processes on two cores: rotate
    ({0, 1}, 2, []),  # one core each
    ({0, 1, 2, 3}, 3, []),
    ({3}, 3, []),  # one core: nowhere to go
])
def test_rotation_only_where_processes_outnumber_cores(monkeypatch, cores, busy, expected) -> None:
    monkeypatch.setattr(streams.os, "sched_getaffinity", lambda pid: cores, raising=False)
    assert streams.rotation_cores(busy) == expected


def test_a_rotating_hash_moves_once_per_window(data_file, affinity_calls, monkeypatch) -> None:
    fd, data = data_file
    monkeypatch.setattr(streams, "MAP_WINDOW", mmap.ALLOCATIONGRANULARITY)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    rotation = streams.CoreRotation([0, 1])
    assert hash_mapped_region(fd, 0, len(data), rotation) == (expected, len(data))
    windows = -(-len(data) // mmap.ALLOCATIONGRANULARITY)
    assert affinity_calls == [{i % 2} for i in range(windows)]


def test_a_rotating_inflate_moves_once_per_window_of_output(tmp_path, affinity_calls,
                                                           monkeypatch) -> None:
    import zstandard

    # 3 MiB that zstd cannot shrink: read in three 1 MiB chunks, each inflating to ~1 MiB.
    plain = _incompressible(3 << 15)
    path = tmp_path / "layer.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(plain))
    monkeypatch.setattr(streams, "ROTATION_STEP", 256 << 10)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        rotation = streams.CoreRotation([0, 1])
        raw, content, done, _ = streams.hash_compressed_region(fd, 0, size, "zstd",
                                                               rotation=rotation)
    finally:
        os.close(fd)
    assert content == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert raw == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert done == len(plain)
    # A move before each chunk that starts a new 256 KiB window: here every chunk.
    assert len(affinity_calls) in (3, 4)
    assert affinity_calls == [{i % 2} for i in range(len(affinity_calls))]


@pytest.mark.skipif(not streams.rotation_cores(3), reason="needs two or more cores to rotate on")
def test_a_rotating_child_hashes_as_a_still_one(data_file) -> None:
    fd, data = data_file
    cores = streams.rotation_cores(3)
    regions = [(fd, 0, len(data), "none"), (fd, 10, 20, "none")]
    moving, still = RegionHasher(regions, cores), RegionHasher(regions)
    try:
        whole = "sha256:" + hashlib.sha256(data).hexdigest()
        assert moving.result(0) == still.result(0) == (whole, whole, len(data))
        assert moving.result(1) == still.result(1)
    finally:
        moving.close()
        still.close()
    assert os.sched_getaffinity(0) == set(cores)  # the parent never moved


def _compressed(tmp_path: Path, plain: bytes, compression: str) -> Path:
    import gzip

    import zstandard

    path = tmp_path / f"layer.{compression}"
    path.write_bytes(zstandard.ZstdCompressor().compress(plain) if compression == "zstd"
                     else gzip.compress(plain, compresslevel=1, mtime=0))
    return path


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
@pytest.mark.parametrize("slot,slots", [(streams.RING_SLOT, streams.RING_SLOTS), (4096, 3)])
def test_the_inflating_child_hands_over_every_byte_through_its_ring(
        tmp_path: Path, compression: str, slot: int, slots: int, monkeypatch) -> None:
    # Incompressible and then compressible runs, so that the child's chunks are both
    # smaller and larger than a slot; past the ring's size, not a multiple of a slot.
    plain = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() * (1 + i % 97)
                     for i in range(12_000)) + b"tail"
    assert len(plain) > streams.RING_SLOT * streams.RING_SLOTS  # more than one turn
    path = _compressed(tmp_path, plain, compression)
    monkeypatch.setattr(streams, "RING_SLOT", slot)
    monkeypatch.setattr(streams, "RING_SLOTS", slots)
    child = _child_of(path, compression)
    try:
        chunks = list(child.chunks())
        assert child.error() is None
    finally:
        child.close()
    assert b"".join(chunks) == plain
    assert all(len(c) == slot for c in chunks[:-1]) and 0 < len(chunks[-1]) <= slot
    assert child.decoded_digest == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert child.raw_digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert (child.raw_size, child.decoded_size) == (path.stat().st_size, len(plain))


def _child_of(path: Path, compression: str, limit: int = streams.MAX_UNCOMPRESSED):
    fd = os.open(path, os.O_RDONLY)
    try:
        return streams.InflateProcess(fd, 0, os.fstat(fd).st_size, compression, True, limit)
    finally:
        os.close(fd)  # the child has its own copy of the descriptor


def test_a_walk_that_stops_early_ends_the_child(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(streams, "RING_SLOT", 4096)
    plain = _incompressible(50_000)
    child = _child_of(_compressed(tmp_path, plain, "zstd"), "zstd")
    first = next(iter(child.chunks()))
    pid = child._pid
    child.close()  # the child waits for a slot that never comes back: stopped, reaped
    assert first == plain[:4096]
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)


def test_a_truncated_stream_is_the_childs_error(tmp_path: Path) -> None:
    plain = _incompressible(50_000)
    path = _compressed(tmp_path, plain, "zstd")
    path.write_bytes(path.read_bytes()[:-100])
    child = _child_of(path, "zstd")
    try:
        got = b"".join(child.chunks())
        error = child.error()
    finally:
        child.close()
    assert plain.startswith(got) and len(got) < len(plain)
    assert isinstance(error, CorruptInput) and "truncated" in str(error)


def test_a_layer_past_the_limit_is_stopped_by_the_child(tmp_path: Path) -> None:
    child = _child_of(_compressed(tmp_path, bytes(10 << 20), "gzip"), "gzip", limit=3 << 20)
    try:
        got = sum(len(c) for c in child.chunks())
        error = child.error()
    finally:
        child.close()
    assert got <= 3 << 20
    assert isinstance(error, LimitExceeded) and str(error).startswith("layer inflates past")


def test_corrupt_zstd_data_is_corrupt_input_after_what_inflated() -> None:
    import zstandard

    plain = _incompressible(4096)
    good = zstandard.ZstdCompressor().compress(plain)
    # The zstd command writes a checksum per frame: a damaged block is then caught at its end.
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(plain))
    frame[len(frame) // 2:len(frame) // 2 + 64] = b"\xff" * 64
    out = []
    with pytest.raises(CorruptInput, match=r"^zstd data is corrupt \(zstd decompressor error"):
        for piece in streams.decode(iter([good, bytes(frame)]), "zstd"):
            out.append(piece)
    assert b"".join(out)[:len(plain)] == plain  # the first frame's bytes came out first
