"""The two sides of a diff, what it can compare, and the layers the two images share.

What reading a pair (imgscope.diff) needs before its first fork and comparing
(imgscope.compare) needs too, kept apart so that the reading does not import the comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

SECTIONS = ("layers", "config", "files", "packages", "findings")
OLD, NEW = "old", "new"


def shared_prefix(old_ids: Sequence[str | None], new_ids: Sequence[str | None]) -> int:
    """How many layers, from the bottom, the two images share (same diff_id, same position)."""
    count = 0
    for a, b in zip(old_ids, new_ids, strict=False):
        if a is None or a != b:
            break
        count += 1
    return count
