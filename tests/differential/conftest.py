"""Shared state of the differential run: what umoci rejected, reported at the end."""

from __future__ import annotations

from collections import Counter

import pytest

from .rootfs import umoci_unavailable


class DiffStats:
    """Counts across all examples of a session (module level: hypothesis reruns examples)."""

    def __init__(self) -> None:
        self.compared = 0
        self.rejected: Counter[str] = Counter()
        self.samples: dict[str, str] = {}
        self.imgscope_refused: Counter[str] = Counter()

    def reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self.samples.setdefault(reason, detail)

    def lines(self) -> list[str]:
        total = self.compared + sum(self.rejected.values())
        if not total:
            return []
        out = [
            f"differential: {total} layer stacks, {self.compared} compared with umoci's rootfs, "
            f"{sum(self.rejected.values())} rejected by umoci (imgscope ran on them too)"
        ]
        for reason, n in self.rejected.most_common():
            out.append(f"  umoci rejected {n:4} x {reason}: e.g. {self.samples[reason][:160]}")
        for kind, n in self.imgscope_refused.most_common():
            out.append(f"  imgscope refused {n:4} of those with {kind}")
        return out


STATS = DiffStats()


@pytest.fixture(scope="session")
def diff_stats() -> DiffStats:
    return STATS


@pytest.fixture(scope="session")
def need_umoci() -> None:
    reason = umoci_unavailable()
    if reason:
        pytest.skip(reason)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for line in STATS.lines():
        terminalreporter.write_line(line)
