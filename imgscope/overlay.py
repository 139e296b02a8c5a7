"""Replay layers into the filesystem a container sees, under the OCI image-spec layer rules.

One pass per layer, in tar order, with each node stamped by the layer that last wrote it. That
stamp is what makes the spec's rules order-independent without buffering a layer:
- `.wh.NAME` removes NAME from *lower* layers only: content this layer wrote survives, even
  when the whiteout comes later in the tar.
- `.wh..wh..opq` in D hides every lower child of D, wherever it sits in the tar.
- A whiteout of a directory drops its lower subtree; a file replacing a directory (or the
  reverse) drops what it replaces; the last of duplicate paths in one layer wins.
- Parent directories are resolved through symlinks inside the root, as containerd and umoci
  do when they extract ("a/b" under a symlink "a -> c" lands in "c/b").
- Hard links share one inode (`Inode`): bytes count once, also across layers.
Every version of a file that ends up hidden is recorded as wasted, against the layer that
shipped it. Nothing here reads a tar: the input is LayerEntry metadata.
"""

from __future__ import annotations

import bisect
import itertools
import posixpath
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace

from imgscope.archive.layer import whiteout_target
from imgscope.model import EntryType, LayerEntry, LayerStats, PathFinding, WastedFile

MAX_SYMLINK_HOPS = 40  # Linux's limit for one path resolution


class Inode:
    """File content shared by hard links."""

    __slots__ = ("size", "stored_size", "layer", "links", "content", "data_ref", "owner",
                 "offset")

    def __init__(self, size: int, stored_size: int, layer: int, content: bytes | None,
                 data_ref: tuple[int, int] | None = None, owner: object = None,
                 offset: int = -1) -> None:
        self.size = size
        self.stored_size = stored_size
        self.layer = layer  # the layer that shipped these bytes
        self.links = 0  # visible names
        self.content = content
        self.data_ref = data_ref  # (fd, offset) of the bytes, for kept executables
        self.owner = owner  # the overlay that may change it (see Overlay.snapshot)
        self.offset = offset  # where the bytes start in that layer's tar stream (LayerEntry)


class Node:
    __slots__ = (
        "type", "mode", "uid", "gid", "mtime", "link_target", "layer", "inode",
        "children", "devmajor", "devminor", "xattrs", "implicit", "owner",
    )

    def __init__(self, entry: LayerEntry | None, layer: int, etype: EntryType,
                 owner: object = None) -> None:
        self.type = etype
        self.layer = layer
        self.inode: Inode | None = None
        self.owner = owner  # the overlay that may change it (see Overlay.snapshot)
        self.children: dict[str, Node] | None = {} if etype is EntryType.DIR else None
        if entry is None:  # a directory no tar member named: created as a runtime would
            self.mode, self.uid, self.gid, self.mtime = 0o755, 0, 0, 0
            self.link_target = None
            self.devmajor = self.devminor = 0
            self.xattrs: tuple[tuple[str, str], ...] = ()
            self.implicit = True
        else:
            self.set_meta(entry)

    def set_meta(self, entry: LayerEntry) -> None:
        self.mode = entry.mode
        self.uid = entry.uid
        self.gid = entry.gid
        self.mtime = entry.mtime
        self.link_target = entry.link_target if self.type is EntryType.SYMLINK else None
        self.devmajor = entry.devmajor
        self.devminor = entry.devminor
        self.xattrs = entry.xattrs
        self.implicit = False

    @property
    def size(self) -> int:
        return self.inode.size if self.inode is not None else 0

    @property
    def content(self) -> bytes | None:
        return self.inode.content if self.inode is not None else None


@dataclass
class DiveTally:
    """dive's efficiency bookkeeping (filetree/efficiency.go), kept to compare like for like.

    Per path: the sum of the sizes it had in each layer that touched it, and the smallest.
    dive ignores opaque markers and sizes a whiteout by the subtree it removes.
    """

    # path -> its size when one layer touched it (most paths: a bare int keeps a million-entry
    # image ~100 MB smaller), or [sum, min, count] once two or more did.
    cumulative: dict[str, int | list[int]] = field(default_factory=dict)

    def fold(self, layer_paths: dict[str, int]) -> None:
        # dive visits only the leaves of each layer's tree: a directory this layer also
        # wrote children of is not counted (else /a in two layers reads as wasted bytes).
        parents: set[str] = set()
        for path in layer_paths:
            parent = path.rpartition("/")[0]
            while parent and parent not in parents:
                parents.add(parent)
                parent = parent.rpartition("/")[0]
        cum = self.cumulative
        for path, size in layer_paths.items():
            if path in parents:
                continue
            item = cum.get(path)
            if item is None:
                cum[path] = size
            elif isinstance(item, int):
                cum[path] = [item + size, min(item, size), 2]
            else:
                item[0] += size
                if size < item[1]:
                    item[1] = size
                item[2] += 1

    def score(self) -> tuple[float, int]:
        minimum = discovered = wasted = 0
        for item in self.cumulative.values():
            if isinstance(item, int):
                minimum += item
                discovered += item
                continue
            total, smallest, _count = item
            minimum += smallest
            discovered += total
            wasted += total
        return (minimum / discovered if discovered else 1.0), wasted


class Overlay:
    """The merged filesystem, built one layer at a time."""

    def __init__(self, keep_dive_tally: bool = True) -> None:
        # Nodes and inodes carrying this token are this overlay's own, changed in place;
        # any other was shared by a snapshot and is copied before it changes (_own).
        self._token = object()
        self.root = Node(None, 0, EntryType.DIR, self._token)
        self.root.implicit = False
        self.stats: list[LayerStats] = []
        self.wasted: list[WastedFile] = []
        self.findings: list[PathFinding] = []
        self.dive = DiveTally() if keep_dive_tally else None
        self._layer = -1
        self._layer_paths: dict[str, int] = {}
        # Last parent directory resolved: tar members come grouped by directory, so most
        # entries skip the walk from the root. Dropped whenever the tree loses or changes a node.
        self._parent_cache: tuple[str, Node] | None = None
        self._index: dict[str, Node] | None = None
        # id(shared inode) -> (that inode, this overlay's copy of it)
        self._inode_copies: dict[int, tuple[Inode, Inode]] = {}
        self._unshared = False  # _unshare_all ran: no node is shared with a snapshot's twin

    def snapshot(self) -> Overlay:
        """An independent copy of the current state: applying layers to it or to this one
        leaves the other as it was. Copy-on-write: both start from the same nodes, and
        whichever overlay changes a directory, a node's metadata or an inode's link count
        first copies it, with the directories above it (path copying), so a copy costs what
        the layers applied after it touch, not the size of the tree. File bytes and frozen
        records are shared. `imgscope diff` starts the second image from the first's state
        after the layers both share (a full copy of a 17k-path tree took ~45 ms)."""
        copy = Overlay.__new__(Overlay)
        copy.stats = [replace(stats) for stats in self.stats]
        copy.wasted = list(self.wasted)
        copy.findings = list(self.findings)
        copy.dive = None
        if self.dive is not None:
            copy.dive = DiveTally({path: tally if isinstance(tally, int) else list(tally)
                                   for path, tally in self.dive.cumulative.items()})
        copy._layer = self._layer
        copy._layer_paths = {}
        copy._index = None
        copy._unshared = False
        # Every node so far is now shared: neither side owns it. Each takes a root of its own.
        for overlay in (self, copy):
            overlay._token = object()
            overlay._parent_cache = None
            overlay._inode_copies = {}
        copy.root = _copy_node(self.root, copy._token)
        self.root = _copy_node(self.root, self._token)
        return copy

    def _own(self, parent: Node, name: str) -> Node:
        """parent's child `name`, made this overlay's own (copied if shared) so that it can
        change; `parent` must be owned already."""
        assert parent.children is not None
        child = parent.children[name]
        if child.owner is not self._token:
            child = parent.children[name] = _copy_node(child, self._token)
        return child

    def _own_inode(self, inode: Inode) -> Inode:
        """The inode whose link count this overlay may change: its own, or its copy of a
        shared one. A shared inode with other names in the tree cannot be copied alone (they
        would stop sharing it): then the whole tree is made this overlay's own (rare: an
        upper layer removing one name of a hard-link group from below the snapshot)."""
        if inode.owner is self._token:
            return inode
        if inode.links > 1 and id(inode) not in self._inode_copies:
            self._unshare_all()
        return self._copy_inode(inode)

    def _copy_inode(self, inode: Inode) -> Inode:
        known = self._inode_copies.get(id(inode))
        if known is None:
            twin = Inode(inode.size, inode.stored_size, inode.layer, inode.content,
                         inode.data_ref, self._token, inode.offset)
            twin.links = inode.links
            # the original is kept with its copy: its id stays unique while it is a key
            known = self._inode_copies[id(inode)] = (inode, twin)
        return known[1]

    def _unshare_all(self) -> None:
        """Copy every node and inode still shared with another overlay (the fallback for
        changes path copying cannot confine; iteratively: hostile trees nest deep)."""
        self._parent_cache = None
        self._unshared = True
        token = self._token
        todo = [self.root]
        while todo:
            directory = todo.pop()
            children = directory.children
            assert children is not None
            for name, child in children.items():
                if child.owner is not token:
                    child = children[name] = _copy_node(child, token)
                    inode = child.inode
                    if inode is not None and inode.owner is not token:
                        child.inode = self._copy_inode(inode)
                if child.children:
                    todo.append(child)

    # -- resolution ---------------------------------------------------------------------------

    def _walk_dir(self, parts: list[str], create: bool, hops: int = 0) -> Node | None:
        """The directory node at `parts`, following symlinks inside the root; may create."""
        node = self.root
        stack = list(reversed(parts))
        trail: list[Node] = []  # ancestors of `node`, for ".." in symlink targets
        names: list[str] = []
        # Names at or below a missing (or non-directory) component. A ".." cancels them
        # lexically, as SecureJoin (umoci) and containerd resolve: "x/../y" never makes "x".
        pending: list[str] = []
        while stack:
            name = stack.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if pending:
                    pending.pop()
                elif trail:
                    node = trail.pop()
                    names.pop()
                continue
            if pending:
                pending.append(name)
                continue
            assert node.children is not None
            child = node.children.get(name)
            if child is not None and child.type is EntryType.SYMLINK:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    self._finding("symlink-loop", "/" + "/".join([*names, name]),
                                  "too many symlinks while resolving a parent directory")
                    return None
                target = child.link_target or ""
                if target.startswith("/"):
                    node, trail, names = self.root, [], []
                stack.extend(reversed(target.split("/")))
                continue
            if child is None or child.type is not EntryType.DIR:
                pending.append(name)
                continue
            if child.owner is not self._token:  # it, or a node below it, may change
                child = self._own(node, name)
            trail.append(node)
            names.append(name)
            node = child
        if pending and not create:
            return None
        for name in pending:
            assert node.children is not None
            child = node.children.get(name)
            if child is not None:  # only the first one can exist: a non-directory
                parent_path = "/" + "/".join(names)
                self._finding("conflict", self._path_of(parent_path, name),
                              f"a {child.type.value} is used as a directory; replaced")
                self._remove(node, name, "parent-replaced", parent_path)
            child = Node(None, self._layer, EntryType.DIR, self._token)
            if node.mode & 0o2000:
                # mkdir(2) in a setgid directory: the new one takes its group and setgid bit
                # (what the kernel does when containerd or umoci create the missing parent)
                child.gid = node.gid
                child.mode |= 0o2000
            node.children[name] = child
            self.stats[self._layer].added_entries += 1
            names.append(name)
            node = child
        return node

    def _lookup(self, path: str) -> Node | None:
        parent_path, name = posixpath.split(path)
        parent = self._walk_dir(parent_path.split("/"), create=False)
        if parent is None or not name:
            return parent if not name else None
        assert parent.children is not None
        return parent.children.get(name)

    # -- removal and waste --------------------------------------------------------------------

    def _path_of(self, parent_path: str, name: str) -> str:
        return parent_path.rstrip("/") + "/" + name

    def _account_removed(self, path: str, node: Node, how: str) -> None:
        stats = self.stats[self._layer]
        stats.removed_entries += 1
        inode = node.inode
        if inode is None:
            return
        inode = self._own_inode(inode)
        inode.links -= 1
        stats.removed_bytes += inode.size
        if inode.links <= 0 and inode.size:
            how_now = "duplicate-in-layer" if inode.layer == self._layer else how
            self.wasted.append(WastedFile(path, inode.layer, inode.size, self._layer, how_now))
            self.stats[inode.layer].wasted_bytes += inode.size

    def _drop_subtree(self, path: str, node: Node, how: str, count_top: bool = True) -> None:
        """Account for `node` and everything below it as removed (iteratively: hostile
        layers nest deeper than Python's recursion limit)."""
        self._parent_cache = None
        todo = [(path, node, count_top)]
        while todo:
            current_path, current, counted = todo.pop()
            if current.children:
                todo.extend((current_path + "/" + n, c, True) for n, c in current.children.items())
            if counted:
                self._account_removed(current_path, current, how)
            elif current.inode is not None:  # replaced in place: its bytes still go to waste
                self._account_removed(current_path, current, how)
                self.stats[self._layer].removed_entries -= 1
                self.stats[self._layer].removed_bytes -= current.inode.size

    def _remove(self, parent: Node, name: str, how: str, parent_path: str = "") -> None:
        assert parent.children is not None
        node = parent.children.pop(name)
        self._drop_subtree(self._path_of(parent_path, name), node, how)

    def _strip_lower(self, path: str, node: Node, how: str) -> None:
        """Remove everything under `node` that lower layers wrote; keep this layer's work.

        A lower directory survives only if this layer wrote something inside it."""
        layer = self._layer
        self._parent_cache = None
        # Post-order without recursion: visit children before deciding on their directory.
        todo: list[tuple[str, Node, bool]] = [(path, node, False)]
        while todo:
            dir_path, directory, expanded = todo.pop()
            assert directory.children is not None
            if not expanded:
                todo.append((dir_path, directory, True))
                for name, child in list(directory.children.items()):
                    child_path = dir_path.rstrip("/") + "/" + name
                    if child.type is EntryType.DIR:
                        todo.append((child_path, self._own(directory, name), False))
                    elif child.layer < layer:
                        del directory.children[name]
                        self._drop_subtree(child_path, child, how)
                continue
            for name, child in list(directory.children.items()):
                if child.type is EntryType.DIR and child.layer < layer and not child.children:
                    del directory.children[name]
                    self._account_removed(dir_path.rstrip("/") + "/" + name, child, how)

    # -- applying a layer ---------------------------------------------------------------------

    def apply(self, index: int, entries: Iterable[LayerEntry]) -> LayerStats:
        self._layer = index
        self._parent_cache = None
        self._index = None
        stats = LayerStats(index=index)
        self.stats.append(stats)
        self._layer_paths = {}
        for entry in entries:
            stats.entries += 1
            marker = whiteout_target(entry.path) if "/.wh." in entry.path else None
            if marker is None:
                self._add(entry, stats)
                continue
            kind, target = marker
            if kind == "remove":
                stats.whiteouts += 1
                self._whiteout(target)
            elif kind == "opaque":
                stats.opaque_dirs += 1
                self._opaque(target)
        if self.dive is not None:
            self.dive.fold(self._layer_paths)
        return stats

    def _whiteout(self, path: str) -> None:
        parent_path, name = posixpath.split(path)
        parent = self._walk_dir(parent_path.split("/"), create=False)
        if self.dive is not None:
            self._layer_paths[path] = self._subtree_bytes(parent, name)
        if parent is None or parent.children is None or name not in parent.children:
            return
        node = parent.children[name]
        if node.type is EntryType.DIR:
            node = self._own(parent, name)
            self._strip_lower(path, node, "whiteout")
            if node.layer < self._layer and not node.children:
                del parent.children[name]
                self._account_removed(path, node, "whiteout")
        elif node.layer < self._layer:
            self._remove(parent, name, "whiteout", parent_path)

    def _opaque(self, path: str) -> None:
        node = self._walk_dir(path.split("/"), create=False)
        if node is not None:
            self._strip_lower(path, node, "opaque")

    def _subtree_bytes(self, parent: Node | None, name: str) -> int:
        if parent is None or parent.children is None or name not in parent.children:
            return 0
        node = parent.children[name]
        if node.type is not EntryType.DIR:
            return 0  # dive sizes only directory whiteouts (efficiency.go)
        total = 0
        todo = [node]
        while todo:
            current = todo.pop()
            if current.children:
                todo.extend(current.children.values())
            total += current.size
        return total

    def _add(self, entry: LayerEntry, stats: LayerStats) -> None:
        path = entry.path
        if path == "/":
            if entry.type is EntryType.DIR:
                self.root.set_meta(entry)
                self.root.layer = self._layer
            return
        parent_path, _, name = path.rpartition("/")
        cached = self._parent_cache
        if cached is not None and cached[0] == parent_path:
            parent = cached[1]
        else:
            parent = self._walk_dir(parent_path.split("/"), create=True)
            if parent is None:
                return  # symlink loop in the parent: reported, entry skipped
            self._parent_cache = (parent_path, parent)
        assert parent.children is not None
        existing = parent.children.get(name)
        etype = entry.type
        if etype is EntryType.FILE:
            stats.shipped_bytes += entry.size
            if self.dive is not None:
                self._layer_paths[path] = entry.size
        elif self.dive is not None:
            self._layer_paths.setdefault(path, 0)

        if etype is EntryType.DIR and existing is not None and existing.type is EntryType.DIR:
            existing = self._own(parent, name)
            if (existing.mode, existing.uid, existing.gid) != (entry.mode, entry.uid, entry.gid):
                stats.modified_entries += 1
            existing.set_meta(entry)
            existing.layer = self._layer
            return

        inode: Inode | None = None
        if etype is EntryType.HARDLINK:
            target = self._lookup(entry.link_target or "")
            if target is not None and target.type is not EntryType.DIR and (
                    target.owner is not self._token or (
                        target.inode is not None and target.inode.owner is not self._token)):
                # A new name for a shared file: every name of it must see one inode.
                self._unshare_all()
                target = self._lookup(entry.link_target or "")
                existing = parent.children.get(name)
            if target is existing and existing is not None:
                return  # a hard link to itself changes nothing
            if target is None or target.type is EntryType.DIR:
                self._finding("hardlink-missing", path,
                              f"hard link target {entry.link_target} is "
                              + ("a directory" if target is not None else "missing"))
                etype, inode = EntryType.FILE, Inode(0, 0, self._layer, None, None, self._token)
            elif target.type is EntryType.FILE:
                # one inode, one set of metadata: the link header's mode/owner are not applied
                # (umoci, GNU tar; tests/differential/test_regressions.py)
                etype, inode = EntryType.FILE, target.inode
                entry = _relinked(entry, target)
            else:  # link(2) to a symlink or device links that node itself
                etype = target.type
                entry = _relinked(entry, target)
                if target.inode is None:  # give it an identity the two names share
                    target.inode = Inode(0, 0, target.layer, None, None, self._token)
                    target.inode.links = 1
                inode = target.inode
        elif etype is EntryType.FILE:
            inode = Inode(entry.size, entry.stored_size, self._layer, entry.content,
                          entry.data_ref, self._token, entry.offset)

        if existing is not None:
            how = "duplicate-in-layer" if existing.layer == self._layer else "replaced"
            if existing.inode is not inode or existing.type is not etype:
                stats.modified_entries += 1
                stats.modified_bytes += inode.size if inode is not None else 0
            del parent.children[name]
            self._drop_subtree(path, existing, how, count_top=False)
        else:
            stats.added_entries += 1
            stats.added_bytes += inode.size if inode is not None else 0

        node = Node(entry, self._layer, etype, self._token)
        if inode is not None:
            node.inode = inode
            inode.links += 1
        parent.children[name] = node

    def _finding(self, kind: str, path: str, detail: str) -> None:
        self.findings.append(PathFinding(self._layer, kind, path, detail))

    # -- reading the result -------------------------------------------------------------------

    def iter_nodes(self) -> Iterator[tuple[str, Node]]:
        """Every path below the root, depth first, siblings sorted by the bytes of their name."""
        stack: list[tuple[str, Node]] = [("", self.root)]
        while stack:
            prefix, node = stack.pop()
            if node is not self.root:
                yield prefix, node
            if node.children:
                for name in sorted(node.children, key=_sort_key, reverse=True):
                    stack.append((prefix + "/" + name, node.children[name]))

    def resolve(self, path: str, visited: list[str] | None = None) -> tuple[str, Node] | None:
        """Follow symlinks (the final one too) inside the root; None if dangling or looping.
        `visited` gets every path whose node the walk looked up (the last one too when it is
        missing): what the answer depends on (catalog.twin)."""
        parts = [p for p in path.split("/") if p]
        resolved: list[str] = []
        hops = 0
        node = self.root
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                if resolved:
                    resolved.pop()
                node = self.get("/" + "/".join(resolved)) or self.root
                continue
            if node.children is None:
                return None
            child = node.children.get(name)
            if visited is not None:
                visited.append("/" + "/".join([*resolved, name]))
            if child is None:
                return None
            if child.type is EntryType.SYMLINK:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = child.link_target or ""
                if target.startswith("/"):
                    resolved, node = [], self.root
                parts = [p for p in target.split("/") if p] + parts
                continue
            resolved.append(name)
            node = child
        return "/" + "/".join(resolved), node

    def index(self) -> dict[str, Node]:
        """path -> node for the whole tree, in iter_nodes order; built once per state."""
        if self._index is None:
            self._index = dict(self.iter_nodes())
        return self._index

    def index_from(self, twin: Overlay, changed: Collection[str]) -> dict[str, Node]:
        """index(), built from the index of `twin`: the overlay this one was snapshot from,
        or its snapshot, each with layers of its own applied since. `changed` must hold every
        path at which the two trees may differ (diff.changed_paths: those a layer applied
        after the snapshot wrote on either side, and those one side lacks). Every other path
        holds the one node both share (copy on write), so only `changed` and the directories
        above them are looked up: ~3 ms for a one-package change of a 17k-path tree, against
        ~20 ms for the walk. Built in full when nodes stopped being shared (_unshare_all) or
        when `changed` is a large part of the tree."""
        if self._index is not None:
            return self._index
        theirs = twin._index
        if theirs is None or self._unshared or twin._unshared or len(changed) * 4 > len(theirs):
            return self.index()
        touched = set(changed)
        for path in changed:  # the directories above a change are copies (path copying)
            parent = path.rpartition("/")[0]
            while parent and parent not in touched:
                touched.add(parent)
                parent = parent.rpartition("/")[0]
        index = dict(theirs)
        added: dict[str, Node] = {}
        for path in touched:
            node = self._tree_get(path)
            if node is None:
                index.pop(path, None)
            elif path in index:
                index[path] = node  # in place: a path keeps its position in the order
            else:
                added[path] = node
        if len(added) > 256:  # each insertion moves the list: a walk is cheaper then
            return self.index()
        if added:  # spliced in where a walk would meet them
            order = list(index)
            items = iter(index.items())
            spliced: dict[str, Node] = {}
            start = 0
            for path in sorted(added, key=path_order_key):
                at = bisect.bisect(order, path_order_key(path), key=path_order_key)
                spliced.update(itertools.islice(items, at - start))
                spliced[path] = added[path]
                start = at
            spliced.update(items)
            index = spliced
        self._index = index
        return index

    def links_any(self, paths: Iterable[str]) -> bool:
        """Whether a regular file at one of `paths` has other names (hard links): what is
        derived path by path from a twin tree cannot count such a group (it counts once, at
        its first name in the order of the whole tree)."""
        for path in paths:
            node = self.get(path)
            if node is not None and node.inode is not None and node.inode.links > 1:
                return True
        return False

    def get(self, path: str) -> Node | None:
        """The node at an absolute path, without following a final symlink."""
        if path == "/":
            return self.root
        if self._index is not None:
            return self._index.get(path)
        return self._tree_get(path)

    def _tree_get(self, path: str) -> Node | None:
        node = self.root
        for name in path.strip("/").split("/"):
            if node.children is None:
                return None
            nxt = node.children.get(name)
            if nxt is None:
                return None
            node = nxt
        return node


def _copy_node(node: Node, owner: object) -> Node:
    """A copy of one node for `owner`: a directory's children dict is copied, the children
    themselves are still shared; so is the inode."""
    twin = Node.__new__(Node)
    twin.type, twin.mode, twin.uid, twin.gid = node.type, node.mode, node.uid, node.gid
    twin.mtime, twin.link_target, twin.layer = node.mtime, node.link_target, node.layer
    twin.devmajor, twin.devminor = node.devmajor, node.devminor
    twin.xattrs, twin.implicit = node.xattrs, node.implicit
    twin.children = dict(node.children) if node.children is not None else None
    twin.inode = node.inode
    twin.owner = owner
    return twin


def path_order_key(path: str) -> bytes:
    """The order of index() and iter_nodes (and of `ls`): depth first, names by their bytes.
    NUL for "/" sorts a name before its longer siblings' ("a/b" before "a-b"), as the tuple of
    names would (a tar name holds no NUL), at a tenth of what building that tuple costs."""
    return path.replace("/", "\0").encode("utf-8", "surrogateescape")


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _relinked(entry: LayerEntry, target: Node) -> LayerEntry:
    return LayerEntry(
        path=entry.path, type=target.type, size=0, stored_size=0, mode=target.mode,
        uid=target.uid, gid=target.gid, mtime=target.mtime, link_target=target.link_target,
        devmajor=target.devmajor, devminor=target.devminor,
    )
