"""A threaded forward HTTP proxy for tests: CONNECT tunnels and absolute-URI forwarding.

Only loopback targets are reachable (``127.0.0.0/8``, ``::1``, ``localhost``, and names the
test maps to a loopback address through ``aliases``); every other target gets 403. No DNS
lookup is ever made.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import selectors
import socket
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from dummyserver._net import (
    MAX_WAIT,
    POLL,
    Conn,
    Listener,
    RequestHead,
    Stopped,
    format_host,
    http_date,
    is_loopback_host,
    parse_head,
    reason,
)
from dummyserver.server import Recorded

__all__ = ["Proxy"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization"})
_CONNECT_TIMEOUT = 5.0


def _split_authority(authority: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[::1]:port"`` -> (host without brackets, port)."""
    host, sep, port = authority.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"bad CONNECT target {authority!r}")
    return host.strip("[]"), int(port)


def _spellings(name: str) -> set[str]:
    """Lower-case ``name`` and its IDNA (``xn--``) form, so either spelling matches."""
    spellings = {name.lower()}
    with contextlib.suppress(UnicodeError):
        spellings.add(name.encode("idna").decode("ascii").lower())
    return spellings


class Proxy(Listener):
    """Forward proxy on ``host`` (loopback) and an ephemeral port.

    Args:
        required_auth: ``(user, password)``; requests without a matching
            ``Proxy-Authorization: Basic ...`` header get 407 (connection kept alive).
        aliases: host names the proxy maps to loopback addresses, e.g.
            ``{"files.pythonhosted.org": "127.0.0.1"}``; ``localhost`` is always mapped.
            Unicode names match in either spelling (``bücher.example`` / ``xn--bcher-kva...``).
        host: listening address (loopback only).

    Records ``tunnels`` (every CONNECT target received, ``"host:port"``), ``forwarded``
    (every absolute URL received) and ``requests`` (every request head, any outcome).
    """

    def __init__(
        self,
        required_auth: tuple[str, str] | None = None,
        aliases: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.required_auth = required_auth
        self.aliases = {"localhost": "127.0.0.1"}
        for name, address in (aliases or {}).items():
            if not is_loopback_host(address) or address.lower() == "localhost":
                raise ValueError(f"alias {name!r} must map to a loopback IP, not {address!r}")
            for spelling in _spellings(name):
                self.aliases[spelling] = address.strip("[]")
        self.tunnels: list[str] = []
        self.forwarded: list[str] = []
        self.requests: list[Recorded] = []
        super().__init__(None, host)

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no credentials)."""
        return f"http://{format_host(self.host)}:{self.port}"

    @property
    def auth_url(self) -> str:
        """``http://USER:PASSWORD@HOST:PORT`` when ``required_auth`` is set, else :attr:`url`."""
        if self.required_auth is None:
            return self.url
        user, password = self.required_auth
        return f"http://{user}:{password}@{format_host(self.host)}:{self.port}"

    def _loopback_address(self, host: str) -> str | None:
        """The loopback IP to dial for ``host``, or None if the target is forbidden."""
        address = self.aliases.get(host.lower(), host)
        if address.lower() == "localhost" or not is_loopback_host(address):
            return None
        return address

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.required_auth is None:
            return True
        user, password = self.required_auth
        expected = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        scheme, _, credentials = headers.get("proxy-authorization", "").partition(" ")
        return scheme.lower() == "basic" and hmac.compare_digest(credentials.strip(), expected)

    @staticmethod
    def _reply(
        conn: Conn,
        status: int,
        body: bytes = b"",
        close: bool = True,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {reason(status)}",
            "Server: dummyproxy",
            f"Date: {http_date()}",
            "Content-Type: text/plain",
            f"Content-Length: {len(body)}",
        ] + [f"{n}: {v}" for n, v in extra]
        if close:
            lines.append("Connection: close")
        conn.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _dial(self, address: str, port: int, conn: Conn) -> Conn | None:
        try:
            sock = socket.create_connection((address, port), timeout=_CONNECT_TIMEOUT)
        except OSError:
            return None
        return Conn(sock, self.stop_event, conn.conn_id)

    # -- serving -------------------------------------------------------------------

    def handle(self, conn: Conn) -> None:
        while True:
            raw = conn.read_head()
            if raw is None:
                return
            try:
                req = parse_head(raw)
                headers = req.headers
                length = int(headers.get("content-length", "0") or "0")
            except ValueError:
                self._reply(conn, 400, b"bad request\n")
                return
            method = req.first.upper()
            with self._lock:
                self.requests.append(Recorded(req.first, req.second, headers, conn.conn_id))
                if method == "CONNECT":
                    self.tunnels.append(req.second)
                elif req.second.lower().startswith(("http://", "https://")):
                    self.forwarded.append(req.second)
            if not self._authorized(headers):
                conn.read_exact(length)
                tokens = [
                    t.strip()
                    for t in headers.get("proxy-connection", headers.get("connection", ""))
                    .lower()
                    .split(",")
                ]
                close = "close" in tokens or req.third == "HTTP/1.0"
                self._reply(
                    conn,
                    407,
                    b"proxy authentication required\n",
                    close=close,
                    extra=(("Proxy-Authenticate", 'Basic realm="dummyproxy"'),),
                )
                if close:
                    return
                continue
            if method == "CONNECT":
                self._tunnel(conn, req.second)
            else:
                self._forward(conn, req, headers, length)
            return

    def _tunnel(self, conn: Conn, authority: str) -> None:
        try:
            host, port = _split_authority(authority)
        except ValueError:
            self._reply(conn, 400, b"bad CONNECT target\n")
            return
        address = self._loopback_address(host)
        if address is None:
            self._reply(conn, 403, b"dummyproxy only connects to loopback targets\n")
            return
        upstream = self._dial(address, port, conn)
        if upstream is None:
            self._reply(conn, 502, b"cannot connect to target\n")
            return
        try:
            conn.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pending = conn.take_buffer()
            if pending:
                upstream.send_all(pending)
            self._relay(conn, upstream)
        finally:
            upstream.close()

    @staticmethod
    def _relay(client: Conn, upstream: Conn) -> None:
        """Copy bytes both ways until one side closes (FIN passed on, RST passed on)."""
        with selectors.DefaultSelector() as selector:
            selector.register(client.sock, selectors.EVENT_READ, (client, upstream))
            selector.register(upstream.sock, selectors.EVENT_READ, (upstream, client))
            idle_deadline = time.monotonic() + MAX_WAIT
            while True:
                if client.stop.is_set():
                    raise Stopped("stopping")
                events = selector.select(timeout=POLL)
                if not events:
                    if time.monotonic() >= idle_deadline:
                        raise Stopped("tunnel idle too long")
                    continue
                idle_deadline = time.monotonic() + MAX_WAIT
                for key, _mask in events:
                    source, target = key.data
                    try:
                        data = source.sock.recv(65536)
                    except socket.timeout:
                        continue
                    except ConnectionResetError:
                        target.reset()
                        return
                    if not data:
                        target.close_clean()
                        return
                    target.send_all(data)

    def _forward(self, conn: Conn, req: RequestHead, headers: dict[str, str], length: int) -> None:
        try:
            parts = urlsplit(req.second)
            port = parts.port or 80
        except ValueError:  # bad IPv6 literal or port
            parts, port = urlsplit(""), 0
        if parts.scheme.lower() != "http" or not parts.hostname:
            self._reply(conn, 400, b"dummyproxy forwards absolute http:// URLs only\n")
            return
        if "transfer-encoding" in headers:
            self._reply(conn, 501, b"request bodies must use Content-Length\n")
            return
        body = conn.read_exact(length)
        address = self._loopback_address(parts.hostname)
        if address is None:
            self._reply(conn, 403, b"dummyproxy only connects to loopback targets\n")
            return
        upstream = self._dial(address, port, conn)
        if upstream is None:
            self._reply(conn, 502, b"cannot connect to target\n")
            return
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            lines = [f"{req.first} {target} {req.third}"]
            lines += [f"{n}: {v}" for n, v in req.header_list if n.lower() not in _HOP_BY_HOP]
            lines.append("Connection: close")
            upstream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            self._relay_response(conn, upstream)
        finally:
            upstream.close()

    def _relay_response(self, client: Conn, upstream: Conn) -> None:
        """Pass the response on with ``Connection: close``, then relay bytes until EOF."""
        try:
            raw = upstream.read_head()
        except ConnectionResetError:
            client.reset()
            return
        if raw is None:
            self._reply(client, 502, b"no response from target\n")
            return
        first, *rest = raw.decode("latin-1").split("\r\n")
        kept = [line for line in rest if line.partition(":")[0].strip().lower() not in _HOP_BY_HOP]
        head = "\r\n".join([first, *kept, "Connection: close"]) + "\r\n\r\n"
        client.send_all(head.encode("latin-1") + upstream.take_buffer())
        while True:
            try:
                data = upstream.recv_some()
            except ConnectionResetError:
                client.reset()
                return
            if not data:
                return
            client.send_all(data)
