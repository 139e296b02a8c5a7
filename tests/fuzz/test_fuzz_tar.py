"""Tar headers and the layer walker: mutated bytes of real and generated layer tars.

Random bytes mostly die at the header checksum, so besides raw byte edits a mutation may set a
header field (size, typeflag, name, numbers in octal or base-256...) and then fix the checksum,
which carries it past the first check into the walker and the overlay. Every input is read two
ways, from a file (seek over content) and as a stream (read through): both must agree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from differential.oci import LayerBlob, sha256
from hypothesis import given
from hypothesis import strategies as st

from .config import fuzz_settings
from .inputs import Blob, byte_mutations, layer_seeds, write_image
from .targets import analyze_image, replay_path, replay_stream, same_outcome

SETTINGS = fuzz_settings()
SEEDS = layer_seeds()

# (offset, length) of ustar header fields
FIELDS = {
    "name": (0, 100), "mode": (100, 8), "uid": (108, 8), "gid": (116, 8), "size": (124, 12),
    "mtime": (136, 12), "typeflag": (156, 1), "linkname": (157, 100), "magic": (257, 8),
    "devmajor": (329, 8), "devminor": (337, 8), "prefix": (345, 155),
}
TYPEFLAGS = b"0123456789xgLKSVMNDA\x00\xff"


def header_offsets(data: bytes) -> list[int]:
    """Offsets of the header blocks of a (seed) tar, walking sizes as a reader would."""
    out, pos = [], 0
    while pos + 512 <= len(data):
        block = data[pos : pos + 512]
        if block == bytes(512):
            break
        try:
            size = int(block[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            break
        out.append(pos)
        typeflag = block[156:157]
        has_data = typeflag not in (b"1", b"2", b"3", b"4", b"5", b"6")
        pos += 512 + (-(-size // 512) * 512 if has_data else 0)
    return out


def fix_checksum(buf: bytearray, at: int) -> None:
    block = buf[at : at + 512]
    block[148:156] = b" " * 8
    buf[at + 148 : at + 156] = b"%06o\0 " % sum(block)


@st.composite
def field_values(draw: st.DrawFn, field: str, length: int) -> bytes:
    if field == "typeflag":
        return bytes([draw(st.sampled_from(TYPEFLAGS))])
    if field in ("name", "linkname", "prefix"):
        text = draw(st.sampled_from((
            b"../../etc/passwd", b"/abs/path", b".wh..wh..opq", b"a/.wh.b", b"./", b"/", b"..",
            b"\xff\xfe", b"a" * length, b"", b"a//b/./c/", b".wh..wh.plnk/x",
        )) | st.binary(max_size=length))
        return text[:length].ljust(length, b"\0")
    # numbers: octal edge cases, base-256 (positive and negative), junk
    number = draw(st.sampled_from((
        b"0", b"7" * (length - 1), b"77777777777", b"-1", b" 12 ", b"9", b"",
        bytes([0x80]) + (2 ** (8 * length - 10)).to_bytes(length - 1, "big"),
        bytes([0xFF]) * length,
        bytes([0x80]) + (1).to_bytes(length - 1, "big"),
    )) | st.binary(min_size=length, max_size=length))
    return number[:length].ljust(length, b"\0")


NUMERIC_PAX = ("size", "uid", "gid", "mtime", "GNU.sparse.realsize", "GNU.sparse.size")
TEXT_PAX = ("path", "linkpath", "GNU.sparse.name", "SCHILY.xattr.user.x", "hdrcharset")
NUMBERS = (b"-1", b"1e999", b"inf", b"nan", b"99999999999999999999999", b"1.5", b"", b"1_0",
           b" 7", b"0x10", b"0")
TEXTS = (b"", b"/", b"../../../x", b"a/.wh..wh..opq", b"a/.wh.b", b"\xff\xfe", b"BINARY",
         b"x" * 300, b"a\0b")


def pax_record(key: str, value: bytes, skew: int = 0) -> bytes:
    """One "LEN key=value\\n" record; LEN counts its own digits. `skew` makes it lie."""
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + len(str(len(body) + len(str(len(body)))))
    return str(length + skew).encode() + body


def pax_header(payload: bytes, global_: bool = False) -> bytes:
    head = bytearray(512)
    head[0:12] = b"PaxHeaders/x"
    head[100:108] = b"0000644\0"
    head[124:136] = b"%011o\0" % len(payload)
    head[156:157] = b"g" if global_ else b"x"
    head[257:265] = b"ustar\x0000"
    fix_checksum(head, 0)
    return bytes(head) + payload + bytes(-len(payload) % 512)


@st.composite
def mutated_tar(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(SEEDS))
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 2)) == 0:
            # a PAX header with odd records in front of some member: no checksum guards it
            # right before a member's own header, so no extended header of the seed overrides
            offsets = [o for o in header_offsets(bytes(buf)) if buf[o + 156] not in b"xgLK"]
            at = draw(st.sampled_from(offsets or [0]))
            records = b""
            for _ in range(draw(st.integers(1, 2))):
                numeric = draw(st.booleans())
                key = draw(st.sampled_from(NUMERIC_PAX if numeric else TEXT_PAX))
                value = draw(st.sampled_from(NUMBERS if numeric else TEXTS)) \
                    if draw(st.integers(0, 3)) else draw(st.binary(max_size=12))
                skew = 0 if draw(st.integers(0, 5)) else draw(st.sampled_from((1, -1, 1000)))
                records += pax_record(key, value, skew)
            buf[at:at] = pax_header(records, global_=draw(st.integers(0, 4)) == 0)
        elif draw(st.booleans()):
            offsets = header_offsets(bytes(buf))
            if not offsets:
                continue
            at = draw(st.sampled_from(offsets))
            field = draw(st.sampled_from(sorted(FIELDS)))
            start, length = FIELDS[field]
            buf[at + start : at + start + length] = draw(field_values(field, length))
            fix_checksum(buf, at)
        else:
            buf = bytearray(draw(byte_mutations(bytes(buf), max_ops=3)))
    return Blob(buf)


@SETTINGS
@given(data=mutated_tar())
def test_mutated_layer_tars(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.tar"
        path.write_bytes(data)
        seekable = replay_path(path, f"layer tar of {len(data)} bytes (file)")
    streamed = replay_stream(data, f"layer tar of {len(data)} bytes (stream)")
    same_outcome(seekable, streamed, "file vs stream reading of one layer")


@SETTINGS
@given(data=mutated_tar(), which=st.integers(0, len(SEEDS) - 1))
def test_mutated_layer_inside_an_image(data: bytes, which: int) -> None:
    """The same mutations as the top layer of a valid image (digests match the bytes)."""
    lower = SEEDS[which]
    layers = [LayerBlob.plain(lower), LayerBlob(data, "application/vnd.oci.image.layer.v1.tar",
                                                sha256(data))]
    with tempfile.TemporaryDirectory() as tmp:
        analyze_image(write_image(Path(tmp) / "image", layers), "image with a mutated layer")


def test_seeds_read_the_same_both_ways() -> None:
    """Unmutated seeds: file and stream readings agree and no seed is refused."""
    for i, data in enumerate(SEEDS):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "layer.tar"
            path.write_bytes(data)
            seekable = replay_path(path, f"seed {i}")
        same_outcome(seekable, replay_stream(data, f"seed {i}"), f"seed {i}")
    assert len(SEEDS) >= 10
