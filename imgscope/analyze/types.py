"""What the analysis stages after cataloging exchange: ELF facts and the runtime closure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ElfInfo:
    """Facts about one ELF file of the final filesystem (imgscope/analyze/elf.py)."""

    path: str
    elf_type: str  # "exec", "dyn" (PIE or shared library), "rel" (object), "core", ...
    machine: str | None
    interpreter: str | None  # PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED, in order
    rpath: tuple[str, ...]  # DT_RPATH entries ($ORIGIN kept as written)
    runpath: tuple[str, ...]  # DT_RUNPATH entries
    static: bool  # a program with no PT_INTERP and no DT_NEEDED (static-pie too)
    stripped: bool  # no .symtab
    debug_bytes: int  # bytes of .debug_* / .zdebug_* sections
    strip_savings: int  # bytes `strip --strip-unneeded` would remove (debug + .symtab/.strtab)
    build_id: str | None
    compiler: str | None  # .comment or DWARF producer: "GCC: (Debian 12.2.0-14) 12.2.0"
    go_version: str | None  # Go toolchain version if a Go binary
    rust: bool  # built by rustc (.comment or cargo-auditable section)
    bits: int = 64  # ELF class: 32 or 64
    little_endian: bool = True
    nodeflib: bool = False  # DF_1_NODEFLIB: ld.so skips the default directories for its deps
    size: int = 0  # file size in bytes
    comments: tuple[str, ...] = ()  # .comment strings (toolchain and linker idents), first 8


@dataclass(frozen=True, slots=True)
class RuntimeClosure:
    """What the entrypoint needs at run time (imgscope/analyze/closure.py)."""

    argv: tuple[str, ...]  # Entrypoint + Cmd as the runtime would run them
    executable: str | None  # resolved path of argv[0] inside the image
    kind: str  # "elf-static", "elf-dynamic", "python", "node", "java", "shell", "unknown"
    interpreters: tuple[str, ...]  # shebang / runtime interpreters followed, in order
    files: tuple[str, ...]  # every path needed at run time (sorted), symlinks included
    libraries: tuple[tuple[str, str | None], ...]  # (DT_NEEDED soname, resolved path or None)
    packages: tuple[str, ...]  # package keys (attribution.package_key) the closure touches
    app_paths: tuple[str, ...]  # the app's own files/trees that no package owns
    unresolved: tuple[str, ...]  # sonames or interpreters not found
    limits: tuple[str, ...]  # what static analysis cannot see (dlopen, config files...)
