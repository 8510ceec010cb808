"""The ``robustfetch cache info | verify | clear`` commands."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
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
    cache.set_defaults(handler=_cache)


def _cache(args: argparse.Namespace) -> int:
    options = make_options(**({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    if options.cache_dir is None or args.action is None:
        print("robustfetch: usage: robustfetch cache info|verify|clear", file=sys.stderr)
        return EXIT_USAGE
    cache = Cache(options.cache_dir, options.cache_dirs_readonly)
    if args.action == "info":
        return _info(cache)
    if args.action == "verify":
        return _verify(cache)
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
        if cutoff is None or max(entry.mtime, _atime(entry.path)) < cutoff:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
                freed += entry.size
    if cutoff is None:
        for folder in (cache.root / "partial", cache.root / "tmp"):
            shutil.rmtree(folder, ignore_errors=True)
    print(f"robustfetch: removed {removed} entries ({human_size(freed)})")
    return EXIT_OK


def _atime(path: Path) -> float:
    try:
        return path.stat().st_atime
    except OSError:
        return 0.0
