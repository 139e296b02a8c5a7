"""Command line: argument parsing, exit statuses, and the choice of renderer. No analysis."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from imgscope import __version__
from imgscope.errors import ImgscopeError

EXIT_OK, EXIT_RULE, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2 like every other bad input."""

    def error(self, message: str) -> NoReturn:
        raise ImgscopeError(f"{message} (see '{self.prog} --help')")


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE",
                        help="image tarball, OCI layout or docker-save directory; - for stdin")
    parser.add_argument("--image", dest="select_image", metavar="NAME:TAG",
                        help="which image of a multi-image archive (tag, ref name or digest)")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="which platform of a multi-platform index")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the digest checks of layers, config and manifest")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="imgscope", description="Look inside container image tarballs offline.")
    parser.add_argument("--version", action="version", version=f"imgscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    inspect = commands.add_parser("inspect", help="layers, sizes, wasted bytes, findings")
    _image_options(inspect)
    ls = commands.add_parser("ls", help="the merged filesystem, or one layer's entries")
    _image_options(ls)
    ls.add_argument("--layer", type=int, metavar="N", help="list layer N's tar entries instead")
    packages = commands.add_parser("packages", help="packages with the bytes they own; SBOM")
    _image_options(packages)
    packages.set_defaults(format="table")
    for action in packages._actions:
        if action.dest == "format":
            action.choices = ("table", "json", "cyclonedx")
    packages.add_argument("--sort", choices=("bytes", "name", "layer"), default="bytes")
    return parser


def _progress_printer():
    if not sys.stderr.isatty():
        return None

    def show(index: int, count: int, name: str) -> None:
        end = "\n" if index + 1 == count else ""
        sys.stderr.write(f"\rreading layer {index + 1}/{count} {name[-50:]:<50}{end}")
        sys.stderr.flush()

    return show


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _cmd_inspect(args: argparse.Namespace) -> int:
    from imgscope.api import analyze

    analysis = analyze(args.image, image=args.select_image, platform=args.platform,
                       verify=not args.no_verify, progress=_progress_printer())
    if args.format == "json":
        from imgscope.report.json_report import dumps, inspect_document

        _write(dumps(inspect_document(analysis)))
    else:
        from imgscope.report.table import inspect_text

        _write(inspect_text(analysis))
    return EXIT_OK


def _cmd_ls(args: argparse.Namespace) -> int:
    from imgscope.report import json_report, table

    if args.layer is not None:
        from imgscope.api import read_layer

        entries = json_report.layer_entries(
            read_layer(args.image, args.layer, image=args.select_image, platform=args.platform,
                       verify=not args.no_verify))
    else:
        from imgscope.api import analyze

        analysis = analyze(args.image, image=args.select_image, platform=args.platform,
                           verify=not args.no_verify, catalog=False,
                           progress=_progress_printer())
        entries = json_report.ls_entries(analysis.fs)
    if args.format == "json":
        _write(json_report.dumps(json_report.ls_document(entries, args.layer)))
    else:
        _write(table.ls_text(entries, with_layer=args.layer is None))
    return EXIT_OK


def _cmd_packages(args: argparse.Namespace) -> int:
    from imgscope.api import analyze
    from imgscope.report import json_report
    from imgscope.report.packages import cyclonedx_document, packages_section, packages_text

    analysis = analyze(args.image, image=args.select_image, platform=args.platform,
                       verify=not args.no_verify, progress=_progress_printer())
    assert analysis.attribution is not None
    if args.format == "cyclonedx":
        _write(json_report.dumps(cyclonedx_document(analysis)))
    elif args.format == "json":
        doc = {"schema": "imgscope/packages", "schema_version": json_report.SCHEMA_VERSION,
               **packages_section(analysis.attribution, full=True, sort=args.sort),
               "warnings": [{"code": w.code, "message": w.message} for w in analysis.warnings]}
        _write(json_report.dumps(doc))
    else:
        _write(packages_text(analysis.attribution, sort=args.sort))
    return EXIT_OK


COMMANDS = {"inspect": _cmd_inspect, "ls": _cmd_ls, "packages": _cmd_packages}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        return COMMANDS[args.command](args)
    except ImgscopeError as exc:
        sys.stderr.write(f"imgscope: error: {_one_line(str(exc))}\n")
        return exc.exit_status
    except KeyboardInterrupt:
        sys.stderr.write("imgscope: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours; silence the final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except MemoryError:
        sys.stderr.write("imgscope: error: out of memory\n")
        return EXIT_INTERNAL
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("IMGSCOPE_DEBUG"):
            raise
        sys.stderr.write(
            f"imgscope: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(rerun with IMGSCOPE_DEBUG=1 for details)\n"
        )
        return EXIT_INTERNAL


def _one_line(text: str) -> str:
    return " ".join(text.split())[:2000]
