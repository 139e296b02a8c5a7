"""Region hashing: the mapped path (forked children) must agree with the read path."""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

import pytest

from imgscope.archive import streams
from imgscope.archive.streams import RegionHasher, hash_mapped_region, hash_region


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
