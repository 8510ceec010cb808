"""The standard-library transport: http.client and ssl, keep-alive pools, CONNECT proxies.

It behaves as :class:`~robustfetch.transport.urllib3_backend.Urllib3Transport` does,
for scripts that run before anything is installed. Exceptions from ``http.client``,
``ssl`` and ``socket`` are chained, untranslated, under :class:`TransportError`.
Only ``http://`` proxies are supported: an ``https://`` (or SOCKS) proxy URL is
refused with a :class:`TransportError` naming it.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Optional, Union
from urllib.parse import quote, unquote, urlsplit

from ..policy.secrets import redact
from ..policy.urls import normalise_host
from . import TransportError, TransportSettings
from .body import BodyReader, Buffer
from .cancel import Cancel, forget
from .eyeballs import connect
from .head import FastHeadResponse
from .proxies import proxy_for
from .watchdog import Watch, arm

__all__ = ["StdlibResponse", "StdlibTransport"]

# (scheme, host, port, target, proxy): connections that can serve each other's requests.
_Key = tuple[str, str, int, Optional[tuple[str, int]], Optional[str]]
_SAFE = "!$&'()*+,;=:@/%"  # sub-delims, ":", "@", "/"; "%" keeps escapes as they are
_FAILURES = (OSError, http.client.HTTPException, ValueError)
_NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
# How a kept-alive connection the server has closed meanwhile fails on reuse.
_STALE = (
    ConnectionResetError,  # http.client.RemoteDisconnected included
    ConnectionAbortedError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class _Connection(http.client.HTTPConnection):
    """An HTTP/1.1 connection on a socket that :class:`StdlibTransport` set up."""

    response_class = FastHeadResponse  # the same head, without the e-mail parser

    def __init__(self, peer: tuple[str, int], sock: socket.socket) -> None:
        super().__init__(peer[0], peer[1])
        self.sock = sock
        self.auto_open = 0  # never reconnect behind our back: a closed one is discarded


class StdlibTransport:
    """Pools of idle keep-alive connections per server (and proxy), shared by threads."""

    name = "stdlib"

    def __init__(self, settings: TransportSettings) -> None:
        self._settings = settings
        self._idle: dict[_Key, list[_Connection]] = {}
        self._lock = threading.Lock()

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
    ) -> StdlibResponse:
        watch = arm(deadline_at)
        try:
            return self._open(url, headers, connect_timeout, read_timeout, address, watch, cancel)
        except BaseException:
            if watch is not None:
                watch.cancel()
            raise

    def _open(
        self,
        url: str,
        headers: Mapping[str, str],
        connect_timeout: float,
        read_timeout: float,
        address: Optional[tuple[str, int]],
        watch: Optional[Watch],
        cancel: Optional[Cancel],
    ) -> StdlibResponse:
        parts = urlsplit(url)
        scheme, host = parts.scheme, normalise_host(parts.hostname or "")
        default = 443 if scheme == "https" else 80
        port = parts.port or default
        proxy = proxy_for(url, self._settings.proxies)
        # A pinned address is where TCP goes, as connect_to's target is.
        target = address or self._settings.target_for(host, port)
        key: _Key = (scheme, host, port, target, proxy)
        authority = _bracket(host) if port == default else f"{_bracket(host)}:{port}"
        # As urllib3 does: what may not appear raw (non-ASCII, "|", "^"...) is percent-encoded.
        path = quote(parts.path or "/", safe=_SAFE)
        if parts.query:
            path += "?" + quote(parts.query, safe=_SAFE + "?")
        request_headers = dict(headers)
        if not any(name.lower() == "host" for name in request_headers):
            request_headers = {"Host": authority, **request_headers}
        if proxy is not None and scheme == "http":
            # Absolute form to the proxy; like the TCP connection it names connect_to's target.
            to = target or (host, port)
            path = f"http://{_bracket(to[0])}:{to[1]}{path}"
            request_headers.update(_proxy_auth(proxy))
        pooled = self._checkout(key)
        if pooled is not None:
            try:
                return self._exchange(
                    key, pooled, path, request_headers, read_timeout, True, watch, cancel
                )
            except _StaleConnection:
                pass  # closed by the server while idle: once more on a fresh connection
        conn = self._connect(scheme, host, port, target, proxy, connect_timeout, watch, cancel)
        return self._exchange(key, conn, path, request_headers, read_timeout, False, watch, cancel)

    def addresses(self, url: str, deadline_at: Optional[float] = None) -> list[tuple[str, int]]:
        return self._settings.resolve(url, deadline_at)

    def connect_time(self, url: str, timeout: float) -> Optional[float]:
        return self._settings.connect_time(url, timeout)

    def close(self) -> None:
        with self._lock:
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()

    def idle_connections(self) -> int:
        """How many connections wait in the pools (for tests and probing)."""
        with self._lock:
            return sum(len(conns) for conns in self._idle.values())

    def _checkout(self, key: _Key) -> Optional[_Connection]:
        with self._lock:
            conns = self._idle.get(key)
            return conns.pop() if conns else None

    def _checkin(self, key: _Key, conn: _Connection) -> None:
        with self._lock:
            conns = self._idle.setdefault(key, [])
            if len(conns) < self._settings.pool_size:
                conns.append(conn)
                return
        conn.close()

    def _connect(
        self,
        scheme: str,
        host: str,
        port: int,
        target: Optional[tuple[str, int]],
        proxy: Optional[str],
        timeout: float,
        watch: Optional[Watch],
        cancel: Optional[Cancel] = None,
    ) -> _Connection:
        """A connection: TCP (and CONNECT through a proxy) then TLS, all under ``timeout``."""
        address = dial = target or (host, port)
        if proxy is not None:
            dial = _proxy_address(proxy)
        try:
            # A host's addresses are raced (Happy Eyeballs); cancel wakes a hedge that lost.
            sock = connect(
                dial,
                timeout,
                cancel=cancel,
                socket_options=_NODELAY,
                deadline_at=None if watch is None else watch.deadline_at,
            )
        except OSError as exc:
            raise TransportError(str(exc), via_proxy=proxy is not None, connecting=True) from exc
        if watch is not None:
            watch.attach(sock)  # from here on (CONNECT, TLS) the deadline can cut in
        try:
            if proxy is not None and scheme == "https":
                _tunnel(sock, address, _proxy_auth(proxy))
        except _FAILURES as exc:
            forget(cancel, sock)
            sock.close()
            raise TransportError(str(exc), via_proxy=proxy is not None, connecting=True) from exc
        if scheme == "https":
            try:
                # SNI and the certificate check name the URL's host, wherever TCP went;
                # ssl sends no SNI for IP literals.
                sock = self._settings.context.wrap_socket(sock, server_hostname=host)
            except _FAILURES as exc:
                forget(cancel, sock)
                sock.close()
                raise TransportError(str(exc), connecting=True) from exc
        return _Connection(dial, sock)

    def _exchange(
        self,
        key: _Key,
        conn: _Connection,
        path: str,
        headers: Mapping[str, str],
        read_timeout: float,
        reused: bool,
        watch: Optional[Watch],
        cancel: Optional[Cancel] = None,
    ) -> StdlibResponse:
        """Send the GET on ``conn`` and read the response head under ``read_timeout``."""
        sock = conn.sock
        if watch is not None:
            watch.attach(sock)
        if cancel is not None:
            cancel.watch(sock)
        try:
            sock.settimeout(max(read_timeout, 0.001))
            conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            raw = conn.getresponse()
        except _FAILURES as exc:
            forget(cancel, sock)
            conn.close()
            if reused and isinstance(exc, _STALE):
                raise _StaleConnection from exc
            raise TransportError(str(exc)) from exc
        return StdlibResponse(self, key, conn, sock, raw, watch, cancel)


class _StaleConnection(Exception):
    """A pooled connection failed before any answer: retry on a fresh one."""


def _tunnel(sock: socket.socket, address: tuple[str, int], headers: Mapping[str, str]) -> None:
    """Ask the proxy on ``sock`` for a tunnel to ``address`` (HTTP ``CONNECT``)."""
    authority = f"{_bracket(address[0])}:{address[1]}"
    head = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    answer = http.client.HTTPResponse(sock, method="CONNECT")
    try:
        answer.begin()  # the status and headers; the target speaks after our TLS hello
    finally:
        answer.close()
    if answer.status != 200:
        raise OSError(f"the proxy refused a tunnel to {authority}: {answer.status} {answer.reason}")


def _proxy_address(proxy: str) -> tuple[str, int]:
    """Where an ``http://host:port`` proxy listens; other kinds are refused."""
    parts = urlsplit(proxy)
    try:
        port = parts.port or 80
    except ValueError as exc:  # not a number, out of range
        shown = redact(proxy)  # never the proxy's password, even in an internal message
        raise TransportError(f"proxy {shown!r}: {exc}", via_proxy=True, connecting=True) from exc
    if parts.scheme != "http" or not parts.hostname:
        raise TransportError(
            f"proxy {redact(proxy)!r}: the stdlib transport supports http:// proxies only "
            "(install urllib3 for https:// proxies)",
            via_proxy=True,
            connecting=True,
        )
    return parts.hostname, port


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _proxy_auth(proxy: str) -> dict[str, str]:
    """``Proxy-Authorization`` for credentials in the proxy URL (percent-decoded), if any."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}


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
        transport: StdlibTransport,
        key: _Key,
        conn: _Connection,
        sock: Union[socket.socket, ssl.SSLSocket],
        raw: http.client.HTTPResponse,
        watch: Optional[Watch] = None,
        cancel: Optional[Cancel] = None,
    ) -> None:
        self._transport = transport
        self._watch = watch
        self._cancel = cancel
        self._key = key
        self._conn: Optional[_Connection] = conn
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
        except _FAILURES as exc:
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
        except _FAILURES as exc:
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
            self._transport._checkin(self._key, conn)
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
