"""Seeds and mutations for the fuzz targets.

Seeds are real third-party data (../shared/corpus: layer tars and the JSON documents of its
images) and generated images and layers. Mutations are drawn by hypothesis, so a failure
shrinks to a small edit of a seed and replays from the printed blob.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import zstandard
from differential.oci import (
    LAYER_GZIP,
    LAYER_TAR,
    LAYER_ZSTD,
    LayerBlob,
    canonical,
    image_config,
    index_doc,
    manifest_doc,
    put_blob,
    sha256,
)
from differential.stacks import d, f, hl, opq, sl, stack, wh, write_tar
from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
MAX_SEED_BYTES = 256 * 1024  # keeps each example fast; the big corpus files add nothing here


# -- seeds ------------------------------------------------------------------------------------


def generated_layers() -> list[bytes]:
    """Small layers that use every header feature the walker knows."""
    long = "p/" + "q" * 140
    entries = [
        d("etc"), f("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), sl("etc/l", "/etc/passwd"),
        hl("etc/h", "etc/passwd"), d("usr", uid=2**31), f(long, b"z" * 700, mode=0o4755),
        wh("etc/gone"), opq("usr"), f("usr/.wh.x"),
    ]
    out = [write_tar(entries, fmt) for fmt in ("pax", "gnu", "ustar")]
    out.append(write_tar([f("a", b"1")], "ustar", "./"))
    return out


@functools.cache
def real_layers() -> tuple[bytes, ...]:
    layers = sorted((CORPUS / "layers").glob("*/*.tar"))
    return tuple(p.read_bytes() for p in layers if p.stat().st_size <= MAX_SEED_BYTES)


def layer_seeds() -> list[bytes]:
    return [*real_layers(), *generated_layers()]


def _json_kind(doc: object) -> str | None:
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "Config" in doc[0]:
        return "docker-manifest"
    if not isinstance(doc, dict):
        return None
    if "manifests" in doc:
        return "index"
    if "layers" in doc and "config" in doc:
        return "manifest"
    if "rootfs" in doc or "architecture" in doc:
        return "config"
    return None


@functools.cache
def real_documents() -> dict[str, tuple[object, ...]]:
    """JSON documents of the corpus images, by kind: index, manifest, config, docker-manifest."""
    found: dict[str, list[object]] = {}

    def consider(data: bytes) -> None:
        if len(data) > 64 * 1024 or not data.lstrip().startswith((b"{", b"[")):
            return
        try:
            doc = json.loads(data)
        except ValueError:
            return
        kind = _json_kind(doc)
        if kind:
            found.setdefault(kind, []).append(doc)

    images = CORPUS / "images"
    for path in sorted(images.rglob("*")):
        if path.is_file() and path.suffix != ".tar" and path.stat().st_size < 64 * 1024:
            consider(path.read_bytes())
        elif path.suffix == ".tar" and path.stat().st_size <= MAX_SEED_BYTES:
            try:
                with tarfile.open(path) as tar:
                    for member in tar:
                        if member.isfile() and member.size < 64 * 1024:
                            fh = tar.extractfile(member)
                            if fh is not None:
                                consider(fh.read())
            except (tarfile.TarError, OSError):
                continue
    return {kind: tuple(docs) for kind, docs in found.items()}


# -- images built around (possibly mutated) documents ----------------------------------------


def write_image(root: Path, layers: list[LayerBlob], *, index: bytes | None = None,
                manifest: bytes | None = None, config: bytes | None = None,
                fix_digests: bool = True) -> Path:
    """An OCI layout; any of the three documents may be given (mutated) bytes. With
    fix_digests the references above a given document name its real digest and size, so only
    the document's content is wrong."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for layer in layers:
        put_blob(root, layer.blob)
    good_config = canonical(image_config([x.diff_id for x in layers]))
    config = good_config if config is None else config
    put_blob(root, config)
    m = manifest_doc(config if fix_digests else good_config, layers)
    manifest = canonical(m) if manifest is None else manifest
    put_blob(root, manifest)
    if index is None:
        index = canonical(index_doc(manifest if fix_digests else canonical(m), "latest"))
    (root / "index.json").write_bytes(index)
    return root


def write_docker_archive(path: Path, layers: list[bytes], *, manifest: bytes | None = None,
                         config: bytes | None = None) -> Path:
    """A `docker save` style tar: manifest.json, <hex>.json config, <hex>/layer.tar."""
    config = config if config is not None else canonical(
        image_config([sha256(x) for x in layers]))
    config_name = sha256(config).split(":")[1] + ".json"
    names = [f"{sha256(x).split(':')[1]}/layer.tar" for x in layers]
    if manifest is None:
        manifest = json.dumps(
            [{"Config": config_name, "RepoTags": ["fuzz:latest"], "Layers": names}]
        ).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in [("manifest.json", manifest), (config_name, config),
                           *zip(names, layers, strict=True)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# -- mutations --------------------------------------------------------------------------------


class Blob(bytes):
    """Bytes with a short repr: falsifying examples stay readable (replay them from the
    printed @reproduce_failure blob, or save them with `.save(path)`)."""

    def __repr__(self) -> str:
        if len(self) <= 300:
            return repr(bytes(self))
        digest = hashlib.sha256(self).hexdigest()[:16]
        return f"<{len(self)} bytes sha256:{digest}... head={bytes(self[:40])!r}>"



@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes, max_ops: int = 4) -> bytes:
    """Flip, overwrite, insert, delete or duplicate a few spots; or truncate."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(("set", "flip", "insert", "delete", "truncate", "dup")))
        at = draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "set" and buf:
            buf[at] = draw(st.integers(0, 255))
        elif op == "flip" and buf:
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del buf[at:]
        elif op == "dup" and buf:
            end = min(len(buf), at + draw(st.integers(1, 1024)))
            buf[at:at] = buf[at:end]
    return Blob(buf)


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=20), st.sampled_from(["sha256:", "sha256:" + "0" * 64, "../../etc/passwd",
                                           "/abs", "application/vnd.oci.image.layer.v1.tar",
                                           "linux/amd64", "", "\u0000", "a" * 300]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda kids: st.one_of(st.lists(kids, max_size=4),
                           st.dictionaries(st.text(max_size=12), kids, max_size=4)),
    max_leaves=12,
)


def _paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.extend(_paths(value, (*prefix, i)))
    return out


def _get(doc: object, path: tuple) -> object:
    for key in path:
        doc = doc[key]  # type: ignore[index]
    return doc


@st.composite
def json_mutations(draw: st.DrawFn, doc: object, max_ops: int = 3) -> bytes:
    """Structural edits (replace, delete, wrap, nest deeply, repeat) then maybe byte edits."""
    doc = json.loads(json.dumps(doc))
    deep: dict[str, str] = {}  # marker -> nested text, spliced in after json.dumps
    for _ in range(draw(st.integers(1, max_ops))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(("replace", "delete", "wrap", "deep", "grow", "retype")))
        if not path:
            if op in ("replace", "retype"):
                doc = draw(JSON_VALUES)
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(JSON_VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "wrap":
            parent[key] = [parent[key]]
        elif op == "deep":
            # nesting past any recursion limit, built as text (json.dumps would recurse)
            depth = draw(st.sampled_from((50, 900, 5000, 100_000)))
            marker = f"@@deep{len(deep)}@@"
            deep[marker] = "[" * depth + json.dumps(parent[key]) + "]" * depth
            parent[key] = marker
        elif op == "grow" and isinstance(parent[key], list):
            parent[key] = parent[key] * draw(st.sampled_from((2, 50, 2000)))
        elif op == "retype":
            value = parent[key]
            parent[key] = str(value) if not isinstance(value, str) else len(value)
    text = json.dumps(doc)
    for marker, nested in deep.items():
        text = text.replace(json.dumps(marker), nested)
    data = text.encode()
    if draw(st.integers(0, 3)) == 0:
        data = draw(byte_mutations(data, max_ops=2))
    return Blob(data)


# -- compressed framing -----------------------------------------------------------------------


def gzip_members(data: bytes, cuts: list[int]) -> bytes:
    """`data` as several concatenated gzip members (valid: gunzip reads them all)."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return b"".join(gzip.compress(data[a:b], mtime=0) for a, b in zip(points, points[1:],
                                                                        strict=False))


def zstd_frames(data: bytes, cuts: list[int], skippable: bool = False) -> bytes:
    """`data` as several concatenated zstd frames, optionally with skippable frames between."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    cctx = zstandard.ZstdCompressor()
    parts = []
    for a, b in zip(points, points[1:], strict=False):
        parts.append(cctx.compress(data[a:b]))
        if skippable:
            payload = b"skip"
            parts.append(b"\x50\x2a\x4d\x18" + len(payload).to_bytes(4, "little") + payload)
    return b"".join(parts)


MEDIA = {"none": LAYER_TAR, "gzip": LAYER_GZIP, "zstd": LAYER_ZSTD}


def layer_blob(blob: bytes, tar: bytes, compression: str) -> LayerBlob:
    return LayerBlob(blob, MEDIA[compression], sha256(tar))


SMALL_STACK = stack(
    [d("a"), f("a/x", b"hello"), sl("a/l", "x"), hl("a/h", "a/x")],
    [wh("a/x"), f("b", b"b" * 1500)],
)
