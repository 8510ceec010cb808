"""The staging file beside the destination, and the atomic move of verified bytes into place."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Optional

__all__ = ["Staging", "sync_data"]

_BUFFER = 1 << 20


class Staging:
    """A temporary file in ``folder``; removed unless :meth:`commit` moved it into place.

    Use as a context manager: leaving the block without a commit removes
    the file, whatever the exception.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.path = folder / f".{name[:180]}.{secrets.token_hex(4)}.robustfetch-part"
        self._file: Optional[BinaryIO] = None

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()

    def restart(self) -> BinaryIO:
        """The file, emptied, ready for a new transfer."""
        if self._file is None:
            # O_EXCL: never follow or reuse a file someone else put there;
            # 0o666 lets the umask decide, as for any file a user downloads.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
            self._file = open(fd, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed by commit/discard
        else:
            self._file.seek(0)
            self._file.truncate()
        return self._file

    def commit(self, target: Path) -> None:
        """Flush, fsync and atomically replace ``target`` with the staged bytes."""
        if self._file is None:
            self.restart()
        assert self._file is not None
        self._file.flush()
        sync_data(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.path, target)
        _fsync_folder(target.parent)

    def discard(self) -> None:
        """Close and remove the staged file, if it is still there."""
        if self._file is not None:
            # A failed flush (disk full) must not prevent the removal.
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


_O_BINARY = getattr(os, "O_BINARY", 0)


def sync_data(fd: int) -> None:
    """Make a file's bytes durable (fdatasync: the data and what is needed to read it back)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # macOS, Windows
        os.fsync(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on Windows."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
