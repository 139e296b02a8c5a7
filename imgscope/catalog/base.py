"""The one small interface every ecosystem cataloger implements.

A cataloger declares up front which files it needs the bytes of (``content_patterns``), so the
layer reader keeps only those in its single pass; then ``catalog`` reads them through a
``FileView`` of the final filesystem and returns packages with the files they own and the
evidence (database paths) behind each claim. A cataloger never raises on bad data: it returns
what it could read and a warning for the rest.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from imgscope.model import Package


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a cataloger may know of a path in the final filesystem."""

    path: str
    type: str  # "file", "dir", "symlink", ...
    size: int
    mode: int
    layer: int  # layer index that last wrote it
    link_target: str | None = None


class FileView(Protocol):
    """The final filesystem as a cataloger sees it."""

    def info(self, path: str) -> FileInfo | None: ...

    def paths(self) -> Iterable[str]:
        """Every path of the final filesystem (absolute, "/usr/bin/gcc")."""
        ...

    def read(self, path: str) -> bytes | None:
        """The bytes of a file that matched a cataloger's content_patterns, else None."""
        ...

    def open(self, path: str) -> BinaryIO | None:
        """A seekable binary stream of a large file kept for inspection (ELF), else None."""
        ...


@dataclass
class CatalogResult:
    packages: list[Package] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Cataloger(Protocol):
    name: str  # "dpkg", "apk", ...
    content_patterns: tuple[str, ...]  # fnmatch on absolute paths; "*" also matches "/"
    wants_executables: bool  # True: needs open() on ELF executables (Go, Rust build info)

    def catalog(self, files: FileView) -> CatalogResult: ...


def compile_patterns(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for many globs: one match call per tar entry instead of one per pattern."""
    parts = [fnmatch.translate(p) for p in patterns]
    return re.compile("|".join(parts)) if parts else None


class MemoryFileView:
    """A FileView over a dict of path -> bytes: for unit tests and for parsing loose databases."""

    def __init__(self, files: dict[str, bytes], extra: Iterable[FileInfo] = ()) -> None:
        self._files = dict(files)
        self._info = {
            p: FileInfo(path=p, type="file", size=len(b), mode=0o644, layer=0)
            for p, b in self._files.items()
        }
        for item in extra:
            self._info[item.path] = item

    def info(self, path: str) -> FileInfo | None:
        return self._info.get(path)

    def paths(self) -> Iterator[str]:
        return iter(sorted(self._info))

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def open(self, path: str) -> BinaryIO | None:
        import io

        data = self._files.get(path)
        return io.BytesIO(data) if data is not None else None
