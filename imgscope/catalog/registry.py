"""Every cataloger, so the core can union their content patterns and run them in one place."""

from __future__ import annotations

from imgscope.catalog.apk import ApkCataloger
from imgscope.catalog.base import Cataloger
from imgscope.catalog.dpkg import DpkgCataloger
from imgscope.catalog.gem import GemCataloger
from imgscope.catalog.golang import GoBinaryCataloger
from imgscope.catalog.java import JavaCataloger
from imgscope.catalog.npm import NpmCataloger
from imgscope.catalog.python import PythonCataloger
from imgscope.catalog.rpm import RpmCataloger
from imgscope.catalog.rust import RustBinaryCataloger


def all_catalogers() -> list[Cataloger]:
    """One fresh instance of each cataloger, OS package databases first."""
    return [
        DpkgCataloger(),
        ApkCataloger(),
        RpmCataloger(),
        PythonCataloger(),
        NpmCataloger(),
        GemCataloger(),
        JavaCataloger(),
        GoBinaryCataloger(),
        RustBinaryCataloger(),
    ]
