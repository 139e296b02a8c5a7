"""Small helpers the ecosystem catalogers share (purls, os-release, path claims)."""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Iterable, Mapping

from packageurl import PackageURL

from imgscope.catalog.base import FileView

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")

# Symlink hops allowed while resolving one path (the kernel's own limit).
_MAX_LINKS = 40


def make_purl(
    type_: str,
    name: str,
    version: str | None,
    namespace: str | None = None,
    qualifiers: Mapping[str, str | None] | None = None,
) -> str:
    """A package URL, or "" when the parts cannot form one (a purl is a hint, never fatal)."""
    quals = tuple((k, v) for k, v in (qualifiers or {}).items() if v)
    return _purl(type_, name, version or None, namespace or None, quals)


@functools.lru_cache(maxsize=8192)
def _purl(type_: str, name: str, version: str | None, namespace: str | None,
          qualifiers: tuple[tuple[str, str | None], ...]) -> str:
    # Memoised: packageurl takes ~40 us a purl, and the per-layer re-reads of the package
    # databases (attribution.record_layer_changes) meet the same packages again.
    try:
        return PackageURL(
            type=type_,
            namespace=namespace,
            name=name,
            version=version,
            qualifiers=dict(qualifiers) or None,
        ).to_string()
    except ValueError:
        return ""


def decode(data: bytes) -> str:
    """Text of a metadata file: UTF-8, bad bytes replaced (databases are not always clean)."""
    return data.decode("utf-8", errors="replace")


def parse_os_release(data: bytes) -> dict[str, str]:
    """KEY=value lines of an os-release file, quotes removed."""
    out: dict[str, str] = {}
    for line in decode(data).splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


def os_release(files: FileView) -> dict[str, str]:
    for path in OS_RELEASE_PATHS:
        data = files.read(path)
        if data:
            return parse_os_release(data)
    return {}


def distro_qualifier(release: Mapping[str, str]) -> str | None:
    """ "debian-12" as syft and trivy write it in purls, when the image says."""
    distro_id = release.get("ID")
    version = release.get("VERSION_ID")
    if distro_id and version:
        return f"{distro_id}-{version}"
    return None


def join_path(base: str, rel: str) -> str:
    """An absolute, normalised path for ``rel`` inside ``base`` (``..`` stays inside ``/``)."""
    # The usual parts ("/usr/lib/python3/site-packages", "six.py") are plain names already:
    # gluing them is 5x cheaper than normpath, and called for every file a RECORD lists.
    if rel.startswith("/"):
        glued = rel.lstrip("/")
    else:
        inside = base.lstrip("/")
        glued = f"{inside}/{rel}" if inside else rel
    if _only_names(glued):
        return "/" + glued
    joined = posixpath.normpath(posixpath.join("/", base, rel))
    return "/" + joined.lstrip("/")


def _only_names(path: str) -> bool:
    """Every "/"-separated part of a relative path is a name (not "", "." or "..")."""
    wrapped = f"/{path}/"
    return "//" not in wrapped and "/./" not in wrapped and "/../" not in wrapped


def _all_plain(paths: list[str]) -> bool:
    """Every path absolute, on one line, with no empty, "." or ".." directory component (so
    resolving its parent gives the parent itself). Checked on one joined string, not path by
    path: the re-read databases of a layer claim 100k paths."""
    text = "\n" + "\n".join(paths) + "\n"
    return (
        text.count("\n") == len(paths) + 1
        and text.count("\n/") == len(paths)
        and "//" not in text
        and "/./" not in text
        and "/../" not in text
    )


class PathResolver:
    """Maps a claimed path to the path that holds its bytes in the final filesystem.

    Databases name files as the package installed them ("/bin/ls"); after a usr merge the
    bytes live behind a symlinked parent ("/usr/bin/ls"). Parent directories are resolved once
    and cached, so claiming 50k paths costs one dict lookup each. Paths are looked up with
    ``stat`` (no FileInfo copy): a claim list visits every file of every package.
    """

    def __init__(self, files: FileView) -> None:
        self._stat = files.stat
        self._files_only = files.files_only
        self._dirs: dict[str, str] = {"/": "/"}

    def _resolve_dir(self, path: str, depth: int = 0) -> str:
        cached = self._dirs.get(path)
        if cached is not None:
            return cached
        parent, _, leaf = path.rpartition("/")
        real_parent = self._resolve_dir(parent or "/", depth)
        if leaf in ("", ".", ".."):
            real = join_path(real_parent, leaf)
        else:  # the common case needs no normalisation
            real = ("" if real_parent == "/" else real_parent) + "/" + leaf
        facts = self._stat(real)
        if facts is not None and facts.type == "symlink" and facts.link_target \
                and depth < _MAX_LINKS:
            # join_path keeps an absolute target as is and a relative one under the parent
            real = self._resolve_dir(join_path(real_parent, facts.link_target), depth + 1)
        self._dirs[path] = real
        return real

    def resolve(self, path: str) -> str:
        """The path itself when it exists, else its canonical form when that exists."""
        if self._stat(path) is not None:
            return path
        return self._resolve_missing(path)

    def _resolve_missing(self, path: str) -> str:
        parent, _, leaf = path.rpartition("/")
        real_parent = self._resolve_dir(parent or "/")
        if real_parent == (parent or "/"):
            return path  # no symlink on the way: the path is simply missing
        real = real_parent.rstrip("/") + "/" + leaf
        return real if self._stat(real) is not None else path

    def _is_dir_link(self, path: str) -> bool:
        target = self._stat(self._resolve_dir(path))
        return target is not None and target.type == "dir"

    def claims(self, paths: Iterable[str]) -> tuple[str, ...]:
        """Deduplicated non-directory claims, resolved; missing paths are kept as claimed."""
        if self._files_only:
            paths = list(paths)
            if _all_plain(paths):
                # nothing to resolve through and no directory to drop: every claim stays as is
                return tuple(dict.fromkeys(paths))
        out: dict[str, None] = {}
        stat = self._stat
        for path in paths:
            facts = stat(path)
            if facts is None:
                real = self._resolve_missing(path)
                if real != path:
                    path, facts = real, stat(real)
            if facts is not None and (
                facts.type == "dir" or (facts.type == "symlink" and self._is_dir_link(path))
            ):
                continue  # a listed directory, or the symlink a usr-merge put in its place
            out[path] = None
        return tuple(out)
