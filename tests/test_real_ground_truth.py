"""`imgscope ls --format json` against the filesystem umoci unpacks from the same real image.

The images are built from tests/realimages/*/Dockerfile by buildah (see tests/realimages.py);
umoci applies the layers with real overlay/whiteout semantics onto disk, which is the ground
truth a container runtime would see. Every format a user saves an image in (docker-archive,
OCI gzip, OCI zstd) must give the same merged filesystem.

Known ways an on-disk rootfs cannot mirror the tar headers, and so are not compared:
- `/` itself: umoci creates the rootfs directory; the schema does not list `/`.
- symlink permission bits: Linux has no lchmod, every symlink is 0777 on disk.
- symlink size: on disk it is the target's length, the schema says 0.
- mtime: umoci sets it, but directory mtimes change as children are unpacked into them.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import stat
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realimages  # noqa: E402

pytestmark = pytest.mark.realimage

REPO = Path(__file__).resolve().parent.parent
FIELDS = ("type", "size", "mode", "uid", "gid", "link_target", "dev")
Entries = dict[bytes, dict[str, Any]]

_TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def rootfs_entries(root: Path) -> Entries:
    """Every path under ROOT (not ROOT itself) as the comparable fields, keyed by path bytes."""
    out: Entries = {}
    rootb = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(rootb):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            kind = _TYPES[stat.S_IFMT(st.st_mode)]
            is_dev = kind in ("char", "block")
            out[full[len(rootb) :]] = {
                "type": kind,
                "size": st.st_size if kind == "file" else 0,
                "mode": None if kind == "symlink" else st.st_mode & 0o7777,
                "uid": st.st_uid,
                "gid": st.st_gid,
                "link_target": os.readlink(full) if kind == "symlink" else None,
                "dev": (os.major(st.st_rdev), os.minor(st.st_rdev)) if is_dev else (0, 0),
                # Directories cannot be hard linked; their inode says nothing about identity.
                "ino": (st.st_dev, st.st_ino) if kind != "dir" else ("dir", full),
            }
    return out


def _raw(entry: dict[str, Any], key: str) -> bytes | None:
    """The exact bytes of a path or link target: the b64 twin when the text was escaped."""
    if entry.get(f"{key}_b64") is not None:
        return base64.b64decode(entry[f"{key}_b64"])
    value = entry.get(key)
    return None if value is None else value.encode("utf-8")


def json_entries(doc: dict[str, Any]) -> Entries:
    """`imgscope ls --format json` entries in the shape of rootfs_entries()."""
    out: Entries = {}
    for e in doc["entries"]:
        path = _raw(e, "path")
        assert path is not None and path not in out, f"missing or duplicate path {e!r}"
        out[path] = {
            "type": e["type"],
            "size": e["size"],
            "mode": None if e["type"] == "symlink" else e["mode"],
            "uid": e["uid"],
            "gid": e["gid"],
            "link_target": _raw(e, "link_target"),
            "dev": (e.get("devmajor", 0), e.get("devminor", 0)),
            "ino": e["inode"],
        }
    return out


def _links(entries: Entries) -> dict[bytes, frozenset[bytes]]:
    """path -> the other paths sharing its inode, for paths that have any."""
    groups: dict[Any, set[bytes]] = defaultdict(set)
    for path, e in entries.items():
        groups[e["ino"]].add(path)
    return {p: frozenset(g - {p}) for g in groups.values() if len(g) > 1 for p in g}


def compare(truth: Entries, got: Entries, limit: int = 40) -> list[str]:
    """Differences of GOT from TRUTH, one line each, the first LIMIT of them."""
    diffs: list[str] = []
    for path in sorted(truth.keys() - got.keys()):
        diffs.append(f"missing {path!r} ({truth[path]['type']})")
    for path in sorted(got.keys() - truth.keys()):
        diffs.append(f"extra   {path!r} ({got[path]['type']})")
    for path in sorted(truth.keys() & got.keys()):
        t, g = truth[path], got[path]
        bad = [f"{f}: want {t[f]!r} got {g[f]!r}" for f in FIELDS if t[f] != g[f]]
        if bad:
            diffs.append(f"differ  {path!r}: " + "; ".join(bad))
    tl, gl = _links(truth), _links(got)
    for path in sorted((tl.keys() | gl.keys()) & truth.keys() & got.keys()):
        want, have = tl.get(path, frozenset()), gl.get(path, frozenset())
        if want != have:
            diffs.append(f"inode   {path!r}: hard links want {sorted(want)} got {sorted(have)}")
    if len(diffs) > limit:
        diffs = diffs[:limit] + [f"... and {len(diffs) - limit} more"]
    return diffs


def run_ls(image: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "imgscope", "ls", str(image), "--format", "json"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, f"imgscope ls {image} exited {proc.returncode}: {proc.stderr!r}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def tools() -> None:
    reason = realimages.have_tools()
    if reason:
        print(f"real-image tests skipped: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def truth_cache() -> dict[str, Entries]:
    return {}


def truth_for(name: str, cache: dict[str, Entries]) -> Entries:
    if name not in cache:
        cache[name] = rootfs_entries(realimages.umoci_rootfs(name))
    return cache[name]


def test_comparer_catches_each_kind_of_difference(tools: None, truth_cache: dict) -> None:
    """The comparer itself, on the umoci rootfs: silent on itself, loud on every change."""
    truth = truth_for("whiteouts", truth_cache)
    assert compare(truth, truth) == []
    got = {p: dict(e) for p, e in truth.items()}
    del got[b"/data/keep/a.txt"]
    got[b"/data/ghost"] = {**truth[b"/data/owned"], "ino": "ghost"}
    got[b"/data/suid"]["mode"] = 0o755
    got[b"/data/owned"]["uid"] = 0
    got[b"/data/link.txt"]["link_target"] = b"other.txt"
    got[b"/data/zeros.bin"]["type"] = "file"
    got[b"/data/dangling"]["size"] = 18
    got[b"/data/pair2"]["ino"] = "split"
    assert compare(truth, got) == [
        "missing b'/data/keep/a.txt' (file)",
        "extra   b'/data/ghost' (file)",
        "differ  b'/data/dangling': size: want 17 got 18",
        "differ  b'/data/link.txt': link_target: want b'target.txt' got b'other.txt'",
        "differ  b'/data/owned': uid: want 1000 got 0",
        "differ  b'/data/suid': mode: want 2541 got 493",
        "differ  b'/data/zeros.bin': type: want 'symlink' got 'file'",
        "inode   b'/data/keep/pair3': hard links want [b'/data/pair1', b'/data/pair2'] got"
        " [b'/data/pair1']",
        "inode   b'/data/pair1': hard links want [b'/data/keep/pair3', b'/data/pair2'] got"
        " [b'/data/keep/pair3']",
        "inode   b'/data/pair2': hard links want [b'/data/keep/pair3', b'/data/pair1'] got []",
    ]


def test_ground_truth_is_the_built_image(tools: None, truth_cache: dict) -> None:
    """What the whiteouts Dockerfile did, as umoci unpacked it: guards the ground truth."""
    t = truth_for("whiteouts", truth_cache)
    for gone in (
        b"/data/gone",
        b"/data/single.txt",
        b"/data/keep/single2.txt",
        b"/data/reborn/old",
        b"/data/dir2file/inner.txt",
    ):
        assert gone not in t, gone
    assert t[b"/data/suid"]["mode"] == 0o4755
    assert t[b"/data/sgid"]["mode"] == 0o2711
    assert (t[b"/data/sticky"]["type"], t[b"/data/sticky"]["mode"]) == ("dir", 0o1777)
    assert _links(t)[b"/data/target.txt"] == {b"/data/hardlink.txt"}
    assert _links(t)[b"/data/pair1"] == {b"/data/pair2", b"/data/keep/pair3"}
    assert b"/data/keep/a.txt" not in _links(t)  # linked in a later layer: copied, not linked


@pytest.mark.parametrize("fmt", realimages.FORMATS)
@pytest.mark.parametrize("name", ["whiteouts", "buildtools"])
def test_ls_matches_umoci(tools: None, truth_cache: dict, name: str, fmt: str) -> None:
    image = realimages.ensure_image(name)[fmt]
    doc = run_ls(image)
    assert (doc["schema"], doc["schema_version"], doc["layer"]) == ("imgscope/ls", 1, None)
    diffs = compare(truth_for(name, truth_cache), json_entries(doc))
    paths = [_raw(e, "path") or b"" for e in doc["entries"]]
    # The contract orders by path bytes ("/a.h" before "/a/b"), not by tree walk.
    unsorted = [(a, b) for a, b in itertools.pairwise(paths) if a > b]
    if unsorted:
        diffs.append(
            f"order   {len(unsorted)} entries out of path-byte order, first: "
            f"{unsorted[0][0]!r} before {unsorted[0][1]!r}"
        )
    assert not diffs, f"{name} {fmt}: imgscope ls differs from umoci:\n" + "\n".join(diffs)


def _by_path(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in doc["entries"]}


@pytest.mark.parametrize("fmt", realimages.FORMATS)
def test_whiteouts_image_facts(tools: None, fmt: str) -> None:
    """Concrete results of each Dockerfile step, including which layer wrote what."""
    e = _by_path(run_ls(realimages.ensure_image("whiteouts")[fmt]))
    for gone in (
        "/data/gone",
        "/data/gone/sub/b.txt",
        "/data/single.txt",
        "/data/keep/single2.txt",
        "/data/reborn/old",
        "/data/dir2file/inner.txt",
    ):
        assert gone not in e, gone
    assert (e["/data/suid"]["mode"], e["/data/suid"]["size"]) == (0o4755, 35664)
    assert e["/data/sgid"]["mode"] == 0o2711
    assert (e["/data/sticky"]["type"], e["/data/sticky"]["mode"]) == ("dir", 0o1777)
    assert e["/data/fifo"]["type"] == "fifo"
    assert e["/data/café.txt"]["size"] == 0 and "path_b64" not in e["/data/café.txt"]
    assert e["/data/space name.txt"]["layer"] == 1
    # Hard links: one pair made in one layer, a triple in layer 5, a cross-layer link copied.
    assert e["/data/target.txt"]["inode"] == e["/data/hardlink.txt"]["inode"]
    assert e["/data/target.txt"]["size"] == len(b"target-content\n")
    trio = {e[p]["inode"] for p in ("/data/pair1", "/data/pair2", "/data/keep/pair3")}
    assert len(trio) == 1 and e["/data/pair2"]["size"] == 5
    assert e["/data/keep/a-link.txt"]["inode"] != e["/data/keep/a.txt"]["inode"]
    assert (e["/data/keep/a.txt"]["layer"], e["/data/keep/a-link.txt"]["layer"]) == (1, 5)
    # Replacements: dir -> file, file -> dir, recreated dir, symlink <-> file.
    assert (e["/data/dir2file"]["type"], e["/data/dir2file"]["size"]) == ("file", 11)
    assert (e["/data/dir2file"]["layer"], e["/data/file2dir"]["type"]) == (3, "dir")
    assert (e["/data/file2dir/new.txt"]["size"], e["/data/reborn/fresh/f.txt"]["size"]) == (4, 6)
    assert (e["/data/dangling"]["type"], e["/data/dangling"]["size"]) == ("file", 17)
    assert e["/data/dangling"]["link_target"] is None and e["/data/dangling"]["layer"] == 6
    z = e["/data/zeros.bin"]
    assert (z["type"], z["size"], z["link_target"], z["layer"]) == ("symlink", 0, "/dev/null", 6)
    assert e["/data/link.txt"]["link_target"] == "target.txt"
    assert e["/data/abslink"]["link_target"] == "/data/keep"
    # Metadata-only change in layer 4: the layer that last wrote the path is 4.
    m = e["/data/modechange"]
    assert (m["mode"], m["uid"], m["gid"], m["size"], m["layer"]) == (0o600, 1000, 1001, 5, 4)
    assert (e["/data/keep"]["mode"], e["/data/keep"]["layer"]) == (0o700, 5)
    assert (e["/data/owned"]["uid"], e["/data/owned"]["gid"]) == (1000, 1001)
    assert (e["/dev/null"]["type"], e["/dev/null"]["devmajor"], e["/dev/null"]["devminor"]) == (
        "char",
        1,
        3,
    )


@pytest.mark.parametrize("fmt", realimages.FORMATS)
def test_buildtools_image_facts(tools: None, fmt: str) -> None:
    e = _by_path(run_ls(realimages.ensure_image("buildtools")[fmt]))
    src = realimages.HERE / "buildtools" / "hello.c"
    assert (e["/src/hello.c"]["size"], e["/src/hello.c"]["layer"]) == (src.stat().st_size, 2)
    assert (e["/usr/local/bin/hello"]["type"], e["/usr/local/bin/hello"]["layer"]) == ("file", 3)
    assert e["/usr/local/bin/hello"]["mode"] == 0o755
    assert "/tmp/scratch.bin" not in e and "/tmp/scratch.txt" not in e
    assert e["/usr/bin/gcc"]["type"] == "symlink" and e["/usr/bin/gcc"]["layer"] == 1
    assert e["/usr/bin/gcc"]["link_target"] == "gcc-12"
    assert e["/usr/bin/sh"]["link_target"] == "dash" and e["/usr/bin/sh"]["layer"] == 0
    assert (e["/bin"]["type"], e["/bin"]["link_target"]) == ("symlink", "usr/bin")
