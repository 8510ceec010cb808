"""Stdlib client helpers (http.client / ssl) for poking the dummy servers without robustfetch.

Used by the toolkit's own tests; handy in examples too. Every helper closes what it opens.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator

from dummyserver._net import Listener
from dummyserver.certs import Certs
from dummyserver.server import Server

__all__ = ["TIMEOUT", "connect", "fetch", "live_threads", "read_to_eof", "tls_socket"]

#: Default client timeout, in seconds.
TIMEOUT = 1.0


@contextlib.contextmanager
def connect(
    server: Server, certs: Certs, host: str = "localhost", timeout: float = TIMEOUT
) -> Iterator[http.client.HTTPConnection]:
    """http.client connection to ``server`` (TLS verified against the test CA), closed after."""
    conn: http.client.HTTPConnection
    if server.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, server.port, timeout=timeout, context=certs.client_context()
        )
    else:
        conn = http.client.HTTPConnection(host, server.port, timeout=timeout)
    try:
        yield conn
    finally:
        conn.close()


def fetch(
    conn: http.client.HTTPConnection,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> tuple[http.client.HTTPResponse, bytes]:
    """Send one request on ``conn``; the response (already read) and its body."""
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    return response, response.read()


@contextlib.contextmanager
def tls_socket(
    port: int, certs: Certs, server_hostname: str, suppress_ragged_eofs: bool = True
) -> Iterator[ssl.SSLSocket]:
    """Verified TLS socket to 127.0.0.1:port, sending ``server_hostname`` as SNI."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        sock = certs.client_context().wrap_socket(
            raw, server_hostname=server_hostname, suppress_ragged_eofs=suppress_ragged_eofs
        )
    except BaseException:
        raw.close()
        raise
    with sock:
        yield sock


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until the peer closes."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def live_threads(listener: Listener) -> list[threading.Thread]:
    """Threads of ``listener`` still running (empty once ``close()`` has returned)."""
    prefix = f"{type(listener).__name__}:{listener.port}"
    return [
        t
        for t in threading.enumerate()
        if (t.name == prefix or t.name.startswith(f"{prefix}#")) and t.is_alive()
    ]
