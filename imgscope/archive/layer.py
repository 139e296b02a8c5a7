"""Read one layer blob: sniff its compression, walk its tar, verify its digests.

Yields LayerEntry metadata in tar order; keeps the bytes of a file only when the caller's
capture rule asks for that path. Member names are normalised the way containerd and umoci do
(`./`, `/`, trailing `/` and `..` resolved inside the root), and every name that needed it is
reported as a finding, since nothing is ever extracted.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from imgscope.archive.streams import (
    ChunkSource,
    FileRegion,
    HashingDecoder,
    file_chunks,
    hash_region_async,
    sniff_compression,
)
from imgscope.archive.tarwalk import RawMember, TarWalker
from imgscope.errors import CorruptInput, LimitExceeded
from imgscope.model import EntryType, LayerEntry, PathFinding

_TYPES = {
    b"0": EntryType.FILE,
    b"\0": EntryType.FILE,
    b"7": EntryType.FILE,  # contiguous file
    b"S": EntryType.FILE,  # old GNU sparse
    b"1": EntryType.HARDLINK,
    b"2": EntryType.SYMLINK,
    b"3": EntryType.CHAR,
    b"4": EntryType.BLOCK,
    b"5": EntryType.DIR,
    b"6": EntryType.FIFO,
}
MAX_ENTRIES_PER_LAYER = 5_000_000


@dataclass
class Capture:
    """Which files to keep the bytes of: paths matching `pattern`, up to `max_bytes` each."""

    pattern: re.Pattern[str] | None
    max_bytes: int = 64 * 1024 * 1024

    def wants(self, path: str, size: int) -> bool:
        return (
            self.pattern is not None
            and size <= self.max_bytes
            and self.pattern.match(path) is not None
        )


@dataclass
class Blob:
    """Where a layer's bytes are: a seekable file region, or a one-shot chunk iterator."""

    name: str  # for messages: the path inside the archive
    size: int
    fd: int | None = None
    offset: int = 0
    chunks: Iterator[bytes] | None = None
    head: bytes = b""  # first bytes, already read from `chunks` to sniff compression


@dataclass
class LayerRead:
    """What reading a layer measured."""

    compression: str = "none"
    compressed_size: int = 0
    uncompressed_size: int = 0
    diff_id: str | None = None  # sha256 of the uncompressed stream (None when not verifying)
    blob_digest: str | None = None  # sha256 of the blob as stored
    trailing_bytes: int = 0
    end: str = "zeros"
    findings: list[PathFinding] = field(default_factory=list)


def normalise(name: str) -> tuple[str, bool, bool]:
    """Return (absolute clean path, was_absolute, escaped) for a member name."""
    absolute = name.startswith("/")
    parts: list[str] = []
    escaped = False
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            else:
                escaped = True
            continue
        parts.append(part)
    return "/" + "/".join(parts), absolute, escaped


def _raw_name(path: str) -> bytes | None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape")
    return None


class LayerReader:
    """Iterate one layer's entries; `result` is complete once `entries()` is exhausted."""

    def __init__(self, blob: Blob, index: int, capture: Capture | None, verify: bool) -> None:
        self.blob = blob
        self.index = index
        self.capture = capture
        self.verify = verify
        self.result = LayerRead(compressed_size=blob.size)

    def entries(self) -> Iterator[LayerEntry]:
        blob = self.blob
        if blob.fd is not None:
            head = FileRegion(blob.fd, blob.offset, blob.size).read(8)
            compression = sniff_compression(head)
            self.result.compression = compression
            if compression == "none":
                yield from self._seekable_plain()
                return
            raw: Iterator[bytes] = file_chunks(blob.fd, blob.offset, blob.size)
        else:
            assert blob.chunks is not None
            compression = sniff_compression(blob.head)
            self.result.compression = compression
            raw = _prepend(blob.head, blob.chunks)
        yield from self._streamed(raw, compression)

    def _seekable_plain(self) -> Iterator[LayerEntry]:
        blob = self.blob
        pending = hash_region_async(blob.fd, blob.offset, blob.size) if self.verify else None
        region = FileRegion(blob.fd, blob.offset, blob.size)
        walker = TarWalker(region)
        try:
            yield from self._walk(walker)
        finally:
            digest = pending.result() if pending is not None else None
        self.result.uncompressed_size = blob.size
        self.result.trailing_bytes = blob.size - walker.position
        if digest is not None:
            self.result.diff_id = self.result.blob_digest = digest[0]
            if digest[1] != blob.size:
                raise CorruptInput(f"layer {blob.name} is truncated")

    def _streamed(self, raw: Iterator[bytes], compression: str) -> Iterator[LayerEntry]:
        decoder = HashingDecoder(raw, compression, hash_raw=self.verify and compression != "none")
        source = ChunkSource(decoder.chunks())
        walker = TarWalker(source)
        try:
            yield from self._walk(walker)
            trailing = source.drain()
        finally:
            decoder.close()
        res = self.result
        res.trailing_bytes = trailing
        res.uncompressed_size = decoder.decoded_size
        res.compressed_size = decoder.raw_size
        if self.verify:
            res.diff_id = "sha256:" + decoder.decoded_digest.hexdigest()
            raw_digest = decoder.raw_digest if decoder.raw_digest is not None else None
            res.blob_digest = (
                "sha256:" + raw_digest.hexdigest() if raw_digest is not None else res.diff_id
            )

    def _walk(self, walker: TarWalker) -> Iterator[LayerEntry]:
        index = self.index
        findings = self.result.findings
        capture = self.capture
        count = 0
        for member in walker:
            count += 1
            if count > MAX_ENTRIES_PER_LAYER:
                raise LimitExceeded(f"layer {index} has over {MAX_ENTRIES_PER_LAYER} entries")
            entry = self._entry(member, findings)
            if entry is None:
                continue
            if (
                capture is not None
                and entry.type is EntryType.FILE
                and capture.wants(entry.path, member.stored_size)
            ):
                data = walker.read_data(member.stored_size)
                entry = _with_content(entry, data)
            yield entry
        self.result.end = walker.end
        if walker.end == "eof":
            findings.append(
                PathFinding(index, "no-end-of-archive", "", "layer tar has no end-of-archive blocks")
            )

    def _entry(self, member: RawMember, findings: list[PathFinding]) -> LayerEntry | None:
        etype = _TYPES.get(member.typeflag)
        if etype is None:
            # Unknown typeflags are read as regular files, as the tar spec asks.
            if member.typeflag in (b"V", b"M", b"N"):  # volume label, multi-volume: no file
                return None
            etype = EntryType.FILE
        path, absolute, escaped = normalise(member.name)
        if absolute or escaped:
            findings.append(
                PathFinding(
                    self.index,
                    "path-escape" if escaped else "absolute-path",
                    path,
                    f"member name {member.name!r} "
                    + ("climbs out of the root" if escaped else "is absolute"),
                )
            )
        link: str | None = None
        if etype is EntryType.HARDLINK:
            link, link_abs, link_escaped = normalise(member.linkname)
            if link_escaped:
                findings.append(
                    PathFinding(self.index, "path-escape", path,
                                f"hard link target {member.linkname!r} climbs out of the root")
                )
        elif etype is EntryType.SYMLINK:
            link = member.linkname
        is_file = etype is EntryType.FILE
        return LayerEntry(
            path=path,
            type=etype,
            size=member.size if is_file else 0,
            stored_size=member.stored_size if is_file else 0,
            mode=member.mode & 0o7777,
            uid=member.uid,
            gid=member.gid,
            mtime=member.mtime,
            link_target=link,
            devmajor=member.devmajor,
            devminor=member.devminor,
            xattrs=member.xattrs,
            raw_name=_raw_name(path),
        )


def _with_content(entry: LayerEntry, data: bytes) -> LayerEntry:
    return LayerEntry(
        path=entry.path, type=entry.type, size=entry.size, stored_size=entry.stored_size,
        mode=entry.mode, uid=entry.uid, gid=entry.gid, mtime=entry.mtime,
        link_target=entry.link_target, devmajor=entry.devmajor, devminor=entry.devminor,
        xattrs=entry.xattrs, raw_name=entry.raw_name, content=data,
    )


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def whiteout_target(path: str) -> tuple[str, str] | None:
    """For a whiteout path return ("remove", target) or ("opaque", directory); else None."""
    parent, base = posixpath.split(path)
    if not base.startswith(".wh."):
        return None
    if base == ".wh..wh..opq":
        return "opaque", parent
    if base.startswith(".wh..wh."):
        return "meta", path  # AUFS bookkeeping (.wh..wh.plnk ...): ignored, as containerd does
    return "remove", posixpath.join(parent, base[4:])
