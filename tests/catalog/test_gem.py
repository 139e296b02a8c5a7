from __future__ import annotations

from imgscope.catalog.gem import GemCataloger, parse_gemspec

HOME = "/usr/local/bundle"

NOKOGIRI = b"""# -*- encoding: utf-8 -*-
# stub: nokogiri 1.15.5 x86_64-linux lib

Gem::Specification.new do |s|
  s.name = "nokogiri".freeze
  s.version = "1.15.5"
  s.platform = "x86_64-linux".freeze
  s.files = ["lib/nokogiri.rb".freeze,
    "lib/nokogiri/version.rb".freeze, 'bin/nokogiri']
  s.add_runtime_dependency(%q<racc>.freeze, ["~> 1.4".freeze])
  s.add_development_dependency(%q<rake>.freeze, ["~> 13.0".freeze])
end
"""


def test_gemspec_fields():
    spec, warnings = parse_gemspec(NOKOGIRI)
    assert warnings == []
    assert spec is not None
    assert (spec.name, spec.version) == ("nokogiri", "1.15.5")
    assert spec.files == ("lib/nokogiri.rb", "lib/nokogiri/version.rb", "bin/nokogiri")
    assert spec.dependencies == ("racc",)


def test_gem_owns_its_directories(make_view):
    full = "nokogiri-1.15.5-x86_64-linux"
    fs = make_view(
        {
            f"{HOME}/specifications/{full}.gemspec": NOKOGIRI,
            f"{HOME}/gems/{full}/lib/nokogiri.rb": b"require 'x'",
            f"{HOME}/gems/{full}/lib/nokogiri/3.2/nokogiri.so": b"\x7fELF" * 100,
            f"{HOME}/extensions/x86_64-linux/3.2.0/{full}/gem.build_complete": b"",
            f"{HOME}/cache/{full}.gem": b"tarball",
            f"{HOME}/gems/other-1.0/lib/other.rb": b"not nokogiri",
        },
        dirs=[f"{HOME}/gems/{full}/lib"],
    )
    result = GemCataloger().catalog(fs)
    assert result.warnings == []
    [gem] = result.packages
    assert gem.purl == "pkg:gem/nokogiri@1.15.5"
    assert gem.files == (
        f"{HOME}/specifications/{full}.gemspec",
        f"{HOME}/cache/{full}.gem",
        f"{HOME}/extensions/x86_64-linux/3.2.0/{full}/gem.build_complete",
        f"{HOME}/gems/{full}/lib/nokogiri.rb",
        f"{HOME}/gems/{full}/lib/nokogiri/3.2/nokogiri.so",
        # named by s.files though missing on disk
        f"{HOME}/gems/{full}/lib/nokogiri/version.rb",
        f"{HOME}/gems/{full}/bin/nokogiri",
    )
    assert gem.dependencies == ("racc",)
    assert gem.evidence == (f"{HOME}/specifications/{full}.gemspec",)


def test_old_style_dependency_block_counts_runtime_only(corpus_data):
    spec, _ = parse_gemspec(corpus_data.bytes("pkgdb/trivy/gemspec/multiple_licenses.gemspec"))
    assert spec is not None
    assert (spec.name, spec.version) == ("test-unit", "3.3.7")
    # the else-branch add_dependency lines repeat development dependencies too
    assert spec.dependencies == ("power_assert",)


def test_trivy_gemspecs(corpus_data):
    def parse(name: str):
        return parse_gemspec(corpus_data.bytes(f"pkgdb/trivy/gemspec/{name}"))

    rake, _ = parse("normal00.gemspec")
    assert rake is not None and (rake.name, rake.version, rake.files) == (
        "rake",
        "13.0.3",
        ("exe/rake",),
    )
    async_, _ = parse("normal01.gemspec")
    assert async_ is not None and (async_.name, async_.version) == ("async", "1.25.0")
    assert parse("malformed00.gemspec") == (None, ["no name assigned to the block variable"])
    assert parse("malformed01.gemspec") == (None, ["no version assigned to the block variable"])


def test_syft_gemspecs(corpus_data):
    bundler, _ = parse_gemspec(corpus_data.bytes("pkgdb/syft/ruby/bundler.gemspec"))
    assert bundler is not None
    assert (bundler.name, bundler.version, bundler.files) == (
        "bundler",
        "2.1.4",
        ("exe/bundle", "exe/bundler"),
    )
    formatador, _ = parse_gemspec(corpus_data.bytes("pkgdb/syft/ruby/formatador.gemspec"))
    assert formatador is not None
    assert (formatador.name, formatador.version) == ("formatador", "1.1.0")


def test_syft_rootfs_with_default_gems_and_bogus_specs(corpus_data, make_view):
    files = corpus_data.tree("pkgdb/syft/image-pkg-coverage/pkgs/ruby", HOME)
    files.update(corpus_data.tree("pkgdb/syft/ruby/glob-paths", "/srv/glob"))
    result = GemCataloger().catalog(make_view(files))
    assert [(p.name, p.version) for p in result.packages] == [
        ("bundler", "2.1.4"),
        ("unbundler", "3.1.4"),
    ]
    bundler, unbundler = result.packages
    assert bundler.files == (
        f"{HOME}/specifications/bundler.gemspec",
        f"{HOME}/gems/bundler/exe/bundle",
        f"{HOME}/gems/bundler/exe/bundler",
    )
    # a default gem's files live in Ruby's own lib dir; only its spec is claimed
    assert unbundler.files == (f"{HOME}/specifications/default/unbundler.gemspec",)
    assert sorted(result.warnings) == [
        "gem: /srv/glob/specifications/pkg/nested.gemspec: no name assigned to the block variable",
        "gem: /srv/glob/specifications/root.gemspec: no name assigned to the block variable",
    ]
