"""Budget and settings shared by the fuzz tests (CI: small; tools/fuzz_campaign.py: large)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

EXAMPLES = int(os.environ.get("IMGSCOPE_FUZZ_EXAMPLES", "120"))


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    """Under CI hypothesis' "ci" profile derandomizes: the CI fuzzes the same inputs every
    run (stable), while tools/fuzz_campaign.py explores with fresh seeds."""
    db = os.environ.get("IMGSCOPE_FUZZ_DATABASE")
    return settings(
        max_examples=examples,
        deadline=None,  # guard.py enforces a real per-input deadline (hypothesis' can't stop)
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        **({"database": DirectoryBasedExampleDatabase(db)} if db else {}),
    )
