from __future__ import annotations

from imgscope.catalog.python import PythonCataloger, parse_metadata, parse_record

SITE = "/usr/local/lib/python3.12/site-packages"

METADATA = b"""Metadata-Version: 2.1
Name: Zope.Interface
Version: 6.1
Summary: Interfaces for Python
Requires-Dist: setuptools
Requires-Dist: typing_extensions (>=4.0) ; python_version < "3.11"
Requires-Dist: Sphinx ; extra == 'docs'
Requires-Dist: coverage>=5.0.3; extra == "test"

Name: Not-A-Header
This is the long description body.
"""

RECORD = (
    b"zope/interface/__init__.py,sha256=abc,3000\n"
    b"zope/interface/_zope_interface_coptimizations.cpython-312-x86_64-linux-gnu.so,sha256=def,"
    b"200000\n"
    b'"zope/interface/odd,name.py",sha256=ghi,10\n'
    b"zope.interface-6.1.dist-info/METADATA,sha256=jkl,500\n"
    b"zope.interface-6.1.dist-info/RECORD,,\n"
    b"../../../bin/zope-tool,sha256=mno,90\n"
)


def test_metadata_headers_stop_at_the_body_and_skip_extras():
    meta = parse_metadata(METADATA)
    assert meta is not None
    assert (meta.name, meta.version) == ("Zope.Interface", "6.1")
    assert meta.requires == ("setuptools", "typing_extensions")


def test_record_rows_and_bad_rows():
    entries, bad = parse_record(RECORD + b"<<<<<<< HEAD\n")
    assert bad == 1
    assert [e.path for e in entries][:3] == [
        "zope/interface/__init__.py",
        "zope/interface/_zope_interface_coptimizations.cpython-312-x86_64-linux-gnu.so",
        "zope/interface/odd,name.py",
    ]
    assert [e.size for e in entries] == [3000, 200000, 10, 500, None, 90]


def test_dist_info_files_are_relative_to_the_site_dir(make_view):
    dist = f"{SITE}/zope.interface-6.1.dist-info"
    fs = make_view(
        {
            f"{dist}/METADATA": METADATA,
            f"{dist}/RECORD": RECORD,
            f"{SITE}/zope/interface/__init__.py": b"x" * 3000,
            f"{SITE}/zope/interface/__pycache__/__init__.cpython-312.pyc": b"p" * 900,
            f"{SITE}/zope/interface/__pycache__/__init__.cpython-312.opt-1.pyc": b"p" * 800,
            f"{SITE}/other/__pycache__/__init__.cpython-312.pyc": b"p",
        }
    )
    result = PythonCataloger().catalog(fs)
    assert result.warnings == []
    [pkg] = result.packages
    assert (pkg.ecosystem, pkg.name, pkg.version) == ("pypi", "Zope.Interface", "6.1")
    assert pkg.purl == "pkg:pypi/zope.interface@6.1"
    assert pkg.files == (
        f"{SITE}/zope/interface/__init__.py",
        # byte-compiled files written after install belong to their source file
        f"{SITE}/zope/interface/__pycache__/__init__.cpython-312.opt-1.pyc",
        f"{SITE}/zope/interface/__pycache__/__init__.cpython-312.pyc",
        f"{SITE}/zope/interface/_zope_interface_coptimizations.cpython-312-x86_64-linux-gnu.so",
        f"{SITE}/zope/interface/odd,name.py",
        f"{dist}/METADATA",
        f"{dist}/RECORD",
        "/usr/local/bin/zope-tool",
    )
    assert pkg.installed_size == 3000 + 200000 + 10 + 500 + 90
    assert pkg.evidence == (f"{dist}/METADATA", f"{dist}/RECORD")
    assert pkg.dependencies == ("setuptools", "typing_extensions")


def test_egg_info_with_installed_files(corpus_data, make_view):
    egg = "/usr/lib/python3/dist-packages/dicttoxml-1.7.4.egg-info"
    fs = make_view(
        {
            f"{egg}/PKG-INFO": b"Metadata-Version: 1.0\nName: dicttoxml\nVersion: 1.7.4\n",
            f"{egg}/installed-files.txt": corpus_data.bytes(
                "pkgdb/syft/python/installed-files.txt"
            ),
            f"{egg}/top_level.txt": b"dicttoxml\n",
        }
    )
    [pkg] = PythonCataloger().catalog(fs).packages
    assert pkg.files == (
        "/usr/lib/python3/dist-packages/__pycache__/dicttoxml.cpython-36.pyc",
        "/usr/lib/python3/dist-packages/dicttoxml.py",
        f"{egg}/PKG-INFO",
        f"{egg}/SOURCES.txt",
        f"{egg}/dependency_links.txt",
        f"{egg}/top_level.txt",
        f"{egg}/installed-files.txt",
    )
    assert pkg.evidence == (f"{egg}/PKG-INFO", f"{egg}/installed-files.txt")


def test_egg_info_with_sources_keeps_what_was_installed(make_view):
    egg = f"{SITE}/six-1.16.0-py3.12.egg-info"
    fs = make_view(
        {
            f"{egg}/PKG-INFO": b"Name: six\nVersion: 1.16.0\n",
            f"{egg}/SOURCES.txt": b"setup.py\nsix.py\nsrc/helper.py\nsix.egg-info/PKG-INFO\n",
            f"{SITE}/six.py": b"six",
            f"{SITE}/helper.py": b"h",
        }
    )
    [pkg] = PythonCataloger().catalog(fs).packages
    assert pkg.files == (
        f"{SITE}/six.py",
        f"{SITE}/helper.py",
        f"{egg}/PKG-INFO",
        f"{egg}/SOURCES.txt",
    )
    assert pkg.evidence == (f"{egg}/PKG-INFO", f"{egg}/SOURCES.txt")


def _syft_site(corpus_data) -> dict[str, bytes]:
    """syft's site-packages fixtures, renamed to the directory names pip writes."""
    renames = {
        "/nested/dist-name/dist-info": "/Pygments-2.6.1.dist-info",
        "/nested/egg-name/egg-info": "/requests-2.22.0.egg-info",
        "/malformed-record/dist-info": "/Flask-1.0.2.dist-info",
        "/uppercase/egg-name/EGG-INFO": "/requests-2.22.0-py3.8.egg/EGG-INFO",
        "/no-version/": "/",
        "/license/": "/",
        "/test/": "/",
    }
    out: dict[str, bytes] = {}
    for path, data in corpus_data.tree("pkgdb/syft/python/site-packages").items():
        if path.startswith("/uppercase/dist-name"):
            continue
        for old, new in renames.items():
            path = path.replace(old, new)
        out["/usr/lib/python3.8/site-packages" + path] = data
    return out


def test_syft_site_packages(corpus_data, make_view):
    site = "/usr/lib/python3.8/site-packages"
    files = _syft_site(corpus_data)
    files[f"{site}/pygments/__pycache__/util.cpython-38.pyc"] = b"pyc"
    result = PythonCataloger().catalog(make_view(files))
    found = sorted((p.name, p.version, p.evidence[0].rpartition("/")[2]) for p in result.packages)
    assert found == [
        ("Pygments", "2.6.1", "METADATA"),  # Flask-1.0.2.dist-info (syft's METADATA is Pygments)
        ("Pygments", "2.6.1", "METADATA"),
        ("Pygments", "2.6.1", "METADATA"),
        ("Pygments", "2.6.1", "METADATA"),
        ("Pygments", "2.6.1", "METADATA"),
        ("no-version", "", "no-version-py3.8.egg-info"),
        ("requests", "2.22.0", "PKG-INFO"),
        ("requests", "2.22.0", "PKG-INFO"),
        ("requests", "2.22.0", "test.egg-info"),
    ]
    pyg = next(p for p in result.packages if "/Pygments-2.6.1.dist-info/" in p.evidence[0])
    assert pyg.files[0] == "/usr/bin/pygmentize"
    assert f"{site}/pygments/__pycache__/util.cpython-38.pyc" in pyg.files
    assert pyg.installed_size == 220 + 8449 + 8449 + 10778 + 10778
    assert pyg.dependencies == ("soupsieve",)
    flask = next(p for p in result.packages if "/Flask-1.0.2.dist-info/" in p.evidence[0])
    assert "/usr/lib/Scripts/flask.exe" in flask.files  # "../../Scripts/flask.exe"
    assert sorted(result.warnings) == [
        f"python: {site}/Flask-1.0.2.dist-info/RECORD: 4 malformed row(s) ignored",
        f"python: {site}/no-version-py3.8.egg-info: no-version has no Version",
    ]


def test_trivy_metadata_files(corpus_data):
    def meta(rel: str):
        return parse_metadata(corpus_data.bytes(f"pkgdb/trivy/python/{rel}"))

    asyncssh = meta("packaging-parser/asyncssh-2.14.2.METADATA")
    assert (asyncssh.name, asyncssh.version) == ("asyncssh", "2.14.2")
    assert asyncssh.requires == ("cryptography", "typing-extensions")
    assert meta("packaging-parser/networkx-3.0.METADATA").requires == ()  # all behind extras
    unidecode = meta("packaging-parser/unidecode-egg-info.PKG-INFO")
    assert (unidecode.name, unidecode.version) == ("Unidecode", "0.4.1")
    egg = meta("packaging-parser/distlib-0.3.1-py3.9.egg-info")
    assert (egg.name, egg.version) == ("distlib", "0.3.1")
    assert meta("packaging-parser/invalid.json") is None
    setuptools = meta(
        "packaging-analyzer/classifier-license-egg/setuptools-51.3.3.egg-info/PKG-INFO"
    )
    assert (setuptools.name, setuptools.version) == ("setuptools", "51.3.3")
    typing = meta("packaging-analyzer/license-file-dist/typing_extensions-4.4.0.dist-info/METADATA")
    assert (typing.name, typing.version) == ("typing_extensions", "4.4.0")


def test_trivy_analyzer_trees(corpus_data, make_view):
    files = {
        f"{SITE}{path}": data
        for path, data in corpus_data.tree("pkgdb/trivy/python/packaging-analyzer").items()
        if path.count("/") == 3
    }
    # each case dir is its own site dir here
    result = PythonCataloger().catalog(make_view(files))
    assert sorted((p.name, p.version) for p in result.packages) == [
        ("distlib", "0.3.1"),
        ("distlib", "0.3.1"),
        ("setuptools", "51.3.3"),
        ("setuptools", "51.3.3"),
        ("typing_extensions", "4.4.0"),
    ]
    typing = next(p for p in result.packages if p.name == "typing_extensions")
    assert typing.purl == "pkg:pypi/typing-extensions@4.4.0"
    assert f"{SITE}/license-file-dist/typing_extensions-4.4.0.dist-info/LICENSE.txt" in typing.files


def test_python_stdlib_egg_info_file(corpus_data, make_view):
    data = corpus_data.bytes("pkgdb/syft/python/Python-2.7.egg-info")
    [pkg] = (
        PythonCataloger()
        .catalog(make_view({"/usr/lib/python2.7/Python-2.7.egg-info": data}))
        .packages
    )
    assert (pkg.name, pkg.version, pkg.files) == (
        "Python",
        "2.7.13",
        ("/usr/lib/python2.7/Python-2.7.egg-info",),
    )


def test_metadata_without_name_is_skipped_with_a_warning(make_view):
    fs = make_view({f"{SITE}/x-1.dist-info/METADATA": b"\xff\xfe garbage \x00\n"})
    result = PythonCataloger().catalog(fs)
    assert result.packages == []
    assert result.warnings == [f"python: {SITE}/x-1.dist-info/METADATA: no Name field, skipped"]
