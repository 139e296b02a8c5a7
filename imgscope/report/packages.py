"""Package reports: the packages section of inspect, `imgscope packages`, and CycloneDX."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from imgscope import __version__
from imgscope.api import Analysis
from imgscope.attribution import Attribution, PackageUsage
from imgscope.report.paths import display, human

SORTS = ("bytes", "name", "layer")


def sorted_usages(attribution: Attribution, sort: str = "bytes") -> list[PackageUsage]:
    usages = list(attribution.packages)
    if sort == "name":
        usages.sort(key=lambda u: (u.package.name, u.package.ecosystem, u.key))
    elif sort == "layer":
        usages.sort(key=lambda u: (u.introduced_layer if u.introduced_layer is not None else -1,
                                   -u.final_bytes, u.key))
    else:
        usages.sort(key=lambda u: (-u.final_bytes, u.key))
    return usages


def package_record(usage: PackageUsage, full: bool) -> dict[str, Any]:
    pkg = usage.package
    record: dict[str, Any] = {
        "ecosystem": pkg.ecosystem,
        "name": pkg.name,
        "version": pkg.version,
        "arch": pkg.arch,
        "purl": pkg.purl,
        "bytes": usage.final_bytes,
        "shipped_bytes": usage.shipped_bytes,
        "files": usage.files,
        "missing_files": usage.missing_files,
        "introduced_layer": usage.introduced_layer,
        "changed_layers": list(usage.changed_layers),
        "evidence": [display(p) for p in pkg.evidence],
    }
    if full:
        record["dependencies"] = list(pkg.dependencies)
        record["provides"] = list(pkg.provides)
        record["source"] = pkg.source
        record["installed_size"] = pkg.installed_size
        record["layer_bytes"] = [{"layer": layer, "bytes": size}
                                 for layer, size in usage.layer_bytes]
    return record


def packages_section(attribution: Attribution, full: bool, sort: str = "bytes") -> dict[str, Any]:
    return {
        "count": len(attribution.packages),
        "owned_bytes": attribution.owned_bytes,
        "unowned_bytes": attribution.unowned_bytes,
        "unowned_files": attribution.unowned_files,
        "items": [package_record(u, full) for u in sorted_usages(attribution, sort)],
        "unowned": [{"directory": display(g.directory), "bytes": g.bytes, "files": g.files}
                    for g in attribution.unowned],
        "by_layer": [
            {"layer": lp.layer,
             "added": [{"package": k, "bytes": b} for k, b in lp.added],
             "changed": [{"package": k, "bytes": b} for k, b in lp.changed],
             "removed": [{"package": k, "bytes": b} for k, b in lp.removed],
             "upgraded": [{"from": old, "to": new, "bytes": b} for old, new, b in lp.upgraded]}
            for lp in attribution.layers
        ],
    }


def packages_text(attribution: Attribution, sort: str = "bytes", limit: int | None = None) -> str:
    usages = sorted_usages(attribution, sort)
    shown = usages[:limit] if limit else usages
    rows = [[human(u.final_bytes), u.files, u.package.ecosystem, u.package.name,
             u.package.version, u.introduced_layer if u.introduced_layer is not None else "-"]
            for u in shown]
    out = [f"Packages ({len(usages)}; owned {human(attribution.owned_bytes)}, "
           f"unowned {human(attribution.unowned_bytes)} in {attribution.unowned_files} files)"]
    out.append(tabulate(rows, headers=["size", "files", "type", "name", "version", "layer"],
                        disable_numparse=True))
    if limit and len(usages) > limit:
        out.append(f"... {len(usages) - limit} more (imgscope packages IMAGE)")
    if attribution.unowned:
        out.append("")
        out.append("Bytes no package owns, by directory")
        out.append(tabulate([[human(g.bytes), g.files, display(g.directory)]
                             for g in attribution.unowned[:10]],
                            headers=["size", "files", "directory"], disable_numparse=True))
    return "\n".join(out) + "\n"


def cyclonedx_document(analysis: Analysis) -> dict[str, Any]:
    """A CycloneDX 1.5 JSON SBOM; deterministic (serial number derived from the config)."""
    import uuid  # only here: it costs ~4 ms (it imports platform)

    attribution = analysis.attribution
    assert attribution is not None
    ref = analysis.ref
    identity = ref.config_digest or ref.manifest_digest or "unknown"
    components = []
    refs_by_name: dict[tuple[str, str], str] = {}
    usages = sorted_usages(attribution, "name")
    for usage in usages:
        pkg = usage.package
        refs_by_name.setdefault((pkg.ecosystem, pkg.name), usage.key)
    dependencies = []
    for usage in usages:
        pkg = usage.package
        component: dict[str, Any] = {
            "type": "application" if pkg.ecosystem in ("golang", "cargo") and usage.files
            else "library",
            "bom-ref": usage.key,
            "name": pkg.name,
            "version": pkg.version,
            "properties": [
                {"name": "imgscope:bytes", "value": str(usage.final_bytes)},
                {"name": "imgscope:shipped_bytes", "value": str(usage.shipped_bytes)},
                {"name": "imgscope:files", "value": str(usage.files)},
                {"name": "imgscope:ecosystem", "value": pkg.ecosystem},
            ],
        }
        if pkg.purl:
            component["purl"] = pkg.purl
        if usage.introduced_layer is not None:
            component["properties"].append(
                {"name": "imgscope:layer", "value": str(usage.introduced_layer)})
        components.append(component)
        depends = sorted({refs_by_name[(pkg.ecosystem, d)] for d in pkg.dependencies
                          if (pkg.ecosystem, d) in refs_by_name} - {usage.key})
        dependencies.append({"ref": usage.key, "dependsOn": depends})
    name = ref.tags[0] if ref.tags else identity
    metadata: dict[str, Any] = {
        "tools": {"components": [{"type": "application", "name": "imgscope",
                                  "version": __version__}]},
        "component": {"type": "container", "bom-ref": "image", "name": name,
                      "version": identity,
                      "properties": [
                          {"name": "imgscope:final_bytes",
                           "value": str(analysis.summary.final_bytes)},
                          {"name": "imgscope:unowned_bytes",
                           "value": str(attribution.unowned_bytes)},
                      ]},
    }
    if analysis.config.created:
        metadata["timestamp"] = analysis.config.created
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'imgscope:' + identity)}",
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": [u.key for u in usages]}, *dependencies],
    }
