"""Python distributions: *.dist-info (METADATA + RECORD) and *.egg-info (PKG-INFO + file lists).

A distribution's files are what its RECORD (or egg-info installed-files.txt) names, relative to
the directory holding the metadata directory (site-packages, dist-packages, a venv's lib, or
any other import root). Byte-compiled ``__pycache__`` files written after installation are
claimed for the ``.py`` file they came from, since they are most of a package's bytes.
Metadata directories are found anywhere: pip, Debian's dist-packages and venvs all use them.
"""

from __future__ import annotations

import csv
import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from imgscope.catalog._common import decode, join_path, make_purl
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

# Characters that end a distribution name in a Requires-Dist value.
_NAME_STOP = " ;([<>=!~,"


@dataclass(frozen=True, slots=True)
class PyMetadata:
    """Name, version and runtime dependencies from the headers of METADATA or PKG-INFO."""

    name: str
    version: str
    requires: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One row of a RECORD file: a path of the distribution and its size, when stated."""

    path: str  # as written: relative to the site directory
    size: int | None


def parse_metadata(data: bytes) -> PyMetadata | None:
    """Headers of METADATA / PKG-INFO (email-style, body ignored); None without a Name."""
    fields: dict[str, str] = {}
    requires: dict[str, None] = {}
    for line in decode(data).split("\n"):
        line = line.rstrip("\r")
        if not line:
            break  # the body (long description) follows the first blank line
        if line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == "requires-dist":
            name = _dist_name(value)
            # 'x ; extra == "docs"' is only installed on request: not a dependency
            if name and "extra" not in value.partition(";")[2]:
                requires[name] = None
        elif key in ("name", "version") and key not in fields:
            fields[key] = value
    name = fields.get("name", "")
    if not name:
        return None
    return PyMetadata(name=name, version=fields.get("version", ""), requires=tuple(requires))


def _dist_name(value: str) -> str:
    end = len(value)
    for stop in _NAME_STOP:
        i = value.find(stop)
        if i != -1 and i < end:
            end = i
    return value[:end].strip()


def parse_record(data: bytes) -> tuple[list[RecordEntry], int]:
    """RECORD rows (path, hash, size); second value: rows that could not be read."""
    entries: list[RecordEntry] = []
    bad = 0
    try:
        for row in csv.reader(decode(data).splitlines()):
            if not row or not row[0]:
                continue
            if len(row) != 3:
                bad += 1
                continue
            size = row[2].strip()
            entries.append(
                RecordEntry(row[0], int(size) if size.isascii() and size.isdigit() else None)
            )
    except csv.Error:
        bad += 1
    return entries, bad


def parse_lines(data: bytes) -> list[str]:
    """installed-files.txt / SOURCES.txt / top_level.txt: one entry a line."""
    return [line.strip() for line in decode(data).splitlines() if line.strip()]


def _meta_kind(path: str) -> tuple[str, str] | None:
    """("dist"|"egg"|"egg-file", metadata dir) when ``path`` is a distribution's metadata."""
    parent, _, leaf = path.rpartition("/")
    pdir = parent.rpartition("/")[2]
    lower = pdir.lower()
    if leaf == "METADATA" and lower.endswith(".dist-info"):
        return "dist", parent
    if leaf == "PKG-INFO" and (lower.endswith(".egg-info") or pdir == "EGG-INFO"):
        return "egg", parent
    if leaf.endswith(".egg-info"):
        return "egg-file", path
    return None


def _listed(path: str, _facts: object) -> bool:
    """The listed paths the cataloger looks at (it tests the same inline: faster)."""
    return "/__pycache__/" in path or "-info" in path or "-INFO" in path


class PythonCataloger:
    name = "python"
    content_patterns = (
        "*.dist-info/METADATA",
        "*.dist-info/RECORD",
        "*.egg-info/PKG-INFO",
        "*.egg-info/installed-files.txt",
        "*.egg-info/RECORD",
        "*.egg-info/SOURCES.txt",
        "*/EGG-INFO/PKG-INFO",
        "*/EGG-INFO/SOURCES.txt",
        "*.egg-info",
    )
    wants_executables = False

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        metas: list[tuple[str, str, str]] = []  # (kind, metadata dir or file, metadata file)
        pycache: dict[str, list[str]] = defaultdict(list)
        meta_dirs: set[str] = set()
        all_paths: list[str] = []
        for path in files.paths(listed=_listed):
            if "/__pycache__/" in path:
                # "/a/b/__pycache__/m.cpython-311.pyc" belongs to "/a/b/m.py"
                head, _, leaf = path.partition("/__pycache__/")
                pycache[f"{head}/{leaf.split('.', 1)[0]}"].append(path)
                continue
            if "-info" not in path and "-INFO" not in path:
                continue  # one cheap test for the 99% of paths that are not metadata
            all_paths.append(path)
            kind = _meta_kind(path)
            if kind is None:
                continue
            if kind[0] == "egg-file":
                item = files.stat(path)
                if item is None or item.type != "file":
                    continue
            metas.append((kind[0], kind[1], path))
            meta_dirs.add(kind[1])

        # Files inside metadata directories, for eggs that list nothing.
        inside: dict[str, list[str]] = defaultdict(list)
        for path in all_paths:
            parent = path.rpartition("/")[0]
            if parent in meta_dirs:
                item = files.stat(path)
                if item is not None and item.type != "dir":
                    inside[parent].append(path)

        for kind, meta_dir, meta_path in metas:
            data = files.read(meta_path)
            if data is None:
                result.warnings.append(f"python: {meta_path}: content not available")
                continue
            meta = parse_metadata(data)
            if meta is None:
                result.warnings.append(f"python: {meta_path}: no Name field, skipped")
                continue
            if not meta.version:
                result.warnings.append(f"python: {meta_path}: {meta.name} has no Version")
            site = posixpath.dirname(meta_dir)
            evidence = [meta_path]
            if kind == "dist":
                claimed, size = self._dist_files(files, meta_dir, site, evidence, result)
            else:
                claimed, size = self._egg_files(files, kind, meta_dir, site, evidence)
            if kind != "egg-file":
                claimed.extend(inside.get(meta_dir, ()))
            claimed.append(meta_path)
            result.packages.append(
                Package(
                    ecosystem="pypi",
                    name=meta.name,
                    version=meta.version,
                    # the purl spec lowercases and maps "_" to "-" (packageurl does it)
                    purl=make_purl("pypi", meta.name, meta.version),
                    files=_with_pycache(claimed, pycache),
                    dependencies=meta.requires,
                    evidence=tuple(evidence),
                    installed_size=size,
                )
            )
        return result

    @staticmethod
    def _dist_files(
        files: FileView, meta_dir: str, site: str, evidence: list[str], result: CatalogResult
    ) -> tuple[list[str], int | None]:
        record_path = f"{meta_dir}/RECORD"
        data = files.read(record_path)
        if data is None:
            return [], None
        evidence.append(record_path)
        entries, bad = parse_record(data)
        if bad:
            result.warnings.append(f"python: {record_path}: {bad} malformed row(s) ignored")
        sizes = [e.size for e in entries if e.size is not None]
        return [join_path(site, e.path) for e in entries], sum(sizes) if sizes else None

    @staticmethod
    def _egg_files(
        files: FileView, kind: str, meta_dir: str, site: str, evidence: list[str]
    ) -> tuple[list[str], int | None]:
        if kind == "egg-file":
            return [], None
        installed = files.read(f"{meta_dir}/installed-files.txt")
        if installed is not None:
            evidence.append(f"{meta_dir}/installed-files.txt")
            return [join_path(meta_dir, p) for p in parse_lines(installed)], None
        record = files.read(f"{meta_dir}/RECORD")
        if record is not None:  # unusual beside PKG-INFO, but some tools write one
            evidence.append(f"{meta_dir}/RECORD")
            entries, _ = parse_record(record)
            sizes = [e.size for e in entries if e.size is not None]
            return [join_path(site, e.path) for e in entries], sum(sizes) if sizes else None
        claimed: list[str] = []
        sources = files.read(f"{meta_dir}/SOURCES.txt")
        if sources is not None:
            # SOURCES.txt is relative to the source tree: keep what landed in the site dir.
            for entry in parse_lines(sources):
                for rel in (entry, entry.removeprefix("src/"), entry.removeprefix("lib/")):
                    path = join_path(site, rel)
                    if files.stat(path) is not None:
                        claimed.append(path)
                        break
            if claimed:
                evidence.append(f"{meta_dir}/SOURCES.txt")
        return claimed, None


def _with_pycache(claimed: Iterable[str], pycache: dict[str, list[str]]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for path in claimed:
        out[path] = None
        if path.endswith(".py"):
            for pyc in pycache.get(path[:-3], ()):
                out[pyc] = None
    return tuple(out)
