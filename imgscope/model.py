"""The data model: what every stage passes to the next.

archive -> (LayerEntry stream) -> overlay -> (tree, LayerStats) -> catalog -> analyze -> report.
Value objects are frozen; the filesystem tree is the one mutable structure, and only
overlay.py writes to it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class EntryType(str, enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"  # only in a layer's raw entries; merged, a hard link is a FILE
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


class LayerEntry(NamedTuple):
    """One tar member of one layer, as the layer reader saw it (metadata only).

    A NamedTuple, not a frozen dataclass: one is built per tar member on the hot path, and
    a frozen dataclass's __init__ costs several times more."""

    path: str  # normalised: "/usr/bin/gcc"; whiteout markers keep their ".wh." name
    type: EntryType
    size: int  # apparent size (for a sparse file, the size it reads as)
    stored_size: int  # bytes the member occupies in the tar stream (sparse: data only)
    mode: int  # permission bits, mode & 0o7777
    uid: int
    gid: int
    mtime: int
    link_target: str | None = None  # symlink target as written; hard link: normalised path
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, str], ...] = ()
    raw_name: bytes | None = None  # set only when the tar name was not valid UTF-8
    content: bytes | None = None  # only for paths a consumer asked for (small files)
    # Where a kept executable's bytes can be read back: (fd, offset) into the archive for a
    # plain seekable layer, or into imgscope's own spool file for a compressed one.
    data_ref: tuple[int, int] | None = None
    # Where the member's bytes start in the layer's uncompressed tar stream (-1: not read
    # from a tar, or an old GNU sparse member): `imgscope diff` reads one file of a plain
    # layer back from there.
    offset: int = -1


@dataclass(frozen=True, slots=True)
class PathFinding:
    """Something odd about a member name or an overlay rule, found while reading a layer."""

    layer: int
    kind: str  # "path-escape", "absolute-path", "conflict", "hardlink-missing", ...
    path: str
    detail: str


@dataclass(slots=True)
class LayerStats:
    """What one layer did to the filesystem below it."""

    index: int
    added_entries: int = 0
    added_bytes: int = 0
    modified_entries: int = 0
    modified_bytes: int = 0
    removed_entries: int = 0
    removed_bytes: int = 0
    shipped_bytes: int = 0  # sum of regular-file sizes in this layer's tar
    wasted_bytes: int = 0  # shipped here, not visible in the final filesystem
    whiteouts: int = 0
    opaque_dirs: int = 0
    entries: int = 0


@dataclass(frozen=True, slots=True)
class WastedFile:
    """A file version shipped in a layer and hidden from the final filesystem."""

    path: str
    layer: int
    size: int
    hidden_by_layer: int
    how: str  # "replaced", "whiteout", "opaque", "parent-replaced", "duplicate-in-layer"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A blob reference as a manifest or index names it: media type, digest, size, platform."""

    media_type: str
    digest: str
    size: int
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One entry of the image config's history: the instruction, and whether it made a layer."""

    created: str | None
    created_by: str
    empty_layer: bool
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of the image config the analysis reads: runtime settings, diff_ids, history."""

    os: str | None
    architecture: str | None
    variant: str | None
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env: tuple[str, ...]
    user: str | None
    working_dir: str | None
    exposed_ports: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    created: str | None
    diff_ids: tuple[str, ...]
    history: tuple[HistoryItem, ...]

    def env_value(self, name: str) -> str | None:
        for item in self.env:
            key, _, value = item.partition("=")
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer of an image: where it is, what it claims, what was measured."""

    index: int
    diff_id: str | None  # from the config; None when the config lists fewer
    blob_digest: str | None  # digest the manifest names (or sha256 of the file, docker-archive)
    media_type: str | None
    compression: str  # "none", "gzip", "zstd": sniffed from bytes, not the media type
    compressed_size: int
    uncompressed_size: int
    measured_diff_id: str | None  # sha256 of the uncompressed stream (None with --no-verify)
    created_by: str | None
    history_index: int | None
    trailing_bytes: int = 0  # data after the tar end-of-archive blocks (eStargz TOC, etc.)


@dataclass(frozen=True, slots=True)
class Warning_:
    """A non-fatal problem, carried to the report (never printed by the analysis)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ImageRef:
    """How the image was found in the input."""

    source_format: str  # "docker-archive", "oci-archive", "oci-layout", "docker-dir", ...
    tags: tuple[str, ...]
    manifest_digest: str | None
    config_digest: str | None
    platform: str | None
    archive_bytes: int


@dataclass
class Summary:
    """Image-wide figures computed from the overlay."""

    final_bytes: int = 0  # regular-file bytes the runtime sees, hard links counted once
    final_files: int = 0
    final_entries: int = 0
    shipped_bytes: int = 0  # regular-file bytes in all layers' tars
    layer_bytes: int = 0  # uncompressed tar bytes of all layers
    compressed_bytes: int = 0  # layer blobs as stored
    archive_bytes: int = 0  # the input as stored
    wasted_bytes: int = 0
    efficiency: float = 1.0  # final_bytes / shipped_bytes
    dive_efficiency: float = 1.0  # dive's score, computed as dive does (see docs)
    dive_wasted_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Package:
    """A package found by a cataloger, with the files it owns and evidence for the claim."""

    ecosystem: str  # "deb", "apk", "rpm", "pypi", "npm", "golang", "cargo", "maven", "gem"
    name: str
    version: str
    arch: str | None = None
    purl: str = ""
    files: tuple[str, ...] = ()  # absolute paths it claims (may include missing ones)
    dependencies: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # database / metadata paths the claim rests on
    installed_size: int | None = None  # as the database states it (bytes)
    source: str | None = None  # source package name where the database says


@dataclass(frozen=True, slots=True)
class Finding:
    """A fact worth acting on, with the bytes it costs and the evidence for it."""

    kind: str
    title: str
    bytes: int
    paths: tuple[str, ...]
    packages: tuple[str, ...] = ()
    layer: int | None = None
    instruction: str | None = None
    reason: str = ""
    # Added by the build-tool detector (imgscope/analyze/buildtools.py):
    category: str = ""  # "build-tool", "dev-files", "package-cache", "debug", "source", ...
    files: int = 0  # regular files counted in `bytes` (each file in one finding only)
    items: tuple[tuple[str, int], ...] = ()  # (package key or path, bytes), biggest first
    layers: tuple[int, ...] = ()  # every layer that wrote the counted files


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A change that makes the image smaller, with its estimated savings and the evidence."""

    title: str
    bytes_saved: int
    reason: str
    evidence: tuple[str, ...] = ()
    dockerfile: str | None = None
    # Added by imgscope/analyze/recommend.py:
    kind: str = ""  # "multi-stage", "purge-build-tools", "clean-cache", "strip", ...
    bytes_alone: int = 0  # saved if applied alone (bytes_saved: after the ones above it)
    size_after: int | None = None  # estimated image bytes after this and all above
    packages: tuple[str, ...] = ()  # package keys it drops
    paths: tuple[str, ...] = ()  # paths it drops (or strips), roots of trees
    layer: int | None = None  # the layer whose instruction to change
    instruction: str | None = None


@dataclass
class Extras:
    """Optional results of the later stages, filled in when they run."""

    packages: list[Package] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    advice: object | None = None  # imgscope.analyze.recommend.Advice: scan details, sketch base
