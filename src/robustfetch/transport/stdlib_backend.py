"""The standard-library transport: http.client and ssl, keep-alive pools, CONNECT proxies.

It behaves as :class:`~robustfetch.transport.urllib3_backend.Urllib3Transport` does,
for scripts that run before anything is installed. Exceptions from ``http.client``,
``ssl`` and ``socket`` are chained, untranslated, under :class:`TransportError`.
Only ``http://`` proxies are supported: an ``https://`` (or SOCKS) proxy URL is
refused with a :class:`TransportError` naming it.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import threading
from collections.abc import Mapping
from typing import Optional
from urllib.parse import quote, urlsplit

from ..policy.urls import authority, normalise_host
from . import TransportError, TransportSettings
from .cancel import Cancel, forget
from .eyeballs import connect
from .head import FastHeadResponse
from .proxies import proxy_for
from .stdlib_response import FAILURES, StdlibResponse
from .tunnel import open_tunnel, proxy_address, proxy_auth
from .watchdog import Watch, arm

__all__ = ["StdlibResponse", "StdlibTransport"]

# (scheme, host, port, target, proxy): connections that can serve each other's requests.
_Key = tuple[str, str, int, Optional[tuple[str, int]], Optional[str]]
_SAFE = "!$&'()*+,;=:@/%"  # sub-delims, ":", "@", "/"; "%" keeps escapes as they are
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
        host_header = authority(host, port)
        if port == default:  # the Host header leaves the scheme's port out
            host_header = host_header.rpartition(":")[0]
        # As urllib3 does: what may not appear raw (non-ASCII, "|", "^"...) is percent-encoded.
        path = quote(parts.path or "/", safe=_SAFE)
        if parts.query:
            path += "?" + quote(parts.query, safe=_SAFE + "?")
        request_headers = dict(headers)
        if not any(name.lower() == "host" for name in request_headers):
            request_headers = {"Host": host_header, **request_headers}
        if proxy is not None and scheme == "http":
            # Absolute form to the proxy; like the TCP connection it names connect_to's target.
            to = target or (host, port)
            path = f"http://{authority(*to)}{path}"
            request_headers.update(proxy_auth(proxy))
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
            try:
                dial = proxy_address(proxy)
            except ValueError as exc:
                raise TransportError(str(exc), via_proxy=True, connecting=True) from exc
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
                open_tunnel(sock, *address, proxy_auth(proxy))
        except FAILURES as exc:
            forget(cancel, sock)
            sock.close()
            raise TransportError(str(exc), via_proxy=proxy is not None, connecting=True) from exc
        if scheme == "https":
            try:
                # SNI and the certificate check name the URL's host, wherever TCP went;
                # ssl sends no SNI for IP literals.
                sock = self._settings.context.wrap_socket(sock, server_hostname=host)
            except FAILURES as exc:
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
        except FAILURES as exc:
            forget(cancel, sock)
            conn.close()
            if reused and isinstance(exc, _STALE):
                raise _StaleConnection from exc
            raise TransportError(str(exc)) from exc
        return StdlibResponse(functools.partial(self._checkin, key), conn, sock, raw, watch, cancel)


class _StaleConnection(Exception):
    """A pooled connection failed before any answer: retry on a fresh one."""
