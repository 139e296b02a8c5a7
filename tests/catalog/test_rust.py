from __future__ import annotations

import json
import zlib

from imgscope.catalog.base import FileInfo
from imgscope.catalog.rust import RustBinaryCataloger, packages_for, parse_dep_v0

DEPS = {
    "packages": [
        {
            "name": "app",
            "version": "0.3.0",
            "source": "local",
            "dependencies": [1, 2],
            "root": True,
        },
        {"name": "serde", "version": "1.0.193", "source": "crates.io", "dependencies": [3]},
        {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
        {"name": "serde_derive", "version": "1.0.193", "source": "crates.io"},
    ]
}


def test_parse_dep_v0_payload():
    crates, warnings = parse_dep_v0(zlib.compress(json.dumps(DEPS).encode()))
    assert warnings == []
    assert [(c.name, c.version, c.source, c.root, c.kind) for c in crates] == [
        ("app", "0.3.0", "local", True, None),
        ("serde", "1.0.193", "crates.io", False, None),
        ("cc", "1.0.83", "crates.io", False, "build"),
        ("serde_derive", "1.0.193", "crates.io", False, None),
    ]
    pkgs = packages_for("/usr/bin/app", crates)
    assert pkgs[0].files == ("/usr/bin/app",)
    assert pkgs[0].dependencies == ("serde", "cc")
    assert pkgs[1].dependencies == ("serde_derive",)
    assert pkgs[1].files == () and pkgs[1].evidence == ("/usr/bin/app",)
    assert pkgs[1].purl == "pkg:cargo/serde@1.0.193"


def test_bad_payloads_warn():
    assert parse_dep_v0(b"not zlib")[0] == []
    assert parse_dep_v0(b"not zlib")[1][0].startswith("unreadable dependency list")
    assert parse_dep_v0(zlib.compress(b"[]")) == ([], ["dependency list has no 'packages' array"])
    crates, warnings = parse_dep_v0(
        zlib.compress(
            json.dumps(
                {"packages": [{"name": "x"}, {"name": "y", "version": "1", "dependencies": [9]}]}
            ).encode()
        )
    )
    assert [(c.name, c.dependencies) for c in crates] == [("y", ())]  # index 9 does not exist
    assert warnings == ["1 malformed package entr(ies) skipped"]


def test_catalog_built_elf(elf, make_view):
    binary = elf({".text": b"\xc3" * 2048, ".dep-v0": zlib.compress(json.dumps(DEPS).encode())})
    fs = make_view(
        {"/usr/local/bin/app": binary},
        infos=[FileInfo("/usr/local/bin/app", "file", len(binary), 0o755, 0)],
    )
    result = RustBinaryCataloger().catalog(fs)
    assert [p.name for p in result.packages] == ["app", "serde", "cc", "serde_derive"]
    assert result.packages[0].ecosystem == "cargo"


def _binary(corpus_data, make_view, rel: str):
    data = corpus_data.bytes(rel)
    path = "/usr/bin/" + rel.rpartition("/")[2]
    return make_view({path: data}, infos=[FileInfo(path, "file", len(data), 0o755, 0)])


def test_scalibr_uses_serde_json(corpus_data, make_view):
    result = RustBinaryCataloger().catalog(
        _binary(corpus_data, make_view, "bin/rust/scalibr-cargo-auditable-uses_serde_json")
    )
    assert result.warnings == []
    by_name = {p.name: p for p in result.packages}
    assert len(by_name) == 11
    assert by_name["serde_json"].version == "1.0.135"
    assert by_name["serde_json"].dependencies == ("itoa", "memchr", "ryu", "serde")
    root = by_name["uses_json"]
    assert (root.version, root.dependencies) == ("0.1.0", ("serde", "serde_json"))
    assert root.files == ("/usr/bin/scalibr-cargo-auditable-uses_serde_json",)
    assert [p.name for p in result.packages if p.files] == ["uses_json"]


def test_scalibr_no_deps_and_trivy(corpus_data, make_view):
    [only] = (
        RustBinaryCataloger()
        .catalog(_binary(corpus_data, make_view, "bin/rust/scalibr-cargo-auditable-no_deps"))
        .packages
    )
    assert (only.name, only.version, only.dependencies) == ("no_deps", "0.1.0", ())
    trivy = RustBinaryCataloger().catalog(
        _binary(corpus_data, make_view, "bin/rust/trivy-rust-cargo-auditable.elf")
    )
    assert [(p.name, p.version, p.dependencies) for p in trivy.packages] == [
        ("crate_with_features", "0.1.0", ("library_crate",)),
        ("library_crate", "0.1.0", ()),
    ]


def test_non_rust_files_yield_nothing(corpus_data, make_view):
    for rel in ("bin/rust/NEGATIVE-scalibr-not_binary", "bin/go/trivy-go-test.elf"):
        assert RustBinaryCataloger().catalog(_binary(corpus_data, make_view, rel)).packages == []


def test_a_diff_reads_a_binary_both_images_share_once(elf, tmp_path, monkeypatch):
    """Both images' catalogers share one memo (OverlayFileView.remember): the binary the
    shared layer shipped is read on the first image only; the one the second image's own
    layer rewrote is read again, and its new crate versions are the diff's package changes."""
    import imgscope_fixtures_build as fb

    from imgscope.catalog import rust
    from imgscope.diff import diff

    def binary(serde: str) -> bytes:
        deps = {"packages": [{"name": "tool", "version": "1.0.0", "source": "local",
                              "root": True, "dependencies": [1]},
                             {"name": "serde", "version": serde, "source": "crates.io"}]}
        return elf({".text": b"\xc3" * 2048, ".dep-v0": zlib.compress(json.dumps(deps).encode())})

    base = fb.LayerSpec([fb.directory("usr"), fb.directory("usr/bin"),
                         fb.file("usr/bin/app", binary("1.0.100"), mode=0o755),
                         fb.file("usr/bin/tool", binary("1.0.150"), mode=0o755)])
    top = fb.LayerSpec([fb.file("usr/bin/tool", binary("1.0.193"), mode=0o755)])
    old = fb.write_image(tmp_path / "old.tar", fb.ImageSpec([base], tags=("r/old:1",)))
    new = fb.write_image(tmp_path / "new.tar", fb.ImageSpec([base, top], tags=("r/new:1",)))
    read: list[str] = []
    real = rust._dependencies
    monkeypatch.setattr(rust, "_dependencies",
                        lambda files, path: read.append(path) or real(files, path))
    result = diff(old, new)
    assert sorted(read) == ["/usr/bin/app", "/usr/bin/tool", "/usr/bin/tool"]
    changed = {(c.status, c.name, c.old_version, c.new_version) for c in result.packages}
    assert ("version", "serde", "1.0.150", "1.0.193") in changed
