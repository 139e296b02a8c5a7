"""Dockerfile lines back from an image's history, where the base image ends, and the smaller
base a runtime stage could use.

The history keeps each instruction as the builder recorded it: the classic builder and
buildah as `/bin/sh -c #(nop) ENV A=b` or `/bin/sh -c apt-get ...`, BuildKit as
`RUN /bin/sh -c apt-get ... # buildkit`. A COPY's sources are often only a content hash
(`COPY file:ed4c... in /src/hello.c`); the sketch then guesses them and says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from imgscope.model import HistoryItem, ImageConfig

_NOP = "#(nop)"
_SHELL_PREFIXES = ("/bin/sh -c ", "/bin/bash -c ", "/bin/sh -o pipefail -c ",
                   "/bin/bash -o pipefail -c ")
_KEYWORDS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})
# `|2 A=1 B=2 /bin/sh -c ...`: the build args a RUN saw, recorded before its command.
_RUN_ARGS = re.compile(r"^\|(\d+)\s+")
# COPY/ADD as the classic builder and buildah record them: a content hash, then "in DEST".
_HASHED_COPY = re.compile(
    r"^(COPY|ADD)\s+(?:--\S+\s+)*(file|dir|multi):([0-9a-f]{8,64})\s+in\s+(\S+)")
_ID_LIKE = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")
# The first history entry of a rootfs image (docker official images, debootstrap imports).
_ROOTFS_ADD = re.compile(r"^ADD\s+(?:file:[0-9a-f]+|[\w.-]+\.tar(?:\.\w+)?)\s+(?:in\s+)?/\s*$")
_BUILDKIT = "buildkit.dockerfile.v0"
_GAP_SECONDS = 3600  # a base image's last entry and a child build's first are hours apart


@dataclass(frozen=True, slots=True)
class Instruction:
    """One history entry as a Dockerfile line."""

    history_index: int
    keyword: str  # "RUN", "COPY", "ENV", ...
    text: str  # the whole line, "RUN apt-get update && ..."
    guessed: bool = False  # the sources of a COPY/ADD are a guess (only a hash was recorded)
    note: str = ""  # why it is a guess, for a comment above the line


@dataclass(frozen=True, slots=True)
class BaseImage:
    """Where the image's own build starts: history entries before it came with the base."""

    history_index: int  # first history entry of this image's own build
    layers: int  # layers that came with the base image
    name: str | None  # the base image reference, when the history names it (buildah)
    how: str  # how the boundary was found, for the report


def clean_instruction(created_by: str | None) -> str | None:
    """`/bin/sh -c #(nop) ENV A=b` -> `ENV A=b`; `/bin/sh -c make` -> `RUN make`;
    `RUN /bin/sh -c make # buildkit` -> `RUN make`. None for an empty entry."""
    line = _clean(created_by)
    return collapse_spaces(line) if line else None


def _clean(created_by: str | None) -> str | None:
    if not created_by:
        return None
    text = created_by.strip()
    if text.endswith("# buildkit"):
        text = text[: -len("# buildkit")].rstrip()
    prefix = ""
    if text.startswith("RUN "):
        prefix, text = "RUN ", text[4:].lstrip()
    match = _RUN_ARGS.match(text)
    if match:  # drop the recorded build args: ARG lines in the stage declare them
        text = _drop_words(text[match.end():], int(match.group(1)))
    for shell in _SHELL_PREFIXES:
        if text.startswith(shell):
            text = text[len(shell):].lstrip()
            if text.startswith(_NOP):
                return text[len(_NOP):].strip() or None
            return "RUN " + text.strip()
    if prefix:
        return prefix + text.strip()
    head = text.split(None, 1)[0] if text else ""
    if head.upper() in _KEYWORDS:
        return text
    return "RUN " + text if text else None


def _drop_words(text: str, count: int) -> str:
    parts = text.split(None, count)
    return parts[count] if len(parts) > count else ""


def collapse_spaces(text: str) -> str:
    """Runs of blanks outside quotes become one space: the history keeps the indentation of
    `\\`-continued lines as long gaps."""
    out: list[str] = []
    quote = ""
    blank = False
    for ch in text:
        if quote:
            out.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in " \t":
            if not blank:
                out.append(" ")
            blank = True
            continue
        blank = False
        if ch in "'\"":
            quote = ch
        out.append(ch)
    return "".join(out).strip()


def parse_instruction(index: int, created_by: str | None) -> Instruction | None:
    line = clean_instruction(created_by)
    if line is None:
        return None
    keyword = line.split(None, 1)[0].upper()
    if keyword == "EXPOSE" and "map[" in line:
        # BuildKit writes `EXPOSE map[8080/tcp:{}]`
        ports = re.findall(r"(\d+(?:/\w+)?):\{\}", line)
        line = "EXPOSE " + " ".join(ports)
    match = _HASHED_COPY.match(line)
    if match:
        kind, digest, dest = match.group(2), match.group(3), match.group(4)
        if kind == "file" and not dest.endswith("/") or kind == "dir":
            source = dest.rstrip("/").rpartition("/")[2] or "."
        else:
            source = "."
        note = (f"the history records only a content hash ({kind}:{digest[:12]}) for this "
                f"{match.group(1)}; the source '{source}' is a guess")
        return Instruction(index, match.group(1), f"{match.group(1)} {source} {dest}", True, note)
    return Instruction(index, keyword, line)


def instructions(history: Sequence[HistoryItem], start: int = 0) -> list[Instruction]:
    out = []
    for index in range(start, len(history)):
        item = parse_instruction(index, history[index].created_by)
        if item is not None:
            out.append(item)
    return out


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Python < 3.11 takes at most 6 fractional digits; Go writes 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def find_base(config: ImageConfig, layer_count: int) -> BaseImage:
    """The first history entry of the image's own build, from (in order): buildah's
    `FROM <base>` comment, a gap of over an hour between BuildKit entries, a rootfs ADD
    followed by its CMD; else only layer 0 is taken as the base."""
    history = config.history
    empty = [h.empty_layer for h in history]

    def layers_before(index: int) -> int:
        return sum(1 for e in empty[:index] if not e)

    for i, item in enumerate(history):
        comment = (item.comment or "").strip()
        if comment.startswith("FROM "):
            ref = comment[5:].strip()
            if i == 0:
                continue
            name = None if _ID_LIKE.match(ref) else ref
            return BaseImage(i, layers_before(i), name, "buildah history comment")
    if history:
        times = [_time(h.created) for h in history]
        kit = [i for i, h in enumerate(history) if (h.comment or "") == _BUILDKIT]
        if kit:
            for i in range(len(history) - 1, 0, -1):
                a, b = times[i - 1], times[i]
                if a is not None and b is not None and (b - a).total_seconds() > _GAP_SECONDS:
                    return BaseImage(i, layers_before(i), None, "time gap in the history")
            if kit[0] > 0:
                return BaseImage(kit[0], layers_before(kit[0]), None,
                                 "first BuildKit entry")
        first = clean_instruction(history[0].created_by) or ""
        if _ROOTFS_ADD.match(first):
            end = 1
            while end < len(history) and (clean_instruction(history[end].created_by) or "") \
                    .startswith(("CMD", "LABEL", "ENV", "ARG")) and history[end].empty_layer:
                end += 1
            return BaseImage(end, layers_before(end), None, "rootfs ADD")
    count = 1 if layer_count > 1 else 0
    index = 0
    if history and count:
        seen = 0
        for i, e in enumerate(empty):
            if not e:
                seen += 1
                if seen == count:
                    index = i + 1
                    break
    return BaseImage(index, count, None, "assumed: layer 0")


# -- runtime bases ------------------------------------------------------------------------

# What a distroless image provides (Debian package names), so a closure that needs only
# these runs on it. https://github.com/GoogleContainerTools/distroless/blob/main/base/README.md
DISTROLESS_STATIC = frozenset({"base-files", "netbase", "tzdata", "ca-certificates",
                               "media-types"})
DISTROLESS_BASE = DISTROLESS_STATIC | {"libc6", "libssl3", "openssl", "libc-bin"}
DISTROLESS_CC = DISTROLESS_BASE | {"libgcc-s1", "gcc-12-base", "libstdc++6", "libgomp1",
                                   "gcc-14-base"}


@dataclass(frozen=True, slots=True)
class RuntimeBase:
    """The image a slim runtime stage would start FROM, why it was chosen, and what it has."""

    ref: str  # FROM line value
    kind: str  # "scratch", "distroless-static", "distroless-cc", "slim", "same-as-base"
    reason: str
    provides: frozenset[str] = frozenset()  # package names the base already has
    package_manager: str | None = None  # "apt", "apk", "dnf": how to install more
    shell: bool = True


def slim_base(release: Mapping[str, str]) -> tuple[str, str | None]:
    """A small image of the distribution /etc/os-release names, and its package manager."""
    distro = (release.get("ID") or "").lower()
    version = release.get("VERSION_ID") or ""
    codename = release.get("VERSION_CODENAME") or ""
    if distro == "debian":
        tag = codename or version.split(".")[0] or "stable"
        return f"debian:{tag}-slim", "apt"
    if distro == "ubuntu":
        return f"ubuntu:{version or 'latest'}", "apt"
    if distro == "alpine":
        return f"alpine:{'.'.join(version.split('.')[:2]) or 'latest'}", "apk"
    if distro == "fedora":
        return f"registry.fedoraproject.org/fedora-minimal:{version or 'latest'}", "dnf"
    if distro in ("rhel", "centos", "rocky", "almalinux"):
        major = version.split(".")[0] or "9"
        return f"registry.access.redhat.com/ubi{major}/ubi-minimal", "dnf"
    if distro == "amzn":
        return f"amazonlinux:{version or '2023'}", "dnf"
    if distro in ("wolfi", "chainguard"):
        return "cgr.dev/chainguard/wolfi-base", "apk"
    return "debian:bookworm-slim", "apt"


def distroless_suffix(release: Mapping[str, str]) -> str:
    if (release.get("ID") or "").lower() == "debian" and release.get("VERSION_ID"):
        return f"debian{release['VERSION_ID'].split('.')[0]}"
    return "debian12"


def install_line(manager: str | None, packages: Sequence[str]) -> str | None:
    """One RUN that installs `packages` and leaves no package-manager cache behind."""
    if not packages:
        return None
    names = " ".join(packages)
    if manager == "apt":
        return ("RUN apt-get update && apt-get install -y --no-install-recommends "
                f"{names} && apt-get clean && rm -rf /var/lib/apt/lists/*")
    if manager == "apk":
        return f"RUN apk add --no-cache {names}"
    if manager == "dnf":
        return (f"RUN microdnf install -y --setopt=install_weak_deps=0 {names} "
                "&& microdnf clean all")
    return f"# install: {names}"


def exec_form(argv: Sequence[str]) -> str:
    return json.dumps(list(argv), ensure_ascii=False)


def runtime_config_lines(config: ImageConfig, base_env: Sequence[str] = ()) -> list[str]:
    """ENV, WORKDIR, USER, EXPOSE, ENTRYPOINT, CMD of the image, for the runtime stage."""
    lines = []
    inherited = set(base_env)
    for item in config.env:
        if item in inherited:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            continue
        lines.append(f"ENV {key}={json.dumps(value) if _needs_quotes(value) else value}")
    if config.working_dir:
        lines.append(f"WORKDIR {config.working_dir}")
    if config.user:
        lines.append(f"USER {config.user}")
    if config.exposed_ports:
        lines.append("EXPOSE " + " ".join(config.exposed_ports))
    if config.entrypoint:
        lines.append("ENTRYPOINT " + exec_form(config.entrypoint))
    if config.cmd:
        lines.append("CMD " + exec_form(config.cmd))
    return lines


def _needs_quotes(value: str) -> bool:
    return not value or any(c in value for c in " \t\"'$\\")
