"""Command line: argument parsing, exit statuses, and the choice of renderer. No analysis."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Iterator, Sequence
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
    inspect.add_argument("--no-packages", action="store_true",
                         help="layers, files and wasted bytes only (dive's view): no package "
                              "attribution, build-tool findings or advice; faster")
    _gate_options(inspect)
    advise = commands.add_parser("advise", help="build tools left in, and how to make the "
                                                "image small (with a Dockerfile sketch)")
    _image_options(advise)
    for action in advise._actions:
        if action.dest == "format":
            action.choices = ("table", "json", "dockerfile")
    advise.add_argument("--base", metavar="IMAGE",
                        help="runtime base for the Dockerfile sketch (default: chosen from "
                             "the runtime closure; 'scratch' is allowed)")
    _gate_options(advise)
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
    _diff_options(commands.add_parser("diff", help="what changed between two images, and "
                                                   "what it cost"))
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

    rules = _gate_rules(args)  # a malformed rule is exit 2 before any reading
    if args.no_packages:
        from imgscope.rules import PACKAGE_METRICS

        for rule in rules or ():
            if rule.metric in PACKAGE_METRICS:
                raise ImgscopeError(f"rule {rule.text!r} ({rule.source}) needs the package "
                                    "analysis that --no-packages skips")
    analysis = analyze(args.image, image=args.select_image, platform=args.platform,
                       verify=not args.no_verify, progress=_progress_printer(),
                       catalog=not args.no_packages,
                       # per-layer removals and upgrades: shown in the JSON document only
                       layer_changes=args.format == "json")
    _until_exit(analysis)
    results = _gate(rules, analysis)
    if args.format == "json":
        from imgscope.report.json_report import dumps, inspect_document

        doc = inspect_document(analysis)
        if results is not None:
            from imgscope.report.advice import ci_section

            doc["ci"] = ci_section(results)
        _write(dumps(doc))
    else:
        from imgscope.report.table import inspect_text

        _write(inspect_text(analysis))
    return _gate_status(results)


# -- build-tool advice and the CI gate ---------------------------------------------------------


def _gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on", metavar="RULES",
                        help="exit 1 when a rule fails: comma-separated, e.g. "
                             "build-tools,wasted>50MB,efficiency<0.9")
    parser.add_argument("--rules", metavar="FILE",
                        help="rules file (dive's .dive-ci keys plus fail-on:)")


def _gate_rules(args: argparse.Namespace) -> list | None:
    if args.fail_on is None and args.rules is None:
        return None  # no gate: imgscope.rules is not even imported
    from imgscope.rules import parse_fail_on, parse_rules_file

    rules = []
    if args.fail_on is not None:
        rules += parse_fail_on(args.fail_on)
    if args.rules is not None:
        rules += parse_rules_file(args.rules)
    return rules or None


def _gate(rules: list | None, analysis) -> list | None:
    if rules is None:
        return None
    from imgscope.rules import evaluate

    results = evaluate(rules, analysis)
    for result in results:
        sys.stderr.write(f"imgscope: rule {result.message}\n")
    return results


def _gate_status(results: list | None) -> int:
    return EXIT_RULE if results and any(r.failed for r in results) else EXIT_OK


def _cmd_advise(args: argparse.Namespace) -> int:
    from imgscope.api import analyze

    rules = _gate_rules(args)
    analysis = analyze(args.image, image=args.select_image, platform=args.platform,
                       verify=not args.no_verify, progress=_progress_printer(),
                       runtime_base=args.base)
    results = _gate(rules, analysis)
    from imgscope.report import advice

    if args.format == "json":
        from imgscope.report.json_report import SCHEMA_VERSION, dumps

        doc = {"schema": "imgscope/advise", "schema_version": SCHEMA_VERSION,
               "advice": advice.advice_section(analysis),
               "warnings": [{"code": w.code, "message": w.message} for w in analysis.warnings]}
        if results is not None:
            doc["ci"] = advice.ci_section(results)
        _write(dumps(doc))
    elif args.format == "dockerfile":
        sketch = next((r.dockerfile for r in analysis.extras.recommendations
                       if r.kind == "multi-stage"), None)
        if sketch is None:
            raise ImgscopeError("no builder-stage sketch for this image: no build tools were "
                                "found, or its runtime closure is unknown")
        _write(sketch)
    else:
        _write(advice.advice_text(analysis, full=True))
        if analysis.warnings:
            _write("\nWarnings\n" + "".join(f"  - {w.message}\n" for w in analysis.warnings))
    return _gate_status(results)


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
                       verify=not args.no_verify, progress=_progress_printer(), advise=False)
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


# -- diff -------------------------------------------------------------------------------------


def _diff_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="the image before (any input format; - for "
                                                   "stdin)")
    parser.add_argument("new", metavar="NEW", help="the image after (any input format)")
    for side in ("", "old-", "new-"):
        which = f"the {side[:-1]} image" if side else "both images"
        parser.add_argument(f"--{side}image", dest=f"{side.replace('-', '_')}select_image",
                            metavar="NAME:TAG", help=f"which image of a multi-image archive, "
                                                     f"for {which}")
        parser.add_argument(f"--{side}platform", dest=f"{side.replace('-', '_')}platform",
                            metavar="OS/ARCH[/VARIANT]",
                            help=f"which platform of a multi-platform index, for {which}")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the digest checks")
    parser.add_argument("--verify-copies", action="store_true",
                        help="also read and check the other image's copy of each shared "
                             "layer (by default a layer with the same diff_id is read once, "
                             "from one archive)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--exit-code", action="store_true",
                        help="exit 1 when the images differ (in the compared sections)")
    parser.add_argument("--only", metavar="SECTIONS",
                        help="compare only these, comma-separated: "
                             "layers,config,files,packages,findings")
    parser.add_argument("--no-hash", action="store_true",
                        help="do not hash same-size files written by different layers; "
                             "report them as rewritten, content unknown")


def _cmd_diff(args: argparse.Namespace) -> int:
    from imgscope.diff import diff
    from imgscope.pairing import SECTIONS

    sections = SECTIONS
    if args.only:
        sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
        bad = [s for s in sections if s not in SECTIONS]
        if bad or not sections:
            raise ImgscopeError(f"--only takes {','.join(SECTIONS)}; got {args.only!r}")
    result = diff(
        args.old, args.new,
        post_analysis=lambda analysis, _view: _until_exit(analysis),
        old_image=args.old_select_image or args.select_image,
        new_image=args.new_select_image or args.select_image,
        old_platform=args.old_platform or args.platform,
        new_platform=args.new_platform or args.platform,
        verify=not args.no_verify, verify_copies=args.verify_copies, sections=sections,
        hash_content=not args.no_hash,
        progress=_progress_printer(),
    )
    if args.format == "json":
        from imgscope.report.diff_report import diff_document
        from imgscope.report.json_report import dumps

        _write(dumps(diff_document(result)))
    else:
        from imgscope.report.diff_report import diff_text

        _write(diff_text(result))
    return EXIT_RULE if args.exit_code and result.differs else EXIT_OK


# What a command built and no longer needs, left for the exit to free (see run()).
_KEPT: list[object] = []


def _until_exit(value: object) -> None:
    _KEPT.append(value)


COMMANDS = {"inspect": _cmd_inspect, "ls": _cmd_ls, "packages": _cmd_packages,
            "diff": _cmd_diff, "advise": _cmd_advise}


@contextlib.contextmanager
def _rare_collections() -> Iterator[None]:
    """Fewer runs of the cyclic garbage collector while a command runs. An analysis builds one
    large, long-lived tree without cycles (the overlay, tens of thousands of nodes): with
    Python's default thresholds the collector scans it over and over for nothing (55 ms of a
    0.9 s inspect, measured with gc.callbacks; 17 ms with these). Restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _KEPT.clear()  # in-process callers (tests) keep only the last command's
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        with _rare_collections():
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


def run() -> NoReturn:
    """The `imgscope` command: main(), then exit without the interpreter's teardown. By then
    everything imgscope opened is closed (archives, child processes, its temporary directory:
    `finally` blocks and context managers, not atexit); what is left is freeing the overlay
    object by object, 30-45 ms of a 17k-path image measured here, for memory the process
    gives back anyway. The commands hand their analyses to `_until_exit` so that they are not
    freed either when the command returns (~20 ms for a diff's two overlays)."""
    status = main()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(status)  # a profiler or coverage writes its data at exit: let it
    with contextlib.suppress(OSError):  # the reader went away: nothing more to say
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:2000]
