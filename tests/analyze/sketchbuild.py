"""Build imgscope's Dockerfile sketch of a real image with buildah, run it, measure it.

The sketch is written into a copy of the image's own build context (tests/realimages/NAME/),
built with the same buildah settings as the original (so the builder stage's steps hit the
layer cache), saved as a docker-archive next to the other real images, and cached there by a
hash of the sketch and the context.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import realimages  # noqa: E402


def sketch_ref(name: str) -> str:
    return f"localhost/imgscope-sketch-{name}:test"


def build_sketch(name: str, dockerfile: str) -> Path:
    """The docker-archive of the sketch built in NAME's context (built once, then cached)."""
    key = hashlib.sha256((dockerfile + realimages.context_hash(name)).encode()).hexdigest()[:16]
    out = realimages.CACHE / f"sketch-{name}-{key}"
    tar = out / f"sketch-{name}.docker.tar"
    if tar.is_file():
        return tar
    with realimages._lock():
        realimages._build_locked(name)  # the original: its layers are the builder's cache
        with tempfile.TemporaryDirectory(dir=realimages.CACHE, prefix="sketch-") as tmp:
            ctx = Path(tmp) / "ctx"
            shutil.copytree(realimages.HERE / name, ctx)
            (ctx / "Dockerfile").write_text(dockerfile)
            argv: list[str | Path] = [
                "buildah", *realimages.STORE, "bud", "--layers", "--isolation", "chroot",
                "--pull-never", "-t", sketch_ref(name),
            ]
            if any(realimages.CA_DIR.glob("*.crt")):
                argv += ["--volume", f"{realimages.CA_DIR}:{realimages.CA_DIR}:ro"]
            argv.append(ctx)
            with realimages._timed(f"sketch:{name}"):
                realimages._run(argv, timeout=3600)
        out.mkdir(parents=True, exist_ok=True)
        part = tar.with_name(tar.name + ".part")
        part.unlink(missing_ok=True)
        realimages._run(["podman", *realimages.STORE, "save", "--format", "docker-archive",
                         "-o", part, sketch_ref(name)], timeout=1800)
        part.rename(tar)
    return tar


def run_sketch(name: str, argv: Sequence[str]) -> str:
    """Run ARGV in a throwaway container of the built sketch; its stdout."""
    store = realimages.STORE
    ctr = realimages._run(["buildah", *store, "from", "--pull-never", sketch_ref(name)]
                          ).stdout.strip()
    try:
        return realimages._run(["buildah", *store, "run", "--isolation", "chroot", ctr, "--",
                                *argv], timeout=600).stdout
    finally:
        subprocess.run(["buildah", *store, "rm", ctr], capture_output=True)
