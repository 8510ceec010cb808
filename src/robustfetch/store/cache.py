"""Content-addressed store of verified files (``sha256/<2 hex>/<64 hex>``), with locks."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..policy.digests import Verifier
from .staging import place

__all__ = ["Cache", "CacheEntry"]

log = logging.getLogger("robustfetch")
_READ = 1 << 20
_LOCK_POLL = 0.05


@dataclass(frozen=True)
class CacheEntry:
    """One stored file: its path, digest, size and last modification (Unix time)."""

    path: Path
    sha256: str
    size: int
    mtime: float


class Cache:
    """The cache folder ``root``, plus read-only folders consulted after it (like a distdir).

    Entries are written only after verification, atomically; a hit is
    verified again before use, and a corrupted entry in ``root`` is removed.
    """

    def __init__(self, root: Path, readonly: Sequence[Path] = ()) -> None:
        self.root = root
        self.readonly = tuple(readonly)

    def path_for(self, sha256: str, root: Optional[Path] = None) -> Path:
        return (root or self.root) / "sha256" / sha256[:2] / sha256

    def lookup(self, expected: Mapping[str, str]) -> Optional[tuple[Path, int]]:
        """A verified entry for ``expected['sha256']``, from ``root`` or a read-only folder."""
        sha256 = expected.get("sha256")
        if sha256 is None:
            return None
        for root in (self.root, *self.readonly):
            path = self.path_for(sha256, root)
            size = _verified_size(path, expected)
            if size is not None:
                return path, size
            if root == self.root and path.exists():
                log.warning("cache entry %s is corrupted; removing it and fetching again", path)
                with contextlib.suppress(OSError):
                    os.unlink(path)
        return None

    def entry_folder(self, sha256: str) -> Path:
        folder = self.path_for(sha256).parent
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def partial_path(self, sha256: str) -> Path:
        """Where a pinned download is staged, and stays for the next run if cut off."""
        folder = self.root / "partial"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / sha256

    def staging_folder(self) -> Path:
        """Where downloads of unknown digest wait: the same file system as the entries."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def store(self, path: Path, sha256: str) -> None:
        """Keep a verified file that landed elsewhere (a hard link when possible)."""
        entry = self.path_for(sha256)
        if not entry.exists():
            self.entry_folder(sha256)
            place(path, entry)

    @contextlib.contextmanager
    def locked(self, sha256: str, max_wait: float) -> Iterator[None]:
        """Hold the lock of one digest, so that processes download a file once.

        The OS drops the lock of a process that dies; a holder that hangs is
        waited for at most ``max_wait`` seconds, then ignored (the atomic
        commit keeps the result correct either way).
        """
        try:
            import fcntl
        except ImportError:  # Windows: no cross-process lock, still correct
            yield
            return
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{sha256}.lock", "a") as lock:
            give_up = time.monotonic() + max_wait
            while True:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= give_up:
                        log.warning(
                            "%s: lock held for over %.0f s; going ahead", lock.name, max_wait
                        )
                        yield
                        return
                    time.sleep(_LOCK_POLL)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def entries(self) -> Iterator[CacheEntry]:
        """Every entry in ``root``."""
        for path in sorted((self.root / "sha256").glob("??/*")):
            with contextlib.suppress(OSError):
                stat = path.stat()
                yield CacheEntry(path, path.name, stat.st_size, stat.st_mtime)

    def partials(self) -> list[Path]:
        """Partial downloads kept for resuming (with their validator files)."""
        folder = self.root / "partial"
        return sorted(folder.iterdir()) if folder.is_dir() else []


def _verified_size(path: Path, expected: Mapping[str, str]) -> Optional[int]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return None
    verifier = Verifier(expected)
    with handle:
        for block in iter(lambda: handle.read(_READ), b""):
            verifier.update(block)
    return None if verifier.mismatches() else verifier.size
