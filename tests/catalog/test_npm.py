from __future__ import annotations

import json

from imgscope.catalog.npm import (
    NpmCataloger,
    package_root,
    parse_package_json,
    parse_package_lock,
)


def pj(name: str, version: str, **deps: str) -> bytes:
    return json.dumps({"name": name, "version": version, "dependencies": deps}).encode()


def test_package_root_is_after_the_last_node_modules():
    assert package_root("/app/node_modules/a/lib/x.js") == "/app/node_modules/a"
    assert package_root("/app/node_modules/@s/b/index.js") == "/app/node_modules/@s/b"
    assert (
        package_root("/app/node_modules/a/node_modules/c/c.js")
        == "/app/node_modules/a/node_modules/c"
    )
    assert package_root("/app/node_modules/.bin/tsc") is None
    assert package_root("/app/node_modules/.package-lock.json") is None
    assert package_root("/app/node_modules/@s/loose") is None
    assert package_root("/app/src/index.js") is None


def test_installed_tree_with_nested_and_scoped_packages(make_view):
    lock = {
        "name": "app",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app", "version": "1.0.0"},
            "node_modules/a": {"version": "1.0.0", "dependencies": {"c": "^2", "opt": "*"}},
            "node_modules/a/node_modules/c": {"version": "2.0.0"},
            "node_modules/@s/b": {"version": "3.1.4", "dev": True},
            "node_modules/ghost": {"version": "9.9.9"},
        },
    }
    fs = make_view(
        {
            "/app/package.json": pj("app", "1.0.0", a="^1"),
            "/app/package-lock.json": json.dumps(lock).encode(),
            "/app/node_modules/a/package.json": pj("a", "1.0.0", c="^2"),
            "/app/node_modules/a/index.js": b"module.exports = 1",
            "/app/node_modules/a/node_modules/c/package.json": pj("c", "2.0.0"),
            "/app/node_modules/a/node_modules/c/c.js": b"c" * 50,
            "/app/node_modules/@s/b/package.json": pj("@s/b", "3.1.4"),
            "/app/node_modules/@s/b/dist/b.min.js": b"b" * 70,
            "/app/node_modules/.bin/a": b"#!/usr/bin/env node",
            "/app/node_modules/nojson/readme.md": b"no manifest",
        }
    )
    result = NpmCataloger().catalog(fs)
    assert result.warnings == []
    by_name = {p.name: p for p in result.packages}
    assert sorted(by_name) == ["@s/b", "a", "c"]  # not "ghost": the lock lists it, disk does not
    a = by_name["a"]
    assert a.files == ("/app/node_modules/a/index.js", "/app/node_modules/a/package.json")
    assert a.dependencies == ("c", "opt")  # package.json, then the lockfile's extra names
    assert a.evidence == ("/app/node_modules/a/package.json", "/app/package-lock.json")
    assert a.purl == "pkg:npm/a@1.0.0"
    c = by_name["c"]
    assert c.files == (
        "/app/node_modules/a/node_modules/c/c.js",
        "/app/node_modules/a/node_modules/c/package.json",
    )
    assert c.evidence[1] == "/app/package-lock.json"
    b = by_name["@s/b"]
    assert b.purl == "pkg:npm/%40s/b@3.1.4"
    assert b.files == (
        "/app/node_modules/@s/b/dist/b.min.js",
        "/app/node_modules/@s/b/package.json",
    )


def test_hidden_lockfile_and_global_modules(make_view):
    hidden = {"lockfileVersion": 3, "packages": {"node_modules/npm": {"version": "10.2.4"}}}
    fs = make_view(
        {
            "/usr/local/lib/node_modules/npm/package.json": pj("npm", "10.2.4", semver="^7"),
            "/usr/local/lib/node_modules/npm/bin/npm-cli.js": b"cli",
            "/usr/local/lib/node_modules/.package-lock.json": json.dumps(hidden).encode(),
        }
    )
    [npm] = NpmCataloger().catalog(fs).packages
    assert npm.evidence == (
        "/usr/local/lib/node_modules/npm/package.json",
        "/usr/local/lib/node_modules/.package-lock.json",
    )
    assert npm.dependencies == ("semver",)


def test_bad_manifests_warn(make_view):
    fs = make_view(
        {
            "/app/node_modules/broken/package.json": b"{not json",
            "/app/node_modules/nover/package.json": b'{"name": "nover"}',
            "/app/node_modules/noname/package.json": b'{"version": "0.1.0"}',
        }
    )
    result = NpmCataloger().catalog(fs)
    assert [(p.name, p.version) for p in result.packages] == [("noname", "0.1.0")]
    assert sorted(result.warnings) == [
        "npm: /app/node_modules/broken/package.json: not a JSON object, skipped",
        "npm: /app/node_modules/nover/package.json: nover has no version, skipped",
    ]


def test_syft_package_json_variants(corpus_data):
    def parse(name: str):
        return parse_package_json(corpus_data.bytes(f"pkgdb/syft/javascript/pkg-json/{name}"))

    assert (parse("package.json").name, parse("package.json").version) == ("npm", "6.14.6")
    assert len(parse("package.json").dependencies) == 115
    assert parse("package.json").dependencies[:2] == ("JSONStream", "abbrev")
    assert (
        parse("package-contributors-string.json").name,
        parse("package-contributors-string.json").version,
    ) == (
        "ghost",
        "5.98.1",
    )
    assert parse("package-repo-string.json").name == "function-bind"
    partial = parse("package-partial.json")
    assert (partial.name, partial.version) == ("", "")


def test_syft_lock_tree(corpus_data, make_view):
    fs = make_view(corpus_data.tree("pkgdb/syft/javascript/pkg-lock", "/srv/app"))
    result = NpmCataloger().catalog(fs)
    assert [(p.name, p.version) for p in result.packages] == [
        ("@actions/core", "1.6.0"),
        ("cowsay", "1.4.0"),
    ]
    core, cowsay = result.packages
    assert core.evidence[1] == "/srv/app/package-lock.json"
    assert core.dependencies == ("@actions/http-client",)
    assert cowsay.dependencies == ("get-stdin", "optimist", "string-width", "strip-eof")


def test_syft_lockfiles(corpus_data):
    def lock(name: str):
        return parse_package_lock(corpus_data.bytes(f"pkgdb/syft/javascript/pkg-lock/{name}"))[0]

    v1_alias = lock("alias-package-lock-1.json")
    assert v1_alias["node_modules/case-alias"].name == "case"
    assert v1_alias["node_modules/case-alias"].version == "1.6.3"
    v2_alias = lock("alias-package-lock-2.json")
    assert (
        v2_alias["node_modules/case-alias"].name,
        v2_alias["node_modules/case-alias"].version,
    ) == (
        "case",
        "1.6.3",
    )
    v3 = lock("package-lock-3.json")
    assert sorted(v3) == [
        "node_modules/@types/prop-types",
        "node_modules/@types/react",
        "node_modules/@types/scheduler",
        "node_modules/async",
        "node_modules/csstype",
    ]
    assert v3["node_modules/@types/react"].version == "18.0.20"
    assert v3["node_modules/async"].dev is True
    nested = lock("nested-package-lock-1.json")
    assert len(nested) == 9
    assert all(k.startswith("node_modules/") for k in nested)


def test_trivy_lockfiles_v1_v2_v3_agree(corpus_data):
    def lock(name: str):
        return parse_package_lock(corpus_data.bytes(f"pkgdb/trivy/npm/{name}"))

    v1, w1 = lock("package-lock_v1.json")
    v2, w2 = lock("package-lock_v2.json")
    v3, w3 = lock("package-lock_v3.json")
    assert w1 == w2 == w3 == []
    assert len(v1) == len(v2) == len(v3) == 33
    assert {k: e.version for k, e in v1.items()} == {k: e.version for k, e in v3.items()}
    assert v1["node_modules/body-parser/node_modules/debug"].version == "2.6.9"
    assert v3["node_modules/body-parser"].dependencies[:3] == ("bytes", "content-type", "debug")


def test_trivy_workspaces_and_broken_links(corpus_data):
    entries, warnings = parse_package_lock(
        corpus_data.bytes("pkgdb/trivy/npm/package-lock_v3_with_workspace.json")
    )
    assert warnings == ["functions/func1: no version"]
    assert entries["functions/nested_func/node_modules/debug"].version == "2.6.9"
    broken, _ = parse_package_lock(
        corpus_data.bytes("pkgdb/trivy/npm/package-lock_v3_broken_link.json")
    )
    assert list(broken) == ["functions/func1"]
    dev, _ = parse_package_lock(
        corpus_data.bytes("pkgdb/trivy/npm/package-lock_v3_with-same-dev-and-non-dev.json")
    )
    assert dev["node_modules/fsevents"].dev is True
    assert parse_package_lock(b"[1, 2]") == ({}, ["not a JSON object"])
