"""Package attribution on real images built with buildah, against independent ground truth:
the package tools run inside the image, and file sizes read from umoci's unpacked rootfs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import realimages

pytestmark = pytest.mark.realimage

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    reason = realimages.have_tools()
    if reason:
        pytest.skip(reason)


def packages_json(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "imgscope", "packages", str(path), "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def regular_file_bytes(rootfs: Path, listed: list[str]) -> int:
    """Sum of the sizes of the regular files a package lists, as the unpacked rootfs has them
    (following a usr-merge symlinked parent, counting each inode once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for path in listed:
        full = rootfs / path.lstrip("/")
        parent = full.parent.resolve()
        if not str(parent).startswith(str(rootfs.resolve())):
            parent = rootfs / os.path.relpath(parent, "/")
        candidate = parent / full.name
        if candidate.is_symlink() or not candidate.is_file():
            continue
        st = candidate.lstat()
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_size
    return total


def test_dpkg_attribution_matches_dpkg_and_the_rootfs() -> None:
    image = realimages.ensure_image("buildtools")
    rootfs = realimages.umoci_rootfs("buildtools")
    listing = realimages.run_in_image("buildtools", ["dpkg-query", "-W", "-f", "${Package}\n"])
    installed = sorted(line for line in listing.splitlines() if line)
    for fmt in ("docker", "zstd"):
        doc = packages_json(image[fmt])
        debs = [item for item in doc["items"] if item["ecosystem"] == "deb"]
        assert sorted(item["name"] for item in debs) == installed, fmt
        by_name = {item["name"]: item for item in debs}
        for name in ("gcc-12", "cpp-12", "libc6", "binutils"):
            arch = by_name[name]["arch"]
            list_file = rootfs / "var/lib/dpkg/info" / f"{name}.list"
            if not list_file.exists():
                list_file = rootfs / "var/lib/dpkg/info" / f"{name}:{arch}.list"
            listed = [line for line in list_file.read_text().splitlines() if line]
            expected = regular_file_bytes(rootfs, listed)
            assert by_name[name]["bytes"] == expected, (fmt, name)
        assert by_name["gcc-12"]["bytes"] > 20_000_000  # cc1 alone is ~33 MB
        assert by_name["gcc-12"]["introduced_layer"] == 1  # the apt-get install layer


def test_pip_attribution_matches_pip_and_the_rootfs() -> None:
    image = realimages.ensure_image("pyapp")
    rootfs = realimages.umoci_rootfs("pyapp")
    freeze = realimages.run_in_image("pyapp", ["/opt/venv/bin/pip", "list", "--format", "json"])
    venv = {p["name"].lower(): p["version"] for p in json.loads(freeze)}
    doc = packages_json(image["docker"])
    pypi = [item for item in doc["items"] if item["ecosystem"] == "pypi"]
    found = {(item["name"].lower(), item["version"]) for item in pypi}
    for name in ("six", "idna"):
        assert (name, venv[name]) in found
    assert ("packaging", "24.0") in found  # installed system-wide with --break-system-packages
    # RECORD sizes are the installed files: check one package against the rootfs.
    site = next((rootfs / "opt/venv/lib").glob("python3*/site-packages"))
    record = next(site.glob("idna-*.dist-info")) / "RECORD"
    listed = [str(site / line.split(",")[0]) for line in record.read_text().splitlines()]
    expected = sum(Path(p).stat().st_size for p in listed
                   if Path(p).is_file() and not Path(p).is_symlink())
    idna = next(item for item in pypi if item["name"].lower() == "idna")
    assert idna["bytes"] == expected
