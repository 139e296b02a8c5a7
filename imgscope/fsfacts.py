"""Facts about the final filesystem: sizes, biggest files and directories, risky modes."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from imgscope.model import EntryType
from imgscope.overlay import Overlay

TOP = 20


@dataclass(frozen=True, slots=True)
class SizedPath:
    path: str
    bytes: int
    layer: int | None = None


@dataclass(frozen=True, slots=True)
class ModePath:
    path: str
    mode: int
    uid: int
    gid: int
    type: str


@dataclass
class FsFacts:
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
    seen_inodes: set[int] = set()
    dir_bytes: dict[str, int] = {}
    files: list[tuple[int, str, int]] = []
    for path, node in fs.index().items():  # the index is built once and reused downstream
        facts.final_entries += 1
        etype = node.type
        if etype is EntryType.FILE and node.inode is not None:
            key = id(node.inode)
            if key in seen_inodes:
                continue
            seen_inodes.add(key)
            size = node.inode.size
            facts.final_files += 1
            facts.final_bytes += size
            files.append((size, path, node.layer))
            parent = path.rpartition("/")[0]
            while parent:
                dir_bytes[parent] = dir_bytes.get(parent, 0) + size
                parent = parent.rpartition("/")[0]
            if node.mode & 0o6000:
                facts.setuid.append(ModePath(path, node.mode, node.uid, node.gid, etype.value))
            if node.mode & 0o002:
                facts.world_writable.append(
                    ModePath(path, node.mode, node.uid, node.gid, etype.value))
        elif etype is EntryType.DIR and node.mode & 0o002 and not node.mode & 0o1000:
            # A world-writable directory without the sticky bit lets anyone replace files.
            facts.world_writable.append(ModePath(path, node.mode, node.uid, node.gid, etype.value))
    facts.biggest_files = [
        SizedPath(p, s, layer)
        for s, p, layer in heapq.nlargest(TOP, files, key=lambda item: (item[0], item[1]))
    ]
    facts.biggest_dirs = [
        SizedPath(p, s)
        for p, s in heapq.nlargest(TOP, dir_bytes.items(), key=lambda item: (item[1], item[0]))
    ]
    facts.bytes_by_top_dir = {
        p: s for p, s in sorted(dir_bytes.items()) if p.count("/") == 1
    }
    return facts
