"""Debian packages: /var/lib/dpkg/status (or distroless status.d/) plus the info/ file lists.

Only the real database paths are read, and a file whose stanzas carry vcpkg's own fields
(``Abi``, ``Type: Port``, ``Feature``) is rejected: vcpkg writes a dpkg-looking ``status``
file that lists Windows ports, and the path rule alone would not stop one copied to
/var/lib/dpkg/status by a careless Dockerfile.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from imgscope.catalog._common import (
    PathResolver,
    decode,
    distro_qualifier,
    make_purl,
    os_release,
)
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

STATUS_PATH = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d"
INFO_DIR = "/var/lib/dpkg/info"

# Files beside a distroless status.d stanza file that are not stanzas themselves.
_CONTROL_SUFFIXES = (
    ".md5sums",
    ".list",
    ".conffiles",
    ".preinst",
    ".postinst",
    ".prerm",
    ".postrm",
    ".config",
    ".templates",
    ".triggers",
    ".shlibs",
    ".symbols",
)

# dpkg's "status" word: these leave the package's files on disk.
_INSTALLED = frozenset({"installed", "triggers-awaited", "triggers-pending"})
_PARTIAL = frozenset({"half-installed", "unpacked", "half-configured"})

# Only these fields are kept; Description and friends are skipped without copying.
_KEEP = frozenset(
    {
        "package",
        "status",
        "version",
        "architecture",
        "source",
        "installed-size",
        "depends",
        "pre-depends",
        "provides",
        "conffiles",
        "abi",
        "type",
        "feature",
    }
)


@dataclass(frozen=True, slots=True)
class DpkgRecord:
    """One stanza of the dpkg status database: the package fields the cataloger uses."""

    name: str
    version: str
    arch: str | None
    status: str | None  # the full "want flag status" value, None when the stanza has none
    source: str | None
    source_version: str | None
    installed_size: int | None  # bytes
    depends: tuple[str, ...]
    pre_depends: tuple[str, ...]
    provides: tuple[str, ...]
    conffiles: tuple[str, ...]

    @property
    def state(self) -> str:
        """The third word of Status ("installed", "config-files", ...)."""
        if not self.status:
            return "installed"  # distroless status.d stanzas carry no Status field
        words = self.status.split()
        return words[-1] if len(words) == 3 else "unknown"


# What ends a relation's package name: a version, architecture or profile, or ":any".
_RELATION_NAME_END = re.compile(r"[ (\[<\t\n:]")


def parse_relations(value: str) -> tuple[str, ...]:
    """Package names of a relation field: "a (>= 1) | b:any, c [i386]" -> (a, b, c)."""
    names: dict[str, None] = {}
    for group in value.split(","):
        for alt in group.split("|"):
            name = _RELATION_NAME_END.split(alt.strip(), maxsplit=1)[0]
            if name:
                names[name] = None
    return tuple(names)


_VERSION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+~-:")


def valid_version(version: str) -> bool:
    """dpkg's own check: [epoch:]upstream[-revision] in its allowed characters."""
    epoch, sep, rest = version.partition(":")
    if sep and not (epoch.isascii() and epoch.isdigit()):
        return False
    upstream = rest if sep else version
    return bool(upstream) and set(upstream) <= _VERSION_CHARS


def parse_installed_size(value: str) -> int | None:
    """Installed-Size is KiB; a unit suffix ("4KB", seen in the wild) is honoured."""
    value = value.strip()
    if not value.isascii():
        return None
    if value.isdigit():
        return int(value) * 1024
    digits = value.rstrip("kKMGiBb ")
    unit = value[len(digits) :].strip().lower()
    factors = {"kb": 1000, "kib": 1024, "k": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3}
    if digits.isdigit() and unit in factors:
        return int(digits) * factors[unit]
    return None


def _stanzas(text: str) -> tuple[list[dict[str, str]], int]:
    """Blank-line separated stanzas of kept fields; second value: lines that were not fields."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key: str | None = None
    bad = 0
    for line in text.split("\n"):
        if not line.strip():
            if current:
                stanzas.append(current)
                current = {}
            key = None
            continue
        if line[0] in " \t":
            if key is not None:
                current[key] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            bad += 1
            key = None
            continue
        lname = name.strip().lower()
        if lname in _KEEP:
            key = lname
            current[key] = value.strip()
        else:
            key = None
    if current:
        stanzas.append(current)
    return stanzas, bad


def looks_like_vcpkg(stanzas: list[dict[str, str]]) -> bool:
    marked = sum(
        1 for s in stanzas if "abi" in s or "feature" in s or s.get("type", "").lower() == "port"
    )
    return marked > 0 and marked * 2 >= len(stanzas)


def parse_status(data: bytes, where: str = "status") -> tuple[list[DpkgRecord], list[str]]:
    """Every stanza with a Package and a Version, whatever its Status; never raises."""
    warnings: list[str] = []
    stanzas, bad = _stanzas(decode(data))
    if bad:
        warnings.append(f"{where}: {bad} line(s) are not 'Field: value' and were ignored")
    if looks_like_vcpkg(stanzas):
        warnings.append(f"{where}: looks like a vcpkg status file (Abi/Type: Port), not dpkg")
        return [], warnings
    records: list[DpkgRecord] = []
    skipped: list[str] = []
    for st in stanzas:
        name = st.get("package", "")
        version = st.get("version", "")
        if not name or not version:
            skipped.append(name or "<no Package>")
            continue
        if not valid_version(version):
            warnings.append(f"{where}: {name}: {version!r} is not a Debian version, skipped")
            continue
        source = source_version = None
        if st.get("source"):
            src, _, rest = st["source"].partition(" ")
            source = src
            rest = rest.strip()
            if rest.startswith("(") and rest.endswith(")"):
                source_version = rest[1:-1].strip()
        size = st.get("installed-size")
        installed = parse_installed_size(size) if size else None
        if size and installed is None:
            warnings.append(f"{where}: {name}: unreadable Installed-Size {size!r}")
        conffiles = tuple(
            line.split()[0]
            for line in st.get("conffiles", "").split("\n")
            if line.strip().startswith("/")
        )
        records.append(
            DpkgRecord(
                name=name,
                version=version,
                arch=st.get("architecture") or None,
                status=st.get("status") or None,
                source=source,
                source_version=source_version,
                installed_size=installed,
                depends=parse_relations(st.get("depends", "")),
                pre_depends=parse_relations(st.get("pre-depends", "")),
                provides=parse_relations(st.get("provides", "")),
                conffiles=conffiles,
            )
        )
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.append(f"{where}: {len(skipped)} stanza(s) without Package or Version: {shown}")
    return records, warnings


def parse_file_list(data: bytes) -> list[str]:
    """A .list or .conffiles file: one absolute path a line ("/." is dpkg's root marker)."""
    return [line for line in decode(data).split("\n") if line.startswith("/") and line != "/."]


def parse_md5sums(data: bytes) -> list[str]:
    """An .md5sums file: "<md5>  relative/path" lines, returned as absolute paths."""
    out: list[str] = []
    for line in decode(data).split("\n"):
        _, sep, path = line.partition("  ")
        if sep and path:
            out.append("/" + path.lstrip("/"))
    return out


class DpkgCataloger:
    name = "dpkg"
    content_patterns = (
        STATUS_PATH,
        STATUS_D + "/*",
        INFO_DIR + "/*.list",
        INFO_DIR + "/*.md5sums",
        INFO_DIR + "/*.conffiles",
        "/etc/os-release",
        "/usr/lib/os-release",
    )
    wants_executables = False

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        release = os_release(files)
        namespace = (release.get("ID") or "debian").lower()
        distro = distro_qualifier(release)
        resolver = PathResolver(files)

        sources: list[tuple[str, bytes]] = []
        data = files.read(STATUS_PATH)
        if data is not None:
            sources.append((STATUS_PATH, data))
        if files.stat(STATUS_D) is not None:
            listing = files.paths(listed=lambda path, _facts: path.startswith(STATUS_D + "/"))
            for path in sorted(p for p in listing if p.startswith(STATUS_D + "/")):
                if "/" in path[len(STATUS_D) + 1 :] or path.endswith(_CONTROL_SUFFIXES):
                    continue
                item = files.stat(path)
                body = files.read(path)
                if item is None or item.type != "file" or body is None:
                    continue
                sources.append((path, body))

        for db_path, body in sources:
            records, warnings = parse_status(body, db_path)
            result.warnings.extend(f"dpkg: {w}" for w in warnings)
            for rec in records:
                state = rec.state
                if state == "unknown":
                    result.warnings.append(
                        f"dpkg: {db_path}: {rec.name}: unreadable Status {rec.status!r}, skipped"
                    )
                    continue
                if state not in _INSTALLED and state not in _PARTIAL:
                    continue  # not-installed / config-files: only conffiles may remain
                if state in _PARTIAL:
                    result.warnings.append(
                        f"dpkg: {db_path}: {rec.name} is {state} ({rec.status}); "
                        "its files may be incomplete"
                    )
                # One package is a unit of its own: in a diff, the second image takes the
                # first's where nothing it looked at differs (catalog.twin).
                result.packages.append(files.reusable(
                    ("dpkg", db_path, rec, namespace, distro),
                    lambda rec=rec, db_path=db_path: self._package(
                        files, resolver, rec, db_path, namespace, distro)))
        return result

    def _package(self, files: FileView, resolver: PathResolver, rec: DpkgRecord, db_path: str,
                 namespace: str, distro: str | None) -> Package:
        claimed, evidence = self._files_of(files, rec, db_path)
        return Package(
            ecosystem="deb",
            name=rec.name,
            version=rec.version,
            arch=rec.arch,
            purl=make_purl("deb", rec.name, rec.version, namespace,
                           {"arch": rec.arch, "distro": distro}),
            files=resolver.claims(claimed),
            dependencies=_merge(rec.pre_depends, rec.depends),
            provides=rec.provides,
            evidence=(db_path, *evidence),
            installed_size=rec.installed_size,
            source=rec.source,
        )

    @staticmethod
    def _files_of(files: FileView, rec: DpkgRecord, db_path: str) -> tuple[list[str], list[str]]:
        """Claimed paths and the files they came from: .list first, md5sums when no list."""
        if db_path.startswith(STATUS_D + "/"):
            bases = [db_path, posixpath.join(STATUS_D, rec.name)]
            candidates = [b + ".md5sums" for b in dict.fromkeys(bases)]
            for cand in candidates:
                data = files.read(cand)
                if data is not None:
                    return [*parse_md5sums(data), *rec.conffiles], [cand]
            return list(rec.conffiles), []

        stems = [f"{rec.name}:{rec.arch}", rec.name] if rec.arch else [rec.name]
        claimed: list[str] = []
        evidence: list[str] = []
        for kind, parse in ((".list", parse_file_list), (".md5sums", parse_md5sums)):
            for stem in stems:
                path = f"{INFO_DIR}/{stem}{kind}"
                data = files.read(path)
                if data is not None:
                    claimed.extend(parse(data))
                    evidence.append(path)
                    break
            if evidence:
                break  # a .list already names every file the md5sums would
        for stem in stems:
            path = f"{INFO_DIR}/{stem}.conffiles"
            data = files.read(path)
            if data is not None:
                claimed.extend(parse_file_list(data))
                evidence.append(path)
                break
        claimed.extend(rec.conffiles)
        return claimed, evidence


def _merge(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in groups for name in group))
