"""How paths and sizes are shown: the one place that turns surrogate-escaped names to text."""

from __future__ import annotations

import base64
import stat


def display(path: str) -> str:
    """Printable text: bytes that are not UTF-8 become \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def raw_b64(path: str) -> str | None:
    """base64 of the exact bytes, only for names that are not valid UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return base64.b64encode(path.encode("utf-8", "surrogateescape")).decode("ascii")
    return None


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


_TYPE_CHAR = {"file": "-", "dir": "d", "symlink": "l", "char": "c", "block": "b", "fifo": "p",
              "hardlink": "h"}


def mode_string(type_name: str, mode: int) -> str:
    return _TYPE_CHAR.get(type_name, "?") + stat.filemode(mode)[1:]
