"""Go modules compiled into binaries, from the build info the Go linker embeds (.go.buildinfo).

Two layouts exist. Go >= 1.18 sets flag bit 2 and writes the version and module strings inline
after the 32-byte header, each prefixed by its uvarint length. Older toolchains write two
pointers to Go string headers (data pointer, length) that must be followed through the
program's address space. The module text is what ``go version -m`` prints: ``path``, ``mod``,
``dep`` and ``=>`` (replacement of the line before) lines, tab-separated.

One Package for the main module (it owns the binary), one per dependency, and one "stdlib"
carrying the Go version (as syft reports it), all with the binary as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imgscope.catalog._common import make_purl
from imgscope.catalog._elf import PF_W, PT_LOAD, ElfImage, programs
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

MAGIC = b"\xff Go buildinf:"
_FLAG_INLINE = 0x2
_FLAG_BIG_ENDIAN = 0x1
# The smallest Go binary is well over a megabyte; smaller executables are not worth opening.
MIN_SIZE = 256 * 1024
_SEARCH_LIMIT = 32 << 20


@dataclass(frozen=True, slots=True)
class GoModule:
    """A module line of Go build info: path, version, go.sum hash, and the path it replaced."""

    path: str
    version: str
    sum: str | None = None
    replaced_from: str | None = None  # the original path when a "=>" line replaced it


@dataclass(frozen=True, slots=True)
class GoBuildInfo:
    """The build info a Go binary embeds: Go version, main package path, modules, settings."""

    go_version: str
    path: str
    main: GoModule | None
    deps: tuple[GoModule, ...]
    settings: tuple[tuple[str, str], ...] = field(default=())


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad uvarint")


def parse_modinfo(go_version: str, mod: str) -> GoBuildInfo:
    """The text of ``go version -m`` (sentinels already removed)."""
    path = ""
    main: GoModule | None = None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    for line in mod.split("\n"):
        parts = line.split("\t")
        kind = parts[0]
        if kind == "path" and len(parts) >= 2:
            path = parts[1]
        elif kind in ("mod", "dep") and len(parts) >= 2:
            module = GoModule(
                parts[1],
                parts[2] if len(parts) > 2 and parts[2] else "(devel)",
                parts[3] if len(parts) > 3 and parts[3] else None,
            )
            if kind == "mod":
                main = module
            else:
                deps.append(module)
        elif kind == "=>" and len(parts) >= 2:
            # Replaces the module on the line before; a local path has no version.
            new = GoModule(
                parts[1],
                parts[2] if len(parts) > 2 and parts[2] else "(devel)",
                parts[3] if len(parts) > 3 and parts[3] else None,
            )
            if deps:
                old = deps[-1]
                deps[-1] = GoModule(new.path, new.version, new.sum, old.path)
            elif main is not None:
                main = GoModule(new.path, new.version, new.sum, main.path)
        elif kind == "build" and len(parts) >= 2:
            key, _, value = parts[1].partition("=")
            settings.append((key, value))
    return GoBuildInfo(go_version, path, main, tuple(deps), tuple(settings))


def _clean_modinfo(mod: bytes) -> str:
    # The linker wraps the text in 16-byte sentinels; without them it is not module info.
    if len(mod) >= 33 and mod[-17] == 0x0A:
        return mod[16:-16].decode("utf-8", errors="replace")
    return ""


def read_buildinfo(elf: ElfImage) -> GoBuildInfo | None:
    """The build info of a Go ELF binary, or None (not Go, or unreadable)."""
    header = _find_header(elf)
    if header is None:
        return None
    offset, head = header
    ptr_size, flags = head[14], head[15]
    if flags & _FLAG_INLINE:
        blob = elf.read(offset, min(elf.size - offset, 1 << 16)) or b""
        try:
            n, pos = _uvarint(blob, 32)
            version = blob[pos : pos + n].decode("utf-8", errors="replace")
            pos += n
            n, pos = _uvarint(blob, pos)
        except ValueError:
            return None
        if pos + n > len(blob):  # module info of a big program: read exactly what it needs
            blob = elf.read(offset, pos + n) or b""
        mod = blob[pos : pos + n]
        return parse_modinfo(version, _clean_modinfo(mod))
    if ptr_size not in (4, 8):
        return None
    order = "big" if flags & _FLAG_BIG_ENDIAN else "little"

    def read_string(addr: int) -> bytes | None:
        hdr = elf.read_addr(addr, 2 * ptr_size)
        if hdr is None:
            return None
        data_addr = int.from_bytes(hdr[:ptr_size], order)
        length = int.from_bytes(hdr[ptr_size:], order)
        if length > (1 << 20):
            return None
        return elf.read_addr(data_addr, length) if length else b""

    version_ptr = int.from_bytes(head[16 : 16 + ptr_size], order)
    mod_ptr = int.from_bytes(head[16 + ptr_size : 16 + 2 * ptr_size], order)
    version = read_string(version_ptr)
    mod = read_string(mod_ptr)
    if version is None:
        return None
    return parse_modinfo(version.decode("utf-8", errors="replace"), _clean_modinfo(mod or b""))


def _find_header(elf: ElfImage) -> tuple[int, bytes] | None:
    sec = elf.section(".go.buildinfo")
    if sec is not None:
        head = elf.read(sec.offset, 32)
        if head is not None and head.startswith(MAGIC):
            return sec.offset, head
    if elf.has_sections:
        return None  # the Go linker always names the section; without it this is not Go
    # No section table (stripped): Go looks in the first writable segment, 16-byte aligned.
    for seg in elf.segments:
        if seg.type == PT_LOAD and seg.flags & PF_W:
            data = elf.read(seg.offset, min(seg.filesz, _SEARCH_LIMIT)) or b""
            pos = data.find(MAGIC)
            while pos != -1:
                if pos % 16 == 0 and pos + 32 <= len(data):
                    return seg.offset + pos, data[pos : pos + 32]
                pos = data.find(MAGIC, pos + 1)
            break
    return None


def _main_version(info: GoBuildInfo) -> str:
    """The main module's version; "(devel)" builds may carry one in -ldflags -X."""
    version = info.main.version if info.main else "(devel)"
    if version != "(devel)":
        return version
    for key, value in info.settings:
        if key != "-ldflags":
            continue
        tokens = value.strip("\"'").split()
        for i, tok in enumerate(tokens):
            arg = tokens[i + 1] if tok == "-X" and i + 1 < len(tokens) else None
            if tok.startswith("-X="):
                arg = tok[3:]
            if not arg:
                continue
            var, _, val = arg.partition("=")
            if var.rpartition(".")[2].lower() == "version" and val.startswith("v"):
                return val
    return version


def packages_for(binary: str, info: GoBuildInfo) -> list[Package]:
    evidence = (binary,)
    pkgs: list[Package] = []
    std_version = info.go_version.removeprefix("go").split()[0] if info.go_version else ""
    dep_names = [d.path for d in info.deps]
    if std_version:
        dep_names.append("stdlib")
    main_path = info.main.path if info.main else info.path
    if main_path:
        version = _main_version(info)
        pkgs.append(
            Package(
                ecosystem="golang",
                name=main_path,
                version=version,
                purl=_purl(main_path, version),
                files=(binary,),
                dependencies=tuple(dep_names),
                evidence=evidence,
            )
        )
    for dep in info.deps:
        pkgs.append(
            Package(
                ecosystem="golang",
                name=dep.path,
                version=dep.version,
                purl=_purl(dep.path, dep.version),
                evidence=evidence,
                provides=(dep.replaced_from,) if dep.replaced_from else (),
            )
        )
    if std_version:
        pkgs.append(
            Package(
                ecosystem="golang",
                name="stdlib",
                version=info.go_version.split()[0],
                purl=make_purl("golang", "stdlib", std_version),
                evidence=evidence,
            )
        )
    return pkgs


def _buildinfo(files: FileView, path: str) -> GoBuildInfo | None:
    """The Go build info of the ELF at `path`, or None."""
    stream = files.open(path)
    if stream is None:
        return None
    with stream:
        elf = ElfImage.parse(stream)
        return read_buildinfo(elf) if elf is not None else None


def _purl(module: str, version: str) -> str:
    namespace, _, name = module.rpartition("/")
    return make_purl("golang", name, None if version == "(devel)" else version, namespace or None)


class GoBinaryCataloger:
    name = "golang"
    content_patterns: tuple[str, ...] = ()
    wants_executables = True

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        for path in programs(files, MIN_SIZE):
            info = files.remember(path, self.name, lambda path=path: _buildinfo(files, path))
            if info is None:
                continue
            if not info.main and not info.path:
                result.warnings.append(f"golang: {path}: Go build info without module info")
            result.packages.extend(packages_for(path, info))
        return result
