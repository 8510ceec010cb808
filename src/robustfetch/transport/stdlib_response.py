"""The standard-library transport's response: a streaming ``http.client`` answer and its headers."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional, Union

from . import TransportError
from .body import BodyReader, Buffer
from .cancel import Cancel, forget
from .watchdog import Watch

__all__ = ["FAILURES", "StdlibResponse"]

#: What http.client, ssl and socket raise for a failed exchange.
FAILURES = (OSError, http.client.HTTPException, ValueError)


class _Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; repeated ones joined with ``", "``."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            key = name.lower()
            if key in self._items:
                value = f"{self._items[key][1]}, {value}"
                name = self._items[key][0]
            self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def get(self, name: str, default: Any = None) -> Any:
        # Most look-ups miss (Content-Range, Repr-Digest...): no KeyError raised per miss.
        item = self._items.get(name.lower())
        return default if item is None else item[1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"_Headers({dict(self.items())!r})"


class StdlibResponse:
    """A streaming ``http.client`` response behind the transport's ``Response`` protocol."""

    def __init__(
        self,
        checkin: Callable[[Any], None],
        conn: http.client.HTTPConnection,
        sock: Union[socket.socket, ssl.SSLSocket],
        raw: http.client.HTTPResponse,
        watch: Optional[Watch] = None,
        cancel: Optional[Cancel] = None,
    ) -> None:
        self._checkin = checkin
        self._watch = watch
        self._cancel = cancel
        self._conn: Optional[http.client.HTTPConnection] = conn
        self._sock = sock  # kept: http.client drops conn.sock when the server will close
        self._raw = raw
        self._expected = raw.length  # None when chunked or delimited by the close
        self._received = 0
        self._finished = False
        self._body = BodyReader(raw)
        self.status = raw.status
        self.headers: Mapping[str, str] = _Headers(raw.getheaders())

    def read(self, amount: int) -> bytes:
        try:
            data = self._raw.read1(amount)
        except FAILURES as exc:
            raise TransportError(str(exc)) from exc
        self._received += len(data)
        if data or amount <= 0:
            return data
        # http.client's read1 ends quietly when a Content-Length body is cut short.
        if self._expected is not None and self._received < self._expected:
            missing = self._expected - self._received
            cause = http.client.IncompleteRead(b"", missing)
            raise TransportError(
                f"body cut short: {self._received} of {self._expected} bytes, "
                "then the server closed the connection"
            ) from cause
        self._finished = True
        return data

    def readinto(self, buffer: Buffer) -> int:
        try:
            count = self._body.readinto(buffer)
        except http.client.IncompleteRead as exc:
            got = self._body.received
            of = "" if exc.expected is None else f" of {got + exc.expected}"
            raise TransportError(
                f"body cut short: {got}{of} bytes, then the server closed the connection"
            ) from exc
        except FAILURES as exc:
            raise TransportError(str(exc)) from exc
        if not count and len(buffer):
            self._finished = True
        return count

    def set_read_timeout(self, seconds: float) -> None:
        self._sock.settimeout(max(seconds, 0.001))

    def peer_certificate(self) -> Optional[bytes]:
        """The server's certificate (DER), or ``None`` over plain HTTP."""
        if isinstance(self._sock, ssl.SSLSocket):
            return self._sock.getpeercert(binary_form=True)
        return None

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return  # already released or closed
        fired = self._watch is not None and self._watch.cancel()
        # A pooled connection may serve another request next: this one's Cancel
        # (a hedge that loses later) must not shut it down then.
        intact = forget(self._cancel, self._sock)
        self._raw.close()  # frees http.client's state for the next request; keeps the socket
        if self._finished and not self._raw.will_close and not fired and intact:
            self._checkin(conn)
            return
        conn.close()
        self._sock.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return  # already released (maybe to the pool) or closed
        if self._watch is not None:
            self._watch.cancel()
        forget(self._cancel, self._sock)  # its duplicate would keep the connection open
        self._raw.close()
        conn.close()
        self._sock.close()
