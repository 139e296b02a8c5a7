"""gzip and zstd framing: concatenated members and frames (valid), and truncated, corrupted or
trailing-garbage streams (invalid).

A valid framing must read exactly like the plain tar; an invalid one may only end in an
ImgscopeError. Blobs go through both a bare layer replay and an image whose digests match.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
import zlib
from pathlib import Path

import zstandard
from hypothesis import given
from hypothesis import strategies as st

from imgscope.errors import ImgscopeError

from .config import fuzz_settings
from .inputs import (
    SMALL_STACK,
    Blob,
    byte_mutations,
    generated_layers,
    gzip_members,
    layer_blob,
    write_image,
    zstd_frames,
)
from .targets import analyze_image, replay_path, replay_stream, same_outcome

SETTINGS = fuzz_settings()
TARS = [*SMALL_STACK.tar_blobs(), *generated_layers()]


def gzip_with_header_fields(data: bytes, name: bytes, comment: bytes, extra: bytes) -> bytes:
    """A gzip member using FEXTRA, FNAME and FCOMMENT (as some tools write them)."""
    flags = 0x04 | 0x08 | 0x10
    head = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff"
    head += struct.pack("<H", len(extra)) + extra + name + b"\0" + comment + b"\0"
    body = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = body.compress(data) + body.flush()
    return head + deflated + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


@st.composite
def valid_framing(draw: st.DrawFn, tar: bytes) -> tuple[bytes, str]:
    cuts = draw(st.lists(st.integers(0, len(tar)), max_size=4))
    kind = draw(st.sampled_from(("gzip", "gzip-members", "gzip-fields", "zstd", "zstd-frames",
                                 "zstd-skippable", "zstd-no-size")))
    if kind == "gzip":
        return gzip.compress(tar, compresslevel=draw(st.integers(0, 9))), "gzip"
    if kind == "gzip-members":
        return gzip_members(tar, cuts), "gzip"
    if kind == "gzip-fields":
        name = draw(st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"")))
        return gzip_with_header_fields(tar, name, b"comment", draw(st.binary(max_size=30))), \
            "gzip"
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=draw(st.integers(1, 5))).compress(tar), "zstd"
    if kind == "zstd-no-size":
        # streamed zstd frames carry no content size (what `zstd` in a pipe writes)
        cobj = zstandard.ZstdCompressor(write_content_size=False).compressobj()
        return cobj.compress(tar) + cobj.flush(), "zstd"
    return zstd_frames(tar, cuts, skippable=kind == "zstd-skippable"), "zstd"


@SETTINGS
@given(data=st.data(), which=st.integers(0, len(TARS) - 1))
def test_valid_framings_read_like_the_plain_tar(data: st.DataObject, which: int) -> None:
    tar = TARS[which]
    blob, compression = data.draw(valid_framing(tar).map(lambda x: (Blob(x[0]), x[1])),
                                  label="framing")
    expected = replay_stream(tar, "plain tar")
    got = replay_stream(blob, f"{compression} framing")
    assert not isinstance(got, ImgscopeError), f"a valid {compression} stream was refused: {got}"
    same_outcome(expected, got, f"plain vs {compression}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer"
        path.write_bytes(blob)
        same_outcome(expected, replay_path(path, "file"), f"plain vs {compression} file")
        image = write_image(Path(tmp) / "image", [layer_blob(blob, tar, compression)])
        result = analyze_image(image, f"image with a {compression} layer")
    assert not isinstance(result, ImgscopeError), result
    same_outcome(expected, result, f"plain vs {compression} in an image")


class _Case(tuple):
    def __repr__(self) -> str:  # the tar itself is kilobytes of zeros: show the blob only
        return f"({Blob(self[0])!r}, <tar of {len(self[1])} bytes>, {self[2]!r})"


def _short_repr(case: tuple[bytes, bytes, str]) -> tuple[bytes, bytes, str]:
    return _Case(case)  # type: ignore[return-value]


@st.composite
def broken_framing(draw: st.DrawFn) -> tuple[bytes, bytes, str]:
    tar = TARS[draw(st.integers(0, len(TARS) - 1))]
    blob, compression = draw(valid_framing(tar))
    how = draw(st.sampled_from(("truncate", "mutate", "garbage", "mixed", "empty-member")))
    if how == "truncate":
        blob = blob[: draw(st.integers(0, max(0, len(blob) - 1)))]
    elif how == "mutate":
        blob = draw(byte_mutations(blob, max_ops=3))
    elif how == "garbage":
        blob += draw(st.sampled_from((b"\0" * 512, b"garbage", b"\x1f\x8b", b"\x28\xb5\x2f\xfd",
                                      b"\x1f\x8b\x08\0\0\0\0\0\0\xff")))
    elif how == "mixed":
        other = zstandard.ZstdCompressor().compress(b"x") if compression == "gzip" \
            else gzip.compress(b"x")
        blob += other
    else:
        blob = (gzip.compress(b"") if compression == "gzip"
                else zstandard.ZstdCompressor().compress(b"")) + blob
    return blob, tar, compression


@SETTINGS
@given(data=st.data())
def test_broken_framings_fail_cleanly(data: st.DataObject) -> None:
    blob, tar, compression = data.draw(broken_framing().map(_short_repr), label="case")
    streamed = replay_stream(blob, f"broken {compression} stream")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer"
        path.write_bytes(blob)
        same_outcome(replay_path(path, f"broken {compression} file"), streamed,
                     f"file vs stream of a broken {compression} blob")
        image = write_image(Path(tmp) / "image", [layer_blob(blob, tar, compression)])
        analyze_image(image, f"image with a broken {compression} layer")


def test_small_bomb_is_bounded() -> None:
    """64 MiB of zeros in a few KB of gzip: read (or refused) without holding it in memory.
    The tar ends at the first zero block; the rest must be drained, not buffered."""
    bomb = gzip.compress(bytes(64 << 20), compresslevel=9)
    assert len(bomb) < 100_000
    result = replay_stream(bomb, "gzip bomb")
    assert result == [] or isinstance(result, ImgscopeError)
