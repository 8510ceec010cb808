"""The scheme router, and ``file://`` sources (local mirrors) read like HTTP answers."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING, BinaryIO, Optional

from ..policy.urls import local_path
from . import Response, Transport, TransportError, TransportSettings
from .cancel import Cancel

if TYPE_CHECKING:
    from .ftp import FtpTransport

__all__ = ["FileResponse", "SchemeRouter", "list_folder"]

# Flags absent on some systems (Windows has no FIFOs to wait on, POSIX no binary mode).
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


class SchemeRouter:
    """Sends ``file:`` URLs to the file system, ``ftp:`` to ftplib, the others to ``network``.

    :param settings: for the FTP transport, made on the first ``ftp:`` URL.
    """

    def __init__(self, network: Transport, settings: Optional[TransportSettings] = None) -> None:
        self.network = network
        self.settings = settings
        self._ftp: Optional[FtpTransport] = None

    def ftp(self) -> FtpTransport:
        """The FTP transport (ftplib is imported only when an ``ftp:`` source is used)."""
        if self._ftp is None:
            if self.settings is None:
                raise TransportError("ftp:// sources need transport settings", connecting=True)
            from .ftp import FtpTransport

            self._ftp = FtpTransport(self.settings)
        return self._ftp

    def open(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        address: Optional[tuple[str, int]] = None,
        deadline_at: Optional[float] = None,
        cancel: Optional[Cancel] = None,
    ) -> Response:
        if url.startswith("file:"):
            return FileResponse.open(local_path(url))
        if url.startswith("ftp:"):
            return self.ftp().open(
                url,
                headers,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                address=address,
                deadline_at=deadline_at,
            )
        return self.network.open(
            url,
            headers,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            address=address,
            deadline_at=deadline_at,
            cancel=cancel,
        )

    def addresses(self, url: str, deadline_at: Optional[float] = None) -> list[tuple[str, int]]:
        # FTP has no certificate to differ per address: nothing to try again there.
        if url.startswith(("file:", "ftp:")):
            return []
        return self.network.addresses(url, deadline_at)

    def connect_time(self, url: str, timeout: float) -> Optional[float]:
        if url.startswith("file:"):
            return 0.0
        if url.startswith("ftp:"):
            return self.ftp().connect_time(url, timeout)
        return self.network.connect_time(url, timeout)

    def close(self) -> None:
        self.network.close()


class FileResponse:
    """A local file read as if it were a 200 answer; a missing one is a 404, as on a server."""

    def __init__(self, status: int, handle: Optional[BinaryIO], size: int, reason: str) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {"Content-Length": str(size)} if handle else {}
        self._unread = reason.encode()
        self._handle = handle

    @classmethod
    def open(cls, path: str) -> FileResponse:
        # Opening a FIFO or a device waits for a writer for ever, whatever the deadline:
        # open without waiting, keep only a regular file (what was opened, not the name).
        flags = os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC | _O_BINARY
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return cls(404, None, 0, f"no file {path}")
        except OSError as exc:
            status = 403 if exc.errno in (errno.EACCES, errno.EPERM, errno.EISDIR) else 500
            return cls(status, None, 0, f"cannot open {path}: {exc.strerror}")
        try:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                os.close(fd)
                return cls(404, None, 0, f"{path} is not a regular file")
            if _O_NONBLOCK:
                os.set_blocking(fd, True)
            handle = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        return cls(200, handle, found.st_size, "")

    def read(self, amount: int) -> bytes:
        if self._handle is None:
            body, self._unread = self._unread, b""
            return body
        try:
            return self._handle.read(amount)
        except OSError as exc:
            raise TransportError(str(exc)) from exc

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._handle is None:
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        try:
            count: int = self._handle.readinto(buffer)  # type: ignore[attr-defined]
            return count
        except OSError as exc:
            raise TransportError(str(exc)) from exc

    def set_read_timeout(self, seconds: float) -> None:
        """Local reads do not time out."""

    def release(self) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def list_folder(path: str) -> Optional[list[str]]:
    """Names of the regular files in folder ``path`` (sorted); ``None`` if it is no folder."""
    try:
        with os.scandir(path) as entries:
            return sorted(entry.name for entry in entries if entry.is_file())
    except OSError:
        return None
