"""`imgscope diff OLD NEW`: what changed between two images, and what it cost.

Two images in, two analyses and their comparison out (`ImageDiff`); nothing here prints.

Reading (`diff`). Both images are resolved first. The layers they share at the same positions
(same diff_id: the common base) leave both overlays in the same state, so they are walked once,
on the side that is cheaper to walk (an uncompressed, seekable copy skips file contents), and
the other side starts from a snapshot of that overlay after them (Overlay.snapshot: copy on
write, so the two trees share every node neither side's own layers touch). Its shared layers
still come through a container wrapper's `preread` (the hook stream containers use), read only,
so that each position gets its measurements; a blob applied again (at a second position) has
its entries kept by the first walk and replayed, not read twice. The other side's copies are
not read: the walked copy was hashed against the same diff_id, and the analysis of both sides
uses its bytes; a copy is known by its diff_id (named by its own verified config), as a
registry does not pull a layer it holds. Only its stored size is checked: a plain copy of
another size cannot be that tar stream, and is hashed (and refused). With `verify_copies`
(--verify-copies) every copy is verified too, by hash only, in a forked child (not a thread:
see streams.RegionHasher), and checked last, so that hashing overlaps everything else; a copy
that does not match its diff_id fails the diff as it fails `inspect`. A copy the size of the
walked one is compared with it byte for byte; a compressed blob both manifests name is hashed
as stored and must equal the blob the first side inflated; one archive member used by both
sides is read once. With --no-verify the copies are not read at all. Both archives stay open to
the end: the snapshot's files keep the first side's file bytes by reference. The second side's
own plain layers are hashed from the start too, by the same hashing children, and so are its
own compressed ones when they are small beside the shared walk: inflated by that child into an
unlinked spool file in imgscope's temporary directory, and walked from that plain copy, by
seeking. Then the later stages (facts, catalogers, attribution, findings) run in this process,
one image after the other: in two processes side by side they took as long here (both bound by
memory, not by a core). The second image's index, facts and build-tool file table are the
first's with the changed paths looked at again (Overlay.index_from, FactsTally.derive,
FileTable.derive); neither image's facts rank the biggest files (a diff shows none); and what
its catalogers read out of a file the first image has too is not read again
(FileView.remember). bench/bench_diff.py measures what a diff costs against one inspect.

Content equality. Size, type, mode, owner and link target come from tar headers, so a change
in any of them is found without reading file contents. A regular file with the same size and
metadata on both sides is the same file when both versions come from the same shared layer.
When they come from different layers ("rewritten by another layer, same size") only the bytes
can tell, read a second time: both versions in plain layers are read alone where their
inodes say their bytes start (Inode.offset) and compared byte for byte (stopping at the first
difference: no digest); otherwise each version is hashed, walking its layer again for a
compressed one (`Capture.digest_paths`).
A shared layer's files are read from the copy that was walked (verified); in a compressed
one, the files the later layers may rewrite with the same size are foreseen from those
layers' headers and hashed as the first walk passes them, so the shared layer is not
inflated again (_Pair._predict_candidates). What was read is reported.
With `hash_content=False` such files are reported with content "unknown".

Comparing is imgscope.compare's: a pure function of the two analyses, imported once the
hashing has started: creating its 14 dataclasses costs ~12 ms, which before the first fork
delayed every digest (the fork came at 95 ms, now at 85; inspect's at 77-80).
"""

from __future__ import annotations

import os
import pickle
import select
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from collections.abc import Container as Membership
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, BinaryIO

from imgscope.api import (
    Analysis,
    LayerHook,
    PendingChecks,
    Progress,
    ReplayStart,
    _analyze_resolved,
    _check_layer,
    later_stage_patterns,
    layer_readers,
    measured,
    run_catalogers,
    start_hashing,
)
from imgscope.archive.container import Container, open_container
from imgscope.archive.image import ResolvedImage, resolve_image
from imgscope.archive.layer import Blob, Capture, LayerRead, LayerReader, Spool
from imgscope.archive.streams import (
    FileRegion,
    ForkedJobs,
    HashingDecoder,
    RegionHasher,
    file_chunks,
    hash_mapped_region,
    hash_region,
    sniff_compression,
    stop_child,
)
from imgscope.attribution import attribute, attribute_twin
from imgscope.catalog.base import Cataloger, compile_patterns
from imgscope.catalog.twin import twin_views
from imgscope.catalog.view import OverlayFileView
from imgscope.errors import CorruptInput, ImgscopeError, LimitExceeded
from imgscope.fsfacts import FactsTally
from imgscope.model import (
    EntryType,
    LayerEntry,
    Package,
    Warning_,
)
from imgscope.overlay import Node, Overlay
from imgscope.pairing import NEW, OLD, SECTIONS, shared_prefix

if TYPE_CHECKING:
    from imgscope.analyze.buildtools import FileTable
    from imgscope.compare import ImageDiff, ReadCost

# The largest inflated copy of a second side's own compressed layer (_Pair._copy_spool); a
# layer that inflates to more is inflated again when walked.
COPY_LIMIT = 512 << 20
PostAnalysis = Callable[[Analysis, OverlayFileView], None]


# -- reading a pair -----------------------------------------------------------------------------


def diff(
    old_source: str | os.PathLike[str],
    new_source: str | os.PathLike[str],
    *,
    old_image: str | None = None,
    new_image: str | None = None,
    old_platform: str | None = None,
    new_platform: str | None = None,
    verify: bool = True,
    verify_copies: bool = False,
    sections: Sequence[str] = SECTIONS,
    hash_content: bool = True,
    reuse_shared: bool = True,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    post_analysis: PostAnalysis | None = None,
) -> ImageDiff:
    """Read both images (any input format each) and compare them.

    `sections` limits the work too: config alone reads no layer, files without packages runs
    no cataloger. `reuse_shared=False` reads every layer of both images (for measuring).
    A layer both images share is read once; `verify_copies` reads the other image's copy
    too and checks it (see the module docstring). The analyses `post_analysis` sees carry
    build-tool findings but no recommendations (a diff compares findings only), and facts
    without the rankings (FactsTally.facts: a diff shows no biggest files)."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ImgscopeError(f"unknown diff section {unknown[0]!r} (have: {', '.join(SECTIONS)})")
    if os.fspath(old_source) == "-" and os.fspath(new_source) == "-":
        raise ImgscopeError("only one of OLD and NEW can be standard input")
    catalog = "packages" in sections or "findings" in sections
    with _Pair(verify, catalog, advise=catalog and "findings" in sections,
               verify_copies=verify and verify_copies) as pair:
        pair.open(OLD, old_source, old_image, old_platform, stdin)
        pair.open(NEW, new_source, new_image, new_platform, stdin)
        if not {"layers", "files", "packages", "findings"} & set(sections):
            return pair.config_only(sections)
        old, new, read = pair.analyze(reuse_shared, progress,
                                      predict="files" in sections and hash_content)
        from imgscope.compare import changed_paths, compare, content_candidates
        candidates = []
        paths = None
        if "files" in sections or read.replayed_layers:
            paths = changed_paths(old, new, read.shared_prefix)
        pair.measure(paths)
        if "files" in sections:
            candidates = content_candidates(old, new, read.shared_prefix, paths)
        digests, layers_read, verdicts = pair.finish(
            old, new, candidates if hash_content else [], read.shared_prefix, paths,
            post_analysis)
        pair.settle()  # last: hashing the walked layers overlapped all of the above
        pair.verify_replayed()  # and the replayed copies, checked against them
        return compare(old, new, sections=sections, digests=digests, layers_read=layers_read,
                       read=read, candidates=candidates, paths=paths, verdicts=verdicts)


@dataclass
class _SideIO:
    """One image of the pair as it is read: its capture, open container and resolved image."""

    name: str
    capture: Capture
    container: Container | None = None
    resolved: ResolvedImage | None = None


class _Pair:
    """Both images open at once, each with its own capture and spool."""

    def __init__(self, verify: bool, catalog: bool, advise: bool,
                 verify_copies: bool = False) -> None:
        self.verify = verify
        self.verify_copies = verify_copies
        self.catalog = catalog
        self.advise = advise
        self.catalogers: list[Cataloger] = []  # set by prepare()
        self._prepared = False
        self.sides = {name: _SideIO(name, Capture(None)) for name in (OLD, NEW)}
        self._hashers: list[RegionHasher | _ForkedHashes] = []
        # Digests of walked layers still being computed, per side: settled last (settle).
        self.checks = {OLD: PendingChecks(), NEW: PendingChecks()}
        self._analyses: dict[str, Analysis] = {}
        self._recorder: _Recorder | None = None
        self._replayed: tuple[_SideIO, _Replayer, Analysis] | None = None
        self._first = OLD  # the side walked first (analyze): the other starts from its state
        self._reused = 0  # layers the second side took from the first's walk (a snapshot)
        self._children: list[_InChild] = []  # stopped at the end if never read
        self._spools: list[Spool] = []  # inflated copies of the second side's own layers

    def __enter__(self) -> _Pair:
        return self

    def __exit__(self, *exc: object) -> None:
        for child in self._children:
            child.close()  # a no-op once its result was read; an error may have come first
        for hasher in self._hashers:
            hasher.close()
        for checks in self.checks.values():
            checks.close()
        for side in self.sides.values():
            if side.container is not None:
                side.container.close()
            if side.capture.spool is not None:
                side.capture.spool.close()
        for spool in self._spools:
            spool.close()

    def _copy_spool(self) -> Spool:
        spool = Spool(COPY_LIMIT)
        self._spools.append(spool)
        return spool

    def prepare(self) -> None:
        """What the walks keep for the later stages (api.Preparation, for both captures):
        called once the hashing has started, or before a stream is read, so that importing
        the catalogers (~50 ms) overlaps the hashing instead of delaying it."""
        if self._prepared:
            return
        self._prepared = True
        if self.catalog:
            from imgscope.catalog.registry import all_catalogers

            self.catalogers = all_catalogers()
        pattern = compile_patterns(later_stage_patterns(self.catalogers, self.advise))
        executables = any(c.wants_executables for c in self.catalogers)
        for side in self.sides.values():
            side.capture.pattern = pattern
            side.capture.executables = executables
            side.capture.spool = Spool() if executables else None

    def open(self, name: str, source, image: str | None, platform: str | None,
             stdin: BinaryIO | None) -> None:
        side = self.sides[name]
        try:
            side.container = open_container(os.fspath(source), side.capture, self.verify,
                                            stdin=stdin, before_stream=self.prepare)
            side.resolved = resolve_image(side.container, image, platform, self.verify)
        except ImgscopeError as exc:
            raise type(exc)(f"{name} image: {exc}") from None

    def config_only(self, sections: Sequence[str]) -> ImageDiff:
        from imgscope.compare import ImageDiff, compare_config, side_of_resolved

        ro, rn = self.sides[OLD].resolved, self.sides[NEW].resolved
        assert ro is not None and rn is not None
        return ImageDiff(
            old=side_of_resolved(ro), new=side_of_resolved(rn),
            sections=tuple(s for s in SECTIONS if s in sections),
            config=compare_config(ro.config, rn.config),
            warnings=tuple([(OLD, w) for w in ro.warnings] + [(NEW, w) for w in rn.warnings]),
        )

    # -- pass one: both analyses, the shared prefix walked once -------------------------------

    def analyze(self, reuse: bool, progress: Progress | None, predict: bool = False
                ) -> tuple[Analysis, Analysis, ReadCost]:
        """Both overlays (not cataloged yet: see finish). With `predict`, the files of the
        shared layers that may need a content check are hashed as the walk passes them
        (_predict_candidates)."""
        old, new = self.sides[OLD], self.sides[NEW]
        assert old.resolved is not None and new.resolved is not None
        common = shared_prefix(old.resolved.config.diff_ids, new.resolved.config.diff_ids)
        common = min(common, len(old.resolved.layers), len(new.resolved.layers))
        shared = common
        if reuse and shared and self._reusable(old) and self._reusable(new):
            first, second = self._order(shared)
        else:
            first, second, shared = old, new, 0
        recorder = _Recorder(first, shared, self.verify, second)
        self._recorder = recorder
        # The first side's shared layers are hashed as api._analyze_resolved hashes layers
        # (child processes, ahead of the walk), and so are the second side's own layers:
        # once the first side is read, both cores are busy cataloging the two images. The
        # second side's copies of the shared layers are hashed by another child, never walked.
        assert second.container is not None and second.resolved is not None
        ahead = layer_readers(second.container, second.resolved, second.capture, self.verify,
                              first=shared)
        hashers = self.checks[first.name].hashers
        start_hashing([layer.reader for layer in recorder.layers.values()] + list(ahead.values()),
                      hashers)
        if self._hash_inflated_ahead(recorder, ahead):
            # Only the compressed ones are left: a reader hashed above has its pending digest
            # (LayerReader.hash_region), so these get children of their own, which inflate
            # them into spools too: their walk, after the first side's, only seeks. Beside
            # them: the children above, and the one inflating the first side's walk.
            inflating = any(_compression(layer.reader.blob) != "none"
                            for layer in recorder.layers.values())
            start_hashing(list(ahead.values()), hashers, inflated=True, copies=self._copy_spool,
                          beside=len(hashers) + inflating)
        if shared:
            # Reading the later layers' headers (a child) overlaps importing the catalogers.
            foreseen = self._foresee(recorder, shared) if predict else None
            self.prepare()  # else once the first side's own hashing has started
            if foreseen is not None:
                self._predict_candidates(recorder, foreseen)
        second_names: list[str] = []
        jobs: list[tuple[Blob, bool]] = []
        trusted: set[str] = set()
        if shared and self.verify:
            first_refs = first.resolved.layers  # type: ignore[union-attr]
            for i, ref in enumerate(second.resolved.layers[:shared]):  # type: ignore[union-attr]
                if ref.name in second_names or ref.name in trusted:
                    continue
                blob = second.container.blob(ref.name)  # type: ignore[union-attr]
                if _same_region(blob, recorder.layers[first_refs[i].name].reader.blob):
                    continue  # one archive, one member: its bytes are verified once
                if not self.verify_copies and \
                        _same_size(blob, recorder.layers[first_refs[i].name].reader.blob):
                    # Known by its diff_id: the analysis uses the walked copy's bytes, which
                    # were hashed against that same diff_id. Reading this copy too would cost
                    # a second pass over the shared bytes (--verify-copies).
                    trusted.add(ref.name)
                    continue
                second_names.append(ref.name)
                # Both manifests name the same compressed blob: the sha256 of the bytes as
                # stored proves this copy is the first side's (checked in _ReplayedLayer),
                # without inflating it.
                same_blob = ref.digest is not None and ref.digest == first_refs[i].digest
                first_blob = recorder.layers[first_refs[i].name].reader.blob
                jobs.append((blob, same_blob and _compression(blob) != "none",
                             first_blob if _comparable(blob, first_blob) else None))
        analyses: dict[str, Analysis] = {}
        # The second side starts from a snapshot of the first's overlay after the shared
        # layers: copying the tree costs ~5x less than replaying their entries into it.
        starts: list[ReplayStart] = []

        def snapshot(index: int, overlay, history) -> None:
            if index == shared - 1:
                starts.append(ReplayStart(overlay.snapshot(), shared, list(history)))

        analyses[first.name] = self._analyze_side(first, recorder, progress,
                                                  after_layer=snapshot if shared else None,
                                                  before_walk=self.prepare, measure=False)
        self._first = first.name
        # Started only now: during the walk the spare core hashes the walked side's layers
        # (the walk waits for those); these are checked last (verify_replayed).
        verifier = _ForkedHashes(jobs)
        self._hashers.append(verifier)
        pending = {name: _PendingRead(verifier, i) for i, name in enumerate(second_names)}
        replayer = _Replayer(second, first, recorder, shared, pending, trusted)
        if predict:
            # The other image's files are known now: the second one's compressed layers hash
            # the same-size rewrites of them as they pass (its plain ones note offsets).
            second.capture.digest_also = _FileOf(analyses[first.name].fs)
        # Both are measured by measure(), the second from the first (FactsTally.derive).
        analyses[second.name] = self._analyze_side(second, replayer, progress,
                                                   start=starts[0] if starts else None,
                                                   hashed=ahead, measure=False)
        self._replayed = (second, replayer, analyses[second.name])
        self._reused = shared
        replayed = [analyses[first.name].layers[i].uncompressed_size for i in range(shared)]
        from imgscope.compare import ReadCost  # after the first walk: see the module docstring

        read = ReadCost(common, first.name if shared else None, shared, sum(replayed),
                        sum(blob.size for blob, _, _ in jobs),
                        "unverified" if not self.verify else "by-diff-id" if trusted else "read")
        return analyses[OLD], analyses[NEW], read

    @staticmethod
    def _hash_inflated_ahead(recorder: _Recorder, ahead: dict[int, LayerReader]) -> bool:
        """Whether the second side's own compressed layers are hashed beside the first walk
        too, by a child of their own that also inflates them into spools (COPY_LIMIT
        bytes each at most), to be walked from those plain copies: a walk that seeks, where
        inflating them after the first side's walk took ~150 ms for one 41 MB zstd layer.
        Only when they are small beside the shared layers whose walk that child's work must
        fit beside (1/8 of their stored bytes: zstd and gzip inflate 4-8x)."""
        own = sum(reader.blob.size for reader in ahead.values()
                  if _compression(reader.blob) != "none")
        walked = sum(layer.reader.blob.size for layer in recorder.layers.values())
        return 0 < own * 8 <= walked

    def _foresee(self, recorder: _Recorder, shared: int) -> _InChild | None:
        """A compressed shared layer cannot be read back cheaply: a same-size file the later
        layers rewrite would cost inflating the whole layer again for its content check.
        Its candidates are foreseeable, though: the regular files (path, size) of the layers
        after the shared prefix, read from their headers (in a child, started here; None
        when nothing is to be foreseen, or when those layers are the bulk: reading them twice
        would cost more than it saves)."""
        compressed = [layer for layer in recorder.layers.values()
                      if _compression(layer.reader.blob) != "none"]
        if not compressed:
            return None  # plain: read back where the inodes say (Inode.offset)
        budget = sum(layer.reader.blob.size for layer in compressed)
        unique = []
        for side in self.sides.values():
            assert side.container is not None and side.resolved is not None
            for index, ref in enumerate(side.resolved.layers[shared:], start=shared):
                blob = side.container.blob(ref.name)
                unique.append((blob, index))
                if _compression(blob) != "none":
                    budget -= blob.size
        if budget <= 0:
            return None

        def headers() -> set[tuple[str, int]]:
            wanted: set[tuple[str, int]] = set()
            for blob, index in unique:
                for entry in LayerReader(blob, index, None, verify=False).entries():
                    if entry.type is EntryType.FILE:
                        wanted.add((entry.path, entry.size))
            return wanted

        return _InChild(headers)

    def _predict_candidates(self, recorder: _Recorder, foreseen: _InChild) -> None:
        """The walk of each compressed shared layer hashes the foreseen files as they pass
        (LayerReader.digest_also; the digests in the capture's walked_digests), without
        waiting for the child that foresees them (_Foreseen)."""
        self._children.append(foreseen)
        wanted = _Foreseen(foreseen)
        for layer in recorder.layers.values():
            if _compression(layer.reader.blob) != "none":
                layer.reader.digest_also = wanted

    def verify_replayed(self) -> None:
        """Check the second side's copies of the shared layers against their diff_ids and
        blob digests, as api._check_layer checks a layer it walked, and put their own
        measurements in the analysis."""
        if self._replayed is None:
            return
        side, replayer, analysis = self._replayed
        assert side.resolved is not None
        config = side.resolved.config
        for index, ref in enumerate(side.resolved.layers):
            layer = replayer.layers.get(ref.name)
            if layer is None or not self.verify:
                continue
            own = layer.verify()
            claimed = config.diff_ids[index] if index < len(config.diff_ids) else None
            try:
                _check_layer(index, ref.name, ref.digest, claimed, own)
            except ImgscopeError as exc:
                raise type(exc)(f"{side.name} image: {exc}") from None
            analysis.layers[index] = replace(
                analysis.layers[index], measured_diff_id=own.diff_id,
                blob_digest=ref.digest or own.blob_digest, compression=own.compression,
                compressed_size=own.compressed_size)

    @staticmethod
    def _reusable(side: _SideIO) -> bool:
        # A stream (stdin, compressed archive) read every layer already; nothing to save.
        assert side.container is not None and side.resolved is not None
        return not side.resolved.layers or \
            side.container.preread(side.resolved.layers[0].name) is None

    def _rereadable(self, name: str) -> bool:
        return self._reusable(self.sides[name])

    def _order(self, shared: int) -> tuple[_SideIO, _SideIO]:
        """Walk the shared layers where that is cheapest: an uncompressed seekable copy is
        walked by seeking over contents; a compressed one must be inflated either way."""
        old, new = self.sides[OLD], self.sides[NEW]

        def compressed(side: _SideIO) -> int:
            total = 0
            for ref in side.resolved.layers[:shared]:  # type: ignore[union-attr]
                blob = side.container.blob(ref.name)  # type: ignore[union-attr]
                if _compression(blob) != "none":
                    total += blob.size
            return total

        return (new, old) if compressed(new) < compressed(old) else (old, new)

    def _analyze_side(self, side: _SideIO, container: Container, progress: Progress | None,
                      start: ReplayStart | None = None,
                      after_layer: LayerHook | None = None,
                      before_walk: Callable[[], None] | None = None,
                      hashed: dict[int, LayerReader] | None = None,
                      measure: bool = True) -> Analysis:
        assert side.resolved is not None
        shown = None
        if progress is not None:
            def shown(index: int, count: int, name: str) -> None:
                progress(index, count, f"{side.name}: {name}")
        try:
            analysis = _analyze_resolved(container, side.resolved, side.capture, self.verify,
                                         shown, self.checks[side.name], start=start,
                                         after_layer=after_layer, before_walk=before_walk,
                                         hashed=hashed, measure=measure)
        except ImgscopeError as exc:
            raise type(exc)(f"{side.name} image: {exc}") from None
        self._analyses[side.name] = analysis
        return analysis

    def measure(self, paths: Collection[str] | None) -> None:
        """The facts and summary of both images. When the image walked second started from
        the first's state (a snapshot), its index and its facts are the first's with `paths`
        (changed_paths: every path that can differ) looked at again (Overlay.index_from,
        FactsTally.derive): what the second image adds costs what it changed."""
        first = self._analyses[self._first]
        second = self._analyses[NEW if self._first == OLD else OLD]
        tally = FactsTally.of(first.fs)
        # No rankings (biggest files and directories): a diff shows none (~4 ms a side).
        first.facts, first.summary = measured(first, tally, rankings=False)
        derived = None
        if self._reused and paths is not None:
            second.fs.index_from(first.fs, paths)
            derived = tally.derive(first.fs, second.fs, paths)
        second.facts, second.summary = measured(second, derived, rankings=False)

    def settle(self) -> None:
        """Wait for the digests of the walked layers (hashed by other processes while
        everything else ran) and check them; the shared layers' readers first, whose results
        the checks of their positions read (api.PendingChecks)."""
        for name in (OLD, NEW):
            if name not in self._analyses:
                continue
            try:
                if self._recorder is not None and self._recorder.side == name:
                    for layer in self._recorder.layers.values():
                        layer.reader.settle()
                self.checks[name].settle(self._analyses[name])
            except ImgscopeError as exc:
                raise type(exc)(f"{name} image: {exc}") from None

    def finish(self, old: Analysis, new: Analysis,
               candidates: Sequence[tuple[str, Node, Node]], shared: int,
               paths: Collection[str] | None, post_analysis: PostAnalysis | None
               ) -> tuple[dict[int, str], tuple[tuple[str, int, int, int, int, int], ...],
                          dict[tuple[int, int], bool]]:
        """Catalog both images, then read the content candidates (pass two): hash those that
        must be hashed, and compare those in plain layers byte for byte. One process, one
        image after the other, the second reusing what the first found where their trees
        agree (catalog.twin, attribute_twin). Run side by side in two processes, the later
        stages took as long here (the hashing children keep both cores busy), and the fork
        cost ~50 ms of CPU in copy-on-write faults (measured with the first image's
        findings in a child)."""
        plan = self._digest_plan(old, new, candidates, shared)
        if self.catalogers:
            first, second = (old, new) if self._first == OLD else (new, old)
            memo: dict = {}  # per file, what the catalogers read of it: once for both images
            changed = paths if self._reused else None  # where the twin trees may differ
            views = (twin_views(first.fs, second.fs, changed, memo) if changed is not None
                     else (OverlayFileView(first.fs, memo), OverlayFileView(second.fs, memo)))
            packages, table = _later_stages(first, self.catalogers, views[0],
                                            findings=self.advise)
            _later_stages(second, self.catalogers, views[1],
                          (first, packages, changed, table) if changed is not None else None,
                          findings=self.advise)
        reads = self._read_digests(plan)
        verdicts, compared = _compare_planned(plan)
        for analysis, name in ((old, OLD), (new, NEW)):
            spool = self.sides[name].capture.spool
            if self.catalogers and spool is not None and spool.skipped:
                analysis.warnings.append(Warning_(
                    "spool-limit", f"{spool.skipped} executables were not inspected "
                                   "(spool limit reached)"))
            if post_analysis is not None:
                post_analysis(analysis, OverlayFileView(analysis.fs))
        digests, layers_read = self._apply_digests(plan, reads, compared)
        return digests, layers_read, verdicts

    # -- pass two: hash the files metadata cannot decide ---------------------------------------

    def _digest_plan(self, old: Analysis, new: Analysis,
                     candidates: Sequence[tuple[str, Node, Node]], shared: int) -> _DigestPlan:
        """Which layers to read again for the candidates' bytes, and which names to hash in
        each: every layer once, a shared layer once for both sides."""
        plan = _DigestPlan()
        if not candidates:
            return plan
        from imgscope.compare import FileTree

        asked = {path for path, _, _ in candidates}
        trees = {OLD: FileTree(old, asked), NEW: FileTree(new, asked)}
        # A shared layer is the same bytes on both sides: read the copy that was walked (and
        # so verified: the other may not have been read), else the cheaper copy (an
        # uncompressed one is walked by seeking), never a stream's (it cannot be read again).
        recorder = self._recorder
        shared_from = recorder.side if recorder is not None and \
            self._rereadable(recorder.side) else self._cheaper_copy()
        for path, a, b in candidates:
            versions = []
            for side, node in ((OLD, a), (NEW, b)):
                inode = node.inode
                assert inode is not None
                key = (shared_from if inode.layer < shared else side, inode.layer)
                versions.append((key, node, trees[side].names(path, node)))
            where = [self._located(key, node.inode) for key, node, _ in versions]
            if where[0] is not None and where[1] is not None:
                # Both read alone from plain layers: compared, not hashed (stops at the
                # first difference; equal bytes read once each instead of hashed twice).
                plan.compares.append((id(a.inode), id(b.inode), a.size,
                                      (versions[0][0], *where[0]), (versions[1][0], *where[1])))
                continue
            for (key, node, inode_names), located in zip(versions, where, strict=True):
                plan.paths[key].update(inode_names)
                plan.inodes[key].append((id(node.inode), inode_names, node.size,
                                         None if located is None else located[1]))
        return plan

    def _located(self, key: tuple[str, int], inode) -> tuple[Blob, int] | None:
        """(blob, offset in it) of a file whose bytes lie whole in a plain seekable layer
        this side walked itself (Inode.offset: where its tar member's bytes start); None for
        a compressed layer, a stream, a sparse file, or a shared layer this side took from
        the other side's walk (its copy may not have been read: see analyze's `trusted`)."""
        side_name, layer = key
        if inode.offset < 0 or inode.size != inode.stored_size \
                or not self._rereadable(side_name):
            return None
        if layer < self._reused and (self._recorder is None
                                     or side_name != self._recorder.side):
            return None
        side = self.sides[side_name]
        assert side.container is not None and side.resolved is not None
        blob = side.container.blob(side.resolved.layers[layer].name)
        if blob.fd is None or _compression(blob) != "none":
            return None
        return blob, inode.offset

    def _cheaper_copy(self) -> str:
        usable = [n for n in (OLD, NEW) if self._rereadable(n)] or [OLD]
        for name in usable:
            side = self.sides[name]
            assert side.container is not None and side.resolved is not None
            if side.resolved.layers and \
                    _compression(side.container.blob(side.resolved.layers[0].name)) == "none":
                return name
        return usable[0]

    def _read_digests(self, plan: _DigestPlan) -> dict[tuple[str, int], tuple[dict, int, int]]:
        """sha256 of the planned files: (side, layer) ->
        ({path: digest}, layer bytes, bytes read). A file of a plain seekable layer whose
        offset the inode knows is read alone (one read for all its names); any
        other means walking its layer again."""
        out = {}
        for (side_name, layer), paths in sorted(plan.paths.items()):
            side = self.sides[side_name]
            assert side.container is not None and side.resolved is not None
            if not self._rereadable(side_name):
                continue  # read from a stream: the bytes cannot be read again
            ref = side.resolved.layers[layer]
            predicted = self._predicted(side_name, layer, plan.inodes[(side_name, layer)])
            if predicted is not None:
                out[(side_name, layer)] = predicted
                continue
            blob = side.container.blob(ref.name)
            found = _hash_at_offsets(blob, plan.inodes[(side_name, layer)])
            if found is not None:
                out[(side_name, layer)] = found
                continue
            reader = LayerReader(blob, layer, Capture(None, digest_paths=frozenset(paths)),
                                 verify=False)
            for _ in reader.entries():
                pass
            size = reader.result.uncompressed_size
            out[(side_name, layer)] = (reader.result.digests, size, size)
        return out

    def _predicted(self, side_name: str, layer: int, inodes: list[_Planned]
                   ) -> tuple[dict[str, str], int, int] | None:
        """({path: digest}, layer bytes, 0) when the walk of that layer hashed every planned
        file already (Capture.digest_also): nothing is read again."""
        side = self.sides[side_name]
        walked = side.capture.walked_digests.get(layer)
        if walked is None:
            return None
        found: dict[str, str] = {}
        for _, names, _, _ in inodes:
            hit = next((n for n in names if n in walked), None)
            if hit is None:
                return None
            for n in names:
                found[n] = walked[hit]
        return found, self._analyses[side_name].layers[layer].uncompressed_size, 0

    @staticmethod
    def _apply_digests(plan: _DigestPlan, reads: dict[tuple[str, int], tuple[dict, int, int]],
                       compared: dict[tuple[str, int], list[int]]
                       ) -> tuple[dict[int, str], tuple[tuple[str, int, int, int, int, int], ...]]:
        """Digests by id(inode), and per layer read: (side, layer, files hashed, files
        compared, layer bytes, bytes read)."""
        digests: dict[int, str] = {}
        rows: dict[tuple[str, int], list[int]] = {}
        for key, (found, size, read) in reads.items():
            for inode_id, names, _, _ in plan.inodes[key]:
                for name in names:
                    if name in found:
                        digests[inode_id] = found[name]
                        break
            rows[key] = [len(found), 0, size, read]
        for key, (files, size, read) in compared.items():
            row = rows.setdefault(key, [0, 0, size, 0])
            row[1] += files
            row[3] += read
        return digests, tuple((key[0], key[1], *row) for key, row in sorted(rows.items()))


class _Foreseen:
    """LayerReader.digest_also for the compressed shared layers: the (path, size) of the
    regular files of the layers after the shared prefix, which a child reads from their
    headers (_Pair._foresee). The walk does not wait for it: until the child has answered,
    every regular file is taken as foreseen and hashed as it passes (a few MB in that time,
    against ~0.13 s of waiting for a 41 MB zstd layer's headers); digests nothing asks for
    are never looked at. A child that fails foresees nothing (that layer's own walk reports
    what is wrong with it)."""

    def __init__(self, child: _InChild) -> None:
        self._child = child
        self._wanted: Membership[tuple[str, int]] | None = None

    def __contains__(self, item: object) -> bool:
        if self._wanted is None:
            if not self._child.ready():
                return True
            try:
                self._wanted = self._child.result()
            except ImgscopeError:
                self._wanted = frozenset()
        return item in self._wanted


class _FileOf:
    """(path, size) in it when the other image's final filesystem has a regular file of
    that size at that path: a same-size rewrite, whose content only its bytes can tell."""

    def __init__(self, fs: Overlay) -> None:
        self.fs = fs  # looked up in the tree: a few hundred paths need no index of it

    def __contains__(self, item: object) -> bool:
        path, size = item  # type: ignore[misc]
        node = self.fs.get(path)
        return node is not None and node.type is EntryType.FILE and node.size == size


def _hash_at_offsets(blob: Blob, inodes: list[_Planned]) -> tuple[dict[str, str], int, int] | None:
    """({path: digest}, layer bytes, bytes read) of the planned inodes of one layer, each
    read alone at its offset (_Pair._located); None when one of them has none (walk the
    layer instead)."""
    if blob.fd is None or _compression(blob) != "none":
        return None
    found: dict[str, str] = {}
    read = 0
    for _, names, size, start in inodes:
        if start is None:
            return None
        digest, done = hash_region(blob.fd, blob.offset + start, size)
        if done != size:
            raise CorruptInput(f"layer {blob.name} is truncated")
        read += size
        for name in names:
            found[name] = digest
    return found, blob.size, read


# A file to hash: (id of its inode, its names, size, offset of its bytes in the plain layer
# blob, or None: see _Pair._located).
_Planned = tuple[int, list[str], int, "int | None"]


@dataclass
class _DigestPlan:
    """What pass two hashes, per (side, layer) to read: the names, and each inode to read."""

    paths: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    inodes: dict[tuple[str, int], list[_Planned]] = field(
        default_factory=lambda: defaultdict(list))
    # Candidates compared byte for byte instead: (id(old inode), id(new inode), size,
    # (key, blob, offset) of the old version, of the new one).
    compares: list[tuple[int, int, int, tuple, tuple]] = field(default_factory=list)


def _compare_planned(plan: _DigestPlan
                     ) -> tuple[dict[tuple[int, int], bool], dict[tuple[str, int], list[int]]]:
    """The planned byte-for-byte comparisons: ({(old id, new id): equal}, {(side, layer):
    [files, layer bytes, bytes read]})."""
    verdicts: dict[tuple[int, int], bool] = {}
    reads: dict[tuple[str, int], list[int]] = {}
    for old_id, new_id, size, (key_a, blob_a, at_a), (key_b, blob_b, at_b) in plan.compares:
        same, done = _same_file_bytes(blob_a, at_a, blob_b, at_b, size)
        verdicts[(old_id, new_id)] = same
        for key, blob in ((key_a, blob_a), (key_b, blob_b)):
            row = reads.setdefault(key, [0, blob.size, 0])
            row[0] += 1
            row[2] += done
    return verdicts, reads


def _same_file_bytes(a: Blob, at_a: int, b: Blob, at_b: int, size: int) -> tuple[bool, int]:
    """Whether `size` bytes at offset `at_a` of blob `a` equal those at `at_b` of `b`, and
    how many bytes of each were read to tell (it stops at the first chunk that differs)."""
    assert a.fd is not None and b.fd is not None
    mine, theirs = bytearray(COMPARE_CHUNK), bytearray(COMPARE_CHUNK)
    done = 0
    while done < size:
        n = min(COMPARE_CHUNK, size - done)
        if n < COMPARE_CHUNK:  # the last piece
            del mine[n:], theirs[n:]
        if os.preadv(a.fd, [mine], a.offset + at_a + done) != n \
                or os.preadv(b.fd, [theirs], b.offset + at_b + done) != n:
            raise CorruptInput(f"layer {a.name} or {b.name} is truncated")
        done += n
        if mine != theirs:
            return False, done
    return True, done


class _InChild:
    """Run a function in a forked child; its pickled result (or exception) comes back over
    a pipe. The child sees this process's overlays and open archives as they are at fork
    time; nothing it does reaches back. Inline where fork is missing."""

    def __init__(self, func: Callable[[], object]) -> None:
        self._value: object = None
        self._pid = 0
        if not hasattr(os, "fork"):  # pragma: no cover - every POSIX system has fork
            self._value = _outcome(func)
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                os.close(read_end)
                data = pickle.dumps(_outcome(func))
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view):]
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._read_end = pid, read_end

    def ready(self) -> bool:
        """Whether result() would return without waiting for the child's work."""
        if not self._pid:
            return True
        return bool(select.select([self._read_end], [], [], 0)[0])

    def close(self) -> None:
        """Stop the child if its result was never read (an error came first)."""
        if self._pid:
            stop_child(self._pid, self._read_end)
            self._pid = 0

    def result(self):
        if self._pid:
            chunks = []
            while chunk := os.read(self._read_end, 1 << 20):
                chunks.append(chunk)
            os.close(self._read_end)
            os.waitpid(self._pid, 0)
            self._pid = 0
            if not chunks:
                raise CorruptInput("the helper process ended without a result")
            self._value = pickle.loads(b"".join(chunks))
        kind, value = self._value  # type: ignore[misc]
        if kind == "error":
            raise value
        return value


def _outcome(func: Callable[[], object]) -> tuple[str, object]:
    try:
        return "ok", func()
    except Exception as exc:
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return "error", exc


def _later_stages(analysis: Analysis, catalogers: Sequence[Cataloger], view: OverlayFileView,
                  twin: _Twin | None = None, findings: bool = True
                  ) -> tuple[list[Package], FileTable | None]:
    """What api.analyze does after reading (kept in step with it): catalog, attribute, and
    (with `findings`) the build-tool findings, without the recommendations (a diff compares
    findings; recommending costs ~30 ms a side). Into the analysis, warnings included; the
    packages found are returned, and the scan's FileTable. `view`: the analysis's FileView
    (catalog.twin's for a pair of twins); `twin`: the other image, its packages, the paths
    at which the two trees may differ and its FileTable, when this one started from its
    state (attribute_twin, FileTable.derive)."""
    packages, warnings = run_catalogers(catalogers, analysis.fs, view)
    result = None
    table = None
    if twin is not None:
        other, other_packages, changed, other_table = twin
        if other_table is not None:
            table = other_table.derive(other.fs, analysis.fs, changed)
        assert other.attribution is not None
        result = attribute_twin(other.attribution, other_packages, other.fs, analysis.fs,
                                packages, analysis.fs.wasted, len(analysis.layers), changed)
    if result is None:
        result = attribute(analysis.fs, packages, analysis.fs.wasted, len(analysis.layers))
    # No attribution.record_layer_changes: a diff shows no per-layer removals or upgrades
    # (~35 ms a side on a Debian image).
    analysis.warnings.extend(Warning_("catalog", w) for w in (*warnings, *result.warnings))
    analysis.attribution = result
    if findings:
        from imgscope.analyze.recommend import apply_findings

        scanned = apply_findings(analysis, OverlayFileView(analysis.fs), table)
        table = scanned.table if scanned is not None else None
    return packages, table


# The other image of a pair of twins, for _later_stages: its analysis, packages, the paths
# at which the two trees may differ, its FileTable (None: not scanned).
_Twin = tuple[Analysis, list[Package], Collection[str], "FileTable | None"]


# A verifier result: this copy holds the very bytes of the first side's copy.
SAME_BYTES = "same-bytes"
COMPARE_CHUNK = 256 * 1024  # fits in L2 with its twin: 2.7 GB/s here, against 1.3 for sha256


def _comparable(a: Blob, b: Blob) -> bool:
    """Two stored copies that can be compared instead of hashed: both regions of files, of
    one size (sha256 of the first is computed anyway; comparing is twice as fast)."""
    return a.fd is not None and b.fd is not None and a.size == b.size


def _same_bytes(a: Blob, b: Blob) -> bool:
    try:
        return _same_file_bytes(a, 0, b, 0, a.size)[0]
    except CorruptInput:
        return False  # hashed instead: the digests then say what differs


def _same_size(a: Blob, b: Blob) -> bool:
    """Both copies could hold the same bytes as far as their stored size tells: a plain copy
    the size of the other plain one (equal diff_ids mean equal tar streams, so equal sizes);
    compressed copies, whose sizes depend on the compressor, always."""
    return a.size == b.size or _compression(a) != "none" or _compression(b) != "none"


def _same_region(a: Blob, b: Blob) -> bool:
    """Both blobs are one region of one file (two images of one archive, or an archive
    compared with itself)."""
    if a.fd is None or b.fd is None or (a.offset, a.size) != (b.offset, b.size):
        return False
    sa, sb = os.fstat(a.fd), os.fstat(b.fd)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _compression(blob: Blob) -> str:
    if blob.fd is not None:
        return sniff_compression(FileRegion(blob.fd, blob.offset, blob.size).read(8))
    return sniff_compression(blob.head)


def _hash_only(blob: Blob, raw_only: bool = False, mapped: bool = False) -> LayerRead:
    """Verify a layer copy without walking it: its diff_id and blob digest; with `raw_only`
    the blob digest alone (diff_id None), for a copy claimed to be a blob already verified.
    `mapped` (in a forked child only; see streams.hash_mapped_region) hashes in place."""
    hash_file = hash_mapped_region if mapped else hash_region
    compression = _compression(blob)
    if raw_only and blob.fd is not None:
        digest, done = hash_file(blob.fd, blob.offset, blob.size)
        return LayerRead(compression, done, 0, None, digest)
    if blob.fd is not None and compression == "none":
        digest, done = hash_file(blob.fd, blob.offset, blob.size)
        if done != blob.size:
            raise CorruptInput(f"layer {blob.name} is truncated")
        return LayerRead("none", blob.size, blob.size, digest, digest)
    if blob.fd is not None:
        raw: Iterator[bytes] = file_chunks(blob.fd, blob.offset, blob.size)
    else:
        assert blob.chunks is not None
        raw = _prepend(blob.head, blob.chunks)
    decoder = HashingDecoder(raw, compression, hash_raw=compression != "none", threaded=False)
    for _ in decoder.chunks():
        pass
    diff_id = "sha256:" + decoder.decoded_digest.hexdigest()
    blob_digest = ("sha256:" + decoder.raw_digest.hexdigest()
                   if decoder.raw_digest is not None else diff_id)
    return LayerRead(compression, decoder.raw_size, decoder.decoded_size, diff_id, blob_digest)


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


class _Delegate:
    """A Container seen through a wrapper: only `preread` changes."""

    def __init__(self, side: _SideIO) -> None:
        assert side.container is not None and side.resolved is not None
        self.inner = side.container
        self.resolved = side.resolved

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def blob(self, name: str) -> Blob:
        return self.inner.blob(name)


class _RecordedLayer:
    """A shared layer read once. With `keep` (its blob is applied again: at a second
    position of the first side, or at a position of the second side after the shared
    prefix) the first iteration records its entries and any later one replays them;
    otherwise nothing is kept: the second side starts from a snapshot of the first's tree
    after the shared prefix (ReplayStart), and keeping ~17k entries of a Debian image cost
    ~15 ms of the walk and ~10 ms of garbage collection later."""

    def __init__(self, blob: Blob, index: int, label: str, capture: Capture,
                 verify: bool, keep: bool) -> None:
        self.reader = LayerReader(blob, index, capture, verify)
        self.label = label
        self.keep = keep
        self.entries: list[LayerEntry] | None = None
        self.walked = False

    def __iter__(self) -> Iterator[LayerEntry]:
        if self.entries is not None:
            yield from self.entries
            return
        if self.walked:
            raise AssertionError(f"layer {self.reader.index} applied again but not kept")
        recorded: list[LayerEntry] | None = [] if self.keep else None
        try:
            if recorded is None:
                yield from self.reader.entries()
            else:
                for entry in self.reader.entries():
                    recorded.append(entry)
                    yield entry
        except (CorruptInput, LimitExceeded) as exc:
            raise type(exc)(f"layer {self.reader.index} ({self.label}): {exc}") from None
        self.walked = True
        self.entries = recorded


class _Recorder(_Delegate):
    """The first side: its shared layers are read through here (their entries kept where
    they are applied again: _RecordedLayer)."""

    def __init__(self, side: _SideIO, shared: int, verify: bool, other: _SideIO) -> None:
        super().__init__(side)
        self.side = side.name
        self.layers: dict[str, _RecordedLayer] = {}
        assert other.resolved is not None
        positions = Counter(ref.name for ref in self.resolved.layers)
        later = {ref.name for ref in other.resolved.layers[shared:]}
        # this side's blob at each prefix position where the other side's blob comes back
        again = {self.resolved.layers[i].name
                 for i, ref in enumerate(other.resolved.layers[:shared]) if ref.name in later}
        for index, ref in enumerate(self.resolved.layers[:shared]):
            if ref.name in self.layers:
                continue
            keep = positions[ref.name] > 1 or ref.name in again
            layer = _RecordedLayer(self.inner.blob(ref.name), index, ref.digest or ref.name,
                                   side.capture, verify, keep)
            self.layers[ref.name] = layer

    def preread(self, name: str):
        layer = self.layers.get(name)
        if layer is None:
            return self.inner.preread(name)
        return layer, layer.reader.result


class _ReplayedLayer:
    """A shared layer of the second side: the first side's entries. Its LayerRead holds the
    first side's measurements until `verify` (after cataloging, so that hashing this copy
    overlaps with everything else) puts this copy's own in, or refuses it."""

    def __init__(self, source: _RecordedLayer, read: LayerRead,
                 pending: _PendingRead | None, blob: Blob, trusted: bool = False,
                 in_snapshot: int = 0) -> None:
        self.source = source
        self.read = read
        self.pending = pending
        self.blob = blob
        self.trusted = trusted  # not read: known by its diff_id (see _Pair.analyze)
        self.in_snapshot = in_snapshot  # positions of it in the shared prefix

    def __iter__(self) -> Iterator[LayerEntry]:
        if not self.source.walked:
            raise AssertionError("shared layer replayed before it was read")
        if self.source.entries is not None:
            yield from self.source.entries
        elif self.in_snapshot > 0:
            self.in_snapshot -= 1  # in the snapshot the second side starts from: read only
        else:
            raise AssertionError("shared layer applied again but its entries were not kept")
        first = self.source.reader.result
        read = self.read
        read.compression, read.compressed_size = _compression(self.blob), self.blob.size
        read.uncompressed_size, read.diff_id = first.uncompressed_size, first.diff_id
        read.blob_digest = None  # not measured yet: see verify
        # Properties of the uncompressed stream: equal once the diff_ids match.
        read.trailing_bytes, read.end = first.trailing_bytes, first.end
        read.findings = list(first.findings)

    def verify(self) -> LayerRead:
        """This copy's own digests (hash-only, from the verifier child); for a copy not
        read, only what its stored form says (diff_id None: nothing measured)."""
        first = self.source.reader.result
        if self.trusted:
            compression = _compression(self.blob)
            # A plain blob is its tar stream: its digest is the diff_id the first side's copy
            # was checked against (the same at this position).
            return LayerRead(compression, self.blob.size, first.uncompressed_size,
                             blob_digest=first.diff_id if compression == "none" else None)
        if self.pending is None:  # the very bytes the first side read (same file region)
            return replace(first, findings=[], digests={})
        own = self.pending.result()
        if own.diff_id == SAME_BYTES:
            # byte for byte the first side's copy, which was hashed and checked against the
            # same diff_id (and blob digest) this side claims
            return replace(first, findings=[], digests={}, compression=own.compression,
                           compressed_size=own.compressed_size)
        if own.diff_id is None:
            if own.blob_digest == first.blob_digest and first.diff_id is not None:
                # byte for byte the blob the first side inflated and verified
                own.diff_id, own.uncompressed_size = first.diff_id, first.uncompressed_size
            else:
                own = _hash_only(self.blob)
        return own


class _Replayer(_Delegate):
    def __init__(self, side: _SideIO, first: _SideIO, recorder: _Recorder, shared: int,
                 pending: dict[str, _PendingRead], trusted: set[str]) -> None:
        super().__init__(side)
        assert first.resolved is not None
        # this side's blob name -> the first side's blob name at the same position
        self.source = {ref.name: first.resolved.layers[i].name
                       for i, ref in enumerate(self.resolved.layers[:shared])}
        self.recorder = recorder
        self.pending = pending
        self.trusted = trusted
        self.shared = shared
        self.layers: dict[str, _ReplayedLayer] = {}

    def preread(self, name: str):
        if name not in self.source:
            return self.inner.preread(name)
        layer = self.layers.get(name)
        if layer is None:
            source = self.recorder.layers[self.source[name]]
            prefix = self.resolved.layers[:self.shared]
            layer = _ReplayedLayer(source, LayerRead(), self.pending.get(name),
                                   self.inner.blob(name), name in self.trusted,
                                   sum(ref.name == name for ref in prefix))
            self.layers[name] = layer
        return layer, layer.read


def _hash_only_row(blob: Blob, raw_only: bool, reference: Blob | None = None) -> list:
    if reference is not None and _same_bytes(blob, reference):
        return [_compression(blob), blob.size, 0, SAME_BYTES, SAME_BYTES]
    r = _hash_only(blob, raw_only, mapped=True)
    return [r.compression, r.compressed_size, r.uncompressed_size, r.diff_id, r.blob_digest]


class _ForkedHashes(ForkedJobs):
    """Hash-only verification of layer blobs (`_hash_only`) in one forked child, in order
    (see streams.ForkedJobs for why a process); a blob's error is raised when it is asked
    for."""

    def __init__(self, blobs: Sequence[tuple[Blob, bool, Blob | None]]) -> None:
        """`blobs`: (blob, raw_only, reference) triples: see _hash_only for `raw_only`; a
        `reference` is the first side's copy, compared byte for byte first (_same_bytes)."""
        super().__init__(_hash_only_row, blobs)

    def result(self, index: int) -> LayerRead:  # type: ignore[override]
        return LayerRead(*super().result(index))


class _PendingRead:
    def __init__(self, hashes: _ForkedHashes, index: int) -> None:
        self._hashes, self._index = hashes, index

    def result(self) -> LayerRead:
        return self._hashes.result(self._index)
