"""npm packages installed under node_modules, with package-lock.json as supporting evidence.

An installed package is a directory ``.../node_modules/NAME`` or ``.../node_modules/@SCOPE/NAME``
holding a package.json; it owns every file below it except those of packages nested in its
own node_modules (each path belongs to the package after its last "/node_modules/").
Lockfiles (package-lock.json v1/v2/v3, npm-shrinkwrap.json, node_modules/.package-lock.json)
add themselves as evidence and their dependency names; a lockfile entry with no installed
directory is not reported, since none of its bytes are in the image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from imgscope.catalog._common import make_purl
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

NM = "/node_modules/"
_LOCK_NAMES = ("package-lock.json", "npm-shrinkwrap.json", "node_modules/.package-lock.json")
_DEP_FIELDS = ("dependencies", "optionalDependencies")


@dataclass(frozen=True, slots=True)
class PackageJson:
    """Name, version and runtime dependency names from an installed package's package.json."""

    name: str
    version: str
    dependencies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LockEntry:
    """One package of an npm lockfile: name, version, dependency names, whether it is dev-only."""

    name: str
    version: str
    dependencies: tuple[str, ...]
    dev: bool


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: hostile nesting depth
        return None


def _dep_names(obj: dict[str, Any], fields: tuple[str, ...] = _DEP_FIELDS) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for field in fields:
        deps = obj.get(field)
        if isinstance(deps, dict):
            names.update(dict.fromkeys(k for k in deps if isinstance(k, str)))
    return tuple(names)


def parse_package_json(data: bytes) -> PackageJson | None:
    """name, version and runtime dependency names; None when not a JSON object."""
    obj = _load_json(data)
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    version = obj.get("version")
    return PackageJson(
        name=name if isinstance(name, str) else "",
        version=version if isinstance(version, str) else "",
        dependencies=_dep_names(obj),
    )


def parse_package_lock(data: bytes) -> tuple[dict[str, LockEntry], list[str]]:
    """Entries keyed by install path relative to the project ("node_modules/a/node_modules/b")."""
    obj = _load_json(data)
    if not isinstance(obj, dict):
        return {}, ["not a JSON object"]
    out: dict[str, LockEntry] = {}
    warnings: list[str] = []
    packages = obj.get("packages")
    if isinstance(packages, dict):  # lockfileVersion 2 and 3
        for key, entry in packages.items():
            if not key or not isinstance(entry, dict) or entry.get("link"):
                continue  # "" is the project itself; links point at workspace folders
            name = entry.get("name")  # set for aliases and workspaces
            if not isinstance(name, str) or not name:
                name = key.rpartition("node_modules/")[2]
            version = entry.get("version")
            if not isinstance(version, str) or not version:
                warnings.append(f"{key}: no version")
                continue
            out[key] = LockEntry(name, version, _dep_names(entry), bool(entry.get("dev")))
        return out, warnings
    deps = obj.get("dependencies")
    if isinstance(deps, dict):  # lockfileVersion 1: a tree of nested "dependencies"
        stack: list[tuple[str, dict[str, Any]]] = [("", deps)]
        while stack:
            prefix, level = stack.pop()
            for name, entry in level.items():
                if not isinstance(entry, dict):
                    continue
                key = f"{prefix}node_modules/{name}"
                version = entry.get("version")
                if isinstance(version, str) and version:
                    real_name = name
                    if version.startswith("npm:"):  # an alias: "npm:case@1.6.3"
                        real_name, _, version = version[4:].rpartition("@")
                    requires = entry.get("requires")
                    names = tuple(requires) if isinstance(requires, dict) else ()
                    out[key] = LockEntry(real_name or name, version, names, bool(entry.get("dev")))
                nested = entry.get("dependencies")
                if isinstance(nested, dict):
                    stack.append((key + "/", nested))
    return out, warnings


def package_root(path: str) -> str | None:
    """The installed package directory a path under node_modules belongs to."""
    i = path.rfind(NM)
    if i == -1:
        return None
    rest = path[i + len(NM) :]
    first, sep, tail = rest.partition("/")
    if not sep or first.startswith("."):
        return None  # node_modules/.bin, .package-lock.json, a loose file
    if first.startswith("@"):
        second, sep, _ = tail.partition("/")
        if not sep:
            return None
        return f"{path[: i + len(NM)]}{first}/{second}"
    return path[: i + len(NM)] + first


class NpmCataloger:
    name = "npm"
    content_patterns = (
        "*/node_modules/*/package.json",
        "*/package-lock.json",
        "*/npm-shrinkwrap.json",
        "*/node_modules/.package-lock.json",
    )
    wants_executables = False

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        owned: dict[str, list[str]] = {}
        for path in files.paths(listed=lambda path, _facts: NM in path):
            if NM not in path:
                continue
            root = package_root(path)
            if root is None:
                continue
            item = files.stat(path)
            if item is None or item.type == "dir":
                continue
            owned.setdefault(root, []).append(path)

        locks: dict[str, tuple[str, dict[str, LockEntry]]] = {}
        for root in sorted(owned):
            manifest = root + "/package.json"
            data = files.read(manifest)
            if data is None:
                continue  # a directory without package.json is not a package
            pj = parse_package_json(data)
            if pj is None:
                result.warnings.append(f"npm: {manifest}: not a JSON object, skipped")
                continue
            dir_name = root[root.rfind(NM) + len(NM) :]
            name = pj.name or dir_name
            if not pj.version:
                result.warnings.append(f"npm: {manifest}: {name} has no version, skipped")
                continue
            evidence = [manifest]
            deps = dict.fromkeys(pj.dependencies)
            project = root[: root.find(NM)]
            lock = locks.get(project)
            if lock is None:
                lock = locks[project] = self._lock_for(files, project, result)
            lock_path, entries = lock
            entry = entries.get(root[len(project) + 1 :])
            if entry is not None:
                evidence.append(lock_path)
                deps.update(dict.fromkeys(entry.dependencies))
            scope, _, short = name.rpartition("/")
            result.packages.append(
                Package(
                    ecosystem="npm",
                    name=name,
                    version=pj.version,
                    purl=make_purl("npm", short, pj.version, scope or None),
                    files=tuple(owned[root]),
                    dependencies=tuple(deps),
                    evidence=tuple(evidence),
                )
            )
        return result

    @staticmethod
    def _lock_for(
        files: FileView, project: str, result: CatalogResult
    ) -> tuple[str, dict[str, LockEntry]]:
        for lock_name in _LOCK_NAMES:
            path = f"{project}/{lock_name}"
            data = files.read(path)
            if data is None:
                continue
            entries, warnings = parse_package_lock(data)
            result.warnings.extend(f"npm: {path}: {w}" for w in warnings)
            if entries:
                return path, entries
        return "", {}
