"""catalog.twin: what a cataloger found in one image is reused for its twin only where nothing
it looked at differs, and every cataloger's listings say what they depend on."""

from __future__ import annotations

import io
import json
import zlib

import imgscope_fixtures_build as fb
import pytest
from conftest import view as memory_view

from imgscope.archive.layer import Blob, LayerReader
from imgscope.archive.streams import reader_chunks
from imgscope.catalog.base import FileInfo, MemoryFileView
from imgscope.catalog.registry import all_catalogers
from imgscope.catalog.twin import Differences, twin_views
from imgscope.overlay import Overlay

BASE = [
    fb.directory("etc"), fb.file("etc/keep", b"keep\n"), fb.file("etc/same", b"same bytes"),
    fb.directory("usr"), fb.directory("usr/lib"), fb.file("usr/lib/libx.so", b"x" * 99),
    fb.symlink("lib", "usr/lib"), fb.file("etc/mode", b"m", mode=0o644),
]
TOP = [
    fb.directory("usr"),  # written again, as it was: nothing a cataloger sees differs
    fb.file("etc/new", b"new\n"),
    fb.file("etc/same", b"same bytes"),  # the same bytes, another file: counted as differing
    fb.file("usr/lib/liby.so", b"y" * 20),
    fb.file("etc/mode", b"m", mode=0o755),
]


def _apply(overlay: Overlay, index: int, members) -> None:
    stream = io.BytesIO(fb.layer_tar(members))
    head = stream.read(8)
    blob = Blob(name=f"layer {index}", size=0, chunks=reader_chunks(stream.read), head=head)
    overlay.apply(index, LayerReader(blob, index, None, False).entries())


def _twins(top=TOP) -> tuple[Overlay, Overlay, set[str]]:
    first = Overlay()
    _apply(first, 0, BASE)
    second = first.snapshot()
    _apply(second, 1, top)
    one, two = first.index(), second.index()
    # every path whose node is not the one both trees share: what diff.changed_paths names
    changed = {p for p in one.keys() | two.keys() if one.get(p) is not two.get(p)}
    return first, second, changed


def test_only_what_a_cataloger_can_see_differs() -> None:
    first, second, changed = _twins()
    assert "/usr" in changed  # a new node ...
    differences = Differences(first, second, changed)
    # ... with the same type and mode: not a difference; a file's bytes are its content object
    assert set(differences.nodes) == {"/etc/new", "/etc/same", "/usr/lib/liby.so", "/etc/mode"}
    assert differences.resolve_alike


def test_a_unit_is_kept_only_when_it_met_no_differing_path() -> None:
    first, second, changed = _twins()
    recording, reusing = twin_views(first, second, changed, {})

    def through(view, path):  # remember() follows symlinks to find the file's inode
        return view.remember(path, "test", lambda: view._node(path) is not None)

    kept = {
        "stat": lambda: recording.stat("/etc/keep").size,
        "missing-then-added": lambda: recording.stat("/etc/new"),
        "through-link": lambda: through(recording, "/lib/libx.so"),
        "link-to-added": lambda: through(recording, "/lib/liby.so"),
        "listing": lambda: len(list(recording.paths())),
        "listing-refusing": lambda: [p for p in recording.paths(
            listed=lambda path, _facts: path.startswith("/etc/keep")) if p == "/etc/keep"],
        "listing-accepting": lambda: len(list(recording.entries(
            listed=lambda _path, facts: facts.type == "file" and facts.mode & 0o100))),
    }
    answers = {key: recording.reusable(key, compute) for key, compute in kept.items()}
    assert answers["stat"] == 5 and answers["through-link"] is True
    assert answers["missing-then-added"] is None and answers["link-to-added"] is False

    def refuse():
        raise AssertionError("a kept unit ran again")

    assert reusing.reusable("stat", refuse) == 5
    assert reusing.reusable("through-link", refuse) is True
    assert reusing.reusable("listing-refusing", refuse) == ["/etc/keep"]
    # the others ran again, on the second tree, and answer for it
    assert reusing.reusable("missing-then-added", lambda: reusing.stat("/etc/new")).size == 4
    assert reusing.reusable("link-to-added", lambda: through(reusing, "/lib/liby.so")) is True
    assert reusing.reusable("listing", lambda: len(list(reusing.paths()))) == \
        len(second.index())
    # /etc/mode became executable on the second side: the listing accepts it there
    assert reusing.reusable("listing-accepting", lambda: 1) == 1


def test_a_clean_unit_inside_one_that_met_a_difference_is_kept() -> None:
    first, second, changed = _twins()
    recording, reusing = twin_views(first, second, changed, None)
    recording.reusable("outer", lambda: (recording.stat("/etc/new"),
                                         recording.reusable("inner", lambda: "inner")))
    assert reusing.reusable("inner", lambda: "ran again") == "inner"
    assert reusing.reusable("outer", lambda: "ran again") == "ran again"


def test_a_differing_symlink_to_a_directory_keeps_nothing() -> None:
    """Units inside a cataloger may use its directory cache (PathResolver), worked out
    outside them: a symlink that leads to a directory where the other tree has none
    resolves paths differently, so nothing is reused, however clean."""
    first, second, changed = _twins([*TOP, fb.symlink("opt", "etc")])
    assert not Differences(first, second, changed).resolve_alike
    recording, reusing = twin_views(first, second, changed, None)
    assert recording.reusable("stat", lambda: recording.stat("/etc/keep").size) == 5
    assert reusing.reusable("stat", lambda: "again") == "again"


class _ListedOnly:
    """A view that lists only the paths the caller says its result depends on, and fails a
    listing that does not say: a cataloger whose result changes here would be reused
    wrongly on a twin tree."""

    def __init__(self, files: MemoryFileView) -> None:
        self._files = files
        self.files_only = files.files_only

    def __getattr__(self, name: str):
        return getattr(self._files, name)

    def paths(self, listed=None):
        assert listed is not None, "a listing without listed="
        return iter([p for p, info in self._files.entries() if listed(p, info)])

    def entries(self, listed=None):
        assert listed is not None, "a listing without listed="
        return iter([(p, info) for p, info in self._files.entries() if listed(p, info)])

    def reusable(self, key, compute):
        return compute()


def _every_ecosystem(corpus_data, elf) -> MemoryFileView:
    files = corpus_data.tree("pkgdb/syft/image-pkg-coverage/pkgs")
    files["/etc/os-release"] = corpus_data.bytes("pkgdb/syft/image-pkg-coverage/etc/os-release")
    go = corpus_data.bytes("bin/go/trivy-go-test.elf")
    deps = {"packages": [{"name": "app", "version": "0.3.0", "source": "local", "root": True}]}
    rust = elf({".text": b"\xc3" * 2048, ".dep-v0": zlib.compress(json.dumps(deps).encode())})
    files.update({
        "/usr/local/bin/goapp": go,
        "/usr/bin/rustapp": rust,
        "/srv/node_modules/left-pad/package.json": b'{"name": "left-pad", "version": "1.3.0"}',
        "/srv/node_modules/left-pad/index.js": b"module.exports = 1;\n",
        "/opt/jdk/release": b'JAVA_VERSION="17.0.9"\nIMPLEMENTOR="Eclipse Adoptium"\n',
        "/opt/jdk/bin/javac": b"\x7fELF javac stand-in",
        "/opt/jdk/lib/modules": b"modules",
    })
    executable = [FileInfo(p, "file", len(files[p]), 0o755, 0)
                  for p in ("/usr/local/bin/goapp", "/usr/bin/rustapp", "/opt/jdk/bin/javac")]
    return memory_view(files, infos=executable)


def test_every_cataloger_depends_only_on_the_listed_paths_it_accepts(corpus_data, elf) -> None:
    """The catalogers skip listed paths with tests of their own (a call a path costs more);
    the `listed` they pass must accept every path those tests keep."""
    files = _every_ecosystem(corpus_data, elf)
    for cataloger in all_catalogers():
        full = cataloger.catalog(files)
        assert full.packages, f"{cataloger.name} found nothing: the check would prove nothing"
        assert cataloger.catalog(_ListedOnly(files)) == full, cataloger.name


@pytest.mark.parametrize("distroless", [False, True])
def test_dpkg_lists_status_d_with_listed(distroless: bool) -> None:
    status = b"Package: base-files\nVersion: 12.4\nArchitecture: amd64\n"
    where = "/var/lib/dpkg/status.d/base-files" if distroless else "/var/lib/dpkg/status"
    files = memory_view({where: status + (b"" if distroless else b"Status: install ok "
                                                                   b"installed\n")},
                        dirs=["/var/lib/dpkg/status.d"])
    dpkg = next(c for c in all_catalogers() if c.name == "dpkg")
    full = dpkg.catalog(files)
    assert [(p.name, p.version) for p in full.packages] == [("base-files", "12.4")]
    assert dpkg.catalog(_ListedOnly(files)) == full
