"""`imgscope diff OLD NEW`: what changed between two images, and what it cost.

Two analyses in, one comparison out (`ImageDiff`); nothing here prints.

Reading (`diff`). Both images are resolved first. The layers they share at the same positions
(same diff_id: the common base) leave both overlays in the same state, so they are walked once,
on the side that is cheaper to walk (an uncompressed, seekable copy skips file contents), and
the other side starts from a snapshot of that overlay after them (Overlay.snapshot: copy on
write, so the two trees share every node neither side's own layers touch). Its shared layers
still come through a container wrapper's `preread` (the hook stream containers use) with the
first side's recorded entries, drained, not applied, so that each position gets its
measurements (and a blob at two positions is read once). The other side's copies are not read:
the walked copy was hashed against the same diff_id, and the analysis of both sides uses its
bytes; a copy is known by its diff_id (named by its own verified config), as a registry does
not pull a layer it holds. Only its stored size is checked: a plain copy of another size cannot
be that tar stream, and is hashed (and refused). With `verify_copies` (--verify-copies) every
copy is verified too, by hash only, in a forked child (not a thread: see streams.RegionHasher),
and checked last, so that hashing overlaps everything else; a copy that does not match its
diff_id fails the diff as it fails `inspect`. A copy the size of the walked one is compared
with it byte for byte; a compressed blob both manifests name is hashed as stored and must equal
the blob the first side inflated; one archive member used by both sides is read once. With
--no-verify the copies are not read at all. Both archives stay open to the end: the snapshot's
files keep the first side's file bytes by reference. The second side's own plain layers are
hashed from the start too, by the same hashing children, and so are its own compressed ones
when they are small beside the shared walk: inflated by that child into an unlinked spool
file in imgscope's temporary directory, and walked from that plain copy, by seeking. Then
the later stages (facts, catalogers, attribution, findings) run in this process, one image
after the other: in two processes side by side they took as long here (both bound by memory,
not by a core). The second image's index and facts are the first's with the changed paths
looked at again (Overlay.index_from, FactsTally.derive), and what its catalogers read out of
a file the first image has too is not read again (FileView.remember). bench/bench_diff.py
measures what a diff costs against one inspect.

Content equality. Size, type, mode, owner and link target come from tar headers, so a change
in any of them is found without reading file contents. A regular file with the same size and
metadata on both sides is the same file when both versions come from the same shared layer.
When they come from different layers ("rewritten by another layer, same size") only the bytes
can tell, read a second time: both versions in plain layers are read alone at the offsets the
walk noted and compared byte for byte (stopping at the first difference: no digest); otherwise
each version is hashed, walking its layer again for a compressed one (`Capture.digest_paths`).
A shared layer's files are read from the copy that was walked (verified); in a compressed
one, the files the later layers may rewrite with the same size are foreseen from those
layers' headers and hashed as the first walk passes them, so the shared layer is not
inflated again (_Pair._predict_candidates). What was read is reported.
With `hash_content=False` such files are reported with content "unknown".

Comparing (`compare`) is a pure function of the two analyses. Only the paths that can differ
are looked at (changed_paths): those one side lacks, and those a layer after the shared prefix
wrote on either side; the rest were last written by the shared layers, the same on both sides.
mtime is not compared (every rebuild changes it; container-diff ignores it too); history items
are compared by instruction, not by timestamp.
"""

from __future__ import annotations

import os
import pickle
import posixpath
import select
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from collections.abc import Container as Membership
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from imgscope.api import (
    Analysis,
    LayerHook,
    PendingChecks,
    Progress,
    ReplayStart,
    _analyze_resolved,
    _check_layer,
    later_stage_patterns,
    layer_readers,
    measured,
    run_catalogers,
    start_hashing,
)
from imgscope.archive.container import Container, open_container
from imgscope.archive.image import ResolvedImage, resolve_image
from imgscope.archive.layer import Blob, Capture, LayerRead, LayerReader, Spool
from imgscope.archive.streams import (
    FileRegion,
    ForkedJobs,
    HashingDecoder,
    RegionHasher,
    file_chunks,
    hash_mapped_region,
    hash_region,
    sniff_compression,
    stop_child,
)
from imgscope.attribution import Attribution, attribute, attribute_twin
from imgscope.catalog.base import Cataloger, compile_patterns
from imgscope.catalog.twin import twin_views
from imgscope.catalog.view import OverlayFileView
from imgscope.errors import CorruptInput, ImgscopeError, LimitExceeded
from imgscope.fsfacts import FactsTally
from imgscope.model import (
    EntryType,
    Finding,
    ImageConfig,
    LayerEntry,
    LayerInfo,
    Package,
    PathFinding,
    Warning_,
)
from imgscope.overlay import Inode, Node, Overlay, path_order_key

SECTIONS = ("layers", "config", "files", "packages", "findings")
# The largest inflated copy of a second side's own compressed layer (_Pair._copy_spool); a
# layer that inflates to more is inflated again when walked.
COPY_LIMIT = 512 << 20
OLD, NEW = "old", "new"
PostAnalysis = Callable[[Analysis, OverlayFileView], None]


# -- the model --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sizes:
    """One image's headline numbers (see Summary in model.py)."""

    final_bytes: int
    final_files: int
    shipped_bytes: int
    layer_bytes: int
    compressed_bytes: int
    wasted_bytes: int
    efficiency: float
    dive_efficiency: float
    owned_bytes: int | None  # None when packages were not cataloged
    unowned_bytes: int | None


@dataclass(frozen=True, slots=True)
class Side:
    """Which image one side is."""

    source_format: str
    tags: tuple[str, ...]
    manifest_digest: str | None
    config_digest: str | None
    platform: str | None
    layers: int
    sizes: Sizes | None  # None when the layers were not read (--only config)


@dataclass(frozen=True, slots=True)
class LayerChange:
    """The layers at one position of OLD and NEW, and whether they are the same layer."""

    position: int
    status: str  # "shared" (same diff_id, same position), "changed", "added", "removed"
    base: bool  # inside the common prefix of shared layers
    old: LayerInfo | None
    new: LayerInfo | None


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One image-config value that differs between OLD and NEW (a whole field or one key)."""

    field: str  # entrypoint, cmd, env, user, working_dir, exposed_ports, labels, os, ...
    key: str | None  # the variable, label, port or history position; None for whole fields
    old: str | tuple[str, ...] | None
    new: str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class FileState:
    """A path as one image has it: tar metadata, hard links, owning package and content digest."""

    type: str
    size: int  # regular files only, else 0
    mode: int
    uid: int
    gid: int
    link_target: str | None
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, str], ...]
    layer: int  # the layer that last wrote this path
    links: int  # names sharing this file's inode in this image
    hardlink_of: str | None  # the first name of its hard-link group, when that is another path
    digest: str | None  # sha256 of the content, when it had to be hashed
    owner: str | None  # package key (attribution.package_key) owning the path


@dataclass(frozen=True, slots=True)
class FileChange:
    """A path added, removed or changed between OLD and NEW: what differs, and the bytes."""

    path: str
    status: str  # "added", "removed", "changed"
    # For "changed": what differs, from "type", "content", "size", "rewritten" (same size and
    # metadata, written by another layer, content not hashed), "mode", "uid", "gid",
    # "link_target", "device", "xattrs", "links", "hardlink".
    changes: tuple[str, ...]
    content: str | None  # regular file on both sides: "differs", "same" or "unknown"
    bytes_delta: int  # final-filesystem bytes; a hard-linked file counts once, on its first name
    old: FileState | None
    new: FileState | None
    old_still_shipped: bool  # the old bytes are hidden in NEW's layers, not gone (wasted)


@dataclass(frozen=True, slots=True)
class DirSummary:
    """The file changes under one directory (group_by_directory): counts by status, net bytes."""

    path: str
    added: int
    removed: int
    changed: int
    bytes_delta: int


@dataclass(frozen=True, slots=True)
class PackageChange:
    """A package that differs between OLD and NEW: added, removed, another version, other files."""

    status: str  # "added", "removed", "version" (version changed), "files" (same version)
    ecosystem: str
    name: str
    arch: str | None
    old_version: str | None
    new_version: str | None
    old_bytes: int
    new_bytes: int
    old_files: int
    new_files: int
    old_key: str | None
    new_key: str | None

    @property
    def bytes_delta(self) -> int:
        return self.new_bytes - self.old_bytes


@dataclass(frozen=True, slots=True)
class FindingChange:
    """A finding only one image has, or one with other bytes in NEW."""

    status: str  # "added", "removed", "changed" (same kind and title, other bytes)
    kind: str
    title: str  # a Finding's title; for a reader finding (path-escape...), "PATH: detail"
    old_bytes: int | None
    new_bytes: int | None


@dataclass(frozen=True, slots=True)
class FindingsDiff:
    """Wasted bytes and efficiency of OLD and NEW side by side, and the findings that changed."""

    wasted_old: int
    wasted_new: int
    efficiency_old: float
    efficiency_new: float
    dive_efficiency_old: float
    dive_efficiency_new: float
    changes: tuple[FindingChange, ...]

    @property
    def differs(self) -> bool:
        return bool(self.changes) or self.wasted_old != self.wasted_new


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The layer-bytes delta split so that the parts add up exactly:
    total = packages + unowned + wasted + overhead (files instead of packages + unowned when
    packages were not cataloged)."""

    total: int  # delta of uncompressed layer bytes: what the image costs to store and ship
    packages: tuple[tuple[str, int], ...]  # (package key, bytes delta), biggest change first
    packages_total: int | None
    unowned: int | None  # files no package owns
    files: int  # final-filesystem bytes
    wasted: int  # shipped in layers but hidden in the final filesystem
    overhead: int  # tar headers, padding, end blocks: layer bytes that are not file content
    compressed: int  # delta of the layers as stored
    pull_bytes: int  # compressed bytes of NEW's layers that OLD does not have (what a pull costs)


@dataclass(frozen=True, slots=True)
class ContentCheck:
    """How content equality was decided for files that metadata could not decide."""

    candidates: int  # regular files with equal size/metadata, written by different layers
    hashed: int  # of those, decided by sha256 of both versions
    unknown: int  # not read (hashing off, or a version that could not be read back)
    identical: int  # hashed or compared equal: no change, but NEW ships the bytes again
    identical_bytes: int
    # (side, layer, files hashed, files compared, layer bytes, bytes read: the files alone,
    # or the whole layer when it had to be walked again)
    layers_read: tuple[tuple[str, int, int, int, int, int], ...]
    compared: int = 0  # decided byte for byte: both versions in plain layers, read alone


@dataclass(frozen=True, slots=True)
class ReadCost:
    """What reading the pair took: the shared prefix is walked once."""

    shared_prefix: int  # layers at the start with the same diff_ids
    walked: str | None  # which side's copy of the shared layers was walked ("old"/"new")
    replayed_layers: int  # shared layers replayed into the other side, not walked again
    replayed_bytes: int  # their uncompressed bytes
    verify_bytes: int = 0  # stored bytes of those copies read to verify them (compared with
    # the walked copy or hashed; 0 for a second look at one archive member)
    copies: str = "read"  # how the replayed copies were checked: "read" (hashed or compared),
    # "by-diff-id" (not read: same diff_id and stored size), "unverified" (--no-verify)

    @property
    def verified_only(self) -> bool:
        """The replayed copies were read and checked (verified by hash only, not walked)."""
        return self.copies == "read"


@dataclass(frozen=True)
class ImageDiff:
    """Two images compared (what compare returns): a field per section, None if not compared."""

    old: Side
    new: Side
    sections: tuple[str, ...]
    layers: tuple[LayerChange, ...] | None = None
    config: tuple[ConfigChange, ...] | None = None
    files: tuple[FileChange, ...] | None = None
    packages: tuple[PackageChange, ...] | None = None
    unchanged_packages: int = 0
    findings: FindingsDiff | None = None
    breakdown: Breakdown | None = None
    content: ContentCheck | None = None
    read: ReadCost | None = None
    warnings: tuple[tuple[str, Warning_], ...] = ()

    @property
    def differs(self) -> bool:
        """Whether any section that was compared has a difference (--exit-code)."""
        return bool(
            any(c.status != "shared" for c in self.layers or ())
            or self.config
            or self.files
            or self.packages
            or (self.findings is not None and self.findings.differs)
        )


# -- comparing ----------------------------------------------------------------------------------


def compare_layers(old: Sequence[LayerInfo], new: Sequence[LayerInfo]) -> tuple[LayerChange, ...]:
    out: list[LayerChange] = []
    base = True
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a is not None and b is not None:
            same = _layer_id(a) is not None and _layer_id(a) == _layer_id(b)
            status = "shared" if same else "changed"
        else:
            status = "added" if a is None else "removed"
        base = base and status == "shared"
        out.append(LayerChange(i, status, base, a, b))
    return tuple(out)


def _layer_id(layer: LayerInfo) -> str | None:
    return layer.diff_id or layer.measured_diff_id


def shared_prefix(old_ids: Sequence[str | None], new_ids: Sequence[str | None]) -> int:
    count = 0
    for a, b in zip(old_ids, new_ids, strict=False):
        if a is None or a != b:
            break
        count += 1
    return count


def compare_config(old: ImageConfig, new: ImageConfig) -> tuple[ConfigChange, ...]:
    out: list[ConfigChange] = []
    for name in ("os", "architecture", "variant", "created", "user", "working_dir"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(ConfigChange(name, None, a, b))
    for name in ("entrypoint", "cmd"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(ConfigChange(name, None, a, b))
    out.extend(_keyed("env", _env(old.env), _env(new.env)))
    out.extend(_keyed("labels", dict(old.labels), dict(new.labels)))
    out.extend(_keyed("exposed_ports", dict.fromkeys(old.exposed_ports, "exposed"),
                      dict.fromkeys(new.exposed_ports, "exposed")))
    # History by instruction, not timestamp: a rebuild changes every `created`.
    old_h = [_history_text(h) for h in old.history]
    new_h = [_history_text(h) for h in new.history]
    for i in range(max(len(old_h), len(new_h))):
        a = old_h[i] if i < len(old_h) else None
        b = new_h[i] if i < len(new_h) else None
        if a != b:
            out.append(ConfigChange("history", str(i), a, b))
    return tuple(out)


def _env(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value  # the last definition wins, as in a container's environment
    return out


def _keyed(name: str, old: dict[str, str], new: dict[str, str]) -> list[ConfigChange]:
    return [ConfigChange(name, key, old.get(key), new.get(key))
            for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]


def _history_text(item) -> str:
    text = item.created_by or ""
    if item.empty_layer:
        text += "  [no layer]"
    if item.comment:
        text += f"  # {item.comment}"
    return text


def compare_packages(old: Attribution, new: Attribution) -> tuple[tuple[PackageChange, ...], int]:
    """Packages matched by key (ecosystem/name:arch@version); what is left is paired by
    (ecosystem, name, arch), in version order, as a version change. Returns the changes and
    the number of unchanged packages."""
    old_by_key = {u.key: u for u in old.packages}
    new_by_key = {u.key: u for u in new.packages}
    out: list[PackageChange] = []
    unchanged = 0
    for key in sorted(old_by_key.keys() & new_by_key.keys()):
        a, b = old_by_key[key], new_by_key[key]
        if a.final_bytes == b.final_bytes and a.files == b.files:
            unchanged += 1
            continue
        out.append(_package_change("files", a, b))
    left_old: dict[tuple, list] = defaultdict(list)
    left_new: dict[tuple, list] = defaultdict(list)
    for key in sorted(old_by_key.keys() - new_by_key.keys()):
        u = old_by_key[key]
        left_old[_identity(u.package)].append(u)
    for key in sorted(new_by_key.keys() - old_by_key.keys()):
        u = new_by_key[key]
        left_new[_identity(u.package)].append(u)
    for ident in sorted(left_old.keys() | left_new.keys(), key=lambda t: tuple(map(str, t))):
        olds, news = left_old.get(ident, []), left_new.get(ident, [])
        for a, b in zip(olds, news, strict=False):
            out.append(_package_change("version", a, b))
        out.extend(_package_change("removed", a, None) for a in olds[len(news):])
        out.extend(_package_change("added", None, b) for b in news[len(olds):])
    order = {"added": 0, "removed": 1, "version": 2, "files": 3}
    out.sort(key=lambda c: (order[c.status], c.ecosystem, c.name, str(c.arch),
                            c.old_key or "", c.new_key or ""))
    return tuple(out), unchanged


def _identity(package) -> tuple[str, str, str | None]:
    return package.ecosystem, package.name, package.arch


def _package_change(status: str, a, b) -> PackageChange:
    pkg = (b or a).package
    return PackageChange(
        status=status, ecosystem=pkg.ecosystem, name=pkg.name, arch=pkg.arch,
        old_version=a.package.version if a else None,
        new_version=b.package.version if b else None,
        old_bytes=a.final_bytes if a else 0, new_bytes=b.final_bytes if b else 0,
        old_files=a.files if a else 0, new_files=b.files if b else 0,
        old_key=a.key if a else None, new_key=b.key if b else None,
    )


def compare_findings(old: Analysis, new: Analysis) -> FindingsDiff:
    changes: list[FindingChange] = []
    changes.extend(_compare_finding_maps(_extras_map(old.extras.findings),
                                         _extras_map(new.extras.findings)))
    changes.extend(_compare_finding_maps(_path_finding_map(old.findings),
                                         _path_finding_map(new.findings)))
    so, sn = old.summary, new.summary
    return FindingsDiff(so.wasted_bytes, sn.wasted_bytes, so.efficiency, sn.efficiency,
                        so.dive_efficiency, sn.dive_efficiency, tuple(changes))


def _extras_map(findings: Iterable[Finding]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for f in findings:
        out[(f.kind, f.title)] = out.get((f.kind, f.title), 0) + f.bytes
    return out


def _path_finding_map(findings: Iterable[PathFinding]) -> dict[tuple[str, str], int]:
    # Reader findings carry no bytes; the layer index is left out (it moves between images).
    return {(f.kind, f"{f.path}: {f.detail}" if f.path else f.detail): 0 for f in findings}


def _compare_finding_maps(old: dict[tuple[str, str], int],
                          new: dict[tuple[str, str], int]) -> list[FindingChange]:
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        status = "added" if a is None else "removed" if b is None else "changed"
        out.append(FindingChange(status, key[0], key[1], a, b))
    return out


# -- files --------------------------------------------------------------------------------------


class _Tree:
    """One side's final filesystem as the file comparison needs it. The inode names and the
    owners of symlinks and directories are worked out only when a changed path needs them:
    most paths are decided from their nodes alone. `paths`: the changed paths, when known
    (the only ones asked about: no index of the whole tree is needed for them)."""

    def __init__(self, analysis: Analysis, paths: set[str] | None = None) -> None:
        self.analysis = analysis
        self.get = _lookup(analysis.fs, paths)
        self.paths = paths
        self.wasted_paths = frozenset(w.path for w in analysis.fs.wasted)
        attribution = analysis.attribution
        self.owner_of = attribution.owner_of if attribution is not None else {}
        self._names: dict[int, list[str]] | None = None
        self._claims: dict[str, str] | None = None
        self._dir_owners: dict[int, object] = {}

    def names(self, path: str, node: Node) -> list[str]:
        """The names of `node`'s inode, in path order ([path] for a file of one name)."""
        inode = node.inode
        if inode is None or inode.links <= 1:
            return [path]
        if self._names is None:
            self._names = _inode_names(self.analysis.fs.index())
        return self._names.get(id(inode)) or [path]

    def owner(self, path: str, node: Node) -> str | None:
        """Who owns a path: attribution's owner of a regular file, the one package that
        claims a symlink or device, and for a directory the one owner of everything below it
        (catalogers do not claim directories: many packages list /usr/lib)."""
        if self.analysis.attribution is None:
            return None
        if node.type is EntryType.DIR:
            who = self._dir_owner(path, node)
            return who if isinstance(who, str) else None
        if node.type is EntryType.FILE:
            return self.owner_of.get(path)
        return self._claimed().get(path)

    def _claimed(self) -> dict[str, str]:
        if self._claims is None:
            attribution = self.analysis.attribution
            assert attribution is not None
            claims: dict[str, set[str]] = defaultdict(set)
            asked, get = self.paths, self.get
            for usage in attribution.packages:
                for path in usage.package.files:  # already resolved by the catalogers
                    if asked is not None and path not in asked:
                        continue
                    node = get(path)
                    if node is not None and node.type is not EntryType.FILE \
                            and node.type is not EntryType.DIR:
                        claims[path].add(usage.key)
            self._claims = {path: next(iter(keys)) for path, keys in claims.items()
                            if len(keys) == 1}
        return self._claims

    def _dir_owner(self, path: str, top: Node) -> object:
        """The one owner below a directory, None (mixed or unowned) or _EMPTY (nothing
        below says): bottom up without recursion, each directory once."""
        done = self._dir_owners
        stack: list[tuple[str, Node, bool]] = [(path, top, False)]
        while stack:
            where, node, expanded = stack.pop()
            if id(node) in done:
                continue
            assert node.children is not None
            if not expanded:
                stack.append((where, node, True))
                stack.extend((f"{where}/{name}", child, False)
                             for name, child in node.children.items()
                             if child.type is EntryType.DIR and id(child) not in done)
                continue
            who: object = _EMPTY
            for name, child in node.children.items():
                if child.type is EntryType.DIR:
                    w = done[id(child)]
                else:
                    w = self.owner(f"{where}/{name}", child)
                if w is _EMPTY:
                    continue  # an empty directory says nothing
                who = w if who is _EMPTY or who == w else None
            done[id(node)] = who
        return done[id(top)]


def _inode_names(index: dict[str, Node]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    for path, node in index.items():
        if node.inode is not None:
            names[id(node.inode)].append(path)
    return names


_EMPTY = object()


def changed_paths(old: Analysis, new: Analysis, shared: int) -> set[str]:
    """Every path that can differ between the two final filesystems (a superset): a path
    only one side has, or one that a layer after the shared prefix wrote on either side,
    with the other names of its hard links. The rest were last written by the shared
    layers (identical on both sides) and are skipped without a look: both trees are walked
    side by side, and a node both share (one object: Overlay.snapshot) is not entered."""
    if not shared:
        return set(old.fs.index()) | set(new.fs.index())
    paths: set[str] = set()
    linked: list[tuple[Overlay, Node]] = []  # hard-linked nodes at those paths
    no_children: dict[str, Node] = {}
    stack: list[tuple[str, Node | None, Node | None]] = [("", old.fs.root, new.fs.root)]
    while stack:
        where, a, b = stack.pop()
        ours = a.children if a is not None and a.children is not None else no_children
        theirs = b.children if b is not None and b.children is not None else no_children
        for name in ours.keys() | theirs.keys():
            x, y = ours.get(name), theirs.get(name)
            if x is y:
                continue  # one node in both trees: nothing below it differs either
            path = f"{where}/{name}"
            if x is None or y is None or x.layer >= shared or y.layer >= shared:
                paths.add(path)
                for fs, node in ((old.fs, x), (new.fs, y)):
                    if node is not None and node.inode is not None and node.inode.links > 1:
                        linked.append((fs, node))
            dir_x = x if x is not None and x.type is EntryType.DIR else None
            dir_y = y if y is not None and y.type is EntryType.DIR else None
            if dir_x is not None or dir_y is not None:
                stack.append((path, dir_x, dir_y))
    # A name added or removed changes the link count of the others of its inode.
    if linked:
        names = {id(fs): _inode_names(fs.index()) for fs in (old.fs, new.fs)}
        for fs, node in linked:
            paths.update(names[id(fs)].get(id(node.inode), ()))
    return paths


def _lookup(fs: Overlay, paths: Collection[str] | None) -> Callable[[str], Node | None]:
    """Node by path: from the tree for a few paths (nothing to build), from the index for
    many (built once: ~1 us a path, against ~1.5 us a walk from the root)."""
    return fs.get if paths is not None and len(paths) < 2000 else fs.index().get


def _same_origin(a: Inode, b: Inode, shared: int) -> bool:
    """Both versions are the bytes one shared layer shipped (identical on both sides)."""
    return a.layer == b.layer and a.layer < shared


def content_candidates(old: Analysis, new: Analysis, shared: int,
                       paths: Collection[str] | None = None) -> list[tuple[str, Node, Node]]:
    """Regular files on both sides with the same size, written by different layers: the
    files whose content only their bytes can compare. `paths`: changed_paths(), if known."""
    if paths is None:
        paths = changed_paths(old, new, shared)
    old_get, new_get = _lookup(old.fs, paths), _lookup(new.fs, paths)
    out = []
    for path in paths:
        a, b = old_get(path), new_get(path)
        if (a is not None and b is not None and a.type is EntryType.FILE
                and b.type is EntryType.FILE and a.inode is not None and b.inode is not None
                and a.size == b.size and a.size and not _same_origin(a.inode, b.inode, shared)):
            out.append((path, a, b))
    out.sort(key=lambda c: path_order_key(c[0]))
    return out


def content_check(candidates: Sequence[tuple[str, Node, Node]], digests: dict[int, str],
                  layers_read: tuple[tuple[str, int, int, int, int, int], ...],
                  verdicts: dict[tuple[int, int], bool] | None = None) -> ContentCheck:
    hashed = compared = identical = identical_bytes = 0
    verdicts = verdicts or {}
    for _, a, b in candidates:
        same = _content_verdict(a, b, digests, verdicts)
        if same is None:
            continue
        if (id(a.inode), id(b.inode)) in verdicts:
            compared += 1
        else:
            hashed += 1
        if same:
            identical += 1
            identical_bytes += b.size
    return ContentCheck(len(candidates), hashed, len(candidates) - hashed - compared,
                        identical, identical_bytes, layers_read, compared)


def _content_verdict(a: Node, b: Node, digests: dict[int, str],
                     verdicts: dict[tuple[int, int], bool]) -> bool | None:
    """Whether two versions' bytes are equal, when they were compared or hashed."""
    same = verdicts.get((id(a.inode), id(b.inode)))
    if same is not None:
        return same
    da, db = digests.get(id(a.inode)), digests.get(id(b.inode))
    return None if da is None or db is None else da == db


def compare_files(old: Analysis, new: Analysis, shared: int,
                  digests: dict[int, str] | None = None,
                  paths: Collection[str] | None = None,
                  verdicts: dict[tuple[int, int], bool] | None = None
                  ) -> tuple[FileChange, ...]:
    """Every path added, removed or changed, in `ls` order. `digests` maps id(inode) of
    either side to the sha256 of its content, for the content candidates that were hashed,
    `verdicts` (id(old inode), id(new inode)) to equal bytes, for those compared; `paths` is
    changed_paths(), if known."""
    digests = digests or {}
    verdicts = verdicts or {}
    if paths is None:
        paths = changed_paths(old, new, shared)
    wanted = paths if isinstance(paths, set) else set(paths)
    t_old, t_new = _Tree(old, wanted), _Tree(new, wanted)
    out: list[FileChange] = []
    for path in wanted:
        a, b = t_old.get(path), t_new.get(path)
        if b is None:
            if a is not None:
                out.append(FileChange(path, "removed", (), None, -_carried(path, a, t_old),
                                      _state(path, a, t_old, digests), None,
                                      path in t_new.wasted_paths))
            continue
        if a is None:
            out.append(FileChange(path, "added", (), None, _carried(path, b, t_new), None,
                                  _state(path, b, t_new, digests), False))
            continue
        if _unchanged(path, a, b, t_old, t_new, shared):
            continue  # most paths: decided without building anything
        sa, sb = _state(path, a, t_old, digests), _state(path, b, t_new, digests)
        changes, content = _differences(a, b, sa, sb, shared,
                                        _content_verdict(a, b, digests, verdicts))
        if changes:
            out.append(FileChange(path, "changed", tuple(changes), content,
                                  _carried(path, b, t_new) - _carried(path, a, t_old), sa, sb,
                                  path in t_new.wasted_paths))
    out.sort(key=lambda c: path_order_key(c.path))
    return tuple(out)


def _unchanged(path: str, a: Node, b: Node, t_old: _Tree, t_new: _Tree, shared: int) -> bool:
    if (a.type is not b.type or a.mode != b.mode or a.uid != b.uid or a.gid != b.gid
            or a.link_target != b.link_target or a.devmajor != b.devmajor
            or a.devminor != b.devminor or a.xattrs != b.xattrs):
        return False
    if a.inode is None or b.inode is None:
        return a.inode is b.inode
    na, nb = t_old.names(path, a), t_new.names(path, b)
    if len(na) != len(nb) or na[0] != nb[0]:
        return False
    return a.type is not EntryType.FILE or (
        a.inode.size == b.inode.size
        and (not a.inode.size or _same_origin(a.inode, b.inode, shared)))


def _differences(a: Node, b: Node, sa: FileState, sb: FileState, shared: int,
                 same: bool | None) -> tuple[list[str], str | None]:
    if sa.type != sb.type:
        return ["type"], None
    changes: list[str] = []
    content: str | None = None
    if a.type is EntryType.FILE:
        assert a.inode is not None and b.inode is not None
        if sa.size != sb.size:
            content = "differs"
            changes += ["content", "size"]
        elif not sa.size or _same_origin(a.inode, b.inode, shared):
            content = "same"
        elif same is not None:  # hashed or compared
            content = "same" if same else "differs"
            if not same:
                changes.append("content")
        else:
            content = "unknown"
            changes.append("rewritten")
    for name in ("mode", "uid", "gid", "link_target"):
        if getattr(sa, name) != getattr(sb, name):
            changes.append(name)
    if (sa.devmajor, sa.devminor) != (sb.devmajor, sb.devminor):
        changes.append("device")
    if sa.xattrs != sb.xattrs:
        changes.append("xattrs")
    if sa.links != sb.links:
        changes.append("links")
    if sa.hardlink_of != sb.hardlink_of:
        changes.append("hardlink")
    return changes, content


def _state(path: str, node: Node, tree: _Tree, digests: dict[int, str]) -> FileState:
    names = tree.names(path, node) if node.inode is not None else ()
    first = names[0] if names else path
    is_file = node.type is EntryType.FILE
    return FileState(
        type=node.type.value,
        size=node.size if is_file else 0,
        mode=node.mode, uid=node.uid, gid=node.gid,
        link_target=node.link_target,
        devmajor=node.devmajor, devminor=node.devminor,
        xattrs=tuple(sorted(node.xattrs)),
        layer=node.layer,
        links=max(1, len(names)),
        hardlink_of=first if first != path else None,
        digest=digests.get(id(node.inode)) if is_file and node.inode is not None else None,
        owner=tree.owner(path, node),
    )


def _carried(path: str, node: Node | None, tree: _Tree) -> int:
    """A file's bytes, on the first of its names only: sums match final_bytes."""
    if node is None or node.type is not EntryType.FILE or node.inode is None:
        return 0
    names = tree.names(path, node)
    return node.inode.size if not names or names[0] == path else 0


def group_by_directory(changes: Sequence[FileChange], limit: int = 30) -> list[DirSummary]:
    """File changes rolled up into at most about `limit` directories: the deepest level at
    which they fit (the top level if nothing else does), so 50,000 changes stay readable."""
    if not changes:
        return []
    parents = []
    for c in changes:
        state = c.new or c.old
        # An added or removed directory counts in its own group: a new tree is one row.
        tree = c.status != "changed" and state is not None and state.type == "dir"
        where = c.path if tree else posixpath.dirname(c.path)
        parts = where.strip("/").split("/")
        parents.append([] if parts == [""] else parts)
    depth = max(len(p) for p in parents)
    while depth > 1 and len({tuple(p[:depth]) for p in parents}) > limit:
        depth -= 1
    groups: dict[str, list[int]] = {}
    for change, parts in zip(changes, parents, strict=True):
        key = "/" + "/".join(parts[:depth])
        g = groups.setdefault(key, [0, 0, 0, 0])
        g[("added", "removed", "changed").index(change.status)] += 1
        g[3] += change.bytes_delta
    return [DirSummary(path, *g) for path, g in sorted(groups.items(),
                                                        key=lambda kv: path_order_key(kv[0]))]


# -- the whole comparison -----------------------------------------------------------------------


def side_of(analysis: Analysis) -> Side:
    s = analysis.summary
    attr = analysis.attribution
    return Side(
        source_format=analysis.ref.source_format, tags=analysis.ref.tags,
        manifest_digest=analysis.ref.manifest_digest, config_digest=analysis.ref.config_digest,
        platform=analysis.ref.platform, layers=len(analysis.layers),
        sizes=Sizes(s.final_bytes, s.final_files, s.shipped_bytes, s.layer_bytes,
                    s.compressed_bytes, s.wasted_bytes, s.efficiency, s.dive_efficiency,
                    attr.owned_bytes if attr else None, attr.unowned_bytes if attr else None),
    )


def breakdown(old: Analysis, new: Analysis,
              packages: Sequence[PackageChange] | None) -> Breakdown:
    so, sn = old.summary, new.summary
    cataloged = old.attribution is not None and new.attribution is not None
    per_package = tuple(sorted(((c.new_key or c.old_key or "", c.bytes_delta)
                                for c in packages or () if c.bytes_delta),
                               key=lambda kv: (-abs(kv[1]), kv[0])))
    old_ids = {_layer_id(layer) for layer in old.layers}
    pull: dict[str | None, int] = {}
    for layer in new.layers:
        if _layer_id(layer) not in old_ids:
            pull[_layer_id(layer) or f"#{layer.index}"] = layer.compressed_size
    return Breakdown(
        total=sn.layer_bytes - so.layer_bytes,
        packages=per_package,
        packages_total=(new.attribution.owned_bytes - old.attribution.owned_bytes
                        if cataloged else None),  # type: ignore[union-attr]
        unowned=(new.attribution.unowned_bytes - old.attribution.unowned_bytes
                 if cataloged else None),  # type: ignore[union-attr]
        files=sn.final_bytes - so.final_bytes,
        wasted=(sn.shipped_bytes - sn.final_bytes) - (so.shipped_bytes - so.final_bytes),
        overhead=(sn.layer_bytes - sn.shipped_bytes) - (so.layer_bytes - so.shipped_bytes),
        compressed=sn.compressed_bytes - so.compressed_bytes,
        pull_bytes=sum(pull.values()),
    )


def compare(old: Analysis, new: Analysis, *, sections: Sequence[str] = SECTIONS,
            digests: dict[int, str] | None = None,
            layers_read: tuple[tuple[str, int, int, int, int, int], ...] = (),
            read: ReadCost | None = None,
            candidates: Sequence[tuple[str, Node, Node]] | None = None,
            paths: set[str] | None = None,
            verdicts: dict[tuple[int, int], bool] | None = None) -> ImageDiff:
    """The comparison of two analyses (pure). `digests` maps id(inode) to sha256 for the
    content candidates that were hashed, `verdicts` maps (id(old inode), id(new inode)) to
    whether the bytes of those compared are equal (`layers_read` says how both were read);
    without either, same-size files written by different layers are reported with content
    "unknown"."""
    shared = shared_prefix([_layer_id(x) for x in old.layers], [_layer_id(x) for x in new.layers])
    packages = unchanged = None
    if "packages" in sections and old.attribution is not None and new.attribution is not None:
        packages, unchanged = compare_packages(old.attribution, new.attribution)
    content = None
    if "files" in sections:
        if paths is None:
            paths = changed_paths(old, new, shared)
        if candidates is None:
            candidates = content_candidates(old, new, shared, paths)
        content = content_check(candidates, digests or {}, layers_read, verdicts or {})
    return ImageDiff(
        old=side_of(old), new=side_of(new), sections=tuple(s for s in SECTIONS if s in sections),
        layers=compare_layers(old.layers, new.layers) if "layers" in sections else None,
        config=compare_config(old.config, new.config) if "config" in sections else None,
        files=(compare_files(old, new, shared, digests, paths, verdicts)
               if "files" in sections else None),
        packages=packages, unchanged_packages=unchanged or 0,
        findings=compare_findings(old, new) if "findings" in sections else None,
        breakdown=breakdown(old, new, packages),
        content=content, read=read,
        warnings=tuple([(OLD, w) for w in old.warnings] + [(NEW, w) for w in new.warnings]),
    )


# -- reading a pair -----------------------------------------------------------------------------


def diff(
    old_source: str | os.PathLike[str],
    new_source: str | os.PathLike[str],
    *,
    old_image: str | None = None,
    new_image: str | None = None,
    old_platform: str | None = None,
    new_platform: str | None = None,
    verify: bool = True,
    verify_copies: bool = False,
    sections: Sequence[str] = SECTIONS,
    hash_content: bool = True,
    reuse_shared: bool = True,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    post_analysis: PostAnalysis | None = None,
) -> ImageDiff:
    """Read both images (any input format each) and compare them.

    `sections` limits the work too: config alone reads no layer, files without packages runs
    no cataloger. `reuse_shared=False` reads every layer of both images (for measuring).
    A layer both images share is read once; `verify_copies` reads the other image's copy
    too and checks it (see the module docstring). The analyses `post_analysis` sees carry
    build-tool findings but no recommendations (a diff compares findings only)."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ImgscopeError(f"unknown diff section {unknown[0]!r} (have: {', '.join(SECTIONS)})")
    if os.fspath(old_source) == "-" and os.fspath(new_source) == "-":
        raise ImgscopeError("only one of OLD and NEW can be standard input")
    catalog = "packages" in sections or "findings" in sections
    with _Pair(verify, catalog, advise=catalog and "findings" in sections,
               verify_copies=verify and verify_copies) as pair:
        pair.open(OLD, old_source, old_image, old_platform, stdin)
        pair.open(NEW, new_source, new_image, new_platform, stdin)
        if not {"layers", "files", "packages", "findings"} & set(sections):
            return pair.config_only(sections)
        old, new, read = pair.analyze(reuse_shared, progress,
                                      predict="files" in sections and hash_content)
        candidates = []
        paths = None
        if "files" in sections or read.replayed_layers:
            paths = changed_paths(old, new, read.shared_prefix)
        pair.measure(paths)
        if "files" in sections:
            candidates = content_candidates(old, new, read.shared_prefix, paths)
        digests, layers_read, verdicts = pair.finish(
            old, new, candidates if hash_content else [], read.shared_prefix, paths,
            post_analysis)
        pair.settle()  # last: hashing the walked layers overlapped all of the above
        pair.verify_replayed()  # and the replayed copies, checked against them
        return compare(old, new, sections=sections, digests=digests, layers_read=layers_read,
                       read=read, candidates=candidates, paths=paths, verdicts=verdicts)


@dataclass
class _SideIO:
    """One image of the pair as it is read: its capture, open container and resolved image."""

    name: str
    capture: Capture
    container: Container | None = None
    resolved: ResolvedImage | None = None


class _Pair:
    """Both images open at once, each with its own capture and spool."""

    def __init__(self, verify: bool, catalog: bool, advise: bool,
                 verify_copies: bool = False) -> None:
        self.verify = verify
        self.verify_copies = verify_copies
        self.catalog = catalog
        self.advise = advise
        self.catalogers: list[Cataloger] = []  # set by prepare()
        self._prepared = False
        self.sides = {name: _SideIO(name, Capture(None, file_offsets={})) for name in (OLD, NEW)}
        self._hashers: list[RegionHasher | _ForkedHashes] = []
        # Digests of walked layers still being computed, per side: settled last (settle).
        self.checks = {OLD: PendingChecks(), NEW: PendingChecks()}
        self._analyses: dict[str, Analysis] = {}
        self._recorder: _Recorder | None = None
        self._replayed: tuple[_SideIO, _Replayer, Analysis] | None = None
        self._first = OLD  # the side walked first (analyze): the other starts from its state
        self._reused = 0  # layers the second side took from the first's walk (a snapshot)
        self._children: list[_InChild] = []  # stopped at the end if never read
        self._spools: list[Spool] = []  # inflated copies of the second side's own layers

    def __enter__(self) -> _Pair:
        return self

    def __exit__(self, *exc: object) -> None:
        for child in self._children:
            child.close()  # a no-op once its result was read; an error may have come first
        for hasher in self._hashers:
            hasher.close()
        for checks in self.checks.values():
            checks.close()
        for side in self.sides.values():
            if side.container is not None:
                side.container.close()
            if side.capture.spool is not None:
                side.capture.spool.close()
        for spool in self._spools:
            spool.close()

    def _copy_spool(self) -> Spool:
        spool = Spool(COPY_LIMIT)
        self._spools.append(spool)
        return spool

    def prepare(self) -> None:
        """What the walks keep for the later stages (api.Preparation, for both captures):
        called once the hashing has started, or before a stream is read, so that importing
        the catalogers (~50 ms) overlaps the hashing instead of delaying it."""
        if self._prepared:
            return
        self._prepared = True
        if self.catalog:
            from imgscope.catalog.registry import all_catalogers

            self.catalogers = all_catalogers()
        pattern = compile_patterns(later_stage_patterns(self.catalogers, self.advise))
        executables = any(c.wants_executables for c in self.catalogers)
        for side in self.sides.values():
            side.capture.pattern = pattern
            side.capture.executables = executables
            side.capture.spool = Spool() if executables else None

    def open(self, name: str, source, image: str | None, platform: str | None,
             stdin: BinaryIO | None) -> None:
        side = self.sides[name]
        try:
            side.container = open_container(os.fspath(source), side.capture, self.verify,
                                            stdin=stdin, before_stream=self.prepare)
            side.resolved = resolve_image(side.container, image, platform, self.verify)
        except ImgscopeError as exc:
            raise type(exc)(f"{name} image: {exc}") from None

    def config_only(self, sections: Sequence[str]) -> ImageDiff:
        ro, rn = self.sides[OLD].resolved, self.sides[NEW].resolved
        assert ro is not None and rn is not None
        return ImageDiff(
            old=_side_of_resolved(ro), new=_side_of_resolved(rn),
            sections=tuple(s for s in SECTIONS if s in sections),
            config=compare_config(ro.config, rn.config),
            warnings=tuple([(OLD, w) for w in ro.warnings] + [(NEW, w) for w in rn.warnings]),
        )

    # -- pass one: both analyses, the shared prefix walked once -------------------------------

    def analyze(self, reuse: bool, progress: Progress | None, predict: bool = False
                ) -> tuple[Analysis, Analysis, ReadCost]:
        """Both overlays (not cataloged yet: see finish). With `predict`, the files of the
        shared layers that may need a content check are hashed as the walk passes them
        (_predict_candidates)."""
        old, new = self.sides[OLD], self.sides[NEW]
        assert old.resolved is not None and new.resolved is not None
        common = shared_prefix(old.resolved.config.diff_ids, new.resolved.config.diff_ids)
        common = min(common, len(old.resolved.layers), len(new.resolved.layers))
        shared = common
        if reuse and shared and self._reusable(old) and self._reusable(new):
            first, second = self._order(shared)
        else:
            first, second, shared = old, new, 0
        recorder = _Recorder(first, shared, self.verify)
        self._recorder = recorder
        # The first side's shared layers are hashed as api._analyze_resolved hashes layers
        # (child processes, ahead of the walk), and so are the second side's own layers:
        # once the first side is read, both cores are busy cataloging the two images. The
        # second side's copies of the shared layers are hashed by another child, never walked.
        assert second.container is not None and second.resolved is not None
        ahead = layer_readers(second.container, second.resolved, second.capture, self.verify,
                              first=shared)
        hashers = self.checks[first.name].hashers
        start_hashing([layer.reader for layer in recorder.layers.values()] + list(ahead.values()),
                      hashers)
        if self._hash_inflated_ahead(recorder, ahead):
            # Only the compressed ones are left: a reader hashed above has its pending digest
            # (LayerReader.hash_region), so these get children of their own, which inflate
            # them into spools too: their walk, after the first side's, only seeks. Beside
            # them: the children above, and the one inflating the first side's walk.
            inflating = any(_compression(layer.reader.blob) != "none"
                            for layer in recorder.layers.values())
            start_hashing(list(ahead.values()), hashers, inflated=True, copies=self._copy_spool,
                          beside=len(hashers) + inflating)
        if shared:
            # Reading the later layers' headers (a child) overlaps importing the catalogers.
            foreseen = self._foresee(recorder, shared) if predict else None
            self.prepare()  # else once the first side's own hashing has started
            if foreseen is not None:
                self._predict_candidates(recorder, foreseen)
        second_names: list[str] = []
        jobs: list[tuple[Blob, bool]] = []
        trusted: set[str] = set()
        if shared and self.verify:
            first_refs = first.resolved.layers  # type: ignore[union-attr]
            for i, ref in enumerate(second.resolved.layers[:shared]):  # type: ignore[union-attr]
                if ref.name in second_names or ref.name in trusted:
                    continue
                blob = second.container.blob(ref.name)  # type: ignore[union-attr]
                if _same_region(blob, recorder.layers[first_refs[i].name].reader.blob):
                    continue  # one archive, one member: its bytes are verified once
                if not self.verify_copies and \
                        _same_size(blob, recorder.layers[first_refs[i].name].reader.blob):
                    # Known by its diff_id: the analysis uses the walked copy's bytes, which
                    # were hashed against that same diff_id. Reading this copy too would cost
                    # a second pass over the shared bytes (--verify-copies).
                    trusted.add(ref.name)
                    continue
                second_names.append(ref.name)
                # Both manifests name the same compressed blob: the sha256 of the bytes as
                # stored proves this copy is the first side's (checked in _ReplayedLayer),
                # without inflating it.
                same_blob = ref.digest is not None and ref.digest == first_refs[i].digest
                first_blob = recorder.layers[first_refs[i].name].reader.blob
                jobs.append((blob, same_blob and _compression(blob) != "none",
                             first_blob if _comparable(blob, first_blob) else None))
        analyses: dict[str, Analysis] = {}
        # The second side starts from a snapshot of the first's overlay after the shared
        # layers: copying the tree costs ~5x less than replaying their entries into it.
        starts: list[ReplayStart] = []

        def snapshot(index: int, overlay, history) -> None:
            if index == shared - 1:
                starts.append(ReplayStart(overlay.snapshot(), shared, list(history)))

        analyses[first.name] = self._analyze_side(first, recorder, progress,
                                                  after_layer=snapshot if shared else None,
                                                  before_walk=self.prepare, measure=False)
        self._first = first.name
        # Started only now: during the walk the spare core hashes the walked side's layers
        # (the walk waits for those); these are checked last (verify_replayed).
        verifier = _ForkedHashes(jobs)
        self._hashers.append(verifier)
        pending = {name: _PendingRead(verifier, i) for i, name in enumerate(second_names)}
        replayer = _Replayer(second, first, recorder, shared, pending, trusted)
        if predict:
            # The other image's files are known now: the second one's compressed layers hash
            # the same-size rewrites of them as they pass (its plain ones note offsets).
            second.capture.digest_also = _FileOf(analyses[first.name].fs)
        # Both are measured by measure(), the second from the first (FactsTally.derive).
        analyses[second.name] = self._analyze_side(second, replayer, progress,
                                                   start=starts[0] if starts else None,
                                                   hashed=ahead, measure=False)
        self._replayed = (second, replayer, analyses[second.name])
        self._reused = shared
        replayed = [analyses[first.name].layers[i].uncompressed_size for i in range(shared)]
        read = ReadCost(common, first.name if shared else None, shared, sum(replayed),
                        sum(blob.size for blob, _, _ in jobs),
                        "unverified" if not self.verify else "by-diff-id" if trusted else "read")
        return analyses[OLD], analyses[NEW], read

    @staticmethod
    def _hash_inflated_ahead(recorder: _Recorder, ahead: dict[int, LayerReader]) -> bool:
        """Whether the second side's own compressed layers are hashed beside the first walk
        too, by a child of their own that also inflates them into spools (COPY_LIMIT
        bytes each at most), to be walked from those plain copies: a walk that seeks, where
        inflating them after the first side's walk took ~150 ms for one 41 MB zstd layer.
        Only when they are small beside the shared layers whose walk that child's work must
        fit beside (1/8 of their stored bytes: zstd and gzip inflate 4-8x)."""
        own = sum(reader.blob.size for reader in ahead.values()
                  if _compression(reader.blob) != "none")
        walked = sum(layer.reader.blob.size for layer in recorder.layers.values())
        return 0 < own * 8 <= walked

    def _foresee(self, recorder: _Recorder, shared: int) -> _InChild | None:
        """A compressed shared layer cannot be read back cheaply: a same-size file the later
        layers rewrite would cost inflating the whole layer again for its content check.
        Its candidates are foreseeable, though: the regular files (path, size) of the layers
        after the shared prefix, read from their headers (in a child, started here; None
        when nothing is to be foreseen, or when those layers are the bulk: reading them twice
        would cost more than it saves)."""
        compressed = [layer for layer in recorder.layers.values()
                      if _compression(layer.reader.blob) != "none"]
        if not compressed:
            return None  # plain: read back at the offsets the walk notes
        budget = sum(layer.reader.blob.size for layer in compressed)
        unique = []
        for side in self.sides.values():
            assert side.container is not None and side.resolved is not None
            for index, ref in enumerate(side.resolved.layers[shared:], start=shared):
                blob = side.container.blob(ref.name)
                unique.append((blob, index))
                if _compression(blob) != "none":
                    budget -= blob.size
        if budget <= 0:
            return None

        def headers() -> set[tuple[str, int]]:
            wanted: set[tuple[str, int]] = set()
            for blob, index in unique:
                for entry in LayerReader(blob, index, None, verify=False).entries():
                    if entry.type is EntryType.FILE:
                        wanted.add((entry.path, entry.size))
            return wanted

        return _InChild(headers)

    def _predict_candidates(self, recorder: _Recorder, foreseen: _InChild) -> None:
        """The walk of each compressed shared layer hashes the foreseen files as they pass
        (LayerReader.digest_also; the digests in the capture's walked_digests), without
        waiting for the child that foresees them (_Foreseen)."""
        self._children.append(foreseen)
        wanted = _Foreseen(foreseen)
        for layer in recorder.layers.values():
            if _compression(layer.reader.blob) != "none":
                layer.reader.digest_also = wanted

    def verify_replayed(self) -> None:
        """Check the second side's copies of the shared layers against their diff_ids and
        blob digests, as api._check_layer checks a layer it walked, and put their own
        measurements in the analysis."""
        if self._replayed is None:
            return
        side, replayer, analysis = self._replayed
        assert side.resolved is not None
        config = side.resolved.config
        for index, ref in enumerate(side.resolved.layers):
            layer = replayer.layers.get(ref.name)
            if layer is None or not self.verify:
                continue
            own = layer.verify()
            claimed = config.diff_ids[index] if index < len(config.diff_ids) else None
            try:
                _check_layer(index, ref.name, ref.digest, claimed, own)
            except ImgscopeError as exc:
                raise type(exc)(f"{side.name} image: {exc}") from None
            analysis.layers[index] = replace(
                analysis.layers[index], measured_diff_id=own.diff_id,
                blob_digest=ref.digest or own.blob_digest, compression=own.compression,
                compressed_size=own.compressed_size)

    @staticmethod
    def _reusable(side: _SideIO) -> bool:
        # A stream (stdin, compressed archive) read every layer already; nothing to save.
        assert side.container is not None and side.resolved is not None
        return not side.resolved.layers or \
            side.container.preread(side.resolved.layers[0].name) is None

    def _rereadable(self, name: str) -> bool:
        return self._reusable(self.sides[name])

    def _order(self, shared: int) -> tuple[_SideIO, _SideIO]:
        """Walk the shared layers where that is cheapest: an uncompressed seekable copy is
        walked by seeking over contents; a compressed one must be inflated either way."""
        old, new = self.sides[OLD], self.sides[NEW]

        def compressed(side: _SideIO) -> int:
            total = 0
            for ref in side.resolved.layers[:shared]:  # type: ignore[union-attr]
                blob = side.container.blob(ref.name)  # type: ignore[union-attr]
                if _compression(blob) != "none":
                    total += blob.size
            return total

        return (new, old) if compressed(new) < compressed(old) else (old, new)

    def _analyze_side(self, side: _SideIO, container: Container, progress: Progress | None,
                      start: ReplayStart | None = None,
                      after_layer: LayerHook | None = None,
                      before_walk: Callable[[], None] | None = None,
                      hashed: dict[int, LayerReader] | None = None,
                      measure: bool = True) -> Analysis:
        assert side.resolved is not None
        shown = None
        if progress is not None:
            def shown(index: int, count: int, name: str) -> None:
                progress(index, count, f"{side.name}: {name}")
        try:
            analysis = _analyze_resolved(container, side.resolved, side.capture, self.verify,
                                         shown, self.checks[side.name], start=start,
                                         after_layer=after_layer, before_walk=before_walk,
                                         hashed=hashed, measure=measure)
        except ImgscopeError as exc:
            raise type(exc)(f"{side.name} image: {exc}") from None
        self._analyses[side.name] = analysis
        return analysis

    def measure(self, paths: Collection[str] | None) -> None:
        """The facts and summary of both images. When the image walked second started from
        the first's state (a snapshot), its index and its facts are the first's with `paths`
        (changed_paths: every path that can differ) looked at again (Overlay.index_from,
        FactsTally.derive): what the second image adds costs what it changed."""
        first = self._analyses[self._first]
        second = self._analyses[NEW if self._first == OLD else OLD]
        tally = FactsTally.of(first.fs)
        first.facts, first.summary = measured(first, tally)
        derived = None
        if self._reused and paths is not None:
            second.fs.index_from(first.fs, paths)
            derived = tally.derive(first.fs, second.fs, paths)
        second.facts, second.summary = measured(second, derived)

    def settle(self) -> None:
        """Wait for the digests of the walked layers (hashed by other processes while
        everything else ran) and check them; the shared layers' readers first, whose results
        the checks of their positions read (api.PendingChecks)."""
        for name in (OLD, NEW):
            if name not in self._analyses:
                continue
            try:
                if self._recorder is not None and self._recorder.side == name:
                    for layer in self._recorder.layers.values():
                        layer.reader.settle()
                self.checks[name].settle(self._analyses[name])
            except ImgscopeError as exc:
                raise type(exc)(f"{name} image: {exc}") from None

    def finish(self, old: Analysis, new: Analysis,
               candidates: Sequence[tuple[str, Node, Node]], shared: int,
               paths: Collection[str] | None, post_analysis: PostAnalysis | None
               ) -> tuple[dict[int, str], tuple[tuple[str, int, int, int, int, int], ...],
                          dict[tuple[int, int], bool]]:
        """Catalog both images, then read the content candidates (pass two): hash those that
        must be hashed, and compare those in plain layers byte for byte. One process, one
        image after the other, the second reusing what the first found where their trees
        agree (catalog.twin, attribute_twin). Run side by side in two processes, the later
        stages took as long here (the hashing children keep both cores busy), and the fork
        cost ~50 ms of CPU in copy-on-write faults (measured with the first image's
        findings in a child)."""
        plan = self._digest_plan(old, new, candidates, shared)
        if self.catalogers:
            first, second = (old, new) if self._first == OLD else (new, old)
            memo: dict = {}  # per file, what the catalogers read of it: once for both images
            changed = paths if self._reused else None  # where the twin trees may differ
            views = (twin_views(first.fs, second.fs, changed, memo) if changed is not None
                     else (OverlayFileView(first.fs, memo), OverlayFileView(second.fs, memo)))
            packages = _later_stages(first, self.catalogers, views[0], findings=self.advise)
            _later_stages(second, self.catalogers, views[1],
                          (first, packages, changed) if changed is not None else None,
                          findings=self.advise)
        reads = self._read_digests(plan)
        verdicts, compared = _compare_planned(plan)
        for analysis, name in ((old, OLD), (new, NEW)):
            spool = self.sides[name].capture.spool
            if self.catalogers and spool is not None and spool.skipped:
                analysis.warnings.append(Warning_(
                    "spool-limit", f"{spool.skipped} executables were not inspected "
                                   "(spool limit reached)"))
            if post_analysis is not None:
                post_analysis(analysis, OverlayFileView(analysis.fs))
        digests, layers_read = self._apply_digests(plan, reads, compared)
        return digests, layers_read, verdicts

    # -- pass two: hash the files metadata cannot decide ---------------------------------------

    def _digest_plan(self, old: Analysis, new: Analysis,
                     candidates: Sequence[tuple[str, Node, Node]], shared: int) -> _DigestPlan:
        """Which layers to read again for the candidates' bytes, and which names to hash in
        each: every layer once, a shared layer once for both sides."""
        plan = _DigestPlan()
        if not candidates:
            return plan
        asked = {path for path, _, _ in candidates}
        trees = {OLD: _Tree(old, asked), NEW: _Tree(new, asked)}
        # A shared layer is the same bytes on both sides: read the copy that was walked (and
        # so verified: the other may not have been read), else the cheaper copy (an
        # uncompressed one is walked by seeking), never a stream's (it cannot be read again).
        recorder = self._recorder
        shared_from = recorder.side if recorder is not None and \
            self._rereadable(recorder.side) else self._cheaper_copy()
        for path, a, b in candidates:
            versions = []
            for side, node in ((OLD, a), (NEW, b)):
                inode = node.inode
                assert inode is not None
                key = (shared_from if inode.layer < shared else side, inode.layer)
                versions.append((key, node, trees[side].names(path, node)))
            where = [self._located(key, names) for key, _, names in versions]
            if where[0] is not None and where[1] is not None:
                # Both read alone from plain layers: compared, not hashed (stops at the
                # first difference; equal bytes read once each instead of hashed twice).
                plan.compares.append((id(a.inode), id(b.inode), a.size,
                                      (versions[0][0], *where[0]), (versions[1][0], *where[1])))
                continue
            for key, node, inode_names in versions:
                plan.paths[key].update(inode_names)
                plan.inodes[key].append((id(node.inode), inode_names, node.size))
        return plan

    def _located(self, key: tuple[str, int], names: list[str]) -> tuple[Blob, int] | None:
        """(blob, offset in it) of a file the walk of a plain seekable layer noted, if any."""
        side_name, layer = key
        if not self._rereadable(side_name):
            return None
        side = self.sides[side_name]
        assert side.container is not None and side.resolved is not None
        offsets = (side.capture.file_offsets or {}).get(layer)
        if not offsets:
            return None
        blob = side.container.blob(side.resolved.layers[layer].name)
        if blob.fd is None or _compression(blob) != "none":
            return None
        start = next((offsets[name] for name in names if name in offsets), None)
        return None if start is None else (blob, start)

    def _cheaper_copy(self) -> str:
        usable = [n for n in (OLD, NEW) if self._rereadable(n)] or [OLD]
        for name in usable:
            side = self.sides[name]
            assert side.container is not None and side.resolved is not None
            if side.resolved.layers and \
                    _compression(side.container.blob(side.resolved.layers[0].name)) == "none":
                return name
        return usable[0]

    def _read_digests(self, plan: _DigestPlan) -> dict[tuple[str, int], tuple[dict, int, int]]:
        """sha256 of the planned files: (side, layer) ->
        ({path: digest}, layer bytes, bytes read). A file of a plain seekable layer whose
        offset the walk noted is read alone (its inode: one read for all its names); any
        other means walking its layer again."""
        out = {}
        for (side_name, layer), paths in sorted(plan.paths.items()):
            side = self.sides[side_name]
            assert side.container is not None and side.resolved is not None
            if not self._rereadable(side_name):
                continue  # read from a stream: the bytes cannot be read again
            ref = side.resolved.layers[layer]
            predicted = self._predicted(side_name, layer, plan.inodes[(side_name, layer)])
            if predicted is not None:
                out[(side_name, layer)] = predicted
                continue
            blob = side.container.blob(ref.name)
            offsets = (side.capture.file_offsets or {}).get(layer, {})
            found = _hash_at_offsets(blob, plan.inodes[(side_name, layer)], offsets)
            if found is not None:
                out[(side_name, layer)] = found
                continue
            reader = LayerReader(blob, layer, Capture(None, digest_paths=frozenset(paths)),
                                 verify=False)
            for _ in reader.entries():
                pass
            size = reader.result.uncompressed_size
            out[(side_name, layer)] = (reader.result.digests, size, size)
        return out

    def _predicted(self, side_name: str, layer: int, inodes: list[tuple[int, list[str], int]]
                   ) -> tuple[dict[str, str], int, int] | None:
        """({path: digest}, layer bytes, 0) when the walk of that layer hashed every planned
        file already (Capture.digest_also): nothing is read again."""
        side = self.sides[side_name]
        walked = side.capture.walked_digests.get(layer)
        if walked is None:
            return None
        found: dict[str, str] = {}
        for _, names, _ in inodes:
            hit = next((n for n in names if n in walked), None)
            if hit is None:
                return None
            for n in names:
                found[n] = walked[hit]
        return found, self._analyses[side_name].layers[layer].uncompressed_size, 0

    @staticmethod
    def _apply_digests(plan: _DigestPlan, reads: dict[tuple[str, int], tuple[dict, int, int]],
                       compared: dict[tuple[str, int], list[int]]
                       ) -> tuple[dict[int, str], tuple[tuple[str, int, int, int, int, int], ...]]:
        """Digests by id(inode), and per layer read: (side, layer, files hashed, files
        compared, layer bytes, bytes read)."""
        digests: dict[int, str] = {}
        rows: dict[tuple[str, int], list[int]] = {}
        for key, (found, size, read) in reads.items():
            for inode_id, names, _ in plan.inodes[key]:
                for name in names:
                    if name in found:
                        digests[inode_id] = found[name]
                        break
            rows[key] = [len(found), 0, size, read]
        for key, (files, size, read) in compared.items():
            row = rows.setdefault(key, [0, 0, size, 0])
            row[1] += files
            row[3] += read
        return digests, tuple((key[0], key[1], *row) for key, row in sorted(rows.items()))


class _Foreseen:
    """LayerReader.digest_also for the compressed shared layers: the (path, size) of the
    regular files of the layers after the shared prefix, which a child reads from their
    headers (_Pair._foresee). The walk does not wait for it: until the child has answered,
    every regular file is taken as foreseen and hashed as it passes (a few MB in that time,
    against ~0.13 s of waiting for a 41 MB zstd layer's headers); digests nothing asks for
    are never looked at. A child that fails foresees nothing (that layer's own walk reports
    what is wrong with it)."""

    def __init__(self, child: _InChild) -> None:
        self._child = child
        self._wanted: Membership[tuple[str, int]] | None = None

    def __contains__(self, item: object) -> bool:
        if self._wanted is None:
            if not self._child.ready():
                return True
            try:
                self._wanted = self._child.result()
            except ImgscopeError:
                self._wanted = frozenset()
        return item in self._wanted


class _FileOf:
    """(path, size) in it when the other image's final filesystem has a regular file of
    that size at that path: a same-size rewrite, whose content only its bytes can tell."""

    def __init__(self, fs: Overlay) -> None:
        self.fs = fs  # looked up in the tree: a few hundred paths need no index of it

    def __contains__(self, item: object) -> bool:
        path, size = item  # type: ignore[misc]
        node = self.fs.get(path)
        return node is not None and node.type is EntryType.FILE and node.size == size


def _hash_at_offsets(blob: Blob, inodes: list[tuple[int, list[str], int]],
                     offsets: dict[str, int]
                     ) -> tuple[dict[str, str], int, int] | None:
    """({path: digest}, layer bytes, bytes read) of the planned inodes of one layer, each
    read at the offset the walk noted; None when one of them has no noted offset (the layer
    was not walked plain and seekable here: walk it instead)."""
    if blob.fd is None or _compression(blob) != "none":
        return None
    found: dict[str, str] = {}
    read = 0
    for _, names, size in inodes:
        start = next((offsets[name] for name in names if name in offsets), None)
        if start is None:
            return None
        digest, done = hash_region(blob.fd, blob.offset + start, size)
        if done != size:
            raise CorruptInput(f"layer {blob.name} is truncated")
        read += size
        for name in names:
            found[name] = digest
    return found, blob.size, read


@dataclass
class _DigestPlan:
    """What pass two hashes, per (side, layer) to read: the names, and each inode to read."""

    paths: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    inodes: dict[tuple[str, int], list[tuple[int, list[str], int]]] = field(
        default_factory=lambda: defaultdict(list))
    # Candidates compared byte for byte instead: (id(old inode), id(new inode), size,
    # (key, blob, offset) of the old version, of the new one).
    compares: list[tuple[int, int, int, tuple, tuple]] = field(default_factory=list)


def _compare_planned(plan: _DigestPlan
                     ) -> tuple[dict[tuple[int, int], bool], dict[tuple[str, int], list[int]]]:
    """The planned byte-for-byte comparisons: ({(old id, new id): equal}, {(side, layer):
    [files, layer bytes, bytes read]})."""
    verdicts: dict[tuple[int, int], bool] = {}
    reads: dict[tuple[str, int], list[int]] = {}
    for old_id, new_id, size, (key_a, blob_a, at_a), (key_b, blob_b, at_b) in plan.compares:
        same, done = _same_file_bytes(blob_a, at_a, blob_b, at_b, size)
        verdicts[(old_id, new_id)] = same
        for key, blob in ((key_a, blob_a), (key_b, blob_b)):
            row = reads.setdefault(key, [0, blob.size, 0])
            row[0] += 1
            row[2] += done
    return verdicts, reads


def _same_file_bytes(a: Blob, at_a: int, b: Blob, at_b: int, size: int) -> tuple[bool, int]:
    """Whether `size` bytes at offset `at_a` of blob `a` equal those at `at_b` of `b`, and
    how many bytes of each were read to tell (it stops at the first chunk that differs)."""
    assert a.fd is not None and b.fd is not None
    mine, theirs = bytearray(COMPARE_CHUNK), bytearray(COMPARE_CHUNK)
    done = 0
    while done < size:
        n = min(COMPARE_CHUNK, size - done)
        if n < COMPARE_CHUNK:  # the last piece
            del mine[n:], theirs[n:]
        if os.preadv(a.fd, [mine], a.offset + at_a + done) != n \
                or os.preadv(b.fd, [theirs], b.offset + at_b + done) != n:
            raise CorruptInput(f"layer {a.name} or {b.name} is truncated")
        done += n
        if mine != theirs:
            return False, done
    return True, done


class _InChild:
    """Run a function in a forked child; its pickled result (or exception) comes back over
    a pipe. The child sees this process's overlays and open archives as they are at fork
    time; nothing it does reaches back. Inline where fork is missing."""

    def __init__(self, func: Callable[[], object]) -> None:
        self._value: object = None
        self._pid = 0
        if not hasattr(os, "fork"):  # pragma: no cover - every POSIX system has fork
            self._value = _outcome(func)
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                os.close(read_end)
                data = pickle.dumps(_outcome(func))
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view):]
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._read_end = pid, read_end

    def ready(self) -> bool:
        """Whether result() would return without waiting for the child's work."""
        if not self._pid:
            return True
        return bool(select.select([self._read_end], [], [], 0)[0])

    def close(self) -> None:
        """Stop the child if its result was never read (an error came first)."""
        if self._pid:
            stop_child(self._pid, self._read_end)
            self._pid = 0

    def result(self):
        if self._pid:
            chunks = []
            while chunk := os.read(self._read_end, 1 << 20):
                chunks.append(chunk)
            os.close(self._read_end)
            os.waitpid(self._pid, 0)
            self._pid = 0
            if not chunks:
                raise CorruptInput("the helper process ended without a result")
            self._value = pickle.loads(b"".join(chunks))
        kind, value = self._value  # type: ignore[misc]
        if kind == "error":
            raise value
        return value


def _outcome(func: Callable[[], object]) -> tuple[str, object]:
    try:
        return "ok", func()
    except Exception as exc:
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return "error", exc


def _later_stages(analysis: Analysis, catalogers: Sequence[Cataloger], view: OverlayFileView,
                  twin: tuple[Analysis, list[Package], Collection[str]] | None = None,
                  findings: bool = True) -> list[Package]:
    """What api.analyze does after reading (kept in step with it): catalog, attribute, and
    (with `findings`) the build-tool findings, without the recommendations (a diff compares
    findings; recommending costs ~30 ms a side). Into the analysis, warnings included; the
    packages found are returned. `view`: the analysis's FileView (catalog.twin's for a pair
    of twins); `twin`: the other image, its packages and the paths at which the two trees
    may differ, when this one started from its state (attribute_twin)."""
    packages, warnings = run_catalogers(catalogers, analysis.fs, view)
    result = None
    if twin is not None:
        other, other_packages, changed = twin
        assert other.attribution is not None
        result = attribute_twin(other.attribution, other_packages, other.fs, analysis.fs,
                                packages, analysis.fs.wasted, len(analysis.layers), changed)
    if result is None:
        result = attribute(analysis.fs, packages, analysis.fs.wasted, len(analysis.layers))
    # No attribution.record_layer_changes: a diff shows no per-layer removals or upgrades
    # (~35 ms a side on a Debian image).
    analysis.warnings.extend(Warning_("catalog", w) for w in (*warnings, *result.warnings))
    analysis.attribution = result
    if findings:
        from imgscope.analyze.recommend import apply_findings

        apply_findings(analysis, OverlayFileView(analysis.fs))
    return packages


def _side_of_resolved(resolved: ResolvedImage) -> Side:
    return Side(resolved.source_format, resolved.tags, resolved.manifest_digest,
                resolved.config_digest, resolved.platform, len(resolved.layers), None)


# A verifier result: this copy holds the very bytes of the first side's copy.
SAME_BYTES = "same-bytes"
COMPARE_CHUNK = 256 * 1024  # fits in L2 with its twin: 2.7 GB/s here, against 1.3 for sha256


def _comparable(a: Blob, b: Blob) -> bool:
    """Two stored copies that can be compared instead of hashed: both regions of files, of
    one size (sha256 of the first is computed anyway; comparing is twice as fast)."""
    return a.fd is not None and b.fd is not None and a.size == b.size


def _same_bytes(a: Blob, b: Blob) -> bool:
    try:
        return _same_file_bytes(a, 0, b, 0, a.size)[0]
    except CorruptInput:
        return False  # hashed instead: the digests then say what differs


def _same_size(a: Blob, b: Blob) -> bool:
    """Both copies could hold the same bytes as far as their stored size tells: a plain copy
    the size of the other plain one (equal diff_ids mean equal tar streams, so equal sizes);
    compressed copies, whose sizes depend on the compressor, always."""
    return a.size == b.size or _compression(a) != "none" or _compression(b) != "none"


def _same_region(a: Blob, b: Blob) -> bool:
    """Both blobs are one region of one file (two images of one archive, or an archive
    compared with itself)."""
    if a.fd is None or b.fd is None or (a.offset, a.size) != (b.offset, b.size):
        return False
    sa, sb = os.fstat(a.fd), os.fstat(b.fd)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _compression(blob: Blob) -> str:
    if blob.fd is not None:
        return sniff_compression(FileRegion(blob.fd, blob.offset, blob.size).read(8))
    return sniff_compression(blob.head)


def _hash_only(blob: Blob, raw_only: bool = False, mapped: bool = False) -> LayerRead:
    """Verify a layer copy without walking it: its diff_id and blob digest; with `raw_only`
    the blob digest alone (diff_id None), for a copy claimed to be a blob already verified.
    `mapped` (in a forked child only; see streams.hash_mapped_region) hashes in place."""
    hash_file = hash_mapped_region if mapped else hash_region
    compression = _compression(blob)
    if raw_only and blob.fd is not None:
        digest, done = hash_file(blob.fd, blob.offset, blob.size)
        return LayerRead(compression, done, 0, None, digest)
    if blob.fd is not None and compression == "none":
        digest, done = hash_file(blob.fd, blob.offset, blob.size)
        if done != blob.size:
            raise CorruptInput(f"layer {blob.name} is truncated")
        return LayerRead("none", blob.size, blob.size, digest, digest)
    if blob.fd is not None:
        raw: Iterator[bytes] = file_chunks(blob.fd, blob.offset, blob.size)
    else:
        assert blob.chunks is not None
        raw = _prepend(blob.head, blob.chunks)
    decoder = HashingDecoder(raw, compression, hash_raw=compression != "none", threaded=False)
    for _ in decoder.chunks():
        pass
    diff_id = "sha256:" + decoder.decoded_digest.hexdigest()
    blob_digest = ("sha256:" + decoder.raw_digest.hexdigest()
                   if decoder.raw_digest is not None else diff_id)
    return LayerRead(compression, decoder.raw_size, decoder.decoded_size, diff_id, blob_digest)


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


class _Delegate:
    """A Container seen through a wrapper: only `preread` changes."""

    def __init__(self, side: _SideIO) -> None:
        assert side.container is not None and side.resolved is not None
        self.inner = side.container
        self.resolved = side.resolved

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def blob(self, name: str) -> Blob:
        return self.inner.blob(name)


class _RecordedLayer:
    """A shared layer read once: iterating it the first time walks the blob and records its
    entries; any later iteration (a second position of the same blob) replays them."""

    def __init__(self, blob: Blob, index: int, label: str, capture: Capture,
                 verify: bool) -> None:
        self.reader = LayerReader(blob, index, capture, verify)
        self.label = label
        self.entries: list[LayerEntry] | None = None

    def __iter__(self) -> Iterator[LayerEntry]:
        if self.entries is not None:
            yield from self.entries
            return
        recorded: list[LayerEntry] = []
        try:
            for entry in self.reader.entries():
                recorded.append(entry)
                yield entry
        except (CorruptInput, LimitExceeded) as exc:
            raise type(exc)(f"layer {self.reader.index} ({self.label}): {exc}") from None
        self.entries = recorded


class _Recorder(_Delegate):
    """The first side: its shared layers are read through here and their entries kept."""

    def __init__(self, side: _SideIO, shared: int, verify: bool) -> None:
        super().__init__(side)
        self.side = side.name
        self.layers: dict[str, _RecordedLayer] = {}
        for index, ref in enumerate(self.resolved.layers[:shared]):
            if ref.name in self.layers:
                continue
            layer = _RecordedLayer(self.inner.blob(ref.name), index, ref.digest or ref.name,
                                   side.capture, verify)
            self.layers[ref.name] = layer

    def preread(self, name: str):
        layer = self.layers.get(name)
        if layer is None:
            return self.inner.preread(name)
        return layer, layer.reader.result


class _ReplayedLayer:
    """A shared layer of the second side: the first side's entries. Its LayerRead holds the
    first side's measurements until `verify` (after cataloging, so that hashing this copy
    overlaps with everything else) puts this copy's own in, or refuses it."""

    def __init__(self, source: _RecordedLayer, read: LayerRead,
                 pending: _PendingRead | None, blob: Blob, trusted: bool = False) -> None:
        self.source = source
        self.read = read
        self.pending = pending
        self.blob = blob
        self.trusted = trusted  # not read: known by its diff_id (see _Pair.analyze)

    def __iter__(self) -> Iterator[LayerEntry]:
        if self.source.entries is None:
            raise AssertionError("shared layer replayed before it was read")
        yield from self.source.entries
        first = self.source.reader.result
        read = self.read
        read.compression, read.compressed_size = _compression(self.blob), self.blob.size
        read.uncompressed_size, read.diff_id = first.uncompressed_size, first.diff_id
        read.blob_digest = None  # not measured yet: see verify
        # Properties of the uncompressed stream: equal once the diff_ids match.
        read.trailing_bytes, read.end = first.trailing_bytes, first.end
        read.findings = list(first.findings)

    def verify(self) -> LayerRead:
        """This copy's own digests (hash-only, from the verifier child); for a copy not
        read, only what its stored form says (diff_id None: nothing measured)."""
        first = self.source.reader.result
        if self.trusted:
            compression = _compression(self.blob)
            # A plain blob is its tar stream: its digest is the diff_id the first side's copy
            # was checked against (the same at this position).
            return LayerRead(compression, self.blob.size, first.uncompressed_size,
                             blob_digest=first.diff_id if compression == "none" else None)
        if self.pending is None:  # the very bytes the first side read (same file region)
            return replace(first, findings=[], digests={})
        own = self.pending.result()
        if own.diff_id == SAME_BYTES:
            # byte for byte the first side's copy, which was hashed and checked against the
            # same diff_id (and blob digest) this side claims
            return replace(first, findings=[], digests={}, compression=own.compression,
                           compressed_size=own.compressed_size)
        if own.diff_id is None:
            if own.blob_digest == first.blob_digest and first.diff_id is not None:
                # byte for byte the blob the first side inflated and verified
                own.diff_id, own.uncompressed_size = first.diff_id, first.uncompressed_size
            else:
                own = _hash_only(self.blob)
        return own


class _Replayer(_Delegate):
    def __init__(self, side: _SideIO, first: _SideIO, recorder: _Recorder, shared: int,
                 pending: dict[str, _PendingRead], trusted: set[str]) -> None:
        super().__init__(side)
        assert first.resolved is not None
        # this side's blob name -> the first side's blob name at the same position
        self.source = {ref.name: first.resolved.layers[i].name
                       for i, ref in enumerate(self.resolved.layers[:shared])}
        self.recorder = recorder
        self.pending = pending
        self.trusted = trusted
        self.layers: dict[str, _ReplayedLayer] = {}

    def preread(self, name: str):
        if name not in self.source:
            return self.inner.preread(name)
        layer = self.layers.get(name)
        if layer is None:
            source = self.recorder.layers[self.source[name]]
            layer = _ReplayedLayer(source, LayerRead(), self.pending.get(name),
                                   self.inner.blob(name), name in self.trusted)
            self.layers[name] = layer
        return layer, layer.read


def _hash_only_row(blob: Blob, raw_only: bool, reference: Blob | None = None) -> list:
    if reference is not None and _same_bytes(blob, reference):
        return [_compression(blob), blob.size, 0, SAME_BYTES, SAME_BYTES]
    r = _hash_only(blob, raw_only, mapped=True)
    return [r.compression, r.compressed_size, r.uncompressed_size, r.diff_id, r.blob_digest]


class _ForkedHashes(ForkedJobs):
    """Hash-only verification of layer blobs (`_hash_only`) in one forked child, in order
    (see streams.ForkedJobs for why a process); a blob's error is raised when it is asked
    for."""

    def __init__(self, blobs: Sequence[tuple[Blob, bool, Blob | None]]) -> None:
        """`blobs`: (blob, raw_only, reference) triples: see _hash_only for `raw_only`; a
        `reference` is the first side's copy, compared byte for byte first (_same_bytes)."""
        super().__init__(_hash_only_row, blobs)

    def result(self, index: int) -> LayerRead:  # type: ignore[override]
        return LayerRead(*super().result(index))


class _PendingRead:
    def __init__(self, hashes: _ForkedHashes, index: int) -> None:
        self._hashes, self._index = hashes, index

    def result(self) -> LayerRead:
        return self._hashes.result(self._index)
