"""Image index, manifest and config JSON, mutated inside otherwise valid images.

Documents are generated ones or real ones from ../shared/corpus (their references pointed at
this image's blobs first, so only the mutation is wrong). The referring descriptor is fixed up
to the mutated document's digest (or deliberately not), so the mutation reaches the parser
instead of stopping at the digest check.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path

from differential.oci import (
    MANIFEST,
    LayerBlob,
    canonical,
    image_config,
    index_doc,
    manifest_doc,
    sha256,
)
from hypothesis import given
from hypothesis import strategies as st

from imgscope.errors import ImgscopeError

from .config import fuzz_settings
from .inputs import (
    SMALL_STACK,
    json_mutations,
    real_documents,
    write_docker_archive,
    write_image,
)
from .targets import analyze_image

SETTINGS = fuzz_settings()
LAYERS = [LayerBlob.plain(t) for t in SMALL_STACK.tar_blobs()]
DIFF_IDS = [x.diff_id for x in LAYERS]


def _adapted(kind: str, real: dict | None) -> object:
    """The valid document of `kind` for LAYERS; a real one keeps all but its references."""
    config = canonical(image_config(DIFF_IDS))
    manifest = canonical(manifest_doc(config, LAYERS))
    good = {
        "config": image_config(DIFF_IDS),
        "manifest": manifest_doc(config, LAYERS),
        "index": index_doc(manifest, "latest"),
    }[kind]
    if not isinstance(real, dict):
        return good
    doc = json.loads(json.dumps(real))
    if kind == "config":
        rootfs = doc.get("rootfs") if isinstance(doc.get("rootfs"), dict) else {}
        doc["rootfs"] = {**rootfs, "type": "layers", "diff_ids": DIFF_IDS}
    elif kind == "manifest":
        doc["config"], doc["layers"] = good["config"], good["layers"]  # type: ignore[index]
    else:
        doc["manifests"] = good["manifests"]  # type: ignore[index]
    return doc


@st.composite
def mutated_document(draw: st.DrawFn, kind: str) -> tuple[bytes, bool]:
    """(document bytes, whether it is the valid generated document, unmutated)."""
    reals = real_documents().get(kind, ())
    real = draw(st.sampled_from(reals)) if reals and draw(st.booleans()) else None
    doc = _adapted(kind, real)  # type: ignore[arg-type]
    if draw(st.integers(0, 7)) == 0:
        return canonical(doc), real is None  # a real one may be an artifact, a Windows image..
    return draw(json_mutations(doc)), False


def _as_archive(layout: Path) -> Path:
    """The same layout as an oci-archive tar (what `skopeo copy oci-archive:` writes)."""
    out = layout.with_suffix(".tar")
    with tarfile.open(out, "w") as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(layout / name, arcname=name)
    return out


@SETTINGS
@given(
    kind=st.sampled_from(("index", "manifest", "config")),
    data=st.data(),
    fix_digests=st.booleans(),
    archive=st.booleans(),
)
def test_mutated_oci_documents(kind: str, data: st.DataObject, fix_digests: bool,
                               archive: bool) -> None:
    doc, valid = data.draw(mutated_document(kind), label="document")
    with tempfile.TemporaryDirectory() as tmp:
        layout = write_image(Path(tmp) / "image", LAYERS, fix_digests=fix_digests, **{kind: doc})
        target = _as_archive(layout) if archive else layout
        result = analyze_image(target, f"{kind} document {doc[:200]!r}")
    if valid and fix_digests:
        assert not isinstance(result, ImgscopeError), f"a valid image was refused: {result}"


@st.composite
def docker_manifest(draw: st.DrawFn) -> bytes:
    config = canonical(image_config(DIFF_IDS))
    names = [f"{sha256(x.blob).split(':')[1]}/layer.tar" for x in LAYERS]
    good = [{"Config": sha256(config).split(":")[1] + ".json", "RepoTags": ["fuzz:latest"],
             "Layers": names}]
    reals = real_documents().get("docker-manifest", ())
    if reals and draw(st.booleans()):
        real = json.loads(json.dumps(draw(st.sampled_from(reals))))
        real[0].update(good[0])
        good = real
    return draw(json_mutations(good))


@SETTINGS
@given(data=st.data(), which=st.sampled_from(("manifest.json", "config")))
def test_mutated_docker_archive_documents(data: st.DataObject, which: str) -> None:
    tars = [x.blob for x in LAYERS]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.tar"
        if which == "manifest.json":
            write_docker_archive(path, tars, manifest=data.draw(docker_manifest()))
        else:
            # the manifest names the mutated config by its real digest: only content is wrong
            config, _ = data.draw(mutated_document("config"))
            write_docker_archive(path, tars, config=config)
        analyze_image(path, f"docker-archive with a mutated {which}")


def test_valid_generated_images_open() -> None:
    """The fuzz seeds themselves are valid: every form opens and lists the same files."""
    with tempfile.TemporaryDirectory() as tmp:
        layout = write_image(Path(tmp) / "image", LAYERS)
        docker = write_docker_archive(Path(tmp) / "docker.tar", [x.blob for x in LAYERS])
        results = [analyze_image(p, str(p)) for p in (layout, _as_archive(layout), docker)]
    assert not any(isinstance(r, ImgscopeError) for r in results), results
    assert results[0] == results[1] == results[2]
    assert [row[0] for row in results[0]] == ["/a", "/a/h", "/a/l", "/b"]  # type: ignore[index]
    assert MANIFEST in json.dumps(index_doc(b"{}", "x"))
