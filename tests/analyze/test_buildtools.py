"""Build-tool detection (imgscope/analyze/buildtools.py) on generated images.

Every expected byte count is computed from the files the test wrote (tests/analyze/buildgen.py)
and the strip savings are measured with the real `strip`, never typed in.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from buildgen import (
    APT_CACHE,
    APT_LISTS,
    HELLO_C,
    INSTALL_RUN,
    PIP_CACHE,
    Pkg,
    blob,
    c_image,
    cc,
    needs_host_toolchain,
)
from conftest import fixture_build as fb

from imgscope.analyze.buildtools import (
    PackageGraph,
    StatusExtra,
    build_only,
    family_of,
    parse_apk_world,
    parse_extended_states,
    parse_status_extras,
    tool_name,
)
from imgscope.api import analyze
from imgscope.model import Finding, Package


def findings_by_title(analysis) -> dict[str, Finding]:
    return {f.title.split(":")[0]: f for f in analysis.extras.findings}


def names(finding: Finding) -> set[str]:
    return {k.split("/", 1)[1].split(":")[0].split("@")[0] for k in finding.packages}


# -- package names -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "family"), [
    ("gcc", "gcc"), ("gcc-12", "gcc"), ("g++-12", "gcc"), ("cpp-12", "gcc"),
    ("gcc-12-x86-64-linux-gnu", "gcc"), ("libstdc++-12-dev", "gcc"), ("libgcc-12-dev", "gcc"),
    ("libcc1-0", "gcc"), ("gfortran-12", "gcc"),
    ("binutils", "binutils"), ("binutils-x86-64-linux-gnu", "binutils"),
    ("binutils-aarch64-linux-gnu", "binutils"), ("libbinutils", "binutils"),
    ("clang-16", "llvm"), ("llvm-16-dev", "llvm"), ("libclang-cpp16", "llvm"), ("lld", "llvm"),
    ("golang-go", "go"), ("golang-1.19-go", "go"), ("golang-1.19-src", "go"), ("go", "go"),
    ("rustc", "rust"), ("cargo", "rust"), ("libstd-rust-1.63", "rust"),
    ("openjdk-17-jdk-headless", "jdk"), ("default-jdk", "jdk"), ("openjdk17-jdk", "jdk"),
    ("node-gyp", "node-gyp"), ("cython3", "cython"),
    ("build-essential", "build-systems"), ("build-base", "build-systems"),
    ("make", "build-systems"), ("cmake-data", "build-systems"), ("ninja-build", "build-systems"),
    ("pkgconf", "build-systems"), ("automake-1.16", "build-systems"),
    ("dpkg-dev", "build-systems"), (".build-deps", "build-systems"),
    ("gdb", "debug-tools"), ("libc6-dbg", "debug-symbols"), ("openssl-debuginfo", "debug-symbols"),
    ("libc6-dev", "dev"), ("zlib1g-dev", "dev"), ("python3.11-dev", "dev"),
    ("glibc-devel", "dev"), ("musl-dev", "dev"), ("linux-headers-6.1.0-13-amd64", "dev"),
    ("glibc-static", "dev"),
    # runtime packages that only look alike
    ("gcc-12-base", None), ("libgcc-s1", None), ("libstdc++6", None), ("libllvm15", None),
    ("openjdk-17-jre-headless", None), ("busybox-static", None), ("udev", None),
    ("libdevmapper1.02.1", None), ("perl", None), ("golang-github-foo-dev", "dev"),
    ("makedev", None), ("python3", None), ("libgomp1", None),
])
def test_family_by_name(name: str, family: str | None) -> None:
    assert family_of(Package("deb", name, "1")) == family


def test_language_build_packages() -> None:
    assert family_of(Package("pypi", "Cython", "3.0")) == "cython"
    assert family_of(Package("pypi", "scikit_build_core", "0.8")) == "build-systems"
    assert family_of(Package("pypi", "six", "1.16")) is None
    assert family_of(Package("npm", "node-gyp", "9.0.0")) == "node-gyp"
    assert family_of(Package("golang", "cmd/go", "go1.21")) is None


@pytest.mark.parametrize(("path", "tool"), [
    ("/usr/bin/x86_64-linux-gnu-gcc-12", "gcc"), ("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "cc1"),
    ("/usr/bin/aarch64-linux-gnu-ld.bfd", "ld.bfd"), ("/usr/bin/make", "make"),
    ("/usr/lib/go-1.19/bin/go", "go"), ("/usr/bin/python3", None), ("/usr/bin/ls", None),
])
def test_tool_names(path: str, tool: str | None) -> None:
    assert tool_name(path) == tool


# -- metadata parsing -----------------------------------------------------------------------------


def test_status_extras_and_extended_states() -> None:
    status = (b"Package: libc-bin\nEssential: yes\nPriority: required\nVersion: 1\n"
              b"Recommends: manpages\n\nPackage: dpkg-dev\nPriority: optional\n"
              b"Recommends: build-essential, gcc | c-compiler,\n fakeroot, gnupg | sq\n")
    extras = parse_status_extras(status)
    assert extras["libc-bin"] == StatusExtra(True, True, ("manpages",))
    assert extras["dpkg-dev"].recommends == ("build-essential", "gcc", "c-compiler", "fakeroot",
                                             "gnupg", "sq")
    states = (b"Package: gcc\nArchitecture: amd64\nAuto-Installed: 1\n\n"
              b"Package: make\nArchitecture: amd64\nAuto-Installed: 0\n")
    assert parse_extended_states(states) == {"gcc"}
    assert parse_apk_world(b"alpine-baselayout\nbuild-base>=0.5\n.build-deps\n!bad\n") == {
        "alpine-baselayout", "build-base", ".build-deps"}


def _graph(spec: dict[str, tuple[str, ...]], recommends: dict[str, tuple[str, ...]] | None = None,
           essential: tuple[str, ...] = (), manual: set[str] | None = None) -> PackageGraph:
    pkgs = {f"deb/{n}@1": Package("deb", n, "1", dependencies=deps) for n, deps in spec.items()}
    key = {n: f"deb/{n}@1" for n in spec}
    depends = {key[n]: {key[d] for d in deps} for n, deps in spec.items()}
    recs = {key[n]: {key[d] for d in (recommends or {}).get(n, ())} for n in spec}
    rdeps: dict[str, set[str]] = {}
    for k in pkgs:
        for d in depends[k] | recs[k]:
            rdeps.setdefault(d, set()).add(k)
    extras = {n: StatusExtra(essential=n in essential) for n in spec}
    return PackageGraph(pkgs, depends, recs, rdeps, extras, None, manual)


def test_build_only_follows_reachability_through_cycles() -> None:
    # gnupg and its parts recommend each other; only dpkg-dev (a build tool) brings them.
    graph = _graph(
        {"dpkg-dev": ("perl",), "perl": ("libc6",), "gnupg": ("gpg",), "gpg": ("libc6",),
         "gpg-agent": (), "libc6": (), "app": ("libssl3",), "libssl3": ("libc6",)},
        recommends={"dpkg-dev": ("gnupg",), "gpg": ("gpg-agent",), "gpg-agent": ("gnupg",)},
        essential=("libc6",))
    tools = {"deb/dpkg-dev@1"}
    got = build_only(graph, tools, protected=set())
    assert set(got) == {"deb/perl@1", "deb/gnupg@1", "deb/gpg@1", "deb/gpg-agent@1"}
    assert got["deb/perl@1"] == "needed only by dpkg-dev"
    # app is a root (nothing depends on it): it and its libssl3 stay, libc6 is essential.


def test_build_only_keeps_what_the_closure_or_a_manual_package_needs() -> None:
    graph = _graph({"gcc": ("libisl", "libmpc"), "libisl": (), "libmpc": (), "tool": ("libmpc",)},
                   manual={"tool"})
    assert set(build_only(graph, {"deb/gcc@1"}, protected=set())) == {"deb/libisl@1"}
    assert build_only(graph, {"deb/gcc@1"}, protected={"deb/libisl@1"}) == {}


# -- a C image with build-essential left in ---------------------------------------------------


@pytest.fixture(scope="module")
def c_built(tmp_path_factory: pytest.TempPathFactory):
    return c_image(tmp_path_factory.mktemp("c-image"))


@pytest.fixture(scope="module")
def c_analysis(c_built):
    return analyze(c_built.path)


@needs_host_toolchain
def test_build_tool_packages_by_family(c_built, c_analysis) -> None:
    found = findings_by_title(c_analysis)
    gcc = found["GCC C/C++ compiler"]
    assert names(gcc) == {"gcc", "gcc-12", "cpp", "cpp-12"}
    assert gcc.kind == "compiler" and gcc.category == "build-tool"
    assert gcc.bytes == c_built.removed("gcc", "gcc-12", "cpp", "cpp-12")
    assert dict(gcc.items)["deb/cpp-12:amd64@1.0-1"] == c_built.removed("cpp-12")
    assert gcc.layer == 1 and gcc.layers == (1,)
    assert gcc.instruction == f"RUN {INSTALL_RUN}"
    assert "/usr/lib/gcc/x86_64-linux-gnu/12/cc1" in gcc.paths
    assert "/usr/bin/x86_64-linux-gnu-gcc-12" in gcc.paths

    binutils = found["GNU binutils (ld, as)"]
    assert names(binutils) == {"binutils", "binutils-x86-64-linux-gnu"}
    assert binutils.bytes == c_built.removed("binutils", "binutils-x86-64-linux-gnu")
    assert set(binutils.paths) == {"/usr/bin/x86_64-linux-gnu-ld.bfd",
                                   "/usr/bin/x86_64-linux-gnu-as"}

    systems = found["Build systems and build helpers"]
    assert names(systems) == {"build-essential", "make", "dpkg-dev"}
    assert systems.bytes == c_built.removed("build-essential", "make", "dpkg-dev")

    dev = found["Development packages (headers, static libraries, .pc files)"]
    assert names(dev) == {"libc6-dev", "linux-libc-dev", "zlib1g-dev"}
    assert dev.category == "dev-files"
    assert dev.bytes == c_built.removed("libc6-dev", "linux-libc-dev", "zlib1g-dev")

    deps = found["Packages only the build tools need"]
    # fakeroot only through dpkg-dev's Recommends; zlib1g only through zlib1g-dev.
    assert names(deps) == {"libisl23", "perl", "zlib1g", "fakeroot"}
    assert deps.bytes == c_built.removed("libisl23", "perl", "zlib1g", "fakeroot")
    assert "fakeroot (needed only by dpkg-dev)" in deps.reason


@needs_host_toolchain
def test_runtime_packages_are_never_findings(c_analysis) -> None:
    flagged = {n for f in c_analysis.extras.findings for n in names(f)}
    # libc6: the closure; libgcc-s1, gcc-12-base: required; ca-certificates: installed by hand.
    assert not flagged & {"libc6", "libgcc-s1", "gcc-12-base", "ca-certificates", "base-files"}
    assert c_analysis.extras.advice.scan.closure.packages == ("deb/libc6:amd64@1.0-1",)


@needs_host_toolchain
def test_file_findings(c_built, c_analysis) -> None:
    found = findings_by_title(c_analysis)
    lists, cache, pip = (found["apt package lists"],
                         found["apt package cache (downloaded .debs, pkgcache.bin)"],
                         found["pip cache"])
    assert (lists.bytes, lists.paths, lists.layer) == (sum(APT_LISTS.values()),
                                                       ("/var/lib/apt/lists",), 1)
    assert (cache.bytes, cache.files) == (sum(APT_CACHE.values()), 2)
    assert (pip.bytes, pip.paths, pip.layer) == (sum(PIP_CACHE.values()), ("/root/.cache/pip",), 3)
    assert pip.instruction.startswith("RUN gcc -g -O1")
    objects = found["Object files (.o)"]
    assert (objects.bytes, objects.paths) == (len(c_built.hello_o), ("/src/build",))
    source = found["Source trees and build files"]
    assert (source.bytes, source.paths, source.layer) == (len(HELLO_C), ("/src",), 2)


@needs_host_toolchain
def test_unstripped_binary_saves_what_strip_saves(c_built, c_analysis) -> None:
    f = findings_by_title(c_analysis)["Unstripped ELF files"]
    assert f.paths == ("/usr/local/bin/hello",) and f.layer == 3
    assert f.bytes == pytest.approx(c_built.strip_savings, rel=0.01)
    assert "GCC" in f.reason  # the .comment names the compiler that built it


@needs_host_toolchain
def test_no_file_counted_twice(c_analysis) -> None:
    scan = c_analysis.extras.advice.scan
    seen: set[str] = set()
    for hit in scan.hits:
        if hit.strip:
            continue
        assert not seen & set(hit.files), hit.finding.title
        seen |= set(hit.files)
        assert hit.finding.bytes == sum(c_analysis.fs.get(p).size for p in hit.files)
    assert sum(h.finding.bytes for h in scan.hits if not h.strip) <= c_analysis.summary.final_bytes


@needs_host_toolchain
def test_build_tool_the_entrypoint_runs_is_kept(tmp_path: Path) -> None:
    # The image runs make itself: make is needed at run time and is never a finding.
    make_elf = cc(tmp_path / "fake-make", HELLO_C)
    tools = [Pkg("make", {"/usr/bin/make": make_elf}, depends="libc6")]
    built = c_image(tmp_path, cmd=("/usr/bin/make",), extra_tools=tools)
    analysis = analyze(built.path)
    flagged = {n for f in analysis.extras.findings for n in names(f)}
    assert "make" not in flagged
    kept = dict(analysis.extras.advice.scan.kept_tools)
    assert kept["deb/make:amd64@1.0-1"] == "the runtime closure needs its files"
    assert all("deb/make:amd64@1.0-1" not in r.packages
               for r in analysis.extras.recommendations)


# -- files no package owns --------------------------------------------------------------------


def _image(tmp_path: Path, members: list, cmd=("/app/run",), **kw) -> Path:
    spec = fb.ImageSpec(layers=[
        fb.LayerSpec(members, "/bin/sh -c #(nop) ADD file:abc in / "),
        fb.LayerSpec([fb.file("app/run", b"#!/bin/sh\n" + b"#" * 80 + b"\necho hi\n", 0o755)],
                     "/bin/sh -c #(nop) COPY file:0123456789ab in /app/run "),
    ], cmd=list(cmd), **kw)
    return fb.write_image(tmp_path / "image.tar", spec, "docker")


def test_hand_installed_toolchains_caches_and_vcs(tmp_path: Path) -> None:
    sizes = {
        "usr/local/go/bin/go": 3000, "usr/local/go/bin/gofmt": 1000,
        "usr/local/go/src/runtime/proc.go": 2000, "usr/local/go/pkg/tool/linux_amd64/compile": 4000,
        "root/.cache/go-build/0a/0a1b-d": 700, "go/pkg/mod/github.com/x/y@v1.0.0/y.go": 600,
        "root/.cargo/registry/cache/crates.io/serde-1.0.crate": 800,
        "root/.m2/repository/org/x/x-1.jar": 900, "root/.npm/_cacache/index-v5/ab/cd": 300,
        "app/.git/objects/pack/pack-1.pack": 1200, "app/.git/HEAD": 20,
        "usr/local/include/foo.h": 150, "usr/local/lib/libfoo.a": 0,
        "usr/local/lib/pkgconfig/foo.pc": 90,
        "opt/java/openjdk/bin/java": 500, "opt/java/openjdk/bin/javac": 400,
        "opt/java/openjdk/jmods/java.base.jmod": 5000, "opt/java/openjdk/lib/src.zip": 2500,
        "opt/java/openjdk/lib/modules": 7000,
        "build/target/release/app": 3300, "build/target/release/.fingerprint/x": 30,
        "build/target/CACHEDIR.TAG": 40,
    }
    members = [fb.file(p, blob(p, n), 0o755 if "/bin/" in p else 0o644)
               for p, n in sizes.items() if p != "usr/local/lib/libfoo.a"]
    members.append(fb.file("usr/local/lib/libfoo.a", b"!<arch>\n" + blob("a", 342)))
    members.append(fb.file("usr/local/lib/notreally.a", blob("not-ar", 64)))
    members.append(fb.file("opt/java/openjdk/release", b'JAVA_VERSION="17.0.9"\n'))
    analysis = analyze(_image(tmp_path, members, env=[fb.DEFAULT_ENV, "JAVA_VERSION=jdk-17.0.9+9"]))
    found = findings_by_title(analysis)
    go = found["Go toolchain installed by hand (GOROOT)"]
    assert (go.bytes, go.paths, go.kind) == (10000, ("/usr/local/go",), "toolchain")
    assert found["Go build cache"].bytes == 700
    assert found["Go module cache"].paths == ("/go/pkg/mod",)
    assert found["cargo registry cache"].paths == ("/root/.cargo/registry",)
    assert found["Maven/Gradle repository"].bytes == 900
    assert found["npm/yarn cache"].paths == ("/root/.npm",)
    vcs = found["Version-control directories (.git)"]
    assert (vcs.bytes, vcs.paths) == (1220, ("/app/.git",))
    jdk = found["JDK-only parts of a Java installation"]
    assert (jdk.bytes, jdk.paths) == (400 + 5000 + 2500, ("/opt/java/openjdk",))
    dev = found["Headers, static libraries and pkg-config files"]
    # notreally.a is not an ar archive: the magic check leaves it out
    assert dev.bytes == 150 + 350 + 90
    assert set(dev.paths) == {"/usr/local/include", "/usr/local/lib",
                              "/usr/local/lib/pkgconfig"}
    target = found["Rust target/ directory"]
    assert (target.bytes, target.paths) == (3300 + 30 + 40, ("/build/target",))
    # the JRE part of the Java home is not a finding
    assert all("/opt/java/openjdk/lib/modules" not in h.files
               for h in analysis.extras.advice.scan.hits)
    # the JDK came with the base layer: the fix is another base image
    jre = next(r for r in analysis.extras.recommendations if r.kind == "jre-instead-of-jdk")
    assert (jre.title, jre.bytes_alone) == ("Start from eclipse-temurin:17-jre instead of a JDK "
                                            "image", 400 + 5000 + 2500)


def test_alpine_build_deps(tmp_path: Path) -> None:
    db = "\n".join([
        "P:musl\nV:1.2.4-r2\nA:x86_64\nF:lib\nR:ld-musl-x86_64.so.1\n",
        "P:busybox\nV:1.36.1-r15\nA:x86_64\nD:musl\nF:bin\nR:busybox\n",
        "P:gcc\nV:13.2.1-r0\nA:x86_64\nD:binutils musl-dev\nF:usr/bin\nR:gcc\n",
        "P:binutils\nV:2.41-r0\nA:x86_64\nF:usr/bin\nR:ld\n",
        "P:musl-dev\nV:1.2.4-r2\nA:x86_64\nD:musl\nF:usr/include\nR:stdio.h\n",
        "P:libgmp\nV:6.3-r0\nA:x86_64\nF:usr/lib\nR:libgmp.so.10\n",
        "P:.build-deps\nV:20240101.000000\nA:noarch\nD:gcc libgmp\n",
        "P:ca-certificates-bundle\nV:1\nA:x86_64\nF:etc/ssl\nR:cert.pem\n",
    ]) + "\n"
    members = [
        fb.file("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
        fb.file("lib/apk/db/installed", db.encode()),
        fb.file("etc/apk/world", b"busybox\nca-certificates-bundle\n.build-deps\n"),
        fb.file("bin/busybox", blob("busybox", 700), 0o755),
        fb.file("lib/ld-musl-x86_64.so.1", blob("musl", 600), 0o755),
        fb.file("usr/bin/gcc", blob("gcc", 900), 0o755),
        fb.file("usr/bin/ld", blob("ld", 800), 0o755),
        fb.file("usr/include/stdio.h", blob("stdio", 300)),
        fb.file("usr/lib/libgmp.so.10", blob("gmp", 400)),
        fb.file("etc/ssl/cert.pem", blob("cert", 200)),
        fb.file("var/cache/apk/APKINDEX.0123.tar.gz", blob("idx", 1000)),
    ]
    analysis = analyze(_image(tmp_path, members))
    found = findings_by_title(analysis)
    assert names(found["GCC C/C++ compiler"]) == {"gcc"}
    assert names(found["Build systems and build helpers"]) == {".build-deps"}
    assert names(found["Development packages (headers, static libraries, .pc files)"]) == {
        "musl-dev"}
    assert names(found["GNU binutils (ld, as)"]) == {"binutils"}
    assert names(found["Packages only the build tools need"]) == {"libgmp"}
    assert found["apk cache"].bytes == 1000
    flagged = {n for f in analysis.extras.findings for n in names(f)}
    assert not flagged & {"musl", "busybox", "ca-certificates-bundle"}
