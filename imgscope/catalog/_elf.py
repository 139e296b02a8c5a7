"""Just enough ELF to find a named section or map a virtual address, for build-info readers.

pyelftools takes about 3 ms to open a binary and look up one section; an image has a thousand
executables and two catalogers look at each, so the headers are read here with ``struct`` in
three small reads (about 50 us). Anything malformed yields None, never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
PF_W = 2
_MAX_SECTIONS = 0x10000


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class ElfImage:
    """Sections and program headers of one ELF file read from a seekable stream."""

    def __init__(
        self,
        stream: BinaryIO,
        size: int,
        little: bool,
        is64: bool,
        sections: dict[str, Section],
        segments: list[Segment],
    ) -> None:
        self.stream = stream
        self.size = size
        self.little = little
        self.is64 = is64
        self.sections = sections
        self.segments = segments

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
        is64 = ident[4] == 2
        if ident[5] not in (1, 2):
            return None
        little = ident[5] == 1
        e = "<" if little else ">"
        if is64:
            phoff, shoff = struct.unpack_from(e + "QQ", ident, 32)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "5H", ident, 54)
        else:
            phoff, shoff = struct.unpack_from(e + "II", ident, 28)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "5H", ident, 42)

        segments: list[Segment] = []
        min_ph = 56 if is64 else 32
        if phoff and phnum and phentsize >= min_ph and phoff + phnum * phentsize <= size:
            stream.seek(phoff)
            table = stream.read(phnum * phentsize)
            for i in range(phnum):
                base = i * phentsize
                if is64:
                    ptype, pflags, poff, vaddr, _paddr, filesz = struct.unpack_from(
                        e + "IIQQQQ", table, base
                    )
                else:
                    ptype, poff, vaddr, _paddr, filesz, _memsz, pflags = struct.unpack_from(
                        e + "7I", table, base
                    )
                segments.append(Segment(ptype, pflags, poff, vaddr, filesz))

        sections: dict[str, Section] = {}
        entsize = 64 if is64 else 40
        if shoff and shentsize >= entsize and shoff + shentsize <= size:
            stream.seek(shoff)
            first = stream.read(shentsize)
            if shnum == 0:  # more than 0xff00 sections: the count lives in section 0
                shnum = struct.unpack_from(e + ("Q" if is64 else "I"), first, 32 if is64 else 20)[0]
            if shstrndx == 0xFFFF:
                shstrndx = struct.unpack_from(e + "I", first, 40 if is64 else 24)[0]
            if 0 < shnum < _MAX_SECTIONS and shoff + shnum * shentsize <= size:
                stream.seek(shoff)
                table = stream.read(shnum * shentsize)
                raw: list[tuple[int, int, int, int, int, int]] = []
                for i in range(shnum):
                    base = i * shentsize
                    if is64:
                        name, stype, flags, addr, off, ssize = struct.unpack_from(
                            e + "IIQQQQ", table, base
                        )
                    else:
                        name, stype, flags, addr, off, ssize = struct.unpack_from(
                            e + "6I", table, base
                        )
                    raw.append((name, stype, flags, addr, off, ssize))
                if shstrndx < shnum:
                    _, _, _, _, str_off, str_size = raw[shstrndx]
                    if str_off + str_size <= size and str_size < (1 << 24):
                        stream.seek(str_off)
                        names = stream.read(str_size)
                        for name_off, stype, flags, addr, off, ssize in raw:
                            end = names.find(b"\0", name_off)
                            if name_off >= len(names) or end == -1:
                                continue
                            label = names[name_off:end].decode("latin-1")
                            if label and label not in sections:
                                sections[label] = Section(label, stype, flags, addr, off, ssize)
        return cls(stream, size, little, is64, sections, segments)

    def read(self, offset: int, length: int) -> bytes | None:
        if offset < 0 or length < 0 or offset + length > self.size:
            return None
        self.stream.seek(offset)
        data = self.stream.read(length)
        return data if len(data) == length else None

    def section_data(self, name: str, limit: int = 1 << 26) -> bytes | None:
        sec = self.sections.get(name)
        if sec is None or sec.type == 8 or sec.size > limit:  # 8: SHT_NOBITS, no file bytes
            return None
        return self.read(sec.offset, sec.size)

    def offset_of(self, addr: int) -> int | None:
        """File offset of a virtual address inside a loaded segment (or section)."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= addr < seg.vaddr + seg.filesz:
                return addr - seg.vaddr + seg.offset
        for sec in self.sections.values():
            if sec.addr and sec.type != 8 and sec.addr <= addr < sec.addr + sec.size:
                return addr - sec.addr + sec.offset
        return None

    def read_addr(self, addr: int, length: int) -> bytes | None:
        off = self.offset_of(addr)
        return None if off is None else self.read(off, length)
