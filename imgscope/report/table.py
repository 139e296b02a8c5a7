"""The readable report: tabulate tables on stdout. Reads an Analysis; computes nothing."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from imgscope.api import Analysis
from imgscope.report.advice import advice_text
from imgscope.report.packages import packages_text
from imgscope.report.paths import display, human, mode_string

WASTED_ROWS = 15


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    return digest.split(":", 1)[-1][:12]


def _instruction(text: str | None, width: int = 60) -> str:
    if not text:
        return "-"
    text = text.replace("/bin/sh -c #(nop) ", "")
    if not text.startswith("RUN "):
        text = text.replace("/bin/sh -c ", "RUN ", 1)
    else:
        text = text.replace("RUN /bin/sh -c ", "RUN ", 1)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def inspect_text(analysis: Analysis) -> str:
    cfg = analysis.config
    ref = analysis.ref
    s = analysis.summary
    out: list[str] = []
    name = ", ".join(ref.tags) or (ref.config_digest or "untagged")
    out.append(f"Image: {name}")
    rows: list[list[Any]] = [
        ["format", ref.source_format],
        ["platform", ref.platform or "-"],
        ["created", cfg.created or "-"],
        ["entrypoint", " ".join(cfg.entrypoint) if cfg.entrypoint else "-"],
        ["cmd", " ".join(cfg.cmd) if cfg.cmd else "-"],
        ["user", cfg.user or "(root)"],
        ["workdir", cfg.working_dir or "-"],
        ["ports", ", ".join(cfg.exposed_ports) or "-"],
    ]
    out.append(tabulate(rows, tablefmt="plain"))
    out.append("")
    out.append("Sizes")
    out.append(tabulate([
        ["final filesystem", human(s.final_bytes), f"{s.final_files} files, "
                                                   f"{s.final_entries} entries"],
        ["shipped in layers", human(s.shipped_bytes), "regular-file bytes in all layer tars"],
        ["layers (tar)", human(s.layer_bytes), "uncompressed"],
        ["layers (stored)", human(s.compressed_bytes), "as in the archive"],
        ["archive", human(s.archive_bytes), ""],
        ["wasted", human(s.wasted_bytes), "shipped but hidden or replaced by a later layer"],
        ["efficiency", f"{s.efficiency:.1%}", f"dive's score: {s.dive_efficiency:.1%}, "
                                             f"dive's wasted: {human(s.dive_wasted_bytes)}"],
    ], tablefmt="plain"))
    out.append("")
    out.append("Layers")
    layer_rows = []
    for info, st in zip(analysis.layers, analysis.stats, strict=True):
        layer_rows.append([
            info.index, _short(info.diff_id), info.compression, human(info.uncompressed_size),
            f"+{st.added_entries}/~{st.modified_entries}/-{st.removed_entries}",
            human(st.shipped_bytes), human(st.wasted_bytes), _instruction(info.created_by),
        ])
    out.append(tabulate(layer_rows, headers=["#", "diff_id", "comp", "size", "+/~/-", "files",
                                             "wasted", "created by"]))
    facts = analysis.facts
    if facts.biggest_files:
        out.append("")
        out.append("Biggest files")
        out.append(tabulate([[human(f.bytes), f.layer, display(f.path)]
                             for f in facts.biggest_files[:10]],
                            headers=["size", "layer", "path"]))
    if analysis.wasted:
        out.append("")
        wasted = sorted(analysis.wasted, key=lambda w: (-w.size, w.path))
        out.append(f"Wasted bytes ({len(wasted)} files, {human(s.wasted_bytes)})")
        out.append(tabulate([[human(w.size), w.layer, w.hidden_by_layer, w.how, display(w.path)]
                             for w in wasted[:WASTED_ROWS]],
                            headers=["size", "shipped in", "hidden by", "how", "path"]))
    if facts.setuid:
        out.append("")
        out.append(f"Setuid/setgid files ({len(facts.setuid)})")
        out.append(tabulate([[mode_string(m.type, m.mode), f"{m.uid}:{m.gid}", display(m.path)]
                             for m in facts.setuid[:20]], tablefmt="plain"))
    if facts.world_writable:
        out.append("")
        out.append(f"World-writable ({len(facts.world_writable)})")
        out.append(tabulate([[mode_string(m.type, m.mode), display(m.path)]
                             for m in facts.world_writable[:20]], tablefmt="plain"))
    if analysis.attribution is not None:
        out.append("")
        out.append(packages_text(analysis.attribution, limit=15).rstrip("\n"))
    advice = advice_text(analysis)  # build tools left in, and what to do about them
    if advice:
        out.append("")
        out.append(advice.rstrip("\n"))
    if analysis.findings:
        out.append("")
        out.append(f"Findings ({len(analysis.findings)})")
        out.append(tabulate([[f.layer, f.kind, display(f.path), display(f.detail)]
                             for f in analysis.findings[:30]],
                            headers=["layer", "kind", "path", "detail"]))
    if analysis.warnings:
        out.append("")
        out.append("Warnings")
        out.extend(f"  - {w.message}" for w in analysis.warnings)
    return "\n".join(out) + "\n"


def ls_text(entries: list[dict[str, Any]], with_layer: bool = True) -> str:
    rows = []
    for e in entries:
        name = e["path"]
        if e.get("link_target") is not None:
            name += " -> " + e["link_target"]
        if e.get("whiteout"):
            name += "  (whiteout)"
        if e.get("opaque"):
            name += "  (opaque)"
        row = [mode_string(e["type"], e["mode"]), f"{e['uid']}:{e['gid']}", e["size"]]
        if with_layer:
            row.append(e["layer"])
        row.append(name)
        rows.append(row)
    headers = ["mode", "uid:gid", "size"] + (["layer"] if with_layer else []) + ["path"]
    return tabulate(rows, headers=headers, disable_numparse=True) + "\n"
