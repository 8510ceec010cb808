"""``ftp://`` sources with the standard library (ftplib): passive, binary, resumed with REST.

An FTP download is presented as an HTTP-like answer, so the engine treats it
as any other source: ``200`` with ``Content-Length`` (from ``SIZE``) for a
whole file, ``206`` with ``Content-Range`` when ``Range: bytes=N-`` asked
for a resume (``REST N``), ``416`` when the offset is past the end; an
``Authorization: Basic`` header becomes ``USER`` and ``PASS``. FTP's
own failures (``550``, ``530``, a transfer the server aborted) are raised as
:class:`~robustfetch.transport.TransportError` around the ftplib exception,
and classified from there.
"""

from __future__ import annotations

import ftplib
import socket
import time
from collections.abc import Mapping
from typing import Optional, Union
from urllib.parse import unquote, urlsplit

from ..policy.access import ftp_login
from ..policy.headers import parse_digits
from ..policy.urls import normalise_host
from . import TransportError, TransportSettings
from .eyeballs import connect
from .watchdog import Watch, arm

__all__ = ["FTP_PORT", "FtpResponse", "FtpTransport"]

FTP_PORT = 21
_ANONYMOUS = ("anonymous", "anonymous@")
# REST refused: the server cannot resume, the file is sent whole instead.
_NO_REST = ("500", "501", "502", "504")
Buffer = Union[bytearray, memoryview]


class FtpTransport:
    """Opens one control and one passive data connection per download (no pooling).

    The login is the request's ``Authorization: Basic`` header, the one
    :func:`~robustfetch.policy.access.credentials_for` chose for this server;
    anonymous without one.

    :param settings: ``connect_to`` is honoured; proxies are not (FTP does not
        go through an HTTP proxy).
    """

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings

    def open(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        address: Optional[tuple[str, int]] = None,
        deadline_at: Optional[float] = None,
    ) -> FtpResponse:
        """Log in, ask for the file's size and start its transfer; the head of the answer.

        ``deadline_at``: both connections are shut down then, whatever they are doing.
        """
        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        port = parts.port or FTP_PORT
        target = address or self.settings.target_for(host, port) or (host, port)
        folder, _, name = parts.path.lstrip("/").rpartition("/")
        offset = _range_offset(headers.get("Range"))
        watch = arm(deadline_at)
        ftp = _WatchedFTP(connect_timeout, watch)
        connecting = True
        try:
            ftp.connect(target[0], target[1])
            # Chosen by policy.access.credentials_for for this host only, sent as for http.
            login = headers.get("Authorization")
            user, password = (login and ftp_login(login)) or _ANONYMOUS
            ftp.login(user, password)
            connecting = False
            ftp.set_pasv(True)
            ftp.voidcmd("TYPE I")
            if folder:
                ftp.cwd(unquote(folder))
            name = unquote(name)
            size = _size(ftp, name)
            if size is not None and offset and offset >= size:
                ftp.close()
                if watch is not None:
                    watch.cancel()
                return FtpResponse.empty(416, {"Content-Range": f"bytes */{size}"})
            data, offset = _retrieve(ftp, name, offset)
            if watch is not None:
                watch.attach(data)
            data.settimeout(read_timeout)
            if ftp.sock is not None:
                ftp.sock.settimeout(read_timeout)
        except BaseException as exc:
            ftp.close()
            if watch is not None:
                watch.cancel()
            if isinstance(exc, (OSError, EOFError, ftplib.Error)):
                raise TransportError(_describe(exc), connecting=connecting) from exc
            raise
        return FtpResponse(ftp, data, offset, size, watch=watch)

    def connect_time(self, url: str, timeout: float) -> Optional[float]:
        """Seconds a TCP connection to the server's control port takes; ``None`` if it fails."""
        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        port = parts.port or FTP_PORT
        target = self.settings.target_for(host, port) or (host, port)
        started = time.monotonic()
        try:
            connect(target, timeout, deadline_at=started + timeout).close()
        except OSError:
            return None
        return time.monotonic() - started


class _WatchedFTP(ftplib.FTP):
    """``ftplib.FTP`` whose control connection a deadline watch shuts down, greeting included."""

    def __init__(self, timeout: float, watch: Optional[Watch]) -> None:
        super().__init__(timeout=timeout)
        self._watch = watch

    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: object = None
    ) -> str:
        # ftplib's own connect reads the greeting before a caller could watch the socket.
        self.host, self.port = host, port
        # Raced addresses, and a name look-up that ends by the deadline (as for http).
        deadline_at = None if self._watch is None else self._watch.deadline_at
        sock = connect((host, port), self.timeout, deadline_at=deadline_at)
        if self._watch is not None:
            self._watch.attach(sock)
        self.sock = sock
        self.af = sock.family
        self.file = sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


class FtpResponse:
    """The data connection of one ``RETR``, read like an HTTP body.

    At the end of the data the control connection's final reply is read: a
    transfer the server aborted (``426``, ``451``) raises, it never looks complete.
    """

    def __init__(
        self,
        ftp: Optional[ftplib.FTP],
        data: Optional[socket.socket],
        offset: int,
        size: Optional[int],
        status: Optional[int] = None,
        headers: Optional[dict[str, str]] = None,
        watch: Optional[Watch] = None,
    ) -> None:
        self._ftp = ftp
        self._data = data
        self._watch = watch
        if status is not None:
            self.status = status
            self.headers: Mapping[str, str] = headers or {}
            return
        self.status = 206 if offset else 200
        made: dict[str, str] = {}
        if size is not None:
            made["Content-Length"] = str(size - offset)
        if offset:
            end = f"{size - 1}/{size}" if size is not None else "*/*"
            made["Content-Range"] = f"bytes {offset}-{end}"
        self.headers = made

    @classmethod
    def empty(cls, status: int, headers: dict[str, str]) -> FtpResponse:
        """An answer with no body and no connection (``416``)."""
        return cls(None, None, 0, None, status, headers)

    def read(self, amount: int) -> bytes:
        buffer = bytearray(amount)
        count = self.readinto(buffer)
        return bytes(buffer[:count])

    def readinto(self, buffer: Buffer) -> int:
        data = self._data
        if data is None:
            return 0
        try:
            count = data.recv_into(buffer)
        except OSError as exc:
            self.close()
            raise TransportError(_describe(exc)) from exc
        if count:
            return count
        self._finish()
        return 0

    def set_read_timeout(self, seconds: float) -> None:
        for sock in (self._data, self._ftp.sock if self._ftp is not None else None):
            if sock is not None:
                sock.settimeout(seconds)

    def release(self) -> None:
        self.close()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        data, self._data = self._data, None
        ftp, self._ftp = self._ftp, None
        if data is not None:
            data.close()
        if ftp is not None:
            ftp.close()

    def _finish(self) -> None:
        """The data ended: only the server's final reply says whether it was all of it."""
        data, self._data = self._data, None
        assert data is not None
        data.close()
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            ftp.voidresp()  # still watched: a final reply that never comes is the deadline's
        except (OSError, EOFError, ftplib.Error) as exc:
            raise TransportError(_describe(exc)) from exc
        finally:
            ftp.close()
            if self._watch is not None:
                self._watch.cancel()


def _retrieve(ftp: ftplib.FTP, name: str, offset: int) -> tuple[socket.socket, int]:
    """The data connection of ``RETR name`` from ``offset`` (0 when REST is refused)."""
    if offset:
        try:
            return ftp.transfercmd(f"RETR {name}", offset), offset
        except ftplib.error_perm as exc:
            if not str(exc).startswith(_NO_REST):
                raise
        except ftplib.error_reply:  # REST answered with something other than 350
            pass
    return ftp.transfercmd(f"RETR {name}"), 0


def _size(ftp: ftplib.FTP, name: str) -> Optional[int]:
    """``SIZE name`` (RFC 3659), or ``None`` where the server does not say.

    A missing file is left for ``RETR`` to report: some servers refuse SIZE
    for files that exist.
    """
    try:
        reply = ftp.sendcmd(f"SIZE {name}")
    except ftplib.error_perm:
        return None
    if not reply.startswith("213"):
        return None
    return parse_digits(reply[3:].strip())


def _range_offset(value: Optional[str]) -> int:
    """N of ``Range: bytes=N-``; anything else asks for the whole file."""
    if not value or not value.startswith("bytes=") or not value.endswith("-"):
        return 0
    return parse_digits(value[len("bytes=") : -1]) or 0


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, ftplib.Error):
        return f"FTP server said: {text}" if text else "unexpected FTP reply"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
