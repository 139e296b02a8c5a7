"""Findings and recommendations, as text and as JSON. Reads analysis.extras; computes nothing."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from imgscope.model import Finding, Recommendation
from imgscope.report.paths import display, human

FINDING_ROWS = 30


def _advice(analysis):
    return getattr(analysis.extras, "advice", None)


def _one_line(text: str | None, width: int = 70) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _package_name(key: str) -> str:
    """deb/libc6-dev:amd64@2.36-9 -> libc6-dev"""
    return key.split("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def findings_rows(findings: list[Finding]) -> list[list[Any]]:
    return [[human(f.bytes), f.files, f.kind,
             f.layer if f.layer is not None else "-", _one_line(display(f.title), 80)]
            for f in findings]


def advice_text(analysis, *, full: bool = False) -> str:
    """The findings table and the ranked recommendations; `full` adds every piece of
    evidence and the Dockerfile sketches (the `advise` command)."""
    advice = _advice(analysis)
    findings = analysis.extras.findings
    recs = analysis.extras.recommendations
    out: list[str] = []
    if advice is None and not findings:
        return ""
    total = sum(f.bytes for f in findings)
    out.append(f"Build tools and leftovers ({len(findings)} findings, {human(total)})")
    if findings:
        ordered = sorted(findings, key=lambda f: -f.bytes)
        out.append(tabulate(findings_rows(ordered[:FINDING_ROWS]),
                            headers=["bytes", "files", "kind", "layer", "what"]))
        if full:
            for f in ordered:
                out.append("")
                out.append(f"* {display(f.title)}: {human(f.bytes)} in {f.files} files")
                out.append(f"  why: {f.reason}")
                if f.instruction:
                    out.append(f"  layer {f.layer}: {_one_line(f.instruction, 100)}")
                for name, size in f.items[:12]:
                    out.append(f"  - {display(name)}: {human(size)}")
                if len(f.items) > 12:
                    out.append(f"  - ... {len(f.items) - 12} more")
                if f.paths:
                    out.append("  evidence: " + ", ".join(display(p) for p in f.paths[:6]))
    else:
        out.append("  none: no compilers, build systems, dev files or caches were found")
    if advice is not None and advice.scan.kept_tools:
        out.append("")
        out.append("Build tools kept because the runtime closure needs them")
        for key, why in advice.scan.kept_tools[: 30 if full else 6]:
            out.append(f"  - {_package_name(key)}: {why}")
        if len(advice.scan.kept_tools) > (30 if full else 6):
            out.append(f"  - ... {len(advice.scan.kept_tools) - (30 if full else 6)} more")
    out.append("")
    image = advice.image_bytes if advice is not None else analysis.summary.shipped_bytes
    if not recs:
        out.append(f"Recommendations (image {human(image)}): none")
    else:
        final = recs[-1].size_after if recs[-1].size_after is not None else image
        out.append(f"Recommendations (image {human(image)} -> about {human(final)} with all)")
        rows = []
        for n, r in enumerate(recs, 1):
            alone = "" if r.bytes_alone == r.bytes_saved else f" (alone {human(r.bytes_alone)})"
            rows.append([n, human(r.bytes_saved) + alone,
                         human(r.size_after) if r.size_after is not None else "-",
                         _one_line(r.title, 80)])
        out.append(tabulate(rows, headers=["#", "saves", "size after", "recommendation"]))
        if full:
            for n, r in enumerate(recs, 1):
                out.append("")
                out.append(f"{n}. {r.title}")
                out.append(f"   saves {human(r.bytes_saved)} (alone {human(r.bytes_alone)}); "
                           f"image after: {human(r.size_after or 0)}")
                out.append(f"   {r.reason}")
                if r.instruction:
                    out.append(f"   change layer {r.layer}: {_one_line(r.instruction, 100)}")
                for e in r.evidence:
                    out.append(f"   - {display(e)}")
                if r.dockerfile:
                    out.append("")
                    out.extend("   " + line if line else "" for line in
                               r.dockerfile.rstrip("\n").split("\n"))
        elif any(r.dockerfile for r in recs):
            out.append("(imgscope advise IMAGE shows the evidence and the Dockerfile sketches)")
    if full and advice is not None and advice.scan.limits:
        out.append("")
        out.append("What this analysis cannot see")
        out.extend(f"  - {text}" for text in advice.scan.limits)
    return "\n".join(out) + "\n"


def finding_doc(f: Finding) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "category": f.category,
        "title": display(f.title),
        "bytes": f.bytes,
        "files": f.files,
        "paths": [display(p) for p in f.paths],
        "packages": list(f.packages),
        "items": [{"name": display(n), "bytes": b} for n, b in f.items],
        "layer": f.layer,
        "layers": list(f.layers),
        "instruction": f.instruction,
        "reason": f.reason,
    }


def recommendation_doc(rank: int, r: Recommendation) -> dict[str, Any]:
    return {
        "rank": rank,
        "kind": r.kind,
        "title": r.title,
        "bytes_saved": r.bytes_saved,
        "bytes_alone": r.bytes_alone,
        "size_after": r.size_after,
        "reason": r.reason,
        "evidence": [display(e) for e in r.evidence],
        "dockerfile": r.dockerfile,
        "packages": list(r.packages),
        "paths": [display(p) for p in r.paths],
        "layer": r.layer,
        "instruction": r.instruction,
    }


def advice_section(analysis) -> dict[str, Any] | None:
    """The "advice" object of the JSON documents (docs/json-schema.md), None when not run."""
    advice = _advice(analysis)
    if advice is None:
        return None
    scan = advice.scan
    closure = scan.closure
    base = advice.runtime_base
    return {
        "image_bytes": advice.image_bytes,
        "findings": [finding_doc(f) for f in analysis.extras.findings],
        "recommendations": [recommendation_doc(n, r)
                            for n, r in enumerate(analysis.extras.recommendations, 1)],
        "runtime": None if base is None else {
            "base": base.ref, "base_kind": base.kind, "reason": base.reason,
            "predicted_bytes": advice.runtime_bytes,
        },
        "base_image": {"layers": scan.base.layers, "name": scan.base.name,
                       "how": scan.base.how},
        "closure": None if closure is None else {
            "kind": closure.kind, "executable": closure.executable,
            "argv": list(closure.argv), "packages": list(closure.packages),
            "app_paths": [display(p) for p in closure.app_paths],
        },
        "kept_build_tools": [{"package": k, "reason": why} for k, why in scan.kept_tools],
        "limits": list(scan.limits),
    }


def ci_section(results) -> dict[str, Any]:
    """The "ci" object: every rule, its figure and whether it failed."""
    return {
        "passed": not any(r.failed for r in results),
        "rules": [{"rule": r.rule.text, "source": r.rule.source, "metric": r.rule.metric,
                   "value": r.value, "failed": r.failed} for r in results],
    }
