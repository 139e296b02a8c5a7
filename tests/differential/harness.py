"""One differential check: a stack -> OCI layout -> (umoci rootfs, imgscope) -> differences."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from imgscope.errors import ImgscopeError

from .compare import compare, imgscope_fs
from .oci import write_layout
from .rootfs import FsNode, UmociRejected, umoci_rootfs
from .stacks import Stack


@dataclass
class Outcome:
    """What happened to one stack. `problems` empty and `rejected` None: they agree."""

    problems: list[str] = field(default_factory=list)
    rejected: UmociRejected | None = None
    imgscope_error: ImgscopeError | None = None
    reference: dict[str, FsNode] | None = None
    ours: dict[str, FsNode] | None = None


def run_stack(stack: Stack, workdir: Path | None = None) -> Outcome:
    """Any exception but ImgscopeError from imgscope propagates: that is a crash."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="imgscope-diff-") as tmp:
            return run_stack(stack, Path(tmp))
    layout = write_layout(workdir / "image", stack.tar_blobs())
    out = Outcome()
    try:
        out.ours = imgscope_fs(layout)
    except ImgscopeError as exc:
        out.imgscope_error = exc
    try:
        out.reference = umoci_rootfs(layout, workdir)
    except UmociRejected as exc:
        out.rejected = exc
        return out
    if out.imgscope_error is not None:
        out.problems.append(f"imgscope refused a stack umoci unpacks: {out.imgscope_error}")
    else:
        assert out.ours is not None
        out.problems = compare(out.reference, out.ours)
    return out
