"""Find the image in a container: docker-archive manifest.json or OCI index.json.

Recognised by content: `manifest.json` (docker save, podman/skopeo, kaniko, Docker 25+ which
also carries an OCI layout) wins over `index.json` (OCI archives and layouts) because it names
tags. Several images or complete platforms without a choice is an error listing them; an index
whose other platforms lack their blobs selects the one complete image and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imgscope.archive.container import Container
from imgscope.archive.jsonload import get_dict, get_list, get_str, load_json
from imgscope.errors import (
    ChoiceRequired,
    CorruptInput,
    ImgscopeError,
    MissingBlob,
    NotAnImage,
    NotRunnable,
    UnsafeReference,
)
from imgscope.model import Descriptor, HistoryItem, ImageConfig, Warning_

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_HEX_NAME = re.compile(r"(?:^|/)(?:sha256[:/])?([a-f0-9]{64})(?:\.json|\.tar(?:\.gz|\.zst)?)?$")

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
CONFIG_TYPES = {
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
}
LAYER_TYPE_PREFIXES = (
    "application/vnd.oci.image.layer.",
    "application/vnd.docker.image.rootfs.",
)


@dataclass
class LayerRef:
    """A layer as the manifest names it."""

    name: str  # member name in the container
    media_type: str | None
    digest: str | None  # the blob digest the manifest claims (None: docker-archive path only)
    size: int | None


@dataclass
class ResolvedImage:
    """The image chosen in a container: how it was found, its config, and its layers."""

    source_format: str
    tags: tuple[str, ...]
    manifest_digest: str | None
    config_name: str
    config_digest: str | None
    config: ImageConfig
    layers: list[LayerRef]
    platform: str | None
    warnings: list[Warning_] = field(default_factory=list)


def blob_name(digest: str, what: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise UnsafeReference(f"{what} has a malformed digest {str(digest)[:80]!r}")
    algorithm, hexpart = digest.split(":", 1)
    return f"blobs/{algorithm}/{hexpart}"


def _digest_from_name(name: str) -> str | None:
    match = _HEX_NAME.search(name)
    return "sha256:" + match.group(1) if match else None


def platform_string(platform: dict) -> str | None:
    os_name = get_str(platform, "os")
    arch = get_str(platform, "architecture")
    if not os_name or not arch:
        return None
    variant = get_str(platform, "variant")
    return f"{os_name}/{arch}" + (f"/{variant}" if variant else "")


def _platform_matches(have: str | None, want: str) -> bool:
    if have is None:
        return False
    if have == want:
        return True
    # "linux/arm64" matches "linux/arm64/v8"; "linux/arm" matches any arm variant.
    return have.startswith(want + "/")


def parse_config(data: bytes, what: str) -> ImageConfig:
    doc = load_json(data, what)
    cfg = get_dict(doc, "config") or get_dict(doc, "container_config")
    rootfs = get_dict(doc, "rootfs")

    def str_tuple(value) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        return None

    history = []
    for item in get_list(doc, "history"):
        if isinstance(item, dict):
            history.append(
                HistoryItem(
                    created=get_str(item, "created"),
                    created_by=get_str(item, "created_by") or "",
                    empty_layer=item.get("empty_layer") is True,
                    comment=get_str(item, "comment"),
                )
            )
    labels = get_dict(cfg, "Labels")
    return ImageConfig(
        os=get_str(doc, "os"),
        architecture=get_str(doc, "architecture"),
        variant=get_str(doc, "variant"),
        entrypoint=str_tuple(cfg.get("Entrypoint")),
        cmd=str_tuple(cfg.get("Cmd")),
        env=tuple(str(v) for v in get_list(cfg, "Env")),
        user=get_str(cfg, "User") or None,
        working_dir=get_str(cfg, "WorkingDir") or None,
        exposed_ports=tuple(sorted(str(k) for k in get_dict(cfg, "ExposedPorts"))),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        created=get_str(doc, "created"),
        diff_ids=tuple(str(d) for d in get_list(rootfs, "diff_ids")),
        history=tuple(history),
    )


def resolve_image(
    container: Container, image: str | None, platform: str | None, verify: bool
) -> ResolvedImage:
    if container.exists("manifest.json"):
        return _docker_archive(container, image, platform, verify)
    if container.exists("index.json"):
        return _oci_layout(container, image, platform, verify)
    names = container.names()
    if any(n.endswith("/layer.tar") for n in names) and container.exists("repositories"):
        raise NotAnImage(
            "legacy docker-save archive without manifest.json (Docker < 1.10) is not supported"
        )
    raise NotAnImage("no manifest.json or index.json: not a container image")


# -- docker-archive -------------------------------------------------------------------------


def _docker_archive(
    container: Container, image: str | None, platform: str | None, verify: bool
) -> ResolvedImage:
    doc = load_json(container.read_small("manifest.json", "manifest.json"), "manifest.json",
                    expect=object)
    if doc is None:
        raise NotAnImage("manifest.json is null: not a container image")
    if not isinstance(doc, list) or not doc:
        raise NotAnImage("manifest.json lists no images")
    items = [d for d in doc if isinstance(d, dict)]
    if not items:
        raise NotAnImage("manifest.json lists no images")

    def label(i: int, item: dict) -> list[str]:
        tags = [t for t in get_list(item, "RepoTags") if isinstance(t, str)]
        config = get_str(item, "Config") or ""
        digest = _digest_from_name(config)
        return tags + ([digest] if digest else []) + [f"#{i}"]

    chosen = 0
    if image is not None:
        matches = [i for i, item in enumerate(items) if _matches(image, label(i, item))]
        if not matches:
            raise ImgscopeError(
                f"no image {image!r} in the archive; it holds: "
                + ", ".join(_choice(label(i, it)) for i, it in enumerate(items))
            )
        chosen = matches[0]
    elif len(items) > 1:
        raise ChoiceRequired("image", [_choice(label(i, it)) for i, it in enumerate(items)])
    item = items[chosen]
    config_name = get_str(item, "Config")
    if not config_name:
        raise CorruptInput("manifest.json entry has no Config")
    config_bytes = container.read_small(config_name, "image config")
    config_digest = _digest_from_name(config_name)
    warnings: list[Warning_] = []
    if verify and config_digest:
        import hashlib

        actual = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        if actual != config_digest:
            # docker load names the image by the config's content, not by this file name, so
            # an edited config (ggcr's test data has one) still loads: say so, do not fail.
            warnings.append(Warning_(
                "config-name", f"image config {config_name} has digest {actual}, not the one "
                               "its file name says"))
    config = parse_config(config_bytes, f"image config {config_name}")
    sources = get_dict(item, "LayerSources")
    layers = []
    for index, name in enumerate(get_list(item, "Layers")):
        if not isinstance(name, str):
            raise CorruptInput(f"manifest.json layer {index} is not a path")
        digest = _digest_from_name(name)
        media_type = None
        if index < len(config.diff_ids) and config.diff_ids[index] in sources:
            source = get_dict(sources, config.diff_ids[index])
            # LayerSources describes the layer as distributed (often a compressed or foreign
            # blob), not the file in this archive: its digest is no claim about that file.
            media_type = get_str(source, "mediaType")
        layers.append(LayerRef(name=name, media_type=media_type, digest=digest, size=None))
    if not layers:
        raise NotAnImage("manifest.json names no layers")
    tags = tuple(t for t in get_list(item, "RepoTags") if isinstance(t, str))
    fmt = "docker-archive"
    if container.exists("index.json") and container.exists("oci-layout"):
        fmt = "docker-archive+oci-layout"
        warnings.extend(_index_platform_note(container, _config_platform(config)))
    plat = _config_platform(config)
    if platform is not None and not _platform_matches(plat, platform):
        raise ImgscopeError(f"the image is {plat}, not {platform}")
    return ResolvedImage(fmt, tags, None, config_name, config_digest, config, layers, plat,
                         warnings)


def _index_platform_note(container: Container, platform: str | None) -> list[Warning_]:
    """containerd exports one platform's blobs with the whole multi-platform index beside
    manifest.json: say that the other platforms are listed but absent."""
    try:
        index = load_json(container.read_small("index.json", "index.json"), "index.json")
        found: list[_Candidate] = []
        _collect(container, index, found, [], depth=0, inherited_refs=[])
    except ImgscopeError:
        return []
    listed = {c.platform for c in found if c.artifact is None}
    if len(listed) <= 1:
        return []
    return [Warning_(
        "incomplete-platforms",
        f"the OCI index lists {len(listed)} platforms; the archive holds only "
        f"{platform or 'one'}, which was read",
    )]


def _matches(want: str, labels: list[str]) -> bool:
    for value in labels:
        if value == want:
            return True
        if want.startswith("sha256:") and value.startswith(want) and len(want) >= 19:
            return True
        if ":" not in want and value.split(":")[0] == want:  # "name" matches "name:latest"
            return True
    return False


def _choice(labels: list[str]) -> str:
    return labels[0]


def _config_platform(config: ImageConfig) -> str | None:
    if not config.os or not config.architecture:
        return None
    return f"{config.os}/{config.architecture}" + (f"/{config.variant}" if config.variant else "")


def _mismatch(message: str) -> ImgscopeError:
    from imgscope.errors import DigestMismatch

    return DigestMismatch(message)


# -- OCI layout -----------------------------------------------------------------------------


@dataclass
class _Candidate:
    """A manifest an OCI index names, and why it cannot be opened (missing blob, artifact)."""

    descriptor: dict
    digest: str
    platform: str | None
    refs: list[str]
    problem: str | None = None  # why it cannot be opened (missing blob...)
    artifact: str | None = None


@dataclass
class _Group:
    """One top-level entry of index.json: an image, possibly with several platforms."""

    digest: str
    refs: list[str]
    candidates: list[_Candidate]

    def label(self) -> str:
        return self.refs[0] if self.refs else self.digest[:19]


def _oci_layout(
    container: Container, image: str | None, platform: str | None, verify: bool
) -> ResolvedImage:
    index = load_json(container.read_small("index.json", "index.json"), "index.json")
    if index.get("manifests") is None:
        raise NotAnImage("index.json lists no manifests")
    if not container.exists("oci-layout"):
        raise NotAnImage("index.json without oci-layout: not an OCI image layout")
    skipped: list[str] = []
    groups: dict[str, _Group] = {}
    for desc in get_list(index, "manifests"):
        if not isinstance(desc, dict):
            continue
        found: list[_Candidate] = []
        _collect(container, {"manifests": [desc]}, found, skipped, depth=0, inherited_refs=[])
        found = _dedupe(found)
        if not found:
            continue
        digest = get_str(desc, "digest") or ""
        refs = _refs_of(desc) or (found[0].refs if len(found) == 1 else [])
        group = groups.get(digest)
        if group is None:
            groups[digest] = _Group(digest, list(refs), found)
        else:
            group.refs += [r for r in refs if r not in group.refs]
    all_groups = list(groups.values())
    runnable = [g for g in all_groups if any(c.artifact is None for c in g.candidates)]
    if not runnable:
        if all_groups:
            first = all_groups[0].candidates[0]
            raise NotRunnable(f"OCI artifact, not a runnable image ({first.artifact})")
        detail = f" ({'; '.join(skipped[:3])})" if skipped else ""
        raise NotAnImage(f"index.json names no image manifest{detail}")
    pool = runnable
    if image is not None:
        pool = [g for g in runnable if _matches(image, g.refs + [g.digest])]
        if not pool:  # a nested manifest's own digest also selects it
            for g in runnable:
                hits = [c for c in g.candidates if _matches(image, [c.digest])]
                if hits:
                    pool = [_Group(g.digest, g.refs, hits)]
                    break
        if not pool:
            raise ImgscopeError(
                f"no image {image!r} in the layout; it holds: "
                + ", ".join(_group_choices(runnable))
            )
    if platform is not None:
        pool = [
            _Group(g.digest, g.refs, [c for c in g.candidates
                                      if _platform_matches(c.platform, platform)])
            for g in pool
        ]
        pool = [g for g in pool if g.candidates]
        if not pool:
            raise ImgscopeError(
                f"no {platform} image; platforms: " + ", ".join(sorted(
                    {c.platform or "unknown" for g in runnable for c in g.candidates}))
            )
    if len(pool) > 1:
        raise ChoiceRequired("image", _group_choices(pool))
    group = pool[0]
    candidates = [c for c in group.candidates if c.artifact is None]
    complete = [c for c in candidates if c.problem is None]
    warnings: list[Warning_] = []
    if not complete:
        first = candidates[0]
        raise MissingBlob(f"image {group.label()}: {first.problem}")
    if len(complete) > 1:
        platforms = {c.platform for c in complete}
        if len(platforms) == len(complete):
            raise ChoiceRequired("platform", sorted(p or "unknown" for p in platforms))
        raise ChoiceRequired("image", _unique_labels(complete))
    chosen = complete[0]
    chosen.refs = chosen.refs or group.refs
    if len(candidates) > 1:
        warnings.append(Warning_(
            "incomplete-platforms",
            f"the index lists {len(candidates)} platforms; only {chosen.platform or 'one'} has "
            "all its blobs, so it was selected",
        ))
    return _load_oci_manifest(container, chosen, verify, warnings)


def _refs_of(desc: dict) -> list[str]:
    annotations = get_dict(desc, "annotations")
    return [r for r in (get_str(annotations, "io.containerd.image.name"),
                        get_str(annotations, "org.opencontainers.image.ref.name")) if r]


def _group_choice(group: _Group, label: str | None = None) -> str:
    platforms = sorted({c.platform or "unknown" for c in group.candidates if c.artifact is None})
    complete = any(c.problem is None for c in group.candidates)
    note = ", ".join(platforms) + ("" if complete else "; blobs missing")
    return f"{label or group.label()} ({note})"


def _group_choices(groups: list[_Group]) -> list[str]:
    """One usable --image value per image: its ref name, or its digest when two images
    share a ref name (--image with that name could not tell them apart)."""
    counts: dict[str, int] = {}
    for group in groups:
        counts[group.label()] = counts.get(group.label(), 0) + 1
    return [_group_choice(g, g.label() if counts[g.label()] == 1 else g.digest[:19])
            for g in groups]


def _dedupe(candidates: list[_Candidate]) -> list[_Candidate]:
    """Several index entries may name one manifest (tags "latest" and "1.0"): one image."""
    by_digest: dict[str, _Candidate] = {}
    for cand in candidates:
        seen = by_digest.get(cand.digest)
        if seen is None:
            by_digest[cand.digest] = cand
        else:
            seen.refs = seen.refs + [r for r in cand.refs if r not in seen.refs]
            seen.platform = seen.platform or cand.platform
    return list(by_digest.values())


def _unique_labels(candidates: list[_Candidate]) -> list[str]:
    """A label per image that --image accepts: its ref name when unique, else its digest."""
    ref_count: dict[str, int] = {}
    for cand in candidates:
        for ref in cand.refs:
            ref_count[ref] = ref_count.get(ref, 0) + 1
    labels = []
    for cand in candidates:
        unique = [r for r in cand.refs if ref_count[r] == 1]
        name = unique[0] if unique else cand.digest[:19]
        labels.append(f"{name} ({cand.platform or 'platform unknown'})")
    return labels


def _candidate_label(c: _Candidate) -> str:
    if c.refs:
        return c.refs[0]
    if c.platform:
        return c.platform
    return c.digest


def _collect(container: Container, index: dict, out: list[_Candidate], skipped: list[str],
             depth: int, inherited_refs: list[str]) -> None:
    if depth > 4:
        skipped.append("indexes nested too deep")
        return
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise CorruptInput("index manifests is not a list")
    for desc in manifests:
        if not isinstance(desc, dict):
            continue
        media_type = get_str(desc, "mediaType") or ""
        digest = get_str(desc, "digest") or ""
        annotations = get_dict(desc, "annotations")
        refs = _refs_of(desc) or inherited_refs
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        plat = platform_string(get_dict(desc, "platform"))
        if plat == "unknown/unknown":
            continue
        try:
            name = blob_name(digest, f"index entry {media_type or '?'}")
        except UnsafeReference:
            raise
        if media_type in INDEX_TYPES:
            if not container.exists(name):
                skipped.append(f"nested index {digest[:19]} is missing")
                continue
            nested = load_json(container.read_small(name, "nested index"), "nested index")
            _collect(container, nested, out, skipped, depth + 1, refs)
            continue
        if media_type and media_type not in MANIFEST_TYPES:
            skipped.append(f"entry of unknown media type {media_type}")
            continue
        cand = _Candidate(desc, digest, plat, refs)
        if not container.exists(name):
            cand.problem = f"manifest blob {digest} is missing"
            out.append(cand)
            continue
        try:
            manifest = load_json(container.read_small(name, "manifest"), f"manifest {digest}")
        except ImgscopeError as exc:
            cand.problem = str(exc)
            out.append(cand)
            continue
        if get_str(manifest, "mediaType") in INDEX_TYPES or "manifests" in manifest:
            _collect(container, manifest, out, skipped, depth + 1, refs)
            continue
        config = get_dict(manifest, "config")
        config_type = get_str(config, "mediaType") or ""
        artifact_type = get_str(manifest, "artifactType")
        # An image config with non-layer blobs (build metadata, SBOMs) is an artifact too:
        # listing it as a choice would offer something that cannot open.
        odd_layer = next((t for t in (get_str(x, "mediaType") for x in get_list(manifest, "layers")
                                      if isinstance(x, dict))
                          if t and not t.startswith(LAYER_TYPE_PREFIXES)), None)
        if config_type not in CONFIG_TYPES or artifact_type or odd_layer:
            cand.artifact = artifact_type or (
                odd_layer if config_type in CONFIG_TYPES else config_type or "no config media type")
            out.append(cand)
            continue
        missing = []
        try:
            config_name = blob_name(get_str(config, "digest") or "", "config")
        except UnsafeReference as exc:
            cand.problem = str(exc)
            out.append(cand)
            continue
        if not container.exists(config_name):
            missing.append(f"config {get_str(config, 'digest')}")
        for layer in get_list(manifest, "layers"):
            if not isinstance(layer, dict):
                continue
            layer_digest = get_str(layer, "digest") or ""
            try:
                layer_name = blob_name(layer_digest, "layer")
            except UnsafeReference as exc:
                cand.problem = str(exc)
                break
            if not container.exists(layer_name):
                missing.append(f"layer {layer_digest}")
        if missing and cand.problem is None:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            cand.problem = f"blob {missing[0]}{more} missing"
        if cand.platform is None and not missing and cand.problem is None:
            try:
                cfg = parse_config(container.read_small(config_name, "config"), "config")
                cand.platform = _config_platform(cfg)
            except ImgscopeError:
                pass
        out.append(cand)


def _load_oci_manifest(
    container: Container, chosen: _Candidate, verify: bool, warnings: list[Warning_]
) -> ResolvedImage:
    import hashlib

    name = blob_name(chosen.digest, "manifest")
    data = container.read_small(name, "manifest")
    if verify:
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if chosen.digest.startswith("sha256:") and actual != chosen.digest:
            raise _mismatch(f"manifest {chosen.digest} has digest {actual}")
    manifest = load_json(data, f"manifest {chosen.digest}")
    config_desc = get_dict(manifest, "config")
    config_digest = get_str(config_desc, "digest") or ""
    config_name = blob_name(config_digest, "config")
    config_bytes = container.read_small(config_name, "image config")
    if verify and config_digest.startswith("sha256:"):
        actual = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        if actual != config_digest:
            raise _mismatch(f"image config {config_digest} has digest {actual}")
    config = parse_config(config_bytes, f"image config {config_digest}")
    layers = []
    for layer in get_list(manifest, "layers"):
        if not isinstance(layer, dict):
            continue
        digest = get_str(layer, "digest") or ""
        media_type = get_str(layer, "mediaType")
        if media_type and not media_type.startswith(LAYER_TYPE_PREFIXES):
            raise NotRunnable(f"layer {digest} has media type {media_type}: not an image layer")
        size = layer.get("size")
        layers.append(LayerRef(blob_name(digest, "layer"), media_type, digest,
                               size if isinstance(size, int) else None))
    if not layers:
        raise NotAnImage(f"manifest {chosen.digest} has no layers")
    fmt = "oci-layout" if container.kind == "dir" else "oci-archive"
    return ResolvedImage(fmt, tuple(chosen.refs), chosen.digest, config_name, config_digest,
                         config, layers, chosen.platform or _config_platform(config), warnings)


def descriptor_of(ref: LayerRef) -> Descriptor:
    return Descriptor(ref.media_type or "", ref.digest or "", ref.size or 0)
