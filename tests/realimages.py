"""Real container images built from Dockerfiles with buildah, for integration tests and benches.

Nothing here runs at import time. Images are built on top of a debootstrap'ed Debian base,
saved the three ways users save them (docker-archive, OCI gzip, OCI zstd) and cached outside
the repository, keyed by a hash of the build context so an edited Dockerfile gets rebuilt.
The ground truth for a reader is `umoci raw unpack`, the filesystem a runtime would see.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent / "realimages"
CACHE = Path(os.environ.get("IMGSCOPE_REAL_CACHE", "/var/tmp/imgscope-real"))
BASE_REF = "localhost/imgscope-debian-base:bookworm"
DEBIAN_MIRROR = os.environ.get("IMGSCOPE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Everything goes through vfs: it works in any container/VM without overlay or fuse.
STORE = ["--storage-driver", "vfs"]
SKOPEO_STORE = "containers-storage:[vfs@/var/lib/containers/storage+/run/containers/storage]"
CA_DIR = Path("/usr/local/share/ca-certificates")
TOOLS = ("buildah", "podman", "skopeo", "umoci", "debootstrap")
FORMATS = ("docker", "oci", "zstd")
CONTEXT_LABEL = "org.imgscope.test.context"

# Seconds each step took in this process, for reports ("build:buildtools" -> 41.2).
TIMINGS: dict[str, float] = {}


def names() -> list[str]:
    """The images defined under tests/realimages/."""
    return sorted(p.parent.name for p in HERE.glob("*/Dockerfile"))


def image_ref(name: str) -> str:
    return f"localhost/imgscope-{name}:test"


def _run(argv: Sequence[str | os.PathLike[str]], **kw) -> subprocess.CompletedProcess[str]:
    """Run a tool; on failure raise with its stderr tail, which is where the cause is."""
    proc = subprocess.run([str(a) for a in argv], text=True, capture_output=True, check=False, **kw)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-4000:]
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{tail}")
    return proc


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One builder at a time across processes (pytest-xdist, bench + tests)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _timed(key: str) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    TIMINGS[key] = round(time.monotonic() - t0, 1)


def have_tools() -> str | None:
    """None when images can be built here, else why not (a pytest skip reason)."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return "missing tools: " + ", ".join(missing) + " (apt-get install " + " ".join(TOOLS) + ")"
    if os.geteuid() != 0:
        return "building real images needs root (buildah chroot isolation, debootstrap)"
    try:
        _run(["podman", *STORE, "info", "--format", "{{.Store.GraphDriverName}}"], timeout=60)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"podman storage unusable: {exc}"
    return None


def _image_exists(ref: str) -> bool:
    proc = subprocess.run(["podman", *STORE, "image", "exists", ref], capture_output=True)
    return proc.returncode == 0


def _image_label(ref: str, label: str) -> str | None:
    proc = subprocess.run(
        ["podman", *STORE, "image", "inspect", "--format", f'{{{{index .Labels "{label}"}}}}', ref],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_base() -> str:
    """Import a debootstrap minbase bookworm as BASE_REF unless storage already has it."""
    with _lock():
        return _ensure_base_locked()


def _ensure_base_locked() -> str:
    if _image_exists(BASE_REF):
        return BASE_REF
    with _timed("base"), tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR], timeout=1800)
        # Drop the .deb cache debootstrap leaves: no real base image ships it.
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        tar = subprocess.Popen(
            ["tar", "-C", rootfs, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        )
        try:
            _run(
                ["podman", *STORE, "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_REF],
                stdin=tar.stdout,
                timeout=1800,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError("tar of the debootstrap rootfs failed")
    return BASE_REF


def parents(name: str) -> list[str]:
    """Images of ours that NAME's Dockerfile builds FROM (`localhost/imgscope-X:test`)."""
    text = (HERE / name / "Dockerfile").read_text()
    found = re.findall(r"(?im)^\s*FROM\s+localhost/imgscope-([a-z0-9-]+):test\b", text)
    return [p for p in found if p != name]


def context_hash(name: str) -> str:
    """Hash of the build context (names, modes and bytes) and of the images it is built on,
    so an edit anywhere below an image invalidates its cache."""
    ctx = HERE / name
    if not (ctx / "Dockerfile").is_file():
        raise KeyError(f"no real image named {name!r} (have: {', '.join(names())})")
    h = hashlib.sha256(BASE_REF.encode())
    for parent in parents(name):
        h.update(context_hash(parent).encode())
    for p in sorted(ctx.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(ctx)).encode() + b"\0")
            h.update(oct(p.stat().st_mode & 0o777).encode() + b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_dir(name: str) -> Path:
    return CACHE / f"{name}-{context_hash(name)}"


def _build_locked(name: str) -> str:
    ref, ctx_hash = image_ref(name), context_hash(name)
    if _image_label(ref, CONTEXT_LABEL) == ctx_hash:
        return ref
    _ensure_base_locked()
    for parent in parents(name):
        _build_locked(parent)
    argv: list[str | Path] = [
        "buildah",
        *STORE,
        "bud",
        "--layers",
        "--isolation",
        "chroot",
        "--pull-never",
        "--label",
        f"{CONTEXT_LABEL}={ctx_hash}",
        "-t",
        ref,
    ]
    # A TLS-intercepting proxy's CA must be visible to pip/npm inside RUN steps
    # (the Dockerfiles install ca-certificates, whose postinst picks it up).
    if any(CA_DIR.glob("*.crt")):
        argv += ["--volume", f"{CA_DIR}:{CA_DIR}:ro"]
    argv.append(HERE / name)
    with _timed(f"build:{name}"):
        _run(argv, timeout=3600)
    return ref


def ensure_image(name: str) -> dict[str, Path]:
    """Build NAME if needed and return its saved tarballs {"docker", "oci", "zstd"}."""
    out = cache_dir(name)
    paths = {fmt: out / f"{name}.{fmt}.tar" for fmt in FORMATS}
    if all(p.is_file() for p in paths.values()):
        return paths
    with _lock():
        ref = _build_locked(name)
        out.mkdir(parents=True, exist_ok=True)
        store_ref = f"{SKOPEO_STORE}{ref}"
        savers: dict[str, list[str]] = {
            "docker": ["podman", *STORE, "save", "--format", "docker-archive", "-o", "{}", ref],
            "oci": ["podman", *STORE, "save", "--format", "oci-archive", "-o", "{}", ref],
            "zstd": [
                "skopeo",
                "copy",
                "--dest-compress-format",
                "zstd",
                store_ref,
                "oci-archive:{}",
            ],
        }
        for fmt, path in paths.items():
            if path.is_file():
                continue
            tmp = path.with_name(path.name + ".part")
            tmp.unlink(missing_ok=True)
            with _timed(f"save:{name}:{fmt}"):
                _run([a.replace("{}", str(tmp)) for a in savers[fmt]], timeout=1800)
            # Rename last so a killed save never looks like a cached one.
            tmp.rename(path)
    return paths


def umoci_rootfs(name: str) -> Path:
    """The merged filesystem of NAME as `umoci raw unpack` writes it (ground truth, cached)."""
    docker = ensure_image(name)["docker"]
    out = cache_dir(name)
    rootfs, done = out / "umoci-rootfs", out / "umoci-rootfs.done"
    if done.is_file():
        return rootfs
    with _lock():
        if done.is_file():
            return rootfs
        layout = out / "umoci-oci"
        for stale in (rootfs, layout):
            if stale.exists():
                shutil.rmtree(stale)
        with _timed(f"umoci:{name}"):
            _run(
                ["skopeo", "copy", f"docker-archive:{docker}", f"oci:{layout}:latest"], timeout=1800
            )
            _run(["umoci", "raw", "unpack", "--image", f"{layout}:latest", rootfs], timeout=1800)
        shutil.rmtree(layout)  # a second copy of every layer; only the rootfs is needed
        done.touch()
    return rootfs


def run_in_image(name: str, argv: Sequence[str]) -> str:
    """Run ARGV inside a throwaway container of NAME; return its stdout."""
    ref = image_ref(name)
    with _lock():
        _build_locked(name)
        ctr = _run(["buildah", *STORE, "from", "--pull-never", ref]).stdout.strip()
    try:
        return _run(
            ["buildah", *STORE, "run", "--isolation", "chroot", ctr, "--", *argv], timeout=600
        ).stdout
    finally:
        subprocess.run(["buildah", *STORE, "rm", ctr], capture_output=True)


def main(argv: Sequence[str] | None = None) -> int:
    """`python tests/realimages.py [NAME...]`: build and save images, print where they are."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("names", nargs="*", help=f"default: all ({', '.join(names())})")
    ap.add_argument("--rootfs", action="store_true", help="also unpack the umoci ground truth")
    args = ap.parse_args(argv)
    reason = have_tools()
    if reason:
        print(f"cannot build real images: {reason}")
        return 2
    ensure_base()
    for name in args.names or names():
        for fmt, path in ensure_image(name).items():
            print(f"{name}\t{fmt}\t{path.stat().st_size}\t{path}")
        if args.rootfs:
            print(f"{name}\trootfs\t-\t{umoci_rootfs(name)}")
    for key, secs in TIMINGS.items():
        print(f"time\t{key}\t{secs}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
