"""The final filesystem as catalogers see it: a FileView over the overlay tree."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import BinaryIO, TypeVar

from imgscope.catalog.base import FileInfo, Listed
from imgscope.model import EntryType
from imgscope.overlay import Node, Overlay

MAX_READ = 256 * 1024 * 1024
_T = TypeVar("_T")


class RegionFile(io.RawIOBase):
    """A read-only, seekable window of a file descriptor (bytes kept by reference)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd, self._start, self._size, self._pos = fd, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._start + self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class OverlayFileView:
    files_only = False

    def __init__(self, fs: Overlay, memo: dict | None = None) -> None:
        self._fs = fs
        self._nodes = fs.index()
        # (kind, id(inode)) -> (inode, result): see remember(). The inode is kept with its
        # result so that its id cannot be reused by another inode while the memo lives.
        self._memo = memo

    def _node(self, path: str) -> Node | None:
        """The node at `path`, following symlinks (the final one too)."""
        node = self._nodes.get(path)
        if node is not None and node.type is not EntryType.SYMLINK:
            return node  # an indexed path has only real directories above it: nothing to follow
        if node is None:
            parent, _, leaf = path.rpartition("/")
            above = self._nodes.get(parent)
            if above is not None and above.type is EntryType.DIR and leaf not in ("", ".", ".."):
                return None  # a real directory that has no such entry (an optional database)
        resolved = self._resolve(path)
        return resolved[1] if resolved is not None else None

    def _resolve(self, path: str) -> tuple[str, Node] | None:
        return self._fs.resolve(path)

    def info(self, path: str) -> FileInfo | None:
        # Built on each call, not cached: a cache costs ~250 MB on a million-entry layer.
        node = self._nodes.get(path) if path != "/" else self._fs.root
        if node is None:
            return None
        return FileInfo(path=path, type=node.type.value, size=node.size, mode=node.mode,
                        layer=node.layer, link_target=node.link_target)

    def stat(self, path: str) -> Node | None:
        """The node itself (its type is an EntryType: a str, compared with ``==``)."""
        return self._nodes.get(path) if path != "/" else self._fs.root

    def paths(self, listed: Listed | None = None) -> Iterator[str]:
        return iter(self._nodes)

    def entries(self, listed: Listed | None = None) -> Iterable[tuple[str, Node]]:
        return self._nodes.items()

    def read(self, path: str) -> bytes | None:
        node = self._node(path)
        if node is None or node.type is not EntryType.FILE or node.inode is None:
            return None
        if node.inode.content is not None:
            return node.inode.content
        ref = node.inode.data_ref
        if ref is None or node.inode.size > MAX_READ:
            return None
        return os.pread(ref[0], node.inode.size, ref[1])

    def open(self, path: str) -> BinaryIO | None:
        node = self._node(path)
        if node is None or node.type is not EntryType.FILE or node.inode is None:
            return None
        if node.inode.content is not None:
            return io.BytesIO(node.inode.content)
        ref = node.inode.data_ref
        if ref is None:
            return None
        return io.BufferedReader(RegionFile(ref[0], ref[1], node.inode.size))  # type: ignore[return-value]

    def remember(self, path: str, kind: str, compute: Callable[[], _T]) -> _T:
        """compute(), kept per inode in the memo this view was given (one per diff: what a
        cataloger read out of a file the second image shares with the first is not read
        again); without a memo, computed every time."""
        node = self._node(path) if self._memo is not None else None
        if node is None or node.inode is None:
            return compute()
        key = (kind, id(node.inode))
        known = self._memo.get(key)  # type: ignore[union-attr]
        if known is None:
            known = self._memo[key] = (node.inode, compute())  # type: ignore[index]
        return known[1]

    def reusable(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        return compute()
