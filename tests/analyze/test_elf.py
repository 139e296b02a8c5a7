"""ELF facts (imgscope/analyze/elf.py) on binaries compiled here and on third-party ELF files.

Compiled binaries are checked against the tools that define the facts: `readelf` for build ids,
GNU `strip` for what stripping saves. The corpus holds other architectures, compilers and
deliberately broken files; none of them may raise.
"""

from __future__ import annotations

import io
import os
import platform
import random
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from imgscope.analyze.elf import elf_candidates, elf_info, elf_infos, inspect_elf
from imgscope.catalog.base import FileInfo

HAVE_GCC = shutil.which("gcc") is not None and shutil.which("strip") is not None
needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="gcc/strip not installed")
HOST_MACHINE = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(platform.machine())

HELLO = r"""
#include <math.h>
#include <stdio.h>
struct point { double x, y; };
static double norm(struct point p) { return sqrt(p.x * p.x + p.y * p.y); }
int main(int argc, char **argv) {
    struct point p = { argc, 2.5 };
    printf("%s %f\n", argv[0], norm(p));
    return 0;
}
"""
LIB = r"""
#include <stdio.h>
int foo_add(int a, int b) { printf("%d\\n", a); return a + b; }
"""


def inspect_path(path: Path) -> object:
    with open(path, "rb") as fh:
        return inspect_elf(fh, str(path))


def gcc(tmp: Path, out: str, *args: str, source: str = HELLO) -> Path:
    src = tmp / (out + ".c")
    src.write_text(source)
    target = tmp / out
    subprocess.run(["gcc", *args, "-o", str(target), str(src), "-lm"], check=True,
                   capture_output=True)
    return target


def stripped_copy(path: Path, *flags: str) -> Path:
    out = path.with_name(path.name + ".stripped")
    shutil.copyfile(path, out)
    subprocess.run(["strip", *flags, str(out)], check=True, capture_output=True)
    return out


def readelf_build_id(path: Path) -> str | None:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAVE_GCC:
        pytest.skip("gcc/strip not installed")
    tmp = tmp_path_factory.mktemp("elf")
    return {
        "debug": gcc(tmp, "debug", "-g", "-O2"),
        "static": gcc(tmp, "static", "-static", "-O2"),
        "lib": gcc(tmp, "libfoo.so.1", "-g", "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1",
                   source=LIB),
        "rpath": gcc(tmp, "rpath", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib:/opt/x"),
        "runpath": gcc(tmp, "runpath", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"),
        "noident": gcc(tmp, "noident", "-g", "-fno-ident", "-c"),
        "noident4": gcc(tmp, "noident4", "-gdwarf-4", "-fno-ident", "-c"),
        "noidentz": gcc(tmp, "noidentz", "-g", "-gz=zlib", "-fno-ident", "-c"),
        "object": gcc(tmp, "object.o", "-g", "-c"),
        "nodeflib": gcc(tmp, "nodeflib", "-Wl,-z,nodefaultlib"),
        "bare": gcc(tmp, "libbare.so", "-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libbare.so",
                    source="int bare(int a) { return a * 2; }\n"),
        "static_pie": gcc(tmp, "static_pie", "-static-pie", "-O2"),
    }


@needs_gcc
def test_dynamic_executable_with_debug_info(built: dict[str, Path]) -> None:
    info = inspect_path(built["debug"])
    assert info is not None
    assert info.elf_type == "dyn"  # PIE
    if HOST_MACHINE:
        assert info.machine == HOST_MACHINE
    assert info.bits == 64 and info.little_endian
    assert info.interpreter is not None and "ld-linux" in info.interpreter
    assert info.needed == ("libm.so.6", "libc.so.6")
    assert info.soname is None and info.rpath == () and info.runpath == ()
    assert not info.static and not info.stripped
    assert info.debug_bytes > 0
    assert info.build_id == readelf_build_id(built["debug"])
    assert info.compiler is not None and info.compiler.startswith("GCC: (")
    assert not info.rust and info.go_version is None
    assert info.size == built["debug"].stat().st_size


@needs_gcc
@pytest.mark.parametrize("name", ["debug", "static", "lib", "rpath"])
def test_strip_savings_match_gnu_strip(built: dict[str, Path], name: str) -> None:
    path = built[name]
    info = inspect_path(path)
    stripped = stripped_copy(path)
    real = path.stat().st_size - stripped.stat().st_size
    assert real > 0
    assert abs(info.strip_savings - real) <= max(0.03 * real, 64), (info.strip_savings, real)
    after = inspect_path(stripped)
    assert after.stripped and after.debug_bytes == 0 and after.strip_savings == 0
    assert after.build_id == info.build_id  # strip keeps the note


@needs_gcc
def test_object_keeps_symbols_strip_unneeded(built: dict[str, Path]) -> None:
    path = built["object"]
    info = inspect_path(path)
    assert info.elf_type == "rel" and not info.stripped
    real = path.stat().st_size - stripped_copy(path, "--strip-unneeded").stat().st_size
    # strip --strip-unneeded also prunes local symbols of an object: within 10 %.
    assert abs(info.strip_savings - real) <= 0.1 * real, (info.strip_savings, real)
    assert info.debug_bytes > 0


@needs_gcc
def test_static_executable(built: dict[str, Path]) -> None:
    info = inspect_path(built["static"])
    assert info.static and info.interpreter is None and info.needed == ()
    assert info.elf_type in ("exec", "dyn")  # static-pie where the toolchain defaults to it
    pie = inspect_path(built["static_pie"])
    assert pie.elf_type == "dyn" and pie.static and pie.interpreter is None


@needs_gcc
def test_shared_library_soname(built: dict[str, Path]) -> None:
    info = inspect_path(built["lib"])
    assert info.elf_type == "dyn" and info.soname == "libfoo.so.1"
    assert info.interpreter is None and info.needed == ("libc.so.6",)
    assert not info.static
    # A library with no dependencies is still not a static program.
    bare = inspect_path(built["bare"])
    assert bare.needed == () and bare.soname == "libbare.so" and not bare.static


@needs_gcc
def test_rpath_and_runpath_kept_as_written(built: dict[str, Path]) -> None:
    rpath = inspect_path(built["rpath"])
    assert rpath.rpath == ("$ORIGIN/../lib", "/opt/x") and rpath.runpath == ()
    runpath = inspect_path(built["runpath"])
    assert runpath.runpath == ("$ORIGIN/../lib",) and runpath.rpath == ()
    assert inspect_path(built["nodeflib"]).nodeflib
    assert not rpath.nodeflib


@needs_gcc
@pytest.mark.parametrize("name", ["noident", "noident4", "noidentz"])
def test_compiler_from_dwarf_producer_without_comment(built: dict[str, Path], name: str) -> None:
    info = inspect_path(built[name])
    assert info.comments == ()
    assert info.compiler is not None and info.compiler.startswith("GNU C")
    assert "-fno-ident" in info.compiler


def test_not_elf_and_truncated() -> None:
    assert inspect_elf(io.BytesIO(b""), "/empty") is None
    assert inspect_elf(io.BytesIO(b"#!/bin/sh\necho hi\n"), "/script") is None
    assert inspect_elf(io.BytesIO(b"\x7fELF"), "/short") is None
    assert inspect_elf(io.BytesIO(b"\x7fELF\x03\x01" + bytes(60)), "/badclass") is None


# -- third-party files ------------------------------------------------------------------------

CORPUS_EXPECT = {
    # name: (type, machine, bits, interpreter, needed, soname)
    "lib_versioned64.so.elf": ("dyn", "x86_64", 64, None, ("libz.so.1", "libc.so.6"),
                               "lib_versioned.so.1"),
    "android_dyntags.so.elf": ("dyn", "x86", 32, "/system/bin/linker",
                               ("libcutils.so", "libutils.so", "liblog.so", "libbinder.so",
                                "libhardware.so", "libc++.so", "libdl.so", "libc.so", "libm.so"),
                               "libsoundtrigger.so"),
    "simple_mipsel.elf": ("exec", "mips", 32, "/lib/ld.so.1", ("libc.so.6",), None),
    "exe_solaris64_cc.elf": ("exec", "x86_64", 64, "/usr/lib/amd64/ld.so.1", ("libc.so.1",),
                             None),
    "simple_gcc.elf.arm": ("exec", "arm", 32, None, (), None),
    "simple_clang.elf.riscv": ("exec", "riscv", 64, None, (), None),
    "core_linux64.elf": ("core", "x86_64", 64, None, (), None),
    # No section table: the dynamic segment still names libc (pyelftools finds nothing).
    "aarch64_super_stripped.elf": ("exec", "aarch64", 64, "/lib/ld-linux-aarch64.so.1",
                                   ("libc.so.6",), None),
    "x64_bad_sections.elf": ("exec", "x86_64", 64, "/lib64/ld-linux-x86-64.so.2",
                             ("libc.so.6",), None),
}


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECT))
def test_corpus_headers(corpus: Path, name: str) -> None:
    info = inspect_path(corpus / "elf" / "pyelftools" / name)
    assert info is not None
    etype, machine, bits, interp, needed, soname = CORPUS_EXPECT[name]
    assert (info.elf_type, info.machine, info.bits) == (etype, machine, bits)
    assert (info.interpreter, info.needed, info.soname) == (interp, needed, soname)


def test_corpus_toolchains(corpus: Path) -> None:
    elf = corpus / "elf" / "pyelftools"
    assert inspect_path(elf / "debug_info.so.elf").compiler == \
        "GCC: (Debian 6.3.0-8) 6.3.0 20170221"
    assert inspect_path(elf / "exe_solaris64_cc.elf").compiler.startswith("acomp: Sun C 5.12")
    # clang wins over the GCC ident of the crt files linked in.
    assert inspect_path(elf / "lambda.elf").compiler.startswith("clang version 7.0.0")
    assert inspect_path(elf / "aarch64_be_gnu_hash.so.elf").little_endian is False
    compressed = inspect_path(elf / "compressed_64.o")
    assert compressed.elf_type == "rel" and compressed.debug_bytes == 1200
    assert inspect_path(elf / "sample_exe64.elf").build_id == \
        readelf_build_id(elf / "sample_exe64.elf") if shutil.which("readelf") else True


def test_corpus_go_and_rust(corpus: Path) -> None:
    go = corpus / "bin" / "go"
    assert inspect_path(go / "trivy-go-main-version-via-ldflags.elf").go_version == "go1.22.1"
    assert inspect_path(go / "trivy-go-test.elf").go_version == "go1.15.2"
    arm = inspect_path(go / "trivy-go-goexperiment.arm64.elf")
    assert arm.go_version == "go1.22.1" and arm.machine == "aarch64"
    # Go's DWARF producer names the compiler when there is no .comment.
    assert arm.compiler == "Go cmd/compile go1.22.1; regabi"
    assert inspect_path(go / "NEGATIVE-dummy") is None
    rust = corpus / "bin" / "rust"
    auditable = inspect_path(rust / "scalibr-cargo-auditable-no_deps")
    assert auditable.rust and auditable.compiler == "rustc version 1.83.0 (90b35a623 2024-11-26)"
    # Built with cargo-auditable but only GCC in .comment: the .dep-v0 section says Rust.
    trivy = inspect_path(rust / "trivy-rust-cargo-auditable.elf")
    assert trivy.rust and trivy.compiler.startswith("GCC:")
    assert not inspect_path(corpus / "elf" / "pyelftools" / "lambda.elf").rust


def test_corpus_never_raises_even_mutated(corpus: Path) -> None:
    files = sorted((corpus / "elf" / "pyelftools").iterdir()) + sorted((corpus / "bin").rglob("*"))
    rng = random.Random(1234)
    checked = 0
    for path in files:
        if not path.is_file():
            continue
        data = path.read_bytes()[: 1 << 20]
        variants = [data, data[: len(data) // 2], data[:64], data[:200]]
        for _ in range(6):
            mutated = bytearray(data)
            for _ in range(8):  # flip header and table bytes where parsing decisions are made
                pos = rng.randrange(min(len(mutated), 4096)) if mutated else 0
                if mutated:
                    mutated[pos] = rng.randrange(256)
            variants.append(bytes(mutated))
        for variant in variants:
            inspect_elf(io.BytesIO(variant), str(path))  # must not raise
            checked += 1
    assert checked > 300


def test_malformed_elf_from_snyk_layer(corpus: Path) -> None:
    with tarfile.open(corpus / "layers" / "snyk" / "layer_with_bad_elf_file.tar") as tar:
        member = tar.getmember("/layers/paketo-buildpacks_ca-certificates/helper/helper")
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    info = inspect_elf(io.BytesIO(data), member.name)
    assert info is not None  # headers are sound, the section table is missing
    assert info.static and info.stripped and info.elf_type == "exec"
    assert info.debug_bytes == 0 and info.go_version is None


@pytest.mark.skipif(shutil.which("rustc") is None and not os.path.exists("/root/.cargo/bin/rustc"),
                    reason="rustc not installed")
def test_rust_binary_compiled_here(tmp_path: Path) -> None:
    rustc = shutil.which("rustc") or "/root/.cargo/bin/rustc"
    (tmp_path / "r.rs").write_text('fn main() { println!("hi"); }\n')
    out = tmp_path / "r"
    subprocess.run([rustc, "-O", "-C", "strip=symbols", "-o", str(out), str(tmp_path / "r.rs")],
                   check=True, capture_output=True)
    info = inspect_path(out)
    assert info.rust and info.compiler.startswith("rustc version")
    assert info.stripped


# -- many files through a view -------------------------------------------------------------------


class CountingView:
    """A FileView over real files, counting opens (to prove the cache)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self.opens = 0

    def info(self, path: str) -> FileInfo | None:
        p = self.files.get(path)
        if p is None:
            return None
        st = p.stat()
        return FileInfo(path=path, type="file", size=st.st_size, mode=st.st_mode & 0o7777,
                        layer=0)

    def paths(self):
        return iter(self.files)

    def read(self, path: str) -> bytes | None:
        return None

    def open(self, path: str):
        self.opens += 1
        p = self.files.get(path)
        return open(p, "rb") if p is not None else None


@needs_gcc
def test_elf_infos_caches_per_view(built: dict[str, Path], tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF file\n")
    view = CountingView({"/bin/debug": built["debug"], "/lib/libfoo.so.1": built["lib"],
                         "/notes.txt": text})
    assert elf_candidates(view, view.paths()) == ["/bin/debug", "/lib/libfoo.so.1"]
    infos = elf_infos(view, view.paths())
    assert sorted(infos) == ["/bin/debug", "/lib/libfoo.so.1"]
    assert infos["/lib/libfoo.so.1"].soname == "libfoo.so.1"
    assert view.opens == 3
    again = elf_infos(view, view.paths())
    assert view.opens == 3  # nothing parsed twice, not even the non-ELF file
    assert again["/bin/debug"] is infos["/bin/debug"]
    assert elf_info(view, "/bin/debug") is infos["/bin/debug"]
    other = CountingView(dict(view.files))
    elf_infos(other, ["/bin/debug"])
    assert other.opens == 1  # the cache belongs to a view, not to the process
