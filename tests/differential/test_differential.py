"""imgscope's merged filesystem against umoci's unpacked rootfs, on generated layer stacks.

CI runs a fixed seed (the same stacks every time) and a batch of fresh ones; both sizes can be
raised with IMGSCOPE_DIFF_FIXED / IMGSCOPE_DIFF_FRESH. tools/fuzz_campaign.py runs long
campaigns. Stacks umoci rejects are counted by reason (printed at the end of the run); on
those imgscope must still finish or fail with its own error.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, event, given, seed, settings

from .conftest import DiffStats
from .harness import run_stack
from .stacks import Stack, layer_stacks

CI_SEED = 20241127
FIXED_EXAMPLES = int(os.environ.get("IMGSCOPE_DIFF_FIXED", "150"))
FRESH_EXAMPLES = int(os.environ.get("IMGSCOPE_DIFF_FRESH", "250"))
SETTINGS = {
    "deadline": None,  # umoci is a subprocess: its start-up time varies with machine load
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}


def check(stack: Stack, stats: DiffStats) -> None:
    out = run_stack(stack)
    if out.rejected is not None:
        stats.reject(out.rejected.reason, out.rejected.detail)
        if out.imgscope_error is not None:
            stats.imgscope_refused[type(out.imgscope_error).__name__] += 1
        event(f"umoci rejected: {out.rejected.reason}")
        return
    stats.compared += 1
    event("compared")
    assert not out.problems, (
        "imgscope and umoci disagree:\n" + "\n".join(out.problems) + "\n\n" + stack.describe()
    )


@pytest.mark.realimage
@pytest.mark.usefixtures("need_umoci")
@seed(CI_SEED)
@settings(max_examples=FIXED_EXAMPLES, database=None, **SETTINGS)
@given(layer_stacks())
def test_fixed_seed_matches_umoci(diff_stats: DiffStats, stack: Stack) -> None:
    check(stack, diff_stats)


@pytest.mark.realimage
@pytest.mark.usefixtures("need_umoci")
# derandomize=False: hypothesis' "ci" profile (loaded when CI is set) would make these the same
# stacks on every run; they are meant to be new ones each time
@settings(max_examples=FRESH_EXAMPLES, derandomize=False, **SETTINGS)
@given(layer_stacks())
def test_fresh_stacks_match_umoci(diff_stats: DiffStats, stack: Stack) -> None:
    check(stack, diff_stats)
