"""Overlay.snapshot: a copy of a replayed state behaves exactly like the state it was taken of.

`imgscope diff` starts the second image from a snapshot of the first after their shared layers,
instead of replaying those layers again; any difference would show in the diff."""

from __future__ import annotations

import io

import imgscope_fixtures_build as fb

from imgscope.archive.layer import Blob, LayerReader
from imgscope.archive.streams import reader_chunks
from imgscope.overlay import Overlay

BASE = [
    fb.directory("etc"), fb.file("etc/keep", b"keep\n"), fb.file("etc/gone", b"gone" * 50),
    fb.file("etc/big", fb.det_bytes("big", 5000)), fb.hardlink("etc/big-link", "etc/big"),
    fb.directory("opt/app"), fb.file("opt/app/a", b"a" * 300), fb.file("opt/app/b", b"b" * 70),
    fb.symlink("lib", "usr/lib"), fb.directory("usr/lib"), fb.file("usr/lib/libx.so", b"x" * 99),
    fb.file("tmp/setuid", b"s", mode=0o4755),
]
MIDDLE = [
    fb.file("etc/keep", b"kept again\n"), fb.whiteout("etc/gone"), fb.opaque("opt/app"),
    fb.file("opt/app/c", b"c" * 10), fb.file("lib/liby.so", b"y" * 20),
]
TOP = [  # applied after the snapshot: it must touch what the snapshot shares with its origin
    fb.file("etc/big", b"rewritten"), fb.whiteout("etc/big-link"), fb.whiteout("opt"),
    fb.file("etc/keep", b"third\n"), fb.file("usr/lib/libx.so", b"z" * 99),
]


def _apply(overlay: Overlay, index: int, members) -> None:
    data = fb.layer_tar(members)
    stream = io.BytesIO(data)
    head = stream.read(8)
    blob = Blob(name=f"layer {index}", size=0, chunks=reader_chunks(stream.read), head=head)
    overlay.apply(index, LayerReader(blob, index, None, False).entries())


def _state(overlay: Overlay) -> tuple:
    nodes = [(path, n.type, n.mode, n.uid, n.gid, n.mtime, n.link_target, n.layer, n.size,
              n.inode.links if n.inode else None, n.inode.layer if n.inode else None, n.implicit)
             for path, n in overlay.iter_nodes()]
    score = overlay.dive.score() if overlay.dive else None
    return nodes, list(overlay.stats), list(overlay.wasted), list(overlay.findings), score


def _replayed(*layers) -> Overlay:
    overlay = Overlay()
    for index, members in enumerate(layers):
        _apply(overlay, index, members)
    return overlay


def test_a_snapshot_continues_exactly_like_the_overlay_it_copies() -> None:
    replayed = _replayed(BASE, MIDDLE, TOP)
    origin = _replayed(BASE, MIDDLE)
    before = _state(origin)
    copy = origin.snapshot()
    assert _state(copy) == before
    _apply(copy, 2, TOP)
    assert _state(copy) == _state(replayed)
    # the origin is untouched by what was applied to its copy, and the reverse
    assert _state(origin) == before
    assert origin.get("/etc/big").size == 5000 and copy.get("/etc/big").size == len(b"rewritten")
    _apply(origin, 2, [fb.file("etc/new", b"n")])
    assert copy.get("/etc/new") is None and _state(copy) == _state(replayed)
    # the hard link still shares one inode in the copy (bytes counted once)
    twin = origin.snapshot()
    assert twin.get("/etc/big").inode is twin.get("/etc/big-link").inode
    assert sum(w.size for w in copy.wasted) == sum(w.size for w in replayed.wasted) > 0


# Layers applied after a snapshot, each touching shared state another way: copy-on-write must
# give exactly what a full replay gives, and leave the other overlay as it was.
AFTER = {
    "a name of a shared hard-link group removed": [fb.whiteout("etc/big-link")],
    "a shared hard-linked file replaced": [fb.file("etc/big", b"new")],
    "a new hard link to a shared file": [fb.hardlink("etc/third-link", "etc/big")],
    "a new hard link to a shared single-name file": [fb.hardlink("tmp/s2", "tmp/setuid")],
    "a hard link to a shared symlink": [fb.hardlink("lib2", "lib")],
    "a shared directory whited out": [fb.whiteout("usr")],
    "a shared directory made opaque": [fb.opaque("etc"), fb.file("etc/only", b"o")],
    "a shared directory re-declared with another mode": [fb.directory("etc", mode=0o700)],
    "a shared file replaced by a directory": [fb.file("etc/keep/inner", b"i")],
    "a file added through a shared symlink": [fb.file("lib/libz.so", b"z" * 7)],
    "a deep new tree": [fb.file("opt/app/sub/deeper/f", b"f" * 3)],
}


def test_copy_on_write_matches_a_full_replay_for_every_kind_of_change() -> None:
    for label, members in AFTER.items():
        replayed = _replayed(BASE, MIDDLE, members)
        origin = _replayed(BASE, MIDDLE)
        before = _state(origin)
        copy = origin.snapshot()
        _apply(copy, 2, members)
        assert _state(copy) == _state(replayed), label
        assert _state(origin) == before, label
        # and the other way round: the origin goes on, the copy keeps its own state
        after_copy = _state(copy)
        _apply(origin, 2, members)
        assert _state(origin) == _state(replayed), label
        assert _state(copy) == after_copy, label


def test_a_snapshot_shares_what_no_layer_changed() -> None:
    origin = _replayed(BASE)
    copy = origin.snapshot()
    _apply(copy, 1, [fb.file("etc/added", b"x")])
    # untouched subtrees are the same objects; the path to the change was copied
    assert copy.get("/opt/app") is origin.get("/opt/app")
    assert copy.get("/etc/keep") is origin.get("/etc/keep")
    assert copy.get("/etc") is not origin.get("/etc")
    assert origin.get("/etc/added") is None


def test_path_order_key_sorts_as_the_walk_does() -> None:
    """index_from splices paths in by path_order_key: it must give iter_nodes' order, names
    compared by their bytes (a name that a longer sibling starts with first, non-ASCII and
    undecodable names by their bytes)."""
    from imgscope.overlay import path_order_key

    names = ["a", "a-b", "a.b", "a0", "ab", "B", "é", "z", "\udcff", "\udc80x"]
    members = [fb.directory("d")] + [fb.directory(f"d/{n}") for n in names] \
        + [fb.file(f"d/{n}/f", b"x") for n in names] + [fb.file(f"d/{n}-f", b"y") for n in names]
    overlay = Overlay()
    _apply(overlay, 0, members)
    walked = [path for path, _ in overlay.iter_nodes()]
    assert len(walked) == 1 + 3 * len(names)
    assert sorted(walked, key=path_order_key) == walked
    assert walked.index("/d/a/f") < walked.index("/d/a-b") < walked.index("/d/\udcff")


def test_index_from_walks_a_tree_that_stopped_sharing_its_nodes() -> None:
    """Removing one name of a hard-link group the snapshot shares copies every node
    (_unshare_all): the twin's index can no longer stand in for the unchanged paths, and
    index_from walks the tree instead, whatever `changed` says."""
    origin = _replayed(BASE, MIDDLE)
    origin.index()
    copy = origin.snapshot()
    _apply(copy, 2, [fb.whiteout("etc/big-link")])
    assert copy.get("/etc/keep") is not origin.get("/etc/keep")  # nothing is shared now
    built = copy.index_from(origin, {"/etc/big-link"})
    assert list(built.items()) == list(copy.iter_nodes())
