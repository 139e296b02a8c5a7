"""Rust crates compiled into binaries built with cargo-auditable (the ``.dep-v0`` section).

The section holds zlib-compressed JSON: ``{"packages": [{"name", "version", "source",
"dependencies": [indexes], "root": true, "kind": "build"}]}``. The root crate owns the binary;
every other crate is reported with the binary as evidence. Binaries built without
cargo-auditable carry no dependency list and yield nothing.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from imgscope.catalog._common import make_purl
from imgscope.catalog._elf import ElfImage, programs
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

SECTION = ".dep-v0"
# A dependency list inflating past this is not cargo-auditable output.
_MAX_JSON = 16 << 20


@dataclass(frozen=True, slots=True)
class Crate:
    """One crate of a cargo-auditable dependency list; dependencies are indexes into that list."""

    name: str
    version: str
    source: str | None
    root: bool
    kind: str | None  # "build" for build-time-only crates, else None (runtime)
    dependencies: tuple[int, ...]


def parse_dep_v0(data: bytes) -> tuple[list[Crate], list[str]]:
    """Crates of a compressed .dep-v0 payload; never raises."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data, _MAX_JSON)
        if inflater.unconsumed_tail:
            return [], ["dependency list too large"]
        doc = json.loads(raw)
    except (zlib.error, ValueError, RecursionError) as exc:
        return [], [f"unreadable dependency list: {exc}"]
    packages = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(packages, list):
        return [], ["dependency list has no 'packages' array"]
    crates: list[Crate] = []
    bad = 0
    for item in packages:
        if not isinstance(item, dict):
            bad += 1
            continue
        name, version = item.get("name"), item.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            bad += 1
            continue
        deps = item.get("dependencies", [])
        crates.append(
            Crate(
                name=name,
                version=version,
                source=item.get("source") if isinstance(item.get("source"), str) else None,
                root=item.get("root") is True,
                kind=item.get("kind") if isinstance(item.get("kind"), str) else None,
                dependencies=tuple(d for d in deps if isinstance(d, int) and 0 <= d < len(packages))
                if isinstance(deps, list)
                else (),
            )
        )
    warnings = [f"{bad} malformed package entr(ies) skipped"] if bad else []
    return crates, warnings


def packages_for(binary: str, crates: list[Crate]) -> list[Package]:
    pkgs: list[Package] = []
    for crate in crates:
        deps = tuple(crates[i].name for i in crate.dependencies if i < len(crates))
        pkgs.append(
            Package(
                ecosystem="cargo",
                name=crate.name,
                version=crate.version,
                purl=make_purl("cargo", crate.name, crate.version),
                files=(binary,) if crate.root else (),
                dependencies=deps,
                evidence=(binary,),
            )
        )
    return pkgs


class RustBinaryCataloger:
    name = "rust"
    content_patterns: tuple[str, ...] = ()
    wants_executables = True

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        for path in programs(files, 1024):
            found = files.remember(path, self.name, lambda path=path: _dependencies(files, path))
            if found is None:
                continue
            crates, warnings = found
            result.warnings.extend(f"rust: {path}: {w}" for w in warnings)
            result.packages.extend(packages_for(path, crates))
        return result


def _dependencies(files: FileView, path: str) -> tuple[list[Crate], list[str]] | None:
    """The crates (and warnings) of the cargo-auditable section of the ELF at `path`, or None
    for a file without one."""
    stream = files.open(path)
    if stream is None:
        return None
    with stream:
        elf = ElfImage.parse(stream)
        data = elf.section_data(SECTION) if elf is not None else None
    return parse_dep_v0(data) if data is not None else None
