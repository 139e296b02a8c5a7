"""ELF facts for size advice: what a binary loads, what `strip` would save, who built it.

Headers are read with ``struct`` in a handful of small reads (ELF header, program headers,
section headers and their names, the dynamic table and its strings, .comment, the build-id
note): an image holds thousands of ELF files and pyelftools spends milliseconds opening each.
Debug sections are measured from the section table, never read. The DWARF producer of the
first compile unit is read only when .comment names no compiler, from bounded prefixes of
.debug_info/.debug_abbrev/.debug_str (decompressed when SHF_COMPRESSED or .zdebug_*).

Nothing here raises on malformed input: a file that is not ELF, or whose headers do not hold
together, yields None; a section that cannot be read is left out of the facts.
"""

from __future__ import annotations

import struct
import weakref
import zlib
from collections.abc import Iterable
from typing import BinaryIO, Protocol

from imgscope.analyze.types import ElfInfo
from imgscope.catalog.base import FileInfo

ELF_MAGIC = b"\x7fELF"

ET_NAMES = {0: "none", 1: "rel", 2: "exec", 3: "dyn", 4: "core"}
MACHINES = {
    2: "sparc", 3: "x86", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm",
    43: "sparcv9", 50: "ia64", 62: "x86_64", 183: "aarch64", 243: "riscv", 258: "loongarch",
}

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL, SHT_RELA = 2, 3, 8, 9, 4
SHF_ALLOC, SHF_COMPRESSED = 0x2, 0x800
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
DT_FLAGS_1, DF_1_NODEFLIB, DF_1_PIE = 0x6FFFFFFB, 0x800, 0x08000000
NT_GNU_BUILD_ID = 3

# Bounds: every read is capped so that a hostile header cannot make us read gigabytes.
_MAX_SECTIONS = 0x10000
_MAX_PHDRS = 0x10000
_MAX_SHSTRTAB = 1 << 20
_MAX_DYNAMIC = 1 << 20
_MAX_DYNSTR = 1 << 18
_MAX_STRING = 4096
_MAX_COMMENT = 1 << 16
_MAX_NOTES = 1 << 16
_DWARF_PREFIX = 1 << 16  # first CU header + first DIE, and its abbreviation entry
_DWARF_STR_LIMIT = 1 << 22  # how deep into (decompressed) .debug_str we follow a producer
_GO_MIN_SIZE = 256 * 1024  # as imgscope.catalog.golang: no Go binary is smaller

# Sections `strip` (--strip-all, and --strip-unneeded on executables and shared objects) drops.
_DEBUG_PREFIXES = (".debug", ".zdebug", ".gnu.debuglto_", ".line", ".stab", ".gnu.linkonce.wi.")


class ElfSource(Protocol):
    """What elf_infos needs of a FileView."""

    def info(self, path: str) -> FileInfo | None: ...

    def open(self, path: str) -> BinaryIO | None: ...


def is_debug_section(name: str) -> bool:
    return name.startswith(_DEBUG_PREFIXES)


# -------------------------------------------------------------------------------------------


class _Reader:
    """Bounded reads of one stream; every read past the end returns None."""

    __slots__ = ("stream", "size")

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size

    def read(self, offset: int, length: int) -> bytes | None:
        if offset < 0 or length < 0 or offset + length > self.size:
            return None
        self.stream.seek(offset)
        data = self.stream.read(length)
        return data if len(data) == length else None

    def read_upto(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset >= self.size or length <= 0:
            return b""
        self.stream.seek(offset)
        return self.stream.read(min(length, self.size - offset))


def _cstr(data: bytes, offset: int) -> str | None:
    if not 0 <= offset < len(data):
        return None
    end = data.find(b"\0", offset, offset + _MAX_STRING)
    if end == -1:
        return None
    return data[offset:end].decode("utf-8", "replace")


def inspect_elf(stream: BinaryIO, path: str) -> ElfInfo | None:
    """Facts about the ELF file in `stream` (seekable), or None if it is not one."""
    try:
        return _inspect(stream, path)
    except (OSError, ValueError, struct.error, IndexError, OverflowError, zlib.error,
            MemoryError, EOFError):
        return None


def _inspect(stream: BinaryIO, path: str) -> ElfInfo | None:
    stream.seek(0, 2)
    size = stream.tell()
    r = _Reader(stream, size)
    head = r.read_upto(0, 64)
    if len(head) < 52 or not head.startswith(ELF_MAGIC) or head[4] not in (1, 2) \
            or head[5] not in (1, 2):
        return None
    is64, little = head[4] == 2, head[5] == 1
    if is64 and len(head) < 64:
        return None
    e = "<" if little else ">"
    etype, emachine = struct.unpack_from(e + "HH", head, 16)
    if is64:
        phoff, shoff = struct.unpack_from(e + "QQ", head, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "5H", head, 54)
    else:
        phoff, shoff = struct.unpack_from(e + "II", head, 28)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "5H", head, 42)

    # Program headers: (type, flags, offset, vaddr, filesz).
    segments: list[tuple[int, int, int, int, int]] = []
    ph_fmt = e + ("IIQQQQQQ" if is64 else "8I")
    if phoff and 0 < phnum < _MAX_PHDRS and phentsize == struct.calcsize(ph_fmt):
        table = r.read(phoff, phnum * phentsize)
        if table is not None:
            for row in struct.iter_unpack(ph_fmt, table):
                if is64:
                    segments.append((row[0], row[1], row[2], row[3], row[5]))
                else:
                    segments.append((row[0], row[6], row[1], row[2], row[4]))

    # Section headers: (name, type, flags, addr, offset, size, link) with names resolved.
    sections: list[tuple[str, int, int, int, int, int, int]] = []
    sh_fmt = e + ("IIQQQQIIQQ" if is64 else "10I")
    if shoff and shentsize == struct.calcsize(sh_fmt):
        first = r.read(shoff, shentsize)
        if first is not None:
            row0 = struct.unpack(sh_fmt, first)
            if shnum == 0:  # more than 0xff00 sections: the count lives in section 0
                shnum = row0[5]
            if shstrndx == 0xFFFF:
                shstrndx = row0[6]
            table = r.read(shoff, shnum * shentsize) if 0 < shnum < _MAX_SECTIONS else None
            if table is not None:
                rows = list(struct.iter_unpack(sh_fmt, table))
                names = b""
                if shstrndx < len(rows):
                    s_off, s_size = rows[shstrndx][4], rows[shstrndx][5]
                    if s_size <= _MAX_SHSTRTAB:
                        names = r.read(s_off, s_size) or b""
                # Decode the name table once; names sharing a suffix (".rela.text" and ".text")
                # point inside another string and are looked up on their own.
                decoded: dict[int, str] = {}
                pos = 0
                for raw_name in names.split(b"\0"):
                    decoded[pos] = raw_name.decode("utf-8", "replace")
                    pos += len(raw_name) + 1
                for row in rows:
                    name = decoded.get(row[0])
                    if name is None:
                        name = _cstr(names, row[0]) or ""
                    sections.append((name, row[1], row[2], row[3], row[4], row[5], row[6]))
    by_name: dict[str, tuple[str, int, int, int, int, int, int]] = {}
    for sec in sections:
        by_name.setdefault(sec[0], sec)

    def vaddr_to_offset(addr: int) -> int | None:
        for ptype, _flags, off, vaddr, filesz in segments:
            if ptype == PT_LOAD and vaddr <= addr < vaddr + filesz:
                return addr - vaddr + off
        return None

    # PT_INTERP, as the kernel reads it (the .interp section only if there is no segment).
    interpreter: str | None = None
    interp = next(((s[2], s[4]) for s in segments if s[0] == PT_INTERP), None)
    if interp is None and ".interp" in by_name and by_name[".interp"][1] != SHT_NOBITS:
        interp = (by_name[".interp"][4], by_name[".interp"][5])
    if interp is not None and 0 < interp[1] <= _MAX_STRING:
        raw = r.read(interp[0], interp[1])
        if raw:
            interpreter = raw.split(b"\0", 1)[0].decode("utf-8", "replace") or None

    # The dynamic table, as ld.so reads it: PT_DYNAMIC, strings through DT_STRTAB.
    needed: list[str] = []
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname: str | None = None
    nodeflib = pie = False
    dyn = next(((s[2], s[4]) for s in segments if s[0] == PT_DYNAMIC), None)
    dyn_sec = by_name.get(".dynamic")
    if dyn is None and dyn_sec is not None and dyn_sec[1] != SHT_NOBITS:
        dyn = (dyn_sec[4], dyn_sec[5])
    if dyn is not None and dyn[1] > 0:
        raw = r.read_upto(dyn[0], min(dyn[1], _MAX_DYNAMIC))
        d_fmt = e + ("qQ" if is64 else "iI")
        d_size = struct.calcsize(d_fmt)
        entries: list[tuple[int, int]] = []
        for tag, val in struct.iter_unpack(d_fmt, raw[: len(raw) - len(raw) % d_size]):
            if tag == DT_NULL:
                break
            entries.append((tag, val))
        tags = dict(entries)  # for single-valued tags, the first would also do
        strtab_off: int | None = None
        strsz = tags.get(DT_STRSZ, 0)
        if DT_STRTAB in tags:
            strtab_off = vaddr_to_offset(tags[DT_STRTAB])
        if strtab_off is None:  # no PT_LOAD maps it (objects, odd linkers): the linked section
            link = dyn_sec[6] if dyn_sec is not None else None
            dynstr = sections[link] if link is not None and 0 < link < len(sections) \
                else by_name.get(".dynstr")
            if dynstr is not None:
                strtab_off, strsz = dynstr[4], strsz or dynstr[5]
        # A small string table is read once; a big one (C++ libraries: megabytes of symbol
        # names) only where the few strings we need are.
        strings = b""
        whole = strtab_off is not None and 0 < strsz <= _MAX_DYNSTR
        if whole:
            strings = r.read_upto(strtab_off, strsz)

        def dstr(offset: int) -> str | None:
            if whole:
                return _cstr(strings, offset)
            if strtab_off is None or offset < 0 or (strsz and offset >= strsz):
                return None
            return _cstr(r.read_upto(strtab_off + offset, _MAX_STRING), 0)

        for tag, val in entries:
            if tag == DT_NEEDED:
                name = dstr(val)
                if name:
                    needed.append(name)
            elif tag == DT_SONAME and soname is None:
                soname = dstr(val)
            elif tag == DT_RPATH and not rpath:
                rpath = tuple(p for p in (dstr(val) or "").split(":") if p)
            elif tag == DT_RUNPATH and not runpath:
                runpath = tuple(p for p in (dstr(val) or "").split(":") if p)
            elif tag == DT_FLAGS_1:
                nodeflib = bool(val & DF_1_NODEFLIB)
                pie = bool(val & DF_1_PIE)

    # Debug bytes and what strip removes. Relocatable objects keep their symbol table
    # (strip --strip-unneeded needs it for linking); relocations of debug sections go too.
    debug_bytes = 0
    removed = removed_names = removed_count = 0
    has_symtab = False
    symtab_strtabs: set[int] = set()
    for sec in sections:
        if sec[1] == SHT_SYMTAB:
            has_symtab = True
            if etype != 1:
                symtab_strtabs.add(sec[6])
    for index, (name, stype, flags, _addr, _off, ssize, link) in enumerate(sections):
        stored = 0 if stype == SHT_NOBITS else ssize
        drop = False
        if is_debug_section(name):
            debug_bytes += stored
            drop = True
        elif flags & SHF_ALLOC:
            continue
        elif stype == SHT_SYMTAB and etype != 1 \
                or index in symtab_strtabs and stype == SHT_STRTAB \
                or stype in (SHT_REL, SHT_RELA) and 0 < link < len(sections) \
                and _relocates_debug(name):
            drop = True
        if drop:
            removed += stored
            removed_names += len(name) + 1
            removed_count += 1
    strip_savings = removed + removed_names + removed_count * (64 if is64 else 40)

    # GNU build-id: from the note section or any PT_NOTE segment.
    build_id: str | None = None
    note_areas = []
    sec = by_name.get(".note.gnu.build-id")
    if sec is not None:
        note_areas.append((sec[4], sec[5]))
    note_areas.extend((s[2], s[4]) for s in segments if s[0] == PT_NOTE)
    for off, nsize in note_areas:
        build_id = _build_id(r.read_upto(off, min(nsize, _MAX_NOTES)), e)
        if build_id:
            break

    # Toolchain: .comment strings, the DWARF producer when .comment says nothing.
    comments: list[str] = []
    sec = by_name.get(".comment")
    if sec is not None and sec[1] != SHT_NOBITS:
        raw = r.read_upto(sec[4], min(sec[5], _MAX_COMMENT))
        comments = [c.decode("utf-8", "replace").strip() for c in raw.split(b"\0")]
        comments = [c for c in comments if c]
    compiler = _pick_compiler(comments)
    if compiler is None:
        compiler = _dwarf_producer(r, by_name, e, little, is64, etype == 1)

    rust = "rustc version" in (compiler or "") or any(
        n in by_name for n in (".dep-v0", ".rustc")
    )
    go_version = None
    if ".go.buildinfo" in by_name or (not sections and size >= _GO_MIN_SIZE and etype in (2, 3)
                                      and interpreter is None):
        go_version = _go_version(stream)

    return ElfInfo(
        path=path,
        elf_type=ET_NAMES.get(etype, f"0x{etype:x}"),
        machine=MACHINES.get(emachine, f"0x{emachine:x}"),
        interpreter=interpreter,
        soname=soname,
        needed=tuple(needed),
        rpath=rpath,
        runpath=runpath,
        # A shared object without dependencies is not a static program; a static-pie is.
        static=interpreter is None and not needed and (etype == 2 or etype == 3 and pie),
        stripped=not has_symtab,
        debug_bytes=debug_bytes,
        strip_savings=strip_savings,
        build_id=build_id,
        compiler=compiler,
        go_version=go_version,
        rust=rust,
        bits=64 if is64 else 32,
        little_endian=little,
        nodeflib=nodeflib,
        size=size,
        comments=tuple(comments[:8]),
    )


def _relocates_debug(name: str) -> bool:
    # .rela.debug_info and friends: relocations that only apply to debug sections.
    return is_debug_section(name.removeprefix(".rela").removeprefix(".rel"))


def _build_id(notes: bytes, e: str) -> str | None:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from(e + "III", notes, pos)
        name_end = pos + 12 + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        if desc_end > len(notes) or namesz > 256:
            return None
        if ntype == NT_GNU_BUILD_ID and notes[pos + 12 : pos + 12 + namesz] == b"GNU\0" \
                and 0 < descsz <= 64:
            return notes[name_end : name_end + descsz].hex()
        pos = desc_end
    return None


def _pick_compiler(comments: list[str]) -> str | None:
    """The toolchain that compiled the code: .comment gathers a string from every object
    linked in (GCC's crt files, the linker), so the language's own compiler wins."""
    for prefix in ("rustc version", "Debian clang", "clang version", "Ubuntu clang", "GCC:",
                   "Go "):
        for c in comments:
            if c.startswith(prefix) or (prefix.endswith("clang") and "clang version" in c):
                return c
    for c in comments:
        if not c.startswith("Linker:"):
            return c
    return None


def _go_version(stream: BinaryIO) -> str | None:
    # The Go build-info reader lives with the Go cataloger; reuse it, don't duplicate it.
    from imgscope.catalog._elf import ElfImage
    from imgscope.catalog.golang import read_buildinfo

    elf = ElfImage.parse(stream)
    if elf is None:
        return None
    try:
        info = read_buildinfo(elf)
    except (OSError, ValueError, struct.error, IndexError, UnicodeDecodeError):
        return None
    return info.go_version.split()[0] if info is not None and info.go_version else None


# -- DWARF: the first compile unit's DW_AT_producer ----------------------------------------

DW_AT_producer, DW_AT_str_offsets_base = 0x25, 0x72
_FIXED_FORMS = {0x0B: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x0C: 1, 0x11: 1, 0x12: 2, 0x13: 4,
                0x14: 8, 0x19: 0, 0x1C: 4, 0x1E: 16, 0x20: 8, 0x21: 0, 0x24: 8, 0x25: 1,
                0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4}
_ULEB_FORMS = {0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02}
_OFFSET_FORMS = {0x0E, 0x17, 0x1D, 0x1F, 0x1F20, 0x1F21}


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]  # IndexError past the end: caught by the caller
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("uleb128 too long")


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if b & 0x40:
                value -= 1 << shift
            return value, pos
        if shift > 63:
            raise ValueError("sleb128 too long")


def _section_bytes(r: _Reader, sec: tuple, start: int, length: int, e: str, is64: bool
                   ) -> bytes | None:
    """`length` bytes from `start` of a section's contents, decompressing a bounded prefix."""
    name, stype, flags, _addr, off, size, _link = sec
    if stype == SHT_NOBITS:
        return None
    if flags & SHF_COMPRESSED:
        hdr_fmt = e + ("IIQQ" if is64 else "III")
        hdr = r.read(off, struct.calcsize(hdr_fmt))
        if hdr is None:
            return None
        ch_type = struct.unpack(hdr_fmt, hdr)[0]
        body = (off + struct.calcsize(hdr_fmt), size - struct.calcsize(hdr_fmt))
        return _inflate(r, body, ch_type, start, length)
    if name.startswith(".zdebug"):
        hdr = r.read(off, 12)
        if hdr is None or not hdr.startswith(b"ZLIB"):
            return None
        return _inflate(r, (off + 12, size - 12), 1, start, length)
    if start >= size:
        return None
    return r.read_upto(off + start, min(length, size - start))


def _inflate(r: _Reader, body: tuple[int, int], ch_type: int, start: int, length: int
             ) -> bytes | None:
    want = start + length
    if want > _DWARF_STR_LIMIT + _DWARF_PREFIX:
        return None
    out = b""
    pos, end = body[0], body[0] + max(body[1], 0)
    if ch_type == 1:
        inflater = zlib.decompressobj()
        while len(out) < want and pos < end:
            chunk = r.read_upto(pos, min(1 << 16, end - pos))
            if not chunk:
                break
            pos += len(chunk)
            out += inflater.decompress(chunk, want - len(out))
            if inflater.eof:
                break
    elif ch_type == 2:
        try:
            import zstandard
        except ImportError:
            return None
        try:
            dobj = zstandard.ZstdDecompressor().decompressobj()
            while len(out) < want and pos < end:
                chunk = r.read_upto(pos, min(1 << 16, end - pos))
                if not chunk:
                    break
                pos += len(chunk)
                out += dobj.decompress(chunk)
        except zstandard.ZstdError:
            return None
    else:
        return None
    return out[start:want]


def _dwarf_producer(r: _Reader, by_name: dict, e: str, little: bool, is64: bool,
                    relocatable: bool) -> str | None:
    info = by_name.get(".debug_info") or by_name.get(".zdebug_info")
    abbrev = by_name.get(".debug_abbrev") or by_name.get(".zdebug_abbrev")
    if info is None or abbrev is None:
        return None
    try:
        return _producer(r, by_name, info, abbrev, e, little, is64, relocatable)
    except (IndexError, ValueError, struct.error, zlib.error):
        return None


def _producer(r: _Reader, by_name: dict, info: tuple, abbrev: tuple, e: str, little: bool,
              is64: bool, relocatable: bool) -> str | None:
    data = _section_bytes(r, info, 0, _DWARF_PREFIX, e, is64)
    if not data or len(data) < 11:
        return None
    (unit_length,) = struct.unpack_from(e + "I", data, 0)
    pos, offset_size = 4, 4
    if unit_length == 0xFFFFFFFF:
        pos, offset_size = 12, 8
    off_fmt = e + ("Q" if offset_size == 8 else "I")
    (version,) = struct.unpack_from(e + "H", data, pos)
    pos += 2
    if version >= 5:
        unit_type, address_size = data[pos], data[pos + 1]
        (abbrev_off,) = struct.unpack_from(off_fmt, data, pos + 2)
        pos += 2 + offset_size
        if unit_type in (4, 5):  # skeleton / split compile: a dwo_id follows
            pos += 8
        elif unit_type in (2, 6):  # type units: signature and type offset
            pos += 8 + offset_size
    elif version in (2, 3, 4):
        (abbrev_off,) = struct.unpack_from(off_fmt, data, pos)
        address_size = data[pos + offset_size]
        pos += offset_size + 1
    else:
        return None
    code, pos = _uleb(data, pos)
    if code == 0:
        return None
    table = _section_bytes(r, abbrev, abbrev_off, _DWARF_PREFIX, e, is64)
    if not table:
        return None
    specs = _abbrev_spec(table, code)
    if specs is None:
        return None
    found: tuple[int, object] | None = None
    str_offsets_base: int | None = None
    for attr, form, _implicit in specs:
        while form == 0x16:  # DW_FORM_indirect: the form is in the DIE
            form, pos = _uleb(data, pos)
        value: object = None
        field_pos = pos
        if form == 0x08:  # inline string
            end = data.index(b"\0", pos)
            value = data[pos:end]
            pos = end + 1
        elif form in _OFFSET_FORMS:
            (value,) = struct.unpack_from(off_fmt, data, pos)
            pos += offset_size
        elif form == 0x10:  # ref_addr: address-sized in DWARF 2
            pos += address_size if version == 2 else offset_size
        elif form == 0x01:
            pos += address_size
        elif form in _FIXED_FORMS:
            size = _FIXED_FORMS[form]
            if form in (0x25, 0x26, 0x27, 0x28):
                value = int.from_bytes(data[pos : pos + size], "little" if little else "big")
            pos += size
        elif form in _ULEB_FORMS:
            value, pos = _uleb(data, pos)
        elif form == 0x0D:
            value, pos = _sleb(data, pos)
        elif form in (0x09, 0x18):
            n, pos = _uleb(data, pos)
            pos += n
        elif form in (0x0A, 0x03, 0x04):
            width = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
            n = int.from_bytes(data[pos : pos + width], "little" if little else "big")
            pos += width + n
        else:
            return None  # a form we do not know: the rest of the DIE cannot be walked
        if pos > len(data):
            return None
        if attr == DW_AT_producer:
            found = (form, value)
            if relocatable and form in _OFFSET_FORMS:
                # In an object file the offset is a relocation's addend (RELA: the field is 0).
                addend = _rela_addend(r, by_name.get(".rela" + info[0]), field_pos, e, is64)
                if addend is not None:
                    found = (form, addend)
        elif attr == DW_AT_str_offsets_base and isinstance(value, int):
            str_offsets_base = value
    if found is None:
        return None
    form, value = found
    raw: bytes | None = None
    if form == 0x08 and isinstance(value, bytes):
        raw = value
    elif form in (0x0E, 0x1F) and isinstance(value, int):
        sec = by_name.get(".debug_str" if form == 0x0E else ".debug_line_str")
        if sec is None and form == 0x0E:
            sec = by_name.get(".zdebug_str")
        if sec is not None and value <= _DWARF_STR_LIMIT:
            raw = _section_bytes(r, sec, value, _MAX_STRING, e, is64)
    elif form in (0x1A, 0x25, 0x26, 0x27, 0x28, 0x1F02) and isinstance(value, int):
        offsets = by_name.get(".debug_str_offsets")
        strs = by_name.get(".debug_str")
        base = str_offsets_base if str_offsets_base is not None else 8
        if offsets is not None and strs is not None:
            entry = _section_bytes(r, offsets, base + value * offset_size, offset_size, e, is64)
            if entry and len(entry) == offset_size:
                (str_off,) = struct.unpack(off_fmt, entry)
                if str_off <= _DWARF_STR_LIMIT:
                    raw = _section_bytes(r, strs, str_off, _MAX_STRING, e, is64)
    if not raw:
        return None
    text = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return text or None


def _rela_addend(r: _Reader, rela: tuple | None, offset: int, e: str, is64: bool) -> int | None:
    """The addend of the RELA entry patching `offset` (symbol values of section symbols are 0
    in an object file)."""
    if rela is None or rela[5] > _DWARF_STR_LIMIT:
        return None
    data = r.read_upto(rela[4], rela[5])
    fmt = e + ("QQq" if is64 else "IIi")
    size = struct.calcsize(fmt)
    whole = data[: len(data) - len(data) % size]
    for r_offset, _r_info, r_addend in struct.iter_unpack(fmt, whole):
        if r_offset == offset:
            return r_addend
    return None


def _abbrev_spec(table: bytes, code: int) -> list[tuple[int, int, int]] | None:
    """The (attribute, form, implicit const) list of abbreviation `code`."""
    pos = 0
    while pos < len(table):
        this, pos = _uleb(table, pos)
        if this == 0:
            return None
        _tag, pos = _uleb(table, pos)
        pos += 1  # has-children flag
        specs: list[tuple[int, int, int]] = []
        while True:
            attr, pos = _uleb(table, pos)
            form, pos = _uleb(table, pos)
            implicit = 0
            if form == 0x21:
                implicit, pos = _sleb(table, pos)
            if attr == 0 and form == 0:
                break
            specs.append((attr, form, implicit))
        if this == code:
            return specs
    return None


# -- many files ------------------------------------------------------------------------------

# One cache per FileView: the closure and the build-tool detector ask about the same files.
_CACHES: weakref.WeakKeyDictionary[object, dict[str, ElfInfo | None]] = \
    weakref.WeakKeyDictionary()


def cache_for(view: object) -> dict[str, ElfInfo | None]:
    try:
        return _CACHES.setdefault(view, {})
    except TypeError:  # a view that cannot be weakly referenced: no sharing
        return {}


def elf_info(view: ElfSource, path: str, cache: dict[str, ElfInfo | None] | None = None
             ) -> ElfInfo | None:
    """Facts about one file of `view` (following symlinks), cached per view."""
    if cache is None:
        cache = cache_for(view)
    try:
        return cache[path]
    except KeyError:
        pass
    result: ElfInfo | None = None
    info = view.info(path)
    if info is None or info.type in ("file", "symlink"):
        stream = view.open(path)
        if stream is not None:
            with stream:
                result = inspect_elf(stream, path)
    cache[path] = result
    return result


def elf_infos(view: ElfSource, paths: Iterable[str]) -> dict[str, ElfInfo]:
    """ElfInfo of each path that is an ELF file we can read (others are left out)."""
    cache = cache_for(view)
    out: dict[str, ElfInfo] = {}
    for path in paths:
        item = elf_info(view, path, cache)
        if item is not None:
            out[path] = item
    return out


def elf_candidates(view: ElfSource, paths: Iterable[str]) -> list[str]:
    """Regular files that may be ELF: executables and files named like shared libraries and
    objects (the files imgscope keeps by reference while reading layers)."""
    out: list[str] = []
    for path in paths:
        info = view.info(path)
        if info is None or info.type != "file" or info.size < 52:
            continue
        base = path.rpartition("/")[2]
        if info.mode & 0o111 or ".so" in base or base.endswith((".o", ".debug", ".node")):
            out.append(path)
    return out
