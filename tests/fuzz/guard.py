"""Run one fuzz input under a deadline and a memory ceiling; classify what came out.

The contract every target checks: imgscope either succeeds or raises an ImgscopeError (the
CLI: exit 2 with one `imgscope: error:` line). Anything else is a finding: another exception,
running past the deadline (a hang), or hitting the memory ceiling (unbounded memory).
"""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Callable, Iterator
from typing import TypeVar

from imgscope.errors import ImgscopeError

T = TypeVar("T")
DEADLINE = 10.0  # seconds per input; inputs are KBs, so anything near this is a hang
MEMORY_HEADROOM = 1536 << 20  # address space allowed beyond what the process already maps


class Hang(BaseException):
    """Raised by the deadline alarm; BaseException so no `except Exception` can swallow it."""


class Finding(AssertionError):
    """An outcome the contract forbids; the message says which and for what input."""


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[0])
    return pages * resource.getpagesize()


@contextlib.contextmanager
def memory_ceiling(headroom: int = MEMORY_HEADROOM) -> Iterator[None]:
    """Cap the address space for the duration (soft limit only, restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _mapped_bytes() + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def guarded(fn: Callable[[], T], what: str, seconds: float = DEADLINE) -> T | ImgscopeError:
    """fn() under the contract: its result, or the ImgscopeError it raised; else Finding."""
    try:
        with deadline(seconds):
            return fn()
    except ImgscopeError as exc:
        message = str(exc)
        if "\n" in message or not message.strip():
            raise Finding(f"{what}: ImgscopeError message is not one line: {message!r}") from exc
        return exc
    except Hang:
        raise Finding(f"{what}: no answer within {seconds}s (hang)") from None
    except MemoryError as exc:
        raise Finding(f"{what}: MemoryError (unbounded memory)") from exc
    except RecursionError as exc:
        raise Finding(f"{what}: RecursionError") from exc
    except Exception as exc:
        raise Finding(f"{what}: {type(exc).__name__}: {exc}") from exc
