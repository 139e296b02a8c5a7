"""Build tools and build leftovers in a runtime image, each with its evidence and bytes.

Package metadata first: a package is a build tool when its name says so (gcc-12,
build-essential, libc6-dev, golang-1.19-go, ...), or when it exists only to serve build tools:
every package that depends on it (Depends, Pre-Depends, and for Debian Recommends, since apt
installs those too) is itself a build tool, nothing the runtime closure needs reaches it,
it is not Essential/required, and apt did not record it as installed by hand. Then file
evidence where no OS package owns the file: a hand-installed Go or Rust toolchain, a JDK's
compiler parts, package-manager caches, .git directories, headers, static libraries,
objects, source trees, and the bytes `strip` would save on unstripped ELF files.

Every final-filesystem file (one inode) is counted in at most one finding, in the order the
rules run, so findings add up. Nothing here prints.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

from imgscope.analyze.dockerfile import BaseImage, clean_instruction, find_base
from imgscope.analyze.types import ElfInfo, RuntimeClosure
from imgscope.attribution import Attribution, package_key
from imgscope.catalog._common import parse_os_release
from imgscope.catalog.base import FileView
from imgscope.catalog.dpkg import parse_relations
from imgscope.model import EntryType, Finding, LayerInfo, Package
from imgscope.overlay import Overlay

# Files whose bytes the detector reads (added to the layer reader's capture patterns).
CONTENT_PATTERNS = (
    "/var/lib/apt/extended_states",
    "/etc/apk/world",
    "/etc/os-release",
    "/usr/lib/os-release",
)
OS_ECOSYSTEMS = frozenset({"deb", "apk", "rpm"})
EVIDENCE_PATHS = 8  # paths shown per finding

# -- package names ----------------------------------------------------------------------------

# (family, kind, title, reason, name pattern); the first family whose pattern matches wins.
_FAMILIES: tuple[tuple[str, str, str, str, str], ...] = (
    ("gcc", "compiler", "GCC C/C++ compiler",
     "compiles code; the program it built runs without it",
     r"(gcc|g\+\+|cpp|gfortran|gccgo|gcc-c\+\+|gcc-gfortran|c\+\+)(-\d+(\.\d+)*)?"
     r"(-[a-z0-9_-]+-linux-gnu\w*)?|(libgcc|libstdc\+\+|libgfortran|libobjc|libgccjit)-\d+-dev"
     r"|libcc1-\d+|gcc-\d+-plugin-dev|lto-disabled-list|libstdc\+\+-(dev|devel)"),
    ("binutils", "compiler", "GNU binutils (ld, as)",
     "the linker and assembler only run while building",
     r"binutils(-common|-gold|-devel|-[a-z0-9_-]+-linux-gnu\w*)?|libbinutils|libctf0"
     r"|libctf-nobfd0|libgprofng0|libsframe\d*|gold"),
    ("llvm", "compiler", "Clang/LLVM toolchain",
     "compiles code; the program it built runs without it",
     r"(clang|lld|lldb|llvm|clangd|clang-format|clang-tidy|clang-tools)([-.]?\d+(\.\d+)*)?"
     r"(-(dev|tools|runtime|libs|static|linker-tools))?|libclang(-cpp|-common|-rt)?[-\d.]*(-dev)?"
     r"|compiler-rt"),
    ("go", "compiler", "Go toolchain",
     "a Go program is a self-contained binary: the compiler and its standard-library sources "
     "are not needed to run it",
     r"(golang|go)(-\d+(\.\d+)*)?(-(go|src|doc|bin|misc))?"),
    ("rust", "compiler", "Rust toolchain",
     "rustc and cargo only build; the binary they produce does not need them",
     r"rustc|cargo|rust|rustup|rust-[\w.+-]+|libstd-rust-[\w.+-]+"),
    ("jdk", "compiler", "Java JDK where a JRE would do",
     "javac, jlink and the JDK's modules only build; running needs a JRE",
     r"openjdk-\d+-jdk(-headless)?|default-jdk(-headless)?|java-[\d.]+-openjdk-devel"
     r"|openjdk\d+-jdk|temurin-\d+-jdk|java-\d+-amazon-corretto-devel"),
    ("node-gyp", "compiler", "node-gyp (native addon builder)",
     "node-gyp compiles native addons during npm install; the built addon runs without it",
     r"node-gyp|gyp|python3-gyp"),
    ("cython", "compiler", "Cython", "Cython turns .pyx into C at build time",
     r"cython3?|python3-cython"),
    ("other-compilers", "compiler", "Other compilers, assemblers and parser generators",
     "these only run while building",
     r"tcc|nasm|yasm|ccache|distcc|swig\d*|bison|flex|byacc|fpc|gnat(-\d+)?|ghc|mono-devel"),
    ("build-systems", "build-system", "Build systems and build helpers",
     "make, cmake, pkg-config and friends drive a build and are not used at run time",
     r"build-essential|build-base|alpine-sdk|make|make-guile|cmake|cmake-data|cmake3"
     r"|ninja-build|ninja|samurai|meson|autoconf|automake(-\d\.\d+)?|autotools-dev|libtool"
     r"|libtool-bin|m4|pkg-config|pkgconf|pkgconf-bin|pkgconfig|bazel[\w-]*|maven|gradle|ant"
     r"|scons|dpkg-dev|debhelper|dh-[\w-]+|devscripts|patch|quilt|intltool|abuild|rpm-build"
     r"|rpmdevtools|redhat-rpm-config|\.build-deps|\.[\w.-]*build[\w.-]*"),
    ("debug-tools", "debug-tool", "Debuggers and tracers",
     "debuggers belong in a debug image, not the one that ships",
     r"gdb|gdbserver|gdb-multiarch|valgrind|strace|ltrace|linux-perf"),
    ("debug-symbols", "debug-package", "Debug symbol packages",
     "separate debug symbols are only read by a debugger",
     r"[\w.+-]+-(dbg|dbgsym|debuginfo|debugsource)"),
    ("dev", "dev-package", "Development packages (headers, static libraries, .pc files)",
     "headers, static libraries and pkg-config files are read by the compiler, not by the "
     "running program",
     r"[\w.+-]+-(dev|devel|headers)|(?!busybox)[\w.+-]+-static|linux-headers-[\w.+-]+"
     r"|libc6-dev|libc-dev-bin|linux-libc-dev|musl-dev|glibc-devel|glibc-headers"
     r"|kernel-headers|manpages-dev|fortify-headers|python3(\.\d+)?-dev"),
)
_FAMILY_RE = tuple((fam, kind, title, reason, re.compile(rf"^(?:{pattern})$"))
                   for fam, kind, title, reason, pattern in _FAMILIES)
_FAMILY_INFO = {fam: (kind, title, reason) for fam, kind, title, reason, _ in _FAMILIES}
_CATEGORY = {"dev-package": "dev-files", "debug-tool": "debug", "debug-package": "debug"}
_DEPENDENCY_FAMILY = "build-dependencies"
_FAMILY_INFO[_DEPENDENCY_FAMILY] = (
    "build-dependency", "Packages only the build tools need",
    "nothing but the build tools depends on (or recommends) these; they leave with them")

# Language packages that only build: PyPI (normalised names) and npm.
_PYPI_BUILD = {
    "cython": "cython", "setuptools-rust": "rust", "maturin": "rust", "pybind11": "dev",
    "scikit-build": "build-systems", "scikit-build-core": "build-systems",
    "meson": "build-systems", "meson-python": "build-systems", "ninja": "build-systems",
    "cmake": "build-systems", "nuitka": "other-compilers",
}
_NPM_BUILD = {"node-gyp": "node-gyp"}

# Names of tool executables shown as evidence (after stripping a target prefix and version).
_TOOL_NAMES = frozenset({
    "gcc", "g++", "cc", "c++", "cpp", "cc1", "cc1plus", "cc1obj", "collect2", "lto1",
    "lto-wrapper", "f951", "gfortran", "ld", "ld.bfd", "ld.gold", "as", "ar", "ranlib",
    "objcopy", "objdump", "strip", "make", "gmake", "cmake", "ninja", "meson", "autoconf",
    "automake", "libtool", "pkg-config", "pkgconf", "go", "gofmt", "rustc", "cargo", "rustup",
    "javac", "jar", "jlink", "clang", "clang++", "lld", "ld.lld", "cython", "node-gyp", "mvn",
    "gradle", "bazel", "gdb", "valgrind", "dpkg-buildpackage", "python3-config",
})
_TRIPLET = re.compile(r"^[a-z0-9_]+-(?:[a-z0-9_]+-)?linux-(?:gnu|musl)\w*-")
_VERSION_SUFFIX = re.compile(r"-\d+(\.\d+)*$")


def family_of(package: Package) -> str | None:
    """The build-tool family a package belongs to by its name, or None."""
    if package.ecosystem in OS_ECOSYSTEMS:
        name = package.name
        for fam, _kind, _title, _reason, pattern in _FAMILY_RE:
            if pattern.match(name):
                return fam
        return None
    if package.ecosystem == "pypi":
        return _PYPI_BUILD.get(re.sub(r"[-_.]+", "-", package.name).lower())
    if package.ecosystem == "npm":
        return _NPM_BUILD.get(package.name)
    return None


_EXEC_DIRS = re.compile(r"/(s?bin|libexec(/.+)?|lib/gcc(-cross)?/.+|pkg/tool/[^/]+)/[^/]+$")


def is_tool(path: str) -> bool:
    """A known build tool's executable (not, say, /usr/share/lintian/overrides/gcc-12)."""
    if "bin/" not in path and "/libexec" not in path and "/lib/gcc" not in path \
            and "/pkg/tool/" not in path:
        return False  # _EXEC_DIRS needs one of these; its search is slow on long paths
    return bool(_EXEC_DIRS.search(path)) and tool_name(path) is not None


def tool_name(path: str) -> str | None:
    """`/usr/bin/x86_64-linux-gnu-gcc-12` -> "gcc" when the basename is a known tool."""
    base = path.rpartition("/")[2]
    base = _TRIPLET.sub("", base)
    base = _VERSION_SUFFIX.sub("", base)
    return base if base in _TOOL_NAMES else None


# -- the package graph -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusExtra:
    """dpkg status fields the cataloger does not keep."""

    essential: bool = False
    required: bool = False  # Priority: required
    recommends: tuple[str, ...] = ()


def parse_status_extras(data: bytes) -> dict[str, StatusExtra]:
    """Essential, Priority and Recommends of each stanza of a dpkg status file."""
    out: dict[str, StatusExtra] = {}
    for stanza in data.decode("utf-8", "replace").split("\n\n"):
        name = ""
        essential = required = False
        recommends: tuple[str, ...] = ()
        key = ""
        values: dict[str, str] = {}
        for line in stanza.split("\n"):
            if line[:1] in (" ", "\t"):
                if key:
                    values[key] += " " + line.strip()
                continue
            head, sep, value = line.partition(":")
            key = head.strip().lower() if sep else ""
            if key:
                values[key] = value.strip()
        name = values.get("package", "")
        if not name:
            continue
        essential = values.get("essential", "").lower() == "yes"
        required = values.get("priority", "").lower() == "required"
        recommends = parse_relations(values.get("recommends", ""))
        out[name] = StatusExtra(essential, required, recommends)
    return out


def parse_extended_states(data: bytes) -> set[str]:
    """Package names apt marked Auto-Installed: 1."""
    auto: set[str] = set()
    for stanza in data.decode("utf-8", "replace").split("\n\n"):
        name, flag = "", ""
        for line in stanza.split("\n"):
            head, _, value = line.partition(":")
            if head.strip().lower() == "package":
                name = value.strip()
            elif head.strip().lower() == "auto-installed":
                flag = value.strip()
        if name and flag == "1":
            auto.add(name)
    return auto


def parse_apk_world(data: bytes) -> set[str]:
    names = set()
    for token in data.decode("utf-8", "replace").split():
        name = re.split(r"[<>=~@]", token, maxsplit=1)[0]
        if name and not name.startswith("!"):
            names.add(name)
    return names


@dataclass
class PackageGraph:
    """OS packages by key, with dependency edges resolved through names and provides."""

    packages: dict[str, Package]
    depends: dict[str, set[str]]  # key -> keys it depends on (Depends, Pre-Depends)
    recommends: dict[str, set[str]]  # key -> keys it recommends (Debian)
    rdeps: dict[str, set[str]]  # key -> keys that depend on or recommend it
    extras: dict[str, StatusExtra]  # by package name
    auto: set[str] | None  # names apt installed as dependencies; None: not recorded
    manual: set[str] | None  # names installed by hand (apt: not auto; apk: world)

    @classmethod
    def build(cls, packages: Iterable[Package], view: FileView,
              owner_of: Mapping[str, str]) -> PackageGraph:
        pkgs = {package_key(p): p for p in packages if p.ecosystem in OS_ECOSYSTEMS}
        by_name: dict[str, set[str]] = defaultdict(set)
        for key, p in pkgs.items():
            by_name[p.name].add(key)
            for prov in p.provides:
                by_name[prov].add(key)

        def resolve(names: Iterable[str]) -> set[str]:
            out: set[str] = set()
            for name in names:
                found = by_name.get(name)
                if found:
                    out |= found
                elif name.startswith("/") and name in owner_of:  # rpm file requires
                    out.add(owner_of[name])
            return out

        status = view.read("/var/lib/dpkg/status")
        extras = parse_status_extras(status) if status else {}
        depends = {k: resolve(p.dependencies) - {k} for k, p in pkgs.items()}
        recommends = {
            k: resolve(extras[p.name].recommends) - {k} if p.name in extras else set()
            for k, p in pkgs.items()
        }
        rdeps: dict[str, set[str]] = defaultdict(set)
        for k in pkgs:
            for d in depends[k] | recommends[k]:
                rdeps[d].add(k)
        auto: set[str] | None = None
        manual: set[str] | None = None
        states = view.read("/var/lib/apt/extended_states")
        if states is not None:
            auto = parse_extended_states(states)
            manual = {p.name for p in pkgs.values() if p.ecosystem == "deb"} - auto
        world = view.read("/etc/apk/world")
        if world is not None:
            manual = (manual or set()) | parse_apk_world(world)
        return cls(pkgs, depends, recommends, dict(rdeps), extras, auto, manual)

    def forward(self, keys: Iterable[str]) -> set[str]:
        """Keys and everything they depend on (not recommends), transitively."""
        seen: set[str] = set()
        stack = [k for k in keys if k in self.packages]
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            stack.extend(self.depends.get(k, ()))
        return seen

    def essential(self, key: str) -> bool:
        extra = self.extras.get(self.packages[key].name)
        return extra is not None and (extra.essential or extra.required)


def build_only(graph: PackageGraph, tools: set[str], protected: set[str]) -> dict[str, str]:
    """Packages that only build tools pull in: reachable (Depends, Pre-Depends, Recommends)
    from a build tool and from nothing that stays. What stays: the runtime closure and its
    dependencies, Essential/required packages, packages installed by hand (when apt or apk
    recorded it) and packages nothing depends on. Walking reachability, not "every reverse
    dependency is a tool", also settles dependency cycles (gnupg and its parts, perl)."""
    def edges(key: str) -> set[str]:
        return graph.depends.get(key, set()) | graph.recommends.get(key, set())

    keep_roots = set(protected)
    for key, p in graph.packages.items():
        if key in tools:
            continue
        if graph.essential(key) or not graph.rdeps.get(key) \
                or graph.manual is not None and p.name in graph.manual:
            keep_roots.add(key)
    kept: set[str] = set()
    stack = list(keep_roots)
    while stack:
        key = stack.pop()
        if key in kept or key in tools and key not in protected:
            continue
        kept.add(key)
        stack.extend(edges(key))
    out: dict[str, str] = {}
    seen: set[str] = set()
    stack = [k for k in tools if k in graph.packages]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        stack.extend(edges(key))
    for key in sorted(seen - tools - kept):
        users = sorted(graph.packages[u].name for u in graph.rdeps.get(key, ())
                       if u in seen and u not in kept)
        out[key] = "needed only by " + ", ".join(users[:3]) + (
            f" and {len(users) - 3} more" if len(users) > 3 else "")
    return out


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """A finding with every file counted in it (the recommendations work from these)."""

    finding: Finding
    files: tuple[str, ...]  # final-filesystem paths counted in finding.bytes, one per inode
    removable: bool = True  # False: the files stay, only part of their bytes go (strip)
    strip: tuple[tuple[str, int], ...] = ()  # (path, bytes strip saves) for "unstripped"
    family: str = ""


@dataclass(frozen=True)
class BuildToolScan:
    """What scan found: build tools and leftovers (hits), what the runtime needs kept,
    and the data the recommendations reuse."""

    hits: tuple[Hit, ...]
    base: BaseImage
    release: Mapping[str, str]
    closure: RuntimeClosure | None
    protected: frozenset[str]  # package keys the runtime needs (closure and its dependencies)
    kept_tools: tuple[tuple[str, str], ...]  # (package key, why): build tools the runtime needs
    removable_packages: frozenset[str]  # keys of packages the findings drop
    elf: Mapping[str, ElfInfo] = field(default_factory=dict)
    graph: PackageGraph | None = None
    limits: tuple[str, ...] = ()  # what this scan could not see
    table: FileTable | None = None  # the final filesystem's files, for the recommendations
    info_files: Mapping[str, list[str]] | None = None  # dpkg_info_files(table)

    @property
    def findings(self) -> list[Finding]:
        return [h.finding for h in self.hits]


# -- the final filesystem, one entry per inode ----------------------------------------------


class CanonicalPaths(Mapping[str, str]):
    """Any path of a regular file -> its inode's canonical path, storing only the hard-link
    aliases (a dict of every path costs ~100 MB on a million-file image)."""

    def __init__(self, size: Mapping[str, int], alias: Mapping[str, str]) -> None:
        self._size, self._alias = size, alias

    @property
    def aliases(self) -> Mapping[str, str]:
        """Hard-link names -> the canonical name of their inode."""
        return self._alias

    def __getitem__(self, path: str) -> str:
        return path if path in self._size else self._alias[path]

    def get(self, path: str, default: str | None = None) -> str | None:
        # Mapping.get goes through __getitem__ and a KeyError: slow on the scan's hot paths.
        return path if path in self._size else self._alias.get(path, default)

    def __contains__(self, path: object) -> bool:
        return path in self._size or path in self._alias

    def __iter__(self) -> Iterator[str]:
        return chain(self._size, self._alias)

    def __len__(self) -> int:
        return len(self._size) + len(self._alias)


@dataclass
class FileTable:
    """Regular files of the final filesystem: one canonical path per inode."""

    size: dict[str, int]  # canonical path -> bytes
    layer: dict[str, int]  # canonical path -> layer that shipped the bytes
    canonical: CanonicalPaths  # any path of a regular file -> its inode's canonical path

    @classmethod
    def build(cls, fs: Overlay) -> FileTable:
        size: dict[str, int] = {}
        layer: dict[str, int] = {}
        alias: dict[str, str] = {}
        first: dict[int, str] = {}
        file_type = EntryType.FILE
        for path, node in fs.index().items():
            inode = node.inode
            if node.type is not file_type or inode is None:
                continue
            if inode.links > 1:  # only hard links need the lookup
                canon = first.setdefault(id(inode), path)
                if canon != path:
                    alias[path] = canon
                    continue
            size[path] = inode.size
            layer[path] = inode.layer
        return cls(size, layer, CanonicalPaths(size, alias))

    def derive(self, origin: Overlay, twin: Overlay, changed: Collection[str]
               ) -> FileTable | None:
        """The table of `twin`, whose final tree differs from `origin`'s (this table's) only
        at `changed` (`imgscope diff`: changed_paths), without a pass over every path. None
        when one of them is a hard link on either side (an inode's canonical path is its
        first name in the order of the whole tree), as FactsTally.derive."""
        if origin.links_any(changed) or twin.links_any(changed):
            return None
        size, layer = dict(self.size), dict(self.layer)
        index = twin.index()
        file_type = EntryType.FILE
        for path in changed:
            node = index.get(path)
            if node is not None and node.type is file_type and node.inode is not None:
                size[path] = node.inode.size
                layer[path] = node.inode.layer
            else:
                size.pop(path, None)
                layer.pop(path, None)
        return FileTable(size, layer, CanonicalPaths(size, self.canonical.aliases))


class _Claims:
    """Which finding each inode went to: the first rule to claim a file keeps it."""

    def __init__(self, table: FileTable) -> None:
        self.table = table
        self.owner: dict[str, str] = {}

    def take(self, paths: Iterable[str], label: str) -> list[str]:
        got = []
        canonical, owner = self.table.canonical.get, self.owner
        for path in paths:
            canon = canonical(path)
            if canon is None or canon in owner:
                continue
            owner[canon] = label
            got.append(canon)
        return got


# -- the scan ----------------------------------------------------------------------------------


def scan(fs: Overlay, view: FileView, attribution: Attribution | None,
         layers: Sequence[LayerInfo], config, closure: RuntimeClosure | None = None,
         elf: Mapping[str, ElfInfo] | None = None, magic_check: bool = True,
         table: FileTable | None = None) -> BuildToolScan:
    """Every build tool and build leftover in the final filesystem, with evidence. `table`:
    the FileTable of `fs`, when known (FileTable.derive)."""
    if table is None:
        table = FileTable.build(fs)
    claims = _Claims(table)
    owner_of = attribution.owner_of if attribution is not None else {}
    packages = [u.package for u in attribution.packages] if attribution is not None else []
    graph = PackageGraph.build(packages, view, owner_of)
    base = find_base(config, len(layers))
    release = _release(view)
    limits: list[str] = []
    instruction_of = _instructions(layers)

    closure_files = set(closure.files) if closure is not None else set()
    closure_keys = set(closure.packages) if closure is not None else set()
    if closure is None:
        limits.append("no runtime closure: packages that own the entrypoint are kept, "
                      "nothing else is known to be needed")
        closure_keys = _entrypoint_owners(fs, config, owner_of)
        closure_files = {p for p in closure_keys if p.startswith("/")}
        closure_keys = {k for k in closure_keys if not k.startswith("/")}
    protected = graph.forward(closure_keys) | (closure_keys - graph.packages.keys())
    closure_canon = {table.canonical.get(p, p) for p in closure_files}

    files_of = _files_of(owner_of)
    info_files = dpkg_info_files(table)

    # 1. Packages: by name, then the ones only build tools need.
    family: dict[str, str] = {}
    why: dict[str, str] = {}
    kept_tools: list[tuple[str, str]] = []
    all_packages = {package_key(p): p for p in packages}
    os_keys = frozenset(k for k, p in all_packages.items() if p.ecosystem in OS_ECOSYSTEMS)
    for key, p in all_packages.items():
        fam = family_of(p)
        if fam is None:
            continue
        if key in protected:
            if key in closure_keys:
                reason = "the runtime closure needs its files"
            else:
                via = sorted(graph.packages[k].name for k in closure_keys
                             if k in graph.packages and key in graph.forward([k]))
                reason = ("a dependency of " + ", ".join(via[:3])
                          + " (in the runtime closure)") if via else "the runtime closure needs it"
            kept_tools.append((key, reason))
            continue
        family[key] = fam
        why[key] = "build tool by name"
    for key, reason in build_only(graph, set(family), protected).items():
        family[key] = _DEPENDENCY_FAMILY
        why[key] = reason

    hits: list[Hit] = []
    canonical, size_of = table.canonical.get, table.size.__getitem__
    by_family: dict[str, list[str]] = defaultdict(list)
    for key, fam in family.items():
        by_family[fam].append(key)
    order = [f for f, *_ in _FAMILIES] + [_DEPENDENCY_FAMILY]
    for fam in order:
        keys = by_family.get(fam)
        if not keys:
            continue
        items: list[tuple[str, int]] = []
        files: list[str] = []
        evidence: list[str] = []
        for key in keys:
            p = all_packages[key]
            paths = files_of.get(key, ())
            own = [f for f in paths if canonical(f) not in closure_canon]
            if p.ecosystem == "deb":
                own += info_files.get(p.name, ())
            got = claims.take(sorted(own), key)
            files += got
            items.append((key, sum(map(size_of, got))))
            evidence += [f for f in paths if f in table.size and is_tool(f)]
        items.sort(key=lambda kv: (-kv[1], kv[0]))
        evidence.sort(key=lambda f: (-table.size[f], f))  # the biggest tools first: cc1plus
        kind, title, reason = _FAMILY_INFO[fam]
        names = [all_packages[k].name for k, _ in items]
        if fam == _DEPENDENCY_FAMILY:
            reason = reason + ": " + "; ".join(f"{all_packages[k].name} ({why[k]})"
                                               for k, _ in items[:6])
        if not evidence:
            evidence = sorted(files, key=lambda f: -table.size[f])[:3]
        hits.append(_hit(kind, _CATEGORY.get(kind, "build-tool"),
                         f"{title}: {_names(names)}", files, table, instruction_of, reason,
                         items, tuple(k for k, _ in items), evidence, fam))

    # 2. Files no OS package owns, by path.
    unowned = [p for p in table.size if owner_of.get(p) not in os_keys]
    unowned.sort()
    free = [p for p in unowned if p not in closure_canon]
    rules, maybe = _path_rules(table, owner_of, os_keys, view, magic_check)
    # One pass: a file goes to the first rule that matches it (most match none).
    grouped: list[dict[str, list[str]]] = [defaultdict(list) for _ in rules]
    for path in free:
        if path in claims.owner or not maybe(path):
            continue
        for index, rule in enumerate(rules):
            root = rule.match(path)
            if root is not None:
                grouped[index][root].append(path)
                break
    for rule, groups in zip(rules, grouped, strict=True):
        files = []
        items = []
        for root in sorted(groups):
            got = claims.take(groups[root], rule.id)
            if got:
                files += got
                items.append((root, sum(map(size_of, got))))
        if not files:
            continue
        items.sort(key=lambda kv: (-kv[1], kv[0]))
        hits.append(_hit(rule.kind, rule.category, rule.title, files, table, instruction_of,
                         rule.reason, items, (), [r for r, _ in items], rule.id))

    # 3. What strip would save on ELF files that stay (no OS package ships unstripped files
    # on purpose; -dbg packages are found above).
    if elf is None:
        elf = _elf_infos(view, [p for p in unowned if p not in claims.owner], fs)
    strip_items: list[tuple[str, int]] = []
    compilers: dict[str, str] = {}
    for path in sorted(elf):
        info = elf[path]
        canon = table.canonical.get(path)
        if canon is None or canon != path:
            continue
        if info.compiler:
            compilers[path] = info.compiler
        if canon in claims.owner or owner_of.get(path) in os_keys:
            continue
        if not info.stripped and info.strip_savings > 0 and info.elf_type != "rel":
            strip_items.append((path, min(info.strip_savings, table.size[path])))
    if strip_items:
        strip_items.sort(key=lambda kv: (-kv[1], kv[0]))
        total = sum(b for _, b in strip_items)
        built_by = sorted({compilers[p] for p, _ in strip_items if p in compilers})
        reason = ("symbol tables and debug sections are only read by debuggers and profilers; "
                  "`strip --strip-unneeded` removes them")
        if built_by:
            reason += "; built by " + "; ".join(built_by[:3])
        files = [p for p, _ in strip_items]
        layers_of = sorted({table.layer[p] for p in files})
        main = max(layers_of, key=lambda la: sum(b for p, b in strip_items
                                                 if table.layer[p] == la))
        finding = Finding(
            kind="unstripped", title=f"Unstripped ELF files: {_names(files)}", bytes=total,
            paths=tuple(files[:EVIDENCE_PATHS]), layer=main,
            instruction=instruction_of.get(main), reason=reason, category="debug",
            files=len(files), items=tuple(strip_items), layers=tuple(layers_of))
        hits.append(Hit(finding, tuple(files), removable=False, strip=tuple(strip_items),
                        family="unstripped"))

    removable = frozenset(k for k in family)
    return BuildToolScan(tuple(hits), base, release, closure, frozenset(protected),
                         tuple(sorted(kept_tools)), removable, dict(elf), graph,
                         tuple(limits + list(closure.limits if closure is not None else ())),
                         table, info_files)


def _names(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(n.rpartition("/")[2] if n.startswith("/") else n for n in names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _hit(kind: str, category: str, title: str, files: list[str], table: FileTable,
         instruction_of: Mapping[int, str], reason: str, items: list[tuple[str, int]],
         packages: tuple[str, ...], evidence: list[str], family: str) -> Hit:
    per_layer: dict[int, int] = defaultdict(int)
    layer, size = table.layer, table.size
    for f in files:
        per_layer[layer[f]] += size[f]
    main = max(per_layer, key=lambda la: (per_layer[la], -la)) if per_layer else None
    finding = Finding(
        kind=kind, title=title, bytes=sum(per_layer.values()),
        paths=tuple(dict.fromkeys(evidence))[:EVIDENCE_PATHS], packages=packages, layer=main,
        instruction=instruction_of.get(main) if main is not None else None, reason=reason,
        category=category, files=len(files), items=tuple(items),
        layers=tuple(sorted(per_layer)))
    return Hit(finding, tuple(files), family=family)


def _instructions(layers: Sequence[LayerInfo]) -> dict[int, str]:
    out = {}
    for info in layers:
        text = clean_instruction(info.created_by)
        if text:
            out[info.index] = text
    return out


def _release(view: FileView) -> dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        data = view.read(path)
        if data:
            return parse_os_release(data)
    return {}


def _files_of(owner_of: Mapping[str, str]) -> dict[str, list[str]]:
    """Package key -> the paths it owns."""
    files_of: dict[str, list[str]] = defaultdict(list)
    for path, key in owner_of.items():
        files_of[key].append(path)
    return files_of


def dpkg_info_files(table: FileTable) -> dict[str, list[str]]:
    """/var/lib/dpkg/info/NAME[:ARCH].* by package name: they leave with the package."""
    out: dict[str, list[str]] = defaultdict(list)
    prefix = "/var/lib/dpkg/info/"
    for path in table.canonical:
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            stem = path[len(prefix):].rpartition(".")[0]
            if stem:
                out[stem.partition(":")[0]].append(path)
    return out


def _entrypoint_owners(fs: Overlay, config, owner_of: Mapping[str, str]) -> set[str]:
    """Without a closure: the entrypoint file and the package owning it (keys and paths)."""
    argv = list(config.entrypoint or ()) + list(config.cmd or ())
    if not argv:
        return set()
    exe = argv[0]
    candidates = [exe] if exe.startswith("/") else [
        posixpath.join(d, exe) for d in (config.env_value("PATH") or
                                         "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                         "/sbin:/bin").split(":") if d]
    out: set[str] = set()
    for cand in candidates:
        resolved = fs.resolve(cand)
        if resolved is not None:
            out.add(resolved[0])
            if resolved[0] in owner_of:
                out.add(owner_of[resolved[0]])
            break
    return out


def _elf_infos(view: FileView, paths: Sequence[str], fs: Overlay) -> dict[str, ElfInfo]:
    try:
        from imgscope.analyze.elf import elf_infos
    except ImportError:  # the ELF stage is optional: no strip findings without it
        return {}
    # Executables and files named like libraries or objects (as the layer reader keeps them),
    # from the overlay's nodes: a FileInfo per file costs too much on huge images.
    index = fs.index()
    candidates = []
    for path in paths:
        node = index.get(path)
        if node is None or node.size < 52:
            continue
        base = path.rpartition("/")[2]
        if node.mode & 0o111 or ".so" in base or base.endswith((".o", ".debug", ".node")):
            candidates.append(path)
    return elf_infos(view, candidates)


# -- path rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathRule:
    """A finding rule for files no OS package owns: match gives a path's group root, else None."""

    id: str  # "apt-lists", "pip-cache", ...: what a recommendation keys on
    kind: str
    category: str
    title: str
    reason: str
    match: Callable[[str], str | None]  # path -> group root, or None


# Every regex rule's pattern, for the quick filter. Each alternative of a pattern ends in
# "/": it matches a directory prefix, so a path's directory decides it.
_REGEX_HINTS: dict[str, re.Pattern[str]] = {}


def _regex_rule(rule_id: str, kind: str, category: str, title: str, reason: str,
                pattern: str) -> PathRule:
    rx = _REGEX_HINTS.get(pattern)
    if rx is None:
        assert pattern.endswith(")/"), pattern  # a directory prefix (see _REGEX_HINTS)
        rx = _REGEX_HINTS[pattern] = re.compile(pattern)

    def match(path: str) -> str | None:
        m = rx.match(path)
        return next((g for g in m.groups() if g), None) if m else None

    return PathRule(rule_id, kind, category, title, reason, match)


_JDK_ONLY_BIN = frozenset({
    "javac", "javadoc", "jar", "jarsigner", "jlink", "jmod", "jdeps", "jshell", "jdb", "javap",
    "jcmd", "jconsole", "jdeprscan", "jfr", "jhsdb", "jimage", "jinfo", "jmap", "jps",
    "jpackage", "jrunscript", "jstack", "jstat", "jstatd", "serialver", "rmic", "javah",
    "native2ascii", "schemagen", "wsgen", "wsimport", "xjc", "idlj", "orbd", "servertool",
    "tnameserv", "extcheck", "appletviewer",
})
_SOURCE_EXT = (".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".go", ".rs",
               ".java", ".kt", ".scala", ".f", ".f90", ".for", ".s", ".S", ".asm", ".m",
               ".mm", ".pyx", ".pxd", ".swift", ".zig", ".d", ".cs", ".vala")
_BUILD_FILES = frozenset({
    "Makefile", "makefile", "GNUmakefile", "CMakeLists.txt", "configure", "configure.ac",
    "Makefile.am", "Makefile.in", "go.mod", "go.sum", "Cargo.toml", "Cargo.lock", "pom.xml",
    "build.gradle", "build.gradle.kts", "settings.gradle", "meson.build", "setup.py",
    "setup.cfg", "BUILD", "BUILD.bazel", "WORKSPACE", "SConstruct", "Dockerfile",
})
# Where files with source extensions are data of an installed program, not a build's input.
_NOT_SOURCE = re.compile(
    r"^/(usr/share|usr/lib/python|usr/local/lib/python|usr/lib/jvm|usr/lib/go|usr/local/go"
    r"|proc|sys|etc|var/lib/dpkg)/|/(site-packages|dist-packages|node_modules|vendor"
    r"|\.git|\.cargo|\.rustup)/")


def _path_rules(table: FileTable, owner_of: Mapping[str, str], os_keys: frozenset[str],
                view: FileView, magic_check: bool
                ) -> tuple[list[PathRule], Callable[[str], bool]]:
    """The rules in claiming order, and a cheap test that is false for a path no rule
    can match (one regex instead of twenty rules per file)."""
    paths = table.canonical

    def exists(p: str) -> bool:
        return p in paths or view.info(p) is not None

    # Toolchain roots found by their layout, not their names (one pass over the paths).
    go_homes: set[str] = set()
    java_homes: set[str] = set()
    for p in paths:
        if p.endswith(("/bin/go", "/bin/javac")) and owner_of.get(p) not in os_keys:
            if p.endswith("/bin/go"):
                go_homes.add(p[: -len("/bin/go")])
            else:
                java_homes.add(p[: -len("/bin/javac")])
    goroots = sorted((h for h in go_homes
                      if exists(h + "/src/runtime/proc.go") or exists(h + "/VERSION")), key=len)
    jdk_homes = sorted(java_homes)

    def in_roots(roots: Sequence[str]) -> Callable[[str], str | None]:
        def match(path: str) -> str | None:
            for root in roots:
                if path.startswith(root + "/"):
                    return root
            return None
        return match

    def jdk_only(path: str) -> str | None:
        for home in jdk_homes:
            if not path.startswith(home + "/"):
                continue
            rest = path[len(home) + 1:]
            top, _, tail = rest.partition("/")
            if top in ("jmods", "include", "demo", "sample") \
                    or rest in ("lib/src.zip", "lib/ct.sym", "src.zip") \
                    or top == "bin" and tail in _JDK_ONLY_BIN:
                return home
        return None

    def loose_compiler(path: str) -> str | None:
        if path.startswith(("/usr/local/lib/gcc/", "/usr/local/libexec/gcc/")):
            return "/".join(path.split("/")[:5])
        if path.startswith(("/usr/local/bin/", "/opt/")) and tool_name(path) in (
                "gcc", "g++", "cc", "c++", "cpp", "clang", "clang++", "rustc", "cargo", "go",
                "javac", "ld", "as", "make", "cmake", "ninja"):
            return path
        return None

    def file_kind(path: str, suffix: str) -> bool:
        """python-magic (or the magic bytes) confirms .a/.o files when their bytes are kept."""
        if not magic_check:
            return True
        stream = view.open(path)
        if stream is None:
            return True
        with stream:
            head = stream.read(2048)
        if suffix == ".a":
            return head.startswith(b"!<arch>\n") or _magic_says(head, "ar archive")
        if len(head) > 16 and head[:4] == b"\x7fELF":
            return head[16] == 1  # e_type ET_REL (little-endian low byte)
        return _magic_says(head, "relocatable")

    def dev_files(path: str) -> str | None:
        for inc in ("/usr/local/include", "/usr/include"):
            if path.startswith(inc + "/"):
                return inc
        base = path.rpartition("/")[2]
        if base.endswith(".pc") and "/pkgconfig/" in path:
            return path.rpartition("/")[0]
        if base.endswith((".a", ".la")) and not _NOT_SOURCE.search(path) \
                and (base.endswith(".la") or file_kind(path, ".a")):
            return path.rpartition("/")[0]
        return None

    def objects(path: str) -> str | None:
        if path.endswith(".o") and file_kind(path, ".o"):
            return path.rpartition("/")[0]
        return None

    def rust_target(path: str) -> str | None:
        m = re.match(r"^(.*?/target)/", path)
        if m and (exists(m.group(1) + "/CACHEDIR.TAG") or exists(m.group(1) + "/.rustc_info.json")):
            return m.group(1)
        return None

    def sources(path: str) -> str | None:
        if _NOT_SOURCE.search(path):
            return None
        base = path.rpartition("/")[2]
        if not (base.endswith(_SOURCE_EXT) or base in _BUILD_FILES
                or re.search(r"/build/(temp|lib|bdist)\.[^/]+/", path)
                or re.search(r"\.egg-info/", path)):
            return None
        parts = path.split("/")
        return "/".join(parts[:3]) if len(parts) > 3 else "/".join(parts[:2]) or "/"

    cache = "package-cache"
    rules = [
        PathRule("go-toolchain", "toolchain", "build-tool",
                 "Go toolchain installed by hand (GOROOT)",
                 "a Go program is a self-contained binary: the Go toolchain is not needed "
                 "to run it", in_roots(goroots)),
        _regex_rule("rust-toolchain", "toolchain", "build-tool", "Rust toolchain (rustup, cargo)",
                    "rustc and cargo only build; the binary they produce does not need them",
                    r"^((?:/usr/local|/root|/home/[^/]+)/\.?rustup)/"
                    r"|^((?:/usr/local/cargo|/root/\.cargo|/home/[^/]+/\.cargo)/bin)/"),
        PathRule("jdk-parts", "toolchain", "build-tool", "JDK-only parts of a Java installation",
                 "javac, jlink, jmods and the JDK sources only build; running needs a JRE",
                 jdk_only),
        PathRule("loose-compilers", "toolchain", "build-tool", "Compilers installed by hand",
                 "compilers and build tools outside any package only build", loose_compiler),
        _regex_rule("node-gyp", "toolchain", "build-tool", "node-gyp and its headers",
                    "node-gyp compiles native addons at install time; they run without it",
                    r"^(.*/node_modules/node-gyp)/|^(.*/\.cache/node-gyp)/|^(.*/\.node-gyp)/"),
        _regex_rule("apt-lists", cache, cache, "apt package lists",
                    "apt-get update downloads these indexes; nothing reads them at run time "
                    "(rm -rf /var/lib/apt/lists/* in the same RUN)", r"^(/var/lib/apt/lists)/"),
        _regex_rule("apt-cache", cache, cache, "apt package cache (downloaded .debs, pkgcache.bin)",
                    "apt-get clean in the same RUN removes them", r"^(/var/cache/apt)/"),
        _regex_rule("apk-cache", cache, cache, "apk cache",
                    "apk add --no-cache never writes it", r"^(/var/cache/apk|/etc/apk/cache)/"),
        _regex_rule("dnf-cache", cache, cache, "dnf/yum cache",
                    "dnf clean all in the same RUN removes it",
                    r"^(/var/cache/dnf|/var/cache/yum)/"),
        _regex_rule("pip-cache", cache, cache, "pip cache",
                    "pip install --no-cache-dir (or a cache mount) keeps it out of the image",
                    r"^(.*/\.cache/pip)/"),
        _regex_rule("npm-cache", cache, cache, "npm/yarn cache",
                    "npm cache clean --force (or a cache mount) in the same RUN",
                    r"^(.*/\.npm)/|^(.*/\.cache/yarn)/|^(/usr/local/share/\.cache/yarn)/"
                    r"|^(.*/\.yarn/cache)/"),
        _regex_rule("go-build-cache", cache, cache, "Go build cache",
                    "go clean -cache in the same RUN, or a cache mount for /root/.cache/go-build",
                    r"^(.*/\.cache/go-build)/"),
        _regex_rule("go-mod-cache", cache, cache, "Go module cache",
                    "downloaded module sources are build inputs (go clean -modcache, or a "
                    "cache mount)", r"^(.*/pkg/mod)/"),
        _regex_rule("cargo-cache", cache, cache, "cargo registry cache",
                    "crate sources downloaded by cargo are build inputs",
                    r"^(.*/\.cargo/(?:registry|git))/|^(/usr/local/cargo/(?:registry|git))/"),
        _regex_rule("jvm-cache", cache, cache, "Maven/Gradle repository",
                    "downloaded build dependencies; the packaged app carries what it needs",
                    r"^(.*/\.m2/repository)/|^(.*/\.gradle/(?:caches|wrapper))/"),
        PathRule("rust-target", "build-output", "build-output", "Rust target/ directory",
                 "intermediate build output; only the final binary is needed", rust_target),
        _regex_rule("vcs", "vcs", "source", "Version-control directories (.git)",
                    "history of the source tree; a .dockerignore entry keeps it out",
                    r"^(.*?/\.(?:git|svn|hg))/"),
        _regex_rule("debug-files", "debug-files", "debug", "Separate debug files",
                    "only debuggers read them", r"^(/usr/lib/debug)/"),
        PathRule("dev-files", "dev-files", "dev-files",
                 "Headers, static libraries and pkg-config files",
                 "read by the compiler and linker, not by the running program", dev_files),
        PathRule("object-files", "object-files", "build-output", "Object files (.o)",
                 "intermediate compiler output; the linked program does not read them",
                 objects),
        PathRule("source", "source", "source", "Source trees and build files",
                 "the program's sources and build inputs are not needed to run it", sources),
    ]
    # After the rules: building them registered their patterns.
    roots = tuple(r + "/" for r in [*goroots, *jdk_homes, "/usr/local", "/opt"])
    hints = list(_REGEX_HINTS.values())
    suffixes = (".a", ".la", ".pc", ".o", *_SOURCE_EXT)
    hinted: dict[str, bool] = {}  # directory -> a regex rule may match below it

    def maybe(path: str) -> bool:
        # What the other rules look for, as plain string tests; then the regex rules, once
        # per directory (most free files sit in a few directories: /var/lib/dpkg/info).
        if path.startswith(roots) or path.endswith(suffixes) or "/include/" in path \
                or "/target/" in path or "/build/" in path or ".egg-info/" in path \
                or path.rpartition("/")[2] in _BUILD_FILES:
            return True
        directory = path[: path.rfind("/") + 1]
        hit = hinted.get(directory)
        if hit is None:
            hit = hinted[directory] = any(rx.search(directory) for rx in hints)
        return hit

    return rules, maybe


def _magic_says(head: bytes, needle: str) -> bool:
    try:
        import magic  # python-magic: libmagic's verdict when the magic bytes are unusual
    except ImportError:
        return False
    try:
        return needle in magic.from_buffer(head)
    except Exception:  # libmagic missing or confused: trust the suffix check alone
        return False
