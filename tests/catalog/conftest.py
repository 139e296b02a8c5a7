"""Access to the shared third-party corpus (../shared/corpus from the project root)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from imgscope.catalog.base import FileInfo, MemoryFileView

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


class Corpus:
    """Reads corpus files; a test whose data is missing is skipped, never failed."""

    root = CORPUS

    def path(self, rel: str) -> Path:
        path = CORPUS / rel
        if not path.exists():
            pytest.skip(f"corpus file {rel} is absent (expected under {CORPUS})")
        return path

    def bytes(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def tree(self, rel: str, mount: str = "") -> dict[str, bytes]:
        """Every regular file under a corpus directory, as absolute paths below ``mount``."""
        base = self.path(rel)
        return {
            f"{mount}/{p.relative_to(base).as_posix()}": p.read_bytes()
            for p in sorted(base.rglob("*"))
            if p.is_file()
        }

    def txtar(self, rel: str) -> dict[str, bytes]:
        """Files of a txtar archive ("-- name --" headers), names made absolute."""
        out: dict[str, bytes] = {}
        name: str | None = None
        lines: list[bytes] = []
        for line in self.bytes(rel).splitlines(keepends=True):
            stripped = line.strip()
            if stripped.startswith(b"-- ") and stripped.endswith(b" --") and len(stripped) > 6:
                if name is not None:
                    out[name] = b"".join(lines)
                name = "/" + stripped[3:-3].decode().strip().lstrip("/")
                lines = []
            elif name is not None:
                lines.append(line)
        if name is not None:
            out[name] = b"".join(lines)
        return out


@pytest.fixture(scope="session")
def corpus_data() -> Corpus:
    return Corpus()


def view(
    files: dict[str, bytes], dirs: Iterable[str] = (), infos: Iterable[FileInfo] = ()
) -> MemoryFileView:
    """A MemoryFileView that also knows the parent directories of its files."""
    dirs = tuple(dirs)
    known: dict[str, FileInfo] = {}
    for path in list(files) + list(dirs):
        parent = path.rpartition("/")[0]
        while parent:
            known.setdefault(parent, FileInfo(parent, "dir", 0, 0o755, 0))
            parent = parent.rpartition("/")[0]
    for path in dirs:
        known[path] = FileInfo(path, "dir", 0, 0o755, 0)
    known.update({i.path: i for i in infos})
    return MemoryFileView(files, known.values())


@pytest.fixture
def make_view():
    return view


def make_elf(
    sections: dict[str, bytes], *, with_section_table: bool = True, writable_segment: bool = False
) -> bytes:
    """A minimal little-endian ELF64 file holding the given sections (for build-info tests).

    With ``writable_segment`` one PT_LOAD (PF_R|PF_W) segment maps all section data at
    0x400000, as the Go linker's data segment would be.
    """
    import struct

    names = b"\0"
    name_offsets = {}
    for name in [*sections, ".shstrtab"]:
        name_offsets[name] = len(names)
        names += name.encode() + b"\0"
    body = b""
    placed = []
    data_start = 128 if writable_segment else 64  # 16-aligned, as real segments are
    for name, data in [*sections.items(), (".shstrtab", names)]:
        pad = -(data_start + len(body)) % 16
        body += b"\0" * pad
        placed.append((name, data_start + len(body), len(data)))
        body += data
    shoff = data_start + len(body)
    shnum = len(placed) + 1 if with_section_table else 0
    header = struct.pack(
        "<4sBBBBB7sHHIQQQIHHHHHH",
        b"\x7fELF",
        2,
        1,
        1,
        0,
        0,
        b"\0" * 7,
        2,
        62,
        1,
        0x401000,
        64 if writable_segment else 0,
        shoff if with_section_table else 0,
        0,
        64,
        56,
        1 if writable_segment else 0,
        64,
        shnum,
        shnum - 1 if shnum else 0,
    )
    phdr = b""
    if writable_segment:
        phdr = struct.pack(
            "<IIQQQQQQ", 1, 6, data_start, 0x400000 + data_start, 0, len(body), len(body), 0x1000
        )
    table = b""
    if with_section_table:
        table = b"\0" * 64
        for name, off, size in placed:
            stype = 3 if name == ".shstrtab" else 1
            addr = 0x400000 + off if writable_segment else 0
            table += struct.pack(
                "<IIQQQQIIQQ", name_offsets[name], stype, 0, addr, off, size, 0, 0, 1, 0
            )
    return header + phdr + b"\0" * (data_start - 64 - len(phdr)) + body + table


@pytest.fixture
def elf():
    return make_elf
