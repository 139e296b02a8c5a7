from __future__ import annotations

import json
import re
import sqlite3
import struct

import pytest

from imgscope.catalog.rpm import (
    HeaderError,
    RpmCataloger,
    bdb_blobs,
    ndb_blobs,
    parse_header,
    read_database,
    sqlite_blobs,
)

STRING, STRING_ARRAY, INT32, INT16, I18N = 6, 8, 4, 3, 9


def make_header(entries: list[tuple[int, int, object]]) -> bytes:
    """An rpm header blob (no lead) from (tag, type, value) triples, as rpm stores it."""
    index = b""
    store = b""
    for tag, typ, value in entries:
        if typ == INT32:
            store += b"\0" * (-len(store) % 4)
            data, count = struct.pack(f">{len(value)}I", *value), len(value)
        elif typ == INT16:
            store += b"\0" * (-len(store) % 2)
            data, count = struct.pack(f">{len(value)}H", *value), len(value)
        elif typ == STRING_ARRAY:
            data, count = b"".join(s.encode() + b"\0" for s in value), len(value)
        else:
            data, count = value.encode() + b"\0", 1
        index += struct.pack(">IIII", tag, typ, len(store), count)
        store += data
    return struct.pack(">II", len(entries), len(store)) + index + store


HELLO = make_header(
    [
        (1000, STRING, "hello"),
        (1001, STRING, "2.12"),
        (1002, STRING, "1.fc39"),
        (1003, INT32, [2]),
        (1009, INT32, [12345]),
        (1022, STRING, "x86_64"),
        (1028, INT32, [4096, 100, 0]),
        (1030, INT16, [0o100755, 0o100644, 0o040755]),
        (1044, STRING, "hello-2.12-1.fc39.src.rpm"),
        (1047, STRING_ARRAY, ["hello", "hello(x86-64)"]),
        (
            1049,
            STRING_ARRAY,
            ["libc.so.6()(64bit)", "rpmlib(CompressedFileNames)", "libc.so.6()(64bit)"],
        ),
        (1116, INT32, [0, 1, 1]),
        (1117, STRING_ARRAY, ["hello", "README", "hello"]),
        (1118, STRING_ARRAY, ["/usr/bin/", "/usr/share/doc/"]),
    ]
)


def sqlite_db(blobs: list[bytes]) -> bytes:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
    )
    conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    conn.commit()
    data = conn.serialize()
    conn.close()
    return data


def test_header_from_bytes_built_here():
    h = parse_header(HELLO)
    assert (h.name, h.version, h.release, h.epoch, h.arch, h.size) == (
        "hello",
        "2.12",
        "1.fc39",
        2,
        "x86_64",
        12345,
    )
    assert h.evr == "2:2.12-1.fc39"
    assert h.source_name == "hello"
    # the directory entry (mode 040755) is not a file; rpmlib() features are not dependencies
    assert h.files == ("/usr/bin/hello", "/usr/share/doc/README")
    assert h.file_sizes == (4096, 100)
    assert h.requires == ("libc.so.6()(64bit)",)
    assert h.provides == ("hello", "hello(x86-64)")


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x00\x00", b"\xe3\x30\x30\x30\x30\x30\x30\x30", HELLO[:40], HELLO[:-5], b"\0" * 8],
)
def test_bad_headers_raise_header_error_only(blob):
    with pytest.raises(HeaderError):
        parse_header(blob)


def test_catalog_sqlite_database(make_view):
    fs = make_view(
        {
            "/var/lib/rpm/rpmdb.sqlite": sqlite_db([HELLO, b"garbage"]),
            "/etc/os-release": b'ID="fedora"\nVERSION_ID=39\n',
            "/usr/bin/hello": b"\x7fELF",
        }
    )
    result = RpmCataloger().catalog(fs)
    [pkg] = result.packages
    assert (pkg.name, pkg.version, pkg.arch, pkg.source) == (
        "hello",
        "2:2.12-1.fc39",
        "x86_64",
        "hello",
    )
    assert pkg.purl == "pkg:rpm/fedora/hello@2.12-1.fc39?arch=x86_64&distro=fedora-39&epoch=2"
    assert pkg.files == ("/usr/bin/hello", "/usr/share/doc/README")
    assert pkg.evidence == ("/var/lib/rpm/rpmdb.sqlite",)
    assert pkg.installed_size == 12345
    assert any("unreadable header" in w for w in result.warnings)


def test_sysimage_path_and_stale_second_database(make_view):
    fs = make_view(
        {
            "/usr/lib/sysimage/rpm/rpmdb.sqlite": sqlite_db([HELLO]),
            "/var/lib/rpm/Packages": b"\0" * 600,  # a leftover BerkeleyDB file
        }
    )
    result = RpmCataloger().catalog(fs)
    assert [p.evidence for p in result.packages] == [("/usr/lib/sysimage/rpm/rpmdb.sqlite",)]
    assert result.warnings == [
        "rpm: /var/lib/rpm/Packages: not read, /usr/lib/sysimage/rpm/rpmdb.sqlite is used instead"
    ]


def test_cbl_mariner_sqlite_matches_go_rpmdb_golden(corpus_data):
    data = corpus_data.bytes("pkgdb/go-rpmdb/cbl-mariner-2.0/rpmdb.sqlite")
    headers, warnings = read_database("sqlite", data)
    assert warnings == []
    assert len(headers) == 129
    assert sum(len(h.files) for h in headers) == 6298
    # go-rpmdb pkg/testdata/cbl-mariner-2.0/curl.json and curl_file_names.json
    curl = next(h for h in headers if h.name == "curl")
    assert (curl.version, curl.release, curl.epoch, curl.arch) == (
        "7.76.0",
        "6.cm2",
        None,
        "x86_64",
    )
    assert (curl.source_rpm, curl.size) == ("curl-7.76.0-6.cm2.src.rpm", 326023)
    assert curl.files == (
        "/usr/bin/curl",
        "/usr/bin/curl-config",
        "/usr/share/licenses/curl/COPYING",  # the golden also lists the directory above it
        "/usr/share/man/man1/curl-config.1.gz",
        "/usr/share/man/man1/curl.1.gz",
    )
    assert curl.file_sizes == (267672, 7515, 1088, 1763, 47985)
    assert curl.provides == ("curl", "curl(x86-64)")
    assert curl.requires[:4] == ("/bin/sh", "/sbin/ldconfig", "curl-libs", "krb5")
    assert len(curl.requires) == 17  # 21 in the golden, less 3 rpmlib() and a repeat
    assert [h.name for h in headers if h.epoch is not None] == [
        "ca-certificates-tools",
        "ca-certificates-shared",
        "ca-certificates-base",
    ]


def test_sle15_ndb(corpus_data):
    headers, warnings = read_database(
        "ndb", corpus_data.bytes("pkgdb/go-rpmdb/sle15-bci/Packages.db")
    )
    assert warnings == []
    assert len(headers) == 35
    by_name = {h.name: h for h in headers}
    # rows that agree with go-rpmdb's pkg/testdata/sle15-bci/packages.csv
    assert (by_name["bash"].evr, by_name["bash"].size) == ("4.4-19.6.1", 1114706)
    assert (by_name["libpopt0"].evr, by_name["libpopt0"].size) == ("1.16-3.22", 124686)
    assert by_name["libreadline7"].source_rpm == "bash-4.4-19.6.1.src.rpm"
    assert by_name["libreadline7"].source_name == "bash"
    assert headers[0].name == "system-user-root"
    assert headers[-1].name == "rpm-ndb"


def test_libuuid_bdb(corpus_data):
    headers, warnings = read_database("bdb", corpus_data.bytes("pkgdb/go-rpmdb/libuuid/Packages"))
    assert warnings == []
    [h] = headers
    assert (h.name, h.evr, h.arch, h.size, h.source_name) == (
        "libuuid",
        "2.32.1-42.el8_8",
        "x86_64",
        35104,
        "util-linux",
    )
    assert h.files == (
        "/usr/lib/.build-id/df/ef6a880adac817216ab9866779a0725e017647",
        "/usr/lib64/libuuid.so.1",
        "/usr/lib64/libuuid.so.1.3.0",
        "/usr/share/licenses/libuuid/COPYING",
        "/usr/share/licenses/libuuid/COPYING.BSD-3",
    )
    assert h.file_sizes[2] == 33496


def test_epoch_bdb_and_syft_bdb(corpus_data):
    [hello], _ = read_database("bdb", corpus_data.bytes("pkgdb/osv-scalibr/rpm/Packages_epoch"))
    assert (hello.name, hello.evr, hello.files) == ("hello", "1:0.0.1-rls", ("/usr/bin/hello.sh",))
    for rel in (
        "pkgdb/syft/redhat/Packages.bdb",
        "pkgdb/syft/image-pkg-coverage/pkgs/var/lib/rpm/Packages",
    ):
        [dive], warnings = read_database("bdb", corpus_data.bytes(rel))
        assert warnings == []
        assert (dive.name, dive.evr, dive.arch, dive.size, dive.files) == (
            "dive",
            "0.9.2-1",
            "x86_64",
            12406784,
            ("/usr/local/bin/dive",),
        )


def test_image_pkg_coverage_rootfs(corpus_data, make_view):
    result = RpmCataloger().catalog(
        make_view(corpus_data.tree("pkgdb/syft/image-pkg-coverage/pkgs"))
    )
    [dive] = result.packages
    assert dive.purl == "pkg:rpm/dive@0.9.2-1?arch=x86_64"  # this rootfs has no os-release
    assert dive.evidence == ("/var/lib/rpm/Packages",)


def test_blob_with_out_of_range_dirindex(corpus_data):
    # go-rpmdb's blob.bin has DIRINDEXES (0, 1, 2, 4) for four DIRNAMES
    h = parse_header(corpus_data.bytes("pkgdb/go-rpmdb/blob.bin"))
    assert (h.name, h.evr, h.arch) == ("publicsuffix-list-dafsa", "20210518-2.fc35", "noarch")
    assert h.files == ("/usr/share/licenses/publicsuffix-list-dafsa/COPYING",)
    assert h.problems == ("publicsuffix-list-dafsa: 1 file(s) with a dirindex out of range",)


def test_claircore_header_against_golden_file_filter(corpus_data):
    h = parse_header(corpus_data.bytes("pkgdb/claircore/rpm/package.header"))
    assert (h.name, h.evr, h.arch, len(h.files)) == (
        "crypto-policies",
        "20210213-1.git5c710c0.fc34",
        "noarch",
        132,
    )
    # claircore's Info.Files golden keeps only paths matching its filePatterns; for
    # crypto-policies it expects none (null)
    golden = corpus_data.bytes("pkgdb/claircore/rpm/Info.Files.SQLite.txtar").decode()
    want = json.loads(golden.split("-- want.json --", 1)[1])
    patterns = re.compile(
        r"^.*/[^/]+\.jar$|^.*/site-packages/[^/]+\.egg-info/PKG-INFO$|^.*/package.json$"
        r"|^.*/[^/]+\.gemspec$|^/usr/s?bin/[^/]+$|^/usr/libexec/[^/]+/[^/]+$"
    )
    assert [f for f in h.files if patterns.match(f)] == (want["crypto-policies"] or [])
    assert len(want) == 106 and len(want["coreutils"]) == 106


def test_empty_and_tableless_sqlite(corpus_data):
    assert sqlite_blobs(corpus_data.bytes("pkgdb/osv-scalibr/rpm/NEGATIVE-empty.sqlite")) == (
        [],
        ["not an SQLite database (0 bytes)"],
    )
    blobs, warnings = sqlite_blobs(corpus_data.bytes("pkgdb/claircore/rpm/no_packages.sqlite"))
    assert blobs == [] and warnings == ["cannot read the Packages table: no such table: Packages"]


def test_truncated_bdb_keeps_what_it_can(corpus_data):
    data = corpus_data.bytes("pkgdb/go-rpmdb/libuuid/Packages")
    blobs, warnings = bdb_blobs(data[: len(data) // 2])
    assert warnings and "truncated" in warnings[0]
    assert bdb_blobs(b"\0" * 4096) == ([], ["not a BerkeleyDB hash database (bad magic)"])


def test_ndb_with_a_bad_slot_keeps_the_slots_before_it(corpus_data):
    data = bytearray(corpus_data.bytes("pkgdb/go-rpmdb/sle15-bci/Packages.db"))
    data[32 + 16 * 10 : 32 + 16 * 10 + 4] = b"XXXX"  # slot 10
    blobs, warnings = ndb_blobs(bytes(data))
    assert len(blobs) == 10
    assert warnings == ["bad slot magic at slot 10; rest of the slot table ignored"]
    assert ndb_blobs(b"RpmP") == ([], ["too short for an ndb file (4 bytes)"])


def test_truncated_sqlite_warns(corpus_data, make_view):
    data = corpus_data.bytes("pkgdb/go-rpmdb/cbl-mariner-2.0/rpmdb.sqlite")
    result = RpmCataloger().catalog(make_view({"/var/lib/rpm/rpmdb.sqlite": data[:100_000]}))
    assert result.packages == []
    assert result.warnings and result.warnings[0].startswith("rpm: /var/lib/rpm/rpmdb.sqlite:")


def test_committed_rows_still_in_the_wal_are_read(tmp_path, make_view):
    db = tmp_path / "rpmdb.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", (HELLO,))
    conn.commit()
    main, wal = db.read_bytes(), (tmp_path / "rpmdb.sqlite-wal").read_bytes()
    conn.close()
    assert wal  # the rows live only in the WAL at this point
    fs = make_view({"/var/lib/rpm/rpmdb.sqlite": main, "/var/lib/rpm/rpmdb.sqlite-wal": wal})
    assert [p.name for p in RpmCataloger().catalog(fs).packages] == ["hello"]
