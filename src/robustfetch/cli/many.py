"""The ``robustfetch many FILE`` command: many files in parallel, one progress bar, a summary."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Union

from ..api import Fetcher
from ..errors import FetchError
from ..results import FetchResult, Request
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_common_options,
    count,
    options_from_args,
    report_failure,
    report_success,
)
from .progressbar import BatchProgress

__all__ = ["add_many_command", "read_requests"]

_DIGEST = re.compile(r"(sha256:)?[0-9a-fA-F]{64}")


def add_many_command(commands: Any) -> None:
    many = commands.add_parser(
        "many",
        help="download the files listed in FILE",
        description="FILE holds one file per line: URL [SHA256] [FALLBACK ...] "
        "('#' starts a comment), or a JSON list of URLs or of objects with "
        "url, sha256, fallbacks and dest. '-' reads standard input.",
    )
    many.add_argument("file", metavar="FILE")
    many.add_argument("-o", "--output", metavar="DIR", help="existing folder for the files")
    many.add_argument("--workers", metavar="N", type=count, default=8)
    add_common_options(many)
    many.set_defaults(handler=_many)


def _many(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.file == "-" else _read(args.file)
    requests = read_requests(text, args.output)
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    options = options_from_args(args)
    bar = None
    if not args.quiet and not args.json and sys.stderr.isatty():
        bar = BatchProgress(sys.stderr, len(requests))
        options["progress"] = bar
    with Fetcher(pool_size=args.workers, **options) as fetcher:
        results = fetcher.fetch_many(requests, workers=args.workers)
    if bar is not None:
        bar.finish()
    return _report(requests, results, args)


def _report(
    requests: list[Request],
    results: list[Union[FetchResult, FetchError]],
    args: argparse.Namespace,
) -> int:
    quiet = argparse.Namespace(**{**vars(args), "quiet": True})
    failed = cached = size = 0
    for request, result in zip(requests, results):
        if isinstance(result, FetchError):
            failed += 1
            report_failure(request.url, result, args)
        else:
            cached += result.from_cache
            size += result.size
            report_success(result, quiet)
    if not args.quiet or failed:
        print(
            f"robustfetch: {len(results)} files, {size} bytes, {cached} from the cache, "
            f"{failed} failed",
            file=sys.stderr,
        )
    return EXIT_FAILED if failed else EXIT_OK


def read_requests(text: str, dest: Union[str, None]) -> list[Request]:
    """The requests a ``many`` file lists; a bad line is a ``ValueError`` naming its number.

    >>> [r.url for r in read_requests("https://a.example/f.tgz  # the first\\n\\n", None)]
    ['https://a.example/f.tgz']
    """
    if text.lstrip().startswith("["):
        return _from_json(text, dest)
    requests = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        url, rest = words[0], words[1:]
        sha256 = rest.pop(0) if rest and _DIGEST.fullmatch(rest[0]) else None
        for word in rest:
            if "://" not in word:
                raise ValueError(f"line {number}: {word!r} is neither a sha256 nor a URL")
        requests.append(Request(url, sha256, tuple(rest), dest))
    return requests


def _from_json(text: str, dest: Union[str, None]) -> list[Request]:
    try:
        items: Any = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"invalid JSON list: {exc}") from None
    requests = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            requests.append(Request(item, dest=dest))
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            unknown = set(item) - {"url", "sha256", "fallbacks", "dest"}
            if unknown:
                raise ValueError(f"item {index}: unknown keys {sorted(unknown)}")
            fallbacks = item.get("fallbacks", [])
            if not isinstance(fallbacks, list):
                raise ValueError(f"item {index}: fallbacks must be a list of URLs")
            requests.append(
                Request(item["url"], item.get("sha256"), tuple(fallbacks), item.get("dest", dest))
            )
        else:
            raise ValueError(f"item {index}: expected a URL or an object with a url, not {item!r}")
    return requests


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
