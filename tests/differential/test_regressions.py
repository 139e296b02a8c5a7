"""Discrepancies the differential run found, each as a small explicit layer stack.

Every test states the merged filesystem the OCI image-spec layer rules give
(https://github.com/opencontainers/image-spec/blob/main/layer.md) and checks imgscope against
it; where umoci is available the same stack is also unpacked and compared, so the expectation
is checked against a real unpacker too. The docstring says who was wrong and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .compare import imgscope_fs
from .harness import run_stack
from .oci import write_layout
from .rootfs import FsNode, umoci_unavailable
from .stacks import Entry, Stack, d, f, hl, opq, sl, stack, wh


def ours(s: Stack, tmp_path: Path) -> dict[str, FsNode]:
    return imgscope_fs(write_layout(tmp_path / "image", s.tar_blobs()))


def meta(node: FsNode) -> tuple[str, int, str, int, int, str | None]:
    """What a comparison checks of one path, mode in octal for readable failures."""
    return (node.type, node.size, oct(node.mode), node.uid, node.gid, node.link_target)


def agrees_with_umoci(s: Stack) -> None:
    if umoci_unavailable():
        return  # the explicit expectations above still ran
    out = run_stack(s)
    assert out.rejected is None, out.rejected
    assert out.problems == []


# -- found by the differential run, fixed in imgscope/overlay.py ------------------------------


def test_hardlink_has_its_targets_metadata(tmp_path: Path) -> None:
    """imgscope was wrong: a hard link's node took the mode and owner of its own tar header,
    so two names of one inode showed different owners, which no filesystem can hold.

    A hard link is a second name for an inode (layer.md "Hardlinks"); umoci and GNU tar only
    link(2) and apply no metadata from the link's header. containerd (and moby) differ: they
    lchown the new name to the link header's uid/gid, changing the shared inode (both names)
    and skip chmod. That class is excluded by construction: the generator draws link headers
    with their own owners, and umoci is the reference. Real tars write the same metadata in
    both headers, where all three agree.
    """
    s = stack([
        f("a", b"data", mode=0o4750, uid=7, gid=8),
        hl("b", "a", mode=0o644, uid=0, gid=0),
    ])
    fs = ours(s, tmp_path)
    assert meta(fs["/a"]) == ("file", 4, "0o4750", 7, 8, None)
    assert meta(fs["/b"]) == ("file", 4, "0o4750", 7, 8, None)
    assert fs["/a"].ino == fs["/b"].ino
    agrees_with_umoci(s)


def test_hardlink_to_replaced_path_links_the_new_inode(tmp_path: Path) -> None:
    """Same bug, seen through a type change: "e" was a symlink, then a file (mode 1777), and
    "d" links to that file: d is the file, with the file's mode, not the link header's 644."""
    s = stack([
        sl("d", "missing"),
        f("e", b"", mode=0o1777),
        hl("d", "e"),
    ])
    fs = ours(s, tmp_path)
    assert meta(fs["/d"]) == ("file", 0, "0o1777", 0, 0, None)
    assert fs["/d"].ino == fs["/e"].ino
    agrees_with_umoci(s)


def test_hardlink_to_symlink_shares_one_inode(tmp_path: Path) -> None:
    """imgscope was wrong: a hard link to a symlink became an unrelated copy of the symlink.

    link(2) (linkat without AT_SYMLINK_FOLLOW, Go's os.Link in umoci and containerd) makes a
    second name for the symlink's own inode, so both paths are one symlink: same target, same
    `inode`. layer.md: "Hardlinks are possible with all file types except directories".
    """
    s = stack([sl("s", "target"), hl("h", "s")], [hl("h2", "h")])
    fs = ours(s, tmp_path)
    for path in ("/s", "/h", "/h2"):
        assert (fs[path].type, fs[path].link_target) == ("symlink", "target")
    assert fs["/s"].ino == fs["/h"].ino == fs["/h2"].ino
    agrees_with_umoci(s)


def test_missing_component_cancelled_by_dotdot_is_not_created(tmp_path: Path) -> None:
    """imgscope was wrong: resolving the parent "l" (a symlink to "./x/../y") created a
    directory "/x" that nothing names, and, had "x" been a file, replaced it by a directory.

    Parents are resolved inside the root through symlinks as umoci (SecureJoin) and containerd
    (fs.RootPath) do: ".." after a component that does not exist (or is not a directory)
    cancels it lexically; nothing is created for it. Only "/y" (the parent the entry needs)
    is made.
    """
    s = stack([sl("l", "./x/../y")], [f("l/f", b"12")])
    fs = ours(s, tmp_path)
    assert sorted(fs) == ["/l", "/y", "/y/f"]
    assert meta(fs["/y/f"]) == ("file", 2, "0o644", 0, 0, None)
    assert meta(fs["/y"]) == ("dir", 0, "0o755", 0, 0, None)
    agrees_with_umoci(s)


def test_file_component_cancelled_by_dotdot_is_kept(tmp_path: Path) -> None:
    """The same rule where the cancelled component is a file: "x" stays a file."""
    s = stack([f("x", b"keep"), sl("l", "x/../y")], [f("l/f")])
    fs = ours(s, tmp_path)
    assert sorted(fs) == ["/l", "/x", "/y", "/y/f"]
    assert meta(fs["/x"]) == ("file", 4, "0o644", 0, 0, None)
    agrees_with_umoci(s)


def test_implicit_directory_in_setgid_directory_inherits_group(tmp_path: Path) -> None:
    """imgscope was wrong: a directory no tar member names was always 0755 root:root, but
    under a setgid directory mkdir(2) gives the new directory the parent's group and the
    setgid bit. umoci (MkdirAll) and containerd (mkparent: mkdir 0755) both create missing
    parents with mkdir, so a container sees 2755 with the parent's group. The spec says
    nothing of implicit directories; the kernel decides. Found by the long campaign
    (seed 555): "/d/b: mode is 0o2755 in the rootfs, 0o755 in imgscope".
    """
    s = stack([d("d", mode=0o2770, gid=1000)], [f("d/b/c/f")])
    fs = ours(s, tmp_path)
    assert meta(fs["/d/b"]) == ("dir", 0, "0o2755", 0, 1000, None)
    assert meta(fs["/d/b/c"]) == ("dir", 0, "0o2755", 0, 1000, None)
    assert meta(fs["/d/b/c/f"]) == ("file", 1, "0o644", 0, 0, None)  # its header says so
    agrees_with_umoci(s)


# -- spec rules the run exercises most; kept explicit so a regression names the rule ---------


def test_whiteout_later_in_the_same_layer_spares_that_layers_file(tmp_path: Path) -> None:
    """layer.md: "Whiteout files MUST only apply to resources in lower/parent layers. Files
    that are present in the same layer as a whiteout file can only be hidden by whiteout files
    in subsequent layers." The lower "a" goes, the upper "a" (same layer, before the whiteout)
    stays."""
    s = stack([f("a", b"lower", uid=1)], [f("a", b"up"), wh("a")])
    fs = ours(s, tmp_path)
    assert meta(fs["/a"]) == ("file", 2, "0o644", 0, 0, None)
    agrees_with_umoci(s)


def test_opaque_marker_after_siblings_hides_only_lower_children(tmp_path: Path) -> None:
    """layer.md: the opaque whiteout "is applied first ... regardless of the ordering in which
    the whiteout file was encountered": the spec's own example, marker last in the tar."""
    s = stack(
        [d("a"), d("a/b"), d("a/b/c"), f("a/b/c/bar")],
        [d("a"), d("a/b"), d("a/b/c"), f("a/b/c/foo"), opq("a")],
    )
    fs = ours(s, tmp_path)
    assert sorted(fs) == ["/a", "/a/b", "/a/b/c", "/a/b/c/foo"]
    agrees_with_umoci(s)


def test_whiteout_of_directory_keeps_children_this_layer_adds(tmp_path: Path) -> None:
    """A whiteout of a lower directory drops the lower subtree; a child the same layer writes
    under that name survives (whiteouts never touch their own layer), so the directory itself
    stays, with its lower metadata since this layer did not name it."""
    s = stack([d("d", mode=0o700, uid=5), f("d/old")], [f("d/new", b"n"), wh("d")])
    fs = ours(s, tmp_path)
    assert sorted(fs) == ["/d", "/d/new"]
    assert meta(fs["/d"]) == ("dir", 0, "0o700", 5, 0, None)
    agrees_with_umoci(s)


def test_parent_symlink_is_followed_inside_the_root(tmp_path: Path) -> None:
    """An entry under a symlinked directory lands in the symlink's target, resolved inside the
    root (an absolute target is relative to the image root, not the host's)."""
    s = stack([d("usr"), d("usr/lib"), sl("lib", "/usr/lib")], [f("lib/libc.so", b"elf")])
    fs = ours(s, tmp_path)
    assert "/lib/libc.so" not in fs
    assert meta(fs["/usr/lib/libc.so"]) == ("file", 3, "0o644", 0, 0, None)
    assert meta(fs["/lib"])[0] == "symlink"
    agrees_with_umoci(s)


@pytest.mark.parametrize("tar_format", ["pax", "gnu"])
def test_long_names_and_big_ids(tmp_path: Path, tar_format: str) -> None:
    """Names over 100 bytes and ids over 2097151 (7 octal digits) need PAX records or GNU
    extensions (long-name members, base-256 numbers); both must read the same."""
    name = "dir/" + "n" * 150
    s = stack([f(name, b"xyz", uid=2**31, gid=2**32 - 2, mode=0o2755),
               sl("s" * 120, "t" * 130)], tar_format=tar_format)
    fs = ours(s, tmp_path)
    assert meta(fs["/" + name]) == ("file", 3, "0o2755", 2**31, 2**32 - 2, None)
    assert fs["/" + "s" * 120].link_target == "t" * 130
    agrees_with_umoci(s)


# -- classes where implementations legitimately differ: documented, excluded from the run ----


def test_whiteout_with_empty_name_is_ignored(tmp_path: Path) -> None:
    """`a/.wh.` names no path (layer.md: ".wh." plus the basename of the path to delete, and a
    basename is never empty). Implementations disagree on such a layer: containerd joins the
    empty name to the directory and deletes `a` itself; umoci deletes `a` and then fails
    (it restores the parent's metadata on a path that is gone), so it rejects the image.
    imgscope ignores the marker. The generator never writes it; this pins imgscope's choice.
    """
    s = stack([d("a"), f("a/x")], [Entry("whiteout", "a/")])
    assert [e.tar_name() for e in s.layers[1].entries] == ["a/.wh."]
    fs = ours(s, tmp_path)
    assert sorted(fs) == ["/a", "/a/x"]
    if not umoci_unavailable():
        assert run_stack(s).rejected is not None


def test_devices_keep_their_numbers(tmp_path: Path) -> None:
    """Character and block devices (mknod as root) with Linux's widest numbers."""
    s = stack([d("dev"), Entry("char", "dev/null", mode=0o666, dev=(1, 3)),
               Entry("block", "dev/big", mode=0o660, gid=6, dev=(4095, 1048575))])
    fs = ours(s, tmp_path)
    assert (fs["/dev/null"].type, fs["/dev/null"].dev) == ("char", (1, 3))
    assert (fs["/dev/big"].type, fs["/dev/big"].dev, fs["/dev/big"].gid) == ("block",
                                                                            (4095, 1048575), 6)
    agrees_with_umoci(s)


def test_ls_json_shows_shared_inodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same identity reaches `imgscope ls --format json` (docs/json-schema.md: `inode` is
    shared by all paths that are hard links of one file, unique otherwise)."""
    import json

    from imgscope import cli

    s = stack([f("a", b"data", mode=0o750), hl("b", "a"), sl("s", "a"), hl("t", "s"), f("u")])
    layout = write_layout(tmp_path / "image", s.tar_blobs())
    assert cli.main(["ls", str(layout), "--format", "json"]) == 0
    entries = {e["path"]: e for e in json.loads(capsys.readouterr().out)["entries"]}
    assert entries["/a"]["inode"] == entries["/b"]["inode"]
    assert entries["/b"]["mode"] == 0o750
    assert entries["/s"]["inode"] == entries["/t"]["inode"] != entries["/a"]["inode"]
    assert entries["/t"]["type"] == "symlink" and entries["/t"]["link_target"] == "a"
    assert len({entries[p]["inode"] for p in ("/a", "/s", "/u")}) == 3
