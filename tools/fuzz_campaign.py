#!/usr/bin/env python3
"""Long differential and fuzzing campaigns (the CI runs the same targets, briefly).

    python tools/fuzz_campaign.py differential --examples 20000 [--workers 2] [--seed N]
    python tools/fuzz_campaign.py fuzz --examples 5000 [--target all|json|tar|compression|...]
    python tools/fuzz_campaign.py atheris --runs 1000000   # optional: pip install atheris

`differential` compares imgscope's merged filesystem with `umoci raw unpack` (root and umoci
needed) and keeps going after a discrepancy: it prints, per distinct kind of difference, the
smallest stack that showed it, ready to paste into tests/differential/test_regressions.py.
`fuzz` feeds mutated images, layer tars and compressed streams to imgscope and reports every
outcome other than success or an ImgscopeError (crash, hang past the deadline, memory error);
hypothesis' example database under --out replays each failure on the next run. `atheris`
fuzzes the layer reader guided by coverage. Exit status: 0 clean, 1 something found.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _signature(problem: str) -> str:
    """A discrepancy's kind without its paths and values: groups equal bugs together."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"|/[^\s:,\]]*", "P", problem)
    return re.sub(r"\d+", "N", text)


def _differential_worker(args: tuple[int, int]) -> dict:
    worker_seed, examples = args
    from differential.harness import run_stack
    from differential.stacks import Stack, layer_stacks
    from hypothesis import HealthCheck, given, seed, settings

    found: dict[str, tuple[int, str, list[str]]] = {}
    rejected: Counter[str] = Counter()
    counts = Counter()

    @seed(worker_seed)
    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(layer_stacks(max_layers=5, max_ops=10))
    def run(stack: Stack) -> None:
        try:
            out = run_stack(stack)
        except Exception as exc:  # a crash of imgscope: a finding like any other
            problems = [f"imgscope crashed: {type(exc).__name__}: {exc}"]
        else:
            if out.rejected is not None:
                rejected[out.rejected.reason] += 1
                return
            problems = out.problems
        counts["compared" if not problems else "differ"] += 1
        if problems:
            text = stack.describe()
            key = _signature(problems[0])
            if key not in found or len(text) < found[key][0]:
                found[key] = (len(text), text, problems)

    run()
    return {"found": found, "rejected": rejected, "counts": counts}


def differential(examples: int, workers: int, base_seed: int) -> int:
    from differential.rootfs import umoci_unavailable

    why = umoci_unavailable()
    if why:
        print(f"cannot run the differential campaign: {why}", file=sys.stderr)
        return 2
    per = max(1, examples // workers)
    started = time.monotonic()
    with multiprocessing.Pool(workers) as pool:
        results = pool.map(_differential_worker, [(base_seed + i, per) for i in range(workers)])
    found: dict[str, tuple[int, str, list[str]]] = {}
    rejected: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for res in results:
        rejected.update(res["rejected"])
        counts.update(res["counts"])
        for key, value in res["found"].items():
            if key not in found or value[0] < found[key][0]:
                found[key] = value
    total = sum(counts.values()) + sum(rejected.values())
    print(f"{total} stacks in {time.monotonic() - started:.0f}s: {counts['compared']} agree, "
          f"{counts['differ']} differ, {sum(rejected.values())} rejected by umoci")
    for reason, n in rejected.most_common():
        print(f"  umoci rejected {n} x {reason}")
    for key, (_, text, problems) in sorted(found.items()):
        print("=" * 78)
        print(f"kind: {key}")
        print("\n".join(problems[:12]))
        print(text)
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    diff = sub.add_parser("differential", help="imgscope vs umoci on generated layer stacks")
    diff.add_argument("--examples", type=int, default=5000)
    diff.add_argument("--workers", type=int, default=2)
    diff.add_argument("--seed", type=int, default=int(time.time()))
    fuzz = sub.add_parser("fuzz", help="mutated inputs: only ImgscopeError may come out")
    fuzz.add_argument("--examples", type=int, default=2000, help="per target")
    fuzz.add_argument("--target", default="all")
    fuzz.add_argument("--seed", type=int, default=int(time.time()))
    fuzz.add_argument("--out", type=Path, default=ROOT / "fuzz-findings")
    ath = sub.add_parser("atheris", help="coverage-guided layer reader fuzzing (needs atheris)")
    ath.add_argument("--runs", type=int, default=100_000)
    ath.add_argument("--out", type=Path, default=ROOT / "fuzz-findings")
    args = parser.parse_args(argv)
    if args.mode == "atheris":
        from fuzz.atheris_target import run

        return run(args.runs, args.out)
    if args.mode == "differential":
        print(f"seed {args.seed}, {args.workers} workers")
        return differential(args.examples, args.workers, args.seed)
    from fuzz.campaign import run_campaign

    return run_campaign(args.examples, args.target, args.seed, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
