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
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, TypeVar

from imgscope.model import Package

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What a cataloger may know of a path in the final filesystem."""

    path: str
    type: str  # "file", "dir", "symlink", ...
    size: int
    mode: int
    layer: int  # layer index that last wrote it
    link_target: str | None = None


class PathFacts(Protocol):
    """The facts of a path that a loop over every path needs: a FileInfo, or the overlay's
    own node. ``type`` may be a str enum: compare it with ``==``, never look it up in a set
    or a dict (an enum member hashes by its name, not by its value)."""

    @property
    def type(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def mode(self) -> int: ...

    @property
    def link_target(self) -> str | None: ...


# Which listed paths a caller's result depends on (FileView.paths): a test of a path and of
# what stat() says of it.
Listed = Callable[[str, "PathFacts"], bool]


class FileView(Protocol):
    """The final filesystem as a cataloger sees it."""

    # True when every path the view knows is a regular file (a bag of database files, not a
    # filesystem tree): there are no directories or symlinks to resolve a claimed path through.
    files_only: bool

    def info(self, path: str) -> FileInfo | None: ...

    def stat(self, path: str) -> PathFacts | None:
        """What info() says, without copying it into a FileInfo: for hot loops."""
        ...

    def paths(self, listed: Listed | None = None) -> Iterable[str]:
        """Every path of the final filesystem (absolute, "/usr/bin/gcc"). With `listed`, the
        caller says that what it finds does not depend on the paths `listed` refuses (it
        skips them itself: a call a path costs more than the test inline): a cataloger that
        passes it to every listing can be reused on a twin tree (`reusable`)."""
        ...

    def entries(self, listed: Listed | None = None) -> Iterable[tuple[str, PathFacts]]:
        """paths() with what stat() says of each, in one pass: for scans of every path."""
        ...

    def read(self, path: str) -> bytes | None:
        """The bytes of a file that matched a cataloger's content_patterns, else None."""
        ...

    def open(self, path: str) -> BinaryIO | None:
        """A seekable binary stream of a large file kept for inspection (ELF), else None."""
        ...

    def remember(self, path: str, kind: str, compute: Callable[[], _T]) -> _T:
        """compute(): what a cataloger reads out of the file at `path` (`kind` names what),
        which must depend on the file's bytes alone (not on its path). A view may keep it
        for those bytes: `imgscope diff` gives both images' views one memo, so that a file
        they share (the same node) is read once, not once per image."""
        ...

    def reusable(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """compute(), which must depend on `key` and on what it looks up through this view
        alone. `imgscope diff` gives the second image a view that returns what compute
        returned for `key` on the first image when nothing it looked at differs between the
        two trees (catalog.twin); any other view just calls it. Whole catalogers run so
        (api.run_catalogers); a cataloger may wrap its own parts too (dpkg: one package)."""
        ...


@dataclass
class CatalogResult:
    """What one cataloger found: its packages, and warnings about what it could not read."""

    packages: list[Package] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Cataloger(Protocol):
    """What catalog() finds depends on the paths, types, modes, sizes, link targets and bytes
    of files, never on which layer wrote them, their owners or their times (catalog.twin
    reuses a result where only those differ)."""

    name: str  # "dpkg", "apk", ...
    content_patterns: tuple[str, ...]  # fnmatch on absolute paths; "*" also matches "/"
    wants_executables: bool  # True: needs open() on ELF executables (Go, Rust build info)

    def catalog(self, files: FileView) -> CatalogResult: ...


_GLOB = frozenset("*?[")


def _literal_prefix(pattern: str) -> str:
    for index, char in enumerate(pattern):
        if char in _GLOB:
            return pattern[:index]
    return pattern


class PathMatcher:
    """Many fnmatch globs as one matcher, fast on the paths that match none of them.

    One combined regex costs ~9 us a path (its `.*` branches backtrack); most tar entries are
    rejected by a set lookup on their file name first. Every pattern is still matched by its
    regex, so the answer is exactly fnmatch's."""

    def __init__(self, patterns: Iterable[str]) -> None:
        names: set[str] = set()
        suffixes: list[str] = []
        prefixes: list[str] = []
        by_name: list[str] = []
        by_prefix: list[str] = []
        others: list[str] = []
        for pattern in dict.fromkeys(patterns):
            base = pattern.rpartition("/")[2]
            if not any(c in _GLOB for c in base):
                names.add(base)  # a literal last component: the path's file name equals it
                by_name.append(pattern)
            elif base.startswith("*") and len(base) > 1 and not any(c in _GLOB for c in base[1:]):
                suffixes.append(base[1:])  # "*.jar": the file name ends so
                by_name.append(pattern)
            elif len(_literal_prefix(pattern)) > 1 and pattern.startswith("/"):
                prefixes.append(_literal_prefix(pattern))
                by_prefix.append(pattern)
            else:
                others.append(pattern)
        self._names = frozenset(names)
        self._suffixes = tuple(suffixes)
        self._prefixes = tuple(prefixes)
        self._by_name = _regex(by_name)
        self._by_prefix = _regex(by_prefix)
        self._others = _regex(others)

    def match(self, path: str) -> bool | None:
        base = path.rpartition("/")[2]
        if self._by_name is not None and (base in self._names or base.endswith(self._suffixes)) \
                and self._by_name.match(path):
            return True
        if self._by_prefix is not None and path.startswith(self._prefixes) \
                and self._by_prefix.match(path):
            return True
        if self._others is not None and self._others.match(path):
            return True
        return None


def _regex(patterns: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None


def compile_patterns(patterns: Iterable[str]) -> PathMatcher | None:
    """One matcher for many globs: one call per tar entry instead of one per pattern."""
    patterns = list(patterns)
    return PathMatcher(patterns) if patterns else None


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
        self.files_only = all(item.type == "file" for item in self._info.values())

    def info(self, path: str) -> FileInfo | None:
        return self._info.get(path)

    def stat(self, path: str) -> FileInfo | None:
        return self._info.get(path)

    def paths(self, listed: Listed | None = None) -> Iterator[str]:
        return iter(sorted(self._info))

    def entries(self, listed: Listed | None = None) -> Iterator[tuple[str, FileInfo]]:
        return iter(sorted(self._info.items()))

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def open(self, path: str) -> BinaryIO | None:
        import io

        data = self._files.get(path)
        return io.BytesIO(data) if data is not None else None

    def remember(self, path: str, kind: str, compute: Callable[[], _T]) -> _T:
        return compute()

    def reusable(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        return compute()
