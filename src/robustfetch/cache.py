"""Content-addressed store of verified files, laid out ``sha256/<2 hex>/<64 hex>``."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from .digests import Verifier

__all__ = ["Cache"]

log = logging.getLogger("robustfetch")
_READ = 1 << 20


class Cache:
    """The cache folder ``root``; entries are written only after verification."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def staging_folder(self) -> Path:
        """Where downloads of unknown digest wait: same filesystem as the entries."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def entry_folder(self, sha256: str) -> Path:
        folder = self.path_for(sha256).parent
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def lookup(self, expected: Mapping[str, str]) -> Optional[tuple[Path, int]]:
        """The entry for ``expected['sha256']`` if present and still correct.

        A corrupted entry is removed (and logged) so that it is fetched again.
        """
        sha256 = expected.get("sha256")
        if sha256 is None:
            return None
        path = self.path_for(sha256)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return None
        verifier = Verifier(expected)
        with handle:
            for block in iter(lambda: handle.read(_READ), b""):
                verifier.update(block)
        if verifier.mismatches():
            log.warning("cache entry %s is corrupted; removing it and fetching again", path)
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None
        return path, verifier.size


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_READ), b""):
            digest.update(block)
    return digest.hexdigest()
