"""One image, every container format; and each overlay rule on a generated image.

The fixtures come from fixtures/build.py, so every expected value below is either typed from
the layer specs (paths, sizes, modes) or recomputed from the same specs (digests).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import imgscope_fixtures_build as fb
import pytest

MTIME = fb.MTIME
LONG_DIR = "/usr/share/" + "/".join(f"long-directory-name-{i:02d}" for i in range(6))
USTAR_DIR = "/usr/share/" + "u" * 90

LAYER_COMPRESSION = {
    "formats/docker-layers-gzip.tar": "gzip",
    "formats/kaniko.tar": "gzip",
    "formats/oci-layers-gzip.tar": "gzip",
    "formats/oci-mislabeled-gzip.tar": "gzip",
    "formats/oci-layers-zstd.tar": "zstd",
    "formats/oci-mislabeled-zstd.tar": "zstd",
    "formats/docker25-layers-zstd.tar": "zstd",
    "formats/oci-layers-estargz.tar": "estargz",
}


def ls_json(cli: Callable[..., Any], path: Path, *args: object) -> list[dict[str, Any]]:
    result = cli("ls", path, "--format", "json", *args)
    assert result.rc == 0, result.err
    assert result.err == ""
    doc = result.json()
    assert doc["schema"] == "imgscope/ls"
    assert doc["schema_version"] == 1
    return doc["entries"]


def by_path(entries: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in entries}


def inspect_json(cli: Callable[..., Any], path: Path, *args: object) -> dict[str, Any]:
    result = cli("inspect", path, "--format", "json", *args)
    assert result.rc == 0, result.err
    return result.json()


def write(tmp_path: Path, *layers: Sequence[fb.Member], fmt: str = "docker") -> Path:
    """An image of the given layers (lists of members) as a docker-archive in tmp_path."""
    spec = fb.ImageSpec([fb.LayerSpec(list(members)) for members in layers])
    return fb.write_image(tmp_path / f"image-{fmt}.tar", spec, fmt)


@pytest.fixture(scope="module")
def rich_built() -> fb.BuiltImage:
    return fb.build_image(fb.rich_image())


# --------------------------------------------------------------------------- every format


@pytest.mark.parametrize("name", fb.RICH_FORMATS)
def test_every_format_lists_the_same_entries(name: str, built, cli) -> None:
    reference = ls_json(cli, built("formats/docker.tar"))
    assert len(reference) == 44
    assert ls_json(cli, built(name)) == reference


@pytest.mark.parametrize("name", fb.RICH_FORMATS)
def test_every_format_reports_the_layers_it_stores(name: str, built, cli, rich_built) -> None:
    compression = LAYER_COMPRESSION.get(name, "none")
    expected = rich_built if compression == "none" else fb.build_image(
        fb.with_compression(fb.rich_image(), compression)
    )
    doc = inspect_json(cli, built(name))
    layers = doc["layers"]
    assert [layer["diff_id"] for layer in layers] == [x.diff_id for x in expected.layers]
    assert [layer["measured_diff_id"] for layer in layers] == [x.diff_id for x in expected.layers]
    assert [layer["blob_digest"] for layer in layers] == [x.blob.digest for x in expected.layers]
    assert [layer["compressed_bytes"] for layer in layers] == [x.blob.size for x in expected.layers]
    assert [layer["uncompressed_bytes"] for layer in layers] == [
        x.uncompressed_size for x in expected.layers
    ]
    sniffed = "gzip" if compression == "estargz" else compression
    assert [layer["compression"] for layer in layers] == [sniffed] * 3
    assert doc["image"]["config_digest"] == expected.config.digest
    assert doc["verified"] is True
    assert doc["warnings"] == []


def test_estargz_diff_ids_cover_the_toc_after_the_end_blocks(built, cli) -> None:
    spec = fb.with_compression(fb.rich_image(), "estargz")
    expected = fb.build_image(spec)
    # same files as the plain image, different streams: the TOC entry is hashed too
    assert [x.diff_id for x in expected.layers] != [
        x.diff_id for x in fb.build_image(fb.rich_image()).layers
    ]
    layers = inspect_json(cli, built("formats/oci-layers-estargz.tar"))["layers"]
    for layer, layer_spec in zip(layers, spec.layers, strict=True):
        plain = fb.layer_tar(layer_spec.members)
        _, stream, _ = fb.estargz_blob(layer_spec.members)
        # data after the two end blocks: the stargz.index.json entry and its end blocks
        assert layer["trailing_bytes"] == len(stream) - len(plain)


@pytest.mark.parametrize("name", ["formats/docker.tar", "formats/oci-layers-zstd.tar"])
def test_no_trailing_bytes_after_a_proper_end_of_archive(name: str, built, cli) -> None:
    # Two zero blocks end a tar; neither is "data after the end".
    layers = inspect_json(cli, built(name))["layers"]
    assert [layer["trailing_bytes"] for layer in layers] == [0, 0, 0]


def test_plain_layer_with_data_after_the_end_blocks(tmp_path: Path, cli) -> None:
    junk = b"TOC" * 300  # 900 bytes after the end-of-archive blocks
    spec = fb.ImageSpec([fb.LayerSpec([fb.file("a", b"a\n")], trailing=junk)])
    path = fb.write_image(tmp_path / "trailing.tar", spec)
    (layer,) = inspect_json(cli, path)["layers"]
    assert layer["trailing_bytes"] == 900
    assert layer["uncompressed_bytes"] == 512 + 512 + 1024 + 900
    assert layer["measured_diff_id"] == fb.build_layer(spec.layers[0]).diff_id
    assert [e["path"] for e in ls_json(cli, path)] == ["/a"]


def test_media_types_are_reported_as_written_but_bytes_decide(built, cli) -> None:
    layers = inspect_json(cli, built("formats/oci-mislabeled-zstd.tar"))["layers"]
    assert {layer["media_type"] for layer in layers} == {fb.MT_LAYER["gzip"]}
    assert {layer["compression"] for layer in layers} == {"zstd"}
    layers = inspect_json(cli, built("formats/oci-mislabeled-gzip.tar"))["layers"]
    assert {layer["media_type"] for layer in layers} == {fb.MT_LAYER["none"]}
    assert {layer["compression"] for layer in layers} == {"gzip"}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("formats/docker.tar", "docker-archive"),
        ("formats/docker-dir", "docker-archive"),
        ("formats/podman.tar", "docker-archive"),
        ("formats/kaniko.tar", "docker-archive"),
        ("formats/oci.tar", "oci-archive"),
        ("formats/oci-gzipped.tar", "oci-archive"),
        ("formats/oci-dir", "oci-layout"),
    ],
)
def test_source_format_is_recognised_by_content(name: str, fmt: str, built, cli) -> None:
    assert inspect_json(cli, built(name))["image"]["format"] == fmt


def test_config_fields_and_history(built, cli, rich_built) -> None:
    doc = inspect_json(cli, built("formats/oci.tar"))
    image = doc["image"]
    assert image["entrypoint"] == ["/app/run.sh"]
    assert image["cmd"] == ["--serve"]
    assert image["env"] == [fb.DEFAULT_ENV, "APP_ENV=production"]
    assert image["user"] == "1000:1000"
    assert image["working_dir"] == "/app"
    assert image["exposed_ports"] == ["8080/tcp"]
    assert image["labels"] == {"org.opencontainers.image.title": "rich"}
    assert (image["os"], image["architecture"], image["platform"]) == (
        "linux", "amd64", "linux/amd64")
    assert image["manifest_digest"] == rich_built.manifest.digest
    assert [(h["created_by"], h["empty_layer"]) for h in image["history"]] == [
        ("/bin/sh -c #(nop) ADD file:base in / ", False),
        ("ENV APP_ENV=production", True),
        ("/bin/sh -c apt-get install -y iputils-ping", False),
        ("COPY app /app # buildkit", False),
        ('ENTRYPOINT ["/app/run.sh"]', True),
    ]
    # layers pair with the non-empty history entries, skipping the empty ones
    assert [(layer["history_index"], layer["created_by"]) for layer in doc["layers"]] == [
        (0, "/bin/sh -c #(nop) ADD file:base in / "),
        (2, "/bin/sh -c apt-get install -y iputils-ping"),
        (3, "COPY app /app # buildkit"),
    ]


@pytest.mark.parametrize(
    "name", ["formats/docker.tar", "formats/docker-gzipped.tar", "formats/oci.tar",
             "formats/docker25-layers-zstd.tar", "formats/oci-layers-estargz.tar"],
)
def test_standard_input_gives_the_same_listing(name: str, built, cli, cli_proc) -> None:
    reference = ls_json(cli, built("formats/docker.tar"))
    result = cli_proc(["ls", "-", "--format", "json"], stdin_path=built(name))
    assert result.rc == 0, result.err
    assert result.json()["entries"] == reference


def test_standard_input_inspect_verifies_digests(built, cli_proc, rich_built) -> None:
    result = cli_proc(["inspect", "-", "--format", "json"], stdin_path=built("formats/oci.tar"))
    assert result.rc == 0, result.err
    doc = result.json()
    assert [x["measured_diff_id"] for x in doc["layers"]] == [
        x.diff_id for x in rich_built.layers
    ]
    assert doc["verified"] is True


# --------------------------------------------------------------------------- the rich image

RICH_EXPECTED = [
    # path, type, size, mode, uid, gid, link_target, layer
    ("/app", "dir", 0, 0o755, 0, 0, None, 2),
    ("/app/data.bin", "file", 3000, 0o644, 0, 0, None, 2),
    ("/app/run.sh", "file", 41, 0o755, 0, 0, None, 2),
    ("/bin", "dir", 0, 0o755, 0, 0, None, 0),
    ("/bin/busybox", "file", 8192, 0o755, 0, 0, None, 2),
    ("/bin/ls", "symlink", 0, 0o777, 0, 0, "/usr/bin/busybox", 0),
    ("/bin/sh", "file", 8192, 0o755, 0, 0, None, 0),
    ("/dev", "dir", 0, 0o755, 0, 0, None, 0),
    ("/dev/loop0", "block", 0, 0o660, 0, 0, None, 0),
    ("/dev/null", "char", 0, 0o666, 0, 0, None, 0),
    ("/etc", "dir", 0, 0o755, 0, 0, None, 0),
    ("/etc/os-release", "file", 28, 0o644, 0, 0, None, 0),
    ("/etc/passwd", "file", 30, 0o644, 0, 0, None, 0),
    ("/home", "dir", 0, 0o755, 0, 0, None, 0),
    ("/home/big", "dir", 0, 0o755, 3_000_000, 3_000_000, None, 0),
    ("/home/big/file", "file", 8, 0o644, 3_000_000, 3_000_000, None, 0),
    ("/home/gnu-big", "file", 13, 0o644, 5_000_000, 4_000_000, None, 0),
    ("/tmp", "dir", 0, 0o1777, 0, 0, None, 0),
    ("/tmp/cache", "dir", 0, 0o755, 0, 0, None, 0),
    ("/tmp/cache/b", "file", 8, 0o644, 0, 0, None, 1),
    ("/usr", "dir", 0, 0o755, 0, 0, None, 0),
    ("/usr/bin", "dir", 0, 0o755, 0, 0, None, 0),
    ("/usr/bin/busybox", "file", 8192, 0o755, 0, 0, None, 0),
    ("/usr/bin/ping", "file", 3000, 0o755, 0, 0, None, 1),
    ("/usr/bin/su", "file", 1000, 0o4755, 0, 0, None, 0),
    ("/usr/lib", "dir", 0, 0o755, 0, 0, None, 0),
    ("/usr/lib/libc.so.6", "file", 6000, 0o755, 0, 0, None, 1),
    ("/usr/share", "dir", 0, 0o755, 0, 0, None, 1),
    ("/usr/share/caf\\xe9.txt", "file", 13, 0o644, 0, 0, None, 1),
    (f"{LONG_DIR}/gnu-long-name.txt", "file", 4, 0o644, 0, 0, None, 1),
    (f"{LONG_DIR}/pax-long-name.txt", "file", 4, 0o644, 0, 0, None, 1),
    ("/usr/share/na\\xefve-gnu.txt", "file", 26, 0o644, 0, 0, None, 1),
    (f"{USTAR_DIR}/ustar-prefix-name.txt", "file", 6, 0o644, 0, 0, None, 1),
    ("/var", "dir", 0, 0o755, 0, 0, None, 0),
    ("/var/lib", "dir", 0, 0o755, 0, 0, None, 0),
    ("/var/log", "dir", 0, 0o755, 0, 0, None, 0),
    ("/var/log/lastlog", "file", 1 << 20, 0o644, 0, 0, None, 1),
]
# parents no tar member names: created by layer 1, as a runtime would (0755 root, mtime 0)
RICH_IMPLICIT = [
    "/usr/share/" + "/".join(f"long-directory-name-{i:02d}" for i in range(n))
    for n in range(1, 7)
] + [USTAR_DIR]


def test_rich_image_exact_listing(built, cli) -> None:
    entries = ls_json(cli, built("formats/docker.tar"))
    paths = [e["path"] for e in entries]
    assert paths == sorted(paths, key=lambda p: p.encode())
    explicit = [e for e in entries if e["path"] not in RICH_IMPLICIT]
    assert [
        (e["path"], e["type"], e["size"], e["mode"], e["uid"], e["gid"], e["link_target"],
         e["layer"])
        for e in explicit
    ] == RICH_EXPECTED
    assert all(e["mtime"] == MTIME for e in explicit)
    implicit = [e for e in entries if e["path"] in RICH_IMPLICIT]
    assert [(e["path"], e["type"], e["layer"], e["mode"], e["uid"], e["mtime"]) for e in implicit] \
        == [(p, "dir", 1, 0o755, 0, 0) for p in sorted(RICH_IMPLICIT)]
    rows = by_path(entries)
    # removed: by a file whiteout, an opaque marker and a directory whiteout
    for gone in ("/var/lib/old.db", "/tmp/cache/a", "/run", "/run/initctl"):
        assert gone not in rows
    assert (rows["/dev/null"]["devmajor"], rows["/dev/null"]["devminor"]) == (1, 3)
    assert (rows["/dev/loop0"]["devmajor"], rows["/dev/loop0"]["devminor"]) == (7, 0)


def test_rich_image_hard_links_share_one_inode(built, cli) -> None:
    rows = by_path(ls_json(cli, built("formats/docker.tar")))
    busybox = {rows[p]["inode"] for p in ("/usr/bin/busybox", "/bin/sh", "/bin/busybox")}
    assert len(busybox) == 1
    others = [e["inode"] for p, e in rows.items()
              if p not in ("/usr/bin/busybox", "/bin/sh", "/bin/busybox")]
    assert len(set(others)) == len(others) == 41
    assert busybox.isdisjoint(others)


def test_rich_image_sizes_and_waste(built, cli) -> None:
    doc = inspect_json(cli, built("formats/docker.tar"))
    sizes = doc["sizes"]
    # every regular file of RICH_EXPECTED, busybox counted once for its three names
    files = {row[0]: row[2] for row in RICH_EXPECTED if row[1] == "file"}
    assert len(files) == 19
    once = sum(files.values()) - files["/bin/busybox"] - files["/bin/sh"]
    assert once == 1_069_949
    assert sizes["final_bytes"] == once
    assert sizes["final_files"] == 17  # distinct files: three names of busybox count once
    assert sizes["final_entries"] == 44
    assert doc["efficiency"]["wasted_bytes"] == 4096 + 2048 + 8
    assert [(w["path"], w["bytes"], w["layer"], w["hidden_by_layer"], w["how"])
            for w in doc["wasted"]["files"]] == [
        ("/usr/lib/libc.so.6", 4096, 0, 1, "replaced"),
        ("/var/lib/old.db", 2048, 0, 1, "whiteout"),
        ("/tmp/cache/a", 8, 0, 1, "opaque"),
    ]
    assert [(x["whiteouts"], x["opaque_dirs"]) for x in doc["layers"]] == [(0, 0), (1, 1), (1, 0)]
    assert [x["path"] for x in doc["setuid_setgid"]] == ["/usr/bin/su"]


def test_layer_listing_shows_raw_members_in_tar_order(built, cli) -> None:
    entries = ls_json(cli, built("formats/oci.tar"), "--layer", "2")
    assert [(e["path"], e["type"], e.get("whiteout", False), e["link_target"])
            for e in entries] == [
        ("/app", "dir", False, None),
        ("/app/run.sh", "file", False, None),
        ("/app/data.bin", "file", False, None),
        ("/bin/busybox", "hardlink", False, "/usr/bin/busybox"),
        ("/run", "file", True, None),
    ]
    middle = by_path(ls_json(cli, built("formats/oci.tar"), "--layer", "1"))
    assert middle["/tmp/cache"]["opaque"] is True
    assert middle["/var/lib/old.db"]["whiteout"] is True
    # the sparse file: apparent size, and only its two 512-byte regions stored
    assert (middle["/var/log/lastlog"]["size"], middle["/var/log/lastlog"]["stored_size"]) == (
        1 << 20, 1024)


def test_layer_index_out_of_range(built, cli) -> None:
    result = cli("ls", built("formats/docker.tar"), "--layer", "3")
    assert result.rc == 2
    assert result.err == (
        "imgscope: error: layer 3 does not exist; the image has 3 layers (0 to 2)\n"
    )


def test_xattrs_are_kept(built) -> None:
    from imgscope.api import analyze

    node = analyze(built("formats/oci-layers-zstd.tar")).fs.get("/usr/bin/ping")
    assert node is not None
    ((name, value),) = node.xattrs
    assert name == "security.capability"
    assert value.encode("utf-8", "surrogateescape") == b"\x01\x00\x00\x02\x00\x20" + bytes(14)


# --------------------------------------------------------------------------- overlay rules


def test_whiteout_removes_from_lower_layers(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.directory("a/"), fb.file("a/x", b"xxxx"), fb.file("a/y", b"yy")],
        [fb.whiteout("a/x")],
    )
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/a", "/a/y"]
    assert (rows["/a/y"]["size"], rows["/a/y"]["layer"]) == (2, 0)


@pytest.mark.parametrize("whiteout_first", [False, True])
def test_whiteout_does_not_hide_a_file_of_its_own_layer(
    whiteout_first: bool, tmp_path: Path, cli
) -> None:
    same_layer = [fb.file("a/x", b"upper version"), fb.file("a/new", b"n")]
    markers = [fb.whiteout("a/x"), fb.whiteout("a/new")]
    upper = markers + same_layer if whiteout_first else same_layer + markers
    path = write(tmp_path, [fb.directory("a/"), fb.file("a/x", b"lower")], upper)
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/a", "/a/new", "/a/x"]
    assert (rows["/a/x"]["size"], rows["/a/x"]["layer"]) == (len(b"upper version"), 1)
    assert (rows["/a/new"]["size"], rows["/a/new"]["layer"]) == (1, 1)


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_opaque_marker_anywhere_in_the_tar(position: str, tmp_path: Path, cli) -> None:
    lower = [fb.directory("d/"), fb.file("d/old", b"old"), fb.directory("d/sub/"),
             fb.file("d/sub/deep", b"deep"), fb.file("keep", b"k")]
    new = [fb.file("d/new", b"new!"), fb.directory("d/newsub/"), fb.file("d/newsub/f", b"f")]
    marker = fb.opaque("d")
    upper = {"first": [marker, *new], "middle": [new[0], marker, *new[1:]],
             "last": [*new, marker]}[position]
    path = write(tmp_path, lower, upper)
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/d", "/d/new", "/d/newsub", "/d/newsub/f", "/keep"]
    assert rows["/d"]["layer"] == 0  # the directory itself stays; only lower children go
    doc = inspect_json(cli, path)
    assert sorted((w["path"], w["bytes"], w["how"]) for w in doc["wasted"]["files"]) == [
        ("/d/old", 3, "opaque"), ("/d/sub/deep", 4, "opaque")]


def test_directory_whiteout_drops_the_subtree(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.directory("d/"), fb.directory("d/e/"), fb.file("d/e/f", b"12345"),
         fb.file("d/g", b"123"), fb.symlink("d/link", "e/f"), fb.file("other", b"o")],
        [fb.whiteout("d")],
    )
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/other"]
    doc = inspect_json(cli, path)
    assert sorted((w["path"], w["bytes"], w["how"]) for w in doc["wasted"]["files"]) == [
        ("/d/e/f", 5, "whiteout"), ("/d/g", 3, "whiteout")]
    assert doc["layers"][1]["removed"]["entries"] == 5
    assert doc["layers"][1]["removed"]["bytes"] == 8


def test_directory_whiteout_keeps_what_its_own_layer_writes(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.directory("d/"), fb.file("d/old", b"old")],
        [fb.file("d/new", b"new"), fb.whiteout("d")],
    )
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/d", "/d/new"]
    assert rows["/d/new"]["layer"] == 1


def test_file_replaced_by_a_directory(tmp_path: Path, cli) -> None:
    path = write(tmp_path, [fb.file("p", b"a file!")], [fb.directory("p/"), fb.file("p/q", b"q")])
    rows = by_path(ls_json(cli, path))
    assert [(p, e["type"], e["layer"]) for p, e in rows.items()] == [
        ("/p", "dir", 1), ("/p/q", "file", 1)]
    wasted = inspect_json(cli, path)["wasted"]["files"]
    assert [(w["path"], w["bytes"], w["layer"], w["hidden_by_layer"]) for w in wasted] == [
        ("/p", 7, 0, 1)]


def test_directory_replaced_by_a_file(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.directory("r/"), fb.file("r/s", b"sss"), fb.directory("r/t/"), fb.file("r/t/u", b"u")],
        [fb.file("r", b"now a file")],
    )
    rows = by_path(ls_json(cli, path))
    assert [(p, e["type"], e["size"], e["layer"]) for p, e in rows.items()] == [
        ("/r", "file", 10, 1)]
    wasted = inspect_json(cli, path)["wasted"]["files"]
    assert sorted((w["path"], w["bytes"]) for w in wasted) == [("/r/s", 3), ("/r/t/u", 1)]


def test_hard_links_count_once_also_across_layers(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.directory("bin/"), fb.file("bin/busybox", fb.det_bytes("bb", 1000), mode=0o755),
         fb.hardlink("bin/sh", "bin/busybox")],
        [fb.hardlink("bin/ash", "bin/busybox"), fb.file("bin/other", b"12")],
    )
    rows = by_path(ls_json(cli, path))
    assert {rows[p]["inode"] for p in ("/bin/busybox", "/bin/sh", "/bin/ash")} == {
        rows["/bin/busybox"]["inode"]}
    assert rows["/bin/other"]["inode"] != rows["/bin/busybox"]["inode"]
    assert [rows[p]["size"] for p in ("/bin/busybox", "/bin/sh", "/bin/ash")] == [1000] * 3
    assert (rows["/bin/ash"]["layer"], rows["/bin/ash"]["mode"]) == (1, 0o755)
    doc = inspect_json(cli, path)
    assert doc["sizes"]["final_bytes"] == 1002
    assert doc["sizes"]["final_files"] == 2  # busybox (three names) and other


def test_hard_link_keeps_content_when_its_first_name_is_whited_out(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.file("a", fb.det_bytes("a", 700)), fb.hardlink("b", "a")],
        [fb.whiteout("a")],
    )
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/b"]
    assert rows["/b"]["size"] == 700
    doc = inspect_json(cli, path)
    assert doc["sizes"]["final_bytes"] == 700
    assert doc["wasted"]["count"] == 0  # the bytes are still visible through /b


def test_last_duplicate_in_one_layer_wins(tmp_path: Path, cli) -> None:
    path = write(tmp_path, [fb.file("dup", b"first"), fb.file("dup", b"second!!", mode=0o600)])
    rows = by_path(ls_json(cli, path))
    assert (rows["/dup"]["size"], rows["/dup"]["mode"]) == (8, 0o600)
    doc = inspect_json(cli, path)
    assert [(w["path"], w["bytes"], w["how"]) for w in doc["wasted"]["files"]] == [
        ("/dup", 5, "duplicate-in-layer")]
    assert doc["sizes"]["final_bytes"] == 8


def test_names_are_normalised(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.directory("./"), fb.directory("./etc/"), fb.file("./etc/./conf", b"c"),
         fb.file("/opt/abs", b"abs"), fb.directory("usr/"), fb.directory("usr//local/"),
         fb.file("usr/local/../local/x", b"x")],
        [fb.file("etc/conf", b"cc"), fb.whiteout("/opt/abs")],
    )
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/etc", "/etc/conf", "/opt", "/usr", "/usr/local", "/usr/local/x"]
    assert (rows["/etc/conf"]["size"], rows["/etc/conf"]["layer"]) == (2, 1)
    assert rows["/opt"]["layer"] == 0  # implicit parent of an absolute member name
    kinds = {(f["kind"], f["path"]) for f in inspect_json(cli, path)["findings"]}
    assert ("absolute-path", "/opt/abs") in kinds


def test_long_names_in_pax_gnu_and_ustar_prefix(tmp_path: Path, cli) -> None:
    deep = "/".join(["d" * 60] * 5)  # 304 bytes: past ustar's 255-byte limit
    names = [f"{deep}/pax.txt", f"{deep}/gnu.txt", "p" * 120 + "/ustar.txt"]
    link = "t" * 150
    path = write(
        tmp_path,
        [fb.file(names[0], b"1"), fb.file(names[1], b"22", fmt="gnu"),
         fb.file(names[2], b"333", fmt="ustar"),
         fb.symlink("pax-link", link), fb.symlink("gnu-link", link, fmt="gnu")],
    )
    rows = by_path(ls_json(cli, path))
    assert [rows["/" + n]["size"] for n in names] == [1, 2, 3]
    assert rows["/pax-link"]["link_target"] == link
    assert rows["/gnu-link"]["link_target"] == link


def test_large_ids_pax_and_base256(tmp_path: Path, cli) -> None:
    path = write(
        tmp_path,
        [fb.file("pax", b"p", uid=2_097_152, gid=99_999_999),
         fb.file("gnu", b"g", uid=1 << 40, gid=2_097_152, fmt="gnu")],
    )
    rows = by_path(ls_json(cli, path))
    assert (rows["/pax"]["uid"], rows["/pax"]["gid"]) == (2_097_152, 99_999_999)
    assert (rows["/gnu"]["uid"], rows["/gnu"]["gid"]) == (1 << 40, 2_097_152)


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_file_apparent_and_stored_size(fmt: str, tmp_path: Path, cli) -> None:
    regions = [(0, b"A" * 1000), (3 << 20, b"B" * 24)]
    member = fb.sparse("var/sparse.img", 5 << 20, regions, fmt=fmt)
    path = write(tmp_path, [member, fb.file("after", b"still aligned")])
    rows = by_path(ls_json(cli, path))
    assert rows["/var/sparse.img"]["size"] == 5 << 20
    assert rows["/after"]["size"] == 13  # the reader skipped exactly the stored bytes
    (raw, after) = ls_json(cli, path, "--layer", "0")
    assert raw["path"] == "/var/sparse.img"
    assert raw["size"] == 5 << 20
    # GNU: the data regions only; PAX 1.0: a 512-byte map block, then the regions
    assert raw["stored_size"] == (1024 if fmt == "gnu" else 512 + 1024)


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_non_utf8_names_kept_exactly(fmt: str, tmp_path: Path, cli) -> None:
    name = b"data/caf\xe9-\xff\xfe.txt"
    target = b"../data/caf\xe9-\xff\xfe.txt"
    path = write(
        tmp_path,
        [fb.directory("data/"), fb.file(name, b"bytes", fmt=fmt),
         fb.symlink("link", target, fmt=fmt)],
    )
    rows = by_path(ls_json(cli, path))
    entry = rows["/data/caf\\xe9-\\xff\\xfe.txt"]
    assert base64.b64decode(entry["path_b64"]) == b"/" + name
    assert entry["size"] == 5
    link = rows["/link"]
    assert "path_b64" not in link
    assert link["link_target"] == "../data/caf\\xe9-\\xff\\xfe.txt"
    assert base64.b64decode(link["link_target_b64"]) == target
    from imgscope.api import analyze

    fs = analyze(path).fs
    assert [p.encode("utf-8", "surrogateescape") for p, _ in fs.iter_nodes()] == [
        b"/data", b"/" + name, b"/link"]


def test_implicit_parent_directories(tmp_path: Path, cli) -> None:
    path = write(tmp_path, [fb.file("x", b"")], [fb.file("a/b/c/file", b"abc")])
    rows = by_path(ls_json(cli, path))
    assert [(p, e["type"], e["layer"], e["mode"]) for p, e in rows.items()] == [
        ("/a", "dir", 1, 0o755), ("/a/b", "dir", 1, 0o755), ("/a/b/c", "dir", 1, 0o755),
        ("/a/b/c/file", "file", 1, 0o644), ("/x", "file", 0, 0o644)]


def test_parents_resolve_through_symlinks_inside_the_root(tmp_path: Path, cli) -> None:
    # usrmerge: /bin -> usr/bin, then a later layer writes bin/tool
    path = write(
        tmp_path,
        [fb.directory("usr/"), fb.directory("usr/bin/"), fb.symlink("bin", "usr/bin")],
        [fb.file("bin/tool", b"tool")],
    )
    rows = by_path(ls_json(cli, path))
    assert sorted(rows) == ["/bin", "/usr", "/usr/bin", "/usr/bin/tool"]
    assert rows["/bin"]["type"] == "symlink"


# --------------------------------------------------------------------------- choosing


@pytest.mark.parametrize(
    "name", ["multi/images-docker.tar", "multi/images-oci.tar", "multi/images-docker25.tar"]
)
def test_multi_image_archives_ask_which_image(name: str, built, cli) -> None:
    result = cli("ls", built(name), "--format", "json")
    assert result.rc == 2
    assert result.out == ""
    (line,) = result.err_lines
    assert line.startswith("imgscope: error: the input holds 2 images; choose one with --image")
    for tag in fb.MULTI_IMAGE_TAGS:
        assert tag in line
    alpha = ls_json(cli, built(name), "--image", "imgscope/alpha:1")
    assert [(e["path"], e["size"], e["layer"]) for e in alpha] == [
        ("/alpha", 6, 1), ("/etc", 0, 0), ("/etc/shared", 1500, 0)]
    beta = ls_json(cli, built(name), "--image", "imgscope/beta:2")
    assert [(e["path"], e["size"], e["layer"]) for e in beta] == [
        ("/beta", 6, 1), ("/beta2", 4, 2), ("/etc", 0, 0), ("/etc/shared", 1500, 0)]


def test_unknown_image_name_lists_the_choices(built, cli) -> None:
    result = cli("ls", built("multi/images-docker.tar"), "--image", "imgscope/gamma:3")
    assert result.rc == 2
    (line,) = result.err_lines
    assert line.startswith("imgscope: error: ")
    assert "imgscope/gamma:3" in line
    assert "imgscope/alpha:1" in line and "imgscope/beta:2" in line


@pytest.mark.parametrize("name", ["multi/platforms.tar", "multi/platforms-dir"])
def test_multi_platform_index_asks_which_platform(name: str, built, cli) -> None:
    result = cli("inspect", built(name))
    assert result.rc == 2
    assert result.err == (
        "imgscope: error: the input holds 2 platforms; choose one with --platform: "
        "linux/amd64, linux/arm/v7\n"
    )
    for platform in ("linux/amd64", "linux/arm/v7"):
        rows = by_path(ls_json(cli, built(name), "--platform", platform))
        assert sorted(rows) == ["/etc", "/etc/platform"]
        assert rows["/etc/platform"]["size"] == len(platform) + 1
        doc = inspect_json(cli, built(name), "--platform", platform)
        assert doc["image"]["platform"] == platform


@pytest.mark.parametrize("platform", ["linux/arm64/v8", "linux/s390x"])
def test_platform_whose_blobs_are_absent(platform: str, built, cli) -> None:
    absent = {a + ("/" + v if v else ""): fb.build_image(fb._platform_image(a, v, fb.MULTI_TAG))
              for a, v in fb.PLATFORMS_ABSENT}
    digest = absent[platform.removeprefix("linux/")].manifest.digest
    result = cli("inspect", built("multi/platforms.tar"), "--platform", platform)
    assert result.rc == 2
    (line,) = result.err_lines
    assert line.startswith("imgscope: error: ")
    assert digest in line


def test_platform_not_in_the_index(built, cli) -> None:
    result = cli("inspect", built("multi/platforms.tar"), "--platform", "linux/ppc64le")
    assert result.rc == 2
    (line,) = result.err_lines
    assert "linux/ppc64le" in line and "linux/amd64" in line and "linux/arm/v7" in line


def test_the_one_complete_platform_is_selected_with_a_warning(built, cli) -> None:
    doc = inspect_json(cli, built("multi/one-complete-platform.tar"))
    assert doc["image"]["platform"] == "linux/arm/v7"
    assert (doc["image"]["architecture"], doc["image"]["variant"]) == ("arm", "v7")
    assert [w["code"] for w in doc["warnings"]] == ["incomplete-platforms"]
    assert "linux/arm/v7" in doc["warnings"][0]["message"]


def test_repeated_layer_is_read_through_the_docker_symlink(built, cli) -> None:
    doc = inspect_json(cli, built("formats/docker-repeated-layer.tar"))
    diff_ids = [layer["diff_id"] for layer in doc["layers"]]
    assert len(diff_ids) == 3 and diff_ids[0] == diff_ids[2] != diff_ids[1]
    rows = by_path(ls_json(cli, built("formats/docker-repeated-layer.tar")))
    assert [(p, e["layer"]) for p, e in rows.items()] == [("/counter", 2), ("/middle", 1)]
    # layer 2 rewrote /counter with identical bytes: layer 0's copy is wasted
    assert [(w["path"], w["layer"]) for w in doc["wasted"]["files"]] == [("/counter", 0)]


# --------------------------------------------------------------------------- example.tar


def test_example_tar_is_reproducible(tmp_path: Path) -> None:
    committed = Path(__file__).resolve().parents[1] / "fixtures" / "example.tar"
    rebuilt = fb.write_example(tmp_path / "example.tar")
    assert committed.read_bytes() == rebuilt.read_bytes(), (
        "fixtures/example.tar differs from what fixtures/build.py makes; "
        "run: python fixtures/build.py --example fixtures/example.tar"
    )


def test_example_tar_inspects(cli) -> None:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "example.tar"
    doc = inspect_json(cli, path)
    assert doc["image"]["tags"] == ["example/hello:1.0"]
    assert doc["image"]["entrypoint"] == ["/app/hello.sh"]
    assert len(doc["layers"]) == 4
    assert [(w["path"], w["bytes"], w["layer"], w["hidden_by_layer"], w["how"])
            for w in doc["wasted"]["files"]] == [
        ("/tmp/build.log", 4096, 2, 3, "whiteout"),
        ("/var/lib/dpkg/status", 535, 0, 1, "replaced"),  # rewritten by apt in layer 1
    ]
    rows = by_path(ls_json(cli, path))
    assert "/tmp/build.log" not in rows
    assert rows["/usr/include/stdio.h"]["layer"] == 1
    status = rows["/var/lib/dpkg/status"]
    assert status["layer"] == 1
    assert rows["/bin"]["link_target"] == "usr/bin"


def test_builder_cli_is_deterministic(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(fb.__file__)
    outs = []
    for run in ("one", "two"):
        out = tmp_path / run
        proc = subprocess.run([sys.executable, str(script), "--skip-big", str(out)],
                              capture_output=True, check=False, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    names = sorted(set(fb.FIXTURES) - fb.BIG)
    assert len(names) >= 60
    for name in names:
        first, second = outs[0] / name, outs[1] / name
        assert first.exists(), name
        files = sorted(p.relative_to(first) for p in first.rglob("*")) if first.is_dir() else [
            Path()]
        for rel in files:
            a, b = first / rel, second / rel
            if a.is_symlink():
                assert a.readlink() == b.readlink(), (name, rel)
            elif a.is_file():
                assert a.read_bytes() == b.read_bytes(), (name, rel)


def test_the_command_leaves_nothing_behind_when_it_exits(built, cli, cli_proc,
                                                        tmp_path: Path) -> None:
    """`imgscope` ends with os._exit (cli.run: no interpreter teardown, no atexit): its
    temporary directory (the spool of a compressed image) must be gone by then, and the
    output whole. (A spool kept alive to the end fails this: atexit would not remove it.)"""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    image = built("formats/oci-layers-gzip.tar")
    run = cli_proc(["inspect", image, "--format", "json"], env={"TMPDIR": str(scratch)})
    assert run.rc == 0, run.err
    assert json.loads(run.out) == json.loads(cli("inspect", image, "--format", "json").out)
    assert list(scratch.iterdir()) == []
    failed = cli_proc(["inspect", tmp_path / "missing.tar"], env={"TMPDIR": str(scratch)})
    assert failed.rc == 2 and failed.err.startswith("imgscope: error:")
    assert list(scratch.iterdir()) == []
