"""Staging files (fresh or resumable), their hash state, and the atomic move into place."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from ..policy.digests import DigestValue, Verifier, is_pinned
from .files import (
    RENAME_OPEN,
    claim,
    crash_point,
    crash_target,
    create_new,
    open_regular,
    remove,
    replace,
    sweep,
    sync_data,
    temporary_name,
)
from .locks import names

__all__ = ["Staging", "sync_data"]

_READ = 1 << 20
# At most this much per write(2). A bigger write lets the kernel back it with
# one large page-cache folio (1 MiB on ext4 since Linux 6.x); when other files
# have fragmented memory, finding one costs compaction: ten times the CPU of
# the copy itself, measured on this project's CI machine after a benchmark wrote
# 1.5 GiB. Writes of 256 KiB cost the same as 1 MiB ones when memory is calm.
_WRITE_MAX = 256 << 10
_META_MAX = 64 << 10  # a validator file is a few hundred bytes; anything bigger is not ours

# Where os.pwrite is missing, segments share the file position: one writer at a time.
_POSITION = threading.Lock()


class Staging:
    """Where one download's bytes go until they are verified, and what was hashed of them.

    :attr:`size` bytes are in the file and in :attr:`verifier`, always in step:
    a transfer cut off leaves both ready to resume. A fresh staging file (next
    to the destination) is removed when the ``with`` block ends without a
    commit; a resumable one (in the cache) is kept for the next run.

    :param path: the staging file.
    :param expected: the digests to verify.
    :param keep: keep a partial file when the block ends (resume across runs).
    :param name: the file's name, for recognising an HTML page that is not the file.
    """

    def __init__(
        self, path: Path, expected: Mapping[str, DigestValue], keep: bool = False, name: str = ""
    ) -> None:
        self.path = path
        self.expected = dict(expected)
        self.keep = keep
        self.name = name
        #: The caller pinned a strong hash: fixed here, while :attr:`expected` may gain
        #: witnesses (an index's hash), which never unlock plain http.
        self.pinned = is_pinned(expected)
        self.verifier = Verifier(expected)
        #: The validator (strong ETag or Last-Modified) and URL of the bytes staged.
        self.validator: Optional[str] = None
        self.url: Optional[str] = None
        self._file: Optional[io.FileIO] = None
        self.committed = False
        self._described: Optional[tuple[str, Optional[str]]] = None
        self._crash = crash_target()  # test seam

    @classmethod
    def beside(cls, folder: Path, name: str, expected: Mapping[str, DigestValue]) -> Staging:
        """A fresh, uniquely named staging file in ``folder`` (created on first use).

        What killed processes left in ``folder`` is swept away first.
        """
        sweep(folder)
        return cls(folder / temporary_name(name), expected, name=name)

    @classmethod
    def resumable(cls, path: Path, expected: Mapping[str, DigestValue], name: str = "") -> Staging:
        """The staging file at ``path``, with what an earlier run left there re-hashed.

        The caller holds the lock of this file: it is opened (or created) now
        and stays open until the commit, so that the bytes hashed are the
        bytes committed. A link or anything but a regular file found there is
        removed, never followed.
        """
        staging = cls(path, expected, keep=True, name=name)
        staging._file = open(claim(path), "r+b", buffering=0)  # noqa: SIM115 - closed in _close
        try:
            for block in iter(lambda: staging._read(), b""):
                staging.verifier.update(block)
        except BaseException:
            staging._close()
            raise
        try:
            meta = json.loads(_read_small(staging._meta))
            staging.url, staging.validator = str(meta["url"]), str(meta["validator"])
            staging._described = (staging.url, staging.validator)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # nothing staged, or no usable validator: the pinned hash still guards
        return staging

    @property
    def _meta(self) -> Path:
        """The validator file beside a resumable staging file (fresh ones have none)."""
        return self.path.with_name(self.path.name + ".json")

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
            with contextlib.suppress(OSError):
                remove(path)

    def describe(self, url: str, validator: Optional[str]) -> None:
        """Record where the staged bytes come from (kept beside a resumable file).

        The file is rewritten only when this changes, not on every try.
        """
        self.url, self.validator = url, validator
        if not self.keep or self._described == (url, validator):
            return
        temporary: Optional[Path] = None
        try:
            if validator is None:
                remove(self._meta)
            else:
                document = json.dumps({"url": url, "validator": validator}).encode()
                # A fresh file renamed over the old name: a link planted there is replaced.
                temporary = self._meta.with_name(temporary_name(self._meta.name))
                fd = create_new(temporary, os.O_WRONLY)
                try:
                    os.write(fd, document)
                finally:
                    os.close(fd)
                replace(temporary, self._meta)
            self._described = (url, validator)
        except OSError:  # only resuming across runs needs it
            if temporary is not None:
                with contextlib.suppress(OSError):
                    remove(temporary)

    def restart(self, expected: Optional[Mapping[str, DigestValue]] = None) -> None:
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
        file, view = self._file, memoryview(data)
        while view:  # short writes (a signal) go on with the rest
            view = view[file.write(view[:_WRITE_MAX]) or 0 :]
        self.verifier.update(data)
        if self._crash == "write":
            crash_point("write")

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` at ``offset`` (a segment of a split download), thread-safely.

        The hash state is not touched: :meth:`rehash` reads the whole file back
        once every segment is in.
        """
        assert self._file is not None, "restart() first"
        fd = self._file.fileno()
        view = memoryview(data)
        while view:
            piece = view[:_WRITE_MAX]
            if hasattr(os, "pwrite"):
                written = os.pwrite(fd, piece, offset)
            else:  # Windows: one writer at a time moves the shared position
                with _POSITION:
                    os.lseek(fd, offset, os.SEEK_SET)
                    written = os.write(fd, piece)
            view, offset = view[written:], offset + written

    def rehash(self) -> None:
        """Hash the file as it is now, from its first byte (after :meth:`write_at`)."""
        assert self._file is not None, "restart() first"
        self.verifier = Verifier(self.expected)
        self._file.seek(0)
        for block in iter(self._read, b""):
            self.verifier.update(block)

    def sync(self) -> None:
        """Make what was written so far durable."""
        if self._file is not None:
            sync_data(self._file.fileno())

    def commit(self, target: Path, mode: Optional[int] = None) -> None:
        """Sync, then atomically replace ``target`` with the staged bytes.

        :param mode: permissions to give the file first (``0o444`` for cache entries).
        """
        file = self._file if self._file is not None else self._open(truncate_at=self.size)
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(file.fileno(), mode)
        self.sync()
        crash_point("sync")
        if not names(file.fileno(), self.path):
            raise OSError(f"{self.path} was replaced by someone else; not committing it")
        if not RENAME_OPEN:
            self._close()  # Windows renames no open file
        if mode is not None and not hasattr(os, "fchmod"):  # Windows
            os.chmod(self.path, mode)
        crash_point("rename")
        # The data is durable before the rename, so a crash leaves the old file
        # or the new one, never a torn one; the rename itself is not synced
        # (a folder fsync per file halves fetch_many's speed). The file stays open,
        # and so marked in use, until renamed: another process's sweep leaves it.
        try:
            replace(self.path, target)
        finally:
            self._close()
        self.committed = True
        if self.keep:
            with contextlib.suppress(OSError):
                remove(self._meta)

    def _read(self) -> bytes:
        assert self._file is not None
        return self._file.read(_READ) or b""

    def _open(self, truncate_at: int) -> io.FileIO:
        if self._file is None:
            # Created here, exclusively: never a file (or link) someone else put there.
            self._file = open(create_new(self.path), "r+b", buffering=0)  # noqa: SIM115
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


def _read_small(path: Path) -> bytes:
    """A small regular file's bytes (not through a link, never waiting on a FIFO)."""
    fd = open_regular(path)
    if fd is None:
        raise FileNotFoundError(path)
    try:
        return os.read(fd, _META_MAX)
    finally:
        os.close(fd)
