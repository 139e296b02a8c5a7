"""`imgscope diff` on generated images: one fixture pair holds every kind of change.

OLD is one base layer; NEW is the same base layer (shared, so read once) plus one layer that
adds, removes (whiteouts), rewrites, re-modes, re-owns, re-types and hard-links files, and
upgrades/installs/removes dpkg packages; its config changes every field `diff` compares.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import fixture_build as fb

from imgscope.compare import group_by_directory
from imgscope.diff import SECTIONS, diff
from imgscope.errors import DigestMismatch
from imgscope.report.diff_report import diff_document, diff_text

# -- the fixture pair ---------------------------------------------------------------------------

PKG_FILES = {
    "base-files": ("1.0", {"/etc/debian_version": b"12.5\n"}),
    "libfoo": ("1.0", {"/usr/lib/libfoo.so.1": fb.det_bytes("libfoo1", 3000)}),
    "oldpkg": ("0.9", {"/usr/bin/oldtool": fb.det_bytes("oldtool", 1500),
                       "/usr/share/doc/oldpkg/README": b"old readme\n"}),
}
NEW_PKG_FILES = {
    "base-files": PKG_FILES["base-files"],
    "libfoo": ("2.0", {"/usr/lib/libfoo.so.1": fb.det_bytes("libfoo2", 4200)}),
    "newpkg": ("3.1-1", {"/usr/bin/newtool": fb.det_bytes("newtool", 7000),
                         "/usr/share/doc/newpkg/copyright": b"(c) nobody\n"}),
}
APP = b"print('hello, world')\n"


def _stanza(name: str, version: str) -> str:
    return (f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
            f"Section: misc\nInstalled-Size: 4\nMaintainer: Nobody <nobody@example.org>\n"
            f"Architecture: amd64\nVersion: {version}\nDescription: {name} for the diff test\n")


def _status(packages: dict[str, tuple[str, dict[str, bytes]]]) -> bytes:
    return "\n".join(_stanza(n, v) for n, (v, _) in sorted(packages.items())).encode()


def _listing(files: dict[str, bytes]) -> bytes:
    return ("/.\n" + "".join(f"{p}\n" for p in sorted(files))).encode()


def _dpkg(packages: dict[str, tuple[str, dict[str, bytes]]]) -> list:
    members = [fb.file("var/lib/dpkg/status", _status(packages))]
    for name, (_version, files) in sorted(packages.items()):
        members.append(fb.file(f"var/lib/dpkg/info/{name}.list", _listing(files)))
    return members


STATUS_DELTA = len(_status(NEW_PKG_FILES)) - len(_status(PKG_FILES))
NEWPKG_LIST = len(_listing(NEW_PKG_FILES["newpkg"][1]))
OLDPKG_LIST = len(_listing(PKG_FILES["oldpkg"][1]))


def _package_files(packages: dict[str, tuple[str, dict[str, bytes]]]) -> list:
    return [fb.file(path.lstrip("/"), data, mode=0o755 if "/bin/" in path else 0o644)
            for _, (_v, files) in sorted(packages.items()) for path, data in sorted(files.items())]


DIRS = ["etc", "usr", "usr/bin", "usr/lib", "usr/share", "usr/share/doc",
        "usr/share/doc/oldpkg", "var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info",
        "data", "data/tree", "data/tree/sub", "app"]

BASE = fb.LayerSpec(
    [fb.directory(d) for d in DIRS]
    + [
        fb.file("etc/keep", b"unchanged\n"),
        fb.file("etc/gone", b"x" * 300),
        fb.file("etc/grow", b"abc"),
        fb.file("etc/samesize", b"aaaa"),
        fb.file("etc/rewritten", b"same bytes"),
        fb.file("etc/modeonly", b"mode", mode=0o644),
        fb.file("etc/owneronly", b"owner"),
        fb.file("etc/typechange", b"was a file"),
        fb.file("etc/fifo2char", b""),
        fb.file("etc/caps", b"ping"),
        fb.symlink("etc/link", "keep"),
        fb.file("data/tree/a", b"a" * 10),
        fb.file("data/tree/sub/b", b"b" * 20),
        fb.file("app/run.py", APP),
    ]
    + _package_files(PKG_FILES)
    + _dpkg(PKG_FILES),
    created_by="/bin/sh -c #(nop) ADD file:base in / ",
)

CHANGES = fb.LayerSpec(
    [
        fb.whiteout("etc/gone"),
        fb.file("etc/grow", b"abcdef"),
        fb.file("etc/samesize", b"bbbb"),
        fb.file("etc/rewritten", b"same bytes"),
        fb.file("etc/modeonly", b"mode", mode=0o600),
        fb.file("etc/owneronly", b"owner", uid=1000, gid=1001),
        fb.directory("etc/typechange"),
        fb.fifo("etc/fifo2char"),
        fb.file("etc/caps", b"ping", xattrs=(("user.test", b"1"),)),
        fb.symlink("etc/link", "grow"),
        fb.hardlink("etc/keep-link", "etc/keep"),
        fb.file("etc/pair1", b"pair" * 25),
        fb.hardlink("etc/pair2", "etc/pair1"),
        fb.whiteout("data/tree"),
        # oldpkg removed, libfoo upgraded, newpkg installed: the files and the database
        fb.whiteout("usr/bin/oldtool"),
        fb.whiteout("usr/share/doc/oldpkg"),
        fb.directory("usr/share/doc/newpkg"),
        *_package_files({k: v for k, v in NEW_PKG_FILES.items() if k != "base-files"}),
        fb.whiteout("var/lib/dpkg/info/oldpkg.list"),
        *_dpkg(NEW_PKG_FILES),
    ],
    created_by="/bin/sh -c apt-get install newpkg && ...",
)

OLD_SPEC = fb.ImageSpec(
    [BASE], tags=("diff/test:old",), env=("PATH=/usr/bin:/bin", "A=1"), cmd=("/bin/sh",),
    exposed_ports=("80/tcp",), labels={"version": "1", "gone": "x"},
)
NEW_SPEC = fb.ImageSpec(
    [BASE, CHANGES], tags=("diff/test:new",), env=("PATH=/usr/bin:/bin", "A=2", "B=3"),
    entrypoint=("/usr/bin/newtool",), cmd=None, user="app", working_dir="/app",
    exposed_ports=("80/tcp", "443/tcp"), labels={"version": "2", "added": "y"},
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("diff")
    return (fb.write_image(root / "old.tar", OLD_SPEC),
            fb.write_image(root / "new.tar", NEW_SPEC))


@pytest.fixture(scope="module")
def result(pair):
    return diff(*pair)


def _files(result) -> dict[str, object]:
    return {c.path: c for c in result.files}


# -- files ----------------------------------------------------------------------------------------


def test_every_file_change_is_found_with_its_bytes(result) -> None:
    files = _files(result)
    summary = {p: (c.status, c.changes, c.content, c.bytes_delta) for p, c in files.items()}
    assert summary == {
        "/data/tree": ("removed", (), None, 0),
        "/data/tree/a": ("removed", (), None, -10),
        "/data/tree/sub": ("removed", (), None, 0),
        "/data/tree/sub/b": ("removed", (), None, -20),
        "/etc/caps": ("changed", ("xattrs",), "same", 0),
        "/etc/fifo2char": ("changed", ("type",), None, 0),
        "/etc/gone": ("removed", (), None, -300),
        "/etc/grow": ("changed", ("content", "size"), "differs", 3),
        "/etc/keep": ("changed", ("links",), "same", 0),
        "/etc/keep-link": ("added", (), None, 0),  # bytes counted once, on /etc/keep
        "/etc/link": ("changed", ("link_target",), None, 0),
        "/etc/modeonly": ("changed", ("mode",), "same", 0),
        "/etc/owneronly": ("changed", ("uid", "gid"), "same", 0),
        "/etc/pair1": ("added", (), None, 100),
        "/etc/pair2": ("added", (), None, 0),
        "/etc/samesize": ("changed", ("content",), "differs", 0),
        "/etc/typechange": ("changed", ("type",), None, -10),
        "/usr/bin/newtool": ("added", (), None, 7000),
        "/usr/bin/oldtool": ("removed", (), None, -1500),
        "/usr/lib/libfoo.so.1": ("changed", ("content", "size"), "differs", 1200),
        "/usr/share/doc/newpkg": ("added", (), None, 0),
        "/usr/share/doc/newpkg/copyright": ("added", (), None, 11),
        "/usr/share/doc/oldpkg": ("removed", (), None, 0),
        "/usr/share/doc/oldpkg/README": ("removed", (), None, -11),
        "/var/lib/dpkg/info/newpkg.list": ("added", (), None, NEWPKG_LIST),
        "/var/lib/dpkg/info/oldpkg.list": ("removed", (), None, -OLDPKG_LIST),
        "/var/lib/dpkg/status": ("changed", ("content", "size"), "differs", STATUS_DELTA),
    }
    # /etc/rewritten: written again by the new layer, same bytes: hashed, not a change.
    assert "/etc/rewritten" not in files
    # libfoo.list and base-files.list are rewritten with the same bytes: no change either
    assert "/var/lib/dpkg/info/libfoo.list" not in files
    assert "/var/lib/dpkg/info/base-files.list" not in files


def test_file_states_carry_what_changed(result) -> None:
    files = _files(result)
    owner = files["/etc/owneronly"]
    assert (owner.old.uid, owner.old.gid, owner.new.uid, owner.new.gid) == (0, 0, 1000, 1001)
    mode = files["/etc/modeonly"]
    assert (mode.old.mode, mode.new.mode) == (0o644, 0o600)
    link = files["/etc/link"]
    assert (link.old.link_target, link.new.link_target) == ("keep", "grow")
    typed = files["/etc/fifo2char"]
    assert (typed.old.type, typed.new.type) == ("file", "fifo")
    assert (files["/etc/typechange"].old.type, files["/etc/typechange"].new.type) == ("file",
                                                                                      "dir")
    keep = files["/etc/keep"]
    assert (keep.old.links, keep.new.links) == (1, 2)
    assert files["/etc/keep-link"].new.hardlink_of == "/etc/keep"
    assert files["/etc/pair2"].new.hardlink_of == "/etc/pair1"
    assert files["/etc/caps"].new.xattrs == (("user.test", "1"),)
    # A whiteout hides the old bytes; they still ship in NEW's base layer.
    assert files["/etc/gone"].old_still_shipped is True
    assert files["/usr/bin/oldtool"].old.owner == "deb/oldpkg:amd64@0.9"
    assert files["/usr/bin/newtool"].new.owner == "deb/newpkg:amd64@3.1-1"
    # same size, different layers, both plain: decided by their bytes, compared (no digest)
    samesize = files["/etc/samesize"]
    assert (samesize.changes, samesize.content) == (("content",), "differs")
    assert samesize.old.digest is None and samesize.new.digest is None


def test_file_deltas_add_up_to_the_final_filesystem_delta(result) -> None:
    assert sum(c.bytes_delta for c in result.files) == (
        result.new.sizes.final_bytes - result.old.sizes.final_bytes)


def test_content_check_reads_only_the_layers_that_shipped_candidates(result) -> None:
    cc = result.content
    # samesize, rewritten, modeonly, owneronly, caps, libfoo.list, base-files.list, keep? no:
    # keep is the same inode (a hard link added above it), decided without reading it.
    # Both versions of each are in plain layers: compared byte for byte, none hashed.
    assert cc.candidates == cc.compared == 7
    assert cc.unknown == cc.hashed == 0
    # all but /etc/samesize were written again with the same bytes: no change, still shipped
    assert cc.identical == 6
    assert cc.identical_bytes == (len(b"same bytes") + len(b"mode") + len(b"owner")
                                  + len(b"ping") + len(_listing(PKG_FILES["libfoo"][1]))
                                  + len(_listing(PKG_FILES["base-files"][1])))
    assert [(side, layer) for side, layer, *_ in cc.layers_read] == [("new", 1), ("old", 0)]
    # Plain seekable layers: the walk noted where each file starts, so the candidates are
    # read alone (both versions have one size each), never their whole layer again.
    candidate_bytes = len(b"aaaa") + cc.identical_bytes
    for _side, _layer, files_hashed, files_compared, layer_bytes, bytes_read in cc.layers_read:
        assert (files_hashed, files_compared) == (0, 7)
        assert bytes_read == candidate_bytes < layer_bytes


def test_no_hash_reports_rewritten_files_as_unknown(pair) -> None:
    result = diff(*pair, hash_content=False, sections=("files",))
    files = _files(result)
    assert (files["/etc/samesize"].changes, files["/etc/samesize"].content) == (
        ("rewritten",), "unknown")
    assert (files["/etc/rewritten"].changes, files["/etc/rewritten"].content) == (
        ("rewritten",), "unknown")
    assert (files["/etc/modeonly"].changes, files["/etc/modeonly"].content) == (
        ("rewritten", "mode"), "unknown")
    assert result.content.unknown == result.content.candidates == 7
    assert result.content.layers_read == ()


# -- packages, config, layers, summary ------------------------------------------------------------


def test_packages_added_removed_and_upgraded_with_bytes(result) -> None:
    rows = {(c.status, c.name, c.old_version, c.new_version, c.old_bytes, c.new_bytes)
            for c in result.packages}
    assert rows == {
        ("added", "newpkg", None, "3.1-1", 0, 7000 + 11),
        ("removed", "oldpkg", "0.9", None, 1500 + 11, 0),
        ("version", "libfoo", "1.0", "2.0", 3000, 4200),
    }
    assert result.unchanged_packages == 1  # base-files


def test_config_changes_field_by_field(result) -> None:
    got = [(c.field, c.key, c.old, c.new) for c in result.config]
    assert got == [
        ("user", None, None, "app"),
        ("working_dir", None, None, "/app"),
        ("entrypoint", None, None, ("/usr/bin/newtool",)),
        ("cmd", None, ("/bin/sh",), None),
        ("env", "A", "1", "2"),
        ("env", "B", None, "3"),
        ("labels", "added", None, "y"),
        ("labels", "gone", "x", None),
        ("labels", "version", "1", "2"),
        ("exposed_ports", "443/tcp", None, "exposed"),
        ("history", "1", None, "/bin/sh -c apt-get install newpkg && ..."),
    ]


def test_layers_shared_base_read_once(result) -> None:
    assert [(c.position, c.status, c.base) for c in result.layers] == [
        (0, "shared", True), (1, "added", False)]
    assert result.read.shared_prefix == 1
    assert result.read.replayed_layers == 1
    assert result.read.walked == "old"
    assert result.read.replayed_bytes == result.layers[0].old.uncompressed_size
    # NEW's copy (same diff_id, same size) is not read: known by its diff_id
    assert result.read.copies == "by-diff-id" and result.read.verify_bytes == 0
    assert result.layers[0].new.measured_diff_id is None
    assert result.layers[0].old.measured_diff_id == result.layers[0].old.diff_id


def test_verify_copies_reads_the_other_copy_too(pair) -> None:
    """--verify-copies: NEW's copy is verified too, hashed (not walked) against its diff_id;
    the result is the same."""
    result = diff(*pair, verify_copies=True)
    assert result.read.copies == "read" and result.read.verified_only
    assert result.read.verify_bytes == result.layers[0].new.compressed_size
    assert result.layers[0].new.measured_diff_id == result.layers[0].new.diff_id
    plain = diff(*pair)
    assert result.files == plain.files and result.packages == plain.packages


def test_summary_breakdown_adds_up(result) -> None:
    b = result.breakdown
    assert b.total == result.new.sizes.layer_bytes - result.old.sizes.layer_bytes
    assert b.total == b.packages_total + b.unowned + b.wasted + b.overhead
    assert b.packages_total == sum(v for _, v in b.packages)
    assert dict(b.packages) == {"deb/newpkg:amd64@3.1-1": 7011,
                                "deb/oldpkg:amd64@0.9": -1511,
                                "deb/libfoo:amd64@2.0": 1200}
    assert b.files == result.new.sizes.final_bytes - result.old.sizes.final_bytes
    # NEW's only new layer is what a host holding OLD has to pull
    assert b.pull_bytes == result.layers[1].new.compressed_size


def test_findings_compare_wasted_bytes(result) -> None:
    f = result.findings
    assert f.wasted_old == 0
    # everything the new layer hides or replaces from the base: gone, the tree, oldpkg's
    # files, and every rewritten file's old version
    hidden = {"/etc/gone": 300, "/data/tree/a": 10, "/data/tree/sub/b": 20,
              "/usr/bin/oldtool": 1500, "/usr/share/doc/oldpkg/README": 11}
    assert f.wasted_new >= sum(hidden.values())
    assert f.efficiency_old == 1.0 and f.efficiency_new < 1.0


# -- whole-document properties -------------------------------------------------------------------


def test_same_image_in_two_formats_has_no_difference(tmp_path: Path, cli) -> None:
    docker = fb.write_image(tmp_path / "a.tar", NEW_SPEC)
    zstd = fb.write_image(tmp_path / "b.tar", fb.with_compression(NEW_SPEC, "zstd"), "oci")
    result = diff(docker, zstd)
    assert not result.differs
    assert result.files == () and result.packages == () and result.config == ()
    assert [c.status for c in result.layers] == ["shared", "shared"]
    # zstd copies are only hashed; the plain docker-archive copy is the one walked
    assert result.read.walked == "old" and result.read.replayed_layers == 2
    reverse = diff(zstd, docker)
    assert reverse.read.walked == "new" and not reverse.differs
    run = cli("diff", docker, zstd, "--exit-code")
    assert run.rc == 0 and "No differences in: layers, config, files, packages, findings." \
        in run.out


def test_exit_code_and_json_are_deterministic(pair, cli) -> None:
    first = cli("diff", *pair, "--format", "json", "--exit-code")
    second = cli("diff", *pair, "--format", "json")
    assert first.rc == 1 and second.rc == 0
    assert first.out == second.out
    doc = first.json()
    assert doc["schema"] == "imgscope/diff" and doc["schema_version"] == 1
    assert doc["differs"] is True
    assert doc["summary"]["counts"]["files"] == {"added": 7, "removed": 9, "changed": 11}
    assert doc["summary"]["counts"]["packages"] == {"added": 1, "removed": 1, "version": 1,
                                                    "files": 0, "unchanged": 1}
    entry = next(e for e in doc["files"]["entries"] if e["path"] == "/etc/samesize")
    assert entry["old"]["sha256"] is None  # compared byte for byte, not hashed
    assert entry["content"] == "differs"
    assert doc["files"]["content_check"]["compared"] == 7


def test_reusing_the_shared_layer_changes_nothing_in_the_result(pair) -> None:
    reused = diff_document(diff(*pair))
    full = diff_document(diff(*pair, reuse_shared=False))
    assert full["read"]["replayed_layers"] == 0 and reused["read"]["replayed_layers"] == 1
    reused.pop("read"), full.pop("read")
    assert json.dumps(reused, sort_keys=True) == json.dumps(full, sort_keys=True)


def test_only_filters_sections_and_work(pair, cli, tmp_path: Path) -> None:
    run = cli("diff", *pair, "--only", "config", "--format", "json")
    doc = run.json()
    assert doc["sections"] == ["config"]
    assert doc["files"] is None and doc["packages"] is None and doc["layers"] is None
    assert len(doc["config"]) == 11
    files_only = diff(*pair, sections=("files",))
    assert files_only.packages is None and files_only.config is None
    assert files_only.files and files_only.breakdown.packages_total is None
    bad = cli("diff", *pair, "--only", "files,bogus")
    assert bad.rc == 2 and "--only takes" in bad.err


def test_config_only_does_not_read_layers(tmp_path: Path) -> None:
    old = fb.build_image(OLD_SPEC)
    new = fb.build_image(NEW_SPEC)
    truncated = fb._layer_override(new, 1, new.layers[1].blob.data[:700])
    old_path = fb.write_tar(tmp_path / "old.tar", fb.docker_save([old]))
    new_path = fb.write_tar(tmp_path / "new.tar", fb.docker_save([truncated]))
    result = diff(old_path, new_path, sections=("config",))
    assert result.files is None and result.new.sizes is None
    assert len(result.config) == 11
    with pytest.raises(Exception, match="new image: layer 1"):
        diff(old_path, new_path)


def test_a_same_size_copy_one_byte_apart_fails(tmp_path: Path) -> None:
    """Copies of one size are compared byte for byte instead of hashed: a copy that differs
    in a single content byte is still refused, with the digest it really has."""
    old = fb.build_image(OLD_SPEC)
    data = bytearray(old.layers[0].blob.read())
    at = data.index(b"unchanged\n")  # a byte of etc/keep's content, not of a header
    data[at] ^= 0x20
    flipped = fb._layer_override(old, 0, bytes(data))
    old_path = fb.write_tar(tmp_path / "old.tar", fb.docker_save([old]))
    flipped_path = fb.write_tar(tmp_path / "flipped.tar", fb.docker_save([flipped]))
    assert len(data) == old.layers[0].blob.size
    with pytest.raises(DigestMismatch, match="new image: layer 0.*content digest is sha256:"):
        diff(old_path, flipped_path, verify_copies=True)
    same = diff(old_path, fb.write_tar(tmp_path / "same.tar", fb.docker_save([old])),
                verify_copies=True)
    assert same.read.verify_bytes == old.layers[0].blob.size and not same.files
    # By default that copy is not read (same diff_id, same size): the diff describes the
    # layer by its diff_id, from OLD's verified bytes, and says so.
    trusted = diff(old_path, flipped_path)
    assert trusted.read.copies == "by-diff-id" and trusted.read.verify_bytes == 0
    assert not trusted.files


def test_a_shared_copy_of_another_size_is_read_and_refused(tmp_path: Path, cli) -> None:
    """A plain copy whose size differs from the walked one cannot hold the same tar stream:
    it is read (hashed) even without --verify-copies, and refused."""
    old = fb.build_image(OLD_SPEC)
    data = old.layers[0].blob.read() + b"\0" * 512  # one more zero block: another digest
    longer = fb._layer_override(old, 0, data)
    old_path = fb.write_tar(tmp_path / "old.tar", fb.docker_save([old]))
    longer_path = fb.write_tar(tmp_path / "longer.tar", fb.docker_save([longer]))
    with pytest.raises(DigestMismatch, match="new image: layer 0.*content digest is sha256:"):
        diff(old_path, longer_path)
    run = cli("diff", old_path, longer_path)
    assert run.rc == 2 and "content digest" in run.err


def test_a_shared_layer_that_lies_about_its_diff_id_fails(tmp_path: Path, cli) -> None:
    """NEW claims OLD's base diff_id for a different base: reading it only once must not let
    the lie through."""
    old = fb.build_image(OLD_SPEC)
    other = fb.build_layer(fb.LayerSpec([fb.file("etc/keep", b"tampered\n")]))
    liar = fb.assemble(OLD_SPEC, [other], diff_ids=[old.layers[0].diff_id])
    old_path = fb.write_tar(tmp_path / "old.tar", fb.docker_save([old]))
    liar_path = fb.write_tar(tmp_path / "liar.tar", fb.oci_layout([liar]))
    with pytest.raises(DigestMismatch, match="new image: layer 0"):
        diff(old_path, liar_path)  # read although not asked to: its size is not OLD's copy's
    run = cli("diff", old_path, liar_path)
    assert run.rc == 2 and "content digest" in run.err
    # --no-verify trusts the claim: the base is read once and the lie is not seen
    trusted = diff(old_path, liar_path, verify=False)
    assert trusted.read.replayed_layers == 1 and not trusted.read.verified_only
    assert not trusted.files


def test_stdin_as_one_side(pair, cli_proc) -> None:
    old, new = pair
    run = cli_proc(["diff", "-", new, "--format", "json"], stdin_path=old)
    assert run.rc == 0, run.err
    doc = json.loads(run.out)
    assert doc["summary"]["counts"]["files"] == {"added": 7, "removed": 9, "changed": 11}
    assert doc["read"]["replayed_layers"] == 0  # a stream was read whole; nothing to reuse


def test_table_output_leads_with_the_summary(pair, cli) -> None:
    run = cli("diff", *pair)
    assert run.rc == 0
    lines = run.out.splitlines()
    assert lines[0].startswith("old: diff/test:old") and lines[1].startswith("new: diff/test:new")
    assert lines[3] == "Summary"
    assert "newpkg:amd64 +7.0 kB" in run.out
    assert "~   -rw-r--r--  0 B      content" in run.out  # /etc/samesize
    assert "rewritten" not in run.out


# -- a large change stays readable ---------------------------------------------------------------


def test_fifty_thousand_file_change_is_grouped(tmp_path: Path) -> None:
    count = 50_000
    members = [fb.directory("big")]
    for d in range(100):
        members.append(fb.directory(f"big/d{d:03}"))
        members += [fb.file(f"big/d{d:03}/f{i:04}", b"x" * (d + 1)) for i in range(count // 100)]
    old = fb.ImageSpec([BASE])
    new = fb.ImageSpec([BASE, fb.LayerSpec(members)])
    result = diff(fb.write_image(tmp_path / "old.tar", old),
                  fb.write_image(tmp_path / "new.tar", new), sections=("files",))
    assert len(result.files) == count + 101
    expected_bytes = sum((d + 1) * (count // 100) for d in range(100))
    assert sum(c.bytes_delta for c in result.files) == expected_bytes
    groups = group_by_directory(result.files, 30)
    # 101 directories do not fit in 30 rows: rolled up to /big
    assert [(g.path, g.added, g.bytes_delta) for g in groups] == [("/big", count + 101,
                                                                  expected_bytes)]
    text = diff_text(result)
    assert len(text.splitlines()) < 80
    assert "Biggest 40 file changes (--format json lists all 50101)" in text
    assert len(diff_document(result)["files"]["entries"]) == count + 101


def test_sections_constant_matches_the_cli() -> None:
    assert SECTIONS == ("layers", "config", "files", "packages", "findings")


# -- choosing images inside archives -------------------------------------------------------------


def test_two_images_of_one_archive(built, cli) -> None:
    archive = built("multi/images-docker.tar")
    alpha, beta = fb.MULTI_IMAGE_TAGS
    result = diff(archive, archive, old_image=alpha, new_image=beta)
    assert [(c.position, c.status) for c in result.layers] == [(0, "shared"), (1, "changed"),
                                                               (2, "added")]
    assert [(c.path, c.status, c.bytes_delta) for c in result.files] == [
        ("/alpha", "removed", -len(b"alpha\n")), ("/beta", "added", len(b"beta!\n")),
        ("/beta2", "added", len(b"two\n"))]
    assert result.read.replayed_layers == 1  # the shared base, walked once
    assert result.read.verify_bytes == 0  # and hashed once: it is one member of one archive
    run = cli("diff", archive, built("multi/images-oci.tar"), "--old-image", alpha,
              "--new-image", beta, "--format", "json")
    assert run.rc == 0, run.err
    assert run.json()["summary"]["counts"]["files"] == {"added": 2, "removed": 1, "changed": 0}
    same = cli("diff", archive, built("multi/images-oci.tar"), "--image", beta, "--exit-code")
    assert same.rc == 0 and "No differences" in same.out


def test_two_platforms_of_one_index(built, cli) -> None:
    index = built("multi/platforms.tar")
    run = cli("diff", index, index, "--old-platform", "linux/amd64", "--new-platform",
              "linux/arm/v7", "--format", "json", "--exit-code")
    assert run.rc == 1, run.err
    doc = run.json()
    assert [(c["field"], c["old"], c["new"]) for c in doc["config"]] == [
        ("architecture", "amd64", "arm"), ("variant", None, "v7")]
    [entry] = doc["files"]["entries"]
    assert (entry["path"], entry["changes"], entry["bytes_delta"]) == (
        "/etc/platform", ["content", "size"], len("linux/arm/v7\n") - len("linux/amd64\n"))
    assert doc["layers"][0]["status"] == "changed" and doc["read"]["replayed_layers"] == 0
    missing = cli("diff", index, index, "--platform", "linux/s390x")
    assert missing.rc == 2 and missing.err.startswith("imgscope: error: old image:")


def test_a_layer_repeated_in_one_image_is_replayed_at_both_positions(built) -> None:
    path = built("formats/docker-repeated-layer.tar")
    result = diff(path, path)
    assert not result.differs
    assert result.read.replayed_layers == 3
    assert result.new.sizes == result.old.sizes


def test_one_blob_at_two_positions_is_verified_at_both(tmp_path: Path) -> None:
    """An OCI manifest naming one blob twice: the walked side reads it once, and the check
    of the second position (its own claim in the config) is not skipped."""
    same = fb.LayerSpec([fb.file("counter", b"same layer\n")])
    image = fb.build_image(fb.ImageSpec([same, fb.LayerSpec([fb.file("middle", b"m\n")]), same],
                                        tags=("imgscope/repeat:1",)))
    a = fb.write_tar(tmp_path / "a.tar", fb.oci_layout([image]))
    b = fb.write_tar(tmp_path / "b.tar", fb.oci_layout([image]))
    result = diff(a, b, verify_copies=True)
    assert not result.differs and result.read.replayed_layers == 3
    assert [(c.old.measured_diff_id, c.new.measured_diff_id) for c in result.layers] == [
        (layer.diff_id, layer.diff_id) for layer in image.layers]


@pytest.mark.parametrize("grown_side", ["old", "new"])
def test_a_shared_layer_repeated_after_the_prefix_on_one_side_is_applied_there(
        tmp_path: Path, grown_side: str) -> None:
    """[A, B] against [A, B, A]: the side walked first keeps A's entries only because the
    other applies A again after the shared prefix (_RecordedLayer.keep); the result is the
    one of reading both images in full, and the re-applied layer's file is there."""
    a = fb.LayerSpec([fb.file("etc/counter", b"first\n"), fb.file("etc/a-only", b"a\n")])
    b = fb.LayerSpec([fb.file("etc/counter", b"second!\n"), fb.whiteout("etc/a-only")])
    short = fb.ImageSpec([a, b], tags=("r/short:1",))
    long_ = fb.ImageSpec([a, b, a], tags=("r/long:1",))
    specs = (long_, short) if grown_side == "old" else (short, long_)
    # OCI layouts: one blob, one name, at every position that holds it
    paths = [fb.write_tar(tmp_path / f"{n}.tar", fb.oci_layout([fb.build_image(spec)]))
             for n, spec in zip(("old", "new"), specs, strict=True)]
    reused = diff(*paths)
    assert reused.read.replayed_layers == 2
    full = diff(*paths, reuse_shared=False)
    documents = [diff_document(r) for r in (reused, full)]
    for document in documents:
        document.pop("read")
    assert documents[0] == documents[1]
    changed = {e["path"]: e["status"] for e in documents[0]["files"]["entries"]}
    assert changed == {"/etc/a-only": "removed" if grown_side == "old" else "added",
                       "/etc/counter": "changed"}


def test_compare_works_on_two_plain_analyses(pair) -> None:
    """The library path without diff(): two analyze() results in, no content hashing."""
    from imgscope.api import analyze
    from imgscope.compare import compare

    old, new = analyze(pair[0]), analyze(pair[1])
    result = compare(old, new)
    expected = diff(*pair, hash_content=False)
    assert [(c.path, c.status, c.changes) for c in result.files] == [
        (c.path, c.status, c.changes) for c in expected.files]
    assert result.packages == expected.packages
    assert result.content.unknown == result.content.candidates == 7


def test_compressed_copies_of_one_blob_are_verified_by_their_stored_bytes(tmp_path: Path) -> None:
    """Both manifests name the same zstd blob: NEW's copy is hashed as stored (not inflated)
    and must be byte for byte the blob OLD's walk inflated and verified."""
    old_img = fb.build_image(fb.with_compression(OLD_SPEC, "zstd"))
    new_img = fb.build_image(fb.with_compression(NEW_SPEC, "zstd"))
    assert old_img.layers[0].blob.digest == new_img.layers[0].blob.digest
    old_path = fb.write_tar(tmp_path / "old.tar", fb.oci_layout([old_img]))
    new_path = fb.write_tar(tmp_path / "new.tar", fb.oci_layout([new_img]))
    result = diff(old_path, new_path, verify_copies=True)
    assert result.read.replayed_layers == 1 and result.read.verified_only
    # NEW's copy hashed as stored (compressed), not inflated
    assert result.read.verify_bytes == new_img.layers[0].blob.size
    assert result.layers[0].new.measured_diff_id == result.layers[0].old.diff_id
    assert result.layers[0].new.uncompressed_size == result.layers[0].old.uncompressed_size
    plain = diff(*[fb.write_image(tmp_path / n, s) for n, s in (("o", OLD_SPEC),
                                                                   ("n", NEW_SPEC))])
    assert [(c.path, c.changes) for c in result.files] == [(c.path, c.changes)
                                                           for c in plain.files]
    # A compressed layer has no offsets to read a file at. NEW's own layer, walked when
    # OLD's files are known, hashed its same-size rewrites as they passed (nothing read
    # again); the shared layer is walked again, whole: here it is smaller than the layer
    # whose headers would foretell its candidates, so they were not foreseen.
    assert [row[2:] for row in result.content.layers_read] == [
        (7, 0, new_img.layers[1].uncompressed_size, 0),
        (7, 0, old_img.layers[0].uncompressed_size, old_img.layers[0].uncompressed_size)]
    assert result.content.hashed == 7 and result.content.compared == 0
    samesize = next(c for c in result.files if c.path == "/etc/samesize")
    assert samesize.old.digest == fb.sha256(b"aaaa")
    assert samesize.new.digest == fb.sha256(b"bbbb")
    # the plain pair compared the same files byte for byte: the same verdicts
    assert [(c.path, c.changes, c.content) for c in result.files if c.old and c.new] == [
        (c.path, c.changes, c.content) for c in plain.files if c.old and c.new]
    # other bytes stored under the shared digest: inflated after all, and refused
    other = fb.zstd_bytes(fb.layer_tar([fb.file("etc/keep", b"tampered\n")]))
    forged = fb.replace(new_img.layers[0].blob, data=other, size=len(other))
    liar = fb.replace(new_img, layers=(fb.replace(new_img.layers[0], blob=forged),
                                       *new_img.layers[1:]))
    liar_path = fb.write_tar(tmp_path / "liar.tar", fb.oci_layout([liar]))
    with pytest.raises(DigestMismatch, match="new image: layer 0"):
        diff(old_path, liar_path, verify_copies=True)


def test_only_the_paths_later_layers_wrote_are_compared(pair) -> None:
    """compare_files looks at changed_paths() only: the paths one side lacks and those a
    layer after the shared prefix wrote (with their hard links' other names). Comparing
    every path of both trees gives the same changes; the skipped paths are the shared
    base's."""
    from imgscope.api import analyze
    from imgscope.compare import changed_paths, compare_files

    old, new = analyze(pair[0]), analyze(pair[1])
    everything = set(old.fs.index()) | set(new.fs.index())
    dirty = changed_paths(old, new, 1)
    assert dirty < everything
    assert {"/etc/pair1", "/etc/pair2"} <= dirty  # hard links added by NEW's own layer
    assert all(old.fs.index()[p].layer == 0 and new.fs.index()[p].layer == 0
               for p in everything - dirty)
    assert compare_files(old, new, 1, paths=everything) == compare_files(old, new, 1)


def _zstd_base_and_small_top(tmp_path: Path):
    """OLD: one zstd layer with a bulk file; NEW: that layer and a small one of its own that
    rewrites /etc/state with the same size and adds /etc/added. (images, paths)"""
    bulk = bytes((i * 7919 + (i >> 8)) % 251 for i in range(300_000))
    base = fb.LayerSpec([fb.file("opt/bulk.bin", bulk), fb.file("etc/state", b"old-state\n"),
                         fb.file("etc/other", b"stays\n")])
    top = fb.LayerSpec([fb.file("etc/state", b"new-state\n"), fb.file("etc/added", b"x\n")])
    old_img = fb.build_image(fb.with_compression(fb.ImageSpec([base], tags=("p/old:1",)), "zstd"))
    new_img = fb.build_image(fb.with_compression(fb.ImageSpec([base, top], tags=("p/new:1",)),
                                                 "zstd"))
    old_path = fb.write_tar(tmp_path / "old.tar", fb.oci_layout([old_img]))
    new_path = fb.write_tar(tmp_path / "new.tar", fb.oci_layout([new_img]))
    return old_img, new_img, old_path, new_path


def test_a_compressed_shared_layer_hashes_the_foreseeable_candidates_as_it_passes(
        tmp_path: Path) -> None:
    """Both images zstd: a same-size file NEW's own layer rewrites is foreseen from that
    layer's headers, and hashed while the shared layer is walked, instead of inflating the
    shared layer again for it."""
    old_img, _, old_path, new_path = _zstd_base_and_small_top(tmp_path)
    result = diff(old_path, new_path)
    cc = result.content
    assert cc.candidates == cc.hashed == 1
    rows = {(side, layer): row for side, layer, *row in cc.layers_read}
    # the shared layer was not read again: its file was hashed during the walk
    assert rows[("old", 0)] == [1, 0, old_img.layers[0].uncompressed_size, 0]
    assert rows[("new", 1)][0] == 1
    state = next(c for c in result.files if c.path == "/etc/state")
    assert (state.changes, state.content) == (("content",), "differs")
    assert state.old.digest == fb.sha256(b"old-state\n")
    assert state.new.digest == fb.sha256(b"new-state\n")


@pytest.mark.parametrize("copy_limit", [512 << 20, 100])
def test_a_small_compressed_layer_of_the_second_side_is_hashed_beside_the_first_walk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copy_limit: int) -> None:
    """NEW's own zstd layer, small beside the shared one, is hashed by a child while OLD's
    walk runs, which inflates it into a spool too: walked from that plain copy, it is not
    inflated here (nor by an inflating child of its own). A layer that inflates to more than
    COPY_LIMIT is inflated here when its turn comes. Either way its digests are checked, and
    a copy that is not what the config says is refused."""
    import imgscope.archive.layer as layer_module
    import imgscope.diff as diff_module

    monkeypatch.setattr(diff_module, "COPY_LIMIT", copy_limit)
    old_img, new_img, old_path, new_path = _zstd_base_and_small_top(tmp_path)
    inflated_by_child: list[int] = []
    inflated_here: list[str] = []
    real, real_decoder = layer_module.InflateProcess, layer_module.HashingDecoder

    def counting(fd, offset, size, *args, **kwargs):
        inflated_by_child.append(size)
        return real(fd, offset, size, *args, **kwargs)

    def decoding(raw, compression, **kwargs):
        inflated_here.append(compression)
        return real_decoder(raw, compression, **kwargs)

    monkeypatch.setattr(layer_module, "InflateProcess", counting)
    monkeypatch.setattr(layer_module, "HashingDecoder", decoding)
    result = diff(old_path, new_path)
    assert inflated_by_child == [old_img.layers[0].blob.size]  # the shared layer alone
    assert inflated_here == ([] if copy_limit > 100 else ["zstd"])
    assert result.layers[1].new.compression == "zstd"
    own = result.layers[1].new
    assert own.measured_diff_id == new_img.layers[1].diff_id
    assert own.uncompressed_size == new_img.layers[1].uncompressed_size
    assert [(c.path, c.status) for c in result.files] == [
        ("/etc/added", "added"), ("/etc/state", "changed")]
    # other bytes stored as NEW's own layer: the hash made beside the first walk refuses them
    other = fb.zstd_bytes(fb.layer_tar([fb.file("etc/state", b"tampered!\n")]))
    forged = fb.replace(new_img.layers[1].blob, data=other, size=len(other))
    liar = fb.replace(new_img, layers=(new_img.layers[0],
                                       fb.replace(new_img.layers[1], blob=forged)))
    liar_path = fb.write_tar(tmp_path / "liar.tar", fb.oci_layout([liar]))
    with pytest.raises(DigestMismatch, match="new image: layer 1"):
        diff(old_path, liar_path)


def test_the_walk_hashes_every_file_until_the_foreseen_set_arrives() -> None:
    """_Foreseen does not make the walk wait for the child reading the later layers' headers:
    until it has answered every regular file counts as foreseen (and is hashed); then only
    the foreseen ones; a child that failed foresees nothing."""
    from imgscope.diff import _Foreseen
    from imgscope.errors import CorruptInput

    class Child:
        def __init__(self, answer: object) -> None:
            self.answer, self.done = answer, False

        def ready(self) -> bool:
            return self.done

        def result(self) -> object:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    child = Child({("/etc/state", 10)})
    wanted = _Foreseen(child)  # type: ignore[arg-type]
    assert ("/opt/anything", 5) in wanted and ("/etc/state", 10) in wanted
    child.done = True
    assert ("/opt/anything", 5) not in wanted and ("/etc/state", 10) in wanted
    assert ("/etc/state", 11) not in wanted
    failed = Child(CorruptInput("zstd data is corrupt"))
    failed.done = True
    assert ("/etc/state", 10) not in _Foreseen(failed)  # type: ignore[arg-type]


# A base large enough that the second side's index is built from the first's (at most a
# quarter of the paths changed), and own layers without hard links (a hard link among the
# changed paths makes changed_paths index both trees in full).
BIG_BASE = fb.LayerSpec(BASE.members + [fb.directory("opt/filler")]
                        + [fb.file(f"opt/filler/f{i:03}", b"%d" % i,
                                   mode=0o4755 if i in (11, 12) else 0o644) for i in range(150)]
                        + [fb.file("opt/ww", b"w", mode=0o666)],
                        created_by=BASE.created_by)
NEW_OWN = fb.LayerSpec([m for m in CHANGES.members if m.name not in ("etc/keep-link",
                                                                     "etc/pair2")]
                       + [fb.file("opt/filler/f0505", b"between f050 and f051"),
                          fb.file("opt/filler/f010", b"now setuid", mode=0o4755),
                          fb.file("opt/filler/f011", b"no longer", mode=0o644),
                          fb.directory("opt/open", mode=0o777)],
                       created_by=CHANGES.created_by)
OLD_OWN = fb.LayerSpec(
    [
        fb.file("etc/grow", b"abcd"),
        fb.file("etc/old-only", b"o" * 50),
        fb.directory("data/extra"),
        fb.file("data/extra/f", b"f" * 5),
        fb.opaque("usr/share/doc"),
        fb.whiteout("app"),
        fb.whiteout("opt/filler/f007"),
        fb.whiteout("opt/ww"),
        fb.file("opt/filler/f012", b"12", mode=0o2755),
    ],
    created_by="/bin/sh -c old's own layer",
)
# Removes one name of a hard-link group that the shared layer made: NEW's tree can no longer
# share nodes with OLD's (Overlay._unshare_all).
LINKED_BASE = fb.LayerSpec(BIG_BASE.members + [fb.file("etc/a", b"a" * 40),
                                               fb.hardlink("etc/b", "etc/a")])
UNLINK = fb.LayerSpec([fb.whiteout("etc/b"), fb.file("etc/d", b"d")])


@pytest.mark.parametrize(("shape", "walks"), [
    ("new-adds", 1), ("old-adds", 1), ("both-own", 1), ("hard-links", 2), ("unshared", 2)])
def test_the_second_index_and_facts_built_from_the_first_are_the_walked_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str, walks: int) -> None:
    """The side walked second takes the first side's index and looks up only the changed
    paths (Overlay.index_from): the same paths in the same order as a walk of its own tree,
    each with the very node of that tree, or the diff would compare the wrong nodes. Where
    it cannot (hard links changed, nodes unshared) both trees are walked. Its facts, taken
    from the first side's tally (FactsTally.derive), are those of a full count, and so is
    its attribution, taken from the first side's (attribute_twin) but where hard links
    changed."""
    import imgscope.attribution as attribution_module
    import imgscope.diff as diff_module
    from imgscope.api import run_catalogers
    from imgscope.catalog.registry import all_catalogers
    from imgscope.fsfacts import collect_facts
    from imgscope.overlay import Overlay

    base, own = fb.ImageSpec([BIG_BASE], tags=("i/base:1",)), \
        fb.ImageSpec([BIG_BASE, NEW_OWN], tags=("i/new:1",))
    specs = {
        "new-adds": (base, own),
        "old-adds": (own, base),
        "both-own": (fb.ImageSpec([BIG_BASE, OLD_OWN], tags=("i/old:1",)), own),
        "hard-links": (base, fb.ImageSpec([BIG_BASE, CHANGES], tags=("i/links:1",))),
        "unshared": (fb.ImageSpec([LINKED_BASE], tags=("l/a:1",)),
                     fb.ImageSpec([LINKED_BASE, UNLINK], tags=("l/b:1",))),
    }[shape]
    paths = [fb.write_image(tmp_path / f"{n}.tar", s) for n, s in zip("ab", specs, strict=True)]
    walk = Overlay.iter_nodes
    counted = []
    monkeypatch.setattr(Overlay, "iter_nodes", lambda self: counted.append(1) or walk(self))
    twins: list[bool] = []
    real_twin = attribution_module.attribute_twin
    monkeypatch.setattr(diff_module, "attribute_twin",
                        lambda *a: twins.append((found := real_twin(*a)) is not None) or found)
    seen: list[int] = []
    facts: list = []

    def check(analysis, _view) -> None:
        seen.append(len(counted))
        built = list(analysis.fs.index().items())
        walked = list(walk(analysis.fs))
        assert [p for p, _ in built] == [p for p, _ in walked]
        assert all(a is b for (_, a), (_, b) in zip(built, walked, strict=True))
        facts.append(analysis.facts)
        full_facts = collect_facts(analysis.fs)
        # the totals and risky modes of a full count; no rankings: a diff shows none
        assert analysis.facts == replace(full_facts, biggest_files=[], biggest_dirs=[],
                                         bytes_by_top_dir={})
        assert full_facts.biggest_files and analysis.facts.final_bytes == full_facts.final_bytes
        packages, _ = run_catalogers(all_catalogers(), analysis.fs)
        full = attribution_module.attribute(analysis.fs, packages, analysis.fs.wasted,
                                            len(analysis.layers))
        assert analysis.attribution == full

    from imgscope.analyze.buildtools import FileTable

    tables: list = []
    real_derive = FileTable.derive

    def derive(table, origin, twin, changed):
        derived = real_derive(table, origin, twin, changed)
        tables.append((derived, FileTable.build(twin)))
        return derived

    monkeypatch.setattr(FileTable, "derive", derive)
    result = diff(*paths, post_analysis=check)
    assert result.read.replayed_layers == 1 and result.differs
    assert seen == [walks, walks]  # both indexes were built before the first check ran
    assert twins == [walks == 1]
    # The second image's build-tool scan takes its FileTable from the first's where no hard
    # link changed (both shapes that walk twice change one): the one a pass over its tree
    # builds.
    (derived, built), = tables
    if walks == 2:
        assert derived is None
    else:
        assert derived is not None and len(built.size) > 100
        assert derived.size == built.size and derived.layer == built.layer
        assert dict(derived.canonical.aliases) == dict(built.canonical.aliases)
    if shape in ("new-adds", "old-adds", "both-own"):  # NEW_OWN's mode changes, counted
        suid = {side: {m.path for m in f.setuid} for side, f in zip("ab", facts, strict=True)}
        assert suid["a"] ^ suid["b"] >= {"/opt/filler/f010", "/opt/filler/f011"}


def test_a_truncated_small_compressed_layer_of_the_second_side_fails_cleanly(
        tmp_path: Path, cli) -> None:
    """The child that inflates NEW's own zstd layer into a spool (beside OLD's walk) meets
    its truncated stream: the diff stops with one line naming the image and the layer, as an
    inline inflate would, and leaves no spool behind."""
    import tempfile

    old_img, new_img, old_path, _ = _zstd_base_and_small_top(tmp_path)
    stored = new_img.layers[1].blob.data
    cut = fb.replace(new_img.layers[1].blob, data=stored[: len(stored) // 2],
                     size=len(stored) // 2)
    broken = fb.replace(new_img, layers=(new_img.layers[0],
                                         fb.replace(new_img.layers[1], blob=cut)))
    broken_path = fb.write_tar(tmp_path / "broken.tar", fb.oci_layout([broken]))
    before = set(Path(tempfile.gettempdir()).glob("imgscope-*"))
    result = cli("diff", str(old_path), str(broken_path))
    assert result.rc not in (0, 1)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "new image: layer 1" in lines[0], result.err
    assert set(Path(tempfile.gettempdir()).glob("imgscope-*")) == before


@pytest.mark.parametrize(("extra", "second_runs"), [
    ((), ["libc6-dev"]),
    # a file libc6 claims, rewritten: libc6 is cataloged again, base-files is not
    ((fb.file("usr/share/doc/libc6/copyright", b"Copyright: rewritten\n"),),
     ["libc6", "libc6-dev"]),
    # a new symlink to a directory may resolve claimed paths differently: nothing is reused
    ((fb.symlink("usr/lib64", "lib"),), ["base-files", "libc6", "libc6-dev"]),
])
def test_the_second_image_reuses_what_the_first_found_where_nothing_differs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple, second_runs: list[str]
) -> None:
    """The example image's base, then with its libc6-dev layer: the second image's
    catalogers take the first's packages where nothing they looked at differs
    (catalog.twin; dpkg per package), and the diff is the one a full cataloging of both
    gives."""
    import imgscope.diff as diff_module
    from imgscope.catalog.dpkg import DpkgCataloger
    from imgscope.catalog.view import OverlayFileView

    example = fb.example_image()
    base, dev = example.layers[0], example.layers[1]
    grown = fb.LayerSpec([*dev.members, *extra], created_by=dev.created_by)
    paths = [fb.write_image(tmp_path / "old.tar", fb.ImageSpec([base], tags=("e/old:1",))),
             fb.write_image(tmp_path / "new.tar", fb.ImageSpec([base, grown], tags=("e/new:1",)))]
    runs: list[str] = []
    real = DpkgCataloger._package
    monkeypatch.setattr(DpkgCataloger, "_package",
                        lambda self, files, resolver, rec, *rest:
                        runs.append(rec.name) or real(self, files, resolver, rec, *rest))
    reused = diff_document(diff(*paths))
    assert runs == ["base-files", "libc6", *second_runs]
    monkeypatch.setattr(diff_module, "twin_views", lambda first, second, _changed, memo: (
        OverlayFileView(first, memo), OverlayFileView(second, memo)))
    assert reused == diff_document(diff(*paths))
    added = [c for c in reused["packages"] if c["status"] == "added"]
    assert [c["name"] for c in added] == ["libc6-dev"]
