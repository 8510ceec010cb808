"""The ``robustfetch`` command: argparse front end, progress bar and exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, Optional

from .. import __version__
from ..api import Fetcher
from ..errors import FetchError
from ..policy.secrets import LOG_FILTER
from .cache import add_cache_command
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_common_options,
    options_from_args,
    report_failure,
    report_success,
)
from .many import add_many_command
from .probe import add_probe_command
from .progressbar import ProgressBar

__all__ = ["main", "run"]


def run() -> NoReturn:
    """The ``robustfetch`` script and ``python -m robustfetch``: :func:`main`, then exit.

    By the time :func:`main` returns, every file is closed and every thread
    joined: the interpreter's teardown of the ~300 modules a fetch imports
    would only add some 20 ms to each short run, so the process ends at once
    once its output is flushed.
    """
    code = main()
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away: exit as Python does when its flush fails
        code = code or 120
    os._exit(code)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 every source failed, 2 bad usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # Each attempt is logged at INFO: -v shows them as they happen; without it
    # they are reported once, in the summary.
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", 0) else logging.WARNING,
        format="robustfetch: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        # Other libraries' records too (urllib3 names proxies): no password on stderr.
        handler.addFilter(LOG_FILTER)
    try:
        return int(args.handler(args))
    except ValueError as exc:
        print(f"robustfetch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("robustfetch: interrupted", file=sys.stderr)
        return 130


def _fetch(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if args.integrity is not None:
        options["integrity"] = args.integrity
    bar = None
    if not args.quiet and not args.json and sys.stderr.isatty():
        bar = ProgressBar(sys.stderr)
        options["progress"] = bar
    with Fetcher(**options) as fetcher:
        try:
            sha256 = args.sha256 or None
            result = fetcher.fetch(args.url, sha256, args.fallback, dest=args.output)
        except FetchError as error:
            if bar is not None:
                bar.finish()
            report_failure(args.url, error, args)
            return EXIT_FAILED
    if bar is not None:
        bar.finish()
    report_success(result, args)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustfetch",
        description="Download files from ordered sources, verified, with failures explained.",
        epilog="exit codes: 0 success, 1 every source failed, 2 bad usage or input",
    )
    parser.add_argument("--version", action="version", version=f"robustfetch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    fetch = commands.add_parser("fetch", help="download one file")
    fetch.add_argument("url", metavar="URL")
    fetch.add_argument(
        "--sha256",
        metavar="H",
        action="append",
        default=[],
        help="expected sha256: hex, sha256:<hex> or sha256-<base64>; repeat: any may match",
    )
    fetch.add_argument(
        "--integrity",
        metavar="SRI",
        help="a Subresource Integrity string ('sha384-<base64> ...'): the strongest hash counts",
    )
    fetch.add_argument("--fallback", metavar="URL", action="append", default=[])
    fetch.add_argument("-o", "--output", metavar="DEST", help="file or existing folder")
    fetch.add_argument(
        "--name", metavar="FILENAME", help="the file's name for mirrors and a folder DEST"
    )
    add_common_options(fetch)
    fetch.set_defaults(handler=_fetch)
    add_many_command(commands)
    add_cache_command(commands)
    add_probe_command(commands)
    return parser
