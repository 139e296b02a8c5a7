"""The Python the benchmarks run imgscope with: a virtual environment as a user's install has.

Not this shell's interpreter: here `python` starts in 75 ms against 16 ms without its `site`
hooks, and two of those hooks are not a user's. The editable install's import finder
(`pip install -e`, ~20 ms on every start) and this sandbox's certifi hook (~13 ms, an
`_sandboxing_egress_ca.pth`) would be timed as imgscope's. The venv in bench/out/venv has
imgscope's dependencies installed by pip (from pyproject.toml) and finds the checkout through a
plain path line in a .pth file (no import at start-up), so the measured code is the working tree
and `site` does what it does on a user's machine. Bytecode is compiled first, as `pip install`
does for an installed package.
"""

from __future__ import annotations

import compileall
import hashlib
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "bench" / "out" / "venv"


def dependencies() -> list[str]:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # 3.10: the installed project's metadata says the same
        from importlib.metadata import requires

        return [r for r in requires("imgscope") or [] if "extra ==" not in r]
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def python() -> str:
    """The venv's interpreter, creating or updating the venv when pyproject's dependencies
    changed; falls back to this interpreter (and says so) when the venv cannot be built."""
    deps = dependencies()
    stamp = hashlib.sha256("\n".join(deps).encode()).hexdigest()
    marker = VENV / "imgscope-deps.sha256"
    exe = VENV / "bin" / "python"
    try:
        if not exe.exists() or not marker.exists() or marker.read_text() != stamp:
            print(f"building {VENV.relative_to(REPO)} (imgscope's dependencies, once)")
            venv.EnvBuilder(clear=True, with_pip=True).create(VENV)
            subprocess.run([str(exe), "-m", "pip", "install", "-q", *deps], check=True)
            marker.write_text(stamp)
        site = subprocess.run(
            [str(exe), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip()
        (Path(site) / "imgscope-checkout.pth").write_text(f"{REPO}\n")
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"cannot build the bench venv ({exc}): timing {sys.executable} as it is")
        return sys.executable
    compileall.compile_dir(REPO / "imgscope", quiet=1)
    return str(exe)
