"""Copies of cache entries in the hashed-mirror layout (``<dir>/sha256/<2 hex>/<hex>``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..policy.digests import Verifier
from .staging import sync_data

__all__ = ["export_entry", "exported_path"]

_READ = 1 << 20


def exported_path(root: Path, sha256: str) -> Path:
    """Where ``sha256`` lives under ``root``: the layout of the cache and of hashed mirrors."""
    return root / "sha256" / sha256[:2] / sha256


def export_entry(entry: Path, sha256: str, root: Path) -> bool:
    """Copy the cache ``entry`` to :func:`exported_path`, verified and atomically.

    The bytes are hashed as they are copied; a copy whose hash is not
    ``sha256`` (a corrupted entry) is removed and ``False`` returned. An
    existing copy that verifies is kept as it is. A copy (never a link): the
    exported tree must not share storage with the cache.

    :raises OSError: the entry cannot be read or the copy written.
    """
    target = exported_path(root, sha256)
    if _verifies(target, sha256):
        return True
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{sha256}.{os.urandom(4).hex()}.robustfetch-part"
    verifier = Verifier({"sha256": sha256})
    try:
        with open(entry, "rb") as source, open(temporary, "xb") as copy:
            for block in iter(lambda: source.read(_READ), b""):
                verifier.update(block)
                copy.write(block)
            copy.flush()
            sync_data(copy.fileno())
        if verifier.mismatches():
            os.unlink(temporary)
            return False
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return True


def _verifies(path: Path, sha256: str) -> bool:
    verifier = Verifier({"sha256": sha256})
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_READ), b""):
                verifier.update(block)
    except OSError:
        return False
    return not verifier.mismatches()
