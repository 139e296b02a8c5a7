"""Recommendations (imgscope/analyze/recommend.py) and the Dockerfile sketch
(imgscope/analyze/dockerfile.py) on generated images: bytes from the files the test wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildgen import (
    APT_CACHE,
    APT_LISTS,
    BASE_NAME,
    BIG,
    BUILD_RUN,
    HELLO_C,
    INSTALL_RUN,
    PIP_CACHE,
    c_image,
    needs_host_toolchain,
)
from conftest import fixture_build as fb

from imgscope.analyze.dockerfile import (
    clean_instruction,
    collapse_spaces,
    find_base,
    install_line,
    parse_instruction,
    slim_base,
)
from imgscope.api import analyze
from imgscope.model import HistoryItem, ImageConfig

# -- history back to Dockerfile lines -------------------------------------------------------------


@pytest.mark.parametrize(("created_by", "line"), [
    ("/bin/sh -c #(nop) ENV A=b", "ENV A=b"),
    ('/bin/sh -c #(nop)  CMD ["bash"]', 'CMD ["bash"]'),
    ("/bin/sh -c apt-get update && apt-get install -y gcc", "RUN apt-get update && apt-get "
                                                            "install -y gcc"),
    ("RUN /bin/sh -c make -j4 # buildkit", "RUN make -j4"),
    ("RUN |2 VERSION=1 TARGET=x /bin/sh -c make VERSION=$VERSION # buildkit",
     "RUN make VERSION=$VERSION"),
    ("|1 X=1 /bin/sh -c echo $X", "RUN echo $X"),
    ("COPY hello.c /src/ # buildkit", "COPY hello.c /src/"),
    ("WORKDIR /app", "WORKDIR /app"),
    ("/bin/sh -c pip install a     && pip install b", "RUN pip install a && pip install b"),
    ("", None),
])
def test_clean_instruction(created_by: str, line: str | None) -> None:
    assert clean_instruction(created_by) == line


def test_hashed_copies_are_guessed_and_said_so() -> None:
    file_copy = parse_instruction(
        3, "/bin/sh -c #(nop) COPY file:ed4c4da943ad6687 in /src/hello.c ")
    assert (file_copy.text, file_copy.guessed) == ("COPY hello.c /src/hello.c", True)
    assert "file:ed4c4da943ad" in file_copy.note
    assert parse_instruction(0, "/bin/sh -c #(nop) COPY dir:3676915347657869 in /src/ext "
                             ).text == "COPY ext /src/ext"
    assert parse_instruction(0, "/bin/sh -c #(nop) COPY multi:991496dcc799aa in /src/ "
                             ).text == "COPY . /src/"
    assert parse_instruction(0, "EXPOSE map[8080/tcp:{} 9090/tcp:{}]").text == \
        "EXPOSE 8080/tcp 9090/tcp"


def test_collapse_spaces_keeps_quoted_text() -> None:
    assert collapse_spaces('RUN a     b "x   y" \'p  q\'') == 'RUN a b "x   y" \'p  q\''


def _config(history: list[HistoryItem]) -> ImageConfig:
    return ImageConfig(None, None, None, None, None, (), None, None, (), (), None, (),
                       tuple(history))


def test_find_base_from_buildah_comment() -> None:
    history = [HistoryItem("2024-01-01T00:00:00Z", "/bin/sh -c #(nop) ADD file:a in /", False),
               HistoryItem("2024-01-01T00:00:00Z", "/bin/sh -c #(nop) CMD [\"bash\"]", True),
               HistoryItem("2024-02-01T00:00:00Z", "/bin/sh -c #(nop) WORKDIR /src", True,
                           "FROM docker.io/library/debian:bookworm"),
               HistoryItem("2024-02-01T00:00:01Z", "/bin/sh -c make", False, "FROM 1b05bc87d5d5")]
    base = find_base(_config(history), 2)
    assert (base.history_index, base.layers, base.name) == (2, 1,
                                                          "docker.io/library/debian:bookworm")


def test_find_base_from_a_buildkit_time_gap() -> None:
    kit = "buildkit.dockerfile.v0"
    history = [HistoryItem("2024-01-01T00:00:00Z", "ADD rootfs.tar.xz / # buildkit", False, kit),
               HistoryItem("2024-01-01T00:00:01Z", "RUN /bin/sh -c apt-get update # buildkit",
                           False, kit),
               HistoryItem("2024-03-05T10:00:00.123456789Z", "WORKDIR /app", True, kit),
               HistoryItem("2024-03-05T10:00:09Z", "RUN /bin/sh -c make # buildkit", False, kit)]
    base = find_base(_config(history), 3)
    assert (base.history_index, base.layers, base.name, base.how) == (
        2, 2, None, "time gap in the history")


def test_slim_bases_and_install_lines() -> None:
    assert slim_base({"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}) == (
        "debian:bookworm-slim", "apt")
    assert slim_base({"ID": "alpine", "VERSION_ID": "3.19.1"}) == ("alpine:3.19", "apk")
    assert slim_base({"ID": "ubuntu", "VERSION_ID": "22.04"}) == ("ubuntu:22.04", "apt")
    assert install_line("apt", ["python3"]) == (
        "RUN apt-get update && apt-get install -y --no-install-recommends python3 && "
        "apt-get clean && rm -rf /var/lib/apt/lists/*")
    assert install_line("apk", ["python3"]) == "RUN apk add --no-cache python3"
    assert install_line("apt", []) is None


# -- the C image --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_built(tmp_path_factory: pytest.TempPathFactory):
    return c_image(tmp_path_factory.mktemp("rec-image"))


@pytest.fixture(scope="module")
def c_analysis(c_built):
    return analyze(c_built.path)


def recs_by_kind(analysis) -> dict[str, object]:
    out: dict[str, object] = {}
    for r in analysis.extras.recommendations:
        out.setdefault(r.kind, r)
    return out


BUILD_PACKAGES = ("build-essential", "gcc", "gcc-12", "cpp", "cpp-12", "libisl23", "binutils",
                  "binutils-x86-64-linux-gnu", "make", "libc6-dev", "linux-libc-dev",
                  "dpkg-dev", "perl", "fakeroot", "zlib1g-dev", "zlib1g")


@needs_host_toolchain
def test_ranked_and_cumulative(c_analysis) -> None:
    recs = c_analysis.extras.recommendations
    image = c_analysis.summary.shipped_bytes
    assert recs[0].kind == "multi-stage"
    size = image
    for r in recs:
        assert 0 <= r.bytes_saved <= r.bytes_alone
        size -= r.bytes_saved
        assert r.size_after == size
    gains = [r.bytes_saved for r in recs]
    assert gains == sorted(gains, reverse=True)
    assert c_analysis.extras.advice.image_bytes == image


@needs_host_toolchain
def test_cheap_fixes_alone(c_built, c_analysis) -> None:
    recs = recs_by_kind(c_analysis)
    purge = recs["purge-build-tools"]
    assert purge.bytes_alone == c_built.removed(*BUILD_PACKAGES)
    assert purge.layer == 1 and purge.instruction == f"RUN {INSTALL_RUN}"
    assert purge.dockerfile == (
        f"RUN {INSTALL_RUN} \\\n    && {BUILD_RUN} \\\n"
        "    && apt-get purge -y --auto-remove build-essential zlib1g-dev\n")
    assert "deb/libc6:amd64@1.0-1" not in purge.packages

    caches = [r for r in c_analysis.extras.recommendations if r.kind == "clean-cache"]
    apt = next(r for r in caches if "apt" in r.title)
    assert apt.bytes_alone == sum(APT_LISTS.values()) + sum(APT_CACHE.values())
    assert apt.title == "Clean apt's lists and cache in layer 1's RUN"
    assert apt.dockerfile.endswith("&& apt-get clean && rm -rf /var/lib/apt/lists/*\n")
    pip = next(r for r in caches if "pip" in r.title)
    assert pip.bytes_alone == sum(PIP_CACHE.values()) and pip.layer == 3
    assert "pip install --no-cache-dir --no-binary six six" in pip.dockerfile

    recommends = recs["no-install-recommends"]
    assert recommends.bytes_alone == c_built.removed("fakeroot")
    assert recommends.packages == ("deb/fakeroot:amd64@1.0-1",)
    assert "apt-get install --no-install-recommends -y" in recommends.dockerfile

    same = recs["same-layer"]
    assert same.bytes_alone == BIG
    assert same.dockerfile == ("RUN dd if=/dev/urandom of=/tmp/big bs=1k count=64 \\\n"
                               "    && rm /tmp/big\n")
    assert "layer 4" in same.evidence[0] and "layer 5" in same.evidence[0]

    strip = recs["strip"]
    assert strip.bytes_alone == pytest.approx(c_built.strip_savings, rel=0.01)
    assert strip.dockerfile == (f"RUN {BUILD_RUN} \\\n"
                                "    && strip --strip-unneeded /usr/local/bin/hello\n")
    leftovers = recs["leftovers"]
    assert leftovers.bytes_alone == len(HELLO_C) + len(c_built.hello_o)


@needs_host_toolchain
def test_sketch_default_base(c_analysis) -> None:
    multi = recs_by_kind(c_analysis)["multi-stage"]
    lines = multi.dockerfile.splitlines()
    assert lines[2] == f"FROM {BASE_NAME} AS builder"
    assert f"RUN {INSTALL_RUN}" in lines
    copy = lines.index("COPY hello.c /src/hello.c")
    assert lines[copy - 1].startswith("# imgscope: the history records only a content hash")
    assert f"RUN {BUILD_RUN}" in lines
    assert "FROM gcr.io/distroless/cc-debian12" in lines
    assert "COPY --from=builder /usr/local/bin/hello /usr/local/bin/hello" in lines
    assert lines[-1] == 'CMD ["/usr/local/bin/hello"]'
    assert not any(line.startswith("RUN apt-get") for line in
                   lines[lines.index("FROM gcr.io/distroless/cc-debian12"):])
    # what distroless/cc stands for in the estimate is said, with its bytes
    assert any(e.startswith("size estimate: gcr.io/distroless/cc-debian12 counted as this "
                            "image's copies of base-files, ca-certificates, gcc-12-base, libc6, "
                            "libgcc-s1 (") for e in multi.evidence)


@needs_host_toolchain
def test_sketch_on_the_images_own_base_predicts_exactly(c_built) -> None:
    analysis = analyze(c_built.path, runtime_base=BASE_NAME)
    multi = recs_by_kind(analysis)["multi-stage"]
    base_bytes = analysis.stats[0].shipped_bytes
    assert multi.size_after == base_bytes + len(c_built.hello)
    assert analysis.extras.advice.runtime_base.kind == "same-as-base"
    assert f"FROM {BASE_NAME}" in multi.dockerfile.splitlines()
    scratch = analyze(c_built.path, runtime_base="scratch")
    assert recs_by_kind(scratch)["multi-stage"].size_after == len(c_built.hello)


@needs_host_toolchain
def test_no_advice_without_build_tools(tmp_path: Path) -> None:
    spec = fb.ImageSpec(layers=[fb.LayerSpec([fb.file("app/data.txt", b"x" * 100)])],
                        cmd=["/app/data.txt"])
    analysis = analyze(fb.write_image(tmp_path / "plain.tar", spec, "docker"))
    assert analysis.extras.findings == []
    assert analysis.extras.recommendations == []
