"""imgscope's own errors: each one ends the command with one clear line and exit status 2."""

from __future__ import annotations


class ImgscopeError(Exception):
    """Bad input or usage. The message is one line a user can act on."""

    exit_status = 2


class NotAnImage(ImgscopeError):
    pass


class CorruptInput(ImgscopeError):
    """Truncated or malformed archive, layer, compression or JSON."""


class MissingBlob(ImgscopeError):
    pass


class UnsafeReference(ImgscopeError):
    """A manifest or in-archive symlink points outside the archive, or loops."""


class DigestMismatch(ImgscopeError):
    pass


class ChoiceRequired(ImgscopeError):
    """Several images or platforms: the user must pick one; the message lists them."""

    def __init__(self, what: str, choices: list[str]) -> None:
        self.choices = choices
        flag = "--image" if what == "image" else "--platform"
        super().__init__(
            f"the input holds {len(choices)} {what}s; choose one with {flag}: " + ", ".join(choices)
        )


class NotRunnable(ImgscopeError):
    """An OCI artifact (Helm chart, attestation...) rather than a container image."""


class LimitExceeded(ImgscopeError):
    """A resource bound (entries, JSON size or depth, decompression ratio) was reached."""
