"""The reference side: unpack a layout with umoci and read the rootfs it wrote."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

UMOCI = shutil.which("umoci")


def umoci_unavailable() -> str | None:
    """Why the differential tests can't run here, or None when they can."""
    if UMOCI is None:
        return "umoci is not installed (apt-get install umoci)"
    if os.geteuid() != 0:
        return "umoci must run as root to keep ownership, setuid bits and device nodes"
    return None


@dataclass(frozen=True)
class FsNode:
    """One path as a comparison sees it; `ino` groups hard links (None: not compared)."""

    type: str
    size: int
    mode: int
    uid: int
    gid: int
    link_target: str | None
    ino: object = None
    dev: tuple[int, int] | None = None  # char/block devices: (major, minor)


class UmociRejected(Exception):
    """umoci refused the stack; `reason` is a short class of the error for counting."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# umoci error text -> a short, stable class name for the report
_REASONS = (
    ("refusing to change type of root", "root-type-change"),
    ("link: no such file", "hardlink-target-missing"),
    ("link: operation not permitted", "hardlink-to-directory"),
    ("link: ", "hardlink-target-unusable"),
    ("not a directory", "parent-is-not-a-directory"),
    ("mkdir parent", "parent-is-not-a-directory"),
    ("too many levels of symbolic links", "symlink-loop"),
    ("ELOOP", "symlink-loop"),
    ("sanitise symlinks", "symlink-loop"),
    ("file exists", "exists"),
    ("mknod: operation not permitted", "mknod-not-permitted"),
)


def classify(stderr: str) -> str:
    low = stderr.lower()
    for needle, reason in _REASONS:
        if needle.lower() in low:
            return reason
    return "other"


def unpack(layout: Path, rootfs: Path, tag: str = "latest", timeout: float = 60) -> None:
    """`umoci raw unpack`; raises UmociRejected when umoci exits non-zero."""
    assert UMOCI is not None
    proc = subprocess.run(
        [UMOCI, "raw", "unpack", "--image", f"{layout}:{tag}", str(rootfs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        # umoci makes directories no tar member names with mode 0777 & ~umask: pin the umask
        # to containerd's result (0755) so the comparison does not depend on the caller's
        preexec_fn=lambda: os.umask(0o022),
    )
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        detail = err[-1] if err else f"exit {proc.returncode}"
        # "⨯ create rootfs: unpack layer: unpack entry: NAME: what" -> "NAME: what"
        detail = detail.split("unpack entry: ", 1)[-1].replace(str(rootfs), "ROOTFS")
        raise UmociRejected(classify(proc.stderr), detail)


def _type(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
    ):
        if test(mode):
            return name
    return "other"


def read_rootfs(rootfs: Path) -> dict[str, FsNode]:
    """Every path under rootfs ("/a/b"), root excluded, without following symlinks."""
    out: dict[str, FsNode] = {}
    base = os.fsencode(rootfs)

    def walk(dir_b: bytes, rel: str) -> None:
        with os.scandir(dir_b) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                path = rel + "/" + os.fsdecode(entry.name)
                kind = _type(st.st_mode)
                target = os.fsdecode(os.readlink(entry.path)) if kind == "symlink" else None
                out[path] = FsNode(
                    type=kind,
                    size=st.st_size if kind == "file" else 0,
                    mode=stat.S_IMODE(st.st_mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                    link_target=target,
                    ino=None if kind == "dir" else (st.st_dev, st.st_ino),
                    dev=(os.major(st.st_rdev), os.minor(st.st_rdev))
                    if kind in ("char", "block") else None,
                )
                if kind == "dir":
                    walk(entry.path, path)

    walk(base, "")
    return out


def umoci_rootfs(layout: Path, workdir: Path, tag: str = "latest") -> dict[str, FsNode]:
    rootfs = workdir / "rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    unpack(layout, rootfs, tag)
    return read_rootfs(rootfs)
