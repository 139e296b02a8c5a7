"""`imgscope diff` on real images built with buildah, against ground truth found without
imgscope: the package tools run inside each image, `stat` inside the container, and the two
root filesystems umoci unpacks (walked and hashed here).

difftest-b is difftest-a plus `apt-get install jq` and `COPY app.txt /app/app.txt`
(tests/realimages/difftest-*/Dockerfile); buildtools-v2 is buildtools plus one RUN.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import realimages

pytestmark = pytest.mark.realimage

ROOT = Path(__file__).resolve().parents[1]
APP_TXT = ROOT / "tests/realimages/difftest-b/app.txt"
# What an unpacked rootfs can show of a change (not xattrs, not which name of a hard-link
# group comes first, not a symlink's mode: Linux has no lchmod).
COMPARABLE = {"type", "content", "size", "mode", "uid", "gid", "link_target", "device", "links"}


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    reason = realimages.have_tools()
    if reason:
        pytest.skip(reason)


def diff_json(old: Path, new: Path, *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "imgscope", "diff", str(old), str(new), "--format", "json",
         *extra],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def dpkg_names(name: str) -> set[str]:
    listing = realimages.run_in_image(name, ["dpkg-query", "-W", "-f", "${Package}\n"])
    return {line for line in listing.splitlines() if line}


def package_bytes(name: str, package: str) -> int:
    """Regular-file bytes of `dpkg -L PACKAGE` as `stat` sees them inside the container,
    each inode once (the kernel resolves usr-merge symlinked parents)."""
    out = realimages.run_in_image(
        name, ["sh", "-c", f"dpkg -L {package} | xargs -d '\\n' stat -c '%s|%i|%F'"])
    seen: set[str] = set()
    total = 0
    for line in out.splitlines():
        size, inode, kind = line.split("|", 2)
        if kind.startswith("regular") and inode not in seen:
            seen.add(inode)
            total += int(size)
    return total


@pytest.mark.parametrize("name", ["difftest-b", "pyapp"])
def test_same_image_saved_two_ways_has_no_difference(name: str) -> None:
    image = realimages.ensure_image(name)
    doc = diff_json(image["docker"], image["zstd"], "--exit-code")
    assert doc["differs"] is False
    assert doc["files"]["entries"] == [] and doc["packages"] == [] and doc["config"] == []
    assert {layer["status"] for layer in doc["layers"]} == {"shared"}
    counts = doc["summary"]["counts"]
    assert counts["packages"]["unchanged"] > 50
    # every layer is shared: walked once (the plain docker-archive copy); by default the zstd
    # copy is known by its diff_id and not read
    assert doc["read"]["replayed_layers"] == doc["old"]["layers"] == doc["new"]["layers"]
    assert doc["read"]["walked"] == "old"
    assert doc["read"]["replayed_copies"] == "by-diff-id"
    assert doc["read"]["replayed_hashed_bytes"] == 0
    assert doc["summary"]["breakdown"]["total"] == 0
    assert doc["summary"]["breakdown"]["pull_bytes"] == 0
    # --verify-copies inflates and hashes every zstd copy too: the same image, proven
    checked = diff_json(image["docker"], image["zstd"], "--exit-code", "--verify-copies")
    assert checked["read"]["replayed_copies"] == "read" and checked["read"]["replayed_verified"]
    assert checked["read"]["replayed_hashed_bytes"] == sum(
        layer["new"]["compressed_bytes"] for layer in checked["layers"]) > 0
    assert checked["differs"] is False and checked["files"] == doc["files"]


@pytest.fixture(scope="module")
def ab() -> dict[str, Any]:
    a, b = realimages.ensure_image("difftest-a"), realimages.ensure_image("difftest-b")
    return diff_json(a["docker"], b["zstd"])  # a different input format on each side


def test_one_apt_get_install_names_exactly_its_packages(ab: dict[str, Any]) -> None:
    expected = dpkg_names("difftest-b") - dpkg_names("difftest-a")
    assert "jq" in expected and dpkg_names("difftest-a") <= dpkg_names("difftest-b")
    assert {p["status"] for p in ab["packages"]} == {"added"}
    assert {p["name"] for p in ab["packages"]} == expected
    for item in ab["packages"]:
        assert item["new_bytes"] == item["bytes_delta"] == package_bytes("difftest-b",
                                                                         item["name"])
    breakdown = {entry["package"].split("/", 1)[1].split(":")[0].split("@")[0]:
                 entry["bytes_delta"] for entry in ab["summary"]["breakdown"]["packages"]}
    assert breakdown == {p["name"]: p["bytes_delta"] for p in ab["packages"]}


def test_the_app_file_and_nothing_else_unowned_outside_var(ab: dict[str, Any]) -> None:
    added = {e["path"]: e for e in ab["files"]["entries"] if e["status"] == "added"}
    app = added["/app/app.txt"]
    assert app["new"]["size"] == app["bytes_delta"] == APP_TXT.stat().st_size
    inside = realimages.run_in_image("difftest-b", ["stat", "-c", "%s", "/app/app.txt"])
    assert int(inside) == APP_TXT.stat().st_size
    assert app["new"]["sha256"] is None  # a new file: nothing to compare, nothing hashed
    unowned = {p for p, e in added.items()
               if e["new"]["package"] is None and not p.startswith("/var/")}
    assert unowned == {"/app", "/app/app.txt"}
    env = [c for c in ab["config"] if c["field"] == "env"]
    assert env == [{"field": "env", "key": "APP_VERSION", "old": "1", "new": "2"}]
    assert [layer["status"] for layer in ab["layers"]] == ["shared", "shared", "added", "added"]


def _walk(rootfs: Path) -> dict[str, os.stat_result]:
    out: dict[str, os.stat_result] = {}
    base = os.fsencode(rootfs)
    for top, dirs, files in os.walk(base):
        for name in dirs + files:
            full = os.path.join(top, name)
            out[os.fsdecode(full[len(base):])] = os.lstat(full)
    return out


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rootfs_diff(old_root: Path, new_root: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """The change set of two unpacked root filesystems, by lstat, readlink and sha256."""
    old, new = _walk(old_root), _walk(new_root)
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for path in old.keys() - new.keys():
        out[path] = ("removed", frozenset())
    for path in new.keys() - old.keys():
        out[path] = ("added", frozenset())
    for path in old.keys() & new.keys():
        a, b = old[path], new[path]
        if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
            out[path] = ("changed", frozenset({"type"}))
            continue
        kinds: set[str] = set()
        if stat.S_ISREG(a.st_mode):
            if a.st_size != b.st_size:
                kinds |= {"size", "content"}
            elif _sha(old_root / path.lstrip("/")) != _sha(new_root / path.lstrip("/")):
                kinds.add("content")
            if a.st_nlink != b.st_nlink:
                kinds.add("links")
        if stat.S_ISLNK(a.st_mode):
            if os.readlink(old_root / path.lstrip("/")) != os.readlink(new_root /
                                                                          path.lstrip("/")):
                kinds.add("link_target")
        elif stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
            kinds.add("mode")
        if a.st_uid != b.st_uid:
            kinds.add("uid")
        if a.st_gid != b.st_gid:
            kinds.add("gid")
        if (stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode)) and a.st_rdev != b.st_rdev:
            kinds.add("device")
        if kinds:
            out[path] = ("changed", frozenset(kinds))
    return out


def _got(doc: dict[str, Any]) -> dict[str, tuple[str, frozenset[str]]]:
    got: dict[str, tuple[str, frozenset[str]]] = {}
    for e in doc["files"]["entries"]:
        kinds = set(e["changes"]) & COMPARABLE
        if e["new"] and e["new"]["type"] == "symlink":
            kinds.discard("mode")
        if e["status"] != "changed" or kinds:
            got[e["path"]] = (e["status"], frozenset(kinds))
    return got


def _check_against_rootfs(doc: dict[str, Any], old: str, new: str) -> None:
    expected = rootfs_diff(realimages.umoci_rootfs(old), realimages.umoci_rootfs(new))
    assert _got(doc) == expected
    assert doc["files"]["content_check"]["unknown"] == 0
    final = {side: sum(st.st_size for st in _unique_files(realimages.umoci_rootfs(name)))
             for side, name in (("old", old), ("new", new))}
    assert doc["files"]["bytes_delta"] == final["new"] - final["old"]
    assert doc["summary"]["sizes"]["final_bytes"] == {
        "old": final["old"], "new": final["new"], "delta": final["new"] - final["old"]}


def test_file_diff_matches_the_unpacked_root_filesystems(ab: dict[str, Any]) -> None:
    _check_against_rootfs(ab, "difftest-a", "difftest-b")
    # the apt cache rewritten at its old size: found only by hashing both versions
    assert _got(ab)["/var/cache/apt/pkgcache.bin"] == ("changed", frozenset({"content"}))


def test_whiteouts_hard_links_and_special_files_against_the_rootfs() -> None:
    """difftest-a -> whiteouts (both FROM the Debian base): deletions of apt's lists, fifos,
    hard links, setuid files, a sticky directory, non-ASCII names."""
    a, w = realimages.ensure_image("difftest-a"), realimages.ensure_image("whiteouts")
    doc = diff_json(a["oci"], w["docker"])
    _check_against_rootfs(doc, "difftest-a", "whiteouts")
    files = {e["path"]: e for e in doc["files"]["entries"]}
    # one inode, three names (linked within one layer): the first name carries the bytes
    names = ("/data/keep/pair3", "/data/pair1", "/data/pair2")
    assert [(files[n]["new"]["links"], files[n]["new"]["hardlink_of"], files[n]["bytes_delta"])
            for n in names] == [(3, None, len("pair\n")), (3, names[0], 0), (3, names[0], 0)]
    # a hard link to a lower layer's file cannot cross layers: buildah ships a copy
    assert files["/data/keep/a-link.txt"]["new"]["links"] == 1
    assert files["/data/fifo"]["new"]["type"] == "fifo"
    assert doc["read"]["shared_prefix"] == doc["read"]["replayed_layers"] == 1


def _unique_files(root: Path) -> list[os.stat_result]:
    seen: set[int] = set()
    out = []
    for st in _walk(root).values():
        if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
            seen.add(st.st_ino)
            out.append(st)
    return out


def test_buildtools_v2_reads_the_shared_layers_once() -> None:
    """The diff benchmark's pair (bench/bench_diff.py measures it): every layer of buildtools
    is shared; only the one new layer is walked on the new side."""
    old, new = realimages.ensure_image("buildtools"), realimages.ensure_image("buildtools-v2")
    doc = diff_json(old["docker"], new["docker"])
    shared = doc["old"]["layers"]
    assert doc["new"]["layers"] == shared + 1
    assert doc["read"]["replayed_layers"] == shared == doc["read"]["shared_prefix"]
    expected = dpkg_names("buildtools-v2") - dpkg_names("buildtools")
    assert {p["name"] for p in doc["packages"] if p["status"] == "added"} == expected
    release = next(e for e in doc["files"]["entries"] if e["path"] == "/etc/app-release")
    assert (release["status"], release["new"]["size"]) == ("added", len("v2\n"))


def test_build_tools_introduced_show_as_added_findings() -> None:
    """difftest-a -> buildtools (both FROM the Debian base): the compiler arrives; the
    build-tool findings (analysis.extras.findings) are compared by kind and title."""
    a, b = realimages.ensure_image("difftest-a"), realimages.ensure_image("buildtools")
    doc = diff_json(a["docker"], b["docker"], "--only", "findings")
    assert doc["files"] is None and doc["packages"] is None
    added = {(c["kind"], c["title"].split(":")[0]): c["new_bytes"]
             for c in doc["findings"]["changes"] if c["status"] == "added"}
    assert added[("compiler", "GCC C/C++ compiler")] > 100_000_000
    assert not [c for c in doc["findings"]["changes"] if c["status"] == "removed"]
    wasted = doc["findings"]["wasted_bytes"]
    assert wasted["new"] > wasted["old"]  # buildtools deletes an 8 MB scratch file late
