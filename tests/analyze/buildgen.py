"""Small Debian-like images with build tools left in, generated for the advice tests.

Layer 0 is a base (glibc copied from the host, so the runtime closure resolves for real);
layer 1 is `apt-get install build-essential zlib1g-dev ca-certificates` with its dpkg status,
info/*.list files, apt's extended_states, lists and cache; layer 2 copies a C source, layer 3
compiles it with the host's gcc (-g: unstripped, with DWARF) and leaves a pip cache and an
object file; layer 4 writes a file that layer 5 deletes. Every size is chosen here, so tests
assert exact byte counts.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import fixture_build as fb

TRIPLET = "x86_64-linux-gnu"
LIB = f"/usr/lib/{TRIPLET}"
HOST_LIBDIR = Path("/usr/lib") / TRIPLET
INTERP = "/lib64/ld-linux-x86-64.so.2"

needs_host_toolchain = pytest.mark.skipif(
    platform.machine() != "x86_64" or shutil.which("gcc") is None
    or not (HOST_LIBDIR / "libc.so.6").is_file() or not Path(INTERP).exists(),
    reason="needs gcc and an x86_64 multiarch glibc host (Debian/Ubuntu)",
)

HELLO_C = b'#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


def cc(out: Path, source: bytes, *args: str) -> bytes:
    src = out.with_name(out.name + ".c")
    src.write_bytes(source)
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *args], check=True,
                   capture_output=True)
    return out.read_bytes()


def strip_size(data: bytes, tmp: Path) -> int:
    """Bytes `strip --strip-unneeded` really removes (the independent count)."""
    path = tmp / "to-strip"
    path.write_bytes(data)
    subprocess.run(["strip", "--strip-unneeded", str(path)], check=True, capture_output=True)
    return len(data) - path.stat().st_size


def blob(seed: str, size: int) -> bytes:
    return fb.det_bytes(seed, size)


@dataclass
class Pkg:
    name: str
    files: dict[str, bytes]  # path -> content (symlinks: see links)
    depends: str = ""
    recommends: str = ""
    priority: str = "optional"
    essential: bool = False
    arch: str = "amd64"
    version: str = "1.0-1"
    links: dict[str, str] = field(default_factory=dict)  # path -> target

    def stanza(self) -> str:
        lines = [f"Package: {self.name}", "Status: install ok installed",
                 f"Priority: {self.priority}", f"Architecture: {self.arch}",
                 f"Version: {self.version}"]
        if self.essential:
            lines.append("Essential: yes")
        if self.depends:
            lines.append(f"Depends: {self.depends}")
        if self.recommends:
            lines.append(f"Recommends: {self.recommends}")
        lines.append(f"Description: {self.name}")
        return "\n".join(lines) + "\n"

    def list_file(self) -> bytes:
        dirs: list[str] = ["/."]
        paths = [*self.files, *self.links]
        for path in paths:
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/" + "/".join(parts[:i])
                if d not in dirs:
                    dirs.append(d)
        return ("\n".join(dirs + paths) + "\n").encode()

    def members(self) -> list[fb.Member]:
        out = [fb.file(p.lstrip("/"), data, 0o755 if "/bin/" in p or p.endswith(".so.6")
                       or "/gcc/" in p else 0o644) for p, data in self.files.items()]
        out += [fb.symlink(p.lstrip("/"), t) for p, t in self.links.items()]
        out.append(fb.file(f"var/lib/dpkg/info/{self.name}:{self.arch}.list",
                           self.list_file()))
        return out

    @property
    def info_bytes(self) -> int:
        return len(self.list_file())

    @property
    def file_bytes(self) -> int:
        return sum(len(d) for d in self.files.values())

    @property
    def removed_bytes(self) -> int:
        """What leaving this package out takes away: its files and its info/ list."""
        return self.file_bytes + self.info_bytes


def host_lib(name: str) -> bytes:
    return (HOST_LIBDIR / name).resolve().read_bytes()


def base_packages() -> list[Pkg]:
    return [
        Pkg("base-files", {"/etc/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                           b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'},
            priority="required", essential=True),
        Pkg("libc6", {f"{LIB}/libc.so.6": host_lib("libc.so.6"),
                      f"{LIB}/ld-linux-x86-64.so.2": host_lib("ld-linux-x86-64.so.2")},
            depends="libgcc-s1", priority="required",
            links={"/usr/lib64/ld-linux-x86-64.so.2": f"../lib/{TRIPLET}/ld-linux-x86-64.so.2"}),
        Pkg("libgcc-s1", {f"{LIB}/libgcc_s.so.1": blob("libgcc", 1000)},
            depends="gcc-12-base, libc6", priority="required"),
        Pkg("gcc-12-base", {"/usr/share/doc/gcc-12-base/copyright": blob("gcc12base", 400)},
            priority="required"),
    ]


def build_packages() -> list[Pkg]:
    gccdir = f"/usr/lib/gcc/{TRIPLET}/12"
    return [
        Pkg("build-essential", {"/usr/share/build-essential/list": blob("be", 50)},
            depends="libc6-dev | libc-dev, gcc, make, dpkg-dev"),
        Pkg("gcc", {"/usr/share/doc/gcc/README": blob("gcc", 100)}, depends="cpp, gcc-12",
            links={"/usr/bin/gcc": "gcc-12"}),
        Pkg("gcc-12", {f"/usr/bin/{TRIPLET}-gcc-12": blob("gcc-12", 5000),
                       f"{gccdir}/collect2": blob("collect2", 7000)},
            depends="cpp-12, gcc-12-base, libisl23, binutils, libc6",
            links={"/usr/bin/gcc-12": f"{TRIPLET}-gcc-12"}),
        Pkg("cpp", {"/usr/share/doc/cpp/README": blob("cpp", 80)}, depends="cpp-12"),
        Pkg("cpp-12", {f"{gccdir}/cc1": blob("cc1", 60000)},
            depends="gcc-12-base, libisl23"),
        Pkg("libisl23", {f"{LIB}/libisl.so.23": blob("isl", 9000)}, depends="libc6"),
        Pkg("binutils", {"/usr/share/doc/binutils/README": blob("binutils", 300)},
            depends="binutils-x86-64-linux-gnu"),
        Pkg("binutils-x86-64-linux-gnu", {f"/usr/bin/{TRIPLET}-ld.bfd": blob("ld", 11000),
                                          f"/usr/bin/{TRIPLET}-as": blob("as", 8000)},
            depends="libc6"),
        Pkg("make", {"/usr/bin/make": blob("make", 4000)}, depends="libc6"),
        Pkg("libc6-dev", {"/usr/include/stdio.h": blob("stdio", 2000),
                          f"{LIB}/libc.a": b"!<arch>\n" + blob("libc.a", 3000)},
            depends="libc6, linux-libc-dev"),
        Pkg("linux-libc-dev", {"/usr/include/linux/types.h": blob("types", 1500)}),
        Pkg("dpkg-dev", {"/usr/bin/dpkg-buildpackage": blob("dpkg-bp", 1200)},
            depends="perl, make, binutils", recommends="fakeroot", arch="all"),
        Pkg("perl", {"/usr/bin/perl": blob("perl", 6000)}, depends="libc6"),
        Pkg("fakeroot", {"/usr/bin/fakeroot": blob("fakeroot", 700)}, depends="libc6"),
        Pkg("zlib1g-dev", {"/usr/include/zlib.h": blob("zlib.h", 2500),
                           f"{LIB}/pkgconfig/zlib.pc": blob("zlib.pc", 250),
                           f"{LIB}/libz.a": b"!<arch>\n" + blob("libz.a", 900)},
            depends="zlib1g, libc6-dev | libc-dev"),
        Pkg("zlib1g", {f"{LIB}/libz.so.1": blob("libz", 1100)}, depends="libc6"),
        Pkg("ca-certificates", {"/usr/share/ca-certificates/x.crt": blob("crt", 1300)},
            arch="all"),
    ]


MANUAL = ("build-essential", "zlib1g-dev", "ca-certificates")
APT_LISTS = {"/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages":
             40000, "/var/lib/apt/lists/lock": 0}
APT_CACHE = {"/var/cache/apt/archives/gcc-12_12.2.0-14_amd64.deb": 25000,
             "/var/cache/apt/pkgcache.bin": 15000}
PIP_CACHE = {"/root/.cache/pip/wheels/ab/cd/six-1.16.0-py2.py3-none-any.whl": 5000}
BIG = 65536
BASE_NAME = "docker.io/library/debian:bookworm"
INSTALL_RUN = "apt-get update && apt-get install -y build-essential zlib1g-dev ca-certificates"
BUILD_RUN = ("gcc -g -O1 -o /usr/local/bin/hello /src/hello.c && gcc -c -o /src/build/hello.o "
             "/src/hello.c && pip install --no-binary six six")


def dirs() -> list[fb.Member]:
    names = ["usr", "usr/bin", "usr/lib", f"usr/lib/{TRIPLET}", "usr/lib64", "usr/share",
             "etc", "usr/local", "usr/local/bin", "var", "var/lib", "var/lib/dpkg",
             "var/lib/dpkg/info", "tmp", "root"]
    return [fb.directory(n) for n in names] + [
        fb.symlink("bin", "usr/bin"), fb.symlink("lib", "usr/lib"),
        fb.symlink("lib64", "usr/lib64")]


def status(pkgs: Sequence[Pkg]) -> fb.Member:
    return fb.file("var/lib/dpkg/status", "\n".join(p.stanza() for p in pkgs).encode())


def extended_states(pkgs: Sequence[Pkg], manual: Sequence[str]) -> fb.Member:
    stanzas = [f"Package: {p.name}\nArchitecture: {p.arch}\nAuto-Installed: 1\n"
               for p in pkgs if p.name not in manual]
    return fb.file("var/lib/apt/extended_states", "\n".join(stanzas).encode())


@dataclass
class Built:
    path: Path
    base: list[Pkg]
    tools: list[Pkg]
    hello: bytes
    hello_o: bytes
    strip_savings: int  # measured with the real strip

    @property
    def wasted(self) -> int:
        """Bytes shipped but hidden: /tmp/big, and layer 0's dpkg status that layer 1 rewrote."""
        return BIG + len(status(self.base).data)

    def pkg(self, name: str) -> Pkg:
        return next(p for p in self.base + self.tools if p.name == name)

    def removed(self, *names: str) -> int:
        return sum(self.pkg(n).removed_bytes for n in names)


def c_image(tmp: Path, *, cmd: Sequence[str] = ("/usr/local/bin/hello",),
            extra_tools: Sequence[Pkg] = (), comment: str | None = f"FROM {BASE_NAME}",
            name: str = "image.tar") -> Built:
    """The whole scenario of the module docstring, written as a docker-archive."""
    hello = cc(tmp / "hello", HELLO_C, "-g")
    hello_o = (tmp / "hello.o").read_bytes() if subprocess.run(
        ["gcc", "-c", "-o", str(tmp / "hello.o"), str(tmp / "hello.c")],
        capture_output=True).returncode == 0 else b""
    base = base_packages()
    tools = build_packages() + list(extra_tools)
    layer0 = dirs() + [m for p in base for m in p.members()] + [status(base)]
    layer1 = [m for p in tools for m in p.members()] + [
        status(base + tools), extended_states(tools, MANUAL),
        *(fb.file(p.lstrip("/"), blob(p, n)) for p, n in APT_LISTS.items()),
        *(fb.file(p.lstrip("/"), blob(p, n)) for p, n in APT_CACHE.items()),
    ]
    layer2 = [fb.file("src/hello.c", HELLO_C)]
    layer3 = [fb.file("usr/local/bin/hello", hello, 0o755),
              fb.file("src/build/hello.o", hello_o),
              *(fb.file(p.lstrip("/"), blob(p, n)) for p, n in PIP_CACHE.items())]
    layer4 = [fb.file("tmp/big", blob("big", BIG))]
    layer5 = [fb.whiteout("tmp/big")]
    spec = fb.ImageSpec(
        layers=[
            fb.LayerSpec(layer0, "/bin/sh -c #(nop) ADD file:0123456789abcdef in / "),
            fb.LayerSpec(layer1, f"/bin/sh -c {INSTALL_RUN}", comment=comment),
            fb.LayerSpec(layer2, "/bin/sh -c #(nop) COPY file:5f1c0ffee0ddba11 in "
                                 "/src/hello.c ", comment="FROM 1b05bc87d5d5"),
            fb.LayerSpec(layer3, f"/bin/sh -c {BUILD_RUN}"),
            fb.LayerSpec(layer4, "/bin/sh -c dd if=/dev/urandom of=/tmp/big bs=1k count=64"),
            fb.LayerSpec(layer5, "/bin/sh -c rm /tmp/big"),
        ],
        cmd=list(cmd),
    )
    path = fb.write_image(tmp / name, spec, "docker")
    return Built(path, base, tools, hello, hello_o, strip_size(hello, tmp))
