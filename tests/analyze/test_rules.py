"""The CI gate (imgscope/rules.py) and the `advise` command, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildgen import c_image, needs_host_toolchain
from conftest import fixture_build as fb

from imgscope.errors import ImgscopeError
from imgscope.rules import Rule, parse_fail_on, parse_rule, parse_rules_file


def test_parse_rules() -> None:
    rules = parse_fail_on("build-tools, wasted>50MB,efficiency<0.9,size>=1.5GiB,"
                          "user-wasted-percent>10%,layers>20,dev-files>1kB")
    assert rules == [
        Rule("build-tools", "build-tools", ">", 0, bare=True),
        Rule("wasted>50MB", "wasted", ">", 50_000_000),
        Rule("efficiency<0.9", "efficiency", "<", 0.9),
        Rule("size>=1.5GiB", "size", ">=", 1.5 * 1024**3),
        Rule("user-wasted-percent>10%", "user-wasted-percent", ">", 0.1),
        Rule("layers>20", "layers", ">", 20),
        Rule("dev-files>1kB", "dev-files", ">", 1000),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("bogus", "--fail-on: unknown rule 'bogus'; known: wasted, "),
    ("wasted", "--fail-on: 'wasted' needs a condition, e.g. wasted>50MB"),
    ("wasted>", "--fail-on: cannot read rule 'wasted>'"),
    ("wasted>5XB", "--fail-on: unknown size unit 'XB' in 'wasted>5XB'"),
    ("efficiency<90MB", "--fail-on: efficiency is a ratio: write 0.9 or 90%, not 'MB'"),
    ("layers>3MB", "--fail-on: layers is a count: no unit, got 'MB'"),
    ("wasted>1.2.3MB", "--fail-on: '1.2.3' in 'wasted>1.2.3MB' is not a number"),
])
def test_malformed_rules(text: str, message: str) -> None:
    with pytest.raises(ImgscopeError) as err:
        parse_rule(text)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_rules_file(tmp_path: Path) -> None:
    path = tmp_path / ".imgscope-ci"
    path.write_text("# CI rules\nrules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n"
                    "  highestUserWastedPercent: disabled\n  fail-on: build-tools, unstripped\n"
                    "  fail-on:\n    - package-cache>100MB  # apt leftovers\n    - layers>30\n")
    where = str(path)
    assert parse_rules_file(path) == [
        Rule("efficiency<0.95", "efficiency", "<", 0.95, f"{where}:3"),
        Rule("wasted>20MB", "wasted", ">", 20_000_000, f"{where}:4"),
        Rule("build-tools", "build-tools", ">", 0, f"{where}:6", bare=True),
        Rule("unstripped", "unstripped", ">", 0, f"{where}:6", bare=True),
        Rule("package-cache>100MB", "package-cache", ">", 100_000_000, f"{where}:8"),
        Rule("layers>30", "layers", ">", 30, f"{where}:9"),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("rules:\n  lowestEfficency: 0.9\n", ":2: unknown key 'lowestEfficency'"),
    ("rules:\n  - build-tools\n", ":2: a '- ' item outside a fail-on list"),
    ("rules:\n  highestWastedBytes: lots\n", ":2: cannot read rule 'wasted>lots'"),
    ("just text\n", ":1: expected 'key: value', got 'just text'"),
    ("rules:\n", " has no rules"),
])
def test_malformed_rules_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    with pytest.raises(ImgscopeError) as err:
        parse_rules_file(path)
    assert message in str(err.value)


# -- through the CLI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_built(tmp_path_factory: pytest.TempPathFactory):
    return c_image(tmp_path_factory.mktemp("rules-image"))


@needs_host_toolchain
def test_gate_fails_with_the_rule_and_its_figure(c_built, cli) -> None:
    r = cli("inspect", c_built.path, "--fail-on", "build-tools,wasted>50MB,efficiency<0.9")
    assert r.rc == 1
    gate = [line for line in r.err_lines if line.startswith("imgscope: rule ")]
    assert gate[0].startswith("imgscope: rule FAIL: build-tools (build-tools is ")
    assert gate[1] == (f"imgscope: rule pass: wasted>50MB (wasted is 66.1 kB "
                       f"({c_built.wasted} bytes))")
    assert gate[2].startswith("imgscope: rule pass: efficiency<0.9 (efficiency is 0.9")
    assert "Build tools and leftovers" in r.out and "Recommendations (image" in r.out


@needs_host_toolchain
def test_gate_passes_and_reports_in_json(c_built, cli) -> None:
    r = cli("inspect", c_built.path, "--fail-on", "wasted>50MB,package-cache>1MB")
    assert r.rc == 0
    r = cli("inspect", c_built.path, "--format", "json", "--fail-on", "wasted>60kB,source")
    assert r.rc == 1
    ci = r.json()["ci"]
    assert ci["passed"] is False
    assert ci["rules"] == [
        {"rule": "wasted>60kB", "source": "--fail-on", "metric": "wasted",
         "value": c_built.wasted,
         "failed": True},
        {"rule": "source", "source": "--fail-on", "metric": "source", "value": 63,
         "failed": True},
    ]
    advice = r.json()["advice"]
    assert advice["recommendations"][0]["kind"] == "multi-stage"
    assert advice["base_image"] == {"layers": 1, "name": "docker.io/library/debian:bookworm",
                                    "how": "buildah history comment"}


@needs_host_toolchain
def test_gate_from_a_rules_file(c_built, cli, tmp_path: Path) -> None:
    rules = tmp_path / "ci.yml"
    rules.write_text("rules:\n  highestWastedBytes: 1MB\n  lowestEfficiency: 0.5\n")
    assert cli("inspect", c_built.path, "--rules", rules).rc == 0
    rules.write_text("rules:\n  fail-on:\n    - unstripped>1kB\n")
    r = cli("inspect", c_built.path, "--rules", rules)
    assert r.rc == 1
    assert any(line.startswith("imgscope: rule FAIL: unstripped>1kB (unstripped is ")
               for line in r.err_lines)


@needs_host_toolchain
def test_no_packages_is_dives_view_and_refuses_package_rules(c_built, cli) -> None:
    full = cli("inspect", c_built.path, "--format", "json").json()
    r = cli("inspect", c_built.path, "--no-packages", "--format", "json",
            "--fail-on", "wasted>60kB")
    assert r.rc == 1  # the wasted-bytes rule still runs, on the same figure
    doc = r.json()
    for key in ("sizes", "efficiency", "wasted", "layers", "biggest_files"):
        assert doc[key] == full[key]
    assert doc["ci"]["rules"][0]["value"] == c_built.wasted
    assert full["packages"] and full["advice"]
    assert doc["packages"] is None and doc["advice"] is None
    r = cli("inspect", c_built.path, "--no-packages", "--fail-on", "wasted>1GB,build-tools")
    assert r.rc == 2 and r.out == ""
    assert r.err_lines == ["imgscope: error: rule 'build-tools' (--fail-on) needs the package "
                           "analysis that --no-packages skips"]


def test_malformed_gate_is_exit_2_with_one_line(cli, tmp_path: Path) -> None:
    image = tmp_path / "not-read.tar"  # never opened: rules are checked first
    r = cli("inspect", image, "--fail-on", "wasted>>5")
    assert r.rc == 2
    assert r.err_lines == ["imgscope: error: --fail-on: cannot read rule 'wasted>>5'; write "
                           "NAME, or NAME>VALUE / NAME<VALUE (e.g. build-tools,wasted>50MB,"
                           "efficiency<0.9)"]
    r = cli("inspect", image, "--rules", tmp_path / "missing.yml")
    assert r.rc == 2 and len(r.err_lines) == 1
    assert r.err_lines[0].startswith("imgscope: error: cannot read rules file ")


@needs_host_toolchain
def test_advise_command(c_built, cli) -> None:
    r = cli("advise", c_built.path, "--format", "dockerfile")
    assert r.rc == 0
    assert r.out.startswith("# Sketch by imgscope: review before use.\n")
    assert "FROM gcr.io/distroless/cc-debian12\n" in r.out
    r = cli("advise", c_built.path, "--base", "scratch", "--format", "json")
    doc = r.json()
    assert doc["schema"] == "imgscope/advise"
    assert doc["advice"]["runtime"]["base"] == "scratch"
    assert doc["advice"]["runtime"]["predicted_bytes"] == len(c_built.hello)
    text = cli("advise", c_built.path).out
    assert "1. Build in a builder stage, ship only the runtime closure on " in text
    assert "   FROM gcr.io/distroless/cc-debian12" in text


def test_advise_without_build_tools(cli, tmp_path: Path) -> None:
    spec = fb.ImageSpec(layers=[fb.LayerSpec([fb.file("app/data.txt", b"x" * 100)])])
    image = fb.write_image(tmp_path / "plain.tar", spec, "docker")
    r = cli("advise", image, "--format", "dockerfile")
    assert r.rc == 2
    assert r.err_lines == ["imgscope: error: no builder-stage sketch for this image: no build "
                           "tools were found, or its runtime closure is unknown"]
    assert cli("inspect", image, "--fail-on", "build-tools,findings").rc == 0
