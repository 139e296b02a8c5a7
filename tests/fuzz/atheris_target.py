"""Coverage-guided fuzzing of the layer reader with atheris (libFuzzer), when installed.

Optional: `pip install atheris` (a manylinux wheel exists for CPython 3.11). Run through
`tools/fuzz_campaign.py atheris --runs N`; it starts from the corpus layer tars and the
generated seeds, and libFuzzer writes any crashing input as crash-<sha1> under --out.
The contract is the same as the hypothesis targets: only ImgscopeError may come out.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path


def run(runs: int, out: Path, max_len: int = 64 * 1024) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    with atheris.instrument_imports():
        from imgscope import api
        from imgscope.archive import layer, streams, tarwalk  # noqa: F401 - instrument them
        from imgscope.errors import ImgscopeError

    def one_input(data: bytes) -> None:
        with contextlib.suppress(ImgscopeError):
            api.replay_layer_tars([io.BytesIO(data)])

    from .inputs import layer_seeds

    corpus = out / "atheris-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(layer_seeds()):
        if len(seed) <= max_len:
            (corpus / f"seed-{i}").write_bytes(seed)
    args = [sys.argv[0], f"-runs={runs}", f"-max_len={max_len}", "-timeout=10",
            "-rss_limit_mb=2048", f"-artifact_prefix={out}/", str(corpus)]
    atheris.Setup(args, one_input)
    atheris.Fuzz()  # exits the process: 0 when the runs are done, non-zero on a crash
    return 0
