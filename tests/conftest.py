"""Shared test plumbing: the project on sys.path, the fixture builder, CLI runners, the corpus.

Fixtures are built by fixtures/build.py on demand into one session temp dir, so a test run
writes nothing inside the project. The builder is loaded from its file under a unique module
name (the PyPI package "fixtures" must never shadow it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"

if str(ROOT) not in sys.path:  # tests import imgscope from the work tree, installed or not
    sys.path.insert(0, str(ROOT))


def _load_builder():
    spec = importlib.util.spec_from_file_location(
        "imgscope_fixtures_build", ROOT / "fixtures" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


fixture_build = sys.modules.get("imgscope_fixtures_build") or _load_builder()


def pytest_plugin_registered(plugin: object) -> None:
    # Each directory's conftest.py is imported as the module "conftest" and replaces the
    # previous one in sys.modules, so `from conftest import fixture_build` in a test file
    # would depend on collection order. Give every conftest the builder; prefer
    # `import imgscope_fixtures_build as fb`, which does not.
    if getattr(plugin, "__name__", None) == "conftest" and not hasattr(plugin, "fixture_build"):
        plugin.fixture_build = fixture_build  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fixtures")


@pytest.fixture(scope="session")
def built(fixture_dir: Path) -> Callable[[str], Path]:
    """built("formats/oci.tar") -> the path of that fixture, written on first use."""

    def get(name: str) -> Path:
        return fixture_build.build(fixture_dir, name)

    return get


@dataclass
class CliResult:
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `imgscope ARGS...` in process: cli("ls", path, "--format", "json")."""
    from imgscope.cli import main

    def run(*argv: object) -> CliResult:
        capsys.readouterr()
        rc = main([os.fspath(a) if isinstance(a, Path) else str(a) for a in argv])
        captured = capsys.readouterr()
        return CliResult(rc, captured.out, captured.err)

    return run


def run_subprocess(
    argv: Sequence[object], *, stdin_path: Path | None = None, cwd: Path | None = None,
    env: dict[str, str] | None = None, timeout: float = 600,
) -> CliResult:
    """`python -m imgscope ARGS...` in a clean process (stdin, memory, files written)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("IMGSCOPE_DEBUG", None)
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "imgscope", *map(str, argv)], stdin=stdin,
            capture_output=True, cwd=cwd, env=full_env, timeout=timeout, check=False,
        )
    return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus absent (expected at {CORPUS})")
    return CORPUS


@pytest.fixture
def cli_proc() -> Callable[..., CliResult]:
    return run_subprocess
