"""Raw connections for diagnose/: to one address, to a host, or through a proxy's CONNECT tunnel.

:func:`~robustfetch.probe_host` inspects handshakes itself, so it needs bare sockets
rather than HTTP responses; they are opened here, where every socket of the
package is opened.
"""

from __future__ import annotations

import base64
import socket
from typing import Any
from urllib.parse import unquote, urlsplit

from ..policy.secrets import redact
from ..policy.urls import authority
from .resolve import lookup

__all__ = ["ProxyFailure", "connect_address", "connect_host", "stream_addresses", "tunnel"]


class ProxyFailure(OSError):
    """Reaching the proxy, or its CONNECT answer, failed."""


def stream_addresses(host: str, port: int) -> list[tuple[int, Any]]:
    """``(family, sockaddr)`` of each TCP address ``host`` resolves to, in resolver order.

    :raises OSError: (``socket.gaierror``) or :class:`UnicodeError` when the name does not resolve.
    """
    return [(family, sockaddr) for family, _t, _p, _n, sockaddr in lookup(host, port, None)]


def connect_address(family: int, sockaddr: Any, timeout: float) -> socket.socket:
    """A TCP connection to one resolved address (closed again if it fails)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


def connect_host(address: tuple[str, int], timeout: float) -> socket.socket:
    """A TCP connection to ``(host, port)``, whichever of its addresses answers first."""
    return socket.create_connection(address, timeout=timeout)


def tunnel(proxy: str, host: str, port: int, timeout: float) -> socket.socket:
    """A socket through ``proxy``'s CONNECT tunnel to ``host:port``.

    :param proxy: an ``http://`` proxy URL, credentials included if it needs them.
    :raises ProxyFailure: when the proxy cannot be reached or refuses the tunnel;
        its message never shows the proxy's password.
    """
    parts = urlsplit(proxy)
    if parts.scheme != "http":
        raise ProxyFailure(f"only http:// proxies can be probed, not {redact(proxy)}")
    target = authority(host, port)
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        head += f"Proxy-Authorization: Basic {base64.b64encode(secret).decode()}\r\n"
    try:
        sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout)
    except OSError as exc:
        raise ProxyFailure(f"cannot reach proxy {redact(proxy)}: {_os_text(exc)}") from exc
    try:
        sock.sendall(f"{head}\r\n".encode("ascii"))
        answer = b""
        while b"\r\n\r\n" not in answer and len(answer) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                raise ProxyFailure("the proxy closed the connection")
            answer += chunk
        status = answer.split(b"\r\n", 1)[0].decode("latin-1")
        if status.split(" ")[1:2] != ["200"]:
            raise ProxyFailure(f"proxy {redact(proxy)} refused CONNECT {target}: {status}")
    except OSError:
        sock.close()
        raise
    return sock


def _os_text(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
