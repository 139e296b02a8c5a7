"""Facts about the final filesystem: sizes, biggest files and directories, risky modes."""

from __future__ import annotations

import heapq
from collections.abc import Collection
from dataclasses import dataclass, field

from imgscope.model import EntryType
from imgscope.overlay import Overlay, path_order_key

TOP = 20


@dataclass(frozen=True, slots=True)
class SizedPath:
    """A file or directory with its bytes (a file also with the layer that wrote it)."""

    path: str
    bytes: int
    layer: int | None = None


@dataclass(frozen=True, slots=True)
class ModePath:
    """An entry with risky permissions (setuid/setgid or world-writable), with its owner."""

    path: str
    mode: int
    uid: int
    gid: int
    type: str


@dataclass
class FsFacts:
    """Sizes of the final filesystem, its biggest files and directories, and risky-mode entries."""

    final_bytes: int = 0  # regular-file bytes, each hard-linked file once
    final_files: int = 0  # regular files (hard links to one file count once)
    final_entries: int = 0
    biggest_files: list[SizedPath] = field(default_factory=list)
    biggest_dirs: list[SizedPath] = field(default_factory=list)
    setuid: list[ModePath] = field(default_factory=list)  # setuid or setgid
    world_writable: list[ModePath] = field(default_factory=list)
    bytes_by_top_dir: dict[str, int] = field(default_factory=dict)


def collect_facts(fs: Overlay) -> FsFacts:
    return FactsTally.of(fs).facts()


class FactsTally:
    """What collect_facts counts path by path, before the rankings: kept so that the facts of
    a twin tree (diff's second image, a snapshot of this one with layers of its own) cost
    what its changed paths are (`derive`), not another pass over every path."""

    def __init__(self, files: dict[str, tuple[int, int]], direct: dict[str, list[int]],
                 setuid: list[ModePath], world_writable: list[ModePath], entries: int) -> None:
        self.files = files  # path -> (size, layer): regular files, a hard link at its first name
        self.direct = direct  # directory -> [bytes, files] of the files directly in it
        self.setuid = setuid
        self.world_writable = world_writable
        self.entries = entries

    @classmethod
    def of(cls, fs: Overlay) -> FactsTally:
        index = fs.index()  # built once and reused downstream
        seen_inodes: set[int] = set()
        files: dict[str, tuple[int, int]] = {}
        # Bytes of the files directly in each directory, summed up the tree afterwards: once
        # per directory rather than once per file and ancestor.
        direct: dict[str, list[int]] = {}
        setuid: list[ModePath] = []
        world_writable: list[ModePath] = []
        file_type, dir_type = EntryType.FILE, EntryType.DIR
        for path, node in index.items():  # _count, inlined: this loop visits every path
            etype = node.type
            if etype is file_type:
                inode = node.inode
                if inode is None:
                    continue
                if inode.links > 1:  # a hard-linked file counts once, at its first name
                    key = id(inode)
                    if key in seen_inodes:
                        continue
                    seen_inodes.add(key)
                size = inode.size
                files[path] = (size, node.layer)
                parent = path.rpartition("/")[0] or "/"
                counts = direct.get(parent)
                if counts is None:
                    direct[parent] = [size, 1]
                else:
                    counts[0] += size
                    counts[1] += 1
                mode = node.mode
                if mode & 0o6002:
                    if mode & 0o6000:
                        setuid.append(ModePath(path, mode, node.uid, node.gid, etype.value))
                    if mode & 0o002:
                        world_writable.append(ModePath(path, mode, node.uid, node.gid,
                                                       etype.value))
            elif etype is dir_type and _open_dir(node):
                _count(path, node, 0, files, direct, setuid, world_writable)
        return cls(files, direct, setuid, world_writable, len(index))

    def derive(self, origin: Overlay, twin: Overlay, changed: Collection[str]
               ) -> FactsTally | None:
        """The tally of `twin`, whose final tree differs from `origin`'s (this tally's) only
        at `changed` (diff.changed_paths): what this tally says of those paths is taken back,
        and what `twin` holds there is counted instead. None when one of them is a hard link
        on either side (a group is counted at its first name in the order of the whole
        tree)."""
        if origin.links_any(changed) or twin.links_any(changed):
            return None
        files = dict(self.files)
        direct = {d: list(counts) for d, counts in self.direct.items()}
        for path in changed:
            old = files.pop(path, None)
            if old is not None:
                counts = direct[path.rpartition("/")[0] or "/"]
                counts[0] -= old[0]
                counts[1] -= 1
        setuid = [m for m in self.setuid if m.path not in changed]
        world_writable = [m for m in self.world_writable if m.path not in changed]
        index = twin.index()
        file_type = EntryType.FILE
        for path in changed:
            node = index.get(path)
            if node is None:
                continue
            if node.type is file_type and node.inode is not None:
                _count(path, node, node.inode.size, files, direct, setuid, world_writable)
            elif node.type is EntryType.DIR and _open_dir(node):
                _count(path, node, 0, files, direct, setuid, world_writable)
        direct = {d: counts for d, counts in direct.items() if counts[1]}
        setuid.sort(key=lambda m: path_order_key(m.path))  # the order of the index, as of()
        world_writable.sort(key=lambda m: path_order_key(m.path))
        return FactsTally(files, direct, setuid, world_writable, len(index))

    def facts(self, rankings: bool = True) -> FsFacts:
        """The facts; without `rankings`, only the totals and the risky modes (no biggest
        files and directories, no bytes by top directory: `imgscope diff` shows none)."""
        facts = FsFacts(setuid=list(self.setuid), world_writable=list(self.world_writable))
        facts.final_entries = self.entries
        facts.final_files = len(self.files)
        facts.final_bytes = sum(size for size, _ in self.files.values())
        if not rankings:
            return facts
        dir_bytes: dict[str, int] = {}
        for directory, (size, _) in self.direct.items():
            if directory == "/":
                continue
            dir_bytes[directory] = dir_bytes.get(directory, 0) + size
            parent = directory.rpartition("/")[0]
            while parent:
                dir_bytes[parent] = dir_bytes.get(parent, 0) + size
                parent = parent.rpartition("/")[0]
        # (size, path) never ties, so the tuples compare without reaching the layer.
        facts.biggest_files = [SizedPath(p, s, layer) for s, p, layer in heapq.nlargest(
            TOP, ((s, p, layer) for p, (s, layer) in self.files.items()))]
        facts.biggest_dirs = [
            SizedPath(p, s)
            for p, s in heapq.nlargest(TOP, dir_bytes.items(), key=lambda item: (item[1], item[0]))
        ]
        facts.bytes_by_top_dir = {
            p: s for p, s in sorted(dir_bytes.items()) if p.count("/") == 1
        }
        return facts


def _open_dir(node) -> bool:
    """A world-writable directory without the sticky bit: anyone may replace its files."""
    return bool(node.mode & 0o002) and not node.mode & 0o1000


def _count(path: str, node, size: int, files: dict[str, tuple[int, int]],
           direct: dict[str, list[int]], setuid: list[ModePath],
           world_writable: list[ModePath]) -> None:
    """One path into a tally: a regular file (counted), or a world-writable directory."""
    mode = node.mode
    if node.type is EntryType.DIR:  # an _open_dir
        world_writable.append(ModePath(path, mode, node.uid, node.gid, node.type.value))
        return
    files[path] = (size, node.layer)
    counts = direct.setdefault(path.rpartition("/")[0] or "/", [0, 0])
    counts[0] += size
    counts[1] += 1
    if mode & 0o6002:
        if mode & 0o6000:
            setuid.append(ModePath(path, mode, node.uid, node.gid, node.type.value))
        if mode & 0o002:
            world_writable.append(ModePath(path, mode, node.uid, node.gid, node.type.value))
