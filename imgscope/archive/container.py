"""Where an image's files are: a tar on disk, a directory, or a one-pass stream.

All three answer the same questions (which names exist, the bytes of a small JSON member, a
layer blob), so manifest resolution (image.py) never knows its source. Names are resolved
inside the archive only: a symlink or a manifest path that climbs out, or a symlink loop, is an
error, never followed. Nothing is extracted or written.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from imgscope.archive.layer import Blob, Capture, LayerRead, LayerReader
from imgscope.archive.streams import FileRegion, HashingDecoder, reader_chunks, sniff_compression
from imgscope.archive.tarwalk import TarWalker
from imgscope.errors import (
    CorruptInput,
    ImgscopeError,
    MissingBlob,
    NotAnImage,
    UnsafeReference,
)
from imgscope.model import LayerEntry

MAX_SMALL = 16 * 1024 * 1024  # JSON members kept in memory (stream mode) and read (all modes)
MAX_LINK_HOPS = 16


def clean_name(name: str) -> str:
    """Archive member name without "./", leading "/" or trailing "/"."""
    return posixpath.normpath("/" + name).lstrip("/") if name else ""


@dataclass
class _Member:
    """One name in a container: its kind, size, data offset (tar only) and link target."""

    offset: int
    size: int
    kind: str  # "file", "dir", "symlink", "hardlink"
    link: str = ""


class Container:
    """The questions image resolution asks of its input."""

    kind = "container"
    archive_bytes = 0
    compressed_outer = False

    def names(self) -> list[str]:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        try:
            self.resolve(name)
        except ImgscopeError:
            return False
        return True

    def resolve(self, name: str) -> str:
        raise NotImplementedError

    def read_small(self, name: str, what: str) -> bytes:
        raise NotImplementedError

    def blob(self, name: str) -> Blob:
        raise NotImplementedError

    def preread(self, name: str) -> tuple[list[LayerEntry], LayerRead] | None:
        """Stream containers read layers as they pass; others return None."""
        return None

    def close(self) -> None:
        pass


def _resolve_links(name: str, lookup, what: str) -> str:
    """Follow symlinks and hard links between members, staying inside the archive."""
    current = clean_name(name)
    if name.startswith("/") or ".." in posixpath.normpath(name).split("/"):
        raise UnsafeReference(f"{what} {name!r} points outside the archive")
    for _ in range(MAX_LINK_HOPS):
        member = lookup(current)
        if member is None:
            raise MissingBlob(f"{what} {name!r} is not in the archive")
        if member.kind == "symlink":
            if member.link.startswith("/"):
                raise UnsafeReference(f"{what} {name!r}: symlink to {member.link!r} is absolute")
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(current), member.link))
            if joined == ".." or joined.startswith("../"):
                raise UnsafeReference(
                    f"{what} {name!r}: symlink to {member.link!r} points outside the archive"
                )
            current = joined
            continue
        if member.kind == "hardlink":
            current = clean_name(member.link)
            continue
        return current
    raise UnsafeReference(f"{what} {name!r}: symlink loop inside the archive")


class TarContainer(Container):
    """An uncompressed tar on disk: members indexed by offset, read with pread."""

    kind = "tar"

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.archive_bytes = os.fstat(self.fd).st_size
        self.members: dict[str, _Member] = {}
        walker = TarWalker(FileRegion(self.fd, 0, self.archive_bytes))
        try:
            for member in walker:
                name = clean_name(member.name)
                flag = member.typeflag
                if flag == b"2":
                    kind = "symlink"
                elif flag == b"1":
                    kind = "hardlink"
                elif flag == b"5":
                    kind = "dir"
                else:
                    kind = "file"
                self.members[name] = _Member(member.offset, member.stored_size, kind,
                                             member.linkname)
        except CorruptInput as exc:
            if not self.members:
                raise NotAnImage(f"{path} is not a tar archive or image layout ({exc})") from None
            raise CorruptInput(f"{path}: archive is damaged ({exc})") from None

    def names(self) -> list[str]:
        return list(self.members)

    def resolve(self, name: str) -> str:
        return _resolve_links(name, self.members.get, "reference")

    def read_small(self, name: str, what: str) -> bytes:
        member = self.members[self.resolve(name)]
        if member.kind == "dir":
            raise CorruptInput(f"{what} ({name}) is a directory")
        if member.size > MAX_SMALL:
            raise CorruptInput(f"{what} ({name}) is {member.size} bytes, too large")
        data = os.pread(self.fd, member.size, member.offset)
        if len(data) != member.size:
            raise CorruptInput(f"{what} ({name}) is truncated")
        return data

    def blob(self, name: str) -> Blob:
        real = self.resolve(name)
        member = self.members[real]
        if member.kind == "dir":
            raise MissingBlob(f"layer {name} is a directory, not a blob")
        if member.offset + member.size > self.archive_bytes:
            raise CorruptInput(f"layer {name} is truncated")
        return Blob(name=real, size=member.size, fd=self.fd, offset=member.offset)

    def close(self) -> None:
        os.close(self.fd)


class DirContainer(Container):
    """An OCI layout or unpacked docker-save directory."""

    kind = "dir"

    def __init__(self, path: str) -> None:
        self.root = os.path.realpath(path)
        self._fds: list[int] = []
        self.archive_bytes = 0
        self._names: list[str] = []
        for top, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(top, name)
                self._names.append(os.path.relpath(full, self.root).replace(os.sep, "/"))
                with contextlib.suppress(OSError):
                    self.archive_bytes += os.lstat(full).st_size

    def names(self) -> list[str]:
        return list(self._names)

    def _member(self, name: str):
        full = os.path.join(self.root, name)
        try:
            info = os.lstat(full)
        except OSError:
            return None
        if stat.S_ISLNK(info.st_mode):
            return _Member(0, 0, "symlink", os.readlink(full))
        if stat.S_ISDIR(info.st_mode):
            return _Member(0, 0, "dir")
        return _Member(0, info.st_size, "file")

    def resolve(self, name: str) -> str:
        return _resolve_links(name, self._member, "reference")

    def _open(self, name: str, what: str) -> tuple[int, int]:
        real = self.resolve(name)
        full = os.path.join(self.root, real)
        if os.path.isdir(full):
            raise CorruptInput(f"{what} ({name}) is a directory")
        try:
            fd = os.open(full, os.O_RDONLY)
        except OSError as exc:
            raise MissingBlob(f"{what} ({name}) cannot be read: {exc.strerror}") from None
        return fd, os.fstat(fd).st_size

    def read_small(self, name: str, what: str) -> bytes:
        fd, size = self._open(name, what)
        try:
            if size > MAX_SMALL:
                raise CorruptInput(f"{what} ({name}) is {size} bytes, too large")
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def blob(self, name: str) -> Blob:
        fd, size = self._open(name, "layer")
        self._fds.append(fd)
        return Blob(name=self.resolve(name), size=size, fd=fd, offset=0)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


@dataclass
class _Pre:
    """A stream member read as a layer while it passed: its entries and result, or the error."""

    entries: list[LayerEntry] | None = None
    read: LayerRead | None = None
    error: ImgscopeError | None = None


@dataclass
class StreamContainer(Container):
    """One pass over a stream (stdin, or a compressed archive): layers can come before the
    manifest, so every member that looks like a layer is read as it passes (metadata and
    digests only) and matched to the manifest at the end. No temporary copy is made."""

    kind = "stream"
    small: dict[str, bytes] = field(default_factory=dict)
    members: dict[str, _Member] = field(default_factory=dict)
    layers: dict[str, _Pre] = field(default_factory=dict)
    archive_bytes: int = 0
    compressed_outer: bool = False

    @classmethod
    def read(cls, chunks: Iterator[bytes], capture: Capture | None, verify: bool,
             label: str) -> StreamContainer:
        first = b""
        for first in chunks:
            if first:
                break
        if not first:
            raise NotAnImage(f"{label} is empty: not a container image")
        compression = sniff_compression(first)
        outer = HashingDecoder(_chain(first, chunks), compression, hash_raw=False, threaded=False)
        from imgscope.archive.streams import ChunkSource

        source = ChunkSource(outer.chunks())
        self = cls(compressed_outer=compression != "none")
        walker = TarWalker(source)
        try:
            for member in walker:
                name = clean_name(member.name)
                flag = member.typeflag
                if flag in (b"1", b"2"):
                    kind = "hardlink" if flag == b"1" else "symlink"
                    self.members[name] = _Member(0, 0, kind, member.linkname)
                    continue
                if flag == b"5":
                    self.members[name] = _Member(0, 0, "dir")
                    continue
                self.members[name] = _Member(0, member.stored_size, "file")
                head = walker.read_data(min(8, member.stored_size))
                # JSON (manifests, configs, index) is kept; anything else is read as a layer.
                if head.lstrip()[:1] in (b"{", b"[", b"n") and member.stored_size <= MAX_SMALL:
                    self.small[name] = head + walker.read_data(member.stored_size)
                    continue
                self.layers[name] = self._read_layer(walker, member.stored_size, head, name,
                                                     capture, verify)
        except CorruptInput as exc:
            if not self.members:
                raise NotAnImage(f"{label} is not a tar archive ({exc})") from None
            raise CorruptInput(f"{label}: archive is damaged ({exc})") from None
        self.archive_bytes = outer.raw_size
        return self

    @staticmethod
    def _read_layer(walker: TarWalker, size: int, head: bytes, name: str,
                    capture: Capture | None, verify: bool) -> _Pre:
        def rest() -> Iterator[bytes]:
            yield from reader_chunks(walker.read_data)

        blob = Blob(name=name, size=size, chunks=rest(), head=head)
        reader = LayerReader(blob, -1, capture, verify)
        try:
            entries = list(reader.entries())
        except ImgscopeError as exc:
            # Maybe not a layer at all (a non-JSON blob); it is an error only if referenced.
            return _Pre(error=exc)
        reader.result.compressed_size = size
        return _Pre(entries=entries, read=reader.result)

    def _read_layer_bytes(self, data: bytes, name: str) -> _Pre:
        blob = Blob(name=name, size=len(data), chunks=iter([data[8:]]), head=data[:8])
        reader = LayerReader(blob, -1, None, True)
        try:
            entries = list(reader.entries())
        except ImgscopeError as exc:
            return _Pre(error=exc)
        return _Pre(entries=entries, read=reader.result)

    def names(self) -> list[str]:
        return list(self.members)

    def resolve(self, name: str) -> str:
        return _resolve_links(name, self.members.get, "reference")

    def read_small(self, name: str, what: str) -> bytes:
        real = self.resolve(name)
        if real not in self.small:
            raise CorruptInput(f"{what} ({name}) is not a small JSON document")
        return self.small[real]

    def blob(self, name: str) -> Blob:
        real = self.resolve(name)
        return Blob(name=real, size=self.members[real].size)

    def preread(self, name: str) -> tuple[list[LayerEntry], LayerRead] | None:
        real = self.resolve(name)
        pre = self.layers.get(real)
        if pre is None:
            if real in self.small:
                data = self.small[real]
                pre = self._read_layer_bytes(data, real)
            else:
                raise MissingBlob(f"layer {name} is not in the archive")
        if pre.error is not None:
            raise CorruptInput(f"layer {name}: {pre.error}")
        assert pre.entries is not None and pre.read is not None
        return pre.entries, pre.read


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def open_container(source: str, capture: Capture | None, verify: bool, stdin=None,
                   before_stream: Callable[[], None] | None = None) -> Container:
    """Pick the container for a path ("-" is standard input), by content, never by name.
    A streamed input's layers are walked as they arrive, with `capture`: `before_stream`
    (when given) completes it first."""
    if source == "-":
        if before_stream is not None:
            before_stream()
        stream = stdin if stdin is not None else os.fdopen(os.dup(0), "rb")
        return StreamContainer.read(reader_chunks(stream.read), capture, verify, "standard input")
    try:
        info = os.stat(source)
    except OSError as exc:
        raise NotAnImage(f"{source}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        return DirContainer(source)
    if not stat.S_ISREG(info.st_mode):
        raise NotAnImage(f"{source} is not a file or directory")
    with open(source, "rb") as handle:
        head = handle.read(8)
    if sniff_compression(head) != "none":
        # A compressed archive cannot be seeked: read it in one pass, like standard input.
        if before_stream is not None:
            before_stream()
        with open(source, "rb") as handle:
            return StreamContainer.read(reader_chunks(handle.read), capture, verify, source)
    return TarContainer(source)
