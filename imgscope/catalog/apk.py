"""Alpine packages: /lib/apk/db/installed (apk-tools' one-letter field database).

Fields used: P name, V version, A arch, o origin (source package), I installed size (bytes),
D dependencies, p provides, F a directory and R a file inside the last F.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgscope.catalog._common import PathResolver, decode, distro_qualifier, make_purl, os_release
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

DB_PATHS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")

# A dependency "name>=1.2" ends its name at the first operator character.
_OPERATORS = "<>=~"


@dataclass(frozen=True, slots=True)
class ApkRecord:
    """One package of apk's installed database, with the files it lists."""

    name: str
    version: str
    arch: str | None
    origin: str | None
    installed_size: int | None
    depends: tuple[str, ...]
    provides: tuple[str, ...]
    files: tuple[str, ...]  # absolute paths of R: entries


def _names(value: str) -> tuple[str, ...]:
    """Names of a D: or p: list; "!name" (a conflict) is not a dependency."""
    out: dict[str, None] = {}
    for token in value.split():
        if token.startswith("!"):
            continue
        end = len(token)
        for op in _OPERATORS:
            i = token.find(op)
            if i != -1 and i < end:
                end = i
        if end:
            out[token[:end]] = None
    return tuple(out)


def parse_installed(data: bytes, where: str = "installed") -> tuple[list[ApkRecord], list[str]]:
    """Every stanza with P and V; never raises."""
    records: list[ApkRecord] = []
    warnings: list[str] = []
    bad_lines = 0
    skipped: list[str] = []

    fields: dict[str, str] = {}
    files: list[str] = []
    directory = ""

    def flush() -> None:
        name, version = fields.get("P", ""), fields.get("V", "")
        if not fields and not files:
            return
        if not name or not version:
            skipped.append(name or "<no P:>")
            return
        size = fields.get("I", "")
        records.append(
            ApkRecord(
                name=name,
                version=version,
                arch=fields.get("A") or None,
                origin=fields.get("o") or None,
                installed_size=int(size) if size.isascii() and size.isdigit() else None,
                depends=_names(fields.get("D", "")),
                provides=_names(fields.get("p", "")),
                files=tuple(files),
            )
        )

    for line in decode(data).split("\n"):
        if not line.strip():
            flush()
            fields, files, directory = {}, [], ""
            continue
        if len(line) < 2 or line[1] != ":":
            bad_lines += 1
            continue
        key, value = line[0], line[2:]
        if key == "F":
            directory = value.strip("/")
        elif key == "R":
            files.append(f"/{directory}/{value}" if directory else f"/{value}")
        elif key in "PVAoIDp":
            fields[key] = value.strip()
    flush()

    if bad_lines:
        warnings.append(f"{where}: {bad_lines} line(s) are not 'X:value' and were ignored")
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.append(f"{where}: {len(skipped)} stanza(s) without P: or V:: {shown}")
    return records, warnings


class ApkCataloger:
    name = "apk"
    content_patterns = (*DB_PATHS, "/etc/os-release", "/usr/lib/os-release")
    wants_executables = False

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        release = os_release(files)
        namespace = (release.get("ID") or "alpine").lower()
        distro = distro_qualifier(release)
        resolver = PathResolver(files)
        seen: set[bytes] = set()
        for db_path in DB_PATHS:
            data = files.read(db_path)
            if data is None or data in seen:  # /lib/apk may be a symlink to /usr/lib/apk
                continue
            seen.add(data)
            records, warnings = parse_installed(data, db_path)
            result.warnings.extend(f"apk: {w}" for w in warnings)
            for rec in records:
                result.packages.append(
                    Package(
                        ecosystem="apk",
                        name=rec.name,
                        version=rec.version,
                        arch=rec.arch,
                        purl=make_purl(
                            "apk",
                            rec.name,
                            rec.version,
                            namespace,
                            {"arch": rec.arch, "distro": distro},
                        ),
                        files=resolver.claims(rec.files),
                        dependencies=rec.depends,
                        provides=rec.provides,
                        evidence=(db_path,),
                        installed_size=rec.installed_size,
                        source=rec.origin,
                    )
                )
        return result
