"""imgscope's merged filesystem as comparable data, and the comparison with a real rootfs.

Documented exclusions (what is *not* compared, and why) live here, next to the code that
applies them, so a reader of a failure sees them in one place:

- The root directory itself: imgscope does not list "/" (docs/json-schema.md) and umoci
  unpacks into a directory it made.
- Symlink permission bits: Linux has no modes on symlinks (lstat always reports 0777, and
  umoci's restoreMetadata skips chmod on them), so the tar header's mode can't be observed.
- Directories no tar member names (implicit parents) are compared, though the spec says
  nothing about them: umoci makes them with MkdirAll(0777) under its umask (pinned to 022 in
  rootfs.unpack), containerd with 0755, both owned by root; imgscope says 0755 root:root.
- ids are only drawn from 0..2**32-2 (stacks.MAX_ID): larger ones can't exist on Linux.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from pathlib import Path

from .rootfs import FsNode

FIELDS = ("type", "size", "mode", "uid", "gid", "link_target", "dev")


def _value(node: object, name: str) -> object:
    value = getattr(node, name)
    return getattr(value, "value", value)  # enums (EntryType) compare as their string


def from_nodes(nodes: object) -> dict[str, FsNode]:
    """Convert (path, node) pairs from imgscope into FsNodes (hard-link key in `ino`)."""
    out: dict[str, FsNode] = {}
    unique = itertools.count()
    for path, node in nodes:  # type: ignore[attr-defined]
        kind = str(_value(node, "type"))
        inode = getattr(node, "inode", None)
        if kind == "dir":
            key: object = None
        elif inode is None:
            key = ("unique", next(unique))
        elif isinstance(inode, int):
            key = inode
        else:
            key = id(inode)  # an Inode object shared by hard links
        out[path] = FsNode(
            type=kind,
            size=int(_value(node, "size")) if kind == "file" else 0,
            mode=int(_value(node, "mode")) & 0o7777,
            uid=int(_value(node, "uid")),
            gid=int(_value(node, "gid")),
            link_target=_value(node, "link_target") if kind == "symlink" else None,  # type: ignore[arg-type]
            ino=key,
            dev=(int(node.devmajor), int(node.devminor)) if kind in ("char", "block") else None,
        )
    return out


def imgscope_fs(layout: Path) -> dict[str, FsNode]:
    """The merged filesystem imgscope computes for an OCI layout (in-process)."""
    from imgscope import api

    analysis = api.analyze(os.fspath(layout))
    return from_nodes(analysis.fs.iter_nodes())


def hardlink_groups(fs: dict[str, FsNode]) -> set[frozenset[str]]:
    """Sets of 2+ paths that share one inode."""
    groups: dict[object, set[str]] = defaultdict(set)
    for path, node in fs.items():
        if node.ino is not None:
            groups[node.ino].add(path)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def compare(reference: dict[str, FsNode], ours: dict[str, FsNode]) -> list[str]:
    """Every difference, as readable lines; empty means the filesystems agree."""
    problems: list[str] = []
    for path in sorted(reference.keys() - ours.keys()):
        problems.append(f"{path}: in the rootfs ({reference[path].type}), missing in imgscope")
    for path in sorted(ours.keys() - reference.keys()):
        problems.append(f"{path}: in imgscope ({ours[path].type}), not in the rootfs")
    for path in sorted(reference.keys() & ours.keys()):
        ref, got = reference[path], ours[path]
        for name in FIELDS:
            a, b = getattr(ref, name), getattr(got, name)
            if name == "mode":
                if ref.type == "symlink":
                    continue  # excluded: Linux symlinks have no mode of their own
                a, b = oct(a), oct(b)  # type: ignore[arg-type]
            if a != b:
                problems.append(f"{path}: {name} is {a!r} in the rootfs, {b!r} in imgscope")
    common = reference.keys() & ours.keys()
    ref_groups = {g & common for g in hardlink_groups(reference)}
    our_groups = {g & common for g in hardlink_groups(ours)}
    for group in sorted(ref_groups - our_groups, key=sorted):
        if len(group) > 1:
            problems.append(f"hard links {sorted(group)} share an inode in the rootfs only")
    for group in sorted(our_groups - ref_groups, key=sorted):
        if len(group) > 1:
            problems.append(f"hard links {sorted(group)} share an inode in imgscope only")
    return problems
