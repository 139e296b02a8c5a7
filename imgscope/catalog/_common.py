"""Small helpers the ecosystem catalogers share (purls, os-release, path claims)."""

from __future__ import annotations

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
    quals = {k: v for k, v in (qualifiers or {}).items() if v}
    try:
        return PackageURL(
            type=type_,
            namespace=namespace or None,
            name=name,
            version=version or None,
            qualifiers=quals or None,
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
    joined = posixpath.normpath(posixpath.join("/", base, rel))
    return "/" + joined.lstrip("/")


class PathResolver:
    """Maps a claimed path to the path that holds its bytes in the final filesystem.

    Databases name files as the package installed them ("/bin/ls"); after a usr merge the
    bytes live behind a symlinked parent ("/usr/bin/ls"). Parent directories are resolved once
    and cached, so claiming 50k paths costs one dict lookup each.
    """

    def __init__(self, files: FileView) -> None:
        self._files = files
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
        info = self._files.info(real)
        if info is not None and info.type == "symlink" and info.link_target and depth < _MAX_LINKS:
            # join_path keeps an absolute target as is and a relative one under the parent
            real = self._resolve_dir(join_path(real_parent, info.link_target), depth + 1)
        self._dirs[path] = real
        return real

    def resolve(self, path: str) -> str:
        """The path itself when it exists, else its canonical form when that exists."""
        if self._files.info(path) is not None:
            return path
        return self._resolve_missing(path)

    def _resolve_missing(self, path: str) -> str:
        parent, _, leaf = path.rpartition("/")
        real_parent = self._resolve_dir(parent or "/")
        if real_parent == (parent or "/"):
            return path  # no symlink on the way: the path is simply missing
        real = real_parent.rstrip("/") + "/" + leaf
        return real if self._files.info(real) is not None else path

    def _is_dir_link(self, path: str) -> bool:
        target = self._files.info(self._resolve_dir(path))
        return target is not None and target.type == "dir"

    def claims(self, paths: Iterable[str]) -> tuple[str, ...]:
        """Deduplicated non-directory claims, resolved; missing paths are kept as claimed."""
        out: dict[str, None] = {}
        info = self._files.info
        for path in paths:
            item = info(path)
            if item is None:
                real = self._resolve_missing(path)
                if real != path:
                    path, item = real, info(real)
            if item is not None and (
                item.type == "dir" or (item.type == "symlink" and self._is_dir_link(path))
            ):
                continue  # a listed directory, or the symlink a usr-merge put in its place
            out[path] = None
        return tuple(out)
