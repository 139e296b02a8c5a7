"""Every parser takes arbitrary bytes without raising; mutated real databases included."""

from __future__ import annotations

import contextlib
import io
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgscope.catalog._elf import ElfImage
from imgscope.catalog.apk import parse_installed
from imgscope.catalog.dpkg import parse_status
from imgscope.catalog.gem import parse_gemspec
from imgscope.catalog.golang import read_buildinfo
from imgscope.catalog.java import parse_manifest, parse_pom_properties, scan_archive
from imgscope.catalog.npm import parse_package_json, parse_package_lock
from imgscope.catalog.python import parse_metadata, parse_record
from imgscope.catalog.rpm import HeaderError, bdb_blobs, ndb_blobs, parse_header, sqlite_blobs
from imgscope.catalog.rust import parse_dep_v0

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text shaped like the databases, so the fuzzing reaches past the first line.
database_text = st.lists(
    st.sampled_from(
        [
            "Package: a",
            "Version: 1:2.3-4",
            "Status: install ok installed",
            "Depends: a (>= 1) | b:any, ,",
            "Installed-Size: 9999999999999999999999",
            " continuation",
            "",
            "P:x",
            "V:1",
            "F:usr",
            "R:file",
            "I:\u00b2",
            "s.name = 'x'",
            "Gem::Specification.new do |s|",
            "Name: n",
            "Requires-Dist: y ; extra == 'z'",
            "\x00\xff",
        ]
    )
    | st.text(max_size=40),
    max_size=40,
).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))


@FAST
@given(database_text | st.binary(max_size=2000))
def test_text_parsers_never_raise(data):
    parse_status(data)
    parse_installed(data)
    parse_gemspec(data)
    parse_metadata(data)
    parse_record(data)
    parse_manifest(data)
    parse_pom_properties(data)
    parse_package_json(data)
    parse_package_lock(data)
    parse_dep_v0(data)
    parse_dep_v0(zlib.compress(data))


@FAST
@given(st.binary(max_size=4000))
def test_binary_parsers_never_raise(data):
    with contextlib.suppress(HeaderError):
        parse_header(data)
    bdb_blobs(data)
    ndb_blobs(data)
    sqlite_blobs(data)
    image = ElfImage.parse(io.BytesIO(data))
    if image is not None:
        read_buildinfo(image)
        image.section_data(".dep-v0")
    scan_archive(io.BytesIO(data), "/x.jar")


def _mutations(seed: bytes):
    return st.lists(
        st.tuples(st.integers(0, max(len(seed) - 1, 0)), st.integers(0, 255)), max_size=20
    ).map(lambda edits: _apply(seed, edits))


def _apply(seed: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(seed)
    for pos, value in edits:
        if pos < len(out):
            out[pos] = value
    return bytes(out)


@FAST
@given(st.data())
def test_mutated_real_databases(corpus_data, data):
    header = corpus_data.bytes("pkgdb/go-rpmdb/blob.bin")
    with contextlib.suppress(HeaderError):
        parse_header(data.draw(_mutations(header)))
    bdb_blobs(data.draw(_mutations(corpus_data.bytes("pkgdb/go-rpmdb/libuuid/Packages"))))
    jar = corpus_data.bytes("pkgdb/trivy/java/nested.jar")
    scan_archive(io.BytesIO(data.draw(_mutations(jar))), "/nested.jar")
    go = corpus_data.bytes("bin/go/trivy-go-test.elf")[:200_000]
    image = ElfImage.parse(io.BytesIO(data.draw(_mutations(go))))
    if image is not None:
        read_buildinfo(image)


def test_deeply_nested_json_is_refused_not_raised():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert parse_package_json(deep) is None
    assert parse_package_lock(deep) == ({}, ["not a JSON object"])
    assert parse_dep_v0(zlib.compress(deep))[0] == []


class _ShortReads(io.BytesIO):
    """A file whose size (seek to the end) promises more than its reads give, as a file
    cut while it is read does: section headers come back short by whole rows."""

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        # the section header table (rows of 64 bytes) comes back with its first two rows
        return data[:128] if n and n > 256 and n % 64 == 0 else data


def test_elf_section_headers_cut_short_are_not_an_index_error(corpus_data) -> None:
    go = corpus_data.bytes("bin/go/trivy-go-test.elf")
    full = ElfImage.parse(io.BytesIO(go))
    assert full is not None and full.section(".go.buildinfo") is not None
    cut = ElfImage.parse(_ShortReads(go))  # e_shstrndx (3) past the rows read: no names
    assert cut is not None and cut.section(".go.buildinfo") is None
