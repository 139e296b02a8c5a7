"""Crashes the fuzz targets found, kept as small explicit inputs (fixed in tarwalk.py)."""

from __future__ import annotations

import io

import pytest

from imgscope import api
from imgscope.errors import CorruptInput

from .inputs import generated_layers
from .test_fuzz_tar import header_offsets, pax_header, pax_record


def with_pax(records: bytes) -> bytes:
    """A generated layer with a PAX header carrying `records` before its first member."""
    data = bytearray(generated_layers()[2])  # ustar: no PAX header of its own to override ours
    at = header_offsets(bytes(data))[0]
    data[at:at] = pax_header(records)
    return bytes(data)


@pytest.mark.parametrize("value", [b"inf", b"1e999", b"-inf"])
def test_pax_mtime_out_of_float_range_is_corrupt_input(value: bytes) -> None:
    """Was OverflowError (int(float("inf"))), a crash with exit 3, from a PAX record any tar
    can carry; now the layer is refused as corrupt, like a non-numeric mtime."""
    with pytest.raises(CorruptInput, match="bad PAX mtime"):
        api.replay_layer_tars([io.BytesIO(with_pax(pax_record("mtime", value)))])


@pytest.mark.parametrize("key", ["size", "GNU.sparse.realsize", "GNU.sparse.size"])
def test_negative_pax_size_is_corrupt_input(key: str) -> None:
    """A negative PAX size was taken as is: a file of size -5 in the listing, and a data count
    that made the walker's reads and skips go backwards (Go's archive/tar refuses it too)."""
    with pytest.raises(CorruptInput, match="negative PAX"):
        api.replay_layer_tars([io.BytesIO(with_pax(pax_record(key, b"-5")))])


def test_sane_pax_mtime_still_reads() -> None:
    """The fix keeps fractional mtimes (what GNU tar writes) working."""
    fs = api.replay_layer_tars([io.BytesIO(with_pax(pax_record("mtime", b"1700000000.25")))]).fs
    assert [node.mtime for _, node in fs.iter_nodes()][0] == 1700000000
