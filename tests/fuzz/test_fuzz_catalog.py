"""Package-database parsers and ELF inspection, on mutated real files.

Seeds are ../shared/corpus/pkgdb (dpkg, apk, rpm, python, npm, gem, java databases and
manifests) and ../shared/corpus/{bin,elf} (Go and Rust binaries, odd ELF files), placed where
each cataloger looks. base.py's contract is stricter than the CLI's: a cataloger never raises
on bad data (it returns what it read and warnings), so any exception is a finding here.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgscope.catalog.base import CatalogResult, FileInfo, MemoryFileView, compile_patterns
from imgscope.catalog.registry import all_catalogers
from imgscope.model import Package

from .config import fuzz_settings
from .guard import Finding, deadline, memory_ceiling
from .inputs import CORPUS, byte_mutations

MAX_SEED = 512 * 1024
CATALOGERS = {c.name: c for c in all_catalogers()}
# where a file goes when no suffix of its corpus path is a path the cataloger reads
BY_NAME = {
    "status": "/var/lib/dpkg/status",
    "installed": "/lib/apk/db/installed",
    "Packages": "/var/lib/rpm/Packages",
    "package.json": "/app/node_modules/pkg/package.json",
    "package-lock.json": "/app/package-lock.json",
    "METADATA": "/usr/lib/python3/site-packages/pkg-1.0.dist-info/METADATA",
    "PKG-INFO": "/usr/lib/python3/site-packages/pkg.egg-info/PKG-INFO",
    "RECORD": "/usr/lib/python3/site-packages/pkg-1.0.dist-info/RECORD",
    "release": "/usr/lib/jvm/jdk/release",
}


def _target(cataloger_name: str, rel: Path) -> str | None:
    cataloger = CATALOGERS[cataloger_name]
    pattern = compile_patterns(cataloger.content_patterns)
    if pattern is None:
        return None
    parts = rel.parts
    for i in range(len(parts)):
        candidate = "/" + "/".join(parts[i:])
        if pattern.match(candidate):
            return candidate
    guess = BY_NAME.get(rel.name)
    if guess is None and rel.suffix in (".jar", ".war", ".gemspec"):
        guess = {".gemspec": f"/usr/lib/ruby/specifications/{rel.name}"}.get(
            rel.suffix, f"/app/{rel.name}")
    return guess if guess is not None and pattern.match(guess) else None


@functools.cache
def seeds() -> dict[str, tuple[tuple[str, bytes], ...]]:
    """cataloger name -> ((image path, bytes), ...)."""
    out: dict[str, list[tuple[str, bytes]]] = {name: [] for name in CATALOGERS}
    for path in sorted((CORPUS / "pkgdb").rglob("*")):
        if not path.is_file() or path.stat().st_size > MAX_SEED:
            continue
        rel = path.relative_to(CORPUS / "pkgdb")
        for name in CATALOGERS:
            target = _target(name, rel)
            if target:
                out[name].append((target, path.read_bytes()))
    binaries = [p for d in ("bin", "elf") for p in sorted((CORPUS / d).rglob("*"))
                if p.is_file() and p.stat().st_size <= 8 * MAX_SEED]
    for name, cataloger in CATALOGERS.items():
        if getattr(cataloger, "wants_executables", False):
            out[name].extend((f"/usr/bin/{p.name}", p.read_bytes()) for p in binaries)
    return {name: tuple(items) for name, items in out.items() if items}


def view(files: dict[str, bytes]) -> MemoryFileView:
    extra = [FileInfo(path=p, type="file", size=len(b), mode=0o755, layer=0)
             for p, b in files.items() if p.startswith("/usr/bin/")]
    return MemoryFileView(files, extra)


def run_cataloger(name: str, files: dict[str, bytes]) -> CatalogResult:
    cataloger = CATALOGERS[name]
    try:
        with memory_ceiling(), deadline(10):
            result = cataloger.catalog(view(files))
    except BaseException as exc:  # noqa: BLE001 - the contract is "never raises"
        raise Finding(f"{name} cataloger: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, CatalogResult):
        raise Finding(f"{name} cataloger returned {type(result).__name__}")
    assert all(isinstance(p, Package) for p in result.packages)
    assert all(isinstance(w, str) for w in result.warnings)
    return result


@st.composite
def mutated_files(draw: st.DrawFn) -> tuple[str, dict[str, bytes]]:
    available = seeds()
    name = draw(st.sampled_from(sorted(available)))
    items = available[name]
    files: dict[str, bytes] = {}
    for _ in range(draw(st.integers(1, 3))):
        path, data = items[draw(st.integers(0, len(items) - 1))]
        if draw(st.integers(0, 4)):
            data = draw(byte_mutations(data, max_ops=4))
        files[path] = data
    return name, files


class _Files(dict):
    def __repr__(self) -> str:  # keep falsifying examples readable: names and sizes only
        return "{" + ", ".join(f"{k!r}: <{len(v)} bytes>" for k, v in self.items()) + "}"


@fuzz_settings()
@given(data=st.data())
def test_catalogers_survive_mutated_databases(data: st.DataObject) -> None:
    if not seeds():
        pytest.skip(f"no package-database seeds under {CORPUS / 'pkgdb'}")
    name, files = data.draw(mutated_files().map(lambda x: (x[0], _Files(x[1]))), label="files")
    run_cataloger(name, files)


def test_every_cataloger_has_seeds_and_reads_them() -> None:
    """The unmutated seeds parse without raising, and each cataloger gets some to chew on."""
    available = seeds()
    if not (CORPUS / "pkgdb").exists():
        pytest.skip(f"corpus absent: {CORPUS}")
    missing = sorted(set(CATALOGERS) - set(available))
    assert missing == [], f"no seeds for {missing}"
    found = 0
    for name, items in available.items():
        for path, data in items:
            found += len(run_cataloger(name, {path: data}).packages)
    assert found > 20
