"""The command line on broken inputs: exit 0, or exit 2 with exactly one `imgscope: error:`
line; never a traceback or exit 3 (internal error)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from differential.oci import LayerBlob
from hypothesis import given
from hypothesis import strategies as st

from .config import fuzz_settings
from .inputs import SMALL_STACK, byte_mutations, write_docker_archive, write_image
from .targets import cli_in_process, cli_subprocess

LAYERS = [LayerBlob.plain(t) for t in SMALL_STACK.tar_blobs()]


def _image_tar(tmp: Path) -> bytes:
    return write_docker_archive(tmp / "seed.tar", [x.blob for x in LAYERS]).read_bytes()


@fuzz_settings()
@given(data=st.data(), command=st.sampled_from((["ls", "--format", "json"],
                                                ["inspect", "--format", "json"],
                                                ["ls", "--layer", "1", "--format", "json"],
                                                ["inspect"])))
def test_mutated_image_tar_through_main(data: st.DataObject, command: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seed = _image_tar(Path(tmp))
        path = Path(tmp) / "image.tar"
        path.write_bytes(data.draw(byte_mutations(seed, max_ops=3), label="image tar"))
        cli_in_process([command[0], str(path), *command[1:]], f"imgscope {command[0]}")


def test_real_process_exit_codes() -> None:
    """A few inputs through a real `python -m imgscope`: what a user's shell sees."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        layout = write_image(tmp / "layout", LAYERS)
        seed = _image_tar(tmp)
        (tmp / "truncated.tar").write_bytes(seed[: len(seed) // 2])
        (tmp / "garbage").write_bytes(b"\x1f\x8b not really gzip")
        (layout / "index.json").write_bytes(b'{"manifests": [')  # now broken JSON
        cases = {
            "truncated.tar": 2, "garbage": 2, "layout": 2, "missing-file": 2,
        }
        for name, expected in cases.items():
            status = cli_subprocess(["ls", str(tmp / name), "--format", "json"], name)
            assert status == expected, name
        good = write_image(tmp / "good", LAYERS)
        assert cli_subprocess(["ls", str(good), "--format", "json"], "good layout") == 0
