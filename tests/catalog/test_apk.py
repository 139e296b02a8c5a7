from __future__ import annotations

from imgscope.catalog.apk import ApkCataloger, parse_installed

DB = b"""C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
o:musl
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1xyz=
R:libc.musl-x86_64.so.1

P:busybox
V:1.36.1-r5
A:aarch64
I:962560
o:busybox
D:so:libc.musl-x86_64.so.1 musl>=1.2 !busybox-extras
p:/bin/sh cmd:busybox=1.36.1-r5 cmd:sh=1.36.1-r5
F:bin
R:busybox
F:etc/network
R:if-up.d
F:usr/share/udhcpc
R:default.script
"""


def test_parse_fields_files_and_dependencies():
    records, warnings = parse_installed(DB)
    assert warnings == []
    musl, busybox = records
    assert (musl.name, musl.version, musl.arch, musl.origin, musl.installed_size) == (
        "musl",
        "1.2.4-r2",
        "x86_64",
        "musl",
        622592,
    )
    assert musl.files == ("/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1")
    # version constraints are cut off, "!name" conflicts are not dependencies
    assert busybox.depends == ("so:libc.musl-x86_64.so.1", "musl")
    assert busybox.provides == ("/bin/sh", "cmd:busybox", "cmd:sh")
    assert busybox.files == (
        "/bin/busybox",
        "/etc/network/if-up.d",
        "/usr/share/udhcpc/default.script",
    )


def test_catalog_purl_and_evidence(make_view):
    fs = make_view(
        {
            "/lib/apk/db/installed": DB,
            "/etc/os-release": b"ID=alpine\nVERSION_ID=3.19.1\n",
            "/lib/ld-musl-x86_64.so.1": b"\x7fELF",
        }
    )
    result = ApkCataloger().catalog(fs)
    musl, busybox = result.packages
    assert musl.purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
    assert busybox.purl == "pkg:apk/alpine/busybox@1.36.1-r5?arch=aarch64&distro=alpine-3.19.1"
    assert musl.evidence == ("/lib/apk/db/installed",)
    assert musl.source == "musl"
    assert musl.installed_size == 622592
    assert musl.files == ("/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1")


def test_usr_lib_copy_of_the_same_database_is_read_once(make_view):
    fs = make_view({"/lib/apk/db/installed": DB, "/usr/lib/apk/db/installed": DB})
    assert [p.name for p in ApkCataloger().catalog(fs).packages] == ["musl", "busybox"]


def test_syft_single(corpus_data):
    [rec], warnings = parse_installed(corpus_data.bytes("pkgdb/syft/alpine/single"))
    assert warnings == []
    assert (rec.name, rec.version, rec.origin, rec.installed_size) == (
        "musl-utils",
        "1.1.24-r2",
        "musl",
        151552,
    )
    assert rec.files == (
        "/sbin/ldconfig",
        "/usr/bin/iconv",
        "/usr/bin/ldd",
        "/usr/bin/getconf",
        "/usr/bin/getent",
    )
    assert rec.depends == ("scanelf", "so:libc.musl-x86_64.so.1")
    assert rec.provides == ("cmd:getconf", "cmd:getent", "cmd:iconv", "cmd:ldconfig", "cmd:ldd")


def test_syft_multiple_2(corpus_data):
    records, _ = parse_installed(
        corpus_data.bytes("pkgdb/syft/alpine/multiple-2/lib/apk/db/installed")
    )
    assert len(records) == 14
    busybox = next(r for r in records if r.name == "busybox")
    assert busybox.version == "1.35.0-r17"
    assert busybox.files == (
        "/bin/busybox",
        "/bin/sh",
        "/etc/securetty",
        "/etc/udhcpd.conf",
        "/etc/logrotate.d/acpid",
        "/etc/network/if-up.d/dad",
        "/usr/share/udhcpc/default.script",
    )
    assert busybox.provides == ("/bin/sh", "cmd:busybox", "cmd:sh")
    libcrypto = next(r for r in records if r.name == "libcrypto1.1")
    assert (libcrypto.version, libcrypto.origin, len(libcrypto.files)) == (
        "1.1.1q-r0",
        "openssl",
        12,
    )


def test_syft_other_fixtures(corpus_data):
    def parse(rel: str):
        return parse_installed(corpus_data.bytes(f"pkgdb/syft/alpine/{rel}"))

    [base], _ = parse("base")
    assert (base.name, base.version, len(base.files)) == ("alpine-baselayout", "3.2.0-r6", 27)
    multiple, _ = parse("multiple-1/lib/apk/db/installed")
    assert [(r.name, r.version) for r in multiple] == [
        ("bash", "5.2.21-r0"),
        ("busybox-binsh", "1.36.1-r15"),
        ("musl", "1.2.4_git20230717-r4"),
        ("readline", "8.2.1-r2"),
    ]
    [empty_deps], _ = parse("empty-deps-and-provides")
    assert (empty_deps.depends, empty_deps.provides, len(empty_deps.files)) == ((), (), 15)
    [jre], _ = parse("extra-file-attributes")
    assert jre.files == ("/usr/lib/jvm/java-1.8-openjdk/bin/policytool",)


def test_corrupt_and_bogus_databases_warn_and_keep_the_rest(corpus_data):
    records, warnings = parse_installed(
        corpus_data.bytes("pkgdb/syft/alpine/corrupt/lib/apk/db/installed")
    )
    assert [(r.name, r.version) for r in records] == [("alpine-baselayout-data", "3.2.0-r22")]
    assert warnings == ["installed: 1 line(s) are not 'X:value' and were ignored"]
    records, warnings = parse_installed(
        corpus_data.bytes("pkgdb/syft/alpine/glob-paths/lib/apk/db/installed")
    )
    assert records == [] and len(warnings) == 1


def test_trivy_installed(corpus_data):
    records, warnings = parse_installed(corpus_data.bytes("pkgdb/trivy/apk-installed"))
    assert len(records) == 15
    assert warnings == ["installed: 1 stanza(s) without P: or V:: invalidPackageWithoutAVersion"]
    test = next(r for r in records if r.name == "test")
    assert (test.version, test.origin) == ("2.9.11_pre20061021-r2", "test-parent")
    assert records[0].name == "musl" and records[0].version == "1.1.14-r10"


def test_osv_variants(corpus_data):
    def parse(rel: str):
        return parse_installed(corpus_data.bytes(f"pkgdb/osv-scalibr/apk/{rel}"))

    installed, warnings = parse("installed")
    assert warnings == [] and len(installed) == 15
    assert {r.name: r.version for r in installed}["busybox"] == "1.36.0-r9"
    assert sum(len(r.files) for r in installed) == 109  # the R: lines of the file
    [different] = parse("different-arch")[0]
    assert different.arch == "noarch"
    [no_origin] = parse("no-origin")[0]
    assert (no_origin.name, no_origin.origin, no_origin.installed_size) == ("pkgname", None, None)
    assert parse("empty") == ([], [])
    assert parse("invalid")[0] == [] and parse("invalid")[1]


def test_image_pkg_coverage(corpus_data, make_view):
    fs = make_view(corpus_data.tree("pkgdb/syft/image-pkg-coverage"))
    result = ApkCataloger().catalog(fs)
    assert [(p.name, p.version) for p in result.packages] == [
        ("libc-utils", "0.7.2-r0"),
        ("musl-utils", "1.1.24-r2"),
    ]
    assert result.packages[1].purl.startswith("pkg:apk/")


def test_garbage_does_not_raise(make_view):
    fs = make_view({"/lib/apk/db/installed": bytes(range(256)) * 10})
    assert ApkCataloger().catalog(fs).packages == []
