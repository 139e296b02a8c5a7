"""JSON documents: the versioned contract CI pipelines parse (docs/json-schema.md).

Deterministic: keys sorted, lists in a defined order, no timestamps of our own, no input
path; the same image gives byte-identical output.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from imgscope.api import Analysis
from imgscope.model import EntryType, LayerEntry
from imgscope.overlay import Overlay
from imgscope.report.advice import advice_section
from imgscope.report.packages import packages_section
from imgscope.report.paths import display, raw_b64

SCHEMA_VERSION = 1
WASTED_LIMIT = 200


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _path_fields(path: str, link: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": display(path)}
    raw = raw_b64(path)
    if raw is not None:
        out["path_b64"] = raw
    if link is not None:
        raw_link = raw_b64(link)
        if raw_link is not None:
            out["link_target_b64"] = raw_link
    return out


def inspect_document(analysis: Analysis) -> dict[str, Any]:
    cfg = analysis.config
    ref = analysis.ref
    s = analysis.summary
    facts = analysis.facts
    layers = []
    for info, stats in zip(analysis.layers, analysis.stats, strict=True):
        layers.append({
            "index": info.index,
            "diff_id": info.diff_id,
            "measured_diff_id": info.measured_diff_id,
            "blob_digest": info.blob_digest,
            "media_type": info.media_type,
            "compression": info.compression,
            "compressed_bytes": info.compressed_size,
            "uncompressed_bytes": info.uncompressed_size,
            "trailing_bytes": info.trailing_bytes,
            "created_by": info.created_by,
            "history_index": info.history_index,
            "entries": stats.entries,
            "added": {"entries": stats.added_entries, "bytes": stats.added_bytes},
            "modified": {"entries": stats.modified_entries, "bytes": stats.modified_bytes},
            "removed": {"entries": stats.removed_entries, "bytes": stats.removed_bytes},
            "shipped_bytes": stats.shipped_bytes,
            "wasted_bytes": stats.wasted_bytes,
            "whiteouts": stats.whiteouts,
            "opaque_dirs": stats.opaque_dirs,
        })
    wasted = sorted(analysis.wasted, key=lambda w: (-w.size, w.path, w.layer))
    return {
        "schema": "imgscope/inspect",
        "schema_version": SCHEMA_VERSION,
        "image": {
            "format": ref.source_format,
            "tags": list(ref.tags),
            "manifest_digest": ref.manifest_digest,
            "config_digest": ref.config_digest,
            "platform": ref.platform,
            "os": cfg.os,
            "architecture": cfg.architecture,
            "variant": cfg.variant,
            "created": cfg.created,
            "entrypoint": list(cfg.entrypoint) if cfg.entrypoint is not None else None,
            "cmd": list(cfg.cmd) if cfg.cmd is not None else None,
            "env": list(cfg.env),
            "user": cfg.user,
            "working_dir": cfg.working_dir,
            "exposed_ports": list(cfg.exposed_ports),
            "labels": dict(cfg.labels),
            "history": [asdict(h) for h in cfg.history],
        },
        "verified": not any(w.code == "not-verified" for w in analysis.warnings),
        "sizes": {
            "final_bytes": s.final_bytes,
            "final_files": s.final_files,
            "final_entries": s.final_entries,
            "shipped_bytes": s.shipped_bytes,
            "layer_bytes": s.layer_bytes,
            "compressed_bytes": s.compressed_bytes,
            "archive_bytes": s.archive_bytes,
        },
        "efficiency": {
            "score": round(s.efficiency, 6),
            "wasted_bytes": s.wasted_bytes,
            "dive_score": round(s.dive_efficiency, 6),
            "dive_wasted_bytes": s.dive_wasted_bytes,
        },
        "layers": layers,
        "wasted": {
            "count": len(wasted),
            "files": [
                {**_path_fields(w.path), "bytes": w.size, "layer": w.layer,
                 "hidden_by_layer": w.hidden_by_layer, "how": w.how}
                for w in wasted[:WASTED_LIMIT]
            ],
        },
        "biggest_files": [{**_path_fields(f.path), "bytes": f.bytes, "layer": f.layer}
                          for f in facts.biggest_files],
        "biggest_dirs": [{**_path_fields(d.path), "bytes": d.bytes} for d in facts.biggest_dirs],
        "setuid_setgid": [
            {**_path_fields(m.path), "mode": m.mode, "uid": m.uid, "gid": m.gid}
            for m in facts.setuid
        ],
        "world_writable": [
            {**_path_fields(m.path), "mode": m.mode, "type": m.type} for m in facts.world_writable
        ],
        "findings": [
            {"layer": f.layer, "kind": f.kind, **_path_fields(f.path), "detail": display(f.detail)}
            for f in analysis.findings
        ],
        "packages": (packages_section(analysis.attribution, full=False)
                     if analysis.attribution is not None else None),
        "advice": advice_section(analysis),
        "warnings": [{"code": w.code, "message": w.message} for w in analysis.warnings],
    }


def ls_entries(fs: Overlay) -> list[dict[str, Any]]:
    inode_ids: dict[int, int] = {}
    out = []
    # The contract is a flat list sorted by path bytes (what `sort` would give), not tree
    # order, where "/a/b" would come before "/a.txt".
    nodes = sorted(fs.index().items(), key=lambda item: item[0].encode("utf-8", "surrogateescape"))
    for path, node in nodes:
        key = id(node.inode) if node.inode is not None else id(node)
        inode = inode_ids.setdefault(key, len(inode_ids) + 1)
        item = {
            **_path_fields(path, node.link_target),
            "type": node.type.value,
            "size": node.size if node.type is EntryType.FILE else 0,
            "mode": node.mode,
            "uid": node.uid,
            "gid": node.gid,
            "link_target": display(node.link_target) if node.link_target is not None else None,
            "layer": node.layer,
            "inode": inode,
            "mtime": node.mtime,
            "devmajor": node.devmajor,
            "devminor": node.devminor,
        }
        out.append(item)
    return out


def layer_entries(entries: list[LayerEntry]) -> list[dict[str, Any]]:
    from imgscope.archive.layer import whiteout_target

    out = []
    for entry in entries:
        marker = whiteout_target(entry.path) if "/.wh." in entry.path else None
        path = entry.path
        extra: dict[str, Any] = {}
        if marker is not None and marker[0] in ("remove", "opaque"):
            path = marker[1]
            extra = {"whiteout": True} if marker[0] == "remove" else {"opaque": True}
        out.append({
            **_path_fields(path, entry.link_target),
            "type": entry.type.value,
            "size": entry.size,
            "stored_size": entry.stored_size,
            "mode": entry.mode,
            "uid": entry.uid,
            "gid": entry.gid,
            "link_target": display(entry.link_target) if entry.link_target is not None else None,
            "mtime": entry.mtime,
            "devmajor": entry.devmajor,
            "devminor": entry.devminor,
            **extra,
        })
    return out


def ls_document(entries: list[dict[str, Any]], layer: int | None) -> dict[str, Any]:
    return {"schema": "imgscope/ls", "schema_version": SCHEMA_VERSION, "layer": layer,
            "entries": entries}
