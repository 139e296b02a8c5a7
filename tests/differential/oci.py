"""Write an OCI image layout directory (image-spec image-layout.md) from layer blobs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class LayerBlob:
    """A layer as stored: `blob` (maybe compressed), its media type and the uncompressed tar."""

    blob: bytes
    media_type: str
    diff_id: str  # sha256 of the uncompressed tar

    @classmethod
    def plain(cls, tar: bytes) -> LayerBlob:
        return cls(tar, LAYER_TAR, sha256(tar))


def image_config(diff_ids: list[str]) -> dict:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }


def manifest_doc(config: bytes, layers: list[LayerBlob]) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [
            {"mediaType": x.media_type, "digest": sha256(x.blob), "size": len(x.blob)}
            for x in layers
        ],
    }


def index_doc(manifest: bytes, tag: str) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": sha256(manifest),
                "size": len(manifest),
                "annotations": {REF_NAME: tag},
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }


def put_blob(root: Path, data: bytes) -> str:
    digest = sha256(data)
    path = root / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def write_layout(root: Path, layers: list[bytes | LayerBlob], tag: str = "latest") -> Path:
    """A complete, valid layout at `root` holding one image tagged `tag`; returns root."""
    blobs = [x if isinstance(x, LayerBlob) else LayerBlob.plain(x) for x in layers]
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for x in blobs:
        put_blob(root, x.blob)
    config = canonical(image_config([x.diff_id for x in blobs]))
    put_blob(root, config)
    manifest = canonical(manifest_doc(config, blobs))
    put_blob(root, manifest)
    (root / "index.json").write_bytes(canonical(index_doc(manifest, tag)))
    return root
