from __future__ import annotations

import time

from imgscope.catalog.base import FileInfo
from imgscope.catalog.dpkg import (
    DpkgCataloger,
    parse_file_list,
    parse_installed_size,
    parse_md5sums,
    parse_relations,
    parse_status,
)

STATUS = b"""Package: libc6
Status: install ok installed
Installed-Size: 12345
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc (2.36-9)
Version: 2.36-9+deb12u1
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 Second paragraph.

Package: coreutils
Essential: yes
Status: install ok installed
Installed-Size: 20272
Architecture: amd64
Version: 9.1-1
Pre-Depends: libacl1 (>= 2.2.23), libc6 (>= 2.34) | libc6.1:any [!amd64]
Provides: sha256sum (= 9.1), md5sum
Conffiles:
 /etc/coreutils.conf 0123456789abcdef0123456789abcdef

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: broken
Status: install reinstreq half-installed
Architecture: all
Version: 2.0
"""

LIBC_LIST = (
    b"/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n"
    b"/usr/share/doc/libc6/copyright\n"
)


def _image(make_view, extra: dict[str, bytes] | None = None):
    files = {
        "/var/lib/dpkg/status": STATUS,
        "/var/lib/dpkg/info/libc6:amd64.list": LIBC_LIST,
        "/var/lib/dpkg/info/coreutils.list": b"/.\n/bin\n/bin/ls\n/usr/bin/sha256sum\n",
        "/var/lib/dpkg/info/coreutils.md5sums": b"d41d8cd98f00b204e9800998ecf8427e  bin/ls\n",
        "/lib/x86_64-linux-gnu/libc.so.6": b"\x7fELF",
        "/usr/bin/ls": b"ls",
        "/usr/bin/sha256sum": b"sum",
        "/etc/os-release": b'ID=debian\nVERSION_ID="12"\n',
        **(extra or {}),
    }
    # usr-merge: /bin is a symlink to usr/bin, so dpkg's "/bin/ls" lives at /usr/bin/ls
    link = FileInfo("/bin", "symlink", 0, 0o777, 0, link_target="usr/bin")
    return make_view(files, infos=[link])


def test_relations_keep_every_alternative_and_drop_versions_and_qualifiers():
    assert parse_relations("a (>= 1) | b:any, c [i386], d:amd64 (<< 2~), ") == ("a", "b", "c", "d")
    assert parse_relations("kernel-headers-2.2.10 [!hurd-i386],\n hurd-dev [hurd-i386]") == (
        "kernel-headers-2.2.10",
        "hurd-dev",
    )
    assert parse_relations("") == ()


def test_installed_size_is_kib_and_honours_units():
    assert parse_installed_size("4064") == 4064 * 1024
    assert parse_installed_size("4KB") == 4000
    assert parse_installed_size("lots") is None


def test_file_lists():
    assert parse_file_list(LIBC_LIST) == [
        "/lib",
        "/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/share/doc/libc6/copyright",
    ]
    assert parse_md5sums(b"abc  usr/bin/x\nbad line\n0f  /etc/y\n") == ["/usr/bin/x", "/etc/y"]


def test_status_records():
    records, warnings = parse_status(STATUS)
    assert warnings == []
    assert [r.name for r in records] == ["libc6", "coreutils", "removed", "broken"]
    libc, core = records[0], records[1]
    assert (libc.version, libc.arch, libc.source, libc.source_version) == (
        "2.36-9+deb12u1",
        "amd64",
        "glibc",
        "2.36-9",
    )
    assert libc.installed_size == 12345 * 1024
    assert core.pre_depends == ("libacl1", "libc6", "libc6.1")
    assert core.provides == ("sha256sum", "md5sum")
    assert core.conffiles == ("/etc/coreutils.conf",)
    assert records[2].state == "config-files"
    assert records[3].state == "half-installed"


def test_catalog_installed_packages_with_files(make_view):
    result = DpkgCataloger().catalog(_image(make_view))
    by_name = {p.name: p for p in result.packages}
    assert sorted(by_name) == ["broken", "coreutils", "libc6"]  # config-files is not installed
    libc = by_name["libc6"]
    # the multi-arch list "libc6:amd64.list" is found; directories are not claimed
    assert libc.files == ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/share/doc/libc6/copyright")
    assert libc.evidence == ("/var/lib/dpkg/status", "/var/lib/dpkg/info/libc6:amd64.list")
    assert libc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12"
    assert libc.source == "glibc"
    core = by_name["coreutils"]
    # "/bin/ls" resolves through the /bin symlink; the conffile is kept though missing
    assert core.files == ("/usr/bin/ls", "/usr/bin/sha256sum", "/etc/coreutils.conf")
    assert core.dependencies == ("libacl1", "libc6", "libc6.1")
    assert core.installed_size == 20272 * 1024
    assert any("broken is half-installed" in w for w in result.warnings)


def test_vcpkg_status_in_the_dpkg_path_is_rejected(corpus_data, make_view):
    data = corpus_data.bytes("pkgdb/claircore/dpkg/vcpkg.status")
    records, warnings = parse_status(data)
    assert records == []
    assert "vcpkg" in warnings[0]
    # even copied to the real path it yields no Debian package
    result = DpkgCataloger().catalog(make_view({"/var/lib/dpkg/status": data}))
    assert result.packages == []
    # and at its own path it is never read
    assert (
        DpkgCataloger().catalog(make_view({"/vcpkg/installed/vcpkg/status": data})).packages == []
    )


def test_texlive_status(corpus_data):
    records, warnings = parse_status(corpus_data.bytes("pkgdb/claircore/dpkg/texlive.status"))
    assert warnings == []
    assert len(records) == 357
    by_name = {r.name: r for r in records}
    assert by_name["texlive-base"].version == "2017.20180305-1"
    assert by_name["texlive-base"].installed_size == 51916 * 1024
    assert by_name["libc6"].source == "glibc"
    assert by_name["perl-base"].version == "5.26.1-6ubuntu0.3"
    assert sum(1 for r in records if r.source) == 288


def test_postgresql_source_with_version(corpus_data):
    records, _ = parse_status(corpus_data.bytes("pkgdb/claircore/dpkg/postgresql.status"))
    assert [(r.name, r.source, r.source_version) for r in records] == [
        ("postgresql-client", "postgresql-common", "200+deb10u5"),
        ("postgresql-client-11", "postgresql-11", None),
        ("postgresql-client-common", "postgresql-common", None),
    ]
    assert records[1].provides == ("postgresql-client",)
    assert records[1].depends[:2] == ("libpq5", "postgresql-client-common")


def test_debian_only(corpus_data):
    records, _ = parse_status(corpus_data.bytes("pkgdb/claircore/dpkg/debian-only.status"))
    assert len(records) == 1


def test_trivy_valid_status(corpus_data, make_view):
    files = corpus_data.txtar("pkgdb/trivy/dpkg/valid.txtar")
    result = DpkgCataloger().catalog(make_view(files))
    assert result.warnings == []
    assert len(result.packages) == 90  # 91 stanzas, one "deinstall ok config-files"
    names = {p.name: p for p in result.packages}
    assert names["fdisk"].version == "2.31.1-0.4ubuntu3.1"
    assert names["libpam-runtime"].arch == "all"


def test_trivy_md5sums_give_files_when_no_list(corpus_data, make_view):
    result = DpkgCataloger().catalog(make_view(corpus_data.txtar("pkgdb/trivy/dpkg/md5sums.txtar")))
    [tar] = result.packages
    assert (tar.name, tar.version, len(tar.files)) == ("tar", "1.29b-2", 13)
    assert tar.evidence[-1] == "/var/lib/dpkg/info/tar.md5sums"
    assert tar.files[0] == "/usr/bin/tar"
    assert tar.files[-1] == "/usr/share/man/man8/rmt-tar.8.gz"


def test_trivy_corrupt_status_keeps_the_good_packages(corpus_data, make_view):
    result = DpkgCataloger().catalog(
        make_view(corpus_data.txtar("pkgdb/trivy/dpkg/corrupsed.txtar"))
    )
    assert [(p.name, p.version) for p in result.packages] == [
        ("libpam-runtime", "1.1.8-3.1ubuntu3"),
        ("libpam-modules-bin", "1.1.8-3.1ubuntu3"),
        ("makedev", "2.3.1-93ubuntu1"),
        ("libgcc1", "1:5.1.1-12ubuntu1"),
    ]
    assert any("invalidpkg" in w for w in result.warnings)
    assert any("brokenPackageWithNoVersionThatShouldGetThrownOut" in w for w in result.warnings)


def test_trivy_third_party_and_only_apt(corpus_data, make_view):
    third = DpkgCataloger().catalog(
        make_view(corpus_data.txtar("pkgdb/trivy/dpkg/third-party.txtar"))
    )
    assert [(p.name, p.version) for p in third.packages] == [
        ("docker-ce", "5:20.10.7~3-0~debian-buster"),
        ("apt", "1.6.3ubuntu0.1"),
    ]
    apt = DpkgCataloger().catalog(make_view(corpus_data.txtar("pkgdb/trivy/dpkg/only-apt.txtar")))
    [pkg] = apt.packages
    assert pkg.provides == ("apt-transport-https",)
    assert pkg.files[0] == "/etc/apt/apt.conf.d/01-vendor-ubuntu"  # from Conffiles
    assert len(pkg.files) == 5


def test_syft_dpkg_rootfs(corpus_data, make_view):
    result = DpkgCataloger().catalog(
        make_view(corpus_data.tree("pkgdb/syft/debian/image-dpkg-rootfs"))
    )
    [pam] = result.packages
    assert (pam.name, pam.version, pam.source) == ("libpam-runtime", "1.1.8-3.6", "pam")
    assert pam.purl == "pkg:deb/debian/libpam-runtime@1.1.8-3.6?arch=all&distro=debian-12"
    assert pam.files == (
        "/lib/x86_64-linux-gnu/libz.so.1.2.11",
        "/usr/share/doc/zlib1g/changelog.Debian.gz",
        "/usr/share/doc/zlib1g/changelog.gz",
        "/usr/share/doc/zlib1g/copyright",
        "/etc/pam.conf",
        "/etc/pam.d/other",
    )
    assert pam.evidence == (
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/info/libpam-runtime.md5sums",
        "/var/lib/dpkg/info/libpam-runtime.conffiles",
    )
    assert pam.dependencies == ("debconf", "debconf-2.0", "cdebconf", "libpam-modules")
    assert len(result.warnings) == 1  # the empty "Package:" stanza


def test_syft_distroless_status_d(corpus_data, make_view):
    result = DpkgCataloger().catalog(
        make_view(corpus_data.tree("pkgdb/syft/debian/image-distroless-rootfs"))
    )
    [pkg] = result.packages
    assert (pkg.name, pkg.version, pkg.arch, pkg.source) == (
        "libsqlite3-0",
        "3.34.1-3",
        "arm64",
        "sqlite3",
    )
    assert pkg.files[0] == "/usr/lib/aarch64-linux-gnu/libsqlite3.so.0.8.6"
    assert len(pkg.files) == 6
    assert pkg.evidence == (
        "/var/lib/dpkg/status.d/libsqlite3-0",
        "/var/lib/dpkg/status.d/libsqlite3-0.md5sums",
    )
    assert pkg.installed_size == 1490 * 1024
    assert result.warnings == []


def test_osv_status_d_with_deinstalled_stanza(corpus_data, make_view):
    files = corpus_data.tree("pkgdb/osv-scalibr/dpkg/status.d", "/var/lib/dpkg/status.d")
    result = DpkgCataloger().catalog(make_view(files))
    [foo] = result.packages
    assert (foo.name, foo.version, len(foo.files)) == ("foo", "1.2.3", 6)
    assert "/usr/share/base-files/motd" in foo.files


def test_osv_status_field_variants(corpus_data, make_view):
    data = corpus_data.bytes("pkgdb/osv-scalibr/dpkg/statusfield")
    result = DpkgCataloger().catalog(make_view({"/var/lib/dpkg/status": data}))
    assert [p.name for p in result.packages] == [
        "wantinstall_installed",
        "wantdeinstall_installed",
        "wantinstall_unpacked",
        "wantpurge_installed",
        "wantinstall_halfinstalled",
        "wantnostatus",
    ]
    assert len([w for w in result.warnings if "files may be incomplete" in w]) == 2
    unpacked = DpkgCataloger().catalog(
        make_view(
            {"/var/lib/dpkg/status": b"Package: u\nStatus: install ok unpacked\nVersion: 1\n"}
        )
    )
    assert [p.name for p in unpacked.packages] == ["u"]
    assert "unpacked" in unpacked.warnings[0]


def test_osv_variants(corpus_data):
    def names(rel: str) -> list[str]:
        return [r.name for r in parse_status(corpus_data.bytes(f"pkgdb/osv-scalibr/dpkg/{rel}"))[0]]

    assert names("empty") == []
    assert names("invalid") == []
    assert parse_status(corpus_data.bytes("pkgdb/osv-scalibr/dpkg/invalid"))[1]
    assert names("nopackage") == ["foo", "bar"]
    assert names("noversion") == ["foo", "bar"]
    assert names("single") == ["acl"]
    assert names("trailingnewlines") == ["acl"]
    assert names("transitional") == ["iceweasel"]
    assert names("transitional_dummy") == ["git-core"]
    assert names("transitional_empty") == ["runit-systemd"]
    assert names("valid") == [
        "accountsservice",
        "acl",
        "adduser",
        "admin-session",
        "attr",
        "libacl1",
        "util-linux-extra",
    ]


def test_syft_status_variants(corpus_data):
    def parse(rel: str):
        return parse_status(corpus_data.bytes(f"pkgdb/syft/debian/status.d-variants/{rel}"))

    records, warnings = parse("corrupt")
    assert records == [] and warnings
    assert parse("empty")[0] == []
    [apt] = parse("installed-size-4KB")[0]
    assert apt.installed_size == 4000
    multiple, _ = parse("multiple")
    assert [r.name for r in multiple] == ["tzdata", "util-linux"]
    deinstall, _ = parse("deinstall")
    assert [r.state for r in deinstall] == ["installed", "config-files"]
    doc, _ = parse("doc-examples")
    made_up_2 = next(r for r in doc if r.name == "made-up-package-2")
    assert made_up_2.depends == ("libluajit5.1-dev", "liblua5.1-dev")
    coreutils = parse("coreutils-relationships")[0][0]
    assert coreutils.pre_depends == ("libacl1", "libattr1", "libc6", "libgmp10", "libselinux1")


def test_syft_single_and_virtual_only_stanzas(corpus_data):
    [apt], warnings = parse_status(corpus_data.bytes("pkgdb/syft/debian/status.d-variants/single"))
    assert warnings == []
    assert (apt.name, apt.version, apt.source) == ("apt", "1.8.2", "apt-dev")
    assert apt.installed_size == 4064 * 1024
    assert apt.conffiles == (
        "/etc/apt/apt.conf.d/01autoremove",
        "/etc/cron.daily/apt-compat",
        "/etc/kernel/postinst.d/apt-auto-removal",
        "/etc/logrotate.d/apt",
    )
    records, warnings = parse_status(
        corpus_data.bytes("pkgdb/syft/debian/status.d-variants/libpam-runtime")
    )
    assert [(r.name, r.version) for r in records] == [("libpam-runtime", "1.5.2-6+deb12u1")]
    assert records[0].depends == (
        "debconf1",
        "debconf-2.0",
        "debconf2",
        "cdebconf",
        "libpam-modules",
    )
    assert warnings == [
        "status: 5 stanza(s) without Package or Version: "
        "debconf1, debconf2, debconf-2.0, cdebconf, libpam-modules"
    ]


def test_syft_info_files(corpus_data):
    assert parse_md5sums(corpus_data.bytes("pkgdb/syft/debian/info/zlib1g.md5sums")) == [
        "/lib/x86_64-linux-gnu/libz.so.1.2.11",
        "/usr/share/doc/zlib1g/changelog.Debian.gz",
        "/usr/share/doc/zlib1g/changelog.gz",
        "/usr/share/doc/zlib1g/copyright",
    ]
    assert parse_file_list(corpus_data.bytes("pkgdb/syft/debian/info/util-linux.conffiles")) == [
        "/etc/default/hwclock",
        "/etc/init.d/hwclock.sh",
        "/etc/pam.d/runuser",
        "/etc/pam.d/runuser-l",
        "/etc/pam.d/su",
        "/etc/pam.d/su-l",
    ]


def test_trivy_digest_status_ignores_available(corpus_data, make_view):
    files = corpus_data.txtar("pkgdb/trivy/dpkg/digest.txtar")
    assert "/var/lib/dpkg/available" in files  # apt's list of installable packages: not read
    result = DpkgCataloger().catalog(make_view(files))
    assert [(p.name, p.version) for p in result.packages] == [
        ("sed", "4.4-2"),
        ("tar", "1.34+dfsg-1"),
    ]


def test_image_pkg_coverage_rootfs(corpus_data, make_view):
    result = DpkgCataloger().catalog(
        make_view(corpus_data.tree("pkgdb/syft/image-pkg-coverage/pkgs"))
    )
    assert [(p.name, p.version) for p in result.packages] == [
        ("apt", "1.8.2"),
        ("dash", "0.5.8-2.4"),
        ("netbase", "5.4"),
    ]
    assert result.packages[1].evidence == ("/var/lib/dpkg/status.d/dash",)


def test_no_database_no_packages(make_view):
    result = DpkgCataloger().catalog(make_view({"/etc/passwd": b"root:x:0:0::/root:/bin/sh\n"}))
    assert result.packages == [] and result.warnings == []


def test_garbage_bytes_do_not_raise(make_view):
    junk = bytes(range(256)) * 40
    result = DpkgCataloger().catalog(make_view({"/var/lib/dpkg/status": junk}))
    assert result.packages == []


def test_real_sized_database_parses_fast(make_view):
    # ~500 packages and 40k listed files, the size of a real Debian image with build tools
    stanzas = []
    files: dict[str, bytes] = {}
    for i in range(500):
        stanzas.append(
            f"Package: pkg{i}\nStatus: install ok installed\nInstalled-Size: {i}\n"
            f"Architecture: amd64\nVersion: 1.{i}-1\nDepends: libc6 (>= 2.36), pkg{i + 1} | other\n"
            "Description: a package\n long text\n .\n more\n"
        )
        listing = "/.\n/usr\n/usr/lib\n" + "".join(f"/usr/lib/pkg{i}/f{j}.so\n" for j in range(80))
        files[f"/var/lib/dpkg/info/pkg{i}.list"] = listing.encode()
    files["/var/lib/dpkg/status"] = "\n".join(stanzas).encode()
    fs = make_view(files, dirs=["/usr", "/usr/lib"])
    start = time.perf_counter()
    result = DpkgCataloger().catalog(fs)
    elapsed = time.perf_counter() - start
    assert len(result.packages) == 500
    assert sum(len(p.files) for p in result.packages) == 40_000
    assert elapsed < 0.5, f"{elapsed:.3f}s"  # ~0.05 s here; generous for slow CI machines
