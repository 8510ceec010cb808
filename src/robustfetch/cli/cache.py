"""The ``robustfetch cache info | verify | clear | export`` commands."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..options import make_options
from ..store.cache import Cache
from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .progressbar import human_size

__all__ = ["add_cache_command"]


def add_cache_command(commands: Any) -> None:
    cache = commands.add_parser("cache", help="look after the download cache")
    cache.add_argument("--cache-dir", metavar="DIR", help="default: $ROBUSTFETCH_CACHE_DIR")
    actions = cache.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("info", help="where the cache is and what it holds")
    actions.add_parser("verify", help="re-hash every entry; remove the corrupted ones")
    clear = actions.add_parser("clear", help="remove entries and partial downloads")
    clear.add_argument(
        "--older-than", metavar="DAYS", type=float, help="only what was not used for DAYS days"
    )
    export = actions.add_parser(
        "export",
        help="copy entries into DIR laid out as a hashed mirror (DIR/sha256/ab/abcd...)",
        description="Copy cache entries (all, or those FILE pins; FILE in the format of "
        "'robustfetch many') into DIR, verified, in the layout hashed_mirrors= reads: "
        "serve DIR with any static web server, or carry it to an air-gapped machine.",
    )
    export.add_argument("dir", metavar="DIR")
    export.add_argument("file", metavar="FILE", nargs="?")
    cache.set_defaults(handler=_cache)


def _cache(args: argparse.Namespace) -> int:
    options = make_options(**({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    if options.cache_dir is None or args.action is None:
        print("robustfetch: usage: robustfetch cache info|verify|clear|export", file=sys.stderr)
        return EXIT_USAGE
    cache = Cache(options.cache_dir, options.cache_dirs_readonly)
    if args.action == "info":
        return _info(cache)
    if args.action == "verify":
        return _verify(cache)
    if args.action == "export":
        return _export(cache, Path(args.dir), args.file)
    if args.older_than is not None and args.older_than < 0:
        raise ValueError(f"--older-than must be >= 0 days, not {args.older_than}")
    return _clear(cache, args.older_than)


def _info(cache: Cache) -> int:
    entries = list(cache.entries())
    partial = sum(p.stat().st_size for p in cache.partials() if p.suffix != ".json")
    print(f"cache folder:     {cache.root}")
    for folder in cache.readonly:
        print(f"read-only folder: {folder}")
    size = sum(e.size for e in entries)
    print(f"entries:          {len(entries)} ({human_size(size)})")
    print(f"partial:          {human_size(partial)} kept for resuming")
    return EXIT_OK


def _verify(cache: Cache) -> int:
    bad = 0
    for entry in cache.entries():
        if cache.lookup({"sha256": entry.sha256}) is None:  # removes a corrupted entry
            bad += 1
            print(f"corrupted, removed: {entry.path}")
    print(f"robustfetch: cache verified, {bad} corrupted entr{'y' if bad == 1 else 'ies'}")
    return EXIT_FAILED if bad else EXIT_OK


def _clear(cache: Cache, older_than_days: Optional[float]) -> int:
    cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
    removed = freed = 0
    for entry in cache.entries():
        old = cutoff is None or max(entry.mtime, _atime(entry.path)) < cutoff
        if old and cache.remove_entry(entry):  # kept while another process uses it
            removed += 1
            freed += entry.size
    if cutoff is None:
        cache.clear_staging()  # what others are writing now is kept
    print(f"robustfetch: removed {removed} entries ({human_size(freed)})")
    return EXIT_OK


def _atime(path: Path) -> float:
    try:
        return path.stat().st_atime
    except OSError:
        return 0.0


def _export(cache: Cache, folder: Path, listing_path: Optional[str]) -> int:
    """Copy entries into ``folder`` (hashed-mirror layout); 1 if one is missing or corrupted."""
    from ..policy.digests import accepted, expected_hashes
    from ..store.export import export_entry
    from .many import read_many_file

    bad = missing = 0
    wanted: Optional[list[str]] = None
    if listing_path is not None:
        listing = read_many_file(listing_path, None)
        for problem in listing.problems:
            print(f"robustfetch: error: {problem}; skipped", file=sys.stderr)
        bad = len(listing.problems)
        wanted = []
        for where, request in listing.requests:
            try:
                urls = [request.url, *request.fallbacks]
                pinned = expected_hashes(request.sha256, request.hashes, urls).get("sha256")
            except ValueError as exc:
                print(f"robustfetch: error: {where}: {exc}; skipped", file=sys.stderr)
                bad += 1
                continue
            # Of several candidates (any-of), the one the cache holds.
            candidates = sorted(accepted(pinned)) if pinned is not None else []
            held = [c for c in candidates if cache.path_for(c).exists()]
            sha256 = (held or candidates)[0] if candidates else None
            if sha256 is None:
                print(f"robustfetch: {where}: no sha256 pinned: not exported", file=sys.stderr)
                missing += 1
            elif sha256 not in wanted:
                wanted.append(sha256)
    if wanted is None:
        wanted = [entry.sha256 for entry in cache.entries()]
    exported = 0
    for sha256 in wanted:
        hit = cache.lookup({"sha256": sha256})  # verified; a corrupted entry is removed
        if hit is None:
            print(f"robustfetch: sha256 {sha256}: not in the cache", file=sys.stderr)
            missing += 1
            continue
        try:
            ok = export_entry(hit[0], sha256, folder)
        except OSError as exc:
            raise ValueError(f"cannot export to {str(folder)!r}: {exc}") from None
        if not ok:
            print(
                f"robustfetch: sha256 {sha256}: changed while copied; not exported", file=sys.stderr
            )
            missing += 1
            continue
        exported += 1
    print(f"robustfetch: exported {exported} entries to {folder}", file=sys.stderr)
    if bad:
        return EXIT_USAGE
    return EXIT_FAILED if missing else EXIT_OK
