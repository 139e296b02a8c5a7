"""Wall time and peak RSS of `imgscope diff` against one `inspect` of the larger image.

    python bench/bench_diff.py                  # buildtools -> buildtools-v2, three pairings
    python bench/bench_diff.py --reps 7 --json bench/out/diff.json

The pair shares its base: buildtools-v2 is buildtools plus one RUN (tests/realimages/), so every
layer of buildtools (~800 MB docker-archive, the largest ~620 MB) is a shared layer. The goal:
`diff OLD NEW` costs no more than `inspect NEW`. Measured, as whole processes (see run.py):

- `inspect NEW` (the reference) and `inspect OLD`
- `diff OLD NEW`: the shared layers walked once, the other copy not read (known by diff_id)
- `diff OLD NEW --verify-copies`: the other copy read too (compared or hashed)
- `diff OLD NEW` with reuse_shared=False: every layer of both images walked (what the reuse saves)
- `diff OLD NEW --only files`: no catalogers

for docker-archive on both sides, OCI zstd on both sides, and docker-archive -> OCI zstd.
Repetitions run round-robin after one untimed warm-up each; the table shows medians and the
ratio to `inspect NEW` of the same format. Compare ratios within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
import realimages  # noqa: E402
from installed import python as installed_python  # noqa: E402
from run import warm  # noqa: E402
from tabulate import tabulate  # noqa: E402

OLD, NEW = "buildtools", "buildtools-v2"
PAIRINGS = {"docker": ("docker", "docker"), "zstd": ("zstd", "zstd"), "mixed": ("docker", "zstd")}
# The library call behind `imgscope diff`, with the shared-prefix reuse switched off.
NO_REUSE = (
    "import sys; from imgscope.diff import diff; "
    "from imgscope.report.diff_report import diff_text; "
    "sys.stdout.write(diff_text(diff(sys.argv[1], sys.argv[2], reuse_shared=False)))"
)


def measure(argv: list[str]) -> tuple[float, float, int, int, bytes]:
    """Run ARGV once: (wall s, CPU s of it and its reaped children, peak RSS KiB, exit status,
    stderr tail). CPU seconds say how much work a command is when the machine is shared."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode, err[-300:]


@dataclass
class Case:
    pairing: str
    label: str
    argv: list[str]
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def cases(old: dict[str, Path], new: dict[str, Path], pairings: list[str],
          python: str) -> list[Case]:
    py = [python, "-m", "imgscope"]
    out: list[Case] = []
    for name in pairings:
        fo, fn = PAIRINGS[name]
        a, b = str(old[fo]), str(new[fn])
        out += [
            Case(name, f"inspect new ({fn})", [*py, "inspect", b]),
            Case(name, f"inspect old ({fo})", [*py, "inspect", a]),
            Case(name, "diff", [*py, "diff", a, b]),
            Case(name, "diff --verify-copies", [*py, "diff", a, b, "--verify-copies"]),
            Case(name, "diff, no reuse", [python, "-c", NO_REUSE, a, b]),
            Case(name, "diff --only files", [*py, "diff", a, b, "--only", "files"]),
            Case(name, "inspect new --no-verify", [*py, "inspect", b, "--no-verify"]),
            Case(name, "diff --no-verify", [*py, "diff", a, b, "--no-verify"]),
        ]
    return out


def table(all_cases: list[Case]) -> str:
    rows = [("pairing", "command", "median s", "min s", "x inspect new", "cpu s",
             "cpu x inspect", "peak MiB")]
    for name in dict.fromkeys(c.pairing for c in all_cases):
        group = [c for c in all_cases if c.pairing == name]
        ref = statistics.median(group[0].walls) if group[0].walls else float("nan")
        ref_cpu = statistics.median(group[0].cpus) if group[0].cpus else float("nan")
        for c in group:
            if not c.walls:
                rows.append((name, c.label, "failed", "", "", "", "", ""))
                continue
            med, cpu = statistics.median(c.walls), statistics.median(c.cpus)
            rows.append((name, c.label, f"{med:.2f}", f"{min(c.walls):.2f}", f"{med / ref:.2f}",
                         f"{cpu:.2f}", f"{cpu / ref_cpu:.2f}",
                         f"{statistics.median(c.rss_kib) / 1024:.0f}"))
    return tabulate(rows[1:], headers=rows[0], disable_numparse=True,
                    colalign=("left", "left") + ("right",) * 6)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--pairings", default=",".join(PAIRINGS),
                    help=f"comma-separated, from {','.join(PAIRINGS)}")
    ap.add_argument("--json", type=Path, help="write every sample here")
    args = ap.parse_args(argv)
    reason = realimages.have_tools()
    if reason:
        print(f"cannot build the images: {reason}")
        return 2
    old, new = realimages.ensure_image(OLD), realimages.ensure_image(NEW)
    all_cases = cases(old, new, [p.strip() for p in args.pairings.split(",") if p.strip()],
                      installed_python())
    for path in {*old.values(), *new.values()}:
        warm(path)
    failed = False
    for rep in range(args.reps + 1):  # the first round is the untimed warm-up
        for c in all_cases:
            wall, cpu, rss, status, err = measure(c.argv)
            if status not in (0, 1):
                c.failures.append(err.decode(errors="replace"))
                failed = True
            elif rep:
                c.walls.append(wall)
                c.cpus.append(cpu)
                c.rss_kib.append(rss)
    print(f"{OLD} -> {NEW}, {args.reps} runs each (medians)")
    print(table(all_cases))
    for c in all_cases:
        for failure in c.failures[:1]:
            print(f"FAILED {c.pairing} {c.label}: {failure.strip()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([c.__dict__ for c in all_cases], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
