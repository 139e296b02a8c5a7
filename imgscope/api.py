"""The library entry points: one call from an image path to its analysis.

Data flows one way: container -> manifest -> layer readers -> overlay -> summary (-> catalog
-> findings, in later stages). Nothing here prints; reports read the Analysis.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, BinaryIO

from imgscope.archive.container import open_container
from imgscope.archive.image import ResolvedImage, resolve_image
from imgscope.archive.layer import (
    Blob,
    Capture,
    LayerRead,
    LayerReader,
    Spool,
    whiteout_target,
)
from imgscope.archive.streams import (
    RegionHasher,
    pending_digests,
    reader_chunks,
    rotation_cores,
)
from imgscope.catalog.base import compile_patterns
from imgscope.catalog.view import OverlayFileView
from imgscope.errors import CorruptInput, DigestMismatch, LimitExceeded
from imgscope.fsfacts import FactsTally, FsFacts
from imgscope.model import (
    Extras,
    ImageConfig,
    ImageRef,
    LayerEntry,
    LayerInfo,
    LayerStats,
    Package,
    PathFinding,
    Summary,
    Warning_,
    WastedFile,
)
from imgscope.overlay import Overlay

if TYPE_CHECKING:
    from imgscope.attribution import Attribution
    from imgscope.catalog.base import Cataloger

Progress = Callable[[int, int, str], None]


@dataclass
class Analysis:
    """One image analysed: its config, layers and final filesystem, and what later stages found."""

    ref: ImageRef
    config: ImageConfig
    layers: list[LayerInfo]
    stats: list[LayerStats]
    summary: Summary
    fs: Overlay
    facts: FsFacts
    findings: list[PathFinding]
    warnings: list[Warning_]
    attribution: Attribution | None = None
    extras: Extras = field(default_factory=Extras)
    # Every version of each captured file (package databases...), as (layer, path, bytes or
    # None when a whiteout removed it): what per-layer package changes are computed from.
    captured_history: list[tuple[int, str, bytes | None]] = field(default_factory=list)

    @property
    def packages(self) -> list[Package]:
        return [u.package for u in self.attribution.packages] if self.attribution else []

    @property
    def wasted(self) -> list[WastedFile]:
        return self.fs.wasted


HistoryPairs = list[tuple[int | None, str | None]]


def pair_history(config: ImageConfig, layer_count: int) -> tuple[HistoryPairs, Warning_ | None]:
    """created_by for each layer from the non-empty history entries, or a warning when the
    counts disagree (never shifted silently, unlike dive)."""
    indexes = [i for i, item in enumerate(config.history) if not item.empty_layer]
    if not config.history:
        return [(None, None)] * layer_count, None
    if len(indexes) != layer_count:
        return [(None, None)] * layer_count, Warning_(
            "history-mismatch",
            f"config history has {len(indexes)} non-empty entries for {layer_count} layers; "
            "instructions are not paired with layers",
        )
    return [(i, config.history[i].created_by) for i in indexes], None


def analyze(
    source: str | os.PathLike[str],
    *,
    image: str | None = None,
    platform: str | None = None,
    verify: bool = True,
    catalog: bool = True,
    content_patterns: Iterable[str] = (),
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    post_analysis: Callable[[Analysis, OverlayFileView], None] | None = None,
    advise: bool = True,
    runtime_base: str | None = None,
    layer_changes: bool = True,
) -> Analysis:
    """Open an image (tar, directory, or "-" for stdin), replay its layers, measure it, and
    (with `catalog`) attribute its bytes to packages.

    `post_analysis` runs once everything is attributed but before the archive is closed: the
    only time file bytes kept by reference (executables, libraries) can still be read.
    `advise` (with `catalog`) adds build-tool findings and size recommendations to
    `analysis.extras` (imgscope/analyze/recommend.py); `runtime_base` picks the runtime
    stage's base of its Dockerfile sketch ("scratch" allowed). `layer_changes=False` skips
    re-reading the package databases layer by layer: `attribution.layers` then has no
    removals or upgrades (only the JSON reports show them; ~35 ms on a Debian image)."""
    # Nothing that only cataloging and advice need is imported or set up before the layer
    # hashing has started (see `Preparation`): those ~70 ms overlap it.
    capture = Capture(None)
    prepared = Preparation(capture, catalog, advise, content_patterns)
    container = None
    checks = PendingChecks()
    try:
        container = open_container(os.fspath(source), capture, verify, stdin=stdin,
                                   before_stream=prepared)
        resolved = resolve_image(container, image, platform, verify)
        analysis = _analyze_resolved(container, resolved, capture, verify, progress, checks,
                                     before_walk=prepared)
        catalogers = prepared.catalogers
        if catalogers:
            from imgscope.attribution import HISTORY_CATALOGERS, attribute, record_layer_changes

            packages, warnings = run_catalogers(catalogers, analysis.fs)
            analysis.warnings.extend(Warning_("catalog", w) for w in warnings)
            analysis.attribution = attribute(analysis.fs, packages, analysis.fs.wasted,
                                             len(analysis.layers))
            if layer_changes:
                db_catalogers = [c for c in catalogers if c.name in HISTORY_CATALOGERS]
                record_layer_changes(analysis.attribution, db_catalogers,
                                     analysis.captured_history, analysis.fs.wasted)
            analysis.warnings.extend(Warning_("catalog", w)
                                     for w in analysis.attribution.warnings)
            if capture.spool is not None and capture.spool.skipped:
                analysis.warnings.append(Warning_(
                    "spool-limit", f"{capture.spool.skipped} executables were not inspected "
                                   "(spool limit reached)"))
        if prepared.advise:
            # Build tools, runtime closure, recommendations: into analysis.extras.
            from imgscope.analyze.recommend import apply_advice

            apply_advice(analysis, OverlayFileView(analysis.fs), runtime_base=runtime_base)
        if post_analysis is not None:
            post_analysis(analysis, OverlayFileView(analysis.fs))
        # Last: the largest layer's hash (another process) overlapped all of the above.
        checks.settle(analysis)
        return analysis
    finally:
        checks.close()
        if container is not None:
            container.close()
        if capture.spool is not None:
            capture.spool.close()


class Preparation:
    """What the walk needs from the catalogers and the advice: the paths whose bytes to keep
    (`capture`), and whether to keep executables. Called once, when the hashing processes
    have started (or before a streamed input is read): importing every cataloger and the
    advice rules takes ~70 ms, which then overlaps the hashing instead of delaying it."""

    def __init__(self, capture: Capture, catalog: bool, advise: bool,
                 content_patterns: Iterable[str]) -> None:
        self.capture = capture
        self.catalog = catalog
        self.advise = advise
        self.content_patterns = list(content_patterns)
        self.catalogers: list[Cataloger] = []
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        if self.catalog:
            from imgscope.catalog.registry import all_catalogers

            self.catalogers = all_catalogers()
        self.advise = self.advise and bool(self.catalogers)  # advice works from the packages
        capture = self.capture
        capture.pattern = compile_patterns(
            [*self.content_patterns, *later_stage_patterns(self.catalogers, self.advise)])
        capture.executables = any(c.wants_executables for c in self.catalogers)
        capture.spool = Spool() if capture.executables else None


def later_stage_patterns(catalogers: Sequence[Cataloger], advise: bool) -> list[str]:
    """The files the stages after the walk read, whose bytes the walk keeps: the catalogers'
    databases, what the runtime closure reads (ld.so.conf, ld.so.cache, pyvenv.cfg) and, with
    `advise`, what the advice reads (apt's auto-installed marks, ...)."""
    patterns = [p for c in catalogers for p in c.content_patterns]
    if catalogers:
        from imgscope.analyze.closure import CONTENT_PATTERNS as CLOSURE_PATTERNS

        patterns += CLOSURE_PATTERNS
    if advise:
        from imgscope.analyze.recommend import CONTENT_PATTERNS as ADVICE_PATTERNS

        patterns += ADVICE_PATTERNS
    return patterns


def run_catalogers(catalogers: Sequence[Cataloger], fs: Overlay,
                   view: OverlayFileView | None = None) -> tuple[list[Package], list[str]]:
    """Every cataloger over the final filesystem, in order. A cataloger that fails is a
    warning: the other ecosystems are still reported. `view`: the FileView of `fs` to run
    them on (diff: catalog.twin's, which reuse what the first image found for the second)."""
    view = view or OverlayFileView(fs)
    packages: list[Package] = []
    warnings: list[str] = []
    for cataloger in catalogers:
        try:
            result = view.reusable(("cataloger", cataloger.name),
                                   lambda cataloger=cataloger: cataloger.catalog(view))
        except Exception as exc:  # a parser bug must not hide every other package
            warnings.append(f"{cataloger.name} cataloger failed: {type(exc).__name__}: {exc}")
            continue
        packages.extend(result.packages)
        warnings.extend(result.warnings)
    return packages, warnings


class PendingChecks:
    """Layer digests still being computed by another process when the walk is done, and
    the processes computing them. `settle` waits for them and fails on a mismatch; it is
    called as late as possible (after cataloging and advice), so that the hashing of the
    largest layer overlaps everything else this process does.

    A check's source is the reader still awaiting its digest, or (a layer read elsewhere,
    diff's shared layers) the LayerRead its reader completes: those readers are settled
    first by whoever owns them."""

    def __init__(self) -> None:
        self.hashers: list[RegionHasher] = []
        self.layers: list[tuple[int, str, str | None, str | None, LayerReader | LayerRead]] = []

    def settle(self, analysis: Analysis) -> None:
        for index, name, claimed_blob, claimed_diff_id, source in self.layers:
            read = source.settle() if isinstance(source, LayerReader) else source
            _check_layer(index, name, claimed_blob, claimed_diff_id, read)
            layer = analysis.layers[index]
            analysis.layers[index] = replace(
                layer, measured_diff_id=read.diff_id,
                blob_digest=layer.blob_digest or read.blob_digest)
        self.layers.clear()

    def close(self) -> None:
        for hasher in self.hashers:
            hasher.close()
        self.hashers.clear()


HASHING_PROCESSES = 2  # the largest layer alone on one, the others on the second


def start_hashing(readers: Sequence[LayerReader], hashers: list[RegionHasher],
                  inflated: bool = False, copies: Callable[[], Spool] | None = None,
                  beside: int = 0) -> None:
    """Hash every plain seekable layer up front, in child processes, while this one walks
    (with `inflated`, the compressed ones too: LayerReader.hash_region). With `copies`, the
    child also inflates each compressed one into a spool of its own that `copies()` makes
    (LayerReader.copy_into): its walk then costs what a plain layer's does.

    Two children, not one: the sha256 of the largest layer is the longest chain of work in a
    verified read (~0.5 s for 618 MB here), so it gets a process of its own and the smaller
    layers go to another; one child would add their hashing to that chain. Layers are spread
    largest first onto the less loaded child. Where this process and the children outnumber
    the cores, the lighter children move from core to core as they go (streams.CoreRotation):
    left where the kernel first put them, one of them doubled the time of the chain it
    shared a core with, and which chain that was varied from run to run (docker-archive
    buildtools -> buildtools-v2 diff: median 0.64 s, 0.60-0.68, rotating 0.58, 0.57-0.59).
    `beside`: CPU-bound processes already at work besides this one (diff: the children
    reading the first image), one of them a longer chain than any of these layers: then
    every child started here rotates."""
    regions = []
    for reader in readers:
        region = reader.hash_region(inflated)
        if region is None:
            continue
        if copies is not None and region[3] != "none":
            spool = copies()
            reader.copy_into(spool)
            region = (*region, spool.fd, spool.limit)
        regions.append((reader, region))
    groups: list[list[tuple[LayerReader, tuple]]] = [
        [] for _ in range(min(HASHING_PROCESSES, len(regions)))]
    loads = [0] * len(groups)
    for item in sorted(regions, key=lambda item: -item[1][2]):
        lightest = loads.index(min(loads))
        groups[lightest].append(item)
        loads[lightest] += item[1][2]
    cores = rotation_cores(1 + beside + len(groups))
    for number, group in enumerate(groups):
        # Without `beside`, the first child holds the largest layer: it stays put.
        hasher = RegionHasher([region for _, region in group],
                              cores if number or beside else ())
        hashers.append(hasher)
        for (reader, _), digest in zip(group, pending_digests(hasher, len(group)), strict=True):
            reader.set_pending_digest(digest)


@dataclass
class ReplayStart:
    """Where a replay starts when not from an empty filesystem (diff's second image): the
    overlay as the first `layers` layers left it (a snapshot), and the captured files those
    layers wrote."""

    overlay: Overlay
    layers: int
    history: list[tuple[int, str, bytes | None]]


LayerHook = Callable[[int, Overlay, list[tuple[int, str, bytes | None]]], None]


def _analyze_resolved(container, resolved: ResolvedImage, capture: Capture, verify: bool,
                      progress: Progress | None, checks: PendingChecks,
                      before_walk: Callable[[], None] | None = None,
                      start: ReplayStart | None = None,
                      after_layer: LayerHook | None = None,
                      hashed: dict[int, LayerReader] | None = None,
                      measure: bool = True) -> Analysis:
    """The layers walked into an overlay and measured. Digests still being computed are left
    in `checks`, for the caller to settle (and to close their hashers). `before_walk` runs
    once the hashing has started, before the first layer is walked. With `start`, its layers
    are not applied again (they must be the container's prereads: reading them completes
    their measurements); `after_layer(index, overlay, history)` runs after each layer.
    `hashed`: readers of some layers, by index, made (and their hashing started) earlier by
    the caller (diff: the second image's own layers, hashed beside the first's).
    `measure=False` leaves `facts` and `summary` empty, for the caller to fill in with
    `measured()` (diff: _Pair.measure, the second image's facts derived from the first's)."""
    config = resolved.config
    warnings = list(resolved.warnings)
    count = len(resolved.layers)
    if len(config.diff_ids) != count:
        message = (f"the config lists {len(config.diff_ids)} diff_ids for {count} "
                   f"layer{'s' if count != 1 else ''}")
        if verify:
            raise DigestMismatch(message + " (use --no-verify to read it anyway)")
        warnings.append(Warning_("diff-id-count", message))
    if not verify:
        warnings.append(Warning_("not-verified", "layer and config digests were not verified"))
    pairs, history_warning = pair_history(config, count)
    if history_warning:
        warnings.append(history_warning)

    overlay = start.overlay if start is not None else Overlay()
    findings: list[PathFinding] = []
    layers: list[LayerInfo] = []
    db_history: list[tuple[int, str, bytes | None]] = list(start.history) if start else []
    hashed = hashed or {}
    made = layer_readers(container, resolved, capture, verify, skip=hashed)
    start_hashing(list(made.values()), checks.hashers)
    made.update(hashed)
    readers: list[LayerReader | None] = [made.get(i) for i in range(count)]
    if before_walk is not None:
        before_walk()
    return _replay(container, resolved, readers, overlay, findings, layers, db_history,
                   capture, verify, progress, pairs, warnings, checks,
                   start.layers if start is not None else 0, after_layer, measure)


def layer_readers(container, resolved: ResolvedImage, capture: Capture | None, verify: bool,
                  first: int = 0, skip: Container[int] = ()) -> dict[int, LayerReader]:
    """A reader for each layer from `first` on that the container does not preread (a stream
    reads those itself), by index, but for the indexes in `skip`."""
    return {index: LayerReader(container.blob(ref.name), index, capture, verify)
            for index, ref in enumerate(resolved.layers[first:], start=first)
            if index not in skip and container.preread(ref.name) is None}


def _replay(container, resolved: ResolvedImage, readers: list[LayerReader | None],
            overlay: Overlay, findings: list[PathFinding], layers: list[LayerInfo],
            db_history: list[tuple[int, str, bytes | None]], capture: Capture, verify: bool,
            progress: Progress | None, pairs: HistoryPairs,
            warnings: list[Warning_], checks: PendingChecks, applied: int = 0,
            after_layer: LayerHook | None = None, measure: bool = True) -> Analysis:
    config = resolved.config
    count = len(resolved.layers)
    for index, ref in enumerate(resolved.layers):
        if progress is not None:
            progress(index, count, ref.name)
        pre = container.preread(ref.name)
        reader = None
        if pre is not None:
            entries, read = pre
            if index < applied:
                for _ in entries:  # in the overlay already (a snapshot); this completes `read`
                    pass
            else:
                overlay.apply(index, _recording(entries, index, capture, db_history))
            layer_findings = [PathFinding(index, f.kind, f.path, f.detail) for f in read.findings]
        else:
            assert index >= applied, "only prereads can start from a snapshot"
            reader = readers[index]
            assert reader is not None
            try:
                overlay.apply(index, _recording(reader.entries(), index, capture, db_history))
            except (CorruptInput, LimitExceeded) as exc:
                raise type(exc)(f"layer {index} ({ref.digest or ref.name}): {exc}") from None
            read = reader.result
            layer_findings = read.findings
        if after_layer is not None:
            after_layer(index, overlay, db_history)
        findings.extend(layer_findings)
        claimed_diff_id = config.diff_ids[index] if index < len(config.diff_ids) else None
        if reader is not None and reader.awaiting is not None:
            checks.layers.append((index, ref.name, ref.digest, claimed_diff_id, reader))
        elif verify and read.diff_id is None:
            # read elsewhere, its digest still to come (diff: a shared layer walked once)
            checks.layers.append((index, ref.name, ref.digest, claimed_diff_id, read))
        elif verify:
            _check_layer(index, ref.name, ref.digest, claimed_diff_id, read)
        history_index, created_by = pairs[index]
        layers.append(
            LayerInfo(
                index=index,
                diff_id=claimed_diff_id,
                blob_digest=ref.digest or read.blob_digest,
                media_type=ref.media_type,
                compression=read.compression,
                compressed_size=read.compressed_size,
                uncompressed_size=read.uncompressed_size,
                measured_diff_id=read.diff_id,
                created_by=created_by,
                history_index=history_index,
                trailing_bytes=read.trailing_bytes,
            )
        )
    findings.extend(overlay.findings)
    ref = ImageRef(
        source_format=resolved.source_format,
        tags=resolved.tags,
        manifest_digest=resolved.manifest_digest,
        config_digest=resolved.config_digest,
        platform=resolved.platform,
        archive_bytes=container.archive_bytes,
    )
    analysis = Analysis(ref, config, layers, overlay.stats, Summary(), overlay, FsFacts(),
                        findings, warnings, captured_history=db_history)
    if measure:
        analysis.facts, analysis.summary = measured(analysis)
    return analysis


def measured(analysis: Analysis, tally: FactsTally | None = None, rankings: bool = True
             ) -> tuple[FsFacts, Summary]:
    """The facts and summary of an analysis's final filesystem (see _analyze_resolved), from
    `tally` when it was counted already; `rankings`: see FactsTally.facts."""
    facts = (tally or FactsTally.of(analysis.fs)).facts(rankings)
    return facts, _summary(analysis.fs, analysis.layers, facts, analysis.ref.archive_bytes)


def _recording(entries: Iterable[LayerEntry], index: int, capture: Capture,
               history: list[tuple[int, str, bytes | None]]) -> Iterator[LayerEntry]:
    """Pass entries through, keeping every captured version (and whiteouts of captured
    paths): the per-layer package changes re-read the databases as each layer left them."""
    pattern = capture.pattern
    if pattern is None:
        yield from entries
        return
    for entry in entries:
        if entry.content is not None:
            history.append((index, entry.path, entry.content))
        elif "/.wh." in entry.path:
            marker = whiteout_target(entry.path)
            if marker is not None and marker[0] == "remove" and pattern.match(marker[1]):
                history.append((index, marker[1], None))
        yield entry


def _check_layer(index: int, name: str, claimed_blob: str | None, claimed_diff_id: str | None,
                 read: LayerRead) -> None:
    # docker-archive names carry the uncompressed digest for plain layers (podman's
    # <sha>.tar); a compressed blob's name is the compressed digest (kaniko's .tar.gz).
    if (claimed_blob and claimed_blob.startswith("sha256:") and read.blob_digest
            and claimed_blob not in (read.blob_digest, read.diff_id)):
        raise DigestMismatch(
            f"layer {index} ({name}): blob digest is {read.blob_digest}, "
            f"the manifest says {claimed_blob}"
        )
    if claimed_diff_id is not None and read.diff_id is not None and claimed_diff_id != read.diff_id:
        raise DigestMismatch(
            f"layer {index} ({name}): content digest is {read.diff_id}, "
            f"the config's diff_id says {claimed_diff_id}"
        )


def _summary(overlay: Overlay, layers: list[LayerInfo], facts: FsFacts,
             archive_bytes: int) -> Summary:
    shipped = sum(s.shipped_bytes for s in overlay.stats)
    wasted = sum(w.size for w in overlay.wasted)
    dive_score, dive_wasted = overlay.dive.score() if overlay.dive is not None else (1.0, 0)
    return Summary(
        final_bytes=facts.final_bytes,
        final_files=facts.final_files,
        final_entries=facts.final_entries,
        shipped_bytes=shipped,
        layer_bytes=sum(layer.uncompressed_size for layer in layers),
        compressed_bytes=sum(layer.compressed_size for layer in layers),
        archive_bytes=archive_bytes,
        wasted_bytes=wasted,
        efficiency=(facts.final_bytes / shipped) if shipped else 1.0,
        dive_efficiency=dive_score,
        dive_wasted_bytes=dive_wasted,
    )


@dataclass
class LayerReplay:
    """Raw layer tars replayed without an image around them (for tests and `ls` of layers)."""

    fs: Overlay
    stats: list[LayerStats]
    reads: list[LayerRead]
    findings: list[PathFinding]

    @property
    def wasted(self) -> list[WastedFile]:
        return self.fs.wasted


def replay_layer_tars(sources: Sequence[str | os.PathLike[str] | BinaryIO],
                      verify: bool = True) -> LayerReplay:
    """Replay single layer tars (plain, gzip or zstd) bottom to top."""
    overlay = Overlay()
    reads: list[LayerRead] = []
    findings: list[PathFinding] = []
    for index, src in enumerate(sources):
        if hasattr(src, "read"):
            stream = src  # type: ignore[assignment]
            head = stream.read(8)
            blob = Blob(name=f"layer {index}", size=0, chunks=reader_chunks(stream.read),
                        head=head)
            reader = LayerReader(blob, index, None, verify)
            overlay.apply(index, reader.entries())
        else:
            fd = os.open(os.fspath(src), os.O_RDONLY)
            try:
                blob = Blob(name=os.fspath(src), size=os.fstat(fd).st_size, fd=fd)
                reader = LayerReader(blob, index, None, verify)
                overlay.apply(index, reader.entries())
                reader.settle()
            finally:
                os.close(fd)
        reads.append(reader.result)
        findings.extend(reader.result.findings)
    findings.extend(overlay.findings)
    return LayerReplay(overlay, overlay.stats, reads, findings)


def read_layer(
    source: str | os.PathLike[str],
    layer: int,
    *,
    image: str | None = None,
    platform: str | None = None,
    verify: bool = True,
    stdin: BinaryIO | None = None,
) -> list:
    """The tar entries of one layer of an image, in tar order (for `ls --layer`)."""
    from imgscope.errors import ImgscopeError

    container = open_container(os.fspath(source), None, verify, stdin=stdin)
    try:
        resolved = resolve_image(container, image, platform, verify)
        if not 0 <= layer < len(resolved.layers):
            raise ImgscopeError(
                f"layer {layer} does not exist; the image has {len(resolved.layers)} layers "
                f"(0 to {len(resolved.layers) - 1})"
            )
        ref = resolved.layers[layer]
        pre = container.preread(ref.name)
        if pre is not None:
            entries, read = pre
        else:
            reader = LayerReader(container.blob(ref.name), layer, None, verify)
            entries = list(reader.entries())
            read = reader.settle()
        if verify:
            claimed = resolved.config.diff_ids[layer] if layer < len(resolved.config.diff_ids) \
                else None
            _check_layer(layer, ref.name, ref.digest, claimed, read)
        return entries
    finally:
        container.close()
