"""Content-addressed store of verified files (``sha256/<2 hex>/<64 hex>``), with locks."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..policy.digests import DigestValue, Verifier, accepted
from .files import deliver, open_regular, remove, sweep
from .locks import LockTimeout, hold, orphaned

__all__ = ["ENTRY_MODE", "Cache", "CacheConflict", "CacheEntry", "LockTimeout"]

log = logging.getLogger("robustfetch")
_READ = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")
#: Entries are read-only: a verified file is never changed in place, only replaced.
ENTRY_MODE = 0o444


@dataclass(frozen=True)
class CacheEntry:
    """One stored file: its path, digest, size and last modification (Unix time)."""

    path: Path
    sha256: str
    size: int
    mtime: float


class CacheConflict(Exception):
    """Every sha256 candidate is cached, intact, and fails another hash the request gives.

    No source can then match all the hashes (a file's sha256 decides its other
    digests): the hashes given disagree with each other. The entries stay.

    :param conflicts: ``(entry, algorithm, expected, actual)`` for each candidate.
    """

    def __init__(self, conflicts: list[tuple[Path, str, str, str]]) -> None:
        super().__init__("the hashes given for this file disagree with each other")
        self.conflicts = conflicts


class Cache:
    """The cache folder ``root``, plus read-only folders consulted after it (like a distdir).

    Entries are written only after verification, atomically, read-only; a
    hit is verified again before use, and a corrupted entry in ``root`` (or
    anything but a regular file there) is removed.
    """

    def __init__(self, root: Path, readonly: Sequence[Path] = ()) -> None:
        self.root = root
        self.readonly = tuple(readonly)

    def path_for(self, sha256: str, root: Optional[Path] = None) -> Path:
        return (root or self.root) / "sha256" / sha256[:2] / sha256

    def lookup(self, expected: Mapping[str, DigestValue]) -> Optional[tuple[Path, int]]:
        """A verified entry for ``expected['sha256']`` (any of its candidates).

        Looked up in ``root``, then in the read-only folders. An entry is
        corrupted (and removed from ``root``) only when its content does not
        have the sha256 it is named by; one that fails another of ``expected``'s
        hashes is not served, and stays.

        :raises CacheConflict: when that happens to every candidate.
        """
        value = expected.get("sha256")
        if value is None:
            return None
        candidates = sorted(accepted(value))
        conflicts: list[tuple[Path, str, str, str]] = []
        for sha256 in candidates:
            for root in (self.root, *self.readonly):
                path = self.path_for(sha256, root)
                # The cache's own entries are never links; a read-only folder's may be.
                checked = _check(path, {**expected, "sha256": sha256}, follow=root != self.root)
                if checked is not None and not any(m[0] == "sha256" for m in checked[1]):
                    size, wrong = checked
                    if not wrong:
                        return path, size
                    conflicts.append((path, *wrong[0]))
                    break  # this candidate's bytes are known: no other copy does better
                if root == self.root and os.path.lexists(path):
                    log.warning("cache entry %s is corrupted; removing it and fetching again", path)
                    with contextlib.suppress(OSError):
                        remove(path)
        if conflicts and len(conflicts) == len(candidates):
            raise CacheConflict(conflicts)
        return None

    def entry_folder(self, sha256: str) -> Path:
        folder = self.path_for(sha256).parent
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def partial_path(self, sha256: str) -> Path:
        """Where a pinned download is staged, and stays for the next run if cut off.

        Only the holder of the digest's :meth:`lock` may open it.
        """
        folder = self.root / "partial"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / sha256

    def staging_folder(self) -> Path:
        """Where downloads of unknown digest wait: the same file system as the entries."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def store(self, path: Path, sha256: str) -> None:
        """Keep a copy of a verified file that landed elsewhere (a reflink where possible)."""
        entry = self.path_for(sha256)
        if os.path.lexists(entry):
            checked = _check(entry, {"sha256": sha256}, follow=False)
            if checked is not None and not checked[1]:
                return
            log.warning("cache entry %s is corrupted; replacing it", entry)
        self.entry_folder(sha256)
        deliver(path, entry, ENTRY_MODE)

    def lock(
        self, sha256: str, max_wait: float, remove: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the lock of one digest (processes and threads download a file once).

        Raises :class:`LockTimeout` when another holder keeps it ``max_wait``
        seconds: the caller then fails or stages on its own, never in the
        digest's partial file. The OS drops the lock of a process that dies.
        """
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return hold(folder / f"{sha256}.lock", max_wait, remove)

    def entries(self) -> Iterator[CacheEntry]:
        """Every entry in ``root``."""
        for path in sorted((self.root / "sha256").glob("??/*")):
            if not _DIGEST.fullmatch(path.name):
                continue  # a copy being made
            with contextlib.suppress(OSError):
                stat = path.lstat()
                yield CacheEntry(path, path.name, stat.st_size, stat.st_mtime)

    def partials(self) -> list[Path]:
        """Partial downloads kept for resuming (with their validator files)."""
        folder = self.root / "partial"
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def remove_entry(self, entry: CacheEntry) -> bool:
        """Remove ``entry`` unless a process is using its digest now; True if removed."""
        return self._under_lock(entry.sha256, [entry.path])

    def clear_staging(self) -> None:
        """Remove partial downloads, staging files and locks that nobody is using.

        A partial is removed under its digest's lock (kept while held), so
        that a download in progress in another process keeps its file.
        """
        for path in self.partials():
            digest = path.name.lstrip(".")[:64]
            if _DIGEST.fullmatch(digest):
                self._under_lock(digest, [path.parent / digest, path.parent / f"{digest}.json"])
            elif orphaned(path):
                with contextlib.suppress(OSError):
                    remove(path)
        for folder in (self.root / "tmp", self.root / "partial", *self.root.glob("sha256/??")):
            sweep(folder, always=True)
        locks = self.root / "locks"
        for path in sorted(locks.glob("*.lock")) if locks.is_dir() else []:
            self._under_lock(path.stem, [])

    def _under_lock(self, digest: str, paths: list[Path]) -> bool:
        try:
            with self.lock(digest, 0, remove=True):
                for path in paths:
                    remove(path)
        except LockTimeout:
            log.info("%s is in use by another process; kept", digest)
            return False
        except OSError as exc:
            log.info("cannot remove %s: %s", digest, exc)
            return False
        return True


def _check(
    path: Path, expected: Mapping[str, DigestValue], follow: bool
) -> Optional[tuple[int, list[tuple[str, str, str]]]]:
    """The size of the regular file at ``path`` and its mismatches, or ``None`` if none is there."""
    fd = open_regular(path, follow)
    if fd is None:
        return None
    verifier = Verifier(expected)
    with open(fd, "rb") as handle:
        for block in iter(lambda: handle.read(_READ), b""):
            verifier.update(block)
    return verifier.size, verifier.mismatches()
