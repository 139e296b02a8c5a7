"""Two analyses in, one comparison out (`ImageDiff`, the diff's model); nothing here prints.

Comparing (`compare`) is a pure function of the two analyses. Only the paths that can differ
are looked at (changed_paths): those one side lacks, and those a layer after the shared prefix
wrote on either side; the rest were last written by the shared layers, the same on both sides.
mtime is not compared (every rebuild changes it; container-diff ignores it too); history items
are compared by instruction, not by timestamp.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from imgscope.api import Analysis
from imgscope.archive.image import ResolvedImage
from imgscope.attribution import Attribution
from imgscope.model import (
    EntryType,
    Finding,
    ImageConfig,
    LayerInfo,
    PathFinding,
    Warning_,
)
from imgscope.overlay import Inode, Node, Overlay, path_order_key
from imgscope.pairing import NEW, OLD, SECTIONS, shared_prefix

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


class FileTree:
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
    t_old, t_new = FileTree(old, wanted), FileTree(new, wanted)
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


def _unchanged(path: str, a: Node, b: Node, t_old: FileTree, t_new: FileTree, shared: int) -> bool:
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


def _state(path: str, node: Node, tree: FileTree, digests: dict[int, str]) -> FileState:
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


def _carried(path: str, node: Node | None, tree: FileTree) -> int:
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


def side_of_resolved(resolved: ResolvedImage) -> Side:
    """A side known from its manifest and config only (nothing read: `diff --only config`)."""
    return Side(resolved.source_format, resolved.tags, resolved.manifest_digest,
                resolved.config_digest, resolved.platform, len(resolved.layers), None)


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
