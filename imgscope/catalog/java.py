"""Java archives (jar/war/ear/hpi/jpi) and JDK/JRE installations.

An archive yields one package per ``pom.properties`` inside it (shaded jars carry several) and,
when none of them is the archive itself, one from ``META-INF/MANIFEST.MF`` and the file name.
Only the archive's own package owns the archive file; the others name it as evidence
("app.war!/WEB-INF/lib/x.jar" for nested archives). Nested archives are opened in memory,
bounded in depth and size, never written to disk.

A JDK or JRE is found by its ``release`` file (JAVA_VERSION, IMPLEMENTOR) and owns every file
under its directory; it is a JDK when ``bin/javac`` is there.
"""

from __future__ import annotations

import io
import posixpath
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from imgscope.catalog._common import decode, make_purl, parse_os_release
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

if TYPE_CHECKING:
    import zipfile

ARCHIVE_EXTS = (".jar", ".war", ".ear", ".hpi", ".jpi", ".par", ".sar", ".kar")
MAX_DEPTH = 3  # archive in archive in archive
MAX_NESTED_BYTES = 64 << 20  # one nested archive read into memory
MAX_TEXT_BYTES = 1 << 20  # a manifest or pom.properties larger than this is not one
# What zipfile raises on hostile archives: bad structure (zipfile.BadZipFile, LargeZipFile:
# added where zipfile is imported, on the first archive: importing it costs ~5 ms, on every
# image without one too), bad deflate data, unsupported or encrypted members (RuntimeError),
# truncated streams.
_ZIP_ERRORS_BUT_ZIPFILES = (
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
)


@dataclass(frozen=True, slots=True)
class MavenId:
    """A Java archive's Maven coordinates, from pom.properties or MANIFEST.MF and the file name."""

    group: str
    artifact: str
    version: str

    @property
    def name(self) -> str:
        return f"{self.group}:{self.artifact}" if self.group else self.artifact


def parse_manifest(data: bytes) -> dict[str, str]:
    """Main section of a MANIFEST.MF: 72-column lines continue with one leading space."""
    out: dict[str, str] = {}
    key: str | None = None
    for line in decode(data).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if out:
                break  # the main section ends at the first blank line after it started
            continue
        if line[0] == " ":
            if key is not None:
                out[key] += line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            key = None
            continue
        key = name.strip()
        out[key] = value.strip()
    return out


def parse_pom_properties(data: bytes) -> dict[str, str]:
    """Java properties: "key=value" or "key:value" (whichever separator comes first)."""
    out: dict[str, str] = {}
    for line in decode(data).splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        eq, colon = line.find("="), line.find(":")
        cut = min(i for i in (eq, colon) if i != -1) if eq != -1 or colon != -1 else -1
        if cut == -1:
            continue
        out[line[:cut].strip()] = line[cut + 1 :].strip()
    return out


def split_filename(filename: str) -> tuple[str, str]:
    """ "commons-lang3-3.12.0.jar" -> ("commons-lang3", "3.12.0"); no version -> (stem, "")."""
    stem = posixpath.basename(filename)
    for ext in ARCHIVE_EXTS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    for i, ch in enumerate(stem):
        if ch == "-" and i + 1 < len(stem) and stem[i + 1].isdigit():
            return stem[:i], stem[i + 1 :]
    return stem, ""


def _pom_id(props: dict[str, str]) -> MavenId | None:
    artifact, version = props.get("artifactId", ""), props.get("version", "")
    if not artifact or not version:
        return None
    return MavenId(props.get("groupId", ""), artifact, version)


def manifest_id(manifest: dict[str, str], filename: str) -> MavenId | None:
    """An identity from MANIFEST.MF attributes and the archive's file name."""
    file_artifact, file_version = split_filename(filename)
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
    plugin = manifest.get("Short-Name", "")  # Jenkins plugins (.hpi/.jpi)
    if plugin:
        artifact = plugin
    elif file_version:
        artifact = file_artifact
    else:
        artifact = symbolic or manifest.get("Implementation-Title", "") or file_artifact
    version = (
        manifest.get("Implementation-Version")
        or (manifest.get("Plugin-Version") if plugin else None)
        or manifest.get("Bundle-Version")
        or manifest.get("Specification-Version")
        or file_version
    )
    if not artifact or not version:
        return None
    group = manifest.get("Implementation-Vendor-Id", "") or manifest.get("Group-Id", "")
    if not group and symbolic.endswith("." + artifact):
        group = symbolic[: -len(artifact) - 1]
    if group and artifact.startswith(group + "."):  # "com.acme.util-1.0.jar"
        artifact = artifact[len(group) + 1 :]
    return MavenId(group, artifact, version)


_ARCHIVE_EXT_SET = frozenset(ARCHIVE_EXTS)  # asked of every path in the image


def _is_archive(name: str) -> bool:
    # every extension is four characters: slice first, lowercase only those
    return name[-4:].lower() in _ARCHIVE_EXT_SET


@dataclass(frozen=True, slots=True)
class ArchiveFinding:
    """A Maven identity found in a Java archive or one nested in it, and where it was found."""

    id: MavenId
    location: str  # "/app/x.war" or "/app/x.war!/WEB-INF/lib/y.jar"
    owns_file: bool  # True for the archive's own identity at the top level


def scan_archive(
    stream: BinaryIO, location: str, depth: int = 0
) -> tuple[list[ArchiveFinding], list[str]]:
    """Identities found in one archive and in archives nested in it; never raises."""
    import zipfile

    zip_errors = (zipfile.BadZipFile, zipfile.LargeZipFile, *_ZIP_ERRORS_BUT_ZIPFILES)
    try:
        zf = zipfile.ZipFile(stream)
    except zip_errors as exc:
        return [], [f"{location}: not a readable zip archive ({exc})"]
    findings: list[ArchiveFinding] = []
    warnings: list[str] = []
    with zf:
        poms: list[MavenId] = []
        manifest: dict[str, str] = {}
        nested: list[zipfile.ZipInfo] = []
        for info in zf.infolist():
            name = info.filename
            if name.endswith("/"):
                continue
            base = name.rpartition("/")[2]
            try:
                if base == "pom.properties" and info.file_size <= MAX_TEXT_BYTES:
                    pid = _pom_id(parse_pom_properties(zf.read(info)))
                    if pid is not None and pid not in poms:
                        poms.append(pid)
                elif name.upper() == "META-INF/MANIFEST.MF" and info.file_size <= MAX_TEXT_BYTES:
                    manifest = parse_manifest(zf.read(info))
                elif _is_archive(name):
                    nested.append(info)
            except zip_errors as exc:
                warnings.append(f"{location}!/{name}: unreadable entry ({exc})")

        file_artifact, _ = split_filename(location.rpartition("!/")[2])
        own = _own_pom(poms, file_artifact)
        if own is None:
            mid = manifest_id(manifest, location.rpartition("!/")[2])
            same = [
                p
                for p in poms
                if mid is not None and (p.name, p.version) == (mid.name, mid.version)
            ]
            if same:
                own = same[0]  # the manifest names one of the poms
            elif mid is not None:
                findings.append(ArchiveFinding(mid, location, True))
            elif poms:
                own = poms[0]  # nothing better names the file: its first artifact owns it
        findings[:0] = [ArchiveFinding(pid, location, pid is own) for pid in poms]

        for info in nested:
            inner = f"{location}!/{info.filename}"
            if depth + 1 > MAX_DEPTH:
                warnings.append(f"{inner}: nested deeper than {MAX_DEPTH}, not opened")
                continue
            if info.file_size > MAX_NESTED_BYTES:
                warnings.append(f"{inner}: {info.file_size} bytes, too large to open in memory")
                continue
            try:
                data = zf.read(info)
            except zip_errors as exc:
                warnings.append(f"{inner}: unreadable entry ({exc})")
                continue
            sub, sub_warnings = scan_archive(io.BytesIO(data), inner, depth + 1)
            warnings.extend(sub_warnings)
            # Bytes of a nested archive belong to the outer file's owner.
            findings.extend(ArchiveFinding(f.id, f.location, False) for f in sub)
    return findings, warnings


def _own_pom(poms: list[MavenId], file_artifact: str) -> MavenId | None:
    """The pom.properties describing the archive itself, judged by the file name."""
    loose: MavenId | None = None
    for pid in poms:
        a, g = pid.artifact, pid.group
        if file_artifact in (a, f"{g}.{a}", f"{g}-{a}"):
            return pid
        if loose is None and (
            file_artifact.endswith(("." + a, "-" + a)) or file_artifact.startswith(a)
        ):
            loose = pid
    if loose is not None:
        return loose
    return poms[0] if len(poms) == 1 else None


def parse_release(data: bytes) -> dict[str, str]:
    """A JDK ``release`` file: KEY="value" lines, like os-release."""
    return parse_os_release(data)


def _slug(text: str) -> str:
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    return "-".join(part for part in out.split("-") if part)


class JavaCataloger:
    name = "java"
    content_patterns = tuple(f"*{ext}" for ext in ARCHIVE_EXTS) + ("*/release",)
    wants_executables = False

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        archives: list[str] = []
        releases: list[str] = []
        for path in files.paths(listed=_listed):
            if path.endswith("/release"):
                releases.append(path)
            elif _is_archive(path):
                archives.append(path)

        jdk_dirs = self._jdks(files, releases, result)
        prefixes = tuple(d + "/" for d in jdk_dirs)
        for path in archives:
            if prefixes and path.startswith(prefixes):
                continue  # the JDK's own jars are part of the JDK package
            facts = files.stat(path)
            if facts is None or facts.type != "file":
                continue
            stream = files.open(path)
            if stream is None:
                data = files.read(path)
                if data is None:
                    continue
                stream = io.BytesIO(data)
            with stream:
                findings, warnings = scan_archive(stream, path)
            result.warnings.extend(f"java: {w}" for w in warnings)
            seen: set[tuple[str, str]] = set()
            for f in findings:
                key = (f.id.name, f.id.version)
                if key in seen:
                    continue  # a plugin's own jar inside it repeats the plugin's identity
                seen.add(key)
                result.packages.append(
                    Package(
                        ecosystem="maven",
                        name=f.id.name,
                        version=f.id.version,
                        purl=make_purl("maven", f.id.artifact, f.id.version, f.id.group or None),
                        files=(path,) if f.owns_file else (),
                        evidence=(f.location,),
                    )
                )
        return result

    @staticmethod
    def _jdks(files: FileView, releases: list[str], result: CatalogResult) -> list[str]:
        found: list[str] = []
        for path in releases:
            data = files.read(path)
            if data is None:
                continue
            release = parse_release(data)
            version = release.get("JAVA_VERSION")
            if not version:
                continue  # some other "release" file
            home = path.rpartition("/")[0]
            if files.stat(home + "/bin/javac") is not None:
                kind = "jdk"
            else:  # a JDK trimmed of its tools still says what it was built as
                kind = "jdk" if release.get("IMAGE_TYPE", "").upper() == "JDK" else "jre"
            implementor = release.get("IMPLEMENTOR", "")
            head = home + "/"
            inside = files.paths(listed=lambda path, _facts, head=head: path.startswith(head))
            owned = tuple(p for p in inside if p.startswith(head) and _is_file(files, p))
            found.append(home)
            result.packages.append(
                Package(
                    ecosystem="jvm",
                    name=kind,
                    version=version,
                    purl=make_purl("generic", kind, version, _slug(implementor) or None),
                    files=owned,
                    evidence=(path,),
                )
            )
        return found


def _listed(path: str, _facts: object) -> bool:
    return path.endswith("/release") or _is_archive(path)


def _is_file(files: FileView, path: str) -> bool:
    facts = files.stat(path)
    return facts is not None and facts.type != "dir"
