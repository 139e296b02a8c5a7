"""Runtime closure (imgscope/analyze/closure.py) on small images generated here.

The images hold binaries compiled in the test with gcc and the host's own glibc, laid out like a
merged-/usr Debian. Where ld.so's behaviour is the question (RPATH vs RUNPATH inheritance,
$ORIGIN, skipping unusable files) the answer is checked against the host's real `ldd` on the
same tree, not written down from memory.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import fixture_build as fb

from imgscope.analyze.closure import CONTENT_PATTERNS, library_closure, runtime_closure
from imgscope.analyze.types import RuntimeClosure
from imgscope.api import Analysis, analyze

TRIPLET = "x86_64-linux-gnu"
HOST_LIBDIR = Path("/usr/lib") / TRIPLET
INTERP = "/lib64/ld-linux-x86-64.so.2"
pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64" or shutil.which("gcc") is None
    or not (HOST_LIBDIR / "libc.so.6").is_file() or not Path(INTERP).exists(),
    reason="needs gcc and an x86_64 multiarch glibc host (Debian/Ubuntu)",
)

PLAIN = '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'
MATHS = ('#include <math.h>\n#include <stdio.h>\n'
         'int main(int c, char **v) { printf("%f\\n", sqrt((double)c)); return 0; }\n')
LIBM_USER = ('#include <math.h>\n'
             'double ext_norm(double a, double b) { return sqrt(a * a + b * b); }\n')


# Executables under 64 bytes are not kept while reading layers: real scripts are longer.
PAD = b"# " + b"-" * 70 + b"\n"


def cc(out: Path, source: str, *args: str) -> Path:
    src = out.with_name(out.name + ".c")
    src.write_text(source)
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *args], check=True,
                   capture_output=True)
    return out


class Build:
    """Binaries compiled once for the module."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.plain = cc(tmp / "plain", PLAIN)
        self.maths = cc(tmp / "maths", MATHS, "-lm")
        self.static = cc(tmp / "static", PLAIN, "-static")
        self.libm_user = cc(tmp / "libext.so", LIBM_USER, "-shared", "-fPIC", "-lm")
        # libbar <- libfoo <- app: libfoo has no search path of its own.
        self.libbar = cc(tmp / "libbar.so.1", "int bar(void) { return 7; }\n", "-shared",
                         "-fPIC", "-Wl,-soname,libbar.so.1")
        self.libfoo = cc(tmp / "libfoo.so.1", "int bar(void);\nint foo(void) { return bar(); }\n",
                         "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", str(self.libbar))
        app = "int foo(void);\nint main(void) { return foo() == 7 ? 0 : 1; }\n"
        link = f"-Wl,-rpath-link,{tmp}"  # lets ld find libbar behind libfoo at link time
        self.app_rpath = cc(tmp / "app_rpath", app, str(self.libfoo), link,
                            "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib")
        self.app_runpath = cc(tmp / "app_runpath", app, str(self.libfoo), link,
                              "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")
        self.app_plain = cc(tmp / "app_plain", app, str(self.libfoo), link)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return Build(tmp_path_factory.mktemp("closure-bin"))


def host_lib(name: str) -> bytes:
    return (HOST_LIBDIR / name).resolve().read_bytes()


def dpkg(packages: dict[str, tuple[str, Sequence[str]]]) -> list[fb.Member]:
    """A dpkg database: name -> (Depends, files)."""
    stanzas = []
    members = []
    for name, (depends, files) in packages.items():
        lines = [f"Package: {name}", "Status: install ok installed", "Architecture: amd64",
                 "Version: 1.0-1"]
        if depends:
            lines.append(f"Depends: {depends}")
        lines.append(f"Description: {name}")
        stanzas.append("\n".join(lines) + "\n")
        listing = "/.\n" + "".join(f"{f}\n" for f in files)
        members.append(fb.file(f"var/lib/dpkg/info/{name}:amd64.list", listing.encode()))
    members.insert(0, fb.file("var/lib/dpkg/status", "\n".join(stanzas).encode()))
    return members


def base(extra_packages: dict[str, tuple[str, Sequence[str]]] | None = None) -> list[fb.Member]:
    """Merged-/usr Debian-like root: glibc, dash as /bin/sh, env."""
    lib = f"usr/lib/{TRIPLET}"
    members = [
        fb.directory("usr"), fb.directory("usr/bin"), fb.directory("usr/lib"),
        fb.directory(lib), fb.directory("usr/lib64"), fb.directory("etc"),
        fb.directory("usr/local"), fb.directory("usr/local/bin"),
        fb.symlink("bin", "usr/bin"), fb.symlink("lib", "usr/lib"),
        fb.symlink("lib64", "usr/lib64"), fb.symlink("sbin", "usr/sbin"),
        fb.file(f"{lib}/ld-linux-x86-64.so.2", host_lib("ld-linux-x86-64.so.2"), 0o755),
        fb.symlink("usr/lib64/ld-linux-x86-64.so.2", f"../lib/{TRIPLET}/ld-linux-x86-64.so.2"),
        fb.file(f"{lib}/libc.so.6", host_lib("libc.so.6"), 0o755),
        fb.file(f"{lib}/libm.so.6", host_lib("libm.so.6"), 0o644),
        fb.file("usr/bin/dash", Path("/usr/bin/dash").read_bytes(), 0o755),
        fb.symlink("usr/bin/sh", "dash"),
        fb.file("usr/bin/env", Path("/usr/bin/env").resolve().read_bytes(), 0o755),
        fb.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"),
        fb.file("etc/group", b"root:x:0:\napp:x:1000:\n"),
    ]
    packages = {
        "libc6": ("", [f"/lib/{TRIPLET}/libc.so.6", f"/lib/{TRIPLET}/libm.so.6",
                       f"/lib/{TRIPLET}/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"]),
        "dash": ("libc6", ["/bin/dash", "/bin/sh"]),
        "coreutils": ("libc6", ["/usr/bin/env"]),
        **(extra_packages or {}),
    }
    return members + dpkg(packages)


class HidingView:
    """A view that has lost the bytes of some paths (as when a pattern did not keep them)."""

    def __init__(self, view, hidden: set[str]) -> None:
        self._view, self._hidden = view, hidden

    def __getattr__(self, name: str):
        return getattr(self._view, name)

    def read(self, path: str) -> bytes | None:
        return None if path in self._hidden else self._view.read(path)

    def open(self, path: str):
        return None if path in self._hidden else self._view.open(path)


def closure_of(tmp_path: Path, members: Sequence[fb.Member], *, hide: set[str] | None = None,
               **config: object) -> tuple[RuntimeClosure, Analysis]:
    spec = fb.ImageSpec(layers=[fb.LayerSpec(list(members))], **config)  # type: ignore[arg-type]
    tar = fb.write_image(tmp_path / "image.tar", spec, "docker")
    box: list[RuntimeClosure] = []

    def hook(analysis: Analysis, view) -> None:
        if hide:
            view = HidingView(view, hide)
        box.append(runtime_closure(analysis.fs, view, analysis.config, analysis.attribution))

    analysis = analyze(tar, content_patterns=CONTENT_PATTERNS, post_analysis=hook)
    return box[0], analysis


def exe(path: str, binary: Path, mode: int = 0o755) -> fb.Member:
    return fb.file(path, binary.read_bytes(), mode)


GLIBC = {("libc.so.6", f"/lib/{TRIPLET}/libc.so.6"),
         ("ld-linux-x86-64.so.2", INTERP)}
GLIBC_FILES = {"/lib", "/lib64", "/usr/lib64/ld-linux-x86-64.so.2",
               f"/usr/lib/{TRIPLET}/ld-linux-x86-64.so.2", f"/usr/lib/{TRIPLET}/libc.so.6"}


# -- ELF programs -----------------------------------------------------------------------------


def test_dynamic_entrypoint(tmp_path: Path, build: Build) -> None:
    members = [*base(), exe("usr/local/bin/maths", build.maths)]
    c, _ = closure_of(tmp_path, members, cmd=["maths"])
    assert c.argv == ("maths",)
    assert c.executable == "/usr/local/bin/maths"
    assert c.kind == "elf-dynamic"
    assert set(c.libraries) == GLIBC | {("libm.so.6", f"/lib/{TRIPLET}/libm.so.6")}
    assert set(c.files) == GLIBC_FILES | {"/usr/local/bin/maths", f"/usr/lib/{TRIPLET}/libm.so.6"}
    assert c.packages == ("deb/libc6:amd64@1.0-1",)
    assert c.app_paths == ("/usr/local/bin/maths",)  # no package owns it
    assert c.unresolved == ()
    assert c.interpreters == ()  # PT_INTERP is a library here, not an interpreter
    assert any("NSS" in text for text in c.limits)
    assert any("dlopen" in text for text in c.limits)


def test_hwcaps_variants_are_kept_and_stated(tmp_path: Path, build: Build) -> None:
    variant = f"usr/lib/{TRIPLET}/glibc-hwcaps/x86-64-v3/libm.so.6"
    members = [*base(), exe("usr/local/bin/maths", build.maths),
               fb.file(variant, host_lib("libm.so.6"))]
    c, _ = closure_of(tmp_path, members, cmd=["maths"])
    assert ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6") in c.libraries
    assert "/" + variant in c.files
    assert any("depends on the CPU" in text for text in c.limits)


def test_static_entrypoint(tmp_path: Path, build: Build) -> None:
    c, _ = closure_of(tmp_path, [exe("server", build.static)], entrypoint=["/server"], cmd=None)
    assert c.kind == "elf-static"
    assert c.files == ("/server",)
    assert c.libraries == () and c.packages == () and c.interpreters == ()
    assert any("FROM scratch" in text for text in c.limits)


def test_missing_library_and_missing_command(tmp_path: Path, build: Build) -> None:
    members = [*base(), exe("opt/app/bin/app", build.app_plain)]
    c, _ = closure_of(tmp_path, members, entrypoint=["/opt/app/bin/app"], cmd=None)
    assert c.unresolved == ("libfoo.so.1",)
    assert ("libfoo.so.1", None) in c.libraries
    c, _ = closure_of(tmp_path, base(), cmd=["no-such-command", "--flag"])
    assert c.kind == "unknown" and c.unresolved == ("no-such-command",)
    assert c.executable is None
    c, _ = closure_of(tmp_path, base(), cmd=None)
    assert c.kind == "unknown" and c.argv == ()
    assert "the image has no Entrypoint or Cmd" in c.limits


def ldd_host(binary: Path) -> set[tuple[str, str | None]]:
    """(name, path) pairs real ld.so resolves for BINARY on this host (libc from the host's
    cache, which names the same /lib/<triplet> paths our images have)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    pairs: set[tuple[str, str | None]] = set()
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (not found|\S+)", line)
        if m:
            pairs.add((m.group(1), None if m.group(2) == "not found" else m.group(2)))
    return pairs


@pytest.mark.parametrize("variant", ["app_rpath", "app_runpath"])
def test_origin_and_rpath_inheritance_match_host_ldd(tmp_path: Path, build: Build,
                                                     variant: str) -> None:
    # The same tree on the host and in the image at /opt/app: $ORIGIN makes it relocatable.
    # With DT_RPATH the program's path is also searched for libfoo's own dependency (libbar);
    # DT_RUNPATH applies to the program's direct dependencies only.
    tree = tmp_path / "opt" / "app"
    (tree / "bin").mkdir(parents=True)
    (tree / "lib").mkdir()
    shutil.copy(getattr(build, variant), tree / "bin" / "app")
    shutil.copy(build.libfoo, tree / "lib" / "libfoo.so.1")
    shutil.copy(build.libbar, tree / "lib" / "libbar.so.1")
    host = {(name, path.replace(str(tmp_path), "") if path else None)
            for name, path in ldd_host(tree / "bin" / "app")}
    members = [*base(), exe("opt/app/bin/app", tree / "bin" / "app"),
               exe("opt/app/lib/libfoo.so.1", build.libfoo, 0o644),
               exe("opt/app/lib/libbar.so.1", build.libbar, 0o644)]
    c, _ = closure_of(tmp_path, members, cmd=["/opt/app/bin/app"])
    ours = {(name, path) for name, path in c.libraries if name != "ld-linux-x86-64.so.2"}
    assert ours == host
    foo = ("libfoo.so.1", "/opt/app/bin/../lib/libfoo.so.1")  # ld.so keeps "$ORIGIN/.." as is
    assert foo in ours
    if variant == "app_rpath":
        assert ("libbar.so.1", "/opt/app/bin/../lib/libbar.so.1") in ours
        assert "/opt/app/lib/libbar.so.1" in c.files
    else:
        assert ("libbar.so.1", None) in ours
        assert c.unresolved == ("libbar.so.1 (needed by /opt/app/bin/../lib/libfoo.so.1)",)


def test_lib_token_matches_host_ldd(tmp_path: Path, build: Build) -> None:
    # $LIB is lib/<triplet> on a multiarch glibc: ask real ld.so. ($PLATFORM is the CPU's
    # family, "haswell" on many x86-64 hosts: only stated as a limit.)
    app = cc(tmp_path / "app_tokens", "int foo(void);\nint main(void) { return foo(); }\n",
             str(build.libfoo), f"-Wl,-rpath-link,{build.tmp}",
             "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../${PLATFORM}:$ORIGIN/../$LIB")
    tree = tmp_path / "opt" / "app"
    (tree / "bin").mkdir(parents=True)
    (tree / "lib" / TRIPLET).mkdir(parents=True)
    shutil.copy(app, tree / "bin" / "app")
    shutil.copy(build.libfoo, tree / "lib" / TRIPLET / "libfoo.so.1")
    shutil.copy(build.libbar, tree / "lib" / TRIPLET / "libbar.so.1")
    host = {(name, path.replace(str(tmp_path), "") if path else None)
            for name, path in ldd_host(tree / "bin" / "app")}
    members = [*base(), exe("opt/app/bin/app", app),
               exe(f"opt/app/lib/{TRIPLET}/libfoo.so.1", build.libfoo, 0o644),
               exe(f"opt/app/lib/{TRIPLET}/libbar.so.1", build.libbar, 0o644)]
    c, _ = closure_of(tmp_path, members, cmd=["/opt/app/bin/app"])
    ours = {(name, path) for name, path in c.libraries if name != "ld-linux-x86-64.so.2"}
    assert ours == host
    assert ("libbar.so.1", f"/opt/app/bin/../lib/{TRIPLET}/libbar.so.1") in ours
    assert any("$PLATFORM" in text for text in c.limits)


def test_unusable_candidates_are_skipped(tmp_path: Path, build: Build, corpus: Path) -> None:
    # A linker script and a library of another machine first on the path: ld.so goes on.
    members = [*base(), exe("opt/app/bin/app", build.app_rpath),
               fb.file("opt/app/lib/libfoo.so.1", b"/* GNU ld script */\nINPUT(libfoo.so.2)\n"),
               fb.file("opt/app/lib/libm.so.6",
                       (corpus / "elf/pyelftools/aarch64_be_gnu_hash.so.elf").read_bytes()),
               exe("opt/lib2/libfoo.so.1", build.libfoo, 0o644),
               exe("opt/lib2/libbar.so.1", build.libbar, 0o644)]
    env = [fb.DEFAULT_ENV, "LD_LIBRARY_PATH=/opt/lib2"]
    c, _ = closure_of(tmp_path, members, cmd=["/opt/app/bin/app"], env=env)
    assert ("libfoo.so.1", "/opt/lib2/libfoo.so.1") in c.libraries
    assert ("libbar.so.1", "/opt/lib2/libbar.so.1") in c.libraries
    assert "/opt/app/lib/libfoo.so.1" not in c.files
    # LD_PRELOAD is loaded first, through the same search.
    env.append("LD_PRELOAD=libm.so.6")
    c, _ = closure_of(tmp_path, members, cmd=["/opt/app/bin/app"], env=env)
    assert c.libraries[0] == ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6")


def ld_so_conf_members(build: Build) -> list[fb.Member]:
    return [*base(), exe("opt/app/bin/app", build.app_plain),
            exe("opt/conf/lib/libfoo.so.1", build.libfoo, 0o644),
            exe("opt/conf/lib/libbar.so.1", build.libbar, 0o644),
            fb.file("etc/ld.so.conf", b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n"),
            fb.directory("etc/ld.so.conf.d"),
            fb.file("etc/ld.so.conf.d/app.conf", b"/opt/conf/lib\n"),
            fb.file("etc/ld.so.conf.d/ignored.txt", b"/nowhere\n")]


def test_ld_so_cache_from_real_ldconfig(tmp_path: Path, build: Build) -> None:
    if os.geteuid() != 0:
        pytest.skip("ldconfig -r needs root")
    root = tmp_path / "root"
    (root / "etc" / "ld.so.conf.d").mkdir(parents=True)
    (root / "opt" / "conf" / "lib").mkdir(parents=True)
    (root / "etc" / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (root / "etc" / "ld.so.conf.d" / "app.conf").write_text("/opt/conf/lib\n")
    shutil.copy(build.libfoo, root / "opt/conf/lib/libfoo.so.1")
    shutil.copy(build.libbar, root / "opt/conf/lib/libbar.so.1")
    subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)
    cache = (root / "etc" / "ld.so.cache").read_bytes()
    members = [*ld_so_conf_members(build), fb.file("etc/ld.so.cache", cache)]
    c, _ = closure_of(tmp_path, members, cmd=["/opt/app/bin/app"])
    assert ("libfoo.so.1", "/opt/conf/lib/libfoo.so.1") in c.libraries
    assert ("libbar.so.1", "/opt/conf/lib/libbar.so.1") in c.libraries
    assert c.unresolved == ()
    assert not any("ld.so.cache" in text for text in c.limits)
    assert "/etc/ld.so.cache" in c.files  # ld.so reads it at every start
    assert "/etc/ld.so.conf.d/app.conf" not in c.files  # only ldconfig reads those
    # A cache whose bytes were not kept: the ld.so.conf directories stand in for it.
    c, _ = closure_of(tmp_path, members, cmd=["/opt/app/bin/app"], hide={"/etc/ld.so.cache"})
    assert ("libfoo.so.1", "/opt/conf/lib/libfoo.so.1") in c.libraries
    assert any("/etc/ld.so.cache not readable" in text for text in c.limits)


def test_no_cache_means_conf_dirs_are_not_searched(tmp_path: Path, build: Build) -> None:
    # ld.so reads only the cache; ld.so.conf matters once ldconfig has run.
    c, _ = closure_of(tmp_path, ld_so_conf_members(build), cmd=["/opt/app/bin/app"])
    assert c.unresolved == ("libfoo.so.1",)
    assert any("no /etc/ld.so.cache" in text for text in c.limits)


def test_musl_search_order(tmp_path: Path, build: Build) -> None:
    # A program whose PT_INTERP names musl's loader is searched the musl way: no ld.so.cache,
    # /etc/ld-musl-ARCH.path (or /lib:/usr/local/lib:/usr/lib), libc.so names the loader.
    app = cc(tmp_path / "app_musl", "int foo(void);\nint main(void) { return foo(); }\n",
             str(build.libfoo), f"-Wl,-rpath-link,{build.tmp}",
             "-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1")
    members = [fb.directory("lib"), fb.directory("usr"), fb.directory("usr/lib"),
               exe("lib/ld-musl-x86_64.so.1", build.libm_user),  # any ELF object will do
               fb.symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
               exe("usr/local/lib/libfoo.so.1", build.libfoo, 0o644),
               exe("usr/lib/libbar.so.1", build.libbar, 0o644),
               exe("usr/bin/app", app)]
    c, _ = closure_of(tmp_path, members, cmd=["/usr/bin/app"])
    assert c.kind == "elf-dynamic"
    assert ("libfoo.so.1", "/usr/local/lib/libfoo.so.1") in c.libraries
    assert ("libbar.so.1", "/usr/lib/libbar.so.1") in c.libraries
    assert ("libc.so.6", "/lib/ld-musl-x86_64.so.1") in c.libraries  # the loader is libc
    assert not any("ld.so.cache" in text for text in c.limits)
    path_file = fb.file("etc/ld-musl-x86_64.path", b"/usr/lib\n")
    c, _ = closure_of(tmp_path, [*members, path_file], cmd=["/usr/bin/app"])
    assert c.unresolved == ("libfoo.so.1",)  # /usr/local/lib is no longer searched


# -- commands, scripts, wrappers ---------------------------------------------------------------


def test_shell_form_follows_first_real_command(tmp_path: Path, build: Build) -> None:
    members = [*base(), exe("opt/app/bin/app", build.maths)]
    c, _ = closure_of(tmp_path, members,
                      cmd=["/bin/sh", "-c", "set -e; cd /opt/app && exec ./bin/app --serve"])
    assert c.executable == "/usr/bin/dash"
    assert c.kind == "elf-dynamic"
    assert "/usr/bin/dash" in c.interpreters
    assert {"/bin", "/usr/bin/sh", "/usr/bin/dash", "/opt/app/bin/app"} <= set(c.files)
    assert ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6") in c.libraries
    assert any("only its first command" in text for text in c.limits)


def test_shell_options_redirections_and_plain_scripts(tmp_path: Path, build: Build) -> None:
    script = b"#!/bin/sh\n" + PAD + b"echo starting\n/usr/local/bin/server\n"
    members = [*base(), exe("usr/local/bin/server", build.maths),
               fb.file("start.sh", script, 0o755)]
    c, _ = closure_of(tmp_path, members,
                      cmd=["/bin/bash", "-ec", "FOO=1 server --port 80 >/tmp/log 2>&1"])
    assert c.unresolved == ("/bin/bash",)  # no bash in this image
    c, _ = closure_of(tmp_path, members, cmd=["/bin/sh", "-ec", "FOO=1 server >/tmp/log 2>&1"])
    assert c.kind == "elf-dynamic" and "/usr/local/bin/server" in c.files
    assert not any("only its first command" in text for text in c.limits)
    c, _ = closure_of(tmp_path, members, cmd=["/start.sh"])
    assert c.kind == "shell"
    assert "/usr/local/bin/server" not in c.files  # what a script runs is not guessed
    assert any("/start.sh: shell script; the commands it runs are not followed" in text
               for text in c.limits)


def test_entrypoint_script_exec_args(tmp_path: Path, build: Build) -> None:
    script = b'#!/bin/sh\nset -e\nif [ "$1" = serve ]; then echo start; fi\nexec "$@"\n'
    members = [*base(), fb.file("docker-entrypoint.sh", script, 0o755),
               exe("usr/local/bin/server", build.plain)]
    c, _ = closure_of(tmp_path, members, entrypoint=["/docker-entrypoint.sh"], cmd=["server"])
    assert c.executable == "/docker-entrypoint.sh"
    assert c.kind == "elf-dynamic"
    assert c.interpreters == ("/bin/sh", "/usr/bin/dash")
    assert {"/docker-entrypoint.sh", "/usr/local/bin/server", "/usr/bin/dash"} <= set(c.files)
    assert c.app_paths == ("/docker-entrypoint.sh", "/usr/local/bin/server")
    assert "deb/dash:amd64@1.0-1" in c.packages


def test_env_and_init_wrappers(tmp_path: Path, build: Build) -> None:
    members = [*base(), exe("sbin/tini", build.static), exe("usr/local/bin/server", build.maths)]
    c, _ = closure_of(tmp_path, members,
                      entrypoint=["/sbin/tini", "--", "/usr/bin/env", "MODE=prod", "server"])
    assert c.kind == "elf-dynamic"
    assert {"/usr/sbin/tini", "/usr/bin/env", "/usr/local/bin/server"} <= set(c.files)
    assert ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6") in c.libraries
    assert "deb/coreutils:amd64@1.0-1" in c.packages


def test_user_name_needs_passwd(tmp_path: Path, build: Build) -> None:
    members = [*base(), exe("usr/local/bin/server", build.plain)]
    c, _ = closure_of(tmp_path, members, cmd=["server"], user="app")
    assert {"/etc/passwd", "/etc/group"} <= set(c.files)
    c, _ = closure_of(tmp_path, members, cmd=["server"], user="1000:1000")
    assert "/etc/passwd" not in c.files


def test_script_in_a_compressed_layer_is_followed(tmp_path: Path, build: Build) -> None:
    # Compressed layers cannot be read back by seeking: the reader keeps small #! scripts
    # whole as they pass, so the closure still follows the interpreter line.
    script = b"#!/bin/sh\necho hi\n"
    spec = fb.ImageSpec(layers=[fb.LayerSpec([*base(), fb.file("run.sh", script, 0o755)],
                                             compression="gzip")], cmd=["/run.sh"])
    tar = fb.write_image(tmp_path / "gz.tar", spec, "oci")
    box: list[RuntimeClosure] = []
    analyze(tar, content_patterns=CONTENT_PATTERNS,
            post_analysis=lambda a, v: box.append(runtime_closure(a.fs, v, a.config,
                                                                  a.attribution)))
    c = box[0]
    assert (c.executable, c.kind) == ("/run.sh", "shell")
    assert c.interpreters == ("/bin/sh", "/usr/bin/dash")
    assert c.packages == ("deb/dash:amd64@1.0-1", "deb/libc6:amd64@1.0-1")
    assert not any("cannot tell an ELF file from a script" in text for text in c.limits)


# -- language runtimes --------------------------------------------------------------------------


def python_members(build: Build) -> list[fb.Member]:
    dynload = "usr/lib/python3.11/lib-dynload/_ext.cpython-311-x86_64-linux-gnu.so"
    extra = {
        "python3.11-minimal": ("libc6, zlib1g", ["/usr/bin/python3.11"]),
        "python3-minimal": ("python3.11-minimal", ["/usr/bin/python3"]),
        "libpython3.11-stdlib": ("media-types, libc6",
                                 ["/usr/lib/python3.11/os.py", "/" + dynload]),
        "python3-six": ("", ["/usr/lib/python3/dist-packages/six.py"]),
        "media-types": ("", ["/etc/mime.types"]),
    }
    return [
        *base(extra),
        exe("usr/bin/python3.11", build.plain),  # the name makes it Python; bytes need libc
        fb.symlink("usr/bin/python3", "python3.11"),
        fb.file("usr/lib/python3.11/os.py", b"# os\n"),
        exe(dynload, build.libm_user, 0o644),
        fb.file("usr/lib/python3/dist-packages/six.py", b"# six\n"),
        fb.file("etc/mime.types", b"text/plain txt\n"),
        fb.file("app/app.py", b"import six\n"),
        fb.file("app/lib/helpers.py", b"X = 1\n"),
        fb.file("app/tool", b"#!/usr/bin/env python3\n" + PAD + b"print(1)\n", 0o755),
        fb.symlink("opt/venv/bin/python", "/usr/bin/python3.11"),
        fb.file("opt/venv/pyvenv.cfg", b"home = /usr/bin\ninclude-system-site-packages = false\n"),
        fb.file("opt/venv/lib/python3.11/site-packages/venvmod.py", b"# venv\n"),
        fb.file("opt/venv/bin/run", b"#!/opt/venv/bin/python\n" + PAD + b"import venvmod\n",
                0o755),
    ]


def test_python_system_interpreter(tmp_path: Path, build: Build) -> None:
    c, _ = closure_of(tmp_path, python_members(build), cmd=["python3", "-u", "app.py"],
                      working_dir="/app")
    assert c.kind == "python"
    assert c.executable == "/usr/bin/python3.11"
    assert "/usr/bin/python3.11" in c.interpreters
    files = set(c.files)
    assert {"/usr/bin/python3", "/usr/bin/python3.11", "/usr/lib/python3.11/os.py",
            "/usr/lib/python3/dist-packages/six.py", "/app/app.py",
            "/app/lib/helpers.py"} <= files
    assert "/opt/venv/lib/python3.11/site-packages/venvmod.py" not in files
    # The extension module's own library comes along, as the interpreter will dlopen it.
    assert ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6") in c.libraries
    assert {"deb/python3.11-minimal:amd64@1.0-1", "deb/libpython3.11-stdlib:amd64@1.0-1",
            "deb/python3-six:amd64@1.0-1", "deb/libc6:amd64@1.0-1"} <= set(c.packages)
    assert "deb/media-types:amd64@1.0-1" not in c.packages
    assert any("libpython3.11-stdlib declares dependencies that are not in the closure: "
               "media-types" in text for text in c.limits)
    assert c.app_paths == ("/app",)


def test_python_venv_script(tmp_path: Path, build: Build) -> None:
    c, _ = closure_of(tmp_path, python_members(build), entrypoint=["/opt/venv/bin/run"])
    assert c.kind == "python"
    assert c.interpreters == ("/opt/venv/bin/python", "/usr/bin/python3.11")
    files = set(c.files)
    assert {"/opt/venv/bin/run", "/opt/venv/bin/python", "/opt/venv/pyvenv.cfg",
            "/opt/venv/lib/python3.11/site-packages/venvmod.py",
            "/usr/lib/python3.11/os.py"} <= files
    assert "/usr/lib/python3/dist-packages/six.py" not in files  # venv without system site
    assert "/opt/venv/bin" in c.app_paths


def test_python_env_shebang(tmp_path: Path, build: Build) -> None:
    c, _ = closure_of(tmp_path, python_members(build), cmd=["/app/tool"])
    assert c.kind == "python"
    assert c.interpreters == ("/usr/bin/env", "/usr/bin/python3.11")
    assert {"/app/tool", "/usr/bin/env", "/usr/bin/python3", "/usr/bin/python3.11"} <= \
        set(c.files)
    assert "deb/coreutils:amd64@1.0-1" in c.packages
    assert c.app_paths == ("/app",)


def test_node_app(tmp_path: Path, build: Build) -> None:
    members = [
        *base({"nodejs": ("libc6", ["/usr/bin/node", "/usr/share/doc/nodejs/README"])}),
        exe("usr/bin/node", build.plain),
        fb.file("usr/share/doc/nodejs/README", b"node\n"),
        fb.file("app/package.json", b'{"name": "app"}\n'),
        fb.file("app/src/index.js", b"require('left')\n"),
        fb.file("app/node_modules/left/index.js", b"module.exports = 1\n"),
        exe("app/node_modules/addon/build/Release/addon.node", build.libm_user),
        fb.file("srv/unrelated.js", b"\n"),
    ]
    c, _ = closure_of(tmp_path, members, cmd=["node", "--enable-source-maps", "src/index.js"],
                      working_dir="/app")
    assert c.kind == "node"
    files = set(c.files)
    assert {"/usr/bin/node", "/app/src/index.js", "/app/package.json",
            "/app/node_modules/left/index.js",
            "/app/node_modules/addon/build/Release/addon.node"} <= files
    assert "/srv/unrelated.js" not in files
    assert "/usr/share/doc/nodejs/README" in files  # the runtime's package, whole
    assert ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6") in c.libraries  # the addon's
    assert c.app_paths == ("/app",)
    assert "deb/nodejs:amd64@1.0-1" in c.packages


def test_java_jar(tmp_path: Path, build: Build) -> None:
    home = "usr/lib/jvm/java-17"
    libjli = cc(tmp_path / "libjli.so", "int jli(void) { return 1; }\n", "-shared", "-fPIC",
                "-Wl,-soname,libjli.so")
    java = cc(tmp_path / "java", "int jli(void);\nint main(void) { return jli(); }\n",
              str(libjli), "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib")
    members = [
        *base({"openjdk-17-jre-headless": ("libc6", [f"/{home}/bin/java", f"/{home}/lib/libjli.so",
                                                     f"/{home}/lib/server/libjvm.so"])}),
        exe(f"{home}/bin/java", java),
        exe(f"{home}/lib/libjli.so", libjli, 0o644),
        exe(f"{home}/lib/server/libjvm.so", build.libm_user, 0o644),
        fb.symlink("etc/alternatives/java", f"/{home}/bin/java"),
        fb.symlink("usr/bin/java", "/etc/alternatives/java"),
        fb.file("srv/app/app.jar", b"PK\x03\x04"),
    ]
    c, _ = closure_of(tmp_path, members, entrypoint=["java", "-Xmx1g", "-jar", "/srv/app/app.jar"])
    assert c.kind == "java"
    assert c.executable == f"/{home}/bin/java"
    assert ("libjli.so", f"/{home}/bin/../lib/libjli.so") in c.libraries
    assert ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6") in c.libraries  # libjvm's
    assert {"/usr/bin/java", "/etc/alternatives/java", f"/{home}/lib/server/libjvm.so",
            "/srv/app/app.jar"} <= set(c.files)
    assert c.app_paths == ("/srv/app",)
    assert "deb/openjdk-17-jre-headless:amd64@1.0-1" in c.packages


def test_library_closure_of_any_binary(tmp_path: Path, build: Build) -> None:
    members = [*base(), exe("usr/local/bin/maths", build.maths)]
    spec = fb.ImageSpec(layers=[fb.LayerSpec(members)])
    tar = fb.write_image(tmp_path / "image.tar", spec, "docker")
    box = []
    analyze(tar, content_patterns=CONTENT_PATTERNS, post_analysis=lambda a, v: box.append(
        (library_closure(a.fs, v, a.config, "/bin/sh"),
         library_closure(a.fs, v, a.config, "/usr/local/bin/maths"),
         library_closure(a.fs, v, a.config, "/etc/passwd"))))
    sh, maths, passwd = box[0]
    assert sh.path == "/usr/bin/dash" and set(sh.libraries) == GLIBC
    assert {"/bin", "/usr/bin/sh"} <= set(sh.files)
    assert ("libm.so.6", f"/lib/{TRIPLET}/libm.so.6") in maths.libraries
    assert passwd is None
