from __future__ import annotations

import pytest

from imgscope.catalog.base import compile_patterns
from imgscope.catalog.registry import all_catalogers


def test_one_of_each_ecosystem():
    names = [c.name for c in all_catalogers()]
    assert names == ["dpkg", "apk", "rpm", "python", "npm", "gem", "java", "golang", "rust"]
    assert [c.name for c in all_catalogers() if c.wants_executables] == ["golang", "rust"]


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/status.d/libssl3",
        "/var/lib/dpkg/info/libc6:amd64.list",
        "/var/lib/dpkg/info/tar.md5sums",
        "/lib/apk/db/installed",
        "/var/lib/rpm/Packages",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite-wal",
        "/var/lib/rpm/Packages.db",
        "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD",
        "/usr/lib/python3.11/site-packages/pip-23.0.egg-info/PKG-INFO",
        "/usr/lib/python2.7/Python-2.7.egg-info",
        "/app/node_modules/@s/b/package.json",
        "/app/package-lock.json",
        "/app/node_modules/.package-lock.json",
        "/usr/local/bundle/specifications/rake-13.0.3.gemspec",
        "/opt/app/app.war",
        "/opt/java/openjdk/release",
        "/etc/os-release",
    ],
)
def test_union_of_patterns_keeps_every_database(path):
    union = compile_patterns(p for c in all_catalogers() for p in c.content_patterns)
    assert union is not None and union.match(path)


@pytest.mark.parametrize(
    "path", ["/usr/bin/ls", "/usr/share/doc/libc6/copyright", "/app/src/index.js", "/etc/passwd"]
)
def test_union_of_patterns_skips_ordinary_files(path):
    union = compile_patterns(p for c in all_catalogers() for p in c.content_patterns)
    assert union is not None and not union.match(path)


def test_every_cataloger_on_the_syft_coverage_rootfs(corpus_data, make_view):
    files = corpus_data.tree("pkgdb/syft/image-pkg-coverage/pkgs")
    files["/etc/os-release"] = corpus_data.bytes("pkgdb/syft/image-pkg-coverage/etc/os-release")
    fs = make_view(files)
    found = {}
    for cataloger in all_catalogers():
        result = cataloger.catalog(fs)
        found[cataloger.name] = sorted((p.name, p.version) for p in result.packages)
    assert found["dpkg"] == [("apt", "1.8.2"), ("dash", "0.5.8-2.4"), ("netbase", "5.4")]
    assert found["apk"] == [("libc-utils", "0.7.2-r0"), ("musl-utils", "1.1.24-r2")]
    assert found["rpm"] == [("dive", "0.9.2-1")]
    assert ("org.anchore:example-java-app-maven", "0.1.0") in found["java"]
    assert ("io.jenkins.plugins:example-jenkins-plugin", "1.0-SNAPSHOT") in found["java"]
    assert found["gem"] == [("bundler", "2.1.4"), ("unbundler", "3.1.4")]
    assert found["python"] == [("someotherpkg", "3.19.0"), ("somerequests", "3.22.0")]
    assert found["golang"] == [] and found["rust"] == []
