"""Package attribution through the CLI, checked against sums computed independently with
tarfile from the example image, and the CycloneDX SBOM validated by cyclonedx-python-lib."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from imgscope.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "fixtures" / "example.tar"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _final_files_by_hand(image: Path) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Replay the example's layers with tarfile (it has file whiteouts only) and read the
    dpkg .list files: path -> size of the final regular files, package -> listed paths."""
    files: dict[str, int] = {}
    lists: dict[str, bytes] = {}
    with tarfile.open(image) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        for layer_name in manifest["Layers"]:
            data = outer.extractfile(layer_name).read()
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                for member in layer:
                    path = "/" + member.name.lstrip("./").rstrip("/")
                    base = path.rsplit("/", 1)[1]
                    if base.startswith(".wh."):
                        files.pop(path.rsplit("/", 1)[0] + "/" + base[4:], None)
                        continue
                    if member.isfile():
                        files[path] = member.size
                        if path.startswith("/var/lib/dpkg/info/") and path.endswith(".list"):
                            lists[path] = layer.extractfile(member).read()
    owned = {
        path.rsplit("/", 1)[1][: -len(".list")].split(":")[0]: data.decode().split("\n")
        for path, data in lists.items()
    }
    return files, owned


def test_package_bytes_match_an_independent_sum(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "packages", str(EXAMPLE), "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "imgscope/packages"
    files, owned = _final_files_by_hand(EXAMPLE)
    by_name = {item["name"]: item for item in doc["items"]}
    assert set(by_name) == set(owned) == {"libc6", "libc6-dev", "base-files"}
    for name, paths in owned.items():
        expected = sum(files[p] for p in paths if p in files)
        assert by_name[name]["bytes"] == expected, name
        assert by_name[name]["files"] == sum(1 for p in paths if p in files)
    assert by_name["libc6-dev"]["introduced_layer"] == 1
    assert by_name["libc6"]["version"] == "2.36-9+deb12u4"
    owned_total = sum(item["bytes"] for item in doc["items"])
    assert doc["owned_bytes"] == owned_total
    assert doc["owned_bytes"] + doc["unowned_bytes"] == sum(files.values())
    unowned = {g["directory"]: g["bytes"] for g in doc["unowned"]}
    assert unowned["/var/cache"] == files[
        "/var/cache/apt/archives/libc6-dev_2.36-9+deb12u4_amd64.deb"]


def test_cyclonedx_is_valid_and_carries_byte_totals(capsys: pytest.CaptureFixture[str]) -> None:
    validation = pytest.importorskip("cyclonedx.validation.json")
    schema = pytest.importorskip("cyclonedx.schema")
    rc, out, err = run(capsys, "packages", str(EXAMPLE), "--format", "cyclonedx")
    assert rc == 0, err
    validator = validation.JsonStrictValidator(schema.SchemaVersion.V1_5)
    error = validator.validate_str(out)
    assert error is None, error
    sbom = out
    doc = json.loads(sbom)
    components = {c["name"]: c for c in doc["components"]}
    assert components["libc6"]["purl"].startswith("pkg:deb/debian/libc6@2.36-9%2Bdeb12u4")
    props = {p["name"]: p["value"] for p in components["libc6-dev"]["properties"]}
    rc, out, _ = run(capsys, "packages", str(EXAMPLE), "--format", "json")
    items = {i["name"]: i for i in json.loads(out)["items"]}
    assert props["imgscope:bytes"] == str(items["libc6-dev"]["bytes"])
    assert props["imgscope:layer"] == "1"
    # libc6-dev depends on libc6: the edge is in the SBOM
    deps = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    libc6_ref = components["libc6"]["bom-ref"]
    assert libc6_ref in deps[components["libc6-dev"]["bom-ref"]]
    # deterministic: a second run is byte-identical
    rc, again, _ = run(capsys, "packages", str(EXAMPLE), "--format", "cyclonedx")
    assert rc == 0 and again == sbom


def test_inspect_json_is_deterministic_and_stdin_matches_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, first, _ = run(capsys, "inspect", str(EXAMPLE), "--format", "json")
    rc2, second, _ = run(capsys, "inspect", str(EXAMPLE), "--format", "json")
    assert rc == rc2 == 0 and first == second
    from imgscope import api

    from_stdin = api.analyze("-", stdin=io.BytesIO(EXAMPLE.read_bytes()))
    from_file = api.analyze(EXAMPLE)
    assert from_stdin.summary.final_bytes == from_file.summary.final_bytes
    assert [layer.measured_diff_id for layer in from_stdin.layers] == [
        layer.diff_id for layer in from_file.layers]
    assert [u.key for u in from_stdin.attribution.packages] == [
        u.key for u in from_file.attribution.packages]


def test_ls_layer_lists_whiteouts_in_tar_order(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "ls", str(EXAMPLE), "--layer", "3", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["layer"] == 3
    whiteouts = [e for e in doc["entries"] if e.get("whiteout")]
    assert [e["path"] for e in whiteouts] == ["/tmp/build.log"]
    rc, _, err = run(capsys, "ls", str(EXAMPLE), "--layer", "9")
    assert rc == 2 and err.startswith("imgscope: error: layer 9 does not exist")


def _status(*stanzas: tuple[str, str]) -> bytes:
    return "".join(
        f"Package: {name}\nStatus: install ok installed\nVersion: {version}\n"
        f"Architecture: amd64\n\n" for name, version in stanzas
    ).encode()


def test_per_layer_changes_name_removed_and_upgraded_packages(tmp_path: Path) -> None:
    """A purge (database rewritten, files whited out) and an upgrade, layer by layer."""
    from conftest import fixture_build as fb

    from imgscope.api import analyze

    tool = fb.det_bytes("tool", 5000)
    lib_v1, lib_v2 = fb.det_bytes("lib1", 3000), fb.det_bytes("lib2", 3500)
    info = "/var/lib/dpkg/info"
    spec = fb.ImageSpec(layers=[
        fb.LayerSpec([
            fb.file("var/lib/dpkg/status", _status(("tool", "1.0"), ("libz", "1.0"))),
            fb.file(f"{info}/tool.list".lstrip("/"), b"/usr/bin/tool\n"),
            fb.file(f"{info}/libz.list".lstrip("/"), b"/usr/lib/libz.so\n"),
            fb.file("usr/bin/tool", tool, mode=0o755),
            fb.file("usr/lib/libz.so", lib_v1),
        ]),
        fb.LayerSpec([  # apt-get purge tool
            fb.file("var/lib/dpkg/status", _status(("libz", "1.0"))),
            fb.whiteout("var/lib/dpkg/info/tool.list"),
            fb.whiteout("usr/bin/tool"),
        ]),
        fb.LayerSpec([  # apt-get upgrade libz
            fb.file("var/lib/dpkg/status", _status(("libz", "1.1"))),
            fb.file("usr/lib/libz.so", lib_v2),
        ]),
    ])
    image = fb.write_image(tmp_path / "purge.tar", spec)
    result = analyze(image)
    layers = result.attribution.layers
    assert layers[1].removed == (("deb/tool:amd64@1.0", len(tool)),)
    assert layers[2].upgraded == (("deb/libz:amd64@1.0", "deb/libz:amd64@1.1", len(lib_v2)),)
    assert [u.key for u in result.attribution.packages] == ["deb/libz:amd64@1.1"]
    libz = result.attribution.packages[0]
    assert (libz.final_bytes, libz.shipped_bytes) == (len(lib_v2), len(lib_v1) + len(lib_v2))
    assert libz.introduced_layer == 0 and libz.changed_layers == (2,)
    # The text report shows no per-layer removals or upgrades: `inspect` skips re-reading the
    # databases layer by layer there, and nothing else in the attribution changes.
    quick = analyze(image, layer_changes=False)
    assert [(lp.removed, lp.upgraded) for lp in quick.attribution.layers] == [((), ())] * 3
    assert quick.attribution.packages == result.attribution.packages
    assert [(lp.added, lp.changed) for lp in quick.attribution.layers] == [
        (lp.added, lp.changed) for lp in layers]
