from __future__ import annotations

from imgscope.catalog._common import (
    PathResolver,
    distro_qualifier,
    join_path,
    make_purl,
    parse_os_release,
)
from imgscope.catalog._elf import may_be_program
from imgscope.catalog.base import FileInfo


def test_resolver_follows_symlinked_parents(make_view):
    fs = make_view(
        {"/usr/bin/ls": b"ls", "/usr/lib/x86_64-linux-gnu/libc.so.6": b"libc"},
        infos=[
            FileInfo("/bin", "symlink", 0, 0o777, 0, link_target="usr/bin"),
            FileInfo("/lib64", "symlink", 0, 0o777, 0, link_target="/usr/lib/x86_64-linux-gnu"),
            FileInfo("/loop", "symlink", 0, 0o777, 0, link_target="loop"),
        ],
    )
    r = PathResolver(fs)
    assert r.resolve("/bin/ls") == "/usr/bin/ls"
    assert r.resolve("/lib64/libc.so.6") == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert r.resolve("/bin/missing") == "/bin/missing"  # kept as claimed
    assert r.resolve("/loop/x") == "/loop/x"  # a symlink loop ends, unresolved
    # the /bin symlink itself is where a listed directory was: not a claimed file
    assert r.claims(["/bin", "/bin/ls", "/usr/bin", "/gone"]) == ("/usr/bin/ls", "/gone")


def test_join_path_stays_inside_root():
    assert join_path("/usr/lib/python3/site-packages", "../../../bin/x") == "/usr/bin/x"
    assert join_path("/a", "../../../../etc/passwd") == "/etc/passwd"
    assert join_path("/a/b", "/abs/path") == "/abs/path"


def test_os_release_and_purls():
    release = parse_os_release(b"# comment\nID=\"rhel\"\nVERSION_ID='9.3'\nNAME=Red Hat\n")
    assert release == {"ID": "rhel", "VERSION_ID": "9.3", "NAME": "Red Hat"}
    assert distro_qualifier(release) == "rhel-9.3"
    assert distro_qualifier({"ID": "debian"}) is None
    assert make_purl("npm", "core", "1.0.0", "@angular") == "pkg:npm/%40angular/core@1.0.0"
    assert make_purl("deb", "", "1.0") == ""  # no name, no purl (never an exception)


def test_program_name_filter():
    assert may_be_program("/usr/local/bin/kubectl")
    assert may_be_program("/app/node_modules/@esbuild/linux-x64/bin/esbuild")
    assert not may_be_program("/usr/lib/python3/dist-packages/six.py")
    assert not may_be_program("/usr/share/man/man1/ls.1")
