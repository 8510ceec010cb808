"""HTTP proxies' CONNECT tunnels: where a proxy listens, its credentials, the CONNECT exchange.

Shared by the standard-library transport and by the probes of diagnose/
(urllib3's ProxyManager does the same for the default transport).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from ..policy.access import auth_header
from ..policy.secrets import redact
from ..policy.urls import authority

__all__ = ["open_tunnel", "proxy_address", "proxy_auth"]


def proxy_address(proxy: str) -> tuple[str, int]:
    """Where an ``http://host:port`` proxy listens.

    :raises ValueError: another kind of proxy, or a bad port; the message never
        shows the proxy's password.
    """
    parts = urlsplit(proxy)
    try:
        port = parts.port or 80
    except ValueError as exc:  # not a number, out of range
        raise ValueError(f"proxy {redact(proxy)!r}: {exc}") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(
            f"proxy {redact(proxy)!r}: the stdlib transport supports http:// proxies only "
            "(install urllib3 for https:// proxies)"
        )
    return parts.hostname, port


def proxy_auth(proxy: str) -> dict[str, str]:
    """``Proxy-Authorization`` for credentials in the proxy URL (percent-decoded), if any."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    return {
        "Proxy-Authorization": auth_header((unquote(parts.username), unquote(parts.password or "")))
    }


def open_tunnel(sock: socket.socket, host: str, port: int, headers: Mapping[str, str]) -> None:
    """Ask the proxy on ``sock`` for a tunnel to ``host:port`` (HTTP ``CONNECT``).

    :raises OSError: the proxy refused, or the connection failed.
    :raises http.client.HTTPException: the proxy's answer was not HTTP.
    """
    target = authority(host, port)
    head = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    answer = http.client.HTTPResponse(sock, method="CONNECT")
    try:
        answer.begin()  # the status and headers; the target speaks after our TLS hello
    finally:
        answer.close()
    if answer.status != 200:
        raise OSError(f"the proxy refused a tunnel to {target}: {answer.status} {answer.reason}")
