"""The runtime closure on real images, against what the image's own ld.so says.

`ldd` runs inside the image: in a container (`run_in_image`, buildah) for the entrypoint, and
chrooted into the umoci-unpacked root filesystem for everything else, since a buildah container
on vfs storage costs minutes and the chroot runs the very same loader, cache and files. Every
dynamically linked program under /usr/bin, /usr/sbin, /usr/lib/gcc and /usr/libexec and every
Python extension module is compared: the set of library paths ldd prints (as it prints them,
and resolved through symlinks inside the image) must equal ours.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from imgscope.analyze.closure import CONTENT_PATTERNS, library_closure, runtime_closure
from imgscope.analyze.elf import elf_candidates, elf_infos
from imgscope.analyze.types import RuntimeClosure
from imgscope.api import analyze

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import realimages  # noqa: E402

pytestmark = pytest.mark.realimage

PROGRAM_DIRS = ("/usr/bin/", "/usr/sbin/", "/usr/lib/gcc/", "/usr/libexec/", "/usr/local/bin/")
DYNLOAD = "/usr/lib/python3.11/lib-dynload/"


@dataclass
class Ours:
    closure: RuntimeClosure
    # binary -> (library paths as found + interpreter, same resolved, unresolved sonames)
    libs: dict[str, tuple[set[str], set[str], set[str]]]


def ours(name: str) -> Ours:
    reason = realimages.have_tools()
    if reason:
        pytest.skip(reason)
    tar = realimages.ensure_image(name)["docker"]
    box: list[Ours] = []

    def hook(analysis, view) -> None:
        fs = analysis.fs
        closure = runtime_closure(fs, view, analysis.config, analysis.attribution)
        paths = [p for p in elf_candidates(view, view.paths())
                 if p.startswith(PROGRAM_DIRS) or p.startswith(DYNLOAD)]
        libs: dict[str, tuple[set[str], set[str], set[str]]] = {}
        for path, info in elf_infos(view, paths).items():
            if info.static or (info.interpreter is None and not path.startswith(DYNLOAD)):
                continue
            lc = library_closure(fs, view, analysis.config, path)
            assert lc is not None
            found = {p for _, p in lc.libraries if p} | ({lc.interpreter} - {None})
            resolved = {fs.resolve(p)[0] for p in found}
            missing = {n.split(" ")[0] for n in lc.unresolved}
            libs[path] = (found, resolved, missing)  # type: ignore[assignment]
        box.append(Ours(closure, libs))

    analyze(tar, content_patterns=CONTENT_PATTERNS, post_analysis=hook)
    return box[0]


def parse_ldd(text: str) -> tuple[set[str], set[str]]:
    found: set[str] = set()
    missing: set[str] = set()
    for line in text.splitlines():
        if "linux-vdso" in line:
            continue
        m = re.match(r"\s*(\S+) => not found", line)
        if m:
            missing.add(m.group(1))
            continue
        m = re.match(r"\s*(?:\S+ => )?(/\S+) \(0x", line)
        if m:
            found.add(m.group(1))
    return found, missing


def ldd_chroot(name: str, binaries: list[str]) -> dict[str, tuple[set[str], set[str], set[str]]]:
    root = realimages.umoci_rootfs(name)
    script = 'for b in "$@"; do echo "=== $b"; ldd "$b" 2>&1; done'
    out = subprocess.run(["chroot", str(root), "/bin/sh", "-c", script, "sh", *binaries],
                         capture_output=True, text=True, check=True).stdout
    chunks = re.split(r"^=== (\S+)\n", out, flags=re.M)[1:]
    parsed = {chunks[i]: parse_ldd(chunks[i + 1]) for i in range(0, len(chunks), 2)}
    every = sorted({p for found, _ in parsed.values() for p in found})
    real = subprocess.run(["chroot", str(root), "readlink", "-f", *every], capture_output=True,
                          text=True, check=True).stdout.split("\n")
    resolved = dict(zip(every, real, strict=False))
    return {b: (found, {resolved[p] for p in found}, missing)
            for b, (found, missing) in parsed.items()}


def compare(name: str, mine: Ours, minimum: int) -> list[str]:
    theirs = ldd_chroot(name, sorted(mine.libs))
    assert len(theirs) == len(mine.libs) >= minimum
    diffs = []
    for binary, (found, resolved, missing) in sorted(mine.libs.items()):
        t_found, t_resolved, t_missing = theirs[binary]
        if (found, resolved, missing) != (t_found, t_resolved, t_missing):
            diffs.append(f"{binary}: ours-only {sorted(found - t_found)} "
                         f"ldd-only {sorted(t_found - found)} missing {missing} vs {t_missing}")
    return diffs


@pytest.fixture(scope="module")
def buildtools() -> Ours:
    return ours("buildtools")


@pytest.fixture(scope="module")
def pyapp() -> Ours:
    return ours("pyapp")


@pytest.fixture(scope="module")
def nodeapp() -> Ours:
    return ours("nodeapp")


def test_buildtools_entrypoint_equals_ldd_in_container(buildtools: Ours) -> None:
    c = buildtools.closure
    assert c.argv == ("/usr/local/bin/hello",) and c.kind == "elf-dynamic"
    out = realimages.run_in_image("buildtools", ["ldd", "/usr/local/bin/hello"])
    found, missing = parse_ldd(out)
    assert found == {p for _, p in c.libraries if p} == {
        "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
    assert missing == set() and c.unresolved == ()
    assert {"/usr/local/bin/hello", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib", "/lib64",
            "/usr/lib64/ld-linux-x86-64.so.2"} <= set(c.files)
    assert [p.split("@")[0] for p in c.packages] == ["deb/libc6:amd64"]
    assert c.app_paths == ("/usr/local/bin/hello",)


def test_buildtools_every_program_equals_ldd(buildtools: Ours) -> None:
    # gcc, cc1, ld.bfd, perl, apt... hundreds of programs.
    assert "/usr/lib/gcc/x86_64-linux-gnu/12/cc1" in buildtools.libs
    assert compare("buildtools", buildtools, minimum=200) == []


def test_pyapp_interpreter_and_extensions_equal_ldd(pyapp: Ours) -> None:
    assert "/usr/bin/python3.11" in pyapp.libs
    assert f"{DYNLOAD}_ssl.cpython-311-x86_64-linux-gnu.so" in pyapp.libs
    assert compare("pyapp", pyapp, minimum=30) == []


def test_pyapp_closure(pyapp: Ours) -> None:
    c = pyapp.closure
    assert c.argv == ("/opt/venv/bin/python", "/app/app.py")
    assert c.kind == "python" and c.executable == "/usr/bin/python3.11"
    assert c.interpreters == ("/usr/bin/python3.11",)
    names = {p.split("@")[0] for p in c.packages}
    assert {"deb/python3.11-minimal:amd64", "deb/libpython3.11-minimal:amd64",
            "deb/libpython3.11-stdlib:amd64", "deb/libssl3:amd64", "deb/libc6:amd64",
            "pypi/six", "pypi/idna"} <= names
    # pip installed `packaging` system-wide; the venv does not see system site-packages.
    assert "pypi/packaging" not in names
    assert "deb/python3-pip:all" not in names
    files = set(c.files)
    assert {"/app/app.py", "/opt/venv/bin/python", "/opt/venv/pyvenv.cfg",
            "/usr/lib/python3.11/os.py", "/usr/lib/x86_64-linux-gnu/libssl.so.3"} <= files
    assert not any(f.startswith("/usr/local/lib/python3.11/dist-packages/") for f in files)
    assert c.app_paths == ("/app",)
    assert c.unresolved == ()


def test_nodeapp_closure_equals_ldd(nodeapp: Ours) -> None:
    c = nodeapp.closure
    assert c.argv == ("node", "/app/index.js") and c.kind == "node"
    assert c.executable == "/usr/bin/node"
    names = {p.split("@")[0] for p in c.packages}
    assert {"deb/nodejs:amd64", "deb/libnode108:amd64", "deb/libuv1:amd64",
            "deb/libicu72:amd64", "npm/is-number"} <= names
    files = set(c.files)
    assert {"/app/index.js", "/app/package.json",
            "/app/node_modules/is-number/index.js"} <= files
    assert c.app_paths == ("/app",)
    node = {p for _, p in c.libraries if p}
    assert node == nodeapp.libs["/usr/bin/node"][0]
    assert compare("nodeapp", nodeapp, minimum=1) == []

