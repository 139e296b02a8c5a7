"""RPM packages from any of rpm's three database backends, read without librpm.

- sqlite (rpm >= 4.16, Fedora 33+, RHEL 9, Mariner): table Packages(hnum, blob).
- BerkeleyDB hash ``Packages`` (RHEL <= 8, CentOS, Amazon Linux 2): the pages are walked as
  go-rpmdb does; every value stored off-page (H_OFFPAGE) is one header blob, reassembled from
  its chain of overflow pages.
- ndb ``Packages.db`` (SUSE): a slot table pointing at "BlbS" blobs.

Each blob is an rpm header without its lead: index count and data length, then 16-byte index
entries (tag, type, offset, count) into a data store. Only the tags below are decoded.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imgscope.catalog._common import PathResolver, distro_qualifier, make_purl, os_release
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

if TYPE_CHECKING:
    import sqlite3

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_SIZE = 1009
TAG_ARCH = 1022
TAG_OLDFILENAMES = 1027
TAG_FILESIZES = 1028
TAG_FILEMODES = 1030
TAG_SOURCERPM = 1044
TAG_PROVIDENAME = 1047
TAG_REQUIRENAME = 1049
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_LONGFILESIZES = 5008
TAG_LONGSIZE = 5009

_WANTED = frozenset(
    {
        TAG_NAME,
        TAG_VERSION,
        TAG_RELEASE,
        TAG_EPOCH,
        TAG_SIZE,
        TAG_ARCH,
        TAG_OLDFILENAMES,
        TAG_FILESIZES,
        TAG_FILEMODES,
        TAG_SOURCERPM,
        TAG_PROVIDENAME,
        TAG_REQUIRENAME,
        TAG_DIRINDEXES,
        TAG_BASENAMES,
        TAG_DIRNAMES,
        TAG_LONGFILESIZES,
        TAG_LONGSIZE,
    }
)

# rpm header data types
_INT8, _INT16, _INT32, _INT64 = 2, 3, 4, 5
_CHAR, _STRING, _BIN, _STRING_ARRAY, _I18NSTRING = 1, 6, 7, 8, 9
_INT_FORMATS = {_CHAR: "B", _INT8: "B", _INT16: "H", _INT32: "I", _INT64: "Q"}

_S_IFMT = 0o170000
_S_IFDIR = 0o040000

DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm")
# Backends in the order rpm itself prefers them; the first that yields packages is used.
DB_NAMES = ("rpmdb.sqlite", "Packages.db", "Packages")


class HeaderError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RpmHeader:
    """The fields of one rpm database header that the cataloger uses, decoded from its tags."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    size: int | None
    source_rpm: str | None
    requires: tuple[str, ...]
    provides: tuple[str, ...]
    files: tuple[str, ...]  # absolute paths, directories excluded
    file_sizes: tuple[int, ...]  # parallel to files
    problems: tuple[str, ...] = ()  # what was wrong but did not stop the parse

    @property
    def evr(self) -> str:
        base = f"{self.version}-{self.release}" if self.release else self.version
        return f"{self.epoch}:{base}" if self.epoch is not None else base

    @property
    def source_name(self) -> str | None:
        """ "curl-7.76.0-6.cm2.src.rpm" -> "curl"."""
        src = self.source_rpm
        if not src:
            return None
        for suffix in (".src.rpm", ".nosrc.rpm"):
            if src.endswith(suffix):
                src = src[: -len(suffix)]
                break
        parts = src.rsplit("-", 2)
        return parts[0] if len(parts) == 3 else src


def _strings(store: bytes, offset: int, count: int) -> list[str]:
    parts = store[offset:].split(b"\0", count)
    if len(parts) <= count:
        raise HeaderError("string array runs past the data store")
    return [p.decode("utf-8", errors="replace") for p in parts[:count]]


def parse_header(blob: bytes) -> RpmHeader:
    """Decode one header blob; raises HeaderError when it is not one."""
    if len(blob) < 8:
        raise HeaderError("header shorter than 8 bytes")
    il, dl = struct.unpack_from(">II", blob, 0)
    start = 8 + 16 * il
    if il == 0 or il > 0xFFFF or dl > 0x0FFFFFFF or start + dl > len(blob):
        raise HeaderError(f"implausible header sizes (entries={il}, data={dl}, blob={len(blob)})")
    store = blob[start : start + dl]
    values: dict[int, object] = {}
    index = struct.unpack_from(f">{4 * il}I", blob, 8)  # one call, not one per entry
    wanted = _WANTED
    for i in range(0, 4 * il, 4):
        tag = index[i]
        if tag not in wanted:
            continue
        typ, off, count = index[i + 1], index[i + 2], index[i + 3]
        if off >= dl and count:
            raise HeaderError(f"tag {tag} points outside the data store")
        if typ in (_STRING, _I18NSTRING, _STRING_ARRAY):
            strs = _strings(store, off, 1 if typ == _STRING else count)
            values[tag] = strs[0] if typ in (_STRING, _I18NSTRING) and strs else strs
        elif typ in _INT_FORMATS:
            fmt = _INT_FORMATS[typ]
            width = struct.calcsize(fmt)
            if off + width * count > dl:
                raise HeaderError(f"tag {tag} runs past the data store")
            values[tag] = struct.unpack_from(f">{count}{fmt}", store, off)

    def text(tag: int) -> str | None:
        v = values.get(tag)
        if isinstance(v, list):
            return v[0] if v else None
        return v if isinstance(v, str) else None

    def ints(tag: int) -> tuple[int, ...]:
        v = values.get(tag)
        return v if isinstance(v, tuple) else ()

    def strs(tag: int) -> list[str]:
        v = values.get(tag)
        return v if isinstance(v, list) else ([v] if isinstance(v, str) else [])

    name = text(TAG_NAME)
    if not name:
        raise HeaderError("header has no NAME")

    problems: list[str] = []
    basenames, dirnames, dirindexes = strs(TAG_BASENAMES), strs(TAG_DIRNAMES), ints(TAG_DIRINDEXES)
    paths: list[str | None]
    if basenames:
        if len(dirindexes) != len(basenames):
            problems.append(f"{name}: {len(basenames)} basenames but {len(dirindexes)} dirindexes")
        ndirs = len(dirnames)
        paths = [
            dirnames[d] + b if d < ndirs else None
            for d, b in zip(dirindexes, basenames, strict=False)
        ]
        if None in paths:
            problems.append(f"{name}: {paths.count(None)} file(s) with a dirindex out of range")
    else:
        paths = list(strs(TAG_OLDFILENAMES))
    modes = ints(TAG_FILEMODES)
    sizes = ints(TAG_LONGFILESIZES) or ints(TAG_FILESIZES)
    files: list[str] = []
    file_sizes: list[int] = []
    for i, path in enumerate(paths):
        if path is None or (i < len(modes) and modes[i] & _S_IFMT == _S_IFDIR):
            continue
        files.append(path)
        file_sizes.append(sizes[i] if i < len(sizes) else 0)

    epoch = ints(TAG_EPOCH)
    size = ints(TAG_LONGSIZE) or ints(TAG_SIZE)
    return RpmHeader(
        name=name,
        version=text(TAG_VERSION) or "",
        release=text(TAG_RELEASE) or "",
        epoch=epoch[0] if epoch else None,
        arch=text(TAG_ARCH),
        size=size[0] if size else None,
        source_rpm=text(TAG_SOURCERPM),
        # rpmlib(...) names are features of rpm itself, never a package
        requires=tuple(
            dict.fromkeys(r for r in strs(TAG_REQUIRENAME) if not r.startswith("rpmlib("))
        ),
        provides=tuple(dict.fromkeys(strs(TAG_PROVIDENAME))),
        files=tuple(files),
        file_sizes=tuple(file_sizes),
        problems=tuple(problems),
    )


# --- BerkeleyDB hash -------------------------------------------------------------------------

_BDB_HASH_MAGIC = 0x061561
_BDB_PAGE_HEADER = 26
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASHMETA, _P_HASH = 2, 7, 8, 13
_H_OFFPAGE = 3


def bdb_blobs(data: bytes) -> tuple[list[bytes], list[str]]:
    """The off-page values of a BerkeleyDB hash database (rpm: one header each)."""
    warnings: list[str] = []
    if len(data) < 512:
        return [], [f"too short for a BerkeleyDB file ({len(data)} bytes)"]
    if struct.unpack_from("<I", data, 12)[0] == _BDB_HASH_MAGIC:
        order = "<"
    elif struct.unpack_from(">I", data, 12)[0] == _BDB_HASH_MAGIC:
        order = ">"
    else:
        return [], ["not a BerkeleyDB hash database (bad magic)"]
    (page_size,) = struct.unpack_from(order + "I", data, 20)
    if data[24] != 0:
        return [], ["BerkeleyDB database is encrypted"]
    if data[25] != _P_HASHMETA or page_size not in {512 << i for i in range(8)}:
        return [], [f"unexpected BerkeleyDB meta page (type {data[25]}, page size {page_size})"]
    (last_page,) = struct.unpack_from(order + "I", data, 32)
    pages_present = len(data) // page_size
    if last_page >= pages_present:
        warnings.append(f"truncated: last page {last_page} but only {pages_present} pages present")
        last_page = pages_present - 1

    def page(n: int) -> bytes:
        return data[n * page_size : (n + 1) * page_size]

    blobs: list[bytes] = []
    broken = 0
    for pgno in range(1, last_page + 1):
        pg = page(pgno)
        if pg[25] not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        (entries,) = struct.unpack_from(order + "H", pg, 20)
        if _BDB_PAGE_HEADER + 2 * entries > page_size:
            broken += 1
            continue
        offsets = struct.unpack_from(f"{order}{entries}H", pg, _BDB_PAGE_HEADER)
        for off in offsets[1::2]:  # key, value, key, value: values only
            if off + 12 > page_size or pg[off] != _H_OFFPAGE:
                continue
            next_no, total = struct.unpack_from(order + "II", pg, off + 4)
            chunks: list[bytes] = []
            seen: set[int] = set()
            got = 0
            while next_no and next_no not in seen and next_no <= last_page and got < total:
                seen.add(next_no)
                ov = page(next_no)
                if ov[25] != _P_OVERFLOW:
                    break
                (nxt,) = struct.unpack_from(order + "I", ov, 16)
                (used,) = struct.unpack_from(order + "H", ov, 22)
                body = (
                    ov[_BDB_PAGE_HEADER : _BDB_PAGE_HEADER + used]
                    if nxt == 0
                    else ov[_BDB_PAGE_HEADER:]
                )
                chunks.append(body)
                got += len(body)
                next_no = nxt
            blob = b"".join(chunks)[:total]
            if len(blob) < total:
                broken += 1
                continue
            blobs.append(blob)
    if broken:
        warnings.append(f"{broken} value(s) with broken page chains skipped")
    return blobs, warnings


# --- ndb ---------------------------------------------------------------------------------------

_NDB_MAGIC = int.from_bytes(b"RpmP", "little")
_NDB_SLOT_MAGIC = int.from_bytes(b"Slot", "little")
_NDB_BLOB_MAGIC = int.from_bytes(b"BlbS", "little")


def ndb_blobs(data: bytes) -> tuple[list[bytes], list[str]]:
    """Header blobs of an rpm ndb Packages.db (layout as in rpm's lib/backend/ndb/rpmpkg.c)."""
    if len(data) < 32:
        return [], [f"too short for an ndb file ({len(data)} bytes)"]
    magic, version, _generation, slot_pages = struct.unpack_from("<IIII", data, 0)
    if magic != _NDB_MAGIC or version != 0 or slot_pages == 0 or slot_pages > 2048:
        return [], ["not an rpm ndb database (bad header)"]
    warnings: list[str] = []
    blobs: list[bytes] = []
    slots = slot_pages * 4096 // 16 - 2  # the header takes the first two slot positions
    for i in range(slots):
        pos = 32 + 16 * i
        if pos + 16 > len(data):
            warnings.append("slot table truncated")
            break
        smagic, pkg_index, blk_offset, _blk_count = struct.unpack_from("<IIII", data, pos)
        if smagic != _NDB_SLOT_MAGIC:
            warnings.append(f"bad slot magic at slot {i}; rest of the slot table ignored")
            break
        if pkg_index == 0:
            continue
        at = blk_offset * 16
        if at + 16 > len(data):
            warnings.append(f"package {pkg_index}: blob offset past the end of the file")
            continue
        bmagic, bindex, _cksum, blen = struct.unpack_from("<IIII", data, at)
        if bmagic != _NDB_BLOB_MAGIC or bindex != pkg_index or at + 16 + blen > len(data):
            warnings.append(f"package {pkg_index}: bad or truncated blob")
            continue
        blobs.append(data[at + 16 : at + 16 + blen])
    return blobs, warnings


# --- sqlite ------------------------------------------------------------------------------------


def sqlite_blobs(data: bytes, wal: bytes | None = None) -> tuple[list[bytes], list[str]]:
    """Packages.blob of an rpmdb.sqlite, read from memory (a non-empty WAL via a temp dir)."""
    if len(data) < 100 or not data.startswith(b"SQLite format 3\0"):
        return [], [f"not an SQLite database ({len(data)} bytes)"]
    import sqlite3  # here: ~3 ms to import, and only rpm's newest database needs it

    try:
        with _open_sqlite(data, wal) as conn:
            rows = conn.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
    except sqlite3.Error as exc:
        return [], [f"cannot read the Packages table: {exc}"]
    return [bytes(r[0]) for r in rows if r[0] is not None], []


@contextlib.contextmanager
def _open_sqlite(data: bytes, wal: bytes | None) -> Iterator[sqlite3.Connection]:
    import sqlite3

    if wal or not hasattr(sqlite3.Connection, "deserialize"):
        # Committed transactions may still sit in the WAL: let sqlite replay it from disk.
        with tempfile.TemporaryDirectory(prefix="imgscope-rpmdb-") as tmp:
            db = os.path.join(tmp, "rpmdb.sqlite")
            with open(db, "wb") as fh:
                fh.write(data)
            if wal:
                with open(db + "-wal", "wb") as fh:
                    fh.write(wal)
            conn = sqlite3.connect(db)
            try:
                yield conn
            finally:
                conn.close()
        return
    # A WAL-mode file (header bytes 18/19 == 2) cannot be opened from memory; with an empty
    # WAL the main file is complete, so mark it as a rollback-journal database instead.
    patched = bytearray(data)
    patched[18] = patched[19] = 1
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(bytes(patched))
        yield conn
    finally:
        conn.close()


# --- cataloger ---------------------------------------------------------------------------------


def read_database(
    kind: str, data: bytes, wal: bytes | None = None
) -> tuple[list[RpmHeader], list[str]]:
    """Headers of one database file of the given backend ("sqlite", "ndb", "bdb")."""
    if kind == "sqlite":
        blobs, warnings = sqlite_blobs(data, wal)
    elif kind == "ndb":
        blobs, warnings = ndb_blobs(data)
    else:
        blobs, warnings = bdb_blobs(data)
    headers: list[RpmHeader] = []
    bad = 0
    for blob in blobs:
        try:
            header = parse_header(blob)
            headers.append(header)
            warnings.extend(header.problems)
        except (HeaderError, struct.error) as exc:
            bad += 1
            if bad <= 3:
                warnings.append(f"unreadable header: {exc}")
    if bad > 3:
        warnings.append(f"{bad} unreadable headers in all")
    return headers, warnings


def _kind(db_name: str) -> str:
    return {"rpmdb.sqlite": "sqlite", "Packages.db": "ndb"}.get(db_name, "bdb")


class RpmCataloger:
    name = "rpm"
    content_patterns = (
        *(f"{d}/{n}" for d in DB_DIRS for n in DB_NAMES),
        *(f"{d}/rpmdb.sqlite-wal" for d in DB_DIRS),
        "/etc/os-release",
        "/usr/lib/os-release",
    )
    wants_executables = False

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        chosen: str | None = None
        seen: set[bytes] = set()
        for db_name in DB_NAMES:
            for db_dir in DB_DIRS:
                path = f"{db_dir}/{db_name}"
                data = _read(files, path)
                if data is None or data in seen:
                    continue
                seen.add(data)
                if chosen is not None:
                    result.warnings.append(f"rpm: {path}: not read, {chosen} is used instead")
                    continue
                wal = files.read(path + "-wal") if db_name == "rpmdb.sqlite" else None
                headers, warnings = read_database(_kind(db_name), data, wal)
                result.warnings.extend(f"rpm: {path}: {w}" for w in warnings)
                if headers:
                    chosen = path
                    result.packages.extend(self._packages(files, headers, path))
        return result

    @staticmethod
    def _packages(files: FileView, headers: list[RpmHeader], db_path: str) -> Iterator[Package]:
        release = os_release(files)
        namespace = (release.get("ID") or "").lower() or None
        distro = distro_qualifier(release)
        resolver = PathResolver(files)
        for h in headers:
            yield Package(
                ecosystem="rpm",
                name=h.name,
                version=h.evr,
                arch=h.arch,
                purl=make_purl(
                    "rpm",
                    h.name,
                    f"{h.version}-{h.release}" if h.release else h.version,
                    namespace,
                    {
                        "arch": h.arch,
                        "epoch": str(h.epoch) if h.epoch is not None else None,
                        "distro": distro,
                    },
                ),
                files=resolver.claims(h.files),
                dependencies=h.requires,
                provides=h.provides,
                evidence=(db_path,),
                installed_size=h.size,
                source=h.source_name,
            )


def _read(files: FileView, path: str) -> bytes | None:
    data = files.read(path)
    if data is not None:
        return data
    stream = files.open(path)
    if stream is None:
        return None
    with stream:
        return stream.read()
