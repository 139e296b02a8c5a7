"""The fuzz targets: each takes bytes or a path, runs imgscope under the contract (guard.py),
and returns what it got so a test can check more (listings that must agree)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import event
from hypothesis.errors import InvalidArgument

from imgscope import api
from imgscope.errors import ImgscopeError

from .guard import Finding, guarded, memory_ceiling

Listing = list[tuple[str, str, int, int, int, int, str | None]]


def listing(fs: object) -> Listing:
    """What a merged filesystem shows, hard-link identity aside."""
    out = []
    for path, node in fs.iter_nodes():  # type: ignore[attr-defined]
        kind = getattr(node.type, "value", node.type)
        out.append((path, kind, node.size, node.mode, node.uid, node.gid, node.link_target))
    return out


def _render(analysis: api.Analysis) -> None:
    """The reports must cope with whatever an analysis holds (odd config strings, etc.)."""
    from imgscope.report import json_report

    json_report.dumps(json_report.inspect_document(analysis))
    json_report.dumps(json_report.ls_document(json_report.ls_entries(analysis.fs), None))


def analyze_image(path: Path, what: str, verify: bool = True) -> Listing | ImgscopeError:
    def run() -> Listing:
        analysis = api.analyze(os.fspath(path), verify=verify)
        _render(analysis)
        return listing(analysis.fs)

    with memory_ceiling():
        return _tally(guarded(run, what))


def _tally(result: Listing | ImgscopeError) -> Listing | ImgscopeError:
    """Count outcomes (pytest --hypothesis-show-statistics): a target that only ever errors
    early is not testing much."""
    with contextlib.suppress(InvalidArgument):  # outside a hypothesis test: no statistics
        event("ok" if not isinstance(result, ImgscopeError) else type(result).__name__)
    return result


def replay_path(path: Path, what: str) -> Listing | ImgscopeError:
    with memory_ceiling():
        return _tally(
            guarded(lambda: listing(api.replay_layer_tars([os.fspath(path)]).fs), what))


def replay_stream(data: bytes, what: str) -> Listing | ImgscopeError:
    with memory_ceiling():
        return _tally(
            guarded(lambda: listing(api.replay_layer_tars([io.BytesIO(data)]).fs), what))


def same_outcome(a: Listing | ImgscopeError, b: Listing | ImgscopeError, what: str) -> None:
    """Two ways of reading the same bytes must agree: both errors, or equal listings."""
    if isinstance(a, ImgscopeError) != isinstance(b, ImgscopeError):
        raise Finding(f"{what}: one reading failed, the other did not: {a!r:.300} / {b!r:.300}")
    if not isinstance(a, ImgscopeError) and a != b:
        raise Finding(f"{what}: listings differ:\n{a!r:.600}\n{b!r:.600}")


def cli_in_process(args: list[str], what: str) -> int:
    """`imgscope ARGS` through cli.main: exit 0, or 2 with one `imgscope: error:` line."""
    from imgscope import cli

    out, err = io.StringIO(), io.StringIO()
    with memory_ceiling(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = guarded(lambda: cli.main(args), what)
    check_cli(status, err.getvalue(), what)
    return status  # type: ignore[return-value]


def cli_subprocess(args: list[str], what: str, timeout: float = 60) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "imgscope", *args], capture_output=True, text=True,
        timeout=timeout, env={k: v for k, v in os.environ.items() if k != "IMGSCOPE_DEBUG"},
    )
    check_cli(proc.returncode, proc.stderr, what)
    return proc.returncode


def check_cli(status: object, stderr: str, what: str) -> None:
    lines = stderr.splitlines()
    if status == 0:
        return
    if status != 2:
        raise Finding(f"{what}: exit {status}: {stderr.strip()[:400]}")
    errors = [line for line in lines if line.startswith("imgscope: error: ")]
    if len(errors) != 1 or len(lines) != 1:
        raise Finding(f"{what}: exit 2 must print one 'imgscope: error:' line, got {lines!r}")
