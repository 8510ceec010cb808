"""Raw connections for diagnose/: to one address, to a host, or through a proxy's CONNECT tunnel.

:func:`~robustfetch.probe_host` inspects handshakes itself, so it needs bare sockets
rather than HTTP responses; they are opened here, where every socket of the
package is opened.
"""

from __future__ import annotations

import http.client
import socket
from typing import Any

from ..policy.secrets import redact
from .resolve import lookup
from .tunnel import open_tunnel, proxy_address, proxy_auth

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
    try:
        address = proxy_address(proxy)
    except ValueError as exc:
        raise ProxyFailure(str(exc)) from None
    try:
        sock = socket.create_connection(address, timeout)
    except OSError as exc:
        raise ProxyFailure(f"cannot reach proxy {redact(proxy)}: {_os_text(exc)}") from exc
    try:
        open_tunnel(sock, host, port, proxy_auth(proxy))
    except (OSError, http.client.HTTPException) as exc:
        sock.close()
        raise ProxyFailure(f"proxy {redact(proxy)}: {_os_text(exc)}") from exc
    return sock


def _os_text(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
