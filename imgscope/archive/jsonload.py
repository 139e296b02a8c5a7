"""Bounded JSON loading for manifests, indexes and configs found in untrusted archives."""

from __future__ import annotations

import json
from typing import Any

from imgscope.errors import CorruptInput, LimitExceeded

MAX_JSON_BYTES = 16 * 1024 * 1024  # a config with a long history is ~1 MB; 16 MB is generous
MAX_JSON_DEPTH = 64  # real manifests nest 5 deep


def _depth_ok(text: bytes) -> bool:
    """Reject deep nesting before json.loads recurses on it (it would raise RecursionError)."""
    depth = 0
    in_string = False
    escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def load_json(data: bytes, what: str, expect: type = dict) -> Any:
    """Parse `data` as JSON of type `expect`; any problem is one clear error naming `what`."""
    if len(data) > MAX_JSON_BYTES:
        raise LimitExceeded(f"{what} is {len(data)} bytes, over the {MAX_JSON_BYTES} byte limit")
    # Only scan for nesting when brackets are frequent enough to matter; keeps big configs fast.
    if data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH and not _depth_ok(data):
        raise LimitExceeded(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CorruptInput(f"{what} is not valid JSON ({_short(exc)})") from None
    if not isinstance(value, expect):
        raise CorruptInput(f"{what} is JSON {type(value).__name__}, expected {expect.__name__}")
    return value


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120]


def get_str(obj: dict, key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def get_list(obj: dict, key: str) -> list:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def get_dict(obj: dict, key: str) -> dict:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}
