"""The long fuzz campaign behind `tools/fuzz_campaign.py fuzz`: the CI's fuzz tests, with many
more examples, a chosen seed, and hypothesis' example database kept under --out so that every
failure it finds replays on the next run (and in `pytest tests/fuzz` pointed at that database).
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {
    "json": "test_fuzz_json.py",
    "tar": "test_fuzz_tar.py",
    "compression": "test_fuzz_compression.py",
    "cli": "test_fuzz_cli.py",
    "catalog": "test_fuzz_catalog.py",
}


def run_campaign(examples: int, target: str, seed: int, out: Path) -> int:
    import pytest

    names = list(TARGETS) if target == "all" else target.split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        print(f"unknown target(s) {unknown}; choose from all, {', '.join(TARGETS)}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    os.environ["IMGSCOPE_FUZZ_EXAMPLES"] = str(examples)
    os.environ["IMGSCOPE_FUZZ_DATABASE"] = str(out / "hypothesis-db")
    args = [str(HERE / TARGETS[n]) for n in names]
    args += ["-q", "-p", "no:cacheprovider", f"--hypothesis-seed={seed}",
             "--hypothesis-show-statistics", "-W", "ignore::DeprecationWarning"]
    print(f"fuzz campaign: {examples} examples per test, seed {seed}, targets {names}")
    status = pytest.main(args)
    return 0 if status == 0 else 1
