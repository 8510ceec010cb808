"""Reads an ``http.client`` response body straight into the caller's buffers (both transports)."""

from __future__ import annotations

import http.client
import io
import socket
import ssl
from typing import Any, Callable, Optional, Union

__all__ = ["BodyReader"]

Buffer = Union[bytearray, memoryview]
# Reads ``count`` bytes at most into the buffer: one socket read (one TLS record).
_Read = Callable[[int, Buffer], int]


class BodyReader:
    """The body of ``response``, read without an intermediate ``bytes`` per chunk.

    ``http.client``'s own ``readinto`` fills the whole buffer before it returns
    (a slow source would then give no progress, speed or deadline check for a
    whole buffer), and ``read1`` allocates a new ``bytes`` per call. Here one
    call is at most one socket read (one TLS record), straight into the
    caller's memory; the length bookkeeping ``http.client`` would do is done
    here, and the response is closed at the end so its connection can serve
    the next request.

    A big body is read past ``http.client``'s buffered file once that file's
    buffer is empty: the five Python calls between the caller and OpenSSL
    cost more per 16 KiB record than the record's decryption.

    :param response: a response whose head has been read.
    """

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response
        # Chunked bodies need http.client's decoder; it copies, but servers
        # rarely chunk a file.
        self._chunked = bool(getattr(response, "chunked", False))
        self.remaining: Optional[int] = response.length
        self.received = 0
        self._direct: Optional[_Read] = None
        self._looked = False  # for a direct read: once is enough, the socket stays the same

    def readinto(self, buffer: Buffer) -> int:
        """Up to ``len(buffer)`` body bytes as soon as some arrive; ``0`` at the end.

        :raises http.client.IncompleteRead: the connection closed before the
            announced ``Content-Length``.
        """
        response = self._response
        fp = response.fp
        if fp is None:
            return 0
        if self._chunked:
            count = response.readinto(buffer)
            self.received += count
            return count
        remaining = self.remaining
        if remaining is not None:
            if remaining == 0:
                response.close()
                return 0
            if len(buffer) > remaining:
                buffer = memoryview(buffer)[:remaining]
        direct = self._direct
        if direct is not None:
            count = direct(len(buffer), buffer)
        else:
            count = fp.readinto1(buffer)
            if not self._looked and remaining is not None and len(buffer) > io.DEFAULT_BUFFER_SIZE:
                self._looked = True
                self._direct = _direct_read(fp)
        if count:
            self.received += count
            if remaining is not None:
                self.remaining = remaining - count
                if self.remaining == 0:
                    response.close()  # its connection may now send the next request
            return count
        response.close()
        if remaining:
            raise http.client.IncompleteRead(b"", remaining)
        return 0


def _direct_read(fp: object) -> Optional[_Read]:
    """One read from the socket under ``fp``, if ``fp``'s own buffer is now empty.

    ``BufferedReader.readinto1`` of more than its buffer size (which is
    ``io.DEFAULT_BUFFER_SIZE`` for ``socket.makefile``) hands over what it
    held and empties its buffer before reading the socket straight into the
    caller's memory: from then on the socket can be read directly without
    losing or reordering a byte. Anything else (a TLS-in-TLS tunnel, a
    wrapped file) keeps the buffered path.
    """
    if type(fp) is not io.BufferedReader:
        return None
    raw = fp.raw
    if not isinstance(raw, socket.SocketIO):
        return None
    sock = getattr(raw, "_sock", None)
    if type(sock) is ssl.SSLSocket:
        sslobj = getattr(sock, "_sslobj", None)
        if sslobj is None:
            return None
        return _tls_reader(sock, sslobj, getattr(sock, "suppress_ragged_eofs", True))
    if type(sock) is socket.socket:
        recv_into = sock.recv_into
        return lambda count, buffer: recv_into(buffer, count)
    return None


def _tls_reader(sock: ssl.SSLSocket, sslobj: Any, suppress_ragged_eofs: bool) -> _Read:
    """``SSLSocket.read`` without its Python layers: the same answers, the same errors."""
    read: _Read = sslobj.read

    def direct(count: int, buffer: Buffer) -> int:
        # Closed, the socket forgets its TLS object, which still knows the old
        # descriptor number: by then another connection may own that number.
        if getattr(sock, "_sslobj", None) is not sslobj:
            raise ConnectionAbortedError("the connection was closed")
        try:
            return read(count, buffer)
        except ssl.SSLError as exc:
            # A close without close_notify reads as the end, as SSLSocket.read
            # does: the length check above tells a cut body from a whole one.
            if exc.args[0] == ssl.SSL_ERROR_EOF and suppress_ragged_eofs:
                return 0
            raise

    return direct
