"""How to make the image small: recommendations from the build-tool findings, each with the
bytes it saves, its evidence, and the image size once it and every one above it are done.

Sizes are image bytes as shipped: every file version in every layer (Summary.shipped_bytes),
so bytes deleted in a later layer, which are still downloaded, count. Each recommendation
removes a set of file versions (or, for strip, part of some); the list is ordered greedily by
what each saves beyond the ones above it, so no byte is counted twice and `size_after` is
cumulative. `bytes_alone` is what a recommendation saves on its own: a cheap fix that the
builder stage already covers shows 0 saved after it but its full value alone.

The runtime closure is never touched: its packages stay whole, with their dependencies.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from imgscope.analyze.buildtools import (
    CONTENT_PATTERNS as BUILDTOOL_PATTERNS,
)
from imgscope.analyze.buildtools import (
    BuildToolScan,
    FileTable,
    Hit,
    dpkg_info_files,
    scan,
)
from imgscope.analyze.dockerfile import (
    DISTROLESS_CC,
    DISTROLESS_STATIC,
    RuntimeBase,
    clean_instruction,
    distroless_suffix,
    install_line,
    instructions,
    runtime_config_lines,
    slim_base,
)
from imgscope.model import Finding, Recommendation, Warning_
from imgscope.report.paths import human

BUILD_KINDS = frozenset({"compiler", "build-system", "dev-package", "build-dependency",
                         "toolchain", "debug-tool", "debug-package"})
LEFTOVER_IDS = frozenset({"source", "vcs", "rust-target", "object-files", "dev-files",
                          "debug-files"})
CACHE_GROUPS = {
    "apt-lists": "apt", "apt-cache": "apt", "apk-cache": "apk", "dnf-cache": "dnf",
    "pip-cache": "pip", "npm-cache": "npm", "go-build-cache": "go-build",
    "go-mod-cache": "go-mod", "cargo-cache": "cargo", "jvm-cache": "jvm",
}
# Tie-break order when two recommendations save the same bytes.
_KIND_ORDER = ("multi-stage", "slimmer-base", "purge-build-tools", "jre-instead-of-jdk",
               "clean-cache", "no-install-recommends", "same-layer", "leftovers", "strip")


def _content_patterns() -> tuple[str, ...]:
    try:
        from imgscope.analyze.closure import CONTENT_PATTERNS as closure
    except ImportError:
        closure = ()
    return (*BUILDTOOL_PATTERNS, *closure)


_T = TypeVar("_T")

# Files whose bytes advise() reads: pass them to analyze(content_patterns=...) when running
# it through post_analysis_hook (analyze(advise=True) adds them itself).
CONTENT_PATTERNS = _content_patterns()


@dataclass(frozen=True)
class Advice:
    """Findings and recommendations for one image."""

    scan: BuildToolScan
    recommendations: tuple[Recommendation, ...]
    image_bytes: int  # shipped bytes now
    runtime_base: RuntimeBase | None  # the base the builder-stage sketch uses
    runtime_bytes: int | None  # predicted image bytes of that sketch

    @property
    def findings(self) -> list[Finding]:
        return self.scan.findings


# -- every shipped file version -----------------------------------------------------------


@dataclass
class Versions:
    """Each file version shipped in a layer: first the final ones (one per inode, in
    FileTable order), then the hidden ones (analysis.wasted order). A version is its index."""

    path: list[str]
    layer: list[int]
    size: list[int]
    finals: int  # versions [0, finals) are in the final filesystem
    final_of: dict[str, int]  # canonical path -> its final version
    hidden_of: dict[str, list[int]]  # path -> its hidden versions

    @classmethod
    def build(cls, table: FileTable, wasted: Sequence) -> Versions:
        paths = list(table.size)
        hidden_of: dict[str, list[int]] = defaultdict(list)
        for i, w in enumerate(wasted, len(paths)):
            hidden_of[w.path].append(i)
        return cls(
            path=paths + [w.path for w in wasted],
            layer=list(map(table.layer.__getitem__, paths)) + [w.layer for w in wasted],
            size=list(table.size.values()) + [w.size for w in wasted],
            finals=len(paths),
            final_of=dict(zip(paths, range(len(paths)), strict=True)),
            hidden_of=dict(hidden_of),
        )

    def of(self, paths: Iterable[str], *, final_only: bool = False,
           min_layer: int = 0) -> set[int]:
        paths = paths if isinstance(paths, (list, tuple)) else list(paths)
        layer = self.layer
        # map() does the lookups; Python code runs only for the versions found.
        out = {i for i in map(self.final_of.get, paths) if i is not None and layer[i] >= min_layer}
        if not final_only:
            for hidden in filter(None, map(self.hidden_of.get, paths)):  # most paths have none
                out.update(j for j in hidden if layer[j] >= min_layer)
        return out


@dataclass(frozen=True)
class _Candidate:
    """A recommendation before ranking: the file versions it drops or shrinks, and what it
    adds; _order turns it into a Recommendation."""

    kind: str
    title: str
    reason: str
    remove: frozenset[int]  # the versions it drops; with `keep` set: every version but those
    partial: Mapping[int, int] = field(default_factory=dict)  # version -> bytes saved
    keep: frozenset[int] | None = None  # a new image: only these versions (and below) stay
    keep_below_layer: int = 0  # versions of layers under this one stay too (the base)
    added: int = 0  # bytes it brings in (a new base's estimated files)
    evidence: tuple[str, ...] = ()
    dockerfile: str | None = None
    packages: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    layer: int | None = None
    instruction: str | None = None


# -- entry points -----------------------------------------------------------------------------


def advise(analysis, view, *, runtime_base: str | None = None) -> Advice:
    """Closure, ELF facts, build-tool scan and recommendations for an attributed analysis.
    Call it while the archive is open (analyze's post_analysis): ELF bytes are read."""
    return recommend(analysis, scan_build_tools(analysis, view), runtime_base=runtime_base)


def scan_build_tools(analysis, view, table: FileTable | None = None) -> BuildToolScan:
    """The build-tool findings of an attributed analysis, without recommendations (what
    `imgscope diff` compares): the runtime closure, then the scan that uses it. `table`:
    the analysis's FileTable, when known (buildtools.scan)."""
    closure = None
    limits: list[str] = []
    try:
        from imgscope.analyze.closure import runtime_closure
    except ImportError:
        runtime_closure = None  # type: ignore[assignment]
    if runtime_closure is not None:
        try:
            closure = runtime_closure(analysis.fs, view, analysis.config, analysis.attribution)
        except Exception as exc:  # a closure bug must not hide the findings
            limits.append(f"runtime closure failed: {type(exc).__name__}: {exc}")
    result = scan(analysis.fs, view, analysis.attribution, analysis.layers, analysis.config,
                  closure, table=table)
    if limits:  # said where the findings are read, beside the scan's own limits
        result = replace(result, limits=(*limits, *result.limits))
    return result


def post_analysis_hook(runtime_base: str | None = None) -> Callable:
    """An `analyze(post_analysis=...)` callable that stores the advice on the analysis (give
    analyze `content_patterns=CONTENT_PATTERNS` too)."""

    def run(analysis, view) -> None:
        apply_advice(analysis, view, runtime_base=runtime_base)

    return run


def apply_advice(analysis, view, *, runtime_base: str | None = None) -> Advice | None:
    """advise() into analysis.extras (findings, recommendations, advice); a failure is a
    warning, never an exception: the rest of the report still stands."""
    advice = _warned(analysis, lambda: advise(analysis, view, runtime_base=runtime_base))
    if advice is None:
        return None
    analysis.extras.findings = list(advice.findings)
    analysis.extras.recommendations = list(advice.recommendations)
    analysis.extras.advice = advice
    return advice


def apply_findings(analysis, view, table: FileTable | None = None) -> BuildToolScan | None:
    """apply_advice without the recommendations: scan_build_tools()'s findings into
    analysis.extras.findings (what `imgscope diff` compares), a failure a warning (then
    None is returned, else the scan)."""
    result = _warned(analysis, lambda: scan_build_tools(analysis, view, table))
    if result is not None:
        analysis.extras.findings = list(result.findings)
    return result


def _warned(analysis, run: Callable[[], _T]) -> _T | None:
    """run(), or None with an "advice" warning on the analysis when it raises."""
    try:
        return run()
    except Exception as exc:  # analysis bugs become warnings, as cataloger failures do
        analysis.warnings.append(Warning_("advice", f"advice failed: {type(exc).__name__}: "
                                                    f"{exc}"))
        return None


def recommend(analysis, result: BuildToolScan, *, runtime_base: str | None = None) -> Advice:
    if not result.hits and not analysis.wasted:  # nothing to act on: skip the bookkeeping
        return Advice(result, (), analysis.summary.shipped_bytes, None, None)
    table = result.table if result.table is not None else FileTable.build(analysis.fs)
    versions = Versions.build(table, analysis.wasted)
    ctx = _Context(analysis, result, table, versions)
    candidates: list[_Candidate] = []
    base_choice = None
    runtime_bytes = None
    multi = ctx.multi_stage(runtime_base)
    if multi is not None:
        candidate, base_choice, runtime_bytes = multi
        candidates.append(candidate)
    for make in (ctx.purge, ctx.slimmer_base, ctx.jre, ctx.caches, ctx.no_recommends,
                 ctx.same_layer, ctx.leftovers, ctx.strip):
        candidates.extend(c for c in make() if c is not None)
    recs = _order(candidates, versions, analysis.summary.shipped_bytes)
    return Advice(result, tuple(recs), analysis.summary.shipped_bytes, base_choice,
                  runtime_bytes)


def _order(candidates: list[_Candidate], versions: Versions, image_bytes: int
           ) -> list[Recommendation]:
    remaining = list(versions.size)
    count = len(remaining)
    layer = versions.layer

    def not_kept(keep: frozenset[int], below: int) -> list[int]:
        return [i for i in range(count) if i not in keep and layer[i] >= below]

    # The versions each candidate drops, listed once: a new image's are all but those it keeps.
    drops: dict[int, Collection[int]] = {
        id(c): c.remove if c.keep is None else not_kept(c.keep, c.keep_below_layer)
        for c in candidates}

    def dropped(c: _Candidate) -> Collection[int]:
        return drops[id(c)]

    def gain(c: _Candidate) -> int:
        gone = dropped(c)
        total = sum(map(remaining.__getitem__, gone))
        if c.partial:
            gone = gone if isinstance(gone, (set, frozenset)) else set(gone)
            total += sum(min(b, remaining[i]) for i, b in c.partial.items() if i not in gone)
        return total - c.added

    sizes = versions.size
    alone = {id(c): sum(map(sizes.__getitem__, dropped(c)))
             + sum(b for i, b in c.partial.items() if c.keep is None and i not in c.remove)
             - c.added for c in candidates}
    left = [c for c in candidates if alone[id(c)] > 0]
    out: list[Recommendation] = []
    size = image_bytes
    while left:
        gains = {id(c): gain(c) for c in left}
        best = max(left, key=lambda c: (gains[id(c)], -_KIND_ORDER.index(c.kind)
                                        if c.kind in _KIND_ORDER else -99, alone[id(c)]))
        saved = gains[id(best)]
        for i in dropped(best):
            remaining[i] = 0
        for i, b in best.partial.items():
            remaining[i] -= min(b, remaining[i])
        size -= saved
        left.remove(best)
        out.append(Recommendation(
            title=best.title, bytes_saved=saved, reason=best.reason, evidence=best.evidence,
            dockerfile=best.dockerfile, kind=best.kind, bytes_alone=alone[id(best)],
            size_after=size, packages=best.packages, paths=best.paths, layer=best.layer,
            instruction=best.instruction))
    return out


# -- the recommendations ------------------------------------------------------------------------


class _Context:
    def __init__(self, analysis, result: BuildToolScan, table: FileTable,
                 versions: Versions) -> None:
        self.analysis = analysis
        self.scan = result
        self.table = table
        self.versions = versions
        self.base_layers = result.base.layers
        self.attribution = analysis.attribution
        self.usage = {u.key: u for u in (self.attribution.packages if self.attribution else [])}
        self.files_of: dict[str, list[str]] = defaultdict(list)
        if self.attribution is not None:
            for path, key in self.attribution.owner_of.items():
                self.files_of[key].append(path)
        self.instruction_of = {info.index: clean_instruction(info.created_by)
                               for info in analysis.layers}
        self.build_hits = [h for h in result.hits if h.finding.kind in BUILD_KINDS]
        self.info_files = (result.info_files if result.info_files is not None
                           and result.table is table else dpkg_info_files(table))
        self.os_keys = frozenset(k for k, u in self.usage.items() if u.package.ecosystem in OS)
        self._expanded: dict[tuple[str, ...], list[str]] = {}
        self._app_paths: list[str] | None = None
        self._build_versions: frozenset[int] | None = None

    # helpers ---------------------------------------------------------------------------------

    def own(self, indices: Iterable[int]) -> frozenset[int]:
        return frozenset(i for i in indices if self.versions.layer[i] >= self.base_layers)

    def hit_versions(self, hits: Iterable[Hit], min_layer: int = 0) -> set[int]:
        """Every version of the hits' files: the final one and those lower layers hid."""
        return self.versions.of((p for h in hits for p in h.files), min_layer=min_layer)

    def build_versions(self) -> frozenset[int]:
        """hit_versions(self.build_hits), which several recommendations start from."""
        if self._build_versions is None:
            self._build_versions = frozenset(self.hit_versions(self.build_hits))
        return self._build_versions

    def main_layer(self, indices: Iterable[int]) -> int | None:
        per: dict[int, int] = defaultdict(int)
        for i in indices:
            per[self.versions.layer[i]] += self.versions.size[i]
        return max(per, key=lambda la: (per[la], -la)) if per else None

    def package_files(self, key: str) -> list[str]:
        """The package's files, and for dpkg its info/ files, which leave with it."""
        paths = list(self.files_of.get(key, ()))
        u = self.usage.get(key)
        if u is not None and u.package.ecosystem == "deb":
            paths += self.info_files.get(u.package.name, ())
        return paths

    def run_line(self, layer: int | None) -> str | None:
        return self.instruction_of.get(layer) if layer is not None else None

    def pkg_name(self, key: str) -> str:
        u = self.usage.get(key)
        return u.package.name if u is not None else key

    # builder stage -----------------------------------------------------------------------------

    def multi_stage(self, override: str | None
                    ) -> tuple[_Candidate, RuntimeBase, int] | None:
        closure = self.scan.closure
        if not self.build_hits or closure is None or closure.executable is None:
            return None  # nothing is known to be needed: no basis for a runtime stage
        base = self.choose_base(override)
        v = self.versions
        keep: set[int] = set()
        below = self.base_layers if base.kind == "same-as-base" else 0
        app = self.app_paths()
        keep |= v.of(self.expand(app), final_only=True)
        closure_files = [self.table.canonical.get(p) for p in closure.files
                         if p not in _GENERATED]
        if base.kind != "scratch":
            keep |= v.of((p for p in closure_files if p), final_only=True)
        install = self.install_packages(base)
        kept_keys = set(self.scan.protected) if base.kind != "scratch" else set()
        for key in kept_keys:
            u = self.usage.get(key)
            if u is None:
                continue
            if base.kind == "same-as-base" and u.introduced_layer is not None \
                    and u.introduced_layer < self.base_layers:
                continue  # already in the base layers kept above
            keep |= v.of(self.package_files(key), final_only=True)
        estimate = ""
        added = 0
        if base.kind.startswith("distroless"):
            # The base's size is unknown here: this image's copies of what it provides stand
            # in for it, counted as new bytes so that no other recommendation removes them.
            stand_in = [k for k, u in self.usage.items() if u.package.name in base.provides
                        and u.package.ecosystem == "deb"]
            extra: set[int] = set()
            for key in stand_in:
                extra |= v.of(self.package_files(key), final_only=True)
            added = sum(v.size[i] for i in extra - keep)
            estimate = (f"size estimate: {base.ref} counted as this image's copies of "
                        f"{', '.join(sorted(self.pkg_name(k) for k in stand_in)) or 'nothing'}"
                        f" ({human(added)} beyond the closure's own files)")
        runtime = sum(v.size[i] for i in keep if v.layer[i] >= below) + added
        runtime += sum(st.shipped_bytes for st in self.analysis.stats[:below])
        dockerfile = self.sketch(base, app, install)
        dropped = [k for h in self.build_hits for k in h.finding.packages]
        evidence = [
            f"{h.finding.title}: {human(h.finding.bytes)}"
            + (f" (layer {h.finding.layer}: {h.finding.instruction})"
               if h.finding.instruction else "")
            for h in self.build_hits
        ]
        evidence.append(f"runtime closure ({closure.kind}): {closure.executable or '-'}"
                        + (f", packages {', '.join(self.pkg_name(k) for k in closure.packages)}"
                           if closure.packages else ""))
        if app:
            evidence.append("copied from the builder: " + ", ".join(app[:10]))
        if install:
            evidence.append("installed in the runtime stage: " + " ".join(install))
        app_files = set(self.expand(app))
        compilers = sorted({info.compiler for p, info in self.scan.elf.items()
                            if info.compiler and p in app_files})
        if compilers:
            evidence.append("the app was built by " + "; ".join(compilers[:3]))
        if estimate:
            evidence.append(estimate)
        evidence += [f"limit: {text}" for text in self.scan.limits[:4]]
        tools = sum(h.finding.bytes for h in self.build_hits)
        reason = (f"The image keeps its build tools ({human(tools)} in the final filesystem). "
                  f"Build in a builder stage and start the runtime "
                  f"stage from {base.ref}: {base.reason}. Only the files the entrypoint needs "
                  f"are copied over; the runtime image would be about {human(runtime)}.")
        candidate = _Candidate(
            "multi-stage", f"Build in a builder stage, ship only the runtime closure on {base.ref}",
            reason, frozenset(), keep=frozenset(keep), keep_below_layer=below, added=added,
            evidence=tuple(evidence), dockerfile=dockerfile,
            packages=tuple(dict.fromkeys(dropped)),
            paths=tuple(r for h in self.build_hits if not h.finding.packages
                        for r, _ in h.finding.items))
        return candidate, base, runtime

    def copy_sources(self, app: Sequence[str]) -> list[str]:
        """The fewest COPY sources for the closure's non-package files: a directory when every
        non-package file below it is needed and no package owns anything there. Byte-code of
        package-owned modules is left out: installing the package regenerates it."""
        owner_of = self.attribution.owner_of if self.attribution else {}
        os_keys = self.os_keys
        needed = {p for p in self.expand(app) if not self.regenerated(p, owner_of)
                  and p not in _GENERATED}
        needed |= {p for p in app if p not in self.table.size}  # symlinks, empty dirs
        # A directory can be copied whole when it has files below it and every one of them
        # is needed and owned by no OS package. Marking each file's parent, then its
        # ancestors until one is already marked, walks each directory chain once.
        has_files: set[str] = set()
        has_others: set[str] = set()  # a package-owned or unneeded file below
        for path in self.table.canonical:
            parent = path.rpartition("/")[0] or "/"
            if parent not in has_files:
                _mark_up(has_files, parent)
            if parent not in has_others and (path not in needed
                                             or owner_of.get(path) in os_keys):
                _mark_up(has_others, parent)
        out = []
        for path in sorted(needed):
            tops = [d for d in _parents(path) if d in has_files and d not in has_others
                    and d not in _SYSTEM_DIRS]
            out.append(tops[0] if tops else path)
        return sorted(dict.fromkeys(out))

    def regenerated(self, path: str, owner_of: Mapping[str, str]) -> bool:
        """A .pyc whose .py a package owns (through symlinks too): its postinst writes it."""
        m = _PYC.match(path)
        if not m:
            return False
        resolved = self.analysis.fs.resolve(f"{m.group(1)}/{m.group(2)}.py")
        return resolved is not None and owner_of.get(resolved[0]) in self.os_keys

    def app_paths(self) -> list[str]:
        if self._app_paths is None:
            self._app_paths = self._find_app_paths()
        return list(self._app_paths)

    def _find_app_paths(self) -> list[str]:
        closure = self.scan.closure
        assert closure is not None
        owner_of = self.attribution.owner_of if self.attribution else {}
        os_keys = self.os_keys
        roots = list(closure.app_paths)
        # A path is inside a root when it is one, or when the root (without a trailing "/")
        # is the part before one of its slashes: set lookups, not a scan of every root.
        exact = set(roots)
        stems = {r.rstrip("/") for r in roots}
        for path in closure.files:
            if path in _GENERATED:
                continue
            canon = self.table.canonical.get(path, path)
            if owner_of.get(canon) in os_keys or owner_of.get(path) in os_keys:
                continue
            inside = path in exact or _below(path, stems)
            if not inside and path in self.table.canonical:
                roots.append(path)
                exact.add(path)
                stems.add(path.rstrip("/"))
        return sorted(dict.fromkeys(roots))

    def expand(self, roots: Sequence[str]) -> list[str]:
        """The final files at or below the roots (one pass over every file: remembered)."""
        key = tuple(roots)
        found = self._expanded.get(key)
        if found is None:
            found = self._expanded[key] = _at_or_below(self.table.size, roots)
        return found

    def choose_base(self, override: str | None) -> RuntimeBase:
        closure = self.scan.closure
        assert closure is not None
        release = self.scan.release
        need = {self.pkg_name(k) for k in closure.packages
                if k.split("/", 1)[0] in ("deb", "apk", "rpm")}
        base_name = self.scan.base.name
        base_has_tools = any(layer < self.base_layers for h in self.build_hits
                             for layer in h.finding.layers)
        own = self.base_packages()
        _slim, manager = slim_base(release)
        if override:
            if override == "scratch":
                return RuntimeBase("scratch", "scratch", "chosen with --base", frozenset(),
                                   None, shell=False)
            if not base_has_tools and self.base_layers:
                return RuntimeBase(override, "same-as-base",
                                   "chosen with --base; taken to provide what this image's "
                                   "own base layers provide", frozenset(own), manager)
            return RuntimeBase(override, "custom", "chosen with --base", frozenset(), manager)
        suffix = distroless_suffix(release)
        debian = (release.get("ID") or "debian").lower() == "debian"
        if closure.kind == "elf-static" and need <= DISTROLESS_STATIC:
            return RuntimeBase(
                f"gcr.io/distroless/static-{suffix}", "distroless-static",
                "the entrypoint is a static binary; distroless/static adds only CA "
                "certificates, time zones and /etc/passwd (FROM scratch works too when it "
                "needs none of them)", DISTROLESS_STATIC, None, shell=False)
        if closure.kind == "elf-dynamic" and debian and need <= DISTROLESS_CC:
            return RuntimeBase(
                f"gcr.io/distroless/cc-{suffix}", "distroless-cc",
                "the entrypoint needs only " + (", ".join(sorted(need)) or "libc")
                + ", which distroless/cc provides", DISTROLESS_CC, None, shell=False)
        env = dict(e.partition("=")[::2] for e in self.analysis.config.env)
        if closure.kind == "python" and env.get("PYTHON_VERSION") and base_has_tools:
            version = ".".join(env["PYTHON_VERSION"].split(".")[:2])
            return RuntimeBase(f"python:{version}-slim", "slim",
                               "the official slim Python image has the interpreter without "
                               "compilers", frozenset(), manager)
        if closure.kind == "node" and env.get("NODE_VERSION") and base_has_tools:
            major = env["NODE_VERSION"].split(".")[0]
            return RuntimeBase(f"node:{major}-slim", "slim",
                               "the official slim Node image has node without compilers",
                               frozenset(), manager)
        slim_ref, manager = slim_base(release)
        if base_name and not base_has_tools:
            return RuntimeBase(base_name, "same-as-base",
                               "the image's own base has no build tools; the runtime stage "
                               f"installs only what the closure needs ({slim_ref} works too)",
                               frozenset(own), manager)
        if not base_has_tools and self.base_layers:
            return RuntimeBase(slim_ref, "same-as-base",
                               "a slim image of the same distribution; this image's own base "
                               "layers stand in for it in the size estimate",
                               frozenset(own), manager)
        return RuntimeBase(slim_ref, "slim", "a slim image of the same distribution",
                           frozenset(), manager)

    def base_packages(self) -> set[str]:
        return {u.package.name for u in self.usage.values()
                if u.introduced_layer is not None and u.introduced_layer < self.base_layers}

    def install_packages(self, base: RuntimeBase) -> list[str]:
        """Closure packages the base lacks, as the few names apt/apk need to pull the rest."""
        closure = self.scan.closure
        if closure is None or base.kind == "scratch" or base.package_manager is None:
            return []
        graph = self.scan.graph
        keys = [k for k in closure.packages if k in self.usage
                and self.usage[k].package.ecosystem in ("deb", "apk", "rpm")
                and self.usage[k].package.name not in base.provides]
        keyset = set(keys)
        covered: set[str] = set()
        if graph is not None:
            for k in keys:
                covered |= graph.forward(graph.depends.get(k, ())) & keyset
        names = sorted({self.pkg_name(k) for k in keys if k not in covered})
        return names

    def sketch(self, base: RuntimeBase, app: Sequence[str], install: Sequence[str]) -> str:
        cfg = self.analysis.config
        history = cfg.history
        found = self.scan.base
        builder_from = found.name or _builder_image(cfg, self.scan.release)
        lines = ["# Sketch by imgscope: review before use.",
                 "# Builder: this image's own build steps, from its history.",
                 f"FROM {builder_from} AS builder"]
        skip = {"CMD", "ENTRYPOINT", "EXPOSE", "LABEL", "HEALTHCHECK", "VOLUME",
                "STOPSIGNAL", "ONBUILD", "MAINTAINER", "FROM"}
        for ins in instructions(history, found.history_index):
            if ins.keyword in skip:
                continue
            if ins.guessed:
                lines.append(f"# imgscope: {ins.note}")
            lines.append(ins.text)
        lines.append("")
        lines.append(f"# Runtime: {base.reason}.")
        lines.append(f"FROM {base.ref}")
        run = install_line(base.package_manager, install) if base.shell else None
        if run:
            lines.append(run)
        elif install:
            lines.append(f"# needs packages the base lacks: {' '.join(install)}")
        for path in self.copy_sources(app):
            lines.append(f"COPY --from=builder {path} {path}")
        others = self.dropped_manual()
        if others:
            lines.append("# Installed by hand in the original but not seen in the runtime "
                         f"closure: {' '.join(others)}")
        lines += runtime_config_lines(cfg, self.base_env())
        return "\n".join(lines) + "\n"

    def base_env(self) -> list[str]:
        # ENV set by the base image's history entries need not be repeated.
        out = []
        for item in self.analysis.config.history[: self.scan.base.history_index]:
            text = clean_instruction(item.created_by) or ""
            if text.startswith("ENV "):
                out.append(text[4:].strip())
        return [e for e in self.analysis.config.env if e in out or e.startswith("PATH=")
                and e.endswith("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")]

    def dropped_manual(self) -> list[str]:
        graph = self.scan.graph
        if graph is None or graph.manual is None:
            return []
        removable = self.scan.removable_packages
        own = self.base_packages()
        return sorted(p.name for k, p in graph.packages.items()
                      if p.name in graph.manual and k not in removable
                      and k not in self.scan.protected and p.name not in own)

    # single-stage fixes --------------------------------------------------------------------------

    def purge(self) -> list[_Candidate]:
        hits = self.build_hits
        if not hits:
            return []
        remove = self.own(self.build_versions())
        if not remove:
            return []
        layer = self.main_layer(remove)
        run = self.run_line(layer)
        graph = self.scan.graph
        roots = []
        for h in hits:
            for key in h.finding.packages:
                name = self.pkg_name(key)
                if graph is not None and (graph.manual is None or name in graph.manual):
                    roots.append(name)
        roots = sorted(dict.fromkeys(roots))
        paths = [r for h in hits if not h.finding.packages for r, _ in h.finding.items]
        cleanup = []
        if roots:
            cleanup.append("apt-get purge -y --auto-remove " + " ".join(roots)
                           if self.scan.release.get("ID", "debian") in ("debian", "ubuntu")
                           else "# remove: " + " ".join(roots))
        if paths:
            cleanup.append("rm -rf " + " ".join(paths))
        builds = self.build_runs(layer)
        snippet = None
        if run and run.startswith("RUN "):
            body = " \\\n    && ".join([run[4:].strip(), *builds, *cleanup])
            snippet = f"RUN {body}\n"
        return [_Candidate(
            "purge-build-tools", "Remove the build tools in the RUN that uses them",
            "Without a second stage, install the tools, build, and remove the tools in one "
            "RUN: a later RUN that removes them only hides bytes that are still shipped.",
            remove, evidence=tuple(f"{h.finding.title}: {human(h.finding.bytes)}"
                                   for h in hits),
            dockerfile=snippet, packages=tuple(k for h in hits for k in h.finding.packages),
            paths=tuple(paths), layer=layer, instruction=run)]

    def build_runs(self, after: int | None) -> list[str]:
        """RUN lines of the layers after `after` that wrote the app's files (the build)."""
        closure = self.scan.closure
        if closure is None or after is None:
            return []
        layers = sorted({self.table.layer[p] for p in self.expand(self.app_paths())
                         if self.table.layer.get(p, -1) > after})
        out = []
        for layer in layers:
            run = self.run_line(layer)
            if run and run.startswith("RUN "):
                out.append(run[4:].strip())
        return out

    def slimmer_base(self) -> list[_Candidate]:
        hits = self.build_hits
        remove = frozenset(i for i in self.build_versions()
                           if self.versions.layer[i] < self.base_layers)
        if not remove:
            return []
        env = dict(e.partition("=")[::2] for e in self.analysis.config.env)
        slim, _ = slim_base(self.scan.release)
        for var, fmt in (("PYTHON_VERSION", "python:{}-slim"), ("NODE_VERSION", "node:{}-slim"),
                         ("RUBY_VERSION", "ruby:{}-slim")):
            if env.get(var):
                slim = fmt.format(".".join(env[var].split(".")[:2]))
                break
        return [_Candidate(
            "slimmer-base", f"Start from a base without compilers ({slim})",
            "The base image itself ships build tools; a slim variant has the same runtime "
            "without them.", remove,
            evidence=tuple(f"{h.finding.title} in base layers {list(h.finding.layers)}"
                           for h in hits if any(la < self.base_layers for la in h.finding.layers)),
            dockerfile=f"FROM {slim}\n", layer=0)]

    def jre(self) -> list[_Candidate]:
        hits = [h for h in self.scan.hits if h.family in ("jdk", "jdk-parts")]
        if not hits:
            return []
        every = self.hit_versions(hits)
        remove = self.own(every)
        versions = sorted({m.group(1) for h in hits for k in h.finding.packages
                           for m in [re.search(r"openjdk-?(\d+)", k)] if m})
        env = dict(e.partition("=")[::2] for e in self.analysis.config.env)
        if versions:
            title = f"Install openjdk-{versions[0]}-jre-headless instead of the JDK"
        elif not remove:  # the JDK came with the base image: change the base
            major = (env.get("JAVA_VERSION") or "").lstrip("jdk-").split(".")[0].split("+")[0]
            ref = f"eclipse-temurin:{major}-jre" if major.isdigit() else "a JRE image"
            title = f"Start from {ref} instead of a JDK image"
            remove = frozenset(every)
        else:
            title = "Ship a JRE instead of the JDK"
        return [_Candidate(
            "jre-instead-of-jdk", title,
            "Running Java needs the JRE; javac, jlink, the JDK's jmods and sources only build "
            "(jlink --add-modules can also make a JRE of just the modules the app uses).",
            remove, evidence=tuple(f"{h.finding.title}: {human(h.finding.bytes)}" for h in hits),
            packages=tuple(k for h in hits for k in h.finding.packages),
            paths=tuple(r for h in hits if not h.finding.packages for r, _ in h.finding.items),
            layer=self.main_layer(remove), instruction=self.run_line(self.main_layer(remove)))]

    def caches(self) -> list[_Candidate]:
        groups: dict[str, list[Hit]] = defaultdict(list)
        for h in self.scan.hits:
            group = CACHE_GROUPS.get(h.family)
            if group:
                groups[group].append(h)
        out = []
        for group, hits in groups.items():
            every = self.hit_versions(hits)
            remove = self.own(every)
            in_base = sum(self.versions.size[i] for i in every if i not in remove)
            layer = self.main_layer(remove) if remove else self.main_layer(every)
            run = self.run_line(layer)
            roots = [r for h in hits for r, _ in h.finding.items]
            fixed = _fix_run(run, group, roots) if remove else None
            evidence = [f"{r}: {human(b)}" for h in hits for r, b in h.finding.items]
            if in_base:
                evidence.append(f"{human(in_base)} of it came with the base image: cleaning "
                                "it in a later layer would not make the image smaller")
            title = {"apt": "Clean apt's lists and cache", "pip": "Do not keep pip's cache",
                     "npm": "Do not keep the npm/yarn cache", "go-build": "Do not keep the "
                     "Go build cache", "go-mod": "Do not keep the Go module cache",
                     "cargo": "Do not keep cargo's registry", "jvm": "Do not keep the "
                     "Maven/Gradle repository", "apk": "Do not keep apk's cache",
                     "dnf": "Clean the dnf/yum cache"}[group]
            where = f" in layer {layer}'s RUN" if layer is not None else ""
            out.append(_Candidate(
                "clean-cache", title + where,
                "; ".join(dict.fromkeys(h.finding.reason for h in hits))
                + ". Deleting it in a later RUN does not help: the bytes stay in the layer "
                  "that wrote them.",
                remove, evidence=tuple(evidence), dockerfile=fixed, paths=tuple(roots),
                layer=layer, instruction=run))
        return out

    def no_recommends(self) -> list[_Candidate]:
        graph = self.scan.graph
        if graph is None or graph.manual is None or graph.auto is None:
            return []
        deb = {k: p for k, p in graph.packages.items() if p.ecosystem == "deb"}
        if not deb:
            return []
        roots = [k for k, p in deb.items() if p.name in graph.manual or graph.essential(k)]
        required = graph.forward([*roots, *self.scan.protected])
        extra = [k for k in deb if k not in required]
        layers_of: dict[int, list[str]] = defaultdict(list)
        for k in extra:
            u = self.usage.get(k)
            if u is not None and u.introduced_layer is not None \
                    and u.introduced_layer >= self.base_layers:
                layers_of[u.introduced_layer].append(k)
        out = []
        for layer, keys in sorted(layers_of.items()):
            run = self.run_line(layer) or ""
            if "--no-install-recommends" in run or "apt" not in run:
                continue
            paths = [p for k in keys for p in self.package_files(k)]
            remove = self.own(self.versions.of(paths))
            keys.sort(key=lambda k: -(self.usage[k].final_bytes if k in self.usage else 0))
            fixed = re.sub(r"\b(apt-get|apt)(\s+(?:-\S+\s+)*)install\b",
                           r"\1\2install --no-install-recommends", run, count=0)
            out.append(_Candidate(
                "no-install-recommends", f"Add --no-install-recommends in layer {layer}'s RUN",
                "apt installs every Recommends by default; these packages are installed only "
                "because something recommends them, nothing depends on them.",
                remove, evidence=tuple(f"{self.pkg_name(k)}: "
                                       f"{human(self.usage[k].final_bytes)}"
                                       for k in keys[:12] if k in self.usage),
                dockerfile=fixed + "\n" if fixed != run else None,
                packages=tuple(keys), layer=layer, instruction=run))
        return out

    def same_layer(self) -> list[_Candidate]:
        groups: dict[tuple[int, int], list] = defaultdict(list)
        for w in self.analysis.wasted:
            if w.layer >= self.base_layers and w.size:
                groups[(w.layer, w.hidden_by_layer)].append(w)
        if not groups:
            return []
        remove: set[int] = set()
        evidence = []
        for (layer, hidden), items in sorted(groups.items(),
                                             key=lambda kv: -sum(w.size for w in kv[1])):
            ids = {i for w in items for i in self.versions.hidden_of.get(w.path, ())
                   if self.versions.layer[i] == w.layer}
            remove |= ids
            items.sort(key=lambda w: -w.size)
            shown = ", ".join(w.path for w in items[:3]) + (
                f" (+{len(items) - 3} more)" if len(items) > 3 else "")
            how = "deletes" if all(w.how != "replaced" for w in items) else "rewrites"
            evidence.append(
                f"layer {layer} ({_short(self.run_line(layer))}) ships "
                f"{human(sum(w.size for w in items))} that layer {hidden} "
                f"({_short(self.run_line(hidden))}) {how}: {shown}")
        top = max(groups, key=lambda k: sum(w.size for w in groups[k]))
        a, b = self.run_line(top[0]), self.run_line(top[1])
        snippet = None
        if a and b and a.startswith("RUN ") and b.startswith("RUN "):
            snippet = f"RUN {a[4:].strip()} \\\n    && {b[4:].strip()}\n"
        return [_Candidate(
            "same-layer", "Delete files in the same RUN that creates them",
            "A file deleted (or rewritten, e.g. by chmod) in a later layer is still shipped "
            "in the layer that created it.", frozenset(remove), evidence=tuple(evidence),
            dockerfile=snippet, layer=top[0], instruction=a)]

    def leftovers(self) -> list[_Candidate]:
        hits = [h for h in self.scan.hits if h.family in LEFTOVER_IDS]
        if not hits:
            return []
        remove = self.own(self.hit_versions(hits))
        roots = [r for h in hits for r, _ in h.finding.items]
        vcs = any(h.family == "vcs" for h in hits)
        reason = ("Sources, build output and headers are build inputs: COPY only what runs "
                  "(or delete them in the RUN that builds)")
        if vcs:
            reason += "; add .git to .dockerignore"
        layer = self.main_layer(remove)
        return [_Candidate(
            "leftovers", "Leave sources and build output out of the image", reason + ".",
            remove, evidence=tuple(
                f"{h.finding.title}: {', '.join(r for r, _ in h.finding.items[:4])} "
                f"({human(h.finding.bytes)})" for h in hits),
            paths=tuple(roots), layer=layer, instruction=self.run_line(layer))]

    def strip(self) -> list[_Candidate]:
        hits = [h for h in self.scan.hits if h.strip]
        if not hits:
            return []
        partial: dict[int, int] = {}
        paths = []
        for h in hits:
            for path, saved in h.strip:
                i = self.versions.final_of.get(path)
                if i is not None:
                    partial[i] = saved
                paths.append(path)
        go = [p for p in paths if (self.scan.elf.get(p) and self.scan.elf[p].go_version)]
        rust = [p for p in paths if (self.scan.elf.get(p) and self.scan.elf[p].rust)]
        layer = self.main_layer(partial)
        how = []
        if go:
            how.append('go build -ldflags="-s -w" for ' + ", ".join(go[:3]))
        if rust:
            how.append("[profile.release] strip = true in Cargo.toml for " + ", ".join(rust[:3]))
        others = [p for p in paths if p not in go and p not in rust]
        if others:
            how.append("strip --strip-unneeded " + " ".join(others[:6]))
        return [_Candidate(
            "strip", "Strip the binaries the image builds",
            "Symbol tables and debug sections are read only by debuggers; "
            + "; ".join(how) + " (in the builder stage, or the RUN that builds).",
            frozenset(), partial,
            evidence=tuple(f"{p}: {human(b)} of {human(self.table.size.get(p, 0))}"
                           for h in hits for p, b in h.strip[:10]),
            dockerfile=_strip_run(self.run_line(layer), others, bool(go)),
            paths=tuple(paths), layer=layer, instruction=self.run_line(layer))]


OS = frozenset({"deb", "apk", "rpm"})
_SYSTEM_DIRS = frozenset({
    "/", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib",
    "/usr/lib64", "/usr/share", "/usr/local", "/usr/local/bin", "/usr/local/sbin",
    "/usr/local/lib", "/usr/local/share", "/etc", "/opt", "/var", "/var/lib", "/home", "/root",
    "/srv", "/tmp", "/run",
})
# Written by package scripts (ldconfig) in whatever image they run in: never copied.
_GENERATED = frozenset({"/etc/ld.so.cache", "/var/cache/ldconfig/aux-cache"})
_PYC = re.compile(r"^(.*)/__pycache__/([^/.]+)\.[\w-]+?(?:\.opt-\d)?\.pyc$")


def _at_or_below(paths: Iterable[str], roots: Sequence[str]) -> list[str]:
    """The paths that are a root or start with one (without its trailing "/") and "/"."""
    exact = set(roots)
    stems = {r.rstrip("/") for r in roots}
    if len(stems) <= 32:  # str.startswith tries every prefix: quick while they are few
        prefixes = tuple(s + "/" for s in stems)
        return [p for p in paths if p in exact or p.startswith(prefixes)]
    known: dict[str, bool] = {}  # directory -> it or a parent is a stem

    def below(path: str) -> bool:
        head, slash, _ = path.rpartition("/")
        if not slash:
            return False
        hit = known.get(head)
        if hit is None:
            hit = known[head] = head in stems or below(head)
        return hit

    return [p for p in paths if p in exact or below(p)]


def _below(path: str, stems: set[str]) -> bool:
    """Whether some stem s has path.startswith(s + "/")."""
    i = path.find("/")
    while i >= 0:
        if path[:i] in stems:
            return True
        i = path.find("/", i + 1)
    return False


def _mark_up(marked: set[str], directory: str) -> None:
    """Add the directory and its ancestors up to the first one already marked (whose own
    ancestors are marked then too)."""
    while directory not in marked:
        marked.add(directory)
        if directory == "/":
            return
        directory = directory.rpartition("/")[0] or "/"


def _parents(path: str) -> list[str]:
    """/a/b/c -> ["/", "/a", "/a/b"] (outermost first)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _short(text: str | None, width: int = 48) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _builder_image(config, release: Mapping[str, str]) -> str:
    env = dict(e.partition("=")[::2] for e in config.env)
    for var, fmt in (("GOLANG_VERSION", "golang:{}"), ("PYTHON_VERSION", "python:{}"),
                     ("NODE_VERSION", "node:{}"), ("RUST_VERSION", "rust:{}"),
                     ("JAVA_VERSION", "eclipse-temurin:{}")):
        if env.get(var):
            return fmt.format(env[var].lstrip("jdk-").split("+")[0])
    distro = (release.get("ID") or "debian").lower()
    version = release.get("VERSION_CODENAME") or release.get("VERSION_ID") or "latest"
    return f"{distro}:{version}"


def _strip_run(run: str | None, paths: Sequence[str], go: bool) -> str | None:
    """The RUN that built the binaries, stripping them before its layer is written (a later
    RUN would only add stripped copies on top of the unstripped ones)."""
    if not run or not run.startswith("RUN "):
        return None
    body = run[4:].strip()
    if go:
        body = re.sub(r"\bgo build\b(?! -ldflags)", 'go build -ldflags="-s -w"', body)
    if paths:
        body += " \\\n    && strip --strip-unneeded " + " ".join(paths[:20])
    return f"RUN {body}\n"


def _fix_run(run: str | None, group: str, roots: Sequence[str]) -> str | None:
    """The RUN that filled a cache, rewritten so that it leaves none behind."""
    if not run or not run.startswith("RUN "):
        return None
    body = run[4:].strip()
    if group == "apt":
        return f"RUN {body} \\\n    && apt-get clean && rm -rf /var/lib/apt/lists/*\n"
    if group == "apk":
        return "RUN " + re.sub(r"\bapk add\b(?! --no-cache)", "apk add --no-cache", body) + "\n"
    if group == "dnf":
        return f"RUN {body} \\\n    && dnf clean all && rm -rf /var/cache/dnf /var/cache/yum\n"
    if group == "pip":
        fixed = re.sub(r"\b(pip3?|python3? -m pip)(\s+)install\b(?! --no-cache-dir)",
                       r"\1\2install --no-cache-dir", body)
        return f"RUN {fixed}\n"
    if group == "npm":
        return f"RUN {body} \\\n    && npm cache clean --force\n"
    mounts = " ".join(f"--mount=type=cache,target={r}" for r in roots)
    return f"RUN {mounts} {body}\n"
