from __future__ import annotations

import io

from imgscope.catalog._elf import ElfImage
from imgscope.catalog.base import FileInfo
from imgscope.catalog.golang import (
    MAGIC,
    GoBinaryCataloger,
    packages_for,
    parse_modinfo,
    read_buildinfo,
)

# The 16-byte sentinels the Go linker puts around the module text.
START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
END = bytes.fromhex("f932433186182072008242104116d8f2")

MODINFO = (
    "path\texample.com/app/cmd/server\n"
    "mod\texample.com/app\tv1.4.2\th1:abc=\n"
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:def=\n"
    "dep\tgolang.org/x/net\tv0.17.0\th1:ghi=\n"
    "=>\tgithub.com/fork/net\tv0.17.1\th1:jkl=\n"
    "dep\texample.com/local\tv0.0.0\n"
    "=>\t../local\t\n"
    "build\t-compiler=gc\n"
    "build\tGOOS=linux\n"
)


def _uvarint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def inline_buildinfo(version: str, mod: str) -> bytes:
    """A Go >= 1.18 .go.buildinfo section: header, then length-prefixed strings."""
    wrapped = START + mod.encode() + END
    return (
        MAGIC
        + bytes([8, 2])
        + b"\0" * 16
        + _uvarint(len(version))
        + version.encode()
        + _uvarint(len(wrapped))
        + wrapped
    )


def test_modinfo_text_with_replacements():
    info = parse_modinfo("go1.21.5", MODINFO)
    assert info.path == "example.com/app/cmd/server"
    assert info.main is not None
    assert (info.main.path, info.main.version, info.main.sum) == (
        "example.com/app",
        "v1.4.2",
        "h1:abc=",
    )
    assert [(d.path, d.version, d.replaced_from) for d in info.deps] == [
        ("github.com/pkg/errors", "v0.9.1", None),
        ("github.com/fork/net", "v0.17.1", "golang.org/x/net"),
        ("../local", "(devel)", "example.com/local"),
    ]
    assert info.settings == (("-compiler", "gc"), ("GOOS", "linux"))


def test_inline_format_in_a_built_elf(elf):
    data = elf({".text": b"\x90" * 64, ".go.buildinfo": inline_buildinfo("go1.21.5", MODINFO)})
    image = ElfImage.parse(io.BytesIO(data))
    assert image is not None
    info = read_buildinfo(image)
    assert info is not None
    assert info.go_version == "go1.21.5"
    assert info.main is not None and info.main.path == "example.com/app"


def test_stripped_binary_found_by_searching_the_data_segment(elf):
    data = elf(
        {".data": b"\0" * 32 + inline_buildinfo("go1.22.0", MODINFO)},
        with_section_table=False,
        writable_segment=True,
    )
    image = ElfImage.parse(io.BytesIO(data))
    assert image is not None and not image.has_sections
    info = read_buildinfo(image)
    assert info is not None and info.go_version == "go1.22.0"


def test_packages_one_per_module_plus_stdlib():
    pkgs = packages_for("/usr/bin/server", parse_modinfo("go1.21.5", MODINFO))
    assert [(p.name, p.version) for p in pkgs] == [
        ("example.com/app", "v1.4.2"),
        ("github.com/pkg/errors", "v0.9.1"),
        ("github.com/fork/net", "v0.17.1"),
        ("../local", "(devel)"),
        ("stdlib", "go1.21.5"),
    ]
    main, errors, net, _local, std = pkgs
    assert main.files == ("/usr/bin/server",)
    assert main.purl == "pkg:golang/example.com/app@v1.4.2"
    assert main.dependencies == (
        "github.com/pkg/errors",
        "github.com/fork/net",
        "../local",
        "stdlib",
    )
    assert errors.files == () and errors.evidence == ("/usr/bin/server",)
    assert errors.purl == "pkg:golang/github.com/pkg/errors@v0.9.1"
    assert net.provides == ("golang.org/x/net",)
    assert std.purl == "pkg:golang/stdlib@1.21.5"


def test_catalog_only_opens_large_executables(elf, make_view):
    binary = elf({".go.buildinfo": inline_buildinfo("go1.21.5", MODINFO), ".pad": b"\0" * 300_000})
    fs = make_view(
        {"/usr/bin/server": binary, "/usr/share/server.bin": binary},
        infos=[
            FileInfo("/usr/bin/server", "file", len(binary), 0o755, 0),
            FileInfo("/usr/share/server.bin", "file", len(binary), 0o644, 0),  # not executable
        ],
    )
    result = GoBinaryCataloger().catalog(fs)
    assert result.warnings == []
    assert {p.evidence for p in result.packages} == {("/usr/bin/server",)}
    assert len(result.packages) == 5


def _corpus_view(corpus_data, make_view, rel: str, path: str = "/usr/local/bin/app"):
    data = corpus_data.bytes(rel)
    return make_view({path: data}, infos=[FileInfo(path, "file", len(data), 0o755, 0)])


def test_trivy_old_pointer_format(corpus_data, make_view):
    # built by an old toolchain: flags 0, two pointers to Go string headers
    result = GoBinaryCataloger().catalog(
        _corpus_view(corpus_data, make_view, "bin/go/trivy-go-test.elf")
    )
    assert [(p.name, p.version) for p in result.packages] == [
        ("github.com/aquasecurity/test", "(devel)"),
        ("github.com/aquasecurity/go-pep440-version", "v0.0.0-20210121094942-22b2f8951d46"),
        ("github.com/aquasecurity/go-version", "v0.0.0-20210121072130-637058cfe492"),
        ("golang.org/x/xerrors", "v0.0.0-20200804184101-5ec99f83aff1"),
        ("stdlib", "go1.15.2"),
    ]
    assert result.packages[0].purl == "pkg:golang/github.com/aquasecurity/test"


def test_trivy_version_from_ldflags(corpus_data, make_view):
    rel = "bin/go/trivy-go-main-version-via-ldflags.elf"
    result = GoBinaryCataloger().catalog(_corpus_view(corpus_data, make_view, rel))
    assert [(p.name, p.version) for p in result.packages] == [
        ("github.com/aquasecurity/test", "v1.0.0"),  # -X main.version=v1.0.0
        ("stdlib", "go1.22.1"),
    ]


def test_trivy_arm64_command_line_arguments(corpus_data, make_view):
    rel = "bin/go/trivy-go-goexperiment.arm64.elf"
    result = GoBinaryCataloger().catalog(_corpus_view(corpus_data, make_view, rel))
    assert [(p.name, p.version) for p in result.packages] == [
        ("command-line-arguments", "(devel)"),
        ("stdlib", "go1.22.1"),  # "go1.22.1 X:loopvar" in the binary
    ]


def test_scalibr_module_replacement(corpus_data, make_view):
    rel = "bin/go/scalibr-go-module-replacement-linux-amd64"
    result = GoBinaryCataloger().catalog(_corpus_view(corpus_data, make_view, rel))
    main, dep, std = result.packages
    assert (main.name, main.version) == ("binary_with_module_replacement", "(devel)")
    assert (dep.name, dep.version, dep.provides) == (
        "github.com/golang/xerrors",
        "v0.0.0-20220907171357-04be3eba64a2",
        ("golang.org/x/xerrors",),
    )
    assert std.version == "go1.22.0"


def test_negative_files_yield_nothing(corpus_data, make_view):
    for rel in ("bin/go/NEGATIVE-dummy", "bin/go/NEGATIVE-scalibr-dummy"):
        data = corpus_data.bytes(rel)
        assert ElfImage.parse(io.BytesIO(data)) is None
    # non-Go ELF programs from the pyelftools corpus
    for rel in ("elf/pyelftools/sample_exe64.elf", "elf/pyelftools/corrupt_sh.elf"):
        image = ElfImage.parse(io.BytesIO(corpus_data.bytes(rel)))
        assert image is None or read_buildinfo(image) is None
    rust = _corpus_view(corpus_data, make_view, "bin/rust/trivy-rust-cargo-auditable.elf")
    assert GoBinaryCataloger().catalog(rust).packages == []


def test_truncated_go_binary_does_not_raise(corpus_data, make_view):
    data = corpus_data.bytes("bin/go/trivy-go-main-version-via-ldflags.elf")
    cut = data[: len(data) // 2]
    fs = make_view({"/app": cut}, infos=[FileInfo("/app", "file", len(cut), 0o755, 0)])
    assert GoBinaryCataloger().catalog(fs).packages == []
