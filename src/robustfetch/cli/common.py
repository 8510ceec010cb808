"""What the fetch and many commands share: their options, and how results are reported."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from ..errors import Attempt, FetchError
from ..policy.secrets import redact
from ..results import FetchResult

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_common_options",
    "attempt_record",
    "count",
    "options_from_args",
    "parse_connect_to",
    "report_failure",
    "report_success",
    "seconds",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_VOUCHED = {
    "pin": "matches the pin",
    "index": "matches the index's hash",
    "metalink": "matches the Metalink's hash",
    "server": "matches the server's digest header",
}


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mirror", metavar="BASE", action="append", default=[])
    parser.add_argument(
        "--hashed-mirror",
        metavar="BASE",
        action="append",
        default=[],
        help="URL or folder laid out like the cache (BASE/sha256/ab/abcd...), tried first",
    )
    parser.add_argument("--index-url", metavar="URL", action="append", default=[])
    parser.add_argument("--find-links", metavar="URL", action="append", default=[])
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", metavar="DIR")
    cache.add_argument("--no-cache", action="store_true")
    parser.add_argument("--offline", action="store_true", help="serve from the cache only")
    parser.add_argument("--ca-bundle", metavar="FILE")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="rewrite/allow/block rules, one per line (default: $ROBUSTFETCH_CONFIG)",
    )
    parser.add_argument("--connect-to", metavar="HOST:PORT:ADDR:PORT", action="append", default=[])
    parser.add_argument("--retries", metavar="N", type=count)
    parser.add_argument("--connect-timeout", metavar="S", type=seconds)
    parser.add_argument("--stall-timeout", metavar="S", type=seconds)
    parser.add_argument("--deadline", metavar="S", type=seconds)
    parser.add_argument(
        "--allow-http", action="store_true", help="use plain-http sources without a pinned hash"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log each attempt")


def report_success(
    result: FetchResult, args: argparse.Namespace, *, quiet: Optional[bool] = None
) -> None:
    """Print ``result``: JSON, or its path (and, unless ``quiet``, how it was got).

    :param quiet: overrides ``args.quiet`` (``many`` prints one summary instead).
    """
    if args.json:
        record = {
            "url": result.url,
            "path": str(result.path),
            "sha256": result.sha256,
            "size": result.size,
            "from_cache": result.from_cache,
            "verified_by": result.verified_by,
            "attempts": [attempt_record(a) for a in result.attempts],
        }
        print(json.dumps(record), flush=True)
        return
    print(result.path)
    if not (args.quiet if quiet is None else quiet):
        failed = sum(1 for a in result.attempts if a.reason is not None)
        origin = "the cache" if result.from_cache else result.url
        note = f" after {failed} failed attempt{'s' * (failed != 1)}" if failed else ""
        vouched = _VOUCHED.get(result.verified_by or "", "unverified: nothing vouched for its hash")
        print(
            f"robustfetch: {result.size} bytes, sha256 {result.sha256} ({vouched}), "
            f"from {origin}{note}",
            file=sys.stderr,
        )
        for attempt in result.attempts[:-1]:
            print(f"  - {attempt}", file=sys.stderr)


def report_failure(url: str, error: FetchError, args: argparse.Namespace) -> None:
    if args.json:
        record = {
            "url": redact(url),  # as given: ftp://user:password@... is masked too
            "error": error.message,
            "attempts": [attempt_record(a) for a in error.attempts],
        }
        print(json.dumps(record), flush=True)
    print(f"robustfetch: {error}", file=sys.stderr)


def attempt_record(attempt: Attempt) -> dict[str, Any]:
    return {
        "url": attempt.url,
        "reason": attempt.reason.value if attempt.reason is not None else None,
        "detail": attempt.detail,
        "status": attempt.status,
    }


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("retries", "connect_timeout", "stall_timeout", "ca_bundle", "deadline"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    if args.mirror:
        options["mirrors"] = list(args.mirror)
    if getattr(args, "hashed_mirror", None):
        options["hashed_mirrors"] = list(args.hashed_mirror)
    if getattr(args, "name", None) is not None:
        options["filename"] = args.name
    if args.index_url:
        options["index_urls"] = list(args.index_url)
    if args.find_links:
        options["find_links"] = list(args.find_links)
    if args.no_cache:
        options["cache_dir"] = None
    elif args.cache_dir is not None:
        options["cache_dir"] = args.cache_dir
    if args.offline:
        options["offline"] = True
    if args.allow_http:
        options["allow_http"] = True
    if args.config is not None:
        options["config"] = args.config
    if args.connect_to:
        options["connect_to"] = dict(parse_connect_to(item) for item in args.connect_to)
    return options


def parse_connect_to(text: str) -> tuple[str, str]:
    """curl's ``HOST:PORT:ADDR:PORT`` (IPv6 in brackets) as a ``connect_to`` entry."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if len(parts) != 4 or not all(parts):
        raise ValueError(f"--connect-to {text!r}: expected HOST:PORT:ADDR:PORT")
    return f"{parts[0]}:{parts[1]}", f"{parts[2]}:{parts[3]}"


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0: {text!r}")
    return int(text)
