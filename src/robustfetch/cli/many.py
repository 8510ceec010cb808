"""The ``robustfetch many FILE`` command: many files in parallel, one progress bar, a summary.

A bad line (or JSON item) is reported with its number and skipped; the
others are still fetched, and the exit code is 2 at the end.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Union

from ..api import Fetcher, plan_many
from ..errors import FetchError
from ..options import make_options
from ..policy.answers import load_json
from ..results import FetchResult, Request
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_common_options,
    count,
    options_from_args,
    report_failure,
    report_success,
)
from .progressbar import BatchProgress

__all__ = ["Listing", "add_many_command", "read_listing", "read_many_file", "read_requests"]

_DIGEST = re.compile(r"(sha256:)?[0-9a-fA-F]{64}|sha256-[A-Za-z0-9+/]{43}=")
# A comment starts with '#' at the start of a line or after blanks: a URL's
# own "#sha256=..." fragment is not one.
_COMMENT = re.compile(r"(^|\s)#.*$")
_REQUEST_KEYS = tuple(f.name for f in fields(Request))


@dataclass
class Listing:
    """What a ``many`` file asks for.

    :param requests: ``(where, request)``, where is ``"line 3"`` or ``"item 2"``.
    :param problems: one message per bad line or item, naming where it is.
    """

    requests: list[tuple[str, Request]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def add_many_command(commands: Any) -> None:
    many = commands.add_parser(
        "many",
        help="download the files listed in FILE",
        description="FILE holds one file per line: URL [SHA256] [FALLBACK ...] "
        "[name=FILENAME] [size=N] ('#' starts a comment), or a JSON list of URLs or "
        "of objects with the keys of robustfetch.Request, or a Metalink 4 document. "
        "'-' reads standard input. A bad line is reported and skipped (exit 2 at the end).",
    )
    many.add_argument("file", metavar="FILE")
    many.add_argument("-o", "--output", metavar="DIR", help="existing folder for the files")
    many.add_argument("--workers", metavar="N", type=count, default=8)
    add_common_options(many)
    many.set_defaults(handler=_many)


def _many(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    listing = read_many_file(args.file, args.output)
    options = options_from_args(args)
    bad = len(listing.problems)
    for problem in listing.problems:
        print(f"robustfetch: error: {problem}; skipped", file=sys.stderr)
    checks = plan_many([request for _, request in listing.requests], make_options(**options))
    good: list[Request] = []
    for (where, request), planned in zip(listing.requests, checks):
        if isinstance(planned, ValueError):
            bad += 1
            print(f"robustfetch: error: {where}: {planned}; skipped", file=sys.stderr)
        else:
            good.append(request)
    bar = None
    if not args.quiet and not args.json and sys.stderr.isatty() and good:
        bar = BatchProgress(sys.stderr, len(good))
        options["progress"] = bar
    results: list[Union[FetchResult, FetchError]] = []
    if good:
        with Fetcher(pool_size=args.workers, **options) as fetcher:
            results = fetcher.fetch_many(good, workers=args.workers)
    if bar is not None:
        bar.finish()
    failed = _report(good, results, bad, args)
    if bad:
        return EXIT_USAGE
    return EXIT_FAILED if failed else EXIT_OK


def _report(
    requests: list[Request],
    results: list[Union[FetchResult, FetchError]],
    bad: int,
    args: argparse.Namespace,
) -> int:
    """Print each outcome and a summary; returns how many files failed."""
    failed = cached = size = 0
    for request, result in zip(requests, results):
        if isinstance(result, FetchError):
            failed += 1
            report_failure(request.url, result, args)
        else:
            cached += result.from_cache
            size += result.size
            report_success(result, args, quiet=True)
    if not args.quiet or failed or bad:
        skipped = f", {bad} bad line{'s' * (bad != 1)} skipped" if bad else ""
        print(
            f"robustfetch: {len(results)} files, {size} bytes, {cached} from the cache, "
            f"{failed} failed{skipped}",
            file=sys.stderr,
        )
    return failed


def read_many_file(path: str, dest: Optional[str]) -> Listing:
    """The listing in the file at ``path`` (``-``: standard input)."""
    if path == "-":
        return read_listing(sys.stdin.read(), dest)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    return read_listing(text, dest)


def read_listing(text: str, dest: Optional[str]) -> Listing:
    """Parse a ``many`` file: lines, a JSON list or a Metalink 4 document.

    A file that cannot be read as a whole (invalid JSON) is a ``ValueError``;
    a bad line or item is a problem of the listing, the others still count.

    >>> listing = read_listing("https://a.example/f.tgz name=g.tgz  # the first\\nx\\n", None)
    >>> [(where, r.filename) for where, r in listing.requests], listing.problems
    ([('line 1', 'g.tgz')], ["line 2: 'x' is not a URL"])
    """
    start = text.lstrip()[:200]
    if start.startswith(("<?xml", "<metalink")):
        return _from_metalink(text, dest)
    if start.startswith("["):
        return _from_json(text, dest)
    listing = Listing()
    for number, line in enumerate(text.splitlines(), 1):
        words = _COMMENT.sub("", line).split()
        if not words:
            continue
        try:
            listing.requests.append((f"line {number}", _from_words(words, dest)))
        except ValueError as exc:
            listing.problems.append(f"line {number}: {exc}")
    return listing


def read_requests(text: str, dest: Optional[str]) -> list[Request]:
    """The requests of a ``many`` file; the first bad line is a ``ValueError`` naming it."""
    listing = read_listing(text, dest)
    if listing.problems:
        raise ValueError(listing.problems[0])
    return [request for _, request in listing.requests]


def _from_words(words: list[str], dest: Optional[str]) -> Request:
    """``URL [sha256] [fallback ...] [name=FILENAME] [size=N]`` as a :class:`Request`."""
    url, rest = words[0], words[1:]
    if "://" not in url:
        raise ValueError(f"{url!r} is not a URL")
    sha256: Optional[str] = None
    name: Optional[str] = None
    size: Optional[int] = None
    fallbacks: list[str] = []
    for word in rest:
        if word.startswith("name="):
            if name is not None:
                raise ValueError(f"two names: {name!r} and {word[5:]!r}")
            name = word[5:]
        elif word.startswith("size="):
            value = word[5:]
            if size is not None or not (value.isascii() and value.isdigit()):
                raise ValueError(f"{word!r}: size= takes one number of bytes")
            size = int(value)
        elif _DIGEST.fullmatch(word):
            if sha256 is not None:
                raise ValueError(f"two sha256 values: {sha256!r} and {word!r}")
            sha256 = word
        elif "://" in word:
            fallbacks.append(word)
        else:
            raise ValueError(f"{word!r} is neither a sha256, a URL, name=FILENAME nor size=N")
    return Request(url, sha256, tuple(fallbacks), dest, name, size)


def _from_json(text: str, dest: Optional[str]) -> Listing:
    try:
        items: Any = load_json(text.encode("utf-8", "surrogatepass"))
    except ValueError as exc:  # not JSON, or nested deeper than any list of requests
        raise ValueError(f"invalid JSON list: {exc}") from None
    if not isinstance(items, list):
        raise ValueError("a JSON many file holds a list")
    listing = Listing()
    for index, item in enumerate(items):
        where = f"item {index}"
        if isinstance(item, str):
            listing.requests.append((where, Request(item, dest=dest)))
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            unknown = set(item) - set(_REQUEST_KEYS)
            fallbacks = item.get("fallbacks", [])
            if unknown:
                listing.problems.append(
                    f"{where}: unknown keys {sorted(unknown)} (keys: {', '.join(_REQUEST_KEYS)})"
                )
            elif not isinstance(fallbacks, list):
                listing.problems.append(f"{where}: fallbacks must be a list of URLs")
            else:
                values = {**item, "fallbacks": tuple(fallbacks)}
                values.setdefault("dest", dest)
                listing.requests.append((where, Request(**values)))
        else:
            listing.problems.append(
                f"{where}: expected a URL or an object with a url, not {item!r}"
            )
    return listing


def _from_metalink(text: str, dest: Optional[str]) -> Listing:
    """A Metalink 4 document, read by ``robustfetch.read_metalink`` where it exists."""
    import robustfetch

    reader = getattr(robustfetch, "read_metalink", None)
    if reader is None:
        raise ValueError("this robustfetch cannot read Metalink files yet")
    requests: list[Request] = reader(text)
    return Listing(
        [
            (f"file {index}", request if request.dest is not None else replace(request, dest=dest))
            for index, request in enumerate(requests)
        ]
    )
