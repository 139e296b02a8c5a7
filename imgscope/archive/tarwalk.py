"""A streaming tar header walker: metadata only, content skipped unless asked for.

Why not `tarfile`: on the critical path of `inspect` it costs ~40 us a member against ~11 us
for a struct-based walk (measured on a 140k-member tar here), and it keeps every TarInfo in
`members`. This walker understands what image layers contain: ustar and GNU headers, PAX
extended headers (path, linkpath, size, uid, gid, mtime, xattrs, GNU sparse), GNU long names
and links, old GNU sparse files, base-256 numbers. It verifies each header checksum and stops
at the end-of-archive block as Go's archive/tar (and so containerd and umoci) does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple, Protocol
from zlib import adler32

from imgscope.errors import CorruptInput, LimitExceeded

BLOCK = 512
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_ZERO_BLOCK = bytes(BLOCK)
MAX_META_BYTES = 8 * 1024 * 1024  # PAX / GNU long-name payloads; real ones are < 4 KiB


class ByteSource(Protocol):
    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only at end of data."""
        ...

    def skip(self, n: int) -> int:
        """Skip up to n bytes; returns how many were skipped (fewer only at end of data)."""
        ...


class RawMember(NamedTuple):
    name: str  # decoded UTF-8, undecodable bytes kept as surrogates (os.fsdecode style)
    typeflag: bytes
    size: int  # apparent size
    stored_size: int  # data bytes following the header in the stream
    mode: int
    uid: int
    gid: int
    mtime: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, str], ...]
    offset: int  # stream offset of the member's data


def _number(field: bytes) -> int:
    try:  # the common case: octal digits, NUL or space terminated (int() strips spaces)
        return int(field.rstrip(b"\0 "), 8)
    except ValueError:
        pass
    if field and field[0] & 0x80:  # GNU base-256 for large uid/size/mtime
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:  # negative (only sensible for mtime)
            value -= 1 << (8 * len(field) - 2)
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise CorruptInput(f"bad number {field!r} in tar header") from None


def _byte_sum(block: bytes) -> int:
    """sum(block) for a 512-byte header, in C: adler32's low half is 1 + the byte sum modulo
    65521, exact for 256 bytes (at most 65280). 0.4 us against 2.7 us for sum()."""
    return (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) - 2


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_int(attrs: dict[str, str], key: str, default: int) -> int:
    value = attrs.get(key)
    if value is None:
        return default
    try:
        number = int(float(value)) if key == "mtime" else int(value)
    except (ValueError, OverflowError):  # OverflowError: an mtime of "inf" or "1e999"
        raise CorruptInput(f"bad PAX {key} value {value[:40]!r}") from None
    if key == "size" and number < 0:  # a negative count would read backwards or everything
        raise CorruptInput(f"negative PAX {key} value {value[:40]!r}")
    return number


def _parse_pax(data: bytes) -> dict[str, str]:
    """PAX records: "LEN key=value\\n"; values are UTF-8 (hdrcharset BINARY kept as bytes)."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptInput("malformed PAX extended header") from None
        if length <= 0 or pos + length > len(data):
            raise CorruptInput("malformed PAX extended header")
        record = data[space + 1 : pos + length - 1]  # drop the trailing newline
        key, _, value = record.partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarWalker:
    """Iterate the members of one tar stream; the caller may read the current member's data."""

    def __init__(self, source: ByteSource) -> None:
        self._src = source
        self.position = 0  # bytes consumed from the source
        self._data_left = 0  # unread data bytes of the current member
        self._pad = 0  # padding after the current member's data
        self.end = "none"  # after iteration: "zeros" (proper end), "eof" (no end blocks)
        self._global_pax: dict[str, str] = {}
        self.overread = b""  # a block read past the end marker, not part of the archive

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._src.read(n)
        self.position += len(data)
        if len(data) != n:
            raise CorruptInput(f"truncated tar: {what} at offset {self.position - len(data)}")
        return data

    @property
    def data_left(self) -> int:
        """Bytes of the current member's data not read yet."""
        return self._data_left

    def read_data(self, limit: int) -> bytes:
        """Read up to `limit` bytes of the current member's data (the rest is skipped later)."""
        n = min(limit, self._data_left)
        data = self._src.read(n)
        self.position += len(data)
        self._data_left -= len(data)
        if len(data) != n:
            raise CorruptInput(f"truncated tar: member data ends early at {self.position}")
        return data

    def _meta_payload(self, size: int) -> bytes:
        if size > MAX_META_BYTES:
            raise LimitExceeded(f"tar extended header of {size} bytes")
        data = self._read_exact(size, "extended header")
        pad = -size % BLOCK
        if pad:
            self.position += self._src.skip(pad)
        return data

    def __iter__(self) -> Iterator[RawMember]:
        # The hot loop of every layer read (~17k members for a Debian image with compilers):
        # names are bound locally and the common case (plain octal numbers, no PAX) runs
        # straight through; about 5 us a member here.
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        read = self._src.read
        skip = self._src.skip
        unpack = _HEADER.unpack
        new_member = RawMember._make  # a plain tuple in: 0.5 us less than RawMember(...)
        while True:
            todo = self._data_left + self._pad
            if todo:  # what the caller left of the previous member's data, and its padding
                skipped = skip(todo)
                self.position += skipped
                if skipped < self._data_left:
                    raise CorruptInput(f"truncated tar: member data ends early at {self.position}")
                # Missing padding after the last member's data is tolerated, as Go's reader does.
                self._data_left = self._pad = 0
            block = read(BLOCK)
            position = self.position = self.position + len(block)
            if len(block) != BLOCK:
                if not block:
                    self.end = "eof"
                    return
                if position == len(block):
                    raise CorruptInput(f"not a tar archive: {len(block)} bytes of data")
                raise CorruptInput(f"truncated tar: partial header at offset {position}")
            if block == _ZERO_BLOCK:
                # The end is two zero blocks; consume the second so that what follows
                # (eStargz's TOC, a second concatenated tar) is counted as trailing data.
                second = read(BLOCK)
                if second == _ZERO_BLOCK:
                    self.position += BLOCK
                    self.end = "zeros"
                else:
                    # One zero block, then data: Go's reader returns ErrHeader here; we end the
                    # archive (what follows is counted as trailing data) and say so.
                    self.end = "zero-block"
                    self.overread = second
                return
            (name, mode, uid, gid, size, mtime, chksum, typeflag, linkname, magic, _version,
             _uname, _gname, devmajor, devminor, prefix) = unpack(block)
            try:  # common case in one go: every number plain octal
                expected = int(chksum.rstrip(b"\0 "), 8)
                data_size = int(size.rstrip(b"\0 "), 8)
            except ValueError:
                expected = _number(chksum)
                data_size = _number(size)
            # sum(block) with the checksum field read as spaces, summed in C (see _byte_sum)
            if expected != (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) \
                    - sum(block[148:156]) + 254:
                # Some old tars computed the sum over signed chars.
                signed = sum(b - 256 if b > 127 else b for b in block)
                signed -= sum(b - 256 if b > 127 else b for b in block[148:156]) - 256
                if expected != signed:
                    where = position - BLOCK
                    if where == 0:
                        raise CorruptInput("not a tar archive (bad header checksum at offset 0)")
                    raise CorruptInput(f"bad tar header checksum at offset {where}")
            if data_size < 0:
                raise CorruptInput(f"negative size in tar header at offset {position - BLOCK}")
            if typeflag in b"xgLK":  # (typeflag is one byte: never the empty string)
                if typeflag == b"x" or typeflag == b"g":
                    records = _parse_pax(self._meta_payload(data_size))
                    if typeflag == b"g":
                        self._global_pax.update(records)
                    else:
                        pax.update(records)
                    continue
                text = self._meta_payload(data_size).split(b"\0", 1)[0]
                decoded = text.decode("utf-8", "surrogateescape")
                if typeflag == b"L":
                    long_name = decoded
                else:
                    long_link = decoded
                continue

            if magic == b"ustar\0" and prefix[0]:  # POSIX ustar splits long names
                member_name = _text(prefix) + "/" + _text(name)
            else:
                member_name = name.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if long_name is not None:
                member_name = long_name
            if long_link is not None:
                member_link = long_link
            elif typeflag == b"1" or typeflag == b"2":
                member_link = _text(linkname)
            else:
                member_link = ""
            try:
                mode_n = int(mode.rstrip(b"\0 "), 8)
                uid_n = int(uid.rstrip(b"\0 "), 8)
                gid_n = int(gid.rstrip(b"\0 "), 8)
                mtime_n = int(mtime.rstrip(b"\0 "), 8)
            except ValueError:
                mode_n, uid_n, gid_n, mtime_n = (
                    _number(mode), _number(uid), _number(gid), _number(mtime))
            apparent = stored = data_size
            xattrs: tuple[tuple[str, str], ...] = ()
            if typeflag == b"S":  # old GNU sparse: realsize at 483, extension blocks follow
                apparent = _number(block[483:495])
                extended = block[482]
                while extended:
                    ext = self._read_exact(BLOCK, "sparse header")
                    extended = ext[504]
            attrs = {**self._global_pax, **pax} if self._global_pax else pax
            if attrs:
                member_name = attrs.get("path", member_name)
                member_link = attrs.get("linkpath", member_link)
                if "size" in attrs:
                    stored = apparent = _pax_int(attrs, "size", data_size)
                if "GNU.sparse.name" in attrs:
                    member_name = attrs["GNU.sparse.name"]
                realsize = attrs.get("GNU.sparse.realsize") or attrs.get("GNU.sparse.size")
                if realsize is not None:
                    apparent = _pax_int({"size": realsize}, "size", apparent)
                xattrs = tuple(sorted(
                    (key[len("SCHILY.xattr."):], value)
                    for key, value in attrs.items()
                    if key.startswith("SCHILY.xattr.")
                ))
                uid_n = _pax_int(attrs, "uid", uid_n)
                gid_n = _pax_int(attrs, "gid", gid_n)
                mtime_n = _pax_int(attrs, "mtime", mtime_n)
                if pax:
                    pax = {}
            if typeflag == b"3" or typeflag == b"4":
                devices = _number(devmajor), _number(devminor)
            else:
                devices = 0, 0
            long_name = long_link = None
            # Directories, links and devices carry no data whatever their size field says.
            if typeflag in b"123456":
                self._data_left = self._pad = 0
            else:
                self._data_left = stored
                self._pad = -stored % BLOCK
            yield new_member((member_name, typeflag, apparent, stored, mode_n, uid_n, gid_n,
                              mtime_n, member_link, *devices, xattrs, self.position))
