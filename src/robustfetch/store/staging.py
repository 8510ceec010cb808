"""Staging files (fresh or resumable), their hash state, and the atomic move into place."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from ..policy.digests import Verifier

__all__ = ["Staging", "place", "sync_data"]

_READ = 1 << 20
_O_BINARY = getattr(os, "O_BINARY", 0)


class Staging:
    """Where one download's bytes go until they are verified, and what was hashed of them.

    :attr:`size` bytes are in the file and in :attr:`verifier`, always in step:
    a transfer cut off leaves both ready to resume. A fresh staging file (next
    to the destination) is removed when the ``with`` block ends without a
    commit; a resumable one (in the cache) is kept for the next run.

    :param path: the staging file.
    :param expected: the digests to verify.
    :param keep: keep a partial file when the block ends (resume across runs).
    """

    def __init__(self, path: Path, expected: Mapping[str, str], keep: bool = False) -> None:
        self.path = path
        self.expected = dict(expected)
        self.keep = keep
        self.verifier = Verifier(expected)
        #: The validator (strong ETag or Last-Modified) and URL of the bytes staged.
        self.validator: Optional[str] = None
        self.url: Optional[str] = None
        self._file: Optional[io.FileIO] = None
        self.committed = False
        self._meta = path.with_name(path.name + ".json")

    @classmethod
    def beside(cls, folder: Path, name: str, expected: Mapping[str, str]) -> Staging:
        """A fresh, uniquely named staging file in ``folder``."""
        path = folder / f".{name[:180]}.{os.urandom(4).hex()}.robustfetch-part"
        return cls(path, expected)

    @classmethod
    def resumable(cls, path: Path, expected: Mapping[str, str]) -> Staging:
        """The staging file at ``path``, with what an earlier run left there re-hashed."""
        staging = cls(path, expected, keep=True)
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(_READ), b""):
                    staging.verifier.update(block)
            meta = json.loads(staging._meta.read_text(encoding="utf-8"))
            staging.url, staging.validator = str(meta["url"]), str(meta["validator"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # nothing staged, or no usable validator: the pinned hash still guards
        return staging

    @property
    def size(self) -> int:
        return self.verifier.size

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()
        if self.committed or (self.keep and self.size):
            return
        for path in (self.path, self._meta) if self.keep else (self.path,):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def describe(self, url: str, validator: Optional[str]) -> None:
        """Record where the staged bytes come from (kept beside a resumable file)."""
        self.url, self.validator = url, validator
        if self.keep:
            try:
                if validator is None:
                    self._meta.unlink()
                else:
                    document = {"url": url, "validator": validator}
                    self._meta.write_text(json.dumps(document), encoding="utf-8")
            except OSError:
                pass  # only resuming across runs needs it

    def restart(self, expected: Optional[Mapping[str, str]] = None) -> None:
        """The file, emptied, for a transfer from the first byte."""
        if expected is not None:
            self.expected = dict(expected)
        if self.verifier.size or expected is not None:
            self.verifier = Verifier(self.expected)
        self.validator = self.url = None
        self._open(truncate_at=0)

    def resume(self) -> None:
        """Position the file after the :attr:`size` bytes already verified."""
        self._open(truncate_at=self.size)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to the file and to the hash state, together."""
        assert self._file is not None, "restart() or resume() first"
        # Unbuffered: what was written survives a killed process, for the next run.
        view = memoryview(data)
        written = self._file.write(view) or 0
        while written < len(view):  # a short write (a signal, a full pipe): the rest
            view = view[written:]
            written = self._file.write(view) or 0
        self.verifier.update(data)

    def sync(self) -> None:
        """Make what was written so far durable."""
        if self._file is not None:
            sync_data(self._file.fileno())

    def commit(self, target: Path) -> None:
        """Sync, then atomically replace ``target`` with the staged bytes."""
        if self._file is None:
            self._open(truncate_at=self.size)
        self.sync()
        self._close()
        # The data is durable before the rename, so a crash leaves the old file
        # or the new one, never a torn one; the rename itself is not synced
        # (a folder fsync per file halves fetch_many's speed).
        os.replace(self.path, target)
        self.committed = True
        if self.keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._meta)

    def _open(self, truncate_at: int) -> io.FileIO:
        if self._file is None:
            # 0o666 lets the umask decide, as for any file a user downloads.
            flags = os.O_RDWR | os.O_CREAT | _O_BINARY
            if not self.keep:
                flags |= os.O_EXCL  # never reuse a file someone else put there
            fd = os.open(self.path, flags, 0o666)
            self._file = open(fd, "r+b", buffering=0)  # noqa: SIM115 - closed in _close
            if not self.keep:
                return self._file  # created empty: nothing to cut
        self._file.seek(truncate_at)
        self._file.truncate()
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            # A failed flush (disk full) must not prevent the clean-up.
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def place(source: Path, target: Path) -> None:
    """Put a verified file at ``target`` atomically: a hard link if possible, else a copy."""
    temporary = target.parent / f".{target.name[:180]}.{os.urandom(4).hex()}.robustfetch-part"
    try:
        try:
            os.link(source, temporary)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, temporary)
            with open(temporary, "rb+") as handle:
                sync_data(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def sync_data(fd: int) -> None:
    """Make a file's bytes durable (fdatasync: the data and what is needed to read it back)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # macOS, Windows
        os.fsync(fd)
