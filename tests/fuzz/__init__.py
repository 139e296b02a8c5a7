"""Fuzz targets: mutated images, layer tars and compressed streams; only ImgscopeError may
come out. The seeds and image writers are shared with tests/differential."""

import sys
from pathlib import Path

# `differential` is imported as a top-level package whatever pytest's rootdir handling does
_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
