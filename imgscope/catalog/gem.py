"""Ruby gems from installed specifications (``GEM_HOME/specifications/NAME-VERSION.gemspec``).

RubyGems writes these files itself, in one regular shape (``s.name = "rake".freeze``), so a few
regular expressions over the text read them; the Ruby is never evaluated. A gem owns its
unpacked directory ``GEM_HOME/gems/FULLNAME/``, its built extensions, its generated docs and its
cached ``.gem``, and the gemspec itself. Files listed in ``s.files`` count too, relative to the
gem directory. Default gems (``specifications/default/``) only name files inside Ruby's own
library directory and are reported without files.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from imgscope.catalog._common import decode, join_path, make_purl
from imgscope.catalog.base import CatalogResult, FileView
from imgscope.model import Package

# A Ruby string literal as RubyGems writes one: "x", 'x', %q{x}, %q<x>, %q(x).
_STR = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|%q\{([^}]*)\}|%q<([^>]*)>|%q\(([^)]*)\))"""
_STR_RE = re.compile(_STR)
_BLOCK_VAR = re.compile(r"Gem::Specification\.new\s*(?:do|\{)\s*\|\s*(\w+)\s*\|")
_RUNTIME_DEP = r"\.add_runtime_dependency\s*\(?\s*" + _STR
_PLAIN_DEP = r"\.add_dependency\s*\(?\s*" + _STR


@dataclass(frozen=True, slots=True)
class GemSpec:
    """What an installed gemspec says: name, version, the files it lists, runtime dependencies."""

    name: str
    version: str
    files: tuple[str, ...]
    dependencies: tuple[str, ...]


def _first(match: re.Match[str], start: int = 1) -> str:
    return next((g for g in match.groups()[start - 1 : start + 4] if g is not None), "")


def parse_gemspec(data: bytes) -> tuple[GemSpec | None, list[str]]:
    """Name, version, files and runtime dependencies of a gemspec; never raises."""
    text = decode(data)
    block = _BLOCK_VAR.search(text)
    # Only the block's own variable counts: "s.name" inside "do |spec|" is a broken spec.
    var = re.escape(block.group(1)) if block else r"\w+"

    def attr(name: str) -> str | None:
        m = re.search(rf"^\s*{var}\.{name}\s*=\s*{_STR}", text, re.M)
        return _first(m) if m else None

    name, version = attr("name"), attr("version")
    if not name or not version:
        missing = "name" if not name else "version"
        return None, [f"no {missing} assigned to the block variable"]

    files: list[str] = []
    m = re.search(rf"^\s*{var}\.files\s*=\s*\[(.*?)\]", text, re.M | re.S)
    if m:
        files = [_first(s) for s in _STR_RE.finditer(m.group(1))]
    # Older specs say "if respond_to? :add_runtime_dependency ... else add_dependency(every
    # dependency, development ones too)": add_dependency counts only when nothing else does.
    deps = dict.fromkeys(_first(d) for d in re.finditer(rf"{var}{_RUNTIME_DEP}", text))
    if not deps:
        deps = dict.fromkeys(_first(d) for d in re.finditer(rf"{var}{_PLAIN_DEP}", text))
    return GemSpec(name, version, tuple(f for f in files if f), tuple(d for d in deps if d)), []


def _is_spec(path: str, _facts: object) -> bool:
    return path.endswith(".gemspec") and "/specifications/" in path


def _gem_key(path: str, homes: set[str]) -> tuple[str, str] | None:
    """(GEM_HOME, full name) of a path inside a gem's directories."""
    for home in homes:
        if not path.startswith(home + "/"):
            continue
        top, _, tail = path[len(home) + 1 :].partition("/")
        if top in ("gems", "doc"):
            stem, sep, _ = tail.partition("/")
            return (home, stem) if sep else None
        if top == "extensions":
            parts = tail.split("/")
            return (home, parts[2]) if len(parts) > 3 else None
        if top == "cache" and tail.endswith(".gem") and "/" not in tail:
            return home, tail[:-4]
    return None


class GemCataloger:
    name = "gem"
    content_patterns = ("*/specifications/*.gemspec",)
    wants_executables = False

    def catalog(self, files: FileView) -> CatalogResult:
        result = CatalogResult()
        specs = [p for p in files.paths(listed=_is_spec) if _is_spec(p, None)]
        homes = {
            p.rpartition("/specifications/")[0]
            for p in specs
            if "/" not in p.rpartition("/specifications/")[2]
        }
        owned: dict[tuple[str, str], list[str]] = defaultdict(list)
        if homes:
            listed = lambda path, _facts: _gem_key(path, homes) is not None  # noqa: E731
            for path in files.paths(listed=listed):
                key = _gem_key(path, homes)
                if key is not None:
                    item = files.stat(path)
                    if item is not None and item.type != "dir":
                        owned[key].append(path)

        for spec_path in specs:
            data = files.read(spec_path)
            if data is None:
                continue
            spec, warnings = parse_gemspec(data)
            result.warnings.extend(f"gem: {spec_path}: {w}" for w in warnings)
            if spec is None:
                continue
            home, _, rest = spec_path.rpartition("/specifications/")
            claimed: list[str] = [spec_path]
            if "/" not in rest:  # not specifications/default/
                full_name = rest.removesuffix(".gemspec")
                gem_dir = f"{home}/gems/{full_name}"
                claimed.extend(owned.get((home, full_name), ()))
                claimed.extend(join_path(gem_dir, f) for f in spec.files)
            result.packages.append(
                Package(
                    ecosystem="gem",
                    name=spec.name,
                    version=spec.version,
                    purl=make_purl("gem", spec.name, spec.version),
                    files=tuple(dict.fromkeys(claimed)),
                    dependencies=spec.dependencies,
                    evidence=(spec_path,),
                )
            )
        return result
