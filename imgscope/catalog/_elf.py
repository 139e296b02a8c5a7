"""Just enough ELF to find a named section or map a virtual address, for build-info readers.

pyelftools takes about 3 ms to open a binary and look up one section; an image has a thousand
executables and two catalogers look at each, so the headers are read here with ``struct`` in a
few small reads, and section names are only looked up for the sections asked for. Anything
malformed yields None, never an exception.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from imgscope.catalog.base import FileView, PathFacts

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
PF_W = 2
SHT_NOBITS = 8
_MAX_SECTIONS = 0x10000

# Names that are never a compiled program: a last filter on executable files (scripts, and
# files extracted with a stray x bit) before their headers are read.
# fmt: off
_NOT_PROGRAM_SUFFIXES = (
    ".py", ".pyc", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".map", ".json", ".txt", ".md", ".rst",
    ".html", ".htm", ".css", ".xml", ".yml", ".yaml", ".toml", ".ini", ".conf", ".cfg",
    ".h", ".hpp", ".c", ".cc", ".go", ".rs", ".java", ".class", ".jar", ".rb", ".pl", ".pm",
    ".gz", ".xz", ".bz2", ".zst", ".zip", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico",
    ".pem", ".crt", ".mo", ".po", ".a", ".o", ".la", ".pc", ".desktop", ".gemspec",
)
# fmt: on
_NOT_PROGRAM_DIRS = ("/usr/include/", "/usr/share/doc/", "/usr/share/man/", "/usr/share/locale/")


def may_be_program(path: str) -> bool:
    """False for paths that certainly hold no executable program (by name alone)."""
    return not path.endswith(_NOT_PROGRAM_SUFFIXES) and not path.startswith(_NOT_PROGRAM_DIRS)


def programs(files: FileView, min_size: int) -> Iterator[str]:
    """Executable regular files of at least `min_size` bytes that may be compiled programs."""

    def listed(path: str, facts: PathFacts) -> bool:
        return (facts.type == "file" and bool(facts.mode & 0o111) and facts.size >= min_size
                and may_be_program(path))

    for path, facts in files.entries(listed=listed):  # the same tests inline: faster
        if (
            facts.type == "file"
            and facts.mode & 0o111
            and facts.size >= min_size
            and may_be_program(path)
        ):
            yield path


def _ph_format(little: bool, is64: bool) -> str:
    """The struct format of one program header."""
    return ("<" if little else ">") + ("IIQQQQQQ" if is64 else "8I")


# (sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size): the first six fields of a
# section header, in the same order for ELF32 and ELF64.
_Row = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Section:
    """One ELF section header: name, type, flags, address, and where its bytes are in the file."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Segment:
    """One ELF program header: type, flags, file offset, virtual address and size in the file."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class ElfImage:
    """Section headers and program headers of one ELF file read from a seekable stream."""

    def __init__(
        self,
        stream: BinaryIO,
        size: int,
        little: bool,
        is64: bool,
        rows: list[_Row],
        names: bytes,
        program_headers: bytes,
    ) -> None:
        self.stream = stream
        self.size = size
        self.little = little
        self.is64 = is64
        self._rows = rows
        self._names = names
        self._program_headers = program_headers

    @property
    def has_sections(self) -> bool:
        return bool(self._rows)

    @functools.cached_property
    def segments(self) -> list[Segment]:
        """The program headers, decoded when first asked for: most readers only want a
        section, and a Segment per header of every executable adds up."""
        segments: list[Segment] = []
        for row in struct.iter_unpack(_ph_format(self.little, self.is64), self._program_headers):
            if self.is64:
                ptype, pflags, poff, vaddr, _paddr, filesz = row[:6]
            else:
                ptype, poff, vaddr, _paddr, filesz, _memsz, pflags = row[:7]
            segments.append(Segment(ptype, pflags, poff, vaddr, filesz))
        return segments

    @classmethod
    def parse(cls, stream: BinaryIO) -> ElfImage | None:
        try:
            return cls._parse(stream)
        except (OSError, struct.error, ValueError):
            return None

    @classmethod
    def _parse(cls, stream: BinaryIO) -> ElfImage | None:
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(0)
        ident = stream.read(64)
        if len(ident) < 52 or not ident.startswith(ELF_MAGIC) or ident[4] not in (1, 2):
            return None
        if ident[5] not in (1, 2):
            return None
        is64 = ident[4] == 2
        little = ident[5] == 1
        e = "<" if little else ">"
        if is64:
            phoff, shoff = struct.unpack_from(e + "QQ", ident, 32)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "5H", ident, 54)
        else:
            phoff, shoff = struct.unpack_from(e + "II", ident, 28)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "5H", ident, 42)

        program_headers = b""
        ph_size = struct.calcsize(_ph_format(little, is64))
        ph_ok = phentsize == ph_size and phoff + phnum * phentsize <= size
        if phoff and phnum and ph_ok:
            stream.seek(phoff)
            program_headers = stream.read(phnum * phentsize)
            if len(program_headers) % ph_size:
                return None  # a short read: the headers are not all there

        rows: list[_Row] = []
        names = b""
        sh_fmt = e + ("IIQQQQIIQQ" if is64 else "10I")
        if shoff and shentsize == struct.calcsize(sh_fmt) and shoff + shentsize <= size:
            stream.seek(shoff)
            first = struct.unpack(sh_fmt, stream.read(shentsize))
            if shnum == 0:  # more than 0xff00 sections: the count lives in section 0
                shnum = first[5]
            if shstrndx == 0xFFFF:
                shstrndx = first[6]
            if 0 < shnum < _MAX_SECTIONS and shoff + shnum * shentsize <= size:
                stream.seek(shoff)
                rows = list(struct.iter_unpack(sh_fmt, stream.read(shnum * shentsize)))
                if shstrndx < len(rows):  # a short read gives fewer rows than shnum
                    str_off, str_size = rows[shstrndx][4], rows[shstrndx][5]
                    if str_off + str_size <= size and str_size < (1 << 24):
                        stream.seek(str_off)
                        names = stream.read(str_size)
        return cls(stream, size, little, is64, rows, names, program_headers)

    def section(self, name: str) -> Section | None:
        """The first section called ``name`` (names may share a suffix in the string table)."""
        if not self._names:
            return None
        wanted = name.encode("latin-1") + b"\0"
        offsets: set[int] = set()
        pos = self._names.find(wanted)
        while pos != -1:
            offsets.add(pos)
            pos = self._names.find(wanted, pos + 1)
        if not offsets:
            return None
        for row in self._rows:
            if row[0] in offsets:
                return Section(name, row[1], row[2], row[3], row[4], row[5])
        return None

    def read(self, offset: int, length: int) -> bytes | None:
        if offset < 0 or length < 0 or offset + length > self.size:
            return None
        self.stream.seek(offset)
        data = self.stream.read(length)
        return data if len(data) == length else None

    def section_data(self, name: str, limit: int = 1 << 26) -> bytes | None:
        sec = self.section(name)
        if sec is None or sec.type == SHT_NOBITS or sec.size > limit:
            return None
        return self.read(sec.offset, sec.size)

    def offset_of(self, addr: int) -> int | None:
        """File offset of a virtual address inside a loaded segment (or, failing that, section)."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= addr < seg.vaddr + seg.filesz:
                return addr - seg.vaddr + seg.offset
        for row in self._rows:
            s_addr, s_off, s_size = row[3], row[4], row[5]
            if s_addr and row[1] != SHT_NOBITS and s_addr <= addr < s_addr + s_size:
                return addr - s_addr + s_off
        return None

    def read_addr(self, addr: int, length: int) -> bytes | None:
        off = self.offset_of(addr)
        return None if off is None else self.read(off, length)
