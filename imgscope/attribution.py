"""Who owns each byte: packages from the catalogers matched against the final filesystem.

Ownership is decided once, here, not by each consumer: catalogers run in a fixed order (OS
package databases first, then language ecosystems, then binaries), and the first package to
claim a path owns it, so a file is never counted twice. A package's bytes are those of the
regular files it owns in the final filesystem (hard links once); its shipped bytes add every
hidden version of those paths in lower layers. The layers a package touched come from the
layers that wrote its files.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from imgscope.catalog.base import Cataloger, FileInfo, MemoryFileView
from imgscope.model import EntryType, Package, WastedFile
from imgscope.overlay import Node, Overlay

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PackageUsage:
    """One package's share of the image: its files, their bytes, and the layers that wrote them."""

    package: Package
    final_bytes: int  # bytes of its files in the final filesystem
    shipped_bytes: int  # plus every hidden version of those paths in lower layers
    files: int  # its regular files present in the final filesystem
    missing_files: int  # files the database lists that are not there
    shared_files: int  # files it lists that an earlier package already owns
    introduced_layer: int | None
    changed_layers: tuple[int, ...]
    layer_bytes: tuple[tuple[int, int], ...]  # (layer, bytes of its files shipped there)

    @property
    def key(self) -> str:
        return package_key(self.package)


@dataclass(frozen=True, slots=True)
class UnownedGroup:
    """Regular files no package owns, totalled by the first two levels of their directory."""

    directory: str
    bytes: int
    files: int


@dataclass(frozen=True, slots=True)
class LayerPackages:
    """The packages one layer added, rewrote, removed or upgraded, with the bytes of each."""

    layer: int
    added: tuple[tuple[str, int], ...]  # (package key, bytes it shipped in this layer)
    changed: tuple[tuple[str, int], ...]  # files of an existing package rewritten here
    removed: tuple[tuple[str, int], ...] = ()  # (key, bytes this layer hid) per the databases
    upgraded: tuple[tuple[str, str, int], ...] = ()  # (old key, new key, bytes shipped here)


@dataclass
class Attribution:
    """Who owns each byte of the final filesystem: packages, the unowned rest, changes per layer."""

    packages: list[PackageUsage] = field(default_factory=list)
    owned_bytes: int = 0
    unowned_bytes: int = 0
    unowned_files: int = 0
    unowned: list[UnownedGroup] = field(default_factory=list)
    layers: list[LayerPackages] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    owner_of: dict[str, str] = field(default_factory=dict)  # path -> package key


# Catalogers whose databases are small text kept for every layer, so each layer's package set
# can be re-read: per-layer removals and upgrades come from them.
HISTORY_CATALOGERS = frozenset({"dpkg", "apk", "rpm", "python", "npm", "gem"})


def record_layer_changes(result: Attribution, catalogers: Sequence[Cataloger],
                         history: Sequence[tuple[int, str, bytes | None]],
                         wasted: Sequence[WastedFile]) -> None:
    """Re-read the package databases as each layer left them; a package that disappears is
    removed in that layer, one whose version changes is upgraded. Bytes of a removal are the
    versions of its files that layer hid."""
    if not catalogers or not history:
        return
    by_layer: dict[int, list[tuple[str, bytes | None]]] = defaultdict(list)
    for layer, path, data in history:
        by_layer[layer].append((path, data))
    hidden: dict[int, dict[str, int]] = defaultdict(dict)
    for item in wasted:
        hidden[item.hidden_by_layer][item.path] = \
            hidden[item.hidden_by_layer].get(item.path, 0) + item.size
    shipped_here = {u.key: dict(u.layer_bytes) for u in result.packages}
    files: dict[str, bytes] = {}
    previous: dict[tuple[str, str, str | None], Package] = {}
    # Per cataloger, what its last run looked at and found: a layer that changes none of it
    # (a pip install after the apt layers) has the same packages for it, without a re-read.
    last_runs: dict[int, tuple[_RecordingView, list[Package]]] = {}
    updated = list(result.layers)
    for layer in range(len(result.layers)):
        if layer not in by_layer:
            continue
        changed: set[str] = set()
        listing_changed = False  # a path added or removed, not only rewritten
        for path, data in by_layer[layer]:
            changed.add(path)
            if data is None:
                listing_changed |= files.pop(path, None) is not None
            else:
                listing_changed |= path not in files
                files[path] = data
        view = MemoryFileView(files)
        current: dict[tuple[str, str, str | None], Package] = {}
        for number, cataloger in enumerate(catalogers):
            last = last_runs.get(number)
            if last is not None and last[0].unchanged_by(changed, listing_changed):
                found = last[1]
            else:
                recording = _RecordingView(view)
                try:
                    found = cataloger.catalog(recording).packages
                except Exception:  # reported once by the main catalog pass
                    last_runs.pop(number, None)
                    continue
                last_runs[number] = (recording, found)
            for pkg in found:
                current.setdefault((pkg.ecosystem, pkg.name, pkg.arch), pkg)
        removed = []
        upgraded = []
        for ident, old in previous.items():
            new = current.get(ident)
            if new is None:
                lost = sum(hidden[layer].get(p, 0) for p in old.files)
                removed.append((package_key(old), lost))
            elif new.version != old.version:
                new_key = package_key(new)
                upgraded.append((package_key(old), new_key,
                                 shipped_here.get(new_key, {}).get(layer, 0)))
        entry = updated[layer]
        updated[layer] = LayerPackages(entry.layer, entry.added, entry.changed,
                                       tuple(sorted(removed)), tuple(sorted(upgraded)))
        previous = current
    result.layers = updated


class _RecordingView:
    """A FileView that remembers which paths a cataloger asked about (and whether it listed
    them all): its packages are a function of those answers alone."""

    def __init__(self, files: MemoryFileView) -> None:
        self._files = files
        self.files_only = files.files_only
        self.asked: set[str] = set()
        self.listed = False

    def unchanged_by(self, changed: set[str], listing_changed: bool) -> bool:
        """True when a layer that wrote `changed` gives every answer this view gave."""
        return self.asked.isdisjoint(changed) and not (self.listed and listing_changed)

    def info(self, path: str) -> FileInfo | None:
        self.asked.add(path)
        return self._files.info(path)

    def stat(self, path: str) -> FileInfo | None:
        self.asked.add(path)
        return self._files.stat(path)

    def paths(self, listed=None) -> Iterator[str]:
        self.listed = True
        return self._files.paths()

    def entries(self, listed=None) -> Iterator[tuple[str, FileInfo]]:
        self.listed = True
        items = list(self._files.entries())
        self.asked.update(path for path, _ in items)
        return iter(items)

    def read(self, path: str) -> bytes | None:
        self.asked.add(path)
        return self._files.read(path)

    def open(self, path: str) -> BinaryIO | None:
        self.asked.add(path)
        return self._files.open(path)

    def remember(self, path: str, kind: str, compute: Callable[[], _T]) -> _T:
        self.asked.add(path)
        return self._files.remember(path, kind, compute)

    def reusable(self, key, compute: Callable[[], _T]) -> _T:
        return compute()


def package_key(package: Package) -> str:
    arch = f":{package.arch}" if package.arch else ""
    return f"{package.ecosystem}/{package.name}{arch}@{package.version}"


def _group_dir(path: str) -> str:
    parent = posixpath.dirname(path)
    parts = parent.strip("/").split("/")
    return "/" + "/".join(parts[:2]) if parts != [""] else "/"


def attribute(fs: Overlay, packages: Sequence[Package], wasted: Sequence[WastedFile],
              layer_count: int) -> Attribution:
    result = Attribution()
    index = fs.index()
    file_type = EntryType.FILE
    wasted_by_path = _wasted_by_path(wasted)
    owner: dict[str, str] = {}
    owned_inodes: set[int] = set()
    owned_bytes = 0
    seen_keys: set[str] = set()
    for package in packages:
        key = package_key(package)
        if key in seen_keys:
            result.warnings.append(f"{key} is listed twice; counted once")
            continue
        seen_keys.add(key)
        usage = _usage(package, fs, index, owner, owned_inodes, wasted_by_path)
        owned_bytes += usage.final_bytes
        result.packages.append(usage)

    # Every owned inode was found through the index above, so the owned bytes are known; what
    # the walk below adds up is the rest, each inode once (the first of its hard links).
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    counted = owned_inodes  # from here on: the inodes already counted (owned, or seen below)
    for path, node in index.items():
        inode = node.inode
        if inode is None or node.type is not file_type:
            continue
        inode_id = id(inode)
        if inode_id in counted:
            continue
        counted.add(inode_id)
        group = groups[_group_dir(path)]
        group[0] += inode.size
        group[1] += 1
    return _finished(result, owner, owned_bytes, groups, layer_count)


def attribute_twin(previous: Attribution, old_packages: Sequence[Package], old_fs: Overlay,
                   fs: Overlay, packages: Sequence[Package], wasted: Sequence[WastedFile],
                   layer_count: int, changed: Collection[str]) -> Attribution | None:
    """attribute(fs, packages, ...) from `previous`, the attribution of `old_packages` in
    `old_fs`, whose final tree differs from `fs` only at `changed` (diff.changed_paths: the
    second image of a diff and the first). A package found on both sides, with none of its
    files at a changed path or claimed by a package found on one side only (or changed), and
    all of them where it names them, owns what it owned there; only the others are matched
    against the tree, and only the changed paths and those claims are looked at again for
    the unowned bytes. None (attribute() then) when a package is listed twice, the packages
    kept come in another order (the first to claim a path owns it), or a path looked at
    again is a hard link on either side (a link group counts once, at its first name in the
    order of the whole tree)."""
    before = {u.key: u for u in previous.packages}
    keys = [package_key(p) for p in packages]
    if len(set(keys)) != len(keys) or len(before) != len(old_packages):
        return None
    now = dict(zip(keys, packages, strict=True))
    index, old_index = fs.index(), old_fs.index()
    was_owned = previous.owner_of
    again: set[str] = set(changed)  # the paths whose owner or bytes may differ
    redo = {key for key, package in now.items()
            if key not in before or before[key].package != package
            or before[key].missing_files}
    gone = {key for key in before if key not in now or key in redo}
    again.update(path for path, key in was_owned.items() if key in gone)
    pending = list(redo)
    in_tree, in_old_tree = index.__contains__, old_index.__contains__  # map(): C loops
    while pending:  # until no package left to reuse claims a path looked at again
        for key in pending:
            again.update(_claimed(now[key], fs, index))
            if key in before:
                again.update(_claimed(before[key].package, old_fs, old_index))
        pending = [key for key, package in now.items() if key not in redo and (
            not again.isdisjoint(package.files)
            or not all(map(in_tree, package.files)) or not all(map(in_old_tree, package.files)))]
        redo.update(pending)
    kept = [key for key in keys if key not in redo]
    if kept != [key for key in map(package_key, old_packages) if key in now and key not in redo]:
        return None
    if old_fs.links_any(again) or fs.links_any(again):
        return None
    result = Attribution()
    wasted_by_path = _wasted_by_path(wasted)
    owner: dict[str, str] = {}
    owned_inodes: set[int] = set()
    owned_bytes = 0
    for key, package in now.items():
        if key in redo:
            usage = _usage(package, fs, index, owner, owned_inodes, wasted_by_path)
        else:
            usage = before[key]
            for path in package.files:  # what it owned before, in the order it claimed it
                if was_owned.get(path) == key:
                    owner[path] = key
        owned_bytes += usage.final_bytes
        result.packages.append(usage)
    # The unowned bytes of `previous`, with those of the paths looked at again taken back
    # and counted as `fs` has them; every other path is owned, or not, as it was.
    groups = {g.directory: [g.bytes, g.files] for g in previous.unowned}
    file_type = EntryType.FILE
    for tree, owners, sign in ((old_fs, was_owned, -1), (fs, owner, 1)):
        for path in again:
            node = tree.get(path)
            if node is None or node.type is not file_type or node.inode is None \
                    or path in owners or (sign > 0 and id(node.inode) in owned_inodes):
                continue
            group = groups.setdefault(_group_dir(path), [0, 0])
            group[0] += sign * node.inode.size
            group[1] += sign
    groups = {d: g for d, g in groups.items() if g[1]}
    return _finished(result, owner, owned_bytes, groups, layer_count)


def _claimed(package: Package, fs: Overlay, index: dict[str, Node]) -> Iterator[str]:
    """The paths a package claims, and where a symlinked parent puts the ones the tree does
    not hold as named (what _usage matches)."""
    for path in package.files:
        yield path
        if path not in index:
            yield _resolved(path, fs)[0]


def _resolved(path: str, fs: Overlay) -> tuple[str, Node | None]:
    """A claimed path the tree does not hold as named, where a symlinked parent puts it (as
    containerd extracts), and the node there; the path itself and None if nowhere."""
    resolved = fs.resolve(posixpath.dirname(path))
    if resolved is None:
        return path, None
    real = posixpath.join(resolved[0], posixpath.basename(path))
    return real, fs.get(real)


def _wasted_by_path(wasted: Sequence[WastedFile]) -> dict[str, list[WastedFile]]:
    by_path: dict[str, list[WastedFile]] = defaultdict(list)
    for item in wasted:
        by_path[item.path].append(item)
    return by_path


def _usage(package: Package, fs: Overlay, index: dict[str, Node], owner: dict[str, str],
           owned_inodes: set[int], wasted_by_path: dict[str, list[WastedFile]]
           ) -> PackageUsage:
    """One package matched against the final tree: the paths it is the first to claim go
    into `owner`, the inodes it counts into `owned_inodes`."""
    key = package_key(package)
    file_type = EntryType.FILE
    final = files = missing = shared = 0
    per_layer: dict[int, int] = defaultdict(int)
    for path in package.files:
        node = index.get(path) if path != "/" else fs.root
        if node is None:
            path, node = _resolved(path, fs)
        if node is None:
            missing += 1
            for old in wasted_by_path.get(path, ()):
                per_layer[old.layer] += old.size
            continue
        inode = node.inode
        if node.type is not file_type or inode is None:
            continue
        if path in owner:
            shared += 1
            continue
        owner[path] = key
        for old in wasted_by_path.get(path, ()):
            per_layer[old.layer] += old.size
        inode_id = id(inode)
        if inode_id in owned_inodes:
            continue  # a hard link to a file already counted
        owned_inodes.add(inode_id)
        files += 1
        final += inode.size
        per_layer[inode.layer] += inode.size
    layers_touched = sorted(per_layer)
    return PackageUsage(
        package=package,
        final_bytes=final,
        shipped_bytes=sum(per_layer.values()),
        files=files,
        missing_files=missing,
        shared_files=shared,
        introduced_layer=layers_touched[0] if layers_touched else None,
        changed_layers=tuple(layers_touched[1:]),
        layer_bytes=tuple(sorted(per_layer.items())),
    )


def _finished(result: Attribution, owner: dict[str, str], owned_bytes: int,
              groups: dict[str, list[int]], layer_count: int) -> Attribution:
    """The totals, the unowned groups and the per-layer package lists of an attribution
    whose packages are matched (in `result`, in catalog order) and owners known."""
    added: dict[int, list[tuple[str, int]]] = defaultdict(list)
    changed: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for usage in result.packages:
        if usage.introduced_layer is not None:
            per_layer = dict(usage.layer_bytes)
            added[usage.introduced_layer].append((usage.key, per_layer[usage.introduced_layer]))
            for layer in usage.changed_layers:
                changed[layer].append((usage.key, per_layer[layer]))
    result.owned_bytes = owned_bytes
    result.unowned_bytes = sum(b for b, _ in groups.values())
    result.unowned_files = sum(n for _, n in groups.values())
    result.unowned = sorted(
        (UnownedGroup(d, b, n) for d, (b, n) in groups.items()),
        key=lambda g: (-g.bytes, g.directory),
    )
    result.packages.sort(key=lambda u: (-u.final_bytes, u.key))
    result.layers = [
        LayerPackages(i, tuple(sorted(added.get(i, []))), tuple(sorted(changed.get(i, []))))
        for i in range(layer_count)
    ]
    result.owner_of = owner
    return result
