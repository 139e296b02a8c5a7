"""Real third-party images and layers (../shared/corpus) behave as EXPECT.tsv says.

Skipped with a reason when the corpus is absent. Beyond the EXPECT contract, a few images get
concrete checks against numbers published by their authors (dive's own test expectations) or
recomputed here with Python's tarfile, independently of imgscope's reader.
"""

from __future__ import annotations

import base64
import collections
import gzip
import io
import json
import posixpath
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ABSENT = not (CORPUS / "EXPECT.tsv").is_file()
pytestmark = pytest.mark.skipif(ABSENT, reason=f"shared corpus absent (expected at {CORPUS})")


def _expect_rows() -> list[tuple[str, str]]:
    if ABSENT:
        return [("<corpus absent>", "open")]
    rows = []
    for line in (CORPUS / "EXPECT.tsv").read_text().splitlines()[1:]:
        if line.strip():
            path, expect, _why = line.split("\t", 2)
            rows.append((path, expect))
    return rows


ROWS = _expect_rows()


def _of(kind: str) -> list[str]:
    return [path for path, expect in ROWS if expect == kind]


def _layers() -> list[str]:
    if ABSENT:
        return ["<corpus absent>"]
    return sorted(str(p.relative_to(CORPUS)) for p in (CORPUS / "layers").rglob("*.tar"))


def one_error_line(result) -> str:
    assert result.rc == 2, (result.rc, result.err)
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("imgscope: error: "), lines[0]
    return lines[0]


CHOICE = re.compile(r"holds (\d+) (image|platform)s; choose one with (--image|--platform): (.*)$")
ITEM = re.compile(r"([^\s,(][^,(]*?)(?: \(([^)]*)\))?(?:, |$)")


def parse_choices(line: str) -> tuple[str, list[tuple[str, list[str]]]] | None:
    """('--image' | '--platform', [(choice, [platforms listed with it])]) or None."""
    match = CHOICE.search(line)
    if match is None:
        return None
    count, _, flag, rest = match.groups()
    items = [(m.group(1), m.group(2).split(", ") if m.group(2) else [])
             for m in ITEM.finditer(rest) if m.group(1)]
    assert len(items) == int(count), line
    return flag, items


# --------------------------------------------------------------------------- EXPECT.tsv


@pytest.mark.parametrize("rel", _of("open"))
def test_open(rel: str, cli) -> None:
    path = CORPUS / rel
    result = cli("inspect", path, "--format", "json")
    assert result.rc == 0, result.err
    assert result.err == ""
    doc = result.json()
    assert doc["schema"] == "imgscope/inspect"
    assert len(doc["layers"]) >= 1
    assert doc["verified"] is True
    listing = cli("ls", path, "--format", "json")
    assert listing.rc == 0, listing.err
    assert len(listing.json()["entries"]) == doc["sizes"]["final_entries"]


def _open_choice(cli, path: Path, args: list[str], depth: int = 0) -> list[str]:
    """Open one listed choice; returns the argument lists that opened. A choice whose blobs
    are absent may fail (EXPECT: "each choice that is complete opens"), naming what is
    missing; any other failure fails the test."""
    result = cli("inspect", path, *args, "--format", "json")
    if result.rc == 0:
        return [" ".join(args)]
    line = one_error_line(result)
    parsed = parse_choices(line)
    if parsed is not None and depth == 0 and parsed[0] == "--platform":
        opened = []
        for platform, _ in parsed[1]:
            opened += _open_choice(cli, path, [*args, "--platform", platform], depth + 1)
        return opened
    assert "missing" in line, f"listed choice {args} does not open: {line}"
    return []


@pytest.mark.parametrize("rel", _of("choose"))
def test_choose(rel: str, cli) -> None:
    path = CORPUS / rel
    line = one_error_line(cli("inspect", path))
    parsed = parse_choices(line)
    assert parsed is not None, line
    flag, items = parsed
    names = [name for name, _ in items]
    assert len(set(names)) == len(names), f"ambiguous choices: {line}"
    opened = []
    for name, _platforms in items:
        opened += _open_choice(cli, path, [flag, name])
    assert opened, f"no listed choice opens: {line}"


TAMPERED_MESSAGE = re.compile(
    r"layer \d+ \(.+\): (content|blob) digest is sha256:[0-9a-f]{64}"
    r"|lists \d+ diff_ids for \d+ layers?"
    r"|(manifest|config) sha256:[0-9a-f]{64} has digest sha256:[0-9a-f]{64}"
)


@pytest.mark.parametrize("rel", _of("tampered"))
def test_tampered(rel: str, cli) -> None:
    path = CORPUS / rel
    line = one_error_line(cli("inspect", path))
    assert TAMPERED_MESSAGE.search(line), line
    result = cli("inspect", path, "--no-verify", "--format", "json")
    assert result.rc == 0, result.err
    doc = result.json()
    assert doc["verified"] is False
    assert "not-verified" in {w["code"] for w in doc["warnings"]}
    assert cli("ls", path, "--no-verify", "--format", "json").rc == 0


@pytest.mark.parametrize("rel", _of("broken") + _of("artifact") + _of("not-image"))
def test_refused_with_one_clear_line(rel: str, cli) -> None:
    expect = dict(ROWS)[rel]
    for command in ("inspect", "ls"):
        line = one_error_line(cli(command, CORPUS / rel))
        if expect == "artifact":
            assert "artifact" in line, line


BROKEN_NAMES = {
    # the manifest index.json names lives in shared_blobs/, not blobs/
    "images/containers-image/layout/delete_image_shared_blobs_dir":
        "sha256:eaa95f3cfaac07c8a5153eb77c933269586ad0226c83405776be08547e4d2a18",
    "images/ggcr/layout/test_gc_image_unknown_mediatype": "application/vnd.oci.descriptor.v1+json",
    "images/trivy/layout/NEGATIVE-test_bad_index_json.oci": "index.json",
    "images/trivy/layout/NEGATIVE-test_index_json_dir.oci": "index.json",
    "images/ggcr/tarball/NEGATIVE-null_manifest.tar": "manifest.json",
}


@pytest.mark.parametrize("rel", sorted(BROKEN_NAMES))
def test_refusal_names_the_culprit(rel: str, cli) -> None:
    assert BROKEN_NAMES[rel] in one_error_line(cli("inspect", CORPUS / rel))


def test_fake_text_layers_are_corrupt_not_a_crash(cli) -> None:
    # every image of this layout has "insert binary content here" text as tar+gzip layers
    path = CORPUS / "images/containers-image/layout/delete_image_multiple_images"
    line = one_error_line(cli("inspect", path, "--image", "3"))
    assert re.search(r"layer 0 \(sha256:[0-9a-f]{64}\)", line), line


def test_only_complete_platform_is_selected_and_said_so(cli) -> None:
    # EXPECT.tsv: "the index lists 8 platforms but only linux/arm/v7 has its blobs: select
    # the one complete image (say so)"
    path = CORPUS / "images/snyk/containerd/busybox-armv7-from-multiarch-index.tar"
    doc = cli("inspect", path, "--format", "json").json()
    assert doc["image"]["platform"] == "linux/arm/v7"
    assert doc["image"]["tags"] == ["busybox:latest"]
    assert "incomplete-platforms" in {w["code"] for w in doc["warnings"]}


def test_attestation_manifest_is_skipped(cli) -> None:
    path = CORPUS / "images/snyk/containerd/busybox-arm64-with-attestation.tar"
    doc = cli("inspect", path, "--format", "json").json()
    assert doc["image"]["platform"] == "linux/arm64"
    assert doc["image"]["tags"] == ["foo/bar:v3"]
    (layer,) = doc["layers"]
    assert (layer["compression"], layer["compressed_bytes"]) == ("gzip", 1_844_697)


# --------------------------------------------------------------------------- concrete images


def by_path(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in entries}


def test_dive_docker_image(cli) -> None:
    path = CORPUS / "images/dive/test-docker-image.tar"
    doc = cli("inspect", path, "--format", "json").json()
    assert len(doc["layers"]) == 14
    assert [layer["entries"] for layer in doc["layers"]] == [
        415, 1, 4, 3, 3, 3, 3, 4, 2, 2, 4, 2, 3, 2]
    assert doc["image"]["tags"] == ["dive-test:latest"]
    # dive's own expectations for this image (dive/image/docker/image_archive_analysis_test.go):
    # sizeBytes 1220598, inefficientBytes 32025, efficiencyScore 0.9844212134184309
    assert doc["sizes"]["shipped_bytes"] == 1_220_598
    assert doc["efficiency"]["wasted_bytes"] == 32_025
    assert doc["efficiency"]["dive_wasted_bytes"] == 32_025
    assert doc["efficiency"]["dive_score"] == round(0.9844212134184309, 6)
    rows = by_path(cli("ls", path, "--format", "json").json()["entries"])
    # layer 7 whites out somefile3.txt, layer 9 the whole /root/example directory
    assert not [p for p in rows if p.startswith("/root/example")]
    assert [(p, e["size"], e["layer"]) for p, e in rows.items()
            if p.startswith(("/root/", "/tmp/", "/somefile"))] == [
        ("/root/.data", 0, 12),
        ("/root/.data/saved.again2.txt", 6405, 12),
        ("/root/.data/tag.sh", 917, 10),
        ("/root/.data/test.sh", 1270, 10),
        ("/root/.saved.txt", 6405, 8),
        ("/root/saved.txt", 6405, 13),
        ("/somefile.txt", 6405, 1),
        ("/tmp/saved.again1.txt", 6405, 11),
    ]
    # busybox: 392 hard links to bin/[ in layer 0 -> one inode for 393 names
    groups = collections.Counter(e["inode"] for e in rows.values())
    (inode, names), = [(i, n) for i, n in groups.items() if n > 1]
    assert names == 393
    assert rows["/bin/["]["inode"] == inode
    assert rows["/bin/busybox"]["size"] == 1_075_464


@pytest.mark.parametrize(
    ("name", "compression"),
    [("uncompressed", "none"), ("gzip", "gzip"), ("zstd", "zstd"), ("estargz", "gzip")],
)
def test_dive_oci_variants(name: str, compression: str, cli) -> None:
    path = CORPUS / f"images/dive/test-oci-{name}-image.tar"
    doc = cli("inspect", path, "--format", "json").json()
    (layer,) = doc["layers"]
    assert layer["compression"] == compression
    assert doc["image"]["platform"] == "linux/arm64"
    entries = cli("ls", path, "--format", "json").json()["entries"]
    assert [(e["path"], e["size"]) for e in entries] == [("/README.md", 11189)]


def test_dive_estargz_trailing_bytes(cli) -> None:
    """The TOC after the end blocks is trailing data, measured here with gzip + tarfile."""
    path = CORPUS / "images/dive/test-oci-estargz-image.tar"
    with tarfile.open(path) as outer:
        index = json.load(outer.extractfile("index.json"))
        manifest = json.load(outer.extractfile(
            "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
        blob = outer.extractfile(
            "blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]).read()
    stream = _gunzip_members(blob)
    with tarfile.open(fileobj=io.BytesIO(stream)) as layer:
        last = layer.getmembers()[-1]
        end = last.offset_data + -(-last.size // 512) * 512 + 1024
    doc = cli("inspect", path, "--format", "json").json()
    assert doc["layers"][0]["trailing_bytes"] == len(stream) - end > 0
    assert doc["layers"][0]["uncompressed_bytes"] == len(stream)


def _gunzip_members(data: bytes) -> bytes:
    import zlib

    out = []
    while data:
        d = zlib.decompressobj(31)
        out.append(d.decompress(data))
        data = d.unused_data
    return b"".join(out)


def _single_layer_members(path: Path) -> list[tarfile.TarInfo]:
    """The members of the only layer of a docker-archive, read with tarfile alone."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    with tarfile.open(fileobj=io.BytesIO(raw)) as outer:
        (image,) = json.load(outer.extractfile("manifest.json"))
        (name,) = image["Layers"]
        member = outer.getmember(name)
        while member.issym():
            member = outer.getmember(
                posixpath.normpath(posixpath.join(posixpath.dirname(member.name),
                                                  member.linkname)))
        data = outer.extractfile(member).read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        return layer.getmembers()


@pytest.mark.parametrize(
    ("rel", "symlinks", "hardlinks"),
    [
        ("images/trivy/alpine-310.tar.gz", 324, 0),
        ("images/trivy/alpine-311.tar.gz", 326, 0),
        ("images/snyk/skopeo/busybox.tar", 0, 397),
    ],
)
def test_single_layer_images_match_tarfile(rel: str, symlinks: int, hardlinks: int, cli) -> None:
    path = CORPUS / rel
    members = [m for m in _single_layer_members(path) if m.name.strip("./")]
    assert sum(m.issym() for m in members) == symlinks
    assert sum(m.islnk() for m in members) == hardlinks
    rows = by_path(cli("ls", path, "--format", "json").json()["entries"])
    expected = {"/" + posixpath.normpath(m.name.lstrip("/")): m for m in members}
    assert sorted(rows) == sorted(expected)
    kinds = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink"}
    for p, m in expected.items():
        row = rows[p]
        assert row["type"] == kinds.get(m.type, "file"), p
        # some writers put the file type bits in the mode field: only permissions count
        assert (row["mode"], row["uid"], row["gid"], row["mtime"]) == (
            m.mode & 0o7777, m.uid, m.gid, m.mtime), p
        if m.issym():
            assert row["link_target"] == m.linkname
        elif m.isfile():
            assert row["size"] == m.size
    # every hard link shares its target's inode, and nothing else does
    groups: dict[str, set[str]] = collections.defaultdict(set)
    for p, m in expected.items():
        if m.islnk():
            target = "/" + posixpath.normpath(m.linkname.lstrip("/"))
            groups[target] |= {target, p}
    for target, names in groups.items():
        assert {rows[n]["inode"] for n in names} == {rows[target]["inode"]}
        assert all(rows[n]["size"] == rows[target]["size"] for n in names)
    shared = collections.Counter(r["inode"] for r in rows.values())
    assert sum(n for n in shared.values() if n > 1) == sum(len(g) for g in groups.values())


def test_ggcr_whiteouts(cli) -> None:
    image = by_path(cli("ls", CORPUS / "images/ggcr/mutate/whiteout_image.tar",
                        "--format", "json").json()["entries"])
    assert [(p, e["size"], e["layer"]) for p, e in image.items()] == [("/bar.txt", 4, 0)]
    whiteout_dir = by_path(cli("ls", CORPUS / "images/ggcr/mutate/whiteout_dir.tar",
                               "--format", "json").json()["entries"])
    assert [(p, e["type"], e["layer"]) for p, e in whiteout_dir.items()] == [
        ("/a", "dir", 3), ("/a/baz", "file", 3), ("/b", "dir", 1), ("/b/bar", "file", 1)]


def test_opaque_whiteouts_remove_node(cli) -> None:
    path = CORPUS / "images/snyk/skopeo/node-removed-oci.tar"
    raw = cli("ls", path, "--layer", "2", "--format", "json").json()["entries"]
    assert [(e["path"], e.get("whiteout", False), e.get("opaque", False)) for e in raw
            if e.get("whiteout") or e.get("opaque")] == [
        ("/node", True, False), ("/proc", False, True), ("/sys", False, True)]
    rows = by_path(cli("ls", path, "--format", "json").json()["entries"])
    assert "/node" not in rows
    assert rows["/bin/busybox"]["size"] == rows["/bin/["]["size"]


def test_docker25_hello_world_with_null_tags(cli) -> None:
    path = CORPUS / "images/ggcr/tarball/hello-world-v25.tar"
    doc = cli("inspect", path, "--format", "json").json()
    assert doc["image"]["tags"] == []
    assert doc["layers"][0]["diff_id"] == (
        "sha256:12660636fe55438cc3ae7424da7ac56e845cdb52493ff9cf949c47a7f57f8b43")
    rows = cli("ls", path, "--format", "json").json()["entries"]
    assert [(e["path"], e["size"], e["mode"]) for e in rows] == [("/hello", 9136, 0o755)]


def test_test_link_second_image_reads_the_symlinked_layer(cli) -> None:
    path = CORPUS / "images/ggcr/tarball/test_link.tar"
    doc = cli("inspect", path, "--image", "bazel/v1/tarball:test_image_3",
              "--format", "json").json()
    assert len(doc["layers"]) == 2
    first = cli("inspect", path, "--image", "bazel/v1/tarball:test_image_1",
                "--format", "json").json()
    assert doc["layers"][0]["measured_diff_id"] == first["layers"][0]["measured_diff_id"]


# --------------------------------------------------------------------------- single layers


@pytest.mark.parametrize("rel", _layers())
def test_every_corpus_layer_replays(rel: str) -> None:
    from imgscope.api import replay_layer_tars

    replay = replay_layer_tars([CORPUS / rel])
    assert len(replay.stats) == 1
    assert replay.stats[0].entries >= 1
    paths = [p for p, _ in replay.fs.iter_nodes()]
    assert paths == sorted(paths, key=lambda p: p.encode("utf-8", "surrogateescape"))


def _replay(*rels: str):
    from imgscope.api import replay_layer_tars

    return replay_layer_tars([CORPUS / rel for rel in rels])


def test_bad_name_keeps_the_raw_byte(cli) -> None:
    replay = _replay("layers/claircore/bad_name.tar")
    ((path, node),) = list(replay.fs.iter_nodes())
    assert path.encode("utf-8", "surrogateescape") == b"/" + b"_" * 100 + b"bad\xfdname"
    assert (node.type.value, node.size) == ("file", 9)
    from imgscope.report.json_report import ls_entries

    (entry,) = ls_entries(replay.fs)
    assert entry["path"] == "/" + "_" * 100 + "bad\\xfdname"
    assert base64.b64decode(entry["path_b64"]) == b"/" + b"_" * 100 + b"bad\xfdname"


def test_concat_reads_both_streams_as_one(cli) -> None:
    # Despite its name, concat.tar has no end-of-archive blocks between its two parts: a tar
    # reader (Go's, GNU tar, tarfile) sees 11 members in one stream. The second part turns
    # ./var/run from a symlink (-> ../run) into a directory, so nothing lands in /run/console.
    replay = _replay("layers/claircore/concat.tar")
    assert replay.stats[0].entries == 11
    assert [(p, n.type.value) for p, n in replay.fs.iter_nodes()] == [
        ("/run", "dir"), ("/run/logs", "dir"), ("/run/logs/log.txt", "file"), ("/var", "dir"),
        ("/var/run", "dir"), ("/var/run/console", "dir"), ("/var/run/console/algo.txt", "file"),
    ]


def test_odd_layer_without_end_blocks() -> None:
    replay = _replay("layers/claircore/oddlayer.tar")
    assert list(replay.fs.iter_nodes()) == []
    assert [f.kind for f in replay.findings] == ["no-end-of-archive"]


def test_escape_attempts_are_findings_not_files() -> None:
    replay = _replay("layers/osv-scalibr/NEGATIVE-escape.tar")
    assert sorted((f.kind, f.path) for f in replay.findings if f.kind != "no-end-of-archive") \
        == sorted([
            ("absolute-path", "/escape/poc.txt"),
            ("absolute-path", "/usr/share/doc/a/copyright"),
            ("absolute-path", "/trampoline"),
            ("absolute-path", "/usr/share/doc/b/copyright"),
            ("absolute-path", "/escape"),
            ("absolute-path", "/usr/share/doc/c/copyright"),
        ])
    nodes = dict(replay.fs.iter_nodes())
    # /escape/poc.txt came first; the later /escape symlink replaced its directory
    assert nodes["/escape"].type.value == "symlink"
    assert "/escape/poc.txt" not in nodes
    assert nodes["/trampoline"].link_target == "."


def test_absolute_member_names_are_kept_under_the_root() -> None:
    replay = _replay("layers/snyk/layer_with_bad_elf_file.tar")
    helper = "/layers/paketo-buildpacks_ca-certificates/helper"
    nodes = dict(replay.fs.iter_nodes())
    assert nodes[f"{helper}/helper"].size == 1_402_300
    assert nodes[f"{helper}/exec.d/ca-certificates-helper"].link_target == f"{helper}/helper"
    assert len([f for f in replay.findings if f.kind == "absolute-path"]) == 6


def test_regclient_whiteout_layer_on_top_of_its_base() -> None:
    replay = _replay("layers/regclient/layer.tar", "layers/regclient/layer-wh.tar")
    nodes = dict(replay.fs.iter_nodes())
    assert sorted(nodes) == ["/exdir", "/layer1.txt", "/layer3.txt"]
    assert [nodes[p].layer for p in ("/exdir", "/layer1.txt", "/layer3.txt")] == [1, 1, 1]
    assert [(w.path, w.how) for w in replay.wasted] == [
        ("/layer1.txt", "replaced"), ("/layer2.txt", "whiteout"), ("/layer3.txt", "replaced")]
    assert (replay.stats[1].whiteouts, replay.stats[1].opaque_dirs) == (1, 1)


def test_trivy_walker_layer() -> None:
    replay = _replay("layers/trivy/walker-test.tar")
    assert [p for p, _ in replay.fs.iter_nodes()] == [
        "/app", "/app/myweb", "/app/myweb/index.html", "/baz", "/etc", "/foo", "/vendor",
        "/vendor/bar"]
    assert (replay.stats[0].whiteouts, replay.stats[0].opaque_dirs) == (1, 1)
