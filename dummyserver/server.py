"""A threaded HTTP/1.1 test server (plain or TLS) whose routes misbehave on request.

``Server`` answers registered :class:`Route` paths on a loopback address and an ephemeral
port, keeps connections alive, records every request, and can fail, hang, stall, truncate,
reset, lie about lengths or trickle bodies. ``RawServer`` hands raw connections to a callable.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

from dummyserver._net import (
    MAX_WAIT,
    Conn,
    Listener,
    RequestHead,
    Stopped,
    format_host,
    http_date,
    parse_head,
    reason,
)

__all__ = ["RawServer", "Recorded", "Route", "Server", "serve_bytes"]

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass
class Route:
    """How the server answers one path. Byte counts below count body (payload) bytes.

    (Fields use ``Optional[...]`` so ``typing.get_type_hints(Route)`` works on Python 3.9.)
    """

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # extra/overriding response headers
    fail_first: int = 0  # the first N requests to this route get fail_status instead
    fail_status: int = 503
    fail_headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "0"}
    fail_body: bytes = b""
    hang_before_headers: bool = False  # read the request, then send nothing until close()
    stall_after: Optional[int] = None  # headers + N body bytes, then nothing until close()
    truncate_after: Optional[int] = None  # headers + N body bytes, then clean close (FIN)
    reset_after: Optional[int] = None  # headers + N body bytes, then RST (SO_LINGER 0)
    content_length: Optional[int] = None  # lie in Content-Length, send the real body, then close
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    ranges: bool = True  # honour Range (206/416); when False ignore it and send 200 full
    trickle: Optional[tuple[int, float]] = None  # (piece size, sleep between pieces)
    etag: Optional[str] = None  # ETag; quoted if given bare; used for If-None-Match / If-Range
    misbehave_first: Optional[int] = None  # faults above apply to the first N non-failed requests

    def __post_init__(self) -> None:
        cuts = [self.stall_after, self.truncate_after, self.reset_after]
        if sum(cut is not None for cut in cuts) > 1:
            raise ValueError("set at most one of stall_after, truncate_after, reset_after")
        if any(cut is not None and cut < 0 for cut in [*cuts, self.content_length]):
            raise ValueError("byte counts must be >= 0")
        if self.trickle is not None and self.trickle[0] <= 0:
            raise ValueError("trickle piece size must be > 0")

    @property
    def quoted_etag(self) -> str | None:
        """The ETag header value (``"abc"`` for ``abc``; ``W/"x"`` and ``"x"`` unchanged)."""
        if self.etag is None or self.etag.startswith(('"', 'W/"')):
            return self.etag
        return f'"{self.etag}"'


@dataclass(frozen=True)
class Recorded:
    """One request as received: ``path`` is the request target (query included)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    connection_id: int


@dataclass
class _RouteState:
    route: Route
    count: int = 0


def _origin_form(target: str) -> str:
    """``/p?q`` for both origin-form and absolute-form (``http://h/p?q``) targets."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target


def _merge(base: list[tuple[str, str]], extra: dict[str, str]) -> list[tuple[str, str]]:
    """``base`` with every header named in ``extra`` replaced (case-insensitively)."""
    names = {name.lower() for name in extra}
    return [(n, v) for n, v in base if n.lower() not in names] + list(extra.items())


_UNSATISFIABLE = (-1, -1)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single byte range, _UNSATISFIABLE, or None to ignore the header."""
    match = _RANGE_RE.match(value)
    if match is None:
        return None  # multi-range or another unit: ignore, send 200
    first_s, last_s = match.groups()
    if not first_s:
        if not last_s:
            return None
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            return _UNSATISFIABLE
        return max(size - suffix, 0), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return None
    if first >= size:
        return _UNSATISFIABLE
    return first, min(last, size - 1)


class Server(Listener):
    """HTTP/1.1 on ``host`` (loopback) and an ephemeral port; HTTPS if ``ssl_context`` is given.

    Starts serving at once in daemon threads. ``close()`` (or leaving the ``with`` block)
    releases every hanging/stalled handler and joins the threads (bounded).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[str, _RouteState] = {}
        self._routes_lock = threading.Lock()
        super().__init__(ssl_context, host)

    @property
    def scheme(self) -> str:
        return "http" if self.ssl_context is None else "https"

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` without a trailing slash."""
        return f"{self.scheme}://{format_host(self.host)}:{self.port}"

    def url(self, path: str, host: str | None = None) -> str:
        """Full URL of ``path``; ``host`` replaces the host name (e.g. ``"localhost"``)."""
        if not path.startswith("/"):
            raise ValueError(f"paths start with '/': {path!r}")
        name = format_host(self.host if host is None else host)
        return f"{self.scheme}://{name}:{self.port}{path}"

    def route(self, path: str, route: Route | None = None, **fields: Any) -> str:
        """Register (or replace, resetting its counter) ``path``; return its URL.

        ``fields`` build a :class:`Route`, or override fields of ``route`` if both are given.
        A path without a query also matches requests for that path with any query string.
        """
        if route is None:
            route = Route(**fields)
        elif fields:
            route = dataclasses.replace(route, **fields)
        self.url(path)  # validates the path
        with self._routes_lock:
            self._routes[path] = _RouteState(route)
        return self.url(path)

    def requests_for(self, path: str) -> list[Recorded]:
        """Recorded requests whose target is ``path`` (with or without a query string)."""
        with self._lock:
            recorded = list(self.requests)
        return [r for r in recorded if r.path == path or r.path.split("?", 1)[0] == path]

    def hits(self, path: str) -> int:
        """How many requests reached the route registered for ``path`` (0 if none)."""
        with self._routes_lock:
            state = self._routes.get(path)
            return 0 if state is None else state.count

    # -- serving -------------------------------------------------------------------

    def handle(self, conn: Conn) -> None:
        while True:
            raw = conn.read_head()
            if raw is None:
                return
            try:
                req = parse_head(raw)
                if not req.third.startswith("HTTP/1."):
                    raise ValueError(f"unsupported version {req.third!r}")
                headers = req.headers
                if "transfer-encoding" in headers:
                    self._send_plain(conn, 501, b"request bodies must use Content-Length\n")
                    return
                length = int(headers.get("content-length", "0") or "0")
                if length < 0:
                    raise ValueError("negative Content-Length")
                path = _origin_form(req.second)
            except ValueError:
                self._send_plain(conn, 400, b"bad request\n")
                return
            conn.read_exact(length)
            with self._lock:
                self.requests.append(Recorded(req.first, path, headers, conn.conn_id))
            tokens = [t.strip() for t in headers.get("connection", "").lower().split(",")]
            client_close = req.third == "HTTP/1.0" or "close" in tokens
            keep_alive = self._respond(conn, req, path, headers)
            if client_close or not keep_alive:
                return

    def _lookup(self, path: str) -> tuple[Route, int] | None:
        with self._routes_lock:
            state = self._routes.get(path) or self._routes.get(path.split("?", 1)[0])
            if state is None:
                return None
            state.count += 1
            return state.route, state.count - 1

    def _send_plain(
        self, conn: Conn, status: int, body: bytes, close: bool = True, head_only: bool = False
    ) -> None:
        head = [
            ("Server", "dummyserver"),
            ("Date", http_date()),
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
        ]
        if close:
            head.append(("Connection", "close"))
        conn.send_all(self._head(status, head) + (b"" if head_only else body))

    @staticmethod
    def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason(status)}"] + [f"{n}: {v}" for n, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _representation(
        self, route: Route, headers: dict[str, str]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        """Status, payload and validator/range headers, after conditionals and Range."""
        status, body, extra = route.status, route.body, []
        etag = route.quoted_etag
        if etag is not None:
            extra.append(("ETag", etag))
        if status != 200:
            return status, body, extra
        inm = headers.get("if-none-match")
        if etag is not None and inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            if "*" in tags or etag.removeprefix("W/") in [t.removeprefix("W/") for t in tags]:
                return 304, b"", extra
        if not route.ranges:
            return status, body, extra
        extra.append(("Accept-Ranges", "bytes"))
        range_value = headers.get("range")
        if range_value is None:
            return status, body, extra
        if_range = headers.get("if-range")
        if if_range is not None:
            last_modified = {k.lower(): v for k, v in route.headers.items()}.get("last-modified")
            strong = etag is not None and not etag.startswith("W/")
            if not ((strong and if_range == etag) or if_range == last_modified):
                return status, body, extra
        parsed = _parse_range(range_value, len(body))
        if parsed is None:
            return status, body, extra
        if parsed == _UNSATISFIABLE:
            return 416, b"", [*extra, ("Content-Range", f"bytes */{len(body)}")]
        first, last = parsed
        content_range = ("Content-Range", f"bytes {first}-{last}/{len(body)}")
        return 206, body[first : last + 1], [*extra, content_range]

    def _respond(self, conn: Conn, req: RequestHead, path: str, headers: dict[str, str]) -> bool:
        """Answer one request; True if the connection may be kept alive."""
        head_only = req.first.upper() == "HEAD"
        found = self._lookup(path)
        if found is None:
            self._send_plain(conn, 404, b"not found\n", close=False, head_only=head_only)
            return True
        route, index = found
        if index < route.fail_first:
            base = [
                ("Server", "dummyserver"),
                ("Date", http_date()),
                ("Content-Length", str(len(route.fail_body))),
            ]
            head = self._head(route.fail_status, _merge(base, route.fail_headers))
            conn.send_all(head if head_only else head + route.fail_body)
            return True
        limit = route.misbehave_first
        misbehave = limit is None or index - route.fail_first < limit
        if misbehave and route.hang_before_headers:
            if not conn.wait(MAX_WAIT):
                conn.close_clean()
            raise Stopped("hung until close")
        status, payload, extra = self._representation(route, headers)
        has_body = status >= 200 and status not in _NO_BODY_STATUSES
        lie = route.content_length if misbehave else None
        cut: int | None = None
        mode = ""
        if misbehave:
            cuts = (
                ("stall", route.stall_after),
                ("truncate", route.truncate_after),
                ("reset", route.reset_after),
            )
            mode, cut = next(((m, c) for m, c in cuts if c is not None), ("", None))
        closing = lie is not None or cut is not None
        base = [
            ("Server", "dummyserver"),
            ("Date", http_date()),
            ("Content-Type", "application/octet-stream"),
            *extra,
        ]
        if route.chunked and has_body:
            base.append(("Transfer-Encoding", "chunked"))
        if lie is not None:
            base.append(("Content-Length", str(lie)))
        elif has_body and not route.chunked:
            base.append(("Content-Length", str(len(payload))))
        merged = _merge(base, route.headers)
        if closing and "connection" not in {n.lower() for n, _ in merged}:
            merged.append(("Connection", "close"))
        conn.send_all(self._head(status, merged))
        if head_only or not has_body:
            return not closing
        self._send_body(conn, route, payload if cut is None else payload[:cut], cut is None)
        if mode == "stall":
            if not conn.wait(MAX_WAIT):
                conn.close_clean()
            raise Stopped("stalled until close")
        if mode == "reset":
            conn.reset()
        return not closing

    @staticmethod
    def _send_body(conn: Conn, route: Route, data: bytes, complete: bool) -> None:
        size = route.trickle[0] if route.trickle else 65536
        delay = route.trickle[1] if route.trickle else 0.0
        for offset in range(0, len(data), size):
            if offset and delay > 0 and conn.wait(delay):
                raise Stopped("stopping")
            piece = data[offset : offset + size]
            if route.chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece)
            conn.send_all(piece)
        if route.chunked and complete:
            conn.send_all(b"0\r\n\r\n")


class RawServer(Listener):
    """Hands each accepted connection (TLS-wrapped if ``ssl_context``) to ``handler``.

    ``handler(conn)`` gets a :class:`~dummyserver._net.Conn` (``conn.sock``, ``conn.recv_some()``,
    ``conn.send_all()``, ``conn.wait()``, ``conn.reset()``, ``conn.close_clean()``); the
    connection is closed cleanly when it returns unless it already closed it.
    """

    def __init__(
        self,
        handler: Callable[[Conn], None],
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._handler = handler
        super().__init__(ssl_context, host)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def handle(self, conn: Conn) -> None:
        self._handler(conn)


def serve_bytes(
    ssl_context: ssl.SSLContext | None, body: bytes, path: str = "/file", **route_fields: Any
) -> tuple[Server, str]:
    """Start a :class:`Server` serving ``body`` at ``path``; return it and the URL."""
    server = Server(ssl_context)
    try:
        return server, server.route(path, body=body, **route_fields)
    except BaseException:
        server.close()
        raise
