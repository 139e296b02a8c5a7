"""`imgscope diff` output: the JSON document (docs/json-schema.md) and the readable table.

Reads an ImageDiff; computes nothing but presentation (rounding, grouping rows by directory).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tabulate import tabulate

from imgscope.compare import (
    ConfigChange,
    FileChange,
    FileState,
    ImageDiff,
    LayerChange,
    Side,
    group_by_directory,
)
from imgscope.model import LayerInfo
from imgscope.report.paths import display, human, mode_string, raw_b64

SCHEMA_VERSION = 1
DIR_GROUPS = 30  # directory rows in the table (and the JSON's `directories`)
FILE_ROWS = 40  # individual files listed in the table when there are more changes than this


# -- JSON ---------------------------------------------------------------------------------------


def _path_fields(path: str, key: str = "path") -> dict[str, Any]:
    out: dict[str, Any] = {key: display(path)}
    raw = raw_b64(path)
    if raw is not None:
        out[key + "_b64"] = raw
    return out


def _delta(old: float | int, new: float | int, digits: int | None = None) -> dict[str, Any]:
    if digits is not None:
        return {"old": round(old, digits), "new": round(new, digits),
                "delta": round(new - old, digits)}
    return {"old": old, "new": new, "delta": new - old}


def _side(side: Side) -> dict[str, Any]:
    return {
        "format": side.source_format,
        "tags": list(side.tags),
        "manifest_digest": side.manifest_digest,
        "config_digest": side.config_digest,
        "platform": side.platform,
        "layers": side.layers,
    }


def _layer(info: LayerInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "index": info.index,
        "diff_id": info.diff_id,
        "blob_digest": info.blob_digest,
        "compression": info.compression,
        "compressed_bytes": info.compressed_size,
        "uncompressed_bytes": info.uncompressed_size,
        "created_by": info.created_by,
    }


def _config_value(value: str | tuple[str, ...] | None) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _state(state: FileState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    out: dict[str, Any] = {
        "type": state.type, "size": state.size, "mode": state.mode, "uid": state.uid,
        "gid": state.gid,
        "link_target": display(state.link_target) if state.link_target is not None else None,
        "devmajor": state.devmajor, "devminor": state.devminor,
        "xattrs": {k: v for k, v in state.xattrs},
        "layer": state.layer, "links": state.links,
        "hardlink_of": display(state.hardlink_of) if state.hardlink_of is not None else None,
        "sha256": state.digest, "package": state.owner,
    }
    if state.link_target is not None and raw_b64(state.link_target) is not None:
        out["link_target_b64"] = raw_b64(state.link_target)
    return out


def _file(change: FileChange) -> dict[str, Any]:
    return {
        **_path_fields(change.path),
        "status": change.status,
        "changes": list(change.changes),
        "content": change.content,
        "bytes_delta": change.bytes_delta,
        "old": _state(change.old),
        "new": _state(change.new),
        "old_still_shipped": change.old_still_shipped,
    }


def _counts(d: ImageDiff) -> dict[str, Any]:
    layers = files = packages = None
    if d.layers is not None:
        c = Counter(x.status for x in d.layers)
        layers = {k: c.get(k, 0) for k in ("shared", "changed", "added", "removed")}
    if d.files is not None:
        c = Counter(x.status for x in d.files)
        files = {k: c.get(k, 0) for k in ("added", "removed", "changed")}
    if d.packages is not None:
        c = Counter(x.status for x in d.packages)
        packages = {k: c.get(k, 0) for k in ("added", "removed", "version", "files")}
        packages["unchanged"] = d.unchanged_packages
    return {
        "layers": layers, "files": files, "packages": packages,
        "config": len(d.config) if d.config is not None else None,
        "findings": len(d.findings.changes) if d.findings is not None else None,
    }


def _summary(d: ImageDiff) -> dict[str, Any]:
    out: dict[str, Any] = {"counts": _counts(d), "sizes": None, "breakdown": None}
    so, sn = d.old.sizes, d.new.sizes
    if so is not None and sn is not None:
        out["sizes"] = {
            name: _delta(getattr(so, name), getattr(sn, name))
            for name in ("final_bytes", "final_files", "shipped_bytes", "layer_bytes",
                         "compressed_bytes", "wasted_bytes")
        }
        out["sizes"]["efficiency"] = _delta(so.efficiency, sn.efficiency, 6)
        out["sizes"]["dive_efficiency"] = _delta(so.dive_efficiency, sn.dive_efficiency, 6)
    b = d.breakdown
    if b is not None:
        out["breakdown"] = {
            "total": b.total,
            "packages": [{"package": k, "bytes_delta": v} for k, v in b.packages],
            "packages_total": b.packages_total,
            "unowned": b.unowned,
            "files": b.files,
            "wasted": b.wasted,
            "overhead": b.overhead,
            "compressed": b.compressed,
            "pull_bytes": b.pull_bytes,
        }
    return out


def diff_document(d: ImageDiff) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "imgscope/diff",
        "schema_version": SCHEMA_VERSION,
        "differs": d.differs,
        "sections": list(d.sections),
        "old": _side(d.old),
        "new": _side(d.new),
        "summary": _summary(d),
        "layers": None, "config": None, "files": None, "packages": None, "findings": None,
        "read": None,
        "warnings": [{"side": side, "code": w.code, "message": w.message}
                     for side, w in d.warnings],
    }
    if d.layers is not None:
        doc["layers"] = [{"position": c.position, "status": c.status, "base": c.base,
                          "old": _layer(c.old), "new": _layer(c.new)} for c in d.layers]
    if d.config is not None:
        doc["config"] = [{"field": c.field, "key": c.key, "old": _config_value(c.old),
                          "new": _config_value(c.new)} for c in d.config]
    if d.files is not None:
        content = d.content
        doc["files"] = {
            "bytes_delta": sum(c.bytes_delta for c in d.files),
            "entries": [_file(c) for c in d.files],
            "directories": [
                {**_path_fields(g.path), "added": g.added, "removed": g.removed,
                 "changed": g.changed, "bytes_delta": g.bytes_delta}
                for g in group_by_directory(d.files, DIR_GROUPS)
            ],
            "content_check": None if content is None else {
                "candidates": content.candidates, "hashed": content.hashed,
                "compared": content.compared,
                "unknown": content.unknown, "identical": content.identical,
                "identical_bytes": content.identical_bytes,
                "layers_read": [{"side": s, "layer": layer, "files_hashed": n,
                                 "files_compared": m, "layer_bytes": size, "bytes_read": read}
                                for s, layer, n, m, size, read in content.layers_read],
            },
        }
    if d.packages is not None:
        doc["packages"] = [
            {"status": c.status, "ecosystem": c.ecosystem, "name": c.name, "arch": c.arch,
             "old_version": c.old_version, "new_version": c.new_version,
             "old_bytes": c.old_bytes, "new_bytes": c.new_bytes, "bytes_delta": c.bytes_delta,
             "old_files": c.old_files, "new_files": c.new_files}
            for c in d.packages
        ]
    if d.findings is not None:
        f = d.findings
        doc["findings"] = {
            "wasted_bytes": _delta(f.wasted_old, f.wasted_new),
            "efficiency": _delta(f.efficiency_old, f.efficiency_new, 6),
            "dive_efficiency": _delta(f.dive_efficiency_old, f.dive_efficiency_new, 6),
            "changes": [{"status": c.status, "kind": c.kind, "title": display(c.title),
                         "old_bytes": c.old_bytes, "new_bytes": c.new_bytes}
                        for c in f.changes],
        }
    if d.read is not None:
        r = d.read
        doc["read"] = {"shared_prefix": r.shared_prefix, "walked": r.walked,
                       "replayed_layers": r.replayed_layers, "replayed_bytes": r.replayed_bytes,
                       "replayed_verified": r.verified_only,
                       "replayed_copies": r.copies,
                       "replayed_hashed_bytes": r.verify_bytes}
    return doc


# -- table --------------------------------------------------------------------------------------


def signed(size: int) -> str:
    if size == 0:
        return "0 B"
    return ("+" if size > 0 else "-") + human(abs(size))


def _name(side: Side) -> str:
    return ", ".join(side.tags) or (side.config_digest or "untagged")


def _short(digest: str | None) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def _instruction(text: str | None, width: int = 50) -> str:
    if not text:
        return "-"
    text = " ".join(text.replace("/bin/sh -c #(nop) ", "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _value(value: str | tuple[str, ...] | None, width: int = 60) -> str:
    if value is None:
        return "-"
    text = " ".join(value) if isinstance(value, tuple) else value
    text = display(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def diff_text(d: ImageDiff) -> str:
    out: list[str] = []
    for label, side in (("old", d.old), ("new", d.new)):
        out.append(f"{label}: {_name(side)}  ({side.source_format}, {side.platform or '-'}, "
                   f"layers: {side.layers}, config {_short(side.config_digest)})")
    out.append("")
    out.extend(_summary_lines(d))
    if d.layers is not None and any(c.status != "shared" for c in d.layers):
        out += ["", "Layers", _layers_table(d.layers)]
    if d.config:
        out += ["", f"Config ({len(d.config)} changes)", _config_table(d.config)]
    if d.packages:
        out += ["", f"Packages ({len(d.packages)} changed, {d.unchanged_packages} unchanged)"]
        rows = [[c.status, f"{c.ecosystem}/{c.name}" + (f":{c.arch}" if c.arch else ""),
                 c.old_version or "-", c.new_version or "-", signed(c.bytes_delta),
                 f"{c.old_files} -> {c.new_files}"]
                for c in sorted(d.packages, key=lambda c: (-abs(c.bytes_delta), c.name))]
        out.append(tabulate(rows, headers=["", "package", "old", "new", "bytes", "files"],
                            disable_numparse=True))
    if d.files:
        out += ["", *_files_lines(d)]
    if d.findings is not None and d.findings.changes:
        out += ["", "Findings"]
        out.append(tabulate([[c.status, c.kind, _value(c.title, 70),
                              human(c.old_bytes) if c.old_bytes else "-",
                              human(c.new_bytes) if c.new_bytes else "-"]
                             for c in d.findings.changes],
                            headers=["", "kind", "finding", "old", "new"],
                            disable_numparse=True))
    if d.warnings:
        out += ["", "Warnings"]
        out.extend(f"  - {side}: {w.message}" for side, w in d.warnings)
    if not d.differs:
        out += ["", "No differences in: " + ", ".join(d.sections) + "."]
    return "\n".join(out) + "\n"


def _summary_lines(d: ImageDiff) -> list[str]:
    out = ["Summary"]
    so, sn, b = d.old.sizes, d.new.sizes, d.breakdown
    if so is not None and sn is not None and b is not None:
        rows: list[list[str]] = [
            ["layers (uncompressed)", human(so.layer_bytes), human(sn.layer_bytes),
             signed(b.total)],
        ]
        if b.packages_total is not None:
            top = ", ".join(f"{k.split('/', 1)[-1].split('@')[0]} {signed(v)}"
                            for k, v in b.packages[:3])
            rows.append(["  packages", "", "", signed(b.packages_total), top])
            rows.append(["  unowned files", "", "", signed(b.unowned or 0)])
        else:
            rows.append(["  files", "", "", signed(b.files)])
        rows += [
            ["  wasted (hidden)", "", "", signed(b.wasted)],
            ["  tar overhead", "", "", signed(b.overhead)],
            ["stored (compressed)", human(so.compressed_bytes), human(sn.compressed_bytes),
             signed(b.compressed)],
            ["final filesystem", human(so.final_bytes), human(sn.final_bytes), signed(b.files)],
            ["regular files", str(so.final_files), str(sn.final_files),
             f"{sn.final_files - so.final_files:+d}"],
            ["wasted", human(so.wasted_bytes), human(sn.wasted_bytes),
             signed(sn.wasted_bytes - so.wasted_bytes)],
            ["efficiency", f"{so.efficiency:.1%}", f"{sn.efficiency:.1%}",
             f"{(sn.efficiency - so.efficiency) * 100:+.1f} pt"],
            ["to pull, having old", "", "", human(b.pull_bytes), "compressed layers old lacks"],
        ]
        out.append(_aligned([["", "old", "new", "delta", ""], *rows]))
    counts = _counts(d)
    parts = []
    if counts["layers"] is not None:
        parts.append("layers: " + ", ".join(f"{v} {k}" for k, v in counts["layers"].items()))
    if counts["files"] is not None:
        parts.append("files: " + ", ".join(f"{v} {k}" for k, v in counts["files"].items()))
    if counts["packages"] is not None:
        c = counts["packages"]
        parts.append(f"packages: {c['added']} added, {c['removed']} removed, {c['version']} "
                     f"version changed, {c['files']} with changed files")
    if counts["config"] is not None:
        parts.append(f"config: {counts['config']} changes")
    out.extend("  " + p for p in parts)
    r = d.read
    if r is not None and r.replayed_layers:
        how = {"read": "verified by hash only",
               "by-diff-id": "not read: known by its diff_id (--verify-copies reads it)",
               "unverified": "trusted (--no-verify)"}[r.copies]
        what = "layer was" if r.replayed_layers == 1 else "layers were"
        out.append(f"  shared base: {r.replayed_layers} {what} walked once ("
                   f"{human(r.replayed_bytes)}, in {r.walked}); the other copy {how}")
    return out


def _aligned(rows: list[list[str]]) -> str:
    """Columns padded by hand: tabulate strips the indentation that marks the breakdown."""
    rows = [row + [""] * (5 - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def _layers_table(layers: tuple[LayerChange, ...]) -> str:
    rows = []
    for c in layers:
        rows.append([
            c.position, c.status,
            _short(c.old.diff_id) if c.old else "-", _short(c.new.diff_id) if c.new else "-",
            human(c.old.uncompressed_size) if c.old else "-",
            human(c.new.uncompressed_size) if c.new else "-",
            _instruction((c.new or c.old).created_by if (c.new or c.old) else None),
        ])
    return tabulate(rows, headers=["#", "", "old diff_id", "new diff_id", "old size",
                                   "new size", "created by (new)"], disable_numparse=True)


def _config_table(changes: tuple[ConfigChange, ...]) -> str:
    rows = [[c.field, display(c.key) if c.key is not None else "", _value(c.old), _value(c.new)]
            for c in changes]
    return tabulate(rows, headers=["field", "key", "old", "new"], disable_numparse=True)


_MARK = {"added": "+", "removed": "-", "changed": "~"}


def _files_lines(d: ImageDiff) -> list[str]:
    files = d.files or ()
    counts = Counter(c.status for c in files)
    total = sum(c.bytes_delta for c in files)
    out = [f"Files ({counts['added']} added, {counts['removed']} removed, {counts['changed']} "
           f"changed, {signed(total)})"]
    groups = group_by_directory(files, DIR_GROUPS)
    out.append(tabulate([[display(g.path), f"+{g.added}", f"-{g.removed}", f"~{g.changed}",
                          signed(g.bytes_delta)] for g in groups],
                        headers=["directory", "added", "removed", "changed", "bytes"],
                        disable_numparse=True))
    shown = list(files)
    if len(shown) > FILE_ROWS:
        shown = sorted(shown, key=lambda c: (-_weight(c), c.path))[:FILE_ROWS]
        out += ["", f"Biggest {FILE_ROWS} file changes (--format json lists all {len(files)})"]
    else:
        out.append("")
    rows = []
    for c in shown:
        state = c.new or c.old
        assert state is not None
        rows.append([_MARK[c.status], mode_string(state.type, state.mode),
                     signed(c.bytes_delta), _what(c), _file_name(c)])
    out.append(tabulate(rows, headers=["", "mode", "bytes", "what", "path"],
                        disable_numparse=True))
    if d.content is not None and d.content.candidates:
        cc = d.content
        files, were = ("file", "was") if cc.candidates == 1 else ("files", "were")
        how = [f"{count} {what}" for count, what in ((cc.compared, "compared byte for byte"),
                                                     (cc.hashed, "compared by sha256"),
                                                     (cc.unknown, 'not read ("rewritten")'))
               if count]
        out.append(f"  content: {cc.candidates} {files} had the same size and metadata but {were} "
                   f"written by different layers; {', '.join(how)}")
        if cc.identical:
            out.append(f"  {cc.identical} files were written again with identical content: no "
                       f"change, but {human(cc.identical_bytes)} shipped again")
    return out


def _weight(c: FileChange) -> int:
    """Bytes a change ships or frees: a rewritten file is shipped whole, even if only its
    mode changed (bytes_delta is 0 then)."""
    return max(abs(c.bytes_delta), c.new.size if c.new else 0, c.old.size if c.old else 0)


def _what(c: FileChange) -> str:
    if c.status != "changed":
        state = c.old if c.status == "removed" else c.new
        owner = state.owner if state else None
        text = owner.split("@")[0] if owner else ""
        if c.status == "removed" and c.old_still_shipped:
            text = (text + " " if text else "") + "(still shipped, hidden)"
        return text
    parts = []
    a, b = c.old, c.new
    assert a is not None and b is not None
    for name in c.changes:
        if name == "type":
            parts.append(f"{a.type} -> {b.type}")
        elif name == "mode":
            parts.append(f"mode {a.mode:04o} -> {b.mode:04o}")
        elif name in ("uid", "gid"):
            parts.append(f"{name} {getattr(a, name)} -> {getattr(b, name)}")
        elif name == "size":
            parts.append(f"size {a.size} -> {b.size}")
        elif name == "rewritten":
            parts.append("rewritten by another layer, same size")
        elif name == "link_target":
            parts.append(f"target {display(a.link_target or '')} -> "
                         f"{display(b.link_target or '')}")
        elif name == "links":
            parts.append(f"links {a.links} -> {b.links}")
        elif name != "hardlink" or "links" not in c.changes:
            parts.append(name)
    return ", ".join(parts)


def _file_name(c: FileChange) -> str:
    state = c.new or c.old
    name = display(c.path)
    if state is not None and state.link_target is not None:
        name += " -> " + display(state.link_target)
    if state is not None and state.hardlink_of is not None:
        name += " (hard link of " + display(state.hardlink_of) + ")"
    return name
