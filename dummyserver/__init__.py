"""Test-server toolkit for robustfetch: certificates, a misbehaving HTTP(S) server, a proxy.

Everything listens on loopback addresses and ephemeral ports only, every wait is bounded
(at most ``MAX_WAIT`` = 60 s), and every server stops cleanly via ``close()`` or ``with``::

    from dummyserver import Certs, Server

    with Certs() as certs, Server(certs.good_context()) as server:
        url = server.route("/file.bin", body=b"payload", truncate_after=3)
        ...  # point the client at url, trusting certs.ca_bundle
"""

from __future__ import annotations

from dummyserver._net import MAX_WAIT, Conn, closed_port
from dummyserver.certs import CONTEXT_KINDS, GOOD_IDENTITIES, WRONG_HOST_IDENTITY, Certs
from dummyserver.proxy import Proxy
from dummyserver.server import RawServer, Recorded, Route, Server, serve_bytes

__all__ = [
    "CONTEXT_KINDS",
    "GOOD_IDENTITIES",
    "MAX_WAIT",
    "WRONG_HOST_IDENTITY",
    "Certs",
    "Conn",
    "Proxy",
    "RawServer",
    "Recorded",
    "Route",
    "Server",
    "closed_port",
    "serve_bytes",
]
