"""Facts about the final filesystem: sizes, biggest files and directories, risky modes."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from imgscope.model import EntryType
from imgscope.overlay import Overlay

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
    facts = FsFacts()
    index = fs.index()  # built once and reused downstream
    seen_inodes: set[int] = set()
    # Bytes of the files directly in each directory, summed up the tree afterwards: once per
    # directory rather than once per file and ancestor.
    direct: dict[str, int] = {}
    files: list[tuple[int, str, int]] = []
    setuid, world_writable = facts.setuid, facts.world_writable
    file_type, dir_type = EntryType.FILE, EntryType.DIR
    for path, node in index.items():
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
            files.append((size, path, node.layer))
            parent = path.rpartition("/")[0]
            if parent:
                direct[parent] = direct.get(parent, 0) + size
            mode = node.mode
            if mode & 0o6002:
                if mode & 0o6000:
                    setuid.append(ModePath(path, mode, node.uid, node.gid, etype.value))
                if mode & 0o002:
                    world_writable.append(ModePath(path, mode, node.uid, node.gid, etype.value))
        elif etype is dir_type and node.mode & 0o002 and not node.mode & 0o1000:
            # A world-writable directory without the sticky bit lets anyone replace files.
            world_writable.append(ModePath(path, node.mode, node.uid, node.gid, etype.value))
    dir_bytes = dict(direct)
    for directory, size in direct.items():
        parent = directory.rpartition("/")[0]
        while parent:
            dir_bytes[parent] = dir_bytes.get(parent, 0) + size
            parent = parent.rpartition("/")[0]
    facts.final_entries = len(index)
    facts.final_files = len(files)
    facts.final_bytes = sum(size for size, _, _ in files)
    # (size, path) never ties, so the tuples compare without reaching the layer.
    facts.biggest_files = [SizedPath(p, s, layer) for s, p, layer in heapq.nlargest(TOP, files)]
    facts.biggest_dirs = [
        SizedPath(p, s)
        for p, s in heapq.nlargest(TOP, dir_bytes.items(), key=lambda item: (item[1], item[0]))
    ]
    facts.bytes_by_top_dir = {
        p: s for p, s in sorted(dir_bytes.items()) if p.count("/") == 1
    }
    return facts
