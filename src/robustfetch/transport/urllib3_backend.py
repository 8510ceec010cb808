"""The default transport: urllib3 pools, proxies with CONNECT, connect_to, raced addresses."""

from __future__ import annotations

import http.client
import re
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProxyError,
)
from urllib3.util import Retry, Timeout, make_headers

from ..policy.urls import normalise_host
from . import TransportError, TransportSettings
from .body import BodyReader, Buffer
from .cancel import Cancel, forget
from .eyeballs import connect
from .head import FastHeadResponse
from .proxies import proxy_for
from .watchdog import Watch, arm

__all__ = ["Urllib3Transport"]

# What the request this thread is making watches its sockets with (its deadline
# watch, its Cancel): urllib3 creates and reuses connections deep inside
# urlopen(), with no way to pass them, so they find them here.
_current = threading.local()


def _watch_socket(sock: Any) -> None:
    if sock is None:
        return
    watch: Optional[Watch] = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(sock)
    cancel: Optional[Cancel] = getattr(_current, "cancel", None)
    if cancel is not None:
        cancel.watch(sock)


def _deadline_at() -> Optional[float]:
    watch: Optional[Watch] = getattr(_current, "watch", None)
    return None if watch is None else watch.deadline_at


def _new_conn(conn: HTTPConnection) -> socket.socket:
    """urllib3's ``_new_conn``, with the host's addresses raced and the socket cancellable."""
    try:
        sock = connect(
            (conn._dns_host, conn.port),
            conn.timeout,
            cancel=getattr(_current, "cancel", None),
            source_address=conn.source_address,
            deadline_at=_deadline_at(),
            socket_options=conn.socket_options or (),
        )
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except socket.timeout as exc:
        raise ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        ) from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    watch: Optional[Watch] = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(sock)  # before TLS and any proxy tunnel: they can hang too
    return sock


class _WatchedHTTPConnection(HTTPConnection):
    """A connection whose sockets the current request's watch and Cancel can shut down."""

    response_class = FastHeadResponse  # the same head, without the e-mail parser

    #: The Cancel of the request using the connection (forgotten when it goes back).
    cancel: Optional[Cancel] = None

    def _new_conn(self) -> socket.socket:
        return _new_conn(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        self.cancel = getattr(_current, "cancel", None)
        _watch_socket(self.sock)  # a kept-alive connection, reused
        super().request(*args, **kwargs)

    def close(self) -> None:
        _forget(self)  # the Cancel's duplicate would keep the connection open
        super().close()


class _WatchedHTTPSConnection(HTTPSConnection):
    """:class:`_WatchedHTTPConnection` for https."""

    response_class = FastHeadResponse
    cancel: Optional[Cancel] = None

    def _new_conn(self) -> socket.socket:
        return _new_conn(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        self.cancel = getattr(_current, "cancel", None)
        _watch_socket(self.sock)
        super().request(*args, **kwargs)

    def close(self) -> None:
        _forget(self)
        super().close()


def _forget(conn: Any) -> bool:
    """Stop the Cancel of the request that used ``conn`` touching it; ``False`` if it may have."""
    cancel, conn.cancel = conn.cancel, None
    return forget(cancel, conn.sock)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        # urllib3 gives a connection back on its own once a body is read: another
        # request may take it next, which a hedge that loses later must not shut down.
        if conn is not None and not _forget(conn):
            conn.close()
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        if conn is not None and not _forget(conn):
            conn.close()
        super()._put_conn(conn)


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
_NUM_POOLS = 32

# A URL urllib3's parse_url would leave as it is: lower-case host name or IPv4 address,
# a port without leading zeros, a path and query of characters it never re-encodes
# (percent escapes upper-case), no ``/.`` (dot segments get removed). Anything else
# takes PoolManager.urlopen, which normalises it first.
_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9][a-z0-9.-]*)(?::([1-9][0-9]{0,4}))?"
    r"((?:/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-F]{2})*)?)"
    r"(\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-F]{2})+)?(?:#[^\x00-\x20\x7f]*)?"
)


def _plain_target(url: str) -> Optional[tuple[str, str]]:
    """The host and request target urllib3 would make of ``url``, if it needs no normalising.

    >>> _plain_target("https://h.example:8443/a/f.bin?x=1#sha256=ab")
    ('h.example', '/a/f.bin?x=1')
    >>> print(_plain_target("https://H.example/f"), _plain_target("https://h/a/../f"))
    None None
    """
    match = _PLAIN_URL.fullmatch(url)
    if match is None or "/." in match.group(4) or int(match.group(3) or 0) > 65535:
        return None  # "/.": maybe a dot segment, which urllib3 removes
    return match.group(2), (match.group(4) or "/") + (match.group(5) or "")


#: What ``retries=False, redirect=False`` becomes inside urlopen, made once.
_NO_RETRIES = Retry(False, redirect=False)


class Urllib3Transport:
    """One urllib3 ``PoolManager`` (plus one ``ProxyManager`` per proxy), shared by threads."""

    name = "urllib3"

    def __init__(self, settings: TransportSettings) -> None:
        self._settings = settings
        self._direct = self._manager(None)
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()
        # The direct pools by origin, so that a request to a known origin skips
        # PoolManager's URL parse and pool-key build (tens of µs per small file).
        self._pools: dict[tuple[str, str, int], HTTPConnectionPool] = {}
        self._timeouts: dict[tuple[float, float], Timeout] = {}

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
    ) -> Urllib3Response:
        parts = urlsplit(url)
        scheme, host = parts.scheme, normalise_host(parts.hostname or "")
        port = parts.port or (443 if scheme == "https" else 80)
        proxy = proxy_for(url, self._settings.proxies)
        manager = self._proxy_manager(proxy) if proxy else self._direct
        kwargs: dict[str, Any] = {
            "redirect": False,
            "retries": _NO_RETRIES,
            "preload_content": False,
            "decode_content": False,
            "timeout": self._timeout(connect_timeout, read_timeout),
        }
        target = address or self._settings.target_for(host, port)
        plain = _plain_target(url) if target is None and not proxy else None
        watch = _current.watch = arm(deadline_at)
        _current.cancel = cancel
        try:
            if plain is not None:
                pool = self._pool(scheme, plain[0], port)
                kwargs["assert_same_host"] = False  # as PoolManager.urlopen does
                raw = pool.urlopen("GET", plain[1], headers=dict(headers), **kwargs)
            elif target is None:
                raw = manager.urlopen("GET", url, headers=dict(headers), **kwargs)
            else:
                raw = self._open_redirected(manager, parts, host, target, headers, kwargs)
        except BaseException as exc:
            if watch is not None:
                watch.cancel()
            if isinstance(exc, ProxyError):
                raise TransportError(str(exc), via_proxy=True) from exc
            if isinstance(exc, (ConnectTimeoutError, NewConnectionError)):
                raise TransportError(str(exc), connecting=True) from exc
            if isinstance(exc, (HTTPError, OSError)):
                raise TransportError(str(exc)) from exc
            raise
        finally:
            _current.watch = None
            _current.cancel = None
        return Urllib3Response(raw, watch)

    def addresses(self, url: str, deadline_at: Optional[float] = None) -> list[tuple[str, int]]:
        return self._settings.resolve(url, deadline_at)

    def connect_time(self, url: str, timeout: float) -> Optional[float]:
        return self._settings.connect_time(url, timeout)

    def close(self) -> None:
        with self._lock:
            managers = [self._direct, *self._proxied.values()]
            self._proxied.clear()
            self._pools.clear()
        for manager in managers:
            manager.clear()

    def _pool(self, scheme: str, host: str, port: int) -> HTTPConnectionPool:
        """The direct manager's pool for this origin, remembered."""
        key = (scheme, host, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._direct.connection_from_host(host, port, scheme=scheme)
            if len(self._pools) >= _NUM_POOLS:
                # No more pools kept open than PoolManager keeps (it may have let them go).
                self._pools.clear()
            self._pools[key] = pool
        return pool

    def _timeout(self, connect: float, read: float) -> Timeout:
        # urllib3 clones a Timeout before use: one object serves every request.
        timeout = self._timeouts.get((connect, read))
        if timeout is None:
            if len(self._timeouts) >= 64:  # timeouts cut to a deadline vary per request
                self._timeouts.clear()
            timeout = self._timeouts[(connect, read)] = Timeout(connect=connect, read=read)
        return timeout

    def _open_redirected(
        self,
        manager: urllib3.PoolManager,
        parts: Any,
        host: str,
        target: tuple[str, int],
        headers: Mapping[str, str],
        kwargs: dict[str, Any],
    ) -> urllib3.BaseHTTPResponse:
        # curl's --connect-to: TCP goes to target, while SNI, Host and the
        # certificate check keep the URL's host.
        pool_kwargs: dict[str, Any] = {}
        if parts.scheme == "https":
            # The shared context checks the certificate against server_hostname.
            pool_kwargs = {"server_hostname": host}
        pool = manager.connection_from_host(
            target[0], target[1], scheme=parts.scheme, pool_kwargs=pool_kwargs
        )
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        shown = f"[{host}]" if ":" in host else host
        authority = shown if parts.port is None else f"{shown}:{parts.port}"
        request_headers = {"Host": authority, **headers}
        return pool.urlopen("GET", path, headers=request_headers, assert_same_host=False, **kwargs)

    def _proxy_manager(self, proxy: str) -> urllib3.ProxyManager:
        with self._lock:
            manager = self._proxied.get(proxy)
            if manager is None:
                manager = self._proxied[proxy] = self._manager(proxy)
            return manager

    def _manager(self, proxy: Optional[str]) -> Any:
        common: dict[str, Any] = {
            "num_pools": _NUM_POOLS,
            "maxsize": self._settings.pool_size,
            "block": False,
            "ssl_context": self._settings.context,
            "retries": False,
        }
        manager: urllib3.PoolManager
        if proxy is None:
            manager = urllib3.PoolManager(**common)
        else:
            parts = urlsplit(proxy)
            proxy_headers = None
            if parts.username is not None:
                auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                proxy_headers = make_headers(proxy_basic_auth=auth)
            manager = urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **common)
        manager.pool_classes_by_scheme = _POOLS  # our connections: raced, cancellable
        return manager


class Urllib3Response:
    """A streaming urllib3 response behind the transport's ``Response`` protocol."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, watch: Optional[Watch] = None) -> None:
        self._raw = raw
        self._watch = watch
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers
        fp = getattr(raw, "_fp", None)
        # urllib3's own readinto reads into a new bytes and copies: read the
        # http.client response below it instead.
        self._body = BodyReader(fp) if isinstance(fp, http.client.HTTPResponse) else None

    def read(self, amount: int) -> bytes:
        try:
            return self._raw.read1(amount)
        except (HTTPError, OSError) as exc:
            raise TransportError(str(exc)) from exc

    def readinto(self, buffer: Buffer) -> int:
        if self._body is None:
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        try:
            return self._body.readinto(buffer)
        except (HTTPError, OSError, http.client.HTTPException) as exc:
            raise TransportError(str(exc)) from exc

    def set_read_timeout(self, seconds: float) -> None:
        sock = getattr(getattr(self._raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(seconds, 0.001))

    def release(self) -> None:
        if self._watch is not None and self._watch.cancel():
            self.close()  # its socket was shut down: not for reuse
            return
        self._raw.release_conn()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._raw.close()
        self._raw.release_conn()
