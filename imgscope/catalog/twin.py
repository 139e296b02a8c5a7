"""What the catalogers found in one image, reused for its twin (`imgscope diff`).

Two images that share their base differ at a few paths (diff.changed_paths); a cataloger
that looked at none of them finds in the second image what it found in the first. The first
image's catalogers run on a `RecordingView`, which knows those paths up front and counts
every lookup that meets one: a path asked for, every path a symlink walk looked up, and, in
a listing, every differing path on either side but those the lister says it skips
(FileView.paths(listed)). A unit (`FileView.reusable`: a whole cataloger, or a part such as
one dpkg package) that met none is kept, and the second image's `ReusingView` returns it
instead of running it again. What a cataloger finds depends only on what the view shows of
a path (type, mode, size, link target, bytes: catalog.base.Cataloger), so `Differences`
keeps only the paths where one of those differs, not those a layer merely wrote again (the
directories above an installed file).

A unit inside another may use what its cataloger worked out before it, outside it: the
PathResolver's directory cache. That is safe while both trees resolve every directory alike,
which only a differing symlink that leads to a directory can break; with one, nothing is
reused.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from typing import TypeVar

from imgscope.catalog.base import FileInfo, Listed
from imgscope.catalog.view import OverlayFileView
from imgscope.model import EntryType
from imgscope.overlay import Node, Overlay

_T = TypeVar("_T")


class Differences:
    """The paths at which two twin trees show a cataloger something different."""

    def __init__(self, first: Overlay, second: Overlay, changed: Collection[str]) -> None:
        one, two = first.index(), second.index()
        self.nodes: dict[str, tuple[Node | None, Node | None]] = {}
        for path in changed:
            a, b = one.get(path), two.get(path)
            if not _alike(a, b):
                self.nodes[path] = (a, b)
        # A differing symlink that leads to a directory on its side changes how paths
        # below it resolve, also in caches a cataloger keeps across units (see above).
        self.resolve_alike = not any(
            _to_directory(fs, path, node)
            for path, pair in self.nodes.items()
            for fs, node in zip((first, second), pair, strict=True)
        )

    def any_listed(self, listed: Listed) -> bool:
        """Whether `listed` accepts a differing path on either side."""
        return any(listed(path, node) for path, pair in self.nodes.items()
                   for node in pair if node is not None)


def _alike(a: Node | None, b: Node | None) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    if a.type is not b.type or a.mode != b.mode or a.link_target != b.link_target:
        return False
    # A file's bytes: the same content object (shared by the snapshot), not compared.
    return a.type is not EntryType.FILE or a.inode is b.inode


def _to_directory(fs: Overlay, path: str, node: Node | None) -> bool:
    if node is None or node.type is not EntryType.SYMLINK:
        return False
    resolved = fs.resolve(path)
    return resolved is not None and resolved[1].type is EntryType.DIR


class RecordingView(OverlayFileView):
    """The first image's view: each unit that met no differing path is kept in `kept`."""

    def __init__(self, fs: Overlay, memo: dict | None, differences: Differences,
                 kept: dict[Hashable, object]) -> None:
        super().__init__(fs, memo)
        self._differ = differences
        self._differing = differences.nodes
        self._kept = kept
        self._met = 0  # lookups so far that met a differing path

    def _look(self, path: str) -> None:
        if path in self._differing:
            self._met += 1

    def reusable(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        before = self._met
        result = compute()
        if self._met == before:
            self._kept[key] = result
        return result

    def _node(self, path: str) -> Node | None:
        self._look(path)
        node = self._nodes.get(path)
        if node is None:
            self._look(path.rpartition("/")[0] or "/")  # the parent says it is missing
        return super()._node(path)

    def _resolve(self, path: str) -> tuple[str, Node] | None:
        visited: list[str] = []
        resolved = self._fs.resolve(path, visited)
        for step in visited:
            self._look(step)
        return resolved

    def info(self, path: str) -> FileInfo | None:
        self._look(path)
        return super().info(path)

    def stat(self, path: str) -> Node | None:
        # Inlined (_look, OverlayFileView.stat): the catalogers stat ~26k paths of a Debian
        # image with compilers (dpkg's claims); two more calls each cost ~7 ms.
        if path in self._differing:
            self._met += 1
        return self._nodes.get(path) if path != "/" else self._fs.root

    def paths(self, listed: Listed | None = None) -> Iterator[str]:
        self._list(listed)
        return super().paths()

    def entries(self, listed: Listed | None = None) -> Iterable[tuple[str, Node]]:
        self._list(listed)
        return super().entries()

    def _list(self, listed: Listed | None) -> None:
        # A listing meets every differing path its caller does not say it skips.
        self._met += self._differ.any_listed(listed) if listed else bool(self._differ.nodes)


class ReusingView(OverlayFileView):
    """The second image's view: a unit the first image kept is not run again."""

    def __init__(self, fs: Overlay, memo: dict | None, kept: dict[Hashable, object]) -> None:
        super().__init__(fs, memo)
        self._kept = kept

    def reusable(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        if key in self._kept:
            return self._kept[key]  # type: ignore[return-value]
        return compute()


def twin_views(first: Overlay, second: Overlay, changed: Collection[str], memo: dict | None
               ) -> tuple[OverlayFileView, OverlayFileView]:
    """The views to run the catalogers on, first image then second: plain ones, that reuse
    nothing, when the trees may resolve directories differently (see above)."""
    differences = Differences(first, second, changed)
    if not differences.resolve_alike:
        return OverlayFileView(first, memo), OverlayFileView(second, memo)
    kept: dict[Hashable, object] = {}
    return RecordingView(first, memo, differences, kept), ReusingView(second, memo, kept)
