"""Layer stacks: a small explicit model, a tar writer for it, and a hypothesis strategy.

A stack is a list of layers; a layer is tar members in tar order. Entry paths are relative to
the root without a leading slash ("a/b"); the writer adds the layer's name prefix ("./" or
none) and turns whiteouts into `.wh.` names, so a test states what a layer *means* and the
bytes follow from it.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from hypothesis import strategies as st

KINDS = ("file", "dir", "symlink", "hardlink", "whiteout", "opaque", "fifo", "char", "block")
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
MTIME = 1_700_000_000
# Linux stores uid_t/gid_t in 32 bits and (uid_t)-1 means "leave unchanged" to chown(2), so
# 2**32 - 2 is the largest id a rootfs can hold (see the exclusions in compare.py).
MAX_ID = 2**32 - 2


@dataclass(frozen=True)
class Entry:
    kind: str  # one of KINDS
    path: str  # "a/b"; whiteout: the path it removes; opaque: the directory ("" is the root)
    content: bytes = b""
    target: str = ""  # symlink: target as written; hardlink: path of the linked file
    mode: int | None = None  # None: a usual default for the kind
    uid: int = 0
    gid: int = 0
    mtime: int = MTIME
    dev: tuple[int, int] = (0, 0)  # char/block: (major, minor)

    def tar_name(self, prefix: str = "") -> str:
        if self.kind == "whiteout":
            parent, base = posixpath.split(self.path)
            return prefix + posixpath.join(parent, WH_PREFIX + base)
        if self.kind == "opaque":
            return prefix + posixpath.join(self.path, WH_OPAQUE)
        return prefix + self.path

    def effective_mode(self) -> int:
        if self.mode is not None:
            return self.mode
        return {"dir": 0o755, "symlink": 0o777}.get(self.kind, 0o644)


@dataclass(frozen=True)
class Layer:
    entries: tuple[Entry, ...]
    tar_format: str = "pax"  # "pax", "gnu" or "ustar" (ustar falls back to pax when it can't)
    prefix: str = ""  # "" or "./": how member names start

    def tar_bytes(self) -> bytes:
        return write_tar(self.entries, self.tar_format, self.prefix)


@dataclass(frozen=True)
class Stack:
    layers: tuple[Layer, ...]
    note: str = field(default="", compare=False)

    def tar_blobs(self) -> list[bytes]:
        return [layer.tar_bytes() for layer in self.layers]

    def describe(self) -> str:
        """A readable listing for failure messages and regression tests."""
        lines = []
        for i, layer in enumerate(self.layers):
            lines.append(f"layer {i} ({layer.tar_format}, prefix {layer.prefix!r}):")
            for e in layer.entries:
                extra = ""
                if e.kind in ("symlink", "hardlink"):
                    extra = f" -> {e.target}"
                elif e.kind == "file":
                    extra = f" ({len(e.content)} bytes)"
                meta = f" mode={oct(e.effective_mode())} uid={e.uid} gid={e.gid}"
                lines.append(f"  {e.kind:8} {e.tar_name(layer.prefix)}{extra}{meta}")
        return "\n".join(lines)


def stack(*layers: Iterable[Entry], tar_format: str = "pax", prefix: str = "") -> Stack:
    """Shorthand for regression tests: stack([e1, e2], [e3])."""
    return Stack(tuple(Layer(tuple(entries), tar_format, prefix) for entries in layers))


def f(path: str, content: bytes = b"x", **kw: int) -> Entry:
    return Entry("file", path, content=content, **kw)  # type: ignore[arg-type]


def d(path: str, **kw: int) -> Entry:
    return Entry("dir", path, **kw)  # type: ignore[arg-type]


def sl(path: str, target: str, **kw: int) -> Entry:
    return Entry("symlink", path, target=target, **kw)  # type: ignore[arg-type]


def hl(path: str, target: str, **kw: int) -> Entry:
    return Entry("hardlink", path, target=target, **kw)  # type: ignore[arg-type]


def wh(path: str) -> Entry:
    return Entry("whiteout", path)


def opq(path: str) -> Entry:
    return Entry("opaque", path)


def _fits_ustar(info: tarfile.TarInfo) -> bool:
    try:
        info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    except (ValueError, UnicodeError):
        return False
    return True


def write_tar(entries: Iterable[Entry], tar_format: str = "pax", prefix: str = "") -> bytes:
    """Serialise entries, one tar member each, in the order given."""
    formats = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=formats[tar_format]) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.tar_name(prefix))
            info.mode = e.effective_mode()
            info.uid, info.gid, info.mtime = e.uid, e.gid, e.mtime
            data = None
            if e.kind in ("file", "whiteout", "opaque"):
                info.type = tarfile.REGTYPE
                data = e.content if e.kind == "file" else b""
                info.size = len(data)
            elif e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, prefix + e.target
            elif e.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif e.kind in ("char", "block"):
                info.type = tarfile.CHRTYPE if e.kind == "char" else tarfile.BLKTYPE
                info.devmajor, info.devminor = e.dev
            else:
                raise ValueError(f"unknown entry kind {e.kind!r}")
            if tar_format == "ustar" and not _fits_ustar(info):
                # ustar can't hold long names or big ids: say it the PAX way for this member
                tar.format = tarfile.PAX_FORMAT
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
                tar.format = tarfile.USTAR_FORMAT
                continue
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# The hypothesis strategy.
#
# Names come from a tiny pool so that layers collide on the same paths all the time: that is
# where overlay rules matter. A rough model of the merged tree (path -> kind) steers choices
# towards meaningful operations (hard link to a file that exists, whiteout of a path that
# exists) while still drawing arbitrary ones now and then.

LONG = "long-" + "n" * 130  # one component: any path holding it needs PAX or GNU long names
NAMES = ("a", "b", "c", "d", "\u00e9t\u00e9")
INTERESTING_MODES = (
    0o644, 0o755, 0o600, 0o700, 0o444, 0o000, 0o4755, 0o2755, 0o1777, 0o6711, 0o7777, 0o2770,
)
INTERESTING_IDS = (0, 1, 1000, 65534, 65535, 2097151, 2097152, 2**24, 2**31, MAX_ID)


@st.composite
def _fresh_path(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 3))
    parts = [draw(st.sampled_from(NAMES)) if draw(st.integers(0, 9)) else LONG
             for _ in range(depth)]
    return "/".join(parts)


def _mode(draw: st.DrawFn, kind: str) -> int | None:
    choice = draw(st.integers(0, 9))
    if choice < 5:
        return None
    if choice < 9:
        return draw(st.sampled_from(INTERESTING_MODES))
    return draw(st.integers(0, 0o7777))


def _id(draw: st.DrawFn) -> int:
    choice = draw(st.integers(0, 9))
    if choice < 6:
        return 0
    if choice < 9:
        return draw(st.sampled_from(INTERESTING_IDS))
    return draw(st.integers(0, MAX_ID))


def _content(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 19)) == 0:
        # cross 512-byte block boundaries with a size that is not a multiple of 512
        return b"z" * draw(st.integers(513, 5000))
    return draw(st.binary(max_size=24))


def _relative_to(src: str, dst: str) -> str:
    return posixpath.relpath(dst, posixpath.dirname(src) or ".")


@dataclass
class _Model:
    """Approximate merged tree, only used to bias choices (never as a test oracle)."""

    kinds: dict[str, str] = field(default_factory=dict)

    def apply(self, e: Entry) -> None:
        if e.kind == "whiteout":
            self._drop(e.path, keep_self=False)
        elif e.kind == "opaque":
            self._drop(e.path, keep_self=True)
        else:
            parent = posixpath.dirname(e.path)
            while parent:
                self.kinds[parent] = "dir"
                parent = posixpath.dirname(parent)
            if e.kind != "dir" and self.kinds.get(e.path) == "dir":
                self._drop(e.path, keep_self=True)
            self.kinds[e.path] = "file" if e.kind == "hardlink" else e.kind

    def _drop(self, path: str, keep_self: bool) -> None:
        for p in list(self.kinds):
            if p.startswith(path + "/") or (path == "" and p) or (p == path and not keep_self):
                del self.kinds[p]

    def of_kind(self, *kinds: str) -> list[str]:
        return sorted(p for p, k in self.kinds.items() if k in kinds)


@st.composite
def _entry(draw: st.DrawFn, model: _Model, layer_so_far: list[Entry]) -> list[Entry]:
    """One operation; returns the entries it writes (explicit parents first, sometimes)."""
    kind = draw(
        st.sampled_from(
            ("file",) * 5 + ("dir",) * 3 + ("symlink",) * 3 + ("hardlink",) * 3
            + ("whiteout",) * 3 + ("opaque",) * 2 + ("fifo", "char", "block")
        )
    )
    existing = model.of_kind("file", "dir", "symlink", "fifo", "char", "block")

    dirs = model.of_kind("dir")

    def pick(candidates: list[str]) -> str:
        if candidates and draw(st.integers(0, 3)):
            return draw(st.sampled_from(candidates))
        if draw(st.integers(0, 3)):
            # a new name in a directory that exists: keeps most stacks unpackable
            parent = draw(st.sampled_from(["", *dirs]))
            return posixpath.join(parent, draw(st.sampled_from(NAMES)))
        return draw(_fresh_path())

    uid, gid = _id(draw), _id(draw)
    out: list[Entry] = []
    if kind == "file":
        e = Entry("file", pick(existing), content=_content(draw), mode=_mode(draw, kind),
                  uid=uid, gid=gid)
    elif kind == "dir":
        e = Entry("dir", pick(existing), mode=_mode(draw, kind), uid=uid, gid=gid)
    elif kind == "fifo":
        e = Entry("fifo", pick(existing), mode=_mode(draw, kind), uid=uid, gid=gid)
    elif kind in ("char", "block"):
        # Linux: 12-bit major, 20-bit minor
        dev = (draw(st.sampled_from((0, 1, 8, 254, 4095))),
               draw(st.sampled_from((0, 3, 255, 256, 1048575))))
        e = Entry(kind, pick(existing), mode=_mode(draw, kind), uid=uid, gid=gid, dev=dev)
    elif kind == "symlink":
        path = pick(existing)
        how = draw(st.sampled_from(("relative", "absolute", "dangling", "chain", "self", "dot")))
        others = [p for p in existing if p != path]
        if how in ("relative", "absolute") and others:
            dst = draw(st.sampled_from(others))
            target = "/" + dst if how == "absolute" else _relative_to(path, dst)
        elif how == "chain" and model.of_kind("symlink"):
            dst = draw(st.sampled_from(model.of_kind("symlink")))
            target = _relative_to(path, dst) if dst != path else "loop"
        elif how == "self":
            target = posixpath.basename(path)  # a one-link loop
        elif how == "dot":
            target = draw(st.sampled_from((".", "..", "../..", "/", "./x/../y")))
        else:
            target = draw(st.sampled_from(("missing", "/nowhere/at/all", "../../../../escape")))
        e = Entry("symlink", path, target=target, mode=_mode(draw, kind), uid=uid, gid=gid)
    elif kind == "hardlink":
        files = model.of_kind("file", "symlink", "fifo", "char", "block")
        if files and draw(st.integers(0, 9)):
            # mostly a target that exists (lower layer or earlier in this layer)
            target = draw(st.sampled_from(files))
        elif draw(st.integers(0, 3)):
            # nothing to link to yet: write the file first, in this layer
            target = draw(_fresh_path())
            out.append(Entry("file", target, content=_content(draw)))
        else:
            target = draw(_fresh_path())  # most likely missing: umoci rejects, we must not crash
        # replacing an ancestor of the target would unlink the target first
        path = pick([p for p in existing if p != target and not target.startswith(p + "/")])
        if path == target and draw(st.integers(0, 9)) != 7:
            # a link onto its own target unlinks the target first: rare in real layers
            path = posixpath.join(posixpath.dirname(target), "h")
        e = Entry("hardlink", path, target=target, uid=uid, gid=gid)
    elif kind == "whiteout":
        e = Entry("whiteout", pick(existing))
    else:
        path = draw(st.sampled_from(dirs)) if dirs and draw(st.integers(0, 4)) else ""
        if not dirs and draw(st.booleans()):
            path = posixpath.dirname(draw(_fresh_path()))
        e = Entry("opaque", path)

    # real layers name every parent directory; some generators (and hand-made tars) don't
    parent = posixpath.dirname(e.path)
    if parent and e.kind not in ("whiteout",) and draw(st.integers(0, 2)) == 0:
        named = {x.path for x in layer_so_far if x.kind == "dir"}
        chain = []
        while parent and parent not in named:
            chain.append(parent)
            parent = posixpath.dirname(parent)
        out.extend(Entry("dir", p, mode=0o755) for p in reversed(chain))
    out.append(e)
    return out


@st.composite
def layer_stacks(draw: st.DrawFn, max_layers: int = 4, max_ops: int = 8) -> Stack:
    model = _Model()
    layers = []
    for _ in range(draw(st.integers(1, max_layers))):
        entries: list[Entry] = []
        for _ in range(draw(st.integers(0, max_ops))):
            for e in draw(_entry(model, entries)):
                entries.append(e)
                model.apply(e)
        if entries and draw(st.integers(0, 7)) == 0:
            # a duplicate member: the same path written twice in one layer
            dup = draw(st.sampled_from(entries))
            if dup.kind == "file":
                dup = replace(dup, content=dup.content + b"!")
            entries.insert(draw(st.integers(0, len(entries))), dup)
        fmt = draw(st.sampled_from(("pax", "gnu", "ustar")))
        prefix = draw(st.sampled_from(("", "./")))
        layers.append(Layer(tuple(entries), fmt, prefix))
    return Stack(tuple(layers))
