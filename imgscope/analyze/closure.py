"""What the entrypoint needs at run time: the files and packages a slim runtime image must keep.

The command is the image config's Entrypoint + Cmd, run the way a container runtime runs it:
argv[0] is looked up in the config's PATH (relative paths against WorkingDir), symlinks are
followed inside the image. From there:
- a `#!` script adds its interpreter (`/usr/bin/env NAME` is a PATH lookup), as the kernel does;
- an ELF file adds its PT_INTERP and its DT_NEEDED libraries, breadth first and searched the way
  glibc's ld.so searches: DT_RPATH of the object and its loaders (when the object has no
  DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.cache (or, when its bytes were not kept,
  the directories of /etc/ld.so.conf and its includes), then the default directories. A library
  of the wrong ELF class or machine is skipped, as ld.so skips it. musl's loader is followed
  with its own order (/etc/ld-musl-ARCH.path);
- `sh -c "..."` follows the first command of the string (through `exec`, `env`, `cd` and
  assignments); wrappers such as tini, dumb-init, gosu and su-exec follow their command;
- Python, Node and Java keep their runtime tree (stdlib and site-packages, the module trees,
  JAVA_HOME), the app's own tree, every ELF extension inside them with its libraries, and the
  runtime's packages whole (what those declare they depend on is named in `limits`: Debian's
  Depends mix run-time needs with maintainer-script tools).

What cannot be seen without running the program is listed in `limits`, never guessed: dlopen,
NSS modules, gconv, locales, CA certificates and other configuration files.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from imgscope.analyze.elf import ElfSource, cache_for, elf_info
from imgscope.analyze.types import ElfInfo, RuntimeClosure
from imgscope.attribution import Attribution, package_key
from imgscope.model import EntryType, ImageConfig, Package
from imgscope.overlay import MAX_SYMLINK_HOPS, Node, Overlay

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Files the closure reads: pass these to analyze(content_patterns=...) so their bytes are kept.
CONTENT_PATTERNS = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d/*",
    "/etc/ld-musl-*.path",
    "*/pyvenv.cfg",
)

MULTIARCH = {
    ("x86_64", 64): "x86_64-linux-gnu",
    ("x86", 32): "i386-linux-gnu",
    ("aarch64", 64): "aarch64-linux-gnu",
    ("arm", 32): "arm-linux-gnueabihf",
    ("ppc64", 64): "powerpc64le-linux-gnu",
    ("s390", 64): "s390x-linux-gnu",
    ("riscv", 64): "riscv64-linux-gnu",
    ("mips", 32): "mipsel-linux-gnu",
    ("mips", 64): "mips64el-linux-gnuabi64",
    ("loongarch", 64): "loongarch64-linux-gnu",
}
DEFAULT_INTERPRETERS = {  # glibc's PT_INTERP per machine
    ("x86_64", 64): "/lib64/ld-linux-x86-64.so.2",
    ("x86", 32): "/lib/ld-linux.so.2",
    ("aarch64", 64): "/lib/ld-linux-aarch64.so.1",
    ("arm", 32): "/lib/ld-linux-armhf.so.3",
    ("ppc64", 64): "/lib64/ld64.so.2",
    ("s390", 64): "/lib/ld64.so.1",
    ("riscv", 64): "/lib/ld-linux-riscv64-lp64d.so.1",
}
PLATFORMS = {"x86": "i686"}  # AT_PLATFORM where it differs from our machine name
MUSL_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "x86": "i386", "arm": "armhf",
             "ppc64": "ppc64le", "s390": "s390x", "riscv": "riscv64"}

MUSL_BUILTIN = re.compile(r"^lib(?:c|pthread|rt|m|dl|util|xnet)\.so(?:\.\d+)*$")
SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"}
SHELL_BUILTINS = {"set", "export", "cd", ":", "true", "umask", "ulimit", "trap", "echo",
                  "printf", "unset", "source", ".", "test", "[", "shopt", "readonly"}
# Wrappers that run their arguments as a command: (number of leading operands to skip).
WRAPPERS = {"tini": 0, "tini-static": 0, "dumb-init": 0, "catatonit": 0, "nohup": 0,
            "gosu": 1, "su-exec": 1, "chroot": 1, "setpriv": 0, "taskset": 1, "nice": 0,
            "ionice": 0, "stdbuf": 0, "timeout": 1, "chpst": 0}
PYTHON_RE = re.compile(r"^(?:python|pypy)(\d+(?:\.\d+)?)?(?:-dbg)?$")
NODE_NAMES = {"node", "nodejs"}
# Never treated as an app's own tree: a script there takes only itself.
SYSTEM_DIRS = {"/", "/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/usr/local",
               "/usr/local/bin", "/usr/local/sbin", "/etc", "/opt", "/home", "/tmp", "/var",
               "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/share", "/srv",
               "/root", "/run", "/dev", "/proc", "/sys", "/mnt", "/media"}
# Libraries that are the language runtime itself: their packages are kept whole like the
# interpreter's (Debian's node is a stub around libnode).
RUNTIME_LIBRARIES = ("libnode.so", "libpython", "libjvm.so", "libruby", "libperl.so")
MAX_DEPTH = 8  # #! and wrapper hops, as the kernel's limit on nested interpreters (plus some)
MAX_TREE_FILES = 500_000


@dataclass
class _Loaded:
    """An ELF object the simulated ld.so loaded: the path it was found at, real path, headers."""

    path: str  # as found (what ld.so calls l_name), e.g. /lib/x86_64-linux-gnu/libc.so.6
    canonical: str
    info: ElfInfo


@dataclass
class _LinkerSetup:
    """What ld.so's search depends on besides the objects: set once per machine."""

    musl: bool
    default_dirs: list[str]
    conf_dirs: list[str] | None  # None: ld.so.cache read instead, or no cache at all
    cache: dict[str, list[str]] | None  # soname -> paths, in cache order
    lib: str  # what $LIB expands to
    platform: str


@dataclass
class _State:
    """What the closure walk has collected so far; runtime_closure builds the result from it."""

    files: set[str] = field(default_factory=set)
    libraries: list[tuple[str, str | None]] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    interpreters: list[str] = field(default_factory=list)
    app_paths: list[str] = field(default_factory=list)
    runtime_files: set[str] = field(default_factory=set)  # owners: the runtime's packages
    elf_done: set[str] = field(default_factory=set)

    def limit(self, text: str) -> None:
        if text not in self.limits:
            self.limits.append(text)

    def unresolved_add(self, text: str) -> None:
        if text not in self.unresolved:
            self.unresolved.append(text)


class _Closure:
    def __init__(self, fs: Overlay, view: ElfSource, config: ImageConfig,
                 attribution: Attribution | None) -> None:
        self.fs = fs
        self.view = view
        self.config = config
        self.attribution = attribution
        self.cache = cache_for(view)
        self.env = _env_dict(config.env)
        self.path_dirs = (self.env.get("PATH") if "PATH" in self.env else DEFAULT_PATH).split(":")
        self.cwd = _normdir(config.working_dir or "/")
        self.state = _State()
        self.loaded: dict[str, _Loaded] = {}  # name or soname -> loaded object
        self.by_canonical: dict[str, _Loaded] = {}
        self.linker: dict[tuple[str | None, int, bool, bool], _LinkerSetup] = {}
        self.main: _Loaded | None = None
        self.executable: str | None = None

    # -- paths ------------------------------------------------------------------------------

    def walk(self, path: str, cwd: str = "/", follow_final: bool = True
             ) -> tuple[str | None, Node | None, list[str]]:
        """Resolve `path` inside the image; return the canonical path, its node and every
        symlink passed on the way (absolute paths of the links themselves)."""
        links: list[str] = []
        if not path.startswith("/"):
            path = posixpath.join(cwd, path)
        todo = [p for p in reversed(path.split("/")) if p]
        resolved: list[str] = []
        node = self.fs.root
        hops = 0
        while todo:
            name = todo.pop()
            if name == ".":
                continue
            if name == "..":
                if resolved:
                    resolved.pop()
                node = self.fs.get("/" + "/".join(resolved)) or self.fs.root
                continue
            if node.children is None:
                return None, None, links
            child = node.children.get(name)
            if child is None:
                return None, None, links
            if child.type is EntryType.SYMLINK and (todo or follow_final):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None, None, links
                links.append("/" + "/".join([*resolved, name]))
                target = child.link_target or ""
                if target.startswith("/"):
                    resolved, node = [], self.fs.root
                todo.extend(p for p in reversed(target.split("/")) if p)
                continue
            resolved.append(name)
            node = child
        return "/" + "/".join(resolved), node, links

    def add(self, path: str, cwd: str = "/") -> tuple[str | None, Node | None]:
        """Record `path` (and the symlinks leading to it) as needed; return where it lands."""
        canonical, node, links = self.walk(path, cwd)
        self.state.files.update(links)
        if canonical is not None and node is not None and node.type is not EntryType.DIR:
            self.state.files.add(canonical)
        return canonical, node

    def add_tree(self, root: str, runtime: bool = False) -> list[str]:
        """Every file and symlink below `root` (following symlinked directories inside it);
        ELF files among them get their libraries too (they are dlopen'ed by the runtime).
        Returns the regular files of the tree."""
        canonical, node, links = self.walk(root)
        if canonical is None or node is None:
            return []
        self.state.files.update(links)
        if node.type is not EntryType.DIR:
            self.state.files.add(canonical)
            return [canonical] if node.type is EntryType.FILE else []
        count = 0
        regular: list[str] = []
        seen_dirs: set[str] = set()
        stack = [(canonical, node)]
        elves: list[str] = []
        while stack:
            dir_path, dir_node = stack.pop()
            if dir_path in seen_dirs or dir_node.children is None:
                continue
            seen_dirs.add(dir_path)
            for name, child in dir_node.children.items():
                child_path = dir_path.rstrip("/") + "/" + name
                count += 1
                if count > MAX_TREE_FILES:
                    self.state.limit(f"{root}: more than {MAX_TREE_FILES} entries; cut short")
                    return regular
                if child.type is EntryType.DIR:
                    stack.append((child_path, child))
                    continue
                self.state.files.add(child_path)
                if runtime:
                    self.state.runtime_files.add(child_path)
                if child.type is EntryType.SYMLINK:
                    target, tnode, tlinks = self.walk(child_path)
                    self.state.files.update(tlinks)
                    if target is not None and tnode is not None:
                        if tnode.type is EntryType.DIR:
                            # JAVA_HOME/conf -> /etc/java-17: yes; a link to / or /usr: no.
                            if target not in SYSTEM_DIRS:
                                stack.append((target, tnode))
                        else:
                            self.state.files.add(target)
                            if runtime:
                                self.state.runtime_files.add(target)
                            if tnode.type is EntryType.FILE:
                                regular.append(target)
                elif child.type is EntryType.FILE:
                    regular.append(child_path)
                    if _maybe_elf(name, child):
                        elves.append(child_path)
        for path in elves:
            info = elf_info(self.view, path, self.cache)
            if info is not None and not info.static and info.elf_type == "dyn":
                self.dlopened(path, info)
        return regular

    def owner(self, canonical: str) -> str | None:
        if self.attribution is None:
            return None
        return self.attribution.owner_of.get(canonical)

    def read(self, path: str, limit: int = 1 << 20) -> bytes | None:
        reader = getattr(self.view, "read", None)
        data = reader(path) if reader is not None else None
        if data is None:
            stream = self.view.open(path)
            if stream is None:
                return None
            with stream:
                data = stream.read(limit)
        return data[:limit]

    def head(self, path: str) -> bytes | None:
        stream = self.view.open(path)
        if stream is None:
            return None
        with stream:
            return stream.read(256)

    # -- argv -------------------------------------------------------------------------------

    def find_executable(self, name: str, cwd: str) -> tuple[str, str, Node] | None:
        """(path as run, canonical path, node) of a command, as execvp finds it."""
        if "/" in name:
            candidates = [name if name.startswith("/") else posixpath.join(cwd, name)]
        else:
            candidates = [posixpath.join(d or cwd, name) for d in self.path_dirs]
        for candidate in candidates:
            canonical, node, links = self.walk(candidate, cwd)
            if canonical is None or node is None or node.type is not EntryType.FILE:
                continue
            if not node.mode & 0o111:
                continue
            self.state.files.update(links)
            self.state.files.add(canonical)
            return posixpath.normpath(candidate), canonical, node
        return None

    def follow(self, argv: list[str], cwd: str, depth: int = 0) -> str:
        """Follow one command; return the closure kind of what finally runs."""
        state = self.state
        if not argv:
            state.limit("empty command")
            return "unknown"
        if depth > MAX_DEPTH:
            state.limit(f"stopped following at {argv[0]}: too many interpreters or wrappers")
            return "unknown"
        found = self.find_executable(argv[0], cwd)
        if found is None:
            state.unresolved_add(argv[0])
            return "unknown"
        as_run, canonical, _node = found
        if depth == 0:
            self.executable = canonical
        head = self.head(canonical)
        if head is None:
            state.limit(f"{canonical}: its bytes were not kept while reading the image; "
                        "cannot tell an ELF file from a script")
            return "unknown"
        if head.startswith(b"#!"):
            return self.follow_script(argv, as_run, canonical, head, cwd, depth)
        if not head.startswith(b"\x7fELF"):
            state.limit(f"{canonical}: neither ELF nor a #! script (exec format error)")
            return "unknown"
        info = elf_info(self.view, canonical, self.cache)
        if info is None:
            state.limit(f"{canonical}: unreadable ELF file")
            return "unknown"
        self.elf_closure(as_run, canonical, info)
        self.note_app_file(canonical)
        return self.runtime(argv, as_run, canonical, info, cwd, depth)

    def follow_script(self, argv: list[str], as_run: str, canonical: str, head: bytes,
                      cwd: str, depth: int) -> str:
        line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        if not line:
            self.state.limit(f"{canonical}: empty #! line")
            return "unknown"
        # The kernel splits the #! line once: the interpreter, then one optional argument.
        parts = line.split(None, 1)
        interpreter = parts[0]
        self.state.interpreters.append(interpreter)
        self.note_app_file(canonical)
        new_argv = [interpreter, *parts[1:], as_run, *argv[1:]]
        return self.follow(new_argv, cwd, depth + 1)

    def note_app_file(self, canonical: str) -> None:
        if self.owner(canonical) is None and canonical not in self.state.app_paths:
            self.state.app_paths.append(canonical)

    def runtime(self, argv: list[str], as_run: str, canonical: str, info: ElfInfo, cwd: str,
                depth: int) -> str:
        names = {posixpath.basename(as_run), posixpath.basename(canonical)}
        if "busybox" in names and posixpath.basename(as_run) != "busybox":
            names = {posixpath.basename(as_run)}  # a busybox applet acts as its name
        if "env" in names:
            rest = _env_command(argv[1:])
            if rest is None:
                self.state.limit("env without a command: nothing more to follow")
                return _elf_kind(info)
            assigns, command = rest
            self.apply_env(assigns)
            return self.follow(command, cwd, depth + 1)
        for name in names:
            if name in WRAPPERS:
                command = _wrapped_command(argv[1:], WRAPPERS[name])
                if not command:
                    return _elf_kind(info)
                self.state.interpreters.append(canonical)
                return self.follow(command, cwd, depth + 1)
        if names & SHELLS:
            self.state.interpreters.append(canonical)
            return self.shell(argv, cwd, depth)
        if any(PYTHON_RE.match(n) for n in names):
            self.state.interpreters.append(canonical)
            self.python(argv, as_run, canonical, cwd)
            return "python"
        if names & NODE_NAMES:
            self.state.interpreters.append(canonical)
            self.node(argv, canonical, cwd)
            return "node"
        if "java" in names:
            self.state.interpreters.append(canonical)
            self.java(argv, canonical, cwd)
            return "java"
        return _elf_kind(info)

    def apply_env(self, assigns: list[str]) -> None:
        for item in assigns:
            key, _, value = item.partition("=")
            self.env[key] = value
            if key == "PATH":
                self.path_dirs = value.split(":")

    # -- shells -----------------------------------------------------------------------------

    def shell(self, argv: list[str], cwd: str, depth: int) -> str:
        args = argv[1:]
        command_mode = False
        while args and args[0].startswith(("-", "+")) and args[0] != "--":
            if args[0] in ("-o", "+o", "-O", "+O"):  # an option name follows
                args = args[2:]
                continue
            command_mode = command_mode or (args[0][0] == "-" and "c" in args[0][1:])
            args = args[1:]  # -e, -x, -eu, -lc...
        if args and args[0] == "--":
            args = args[1:]
        if command_mode:
            if not args:
                return "shell"
            return self.shell_command(args[0], cwd, depth)
        if not args:
            self.state.limit("an interactive shell: what it runs is not known")
            return "shell"
        script = args[0]
        canonical, _node = self.add(script, cwd)
        if canonical is None:
            self.state.unresolved_add(script)
            return "shell"
        self.note_app_file(canonical)
        text = self.read(canonical, 1 << 16)
        if text is None:
            self.state.limit(f"{canonical}: script bytes not kept; commands it runs not followed")
            return "shell"
        if re.search(rb'exec\s+"?\$(?:\{@\}|@)"?', text) and len(args) > 1:
            # The docker-entrypoint.sh idiom: after its setup the script becomes its arguments.
            self.state.limit(f"{canonical}: commands it runs before `exec \"$@\"` not followed")
            return self.follow(args[1:], cwd, depth + 1)
        self.state.limit(f"{canonical}: shell script; the commands it runs are not followed")
        return "shell"

    def shell_command(self, text: str, cwd: str, depth: int) -> str:
        try:
            lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError as exc:
            self.state.limit(f"shell command not parsed ({exc}): {text[:80]}")
            return "shell"
        commands: list[list[str]] = [[]]
        separators: list[str] = []
        skip_next = False
        for tok in tokens:
            if skip_next:
                skip_next = False
                continue
            if tok and set(tok) <= set("<>&|") and ("<" in tok or ">" in tok):
                skip_next = True  # a redirection (>, 2>&1, <) and its target: not argv
                if commands[-1] and commands[-1][-1].isdigit():
                    commands[-1].pop()
                continue
            if tok and set(tok) <= set(";&|()"):
                commands.append([])
                separators.append(tok)
                continue
            commands[-1].append(self.expand(tok))
        for index, words in enumerate(commands):
            while words and "=" in words[0] and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                self.apply_env([words.pop(0)])
            if not words:
                continue
            if words[0] == "exec":
                words = _exec_command(words[1:])
                if not words:
                    continue
            if words[0] == "cd":
                if len(words) > 1:
                    cwd = _normdir(posixpath.join(cwd, words[1]))
                continue
            if words[0] in (".", "source") and len(words) > 1:
                canonical, _ = self.add(words[1], cwd)
                if canonical is not None:
                    self.note_app_file(canonical)
                self.state.limit(f"shell: sourced {words[1]} not followed")
                continue
            if words[0] in SHELL_BUILTINS:
                continue
            if index < len(commands) - 1 or separators[index - 1:index] not in ([], [";"]):
                self.state.limit("shell command line: only its first command is followed "
                                 f"(pipelines, &&, ;): {text[:120]}")
            return self.follow(words, cwd, depth + 1)
        self.state.limit(f"shell command runs only builtins: {text[:80]}")
        return "shell"

    def expand(self, word: str) -> str:
        def repl(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            return self.env.get(name, m.group(0))

        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, word)

    # -- ELF --------------------------------------------------------------------------------

    def setup(self, info: ElfInfo, interpreter: str | None) -> _LinkerSetup:
        key = (info.machine, info.bits, info.little_endian,
               bool(interpreter and "musl" in posixpath.basename(interpreter)))
        found = self.linker.get(key)
        if found is None:
            found = self.linker[key] = self._make_setup(info, key[3])
        return found

    def _make_setup(self, info: ElfInfo, musl: bool) -> _LinkerSetup:
        triplet = MULTIARCH.get((info.machine or "", info.bits))
        platform = PLATFORMS.get(info.machine or "", info.machine or "")
        if musl:
            arch = MUSL_ARCH.get(info.machine or "", info.machine or "")
            dirs = ["/lib", "/usr/local/lib", "/usr/lib"]
            data = self.read(f"/etc/ld-musl-{arch}.path")
            if data is not None:
                dirs = [d for d in re.split(r"[:\n]", data.decode("utf-8", "replace")) if d]
            return _LinkerSetup(True, dirs, None, None, "lib", platform)
        defaults: list[str] = []
        if triplet:
            defaults += [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
        if info.bits == 64:
            defaults += ["/lib64", "/usr/lib64"]
        defaults += ["/lib", "/usr/lib"]
        if triplet and self._is_dir(f"/usr/lib/{triplet}"):
            lib = f"lib/{triplet}"
        elif info.bits == 64 and self._is_dir("/usr/lib64"):
            lib = "lib64"
        else:
            lib = "lib"
        cache: dict[str, list[str]] | None = None
        conf: list[str] | None = None
        cache_node = self.fs.resolve("/etc/ld.so.cache")
        if cache_node is not None:
            self.add("/etc/ld.so.cache")  # ld.so reads it at every start
            data = self.read("/etc/ld.so.cache", 64 << 20)
            cache = _parse_ld_cache(data, info.little_endian) if data is not None else None
            if cache is None:
                conf = self._conf_dirs("/etc/ld.so.conf", set())
                self.state.limit("/etc/ld.so.cache not readable: the directories of "
                                 "/etc/ld.so.conf were searched instead")
        else:
            self.state.limit("no /etc/ld.so.cache: ld.so searches only RPATH, "
                             "LD_LIBRARY_PATH, RUNPATH and its default directories")
        return _LinkerSetup(False, defaults, conf, cache, lib, platform)

    def _is_dir(self, path: str) -> bool:
        resolved = self.fs.resolve(path)
        return resolved is not None and resolved[1].type is EntryType.DIR

    def _conf_dirs(self, path: str, seen: set[str]) -> list[str]:
        """Directories of an ld.so.conf file and of what it includes, in order."""
        if path in seen or len(seen) > 256:
            return []
        seen.add(path)
        canonical, _node, _links = self.walk(path)  # read by ldconfig, not at run time
        if canonical is None:
            return []
        data = self.read(canonical)
        if data is None:
            self.state.limit(f"{path}: bytes not kept; its directories are not searched")
            return []
        dirs: list[str] = []
        for raw in data.decode("utf-8", "replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include") and line[7:8].isspace():
                for pattern in line[8:].split():
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(path), pattern)
                    for match in sorted(self._glob(pattern)):
                        dirs += self._conf_dirs(match, seen)
                continue
            if line.startswith("hwcap"):
                continue
            dirs += [d for d in re.split(r"[\s:,=]+", line) if d.startswith("/")]
        return dirs

    def _glob(self, pattern: str) -> Iterator[str]:
        directory, base = posixpath.split(pattern)
        canonical, node, _links = self.walk(directory)
        if canonical is None or node is None or node.children is None:
            return
        for name in node.children:
            if fnmatch.fnmatchcase(name, base):
                yield posixpath.join(directory, name)

    def elf_closure(self, as_run: str, canonical: str, info: ElfInfo) -> None:
        """The interpreter and libraries of the main program, as ld.so loads them."""
        if canonical in self.state.elf_done:
            return
        self.state.elf_done.add(canonical)
        main = _Loaded(as_run, canonical, info)
        if self.main is None:
            self.main = main
        if info.interpreter:  # PT_INTERP: in `libraries` and `files`, not an "interpreter"
            interp_canonical, node = self.add(info.interpreter)
            interp = elf_info(self.view, interp_canonical, self.cache) \
                if interp_canonical is not None and node is not None else None
            if interp is None:
                self.state.unresolved_add(info.interpreter)
            else:
                loaded = _Loaded(info.interpreter, interp_canonical or "", interp)
                self._register(info.interpreter, loaded)
        preload = [p for p in re.split(r"[:\s]+", self.env.get("LD_PRELOAD", "")) if p]
        self._load_deps(main, info.interpreter, extra=preload)

    def dlopened(self, path: str, info: ElfInfo) -> None:
        """A shared object the runtime loads itself (Python extension, Node addon, JNI)."""
        canonical, _node, _links = self.walk(path)
        if canonical is None or canonical in self.state.elf_done:
            return
        self.state.elf_done.add(canonical)
        obj = _Loaded(path, canonical, info)
        self._register(path, obj)
        interp = self.main.info.interpreter if self.main is not None else info.interpreter
        self._load_deps(obj, interp, quiet=True)

    def _register(self, name: str, obj: _Loaded) -> None:
        self.loaded.setdefault(name, obj)
        if obj.info.soname:
            self.loaded.setdefault(obj.info.soname, obj)
        self.by_canonical.setdefault(obj.canonical, obj)

    def _load_deps(self, root: _Loaded, interpreter: str | None, extra: Iterable[str] = (),
                   quiet: bool = False) -> None:
        # Breadth first, as _dl_map_object_deps: each object's DT_NEEDED in order, a name
        # already loaded (by name or soname) is not searched again.
        setup = self.setup(root.info, interpreter)
        chains: dict[str, list[_Loaded]] = {root.canonical: [root]}
        queue: deque[tuple[_Loaded, list[str]]] = deque([(root, [*extra, *root.info.needed])])
        while queue:
            obj, names = queue.popleft()
            chain = chains.get(obj.canonical, [obj])
            for name in names:
                known = self.loaded.get(name)
                if known is not None:
                    self.state.libraries.append((name, known.path))
                    continue
                found = self._search(name, chain, setup, root.info)
                if found is None:
                    label = name if obj is root and not quiet else f"{name} (needed by {obj.path})"
                    self.state.unresolved_add(label)
                    if (name, None) not in self.state.libraries:
                        self.state.libraries.append((name, None))
                    continue
                path, canonical, info = found
                existing = self.by_canonical.get(canonical)
                if existing is not None:  # the same file under another name: one object
                    self.loaded.setdefault(name, existing)
                    self.state.libraries.append((name, existing.path))
                    continue
                loaded = _Loaded(path, canonical, info)
                self._register(name, loaded)
                self.state.libraries.append((name, path))
                self.add(path)
                if name.startswith(RUNTIME_LIBRARIES):
                    self.state.runtime_files.add(canonical)  # the runtime proper, e.g. libnode
                chains[canonical] = [loaded, *chain]
                queue.append((loaded, list(info.needed)))

    def _search(self, name: str, chain: list[_Loaded], setup: _LinkerSetup, main: ElfInfo
                ) -> tuple[str, str, ElfInfo] | None:
        if "/" in name:
            return self._try(name, main)
        obj = chain[0]
        dirs: list[str] = []
        if setup.musl:
            # musl: libc, libm, libpthread... are the loader itself; then LD_LIBRARY_PATH,
            # RPATH and RUNPATH alike up the chain of loaders, then its path file.
            interp = self.loaded.get(main.interpreter or "")
            if interp is not None and MUSL_BUILTIN.match(name):
                return interp.path, interp.canonical, interp.info
            dirs += self._env_dirs(chain[-1])
            for item in chain:
                dirs += self._expand(item.info.rpath + item.info.runpath, item, setup)
            dirs += setup.default_dirs
            return self._first(name, dirs, main)
        if not obj.info.runpath:
            for item in chain:  # the object, then whoever loaded it, up to the program
                if not item.info.runpath:
                    dirs += self._expand(item.info.rpath, item, setup)
        dirs += self._env_dirs(chain[-1])
        if obj.info.runpath:
            dirs += self._expand(obj.info.runpath, obj, setup)
        found = self._first(name, dirs, main)
        if found is not None:
            return found
        if setup.cache is not None:
            for path in setup.cache.get(name, []):
                hit = self._try(path, main)
                if hit is not None and not (obj.info.nodeflib and
                                            posixpath.dirname(path) in setup.default_dirs):
                    return hit
        elif setup.conf_dirs:
            found = self._first(name, setup.conf_dirs, main)
            if found is not None:
                return found
        if obj.info.nodeflib:
            return None
        return self._first(name, setup.default_dirs, main)

    def _env_dirs(self, program: _Loaded) -> list[str]:
        value = self.env.get("LD_LIBRARY_PATH", "")
        # Empty entries mean the current directory, as in PATH.
        dirs = [d or self.cwd for d in re.split(r"[:;]", value)] if value else []
        return [d.replace("$ORIGIN", posixpath.dirname(program.canonical)) for d in dirs]

    def _expand(self, entries: tuple[str, ...], obj: _Loaded, setup: _LinkerSetup) -> list[str]:
        # $ORIGIN: the program's real directory; a library's directory as it was found.
        origin = posixpath.dirname(obj.canonical if obj is self.main else obj.path)
        out: list[str] = []
        for entry in entries:
            if "PLATFORM" in entry:
                self.state.limit(f"$PLATFORM in {obj.path}'s search path depends on the CPU "
                                 f"(haswell, xeon_phi...); expanded as {setup.platform}")
            for token, value in (("ORIGIN", origin), ("LIB", setup.lib),
                                 ("PLATFORM", setup.platform)):
                entry = entry.replace("${" + token + "}", value).replace("$" + token, value)
            if not entry.startswith("/"):
                entry = posixpath.join(self.cwd, entry)  # relative: against the process cwd
            out.append(entry)
        return out

    def _first(self, name: str, dirs: Iterable[str], main: ElfInfo
               ) -> tuple[str, str, ElfInfo] | None:
        for directory in dict.fromkeys(dirs):
            found = self._try(directory.rstrip("/") + "/" + name, main)
            if found is not None:
                self._hwcaps(directory, name)
                return found
        return None

    def _hwcaps(self, directory: str, name: str) -> None:
        # glibc first tries DIR/glibc-hwcaps/<level>/NAME for the levels the CPU supports.
        for level in ("x86-64-v4", "x86-64-v3", "x86-64-v2", "power10", "power9", "z15", "z14",
                      "z13"):
            variant = f"{directory.rstrip('/')}/glibc-hwcaps/{level}/{name}"
            if self.walk(variant)[0] is not None:
                self.add(variant)
                self.state.limit(f"{variant}: which variant of {name} loads depends on the CPU; "
                                 "every variant is kept")

    def _try(self, path: str, main: ElfInfo) -> tuple[str, str, ElfInfo] | None:
        canonical, node, _links = self.walk(path, self.cwd)
        if canonical is None or node is None or node.type is not EntryType.FILE:
            return None
        info = elf_info(self.view, canonical, self.cache)
        if info is None or info.elf_type != "dyn":
            return None
        # ld.so skips an object of the wrong class or machine and goes on searching.
        if (info.machine, info.bits, info.little_endian) != \
                (main.machine, main.bits, main.little_endian):
            return None
        return path, canonical, info  # as ld.so names it: "$ORIGIN/../lib" stays unnormalised

    # -- runtimes ---------------------------------------------------------------------------

    def app_tree(self, directory: str) -> None:
        directory = _normdir(directory)
        if directory in SYSTEM_DIRS:
            return
        canonical, node, _links = self.walk(directory)
        if canonical is None or node is None or node.type is not EntryType.DIR:
            return
        regular = self.add_tree(directory)
        unowned = any(self.owner(p) is None for p in regular)
        if unowned and directory not in self.state.app_paths:
            self.state.app_paths.append(directory)

    def script_tree(self, script: str, cwd: str, marker: str | None = None) -> str | None:
        """Add a script and, when no package owns it, its directory (or the nearest ancestor
        holding `marker`) as the app's tree. Returns the app directory, if any."""
        canonical, node = self.add(script, cwd)
        if canonical is None or node is None:
            self.state.unresolved_add(script)
            return None
        if self.owner(canonical) is not None:
            return None
        directory = canonical if node.type is EntryType.DIR else posixpath.dirname(canonical)
        if marker is not None:
            probe = directory
            while probe not in SYSTEM_DIRS:
                if self.fs.get(posixpath.join(probe, marker)) is not None:
                    directory = probe
                    break
                probe = posixpath.dirname(probe)
        if directory in SYSTEM_DIRS:
            self.note_app_file(canonical)
            return None
        self.app_tree(directory)
        return directory

    def python(self, argv: list[str], as_run: str, canonical: str, cwd: str) -> None:
        state = self.state
        state.runtime_files.add(canonical)
        version = self._python_version(canonical)
        if version is None:
            state.limit(f"{canonical}: Python version unknown; standard library not located")
        prefix = posixpath.dirname(posixpath.dirname(canonical))
        venv = None
        for probe in (posixpath.dirname(as_run), posixpath.dirname(posixpath.dirname(as_run))):
            if self.fs.resolve(posixpath.join(probe, "pyvenv.cfg")) is not None:
                venv = probe
                break
        system_site = True
        if venv is not None:
            cfg_path = posixpath.join(venv, "pyvenv.cfg")
            self.add(cfg_path)
            cfg = self.read(cfg_path)
            if cfg is None:
                state.limit(f"{cfg_path}: bytes not kept; assumed without system site-packages")
            system_site = cfg is not None and bool(re.search(
                rb"(?mi)^\s*include-system-site-packages\s*=\s*true", cfg))
        if version is not None:
            stdlib = f"{prefix}/lib/python{version}"
            self.add_tree(stdlib, runtime=True)
            sites: list[str] = []
            if venv is not None:
                sites += [f"{venv}/lib/python{version}/site-packages"]
            if venv is None or system_site:
                major = version.split(".")[0]
                sites += [f"{prefix}/local/lib/python{version}/dist-packages",
                          f"{prefix}/lib/python{major}/dist-packages",
                          f"/usr/local/lib/python{version}/dist-packages",
                          f"/usr/local/lib/python{version}/site-packages",
                          f"{prefix}/lib/python{version}/dist-packages"]
                home = self.env.get("HOME", "/root")
                sites.append(f"{home}/.local/lib/python{version}/site-packages")
            for site in dict.fromkeys(sites):
                if self.fs.resolve(site) is not None:
                    self.add_tree(site)
        for entry in (p for p in self.env.get("PYTHONPATH", "").split(":") if p):
            self.app_tree(entry if entry.startswith("/") else posixpath.join(cwd, entry))
        script, module = _python_target(argv[1:])
        if script is not None and script != "-":
            self.script_tree(script, cwd)
        elif module is not None or script is None:
            self.app_tree(cwd)  # -m / -c put the working directory first on sys.path
        state.limit("python: imports are not followed; the standard library and every "
                    "site-packages directory on sys.path are kept whole")

    def _python_version(self, canonical: str) -> str | None:
        m = re.match(r"^(?:python|pypy)(\d+\.\d+)", posixpath.basename(canonical))
        if m:
            return m.group(1)
        prefix = posixpath.dirname(posixpath.dirname(canonical))
        node = self.fs.get(prefix + "/lib")
        names = sorted((n for n in (node.children or {}) if re.match(r"^python\d+\.\d+$", n)),
                       key=lambda n: [int(x) for x in n[6:].split(".")]) if node else []
        return names[-1][6:] if names else None

    def node(self, argv: list[str], canonical: str, cwd: str) -> None:
        self.state.runtime_files.add(canonical)
        script = _node_script(argv[1:])
        app = None
        if script is not None:
            app = self.script_tree(script, cwd, marker="package.json")
        else:
            self.app_tree(cwd)
        base = app or (posixpath.dirname(self.walk(script, cwd)[0] or cwd) if script else cwd)
        probe = _normdir(base)
        while True:  # require() looks in node_modules of every ancestor
            modules = posixpath.join(probe, "node_modules")
            if self.fs.resolve(modules) is not None:
                self.add_tree(modules)
            if probe == "/":
                break
            probe = posixpath.dirname(probe)
        for entry in (p for p in self.env.get("NODE_PATH", "").split(":") if p):
            if self.fs.resolve(entry) is not None:
                self.add_tree(entry)
        self.state.limit("node: require() is not followed; the app tree and node_modules of its "
                         "ancestors are kept whole; global module directories (/usr/lib/"
                         "node_modules, /usr/share/nodejs) only through the runtime's packages "
                         "or NODE_PATH")

    def java(self, argv: list[str], canonical: str, cwd: str) -> None:
        home = posixpath.dirname(posixpath.dirname(canonical))
        if posixpath.basename(home) == "jre":  # Java 8 layout: JAVA_HOME/jre/bin/java
            home = posixpath.dirname(home)
        self.add_tree(home, runtime=True)
        args = argv[1:]
        jars: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "-jar" and i + 1 < len(args):
                jars.append(args[i + 1])
                break
            if arg in ("-cp", "-classpath", "--class-path") and i + 1 < len(args):
                jars += [p for p in args[i + 1].split(":") if p]
                i += 2
                continue
            if not arg.startswith("-"):
                break  # the main class; its arguments follow
            i += 1
        if not jars and self.env.get("CLASSPATH"):
            jars = [p for p in self.env["CLASSPATH"].split(":") if p]
        if not jars:
            self.app_tree(cwd)
        for jar in jars:
            if jar.endswith("/*"):
                self.app_tree(jar[:-2] if jar.startswith("/") else posixpath.join(cwd, jar[:-2]))
            else:
                self.script_tree(jar, cwd)
        self.state.limit("java: classes loaded by name and Class-Path entries of jar manifests "
                         "are not followed; JAVA_HOME is kept whole")

    # -- packages ---------------------------------------------------------------------------

    def packages(self) -> tuple[list[str], set[str]]:
        """Keys of the packages owning closure files, and the files of runtime packages."""
        if self.attribution is None:
            self.state.limit("no package attribution (catalog off): packages not listed")
            return [], set()
        owner_of = self.attribution.owner_of
        keys: dict[str, None] = {}
        for path in sorted(self.state.files):
            key = owner_of.get(path)
            if key is not None:
                keys.setdefault(key)
        runtime_keys = {owner_of[p] for p in self.state.runtime_files if p in owner_of}
        by_key: dict[str, Package] = {}
        by_name: dict[tuple[str, str], list[str]] = {}
        for usage in self.attribution.packages:
            pkg = usage.package
            key = package_key(pkg)
            by_key[key] = pkg
            for name in (pkg.name, *pkg.provides):
                by_name.setdefault((pkg.ecosystem, name.split(":")[0]), []).append(key)
        # The runtime's packages are kept whole. What they declare they depend on is only
        # named: Debian's Depends mix run-time needs with maintainer-script tools (dpkg,
        # debconf), and the libraries among them are already in through the ELF closure.
        whole = {key for key in runtime_keys if key in by_key}
        for key in sorted(whole):
            pkg = by_key[key]
            missing = sorted({by_key[dep_key].name
                              for dep in pkg.dependencies
                              for dep_key in by_name.get((pkg.ecosystem, dep.split(":")[0]), [])
                              if dep_key not in keys and dep_key not in whole})
            if missing:
                self.state.limit(f"{pkg.name} declares dependencies that are not in the "
                                 f"closure: {', '.join(missing)}")
        extra: set[str] = set()
        for key in sorted(whole):
            keys.setdefault(key)
            for path in by_key[key].files:
                canonical, node, links = self.walk(path, follow_final=False)
                if canonical is None or node is None or node.type is EntryType.DIR:
                    continue
                extra.update(links)
                extra.add(canonical)
                if node.type is EntryType.SYMLINK:
                    target, tnode, tlinks = self.walk(canonical)
                    extra.update(tlinks)
                    if target is not None and tnode is not None \
                            and tnode.type is not EntryType.DIR:
                        extra.add(target)
        return list(keys), extra

    # -- limits -----------------------------------------------------------------------------

    def general_limits(self, kind: str) -> None:
        state = self.state
        sonames = {name for name, _ in state.libraries}
        if any(s.startswith("libc.so") for s in sonames):
            state.limit("glibc NSS: user, group and host lookups load libnss_* modules named in "
                        "/etc/nsswitch.conf at run time (dlopen); not included")
            state.limit("glibc gconv: iconv character-set modules are loaded at run time; "
                        "not included")
        if any(k in self.env for k in ("LANG", "LC_ALL")) or any(
                p.startswith("/usr/lib/locale") for p in state.files):
            state.limit("locales: /usr/lib/locale and /usr/share/i18n data are read at run "
                        "time; not included")
        tls = ("libssl", "libcrypto", "libgnutls", "libnss3", "libmbedtls", "libcurl")
        if kind in ("python", "node", "java") or any(s.startswith(tls) for s in sonames):
            state.limit("CA certificates (/etc/ssl/certs, /etc/pki) and TLS configuration "
                        "are read at run time; not included")
        if kind == "elf-static":
            state.limit("static binary: it can run FROM scratch or distroless/static; "
                        "files it reads at run time are still not seen")
        state.limit("dlopen: libraries loaded by name at run time are not seen")
        state.limit("configuration and data files the program reads are not seen")


def runtime_closure(fs: Overlay, view: ElfSource, config: ImageConfig,
                    attribution: Attribution | None) -> RuntimeClosure:
    """The closure of the image's Entrypoint + Cmd (docker semantics)."""
    argv = [*(config.entrypoint or ()), *(config.cmd or ())]
    closure = _Closure(fs, view, config, attribution)
    state = closure.state
    executable: str | None = None
    if not argv:
        state.limit("the image has no Entrypoint or Cmd")
        kind = "unknown"
    else:
        kind = closure.follow(list(argv), closure.cwd)
        executable = closure.executable
    user = (config.user or "").split(":")
    if any(part and not part.isdigit() for part in user):
        for path in ("/etc/passwd", "/etc/group"):
            closure.add(path)
        state.limit(f"User {config.user!r} is a name: /etc/passwd and /etc/group are kept")
    keys, whole_files = closure.packages()
    closure.general_limits(kind)
    files = state.files | whole_files
    seen: set[str] = set()
    libraries = []
    for item in state.libraries:
        if item not in seen:
            seen.add(item)  # type: ignore[arg-type]
            libraries.append(item)
    return RuntimeClosure(
        argv=tuple(argv),
        executable=executable,
        kind=kind,
        interpreters=tuple(dict.fromkeys(state.interpreters)),
        files=tuple(sorted(files)),
        libraries=tuple(libraries),
        packages=tuple(sorted(keys)),
        app_paths=tuple(_outermost(state.app_paths)),
        unresolved=tuple(state.unresolved),
        limits=tuple(state.limits),
    )


@dataclass(frozen=True, slots=True)
class LibraryClosure:
    """The libraries one ELF file loads (for `ldd`-like questions on any binary)."""

    path: str
    interpreter: str | None
    libraries: tuple[tuple[str, str | None], ...]
    files: tuple[str, ...]
    unresolved: tuple[str, ...]


def library_closure(fs: Overlay, view: ElfSource, config: ImageConfig, path: str
                    ) -> LibraryClosure | None:
    """What ld.so would load for the ELF program at `path`, with the image's environment."""
    closure = _Closure(fs, view, config, None)
    canonical, node = closure.add(path)
    if canonical is None or node is None:
        return None
    info = elf_info(view, canonical, closure.cache)
    if info is None:
        return None
    if info.interpreter is None and not info.static:
        # A library: ldd runs it through the system's loader, which is then loaded already.
        interp = DEFAULT_INTERPRETERS.get((info.machine or "", info.bits))
        interp_path = closure.walk(interp)[0] if interp else None
        interp_info = elf_info(view, interp_path, closure.cache) if interp_path else None
        if interp and interp_path and interp_info is not None:
            closure._register(interp, _Loaded(interp, interp_path, interp_info))
    closure.elf_closure(path, canonical, info)
    state = closure.state
    return LibraryClosure(
        path=canonical,
        interpreter=info.interpreter,
        libraries=tuple(dict.fromkeys(state.libraries)),
        files=tuple(sorted(state.files)),
        unresolved=tuple(state.unresolved),
    )


# -- helpers ------------------------------------------------------------------------------------


def _outermost(paths: list[str]) -> list[str]:
    """Paths not inside another one of the list (a script inside its app tree), in order."""
    return [p for p in paths
            if not any(o != p and (o == "/" or p.startswith(o.rstrip("/") + "/")) for o in paths)]


def _env_dict(env: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
    return out


def _normdir(path: str) -> str:
    path = posixpath.normpath("/" + path.lstrip("/")) if path else "/"
    return "/" if path == "//" else path


def _elf_kind(info: ElfInfo) -> str:
    return "elf-static" if info.static else "elf-dynamic"


def _maybe_elf(name: str, node: Node) -> bool:
    return bool(node.mode & 0o111) or ".so" in name or name.endswith(".node")


def _env_command(args: list[str]) -> tuple[list[str], list[str]] | None:
    """env's assignments and command: `env [-i] [-u NAME] [-S "cmd args"] [VAR=x]... cmd`."""
    assigns: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-u", "--unset", "-C", "--chdir"):
            i += 2
            continue
        if arg.startswith("-S") or arg.startswith("--split-string"):
            text = arg[2:] if arg.startswith("-S") and len(arg) > 2 else (
                arg.partition("=")[2] if "=" in arg else (args[i + 1] if i + 1 < len(args)
                                                           else ""))
            rest = args[i + 1:] if arg.startswith("-S") and len(arg) > 2 or "=" in arg \
                else args[i + 2:]
            return _env_command([*shlex.split(text), *rest])
        if arg == "--":
            i += 1
            break
        if arg.startswith("-"):
            i += 1
            continue
        if "=" in arg:
            assigns.append(arg)
            i += 1
            continue
        break
    command = args[i:]
    return (assigns, command) if command else None


def _exec_command(words: list[str]) -> list[str]:
    """`exec [-cl] [-a name] cmd`: the command."""
    i = 0
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] == "-a" else 1
    return words[i:]


def _wrapped_command(args: list[str], operands: int) -> list[str]:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "--":
            i += 1
            break
        i += 1
    return args[i + operands:]


_PY_ARG_OPTIONS = {"-W", "-X", "--check-hash-based-pycs"}


def _python_target(args: list[str]) -> tuple[str | None, str | None]:
    """(script, module) of a python command line; script "-" is stdin, both None for -c."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m":
            return None, args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("-m") and len(arg) > 2:
            return None, arg[2:]
        if arg == "-c" or (arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]
                           and arg[1:].isalpha()):
            return None, None
        if arg in _PY_ARG_OPTIONS:
            i += 2
            continue
        if arg == "-" or not arg.startswith("-"):
            return arg, None
        i += 1
    return None, None


_NODE_ARG_OPTIONS = {"-r", "--require", "--import", "--loader", "--experimental-loader", "-C",
                     "--conditions", "--title", "--env-file", "--input-type"}


def _node_script(args: list[str]) -> str | None:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-e", "--eval", "-p", "--print", "-i", "--interactive"):
            return None
        if arg in _NODE_ARG_OPTIONS:
            i += 2
            continue
        if arg == "--":
            return args[i + 1] if i + 1 < len(args) else None
        if not arg.startswith("-"):
            return arg
        i += 1
    return None


# -- /etc/ld.so.cache -------------------------------------------------------------------------

_CACHE_NEW = b"glibc-ld.so.cache1.1"
_CACHE_OLD = b"ld.so-1.7.0"


def _parse_ld_cache(data: bytes, little: bool) -> dict[str, list[str]] | None:
    """soname -> paths from ld.so.cache (the new format; the old one only if alone), skipping
    glibc-hwcaps entries (their choice depends on the CPU)."""
    e = "<" if little else ">"
    try:
        start = data.find(_CACHE_NEW)
        out: dict[str, list[str]] = {}
        if start != -1:
            nlibs, _len_strings = struct.unpack_from(e + "II", data, start + 20)
            if nlibs > len(data) // 24:
                return None
            base = start + 48
            for i in range(nlibs):
                _flags, key, value, _os, hwcap = struct.unpack_from(e + "iIIIQ", data,
                                                                     base + i * 24)
                if hwcap:
                    continue
                name, path = _cache_str(data, start + key), _cache_str(data, start + value)
                if name and path:
                    out.setdefault(name, []).append(path)
            return out
        if data.startswith(_CACHE_OLD):
            (nlibs,) = struct.unpack_from(e + "I", data, 12)
            if nlibs > len(data) // 12:
                return None
            strings = 16 + nlibs * 12
            for i in range(nlibs):
                _flags, key, value = struct.unpack_from(e + "iII", data, 16 + i * 12)
                name, path = _cache_str(data, strings + key), _cache_str(data, strings + value)
                if name and path:
                    out.setdefault(name, []).append(path)
            return out
    except struct.error:
        return None
    return None


def _cache_str(data: bytes, offset: int) -> str | None:
    if not 0 <= offset < len(data):
        return None
    end = data.find(b"\0", offset, offset + 4096)
    return data[offset:end].decode("utf-8", "replace") if end != -1 else None
