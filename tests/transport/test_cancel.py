"""A request's Cancel shuts down only that request's sockets: never a pooled one it gave back."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dummyserver import Server
from robustfetch.transport import Transport, TransportSettings, make_transport
from robustfetch.transport.cancel import Cancel

BIG = os.urandom(400_000)
TIMEOUTS = {"connect_timeout": 2.0, "read_timeout": 5.0}


@pytest.fixture
def network(transport: str, ca_bundle: Path) -> Iterator[Transport]:
    made = make_transport(
        transport, TransportSettings(ssl.create_default_context(cafile=ca_bundle))
    )
    yield made
    made.close()


def _read_all(response: object) -> bytes:
    got = bytearray()
    while True:
        data = response.read(65536)  # type: ignore[attr-defined]
        if not data:
            return bytes(got)
        got += data


@pytest.mark.parametrize("how", ["body read", "error answer drained"])
def test_a_hedge_that_loses_later_leaves_a_connection_it_gave_back_alone(
    how: str, network: Transport, https_server: Server
) -> None:
    first = https_server.route("/first", body=b"small", status=200 if how == "body read" else 404)
    big = https_server.route("/big", body=BIG, trickle=(16384, 0.005))
    cancel = Cancel()
    response = network.open(first, {}, cancel=cancel, **TIMEOUTS)
    _read_all(response)
    response.release()  # back to the pool, as a same-host redirect or a drained 404 is
    other = network.open(big, {}, **TIMEOUTS)  # another request takes that connection
    cancel.cancel()  # the hedge's race ends: it lost
    try:
        assert _read_all(other) == BIG
    finally:
        other.close()
        cancel.close()
    assert {r.connection_id for r in https_server.requests} == {1}  # one connection, reused


def test_a_closed_cancellable_response_really_closes_its_connection(network: Transport) -> None:
    """The Cancel's duplicate descriptor must not keep the connection open until it closes."""
    seen: list[bytes] = []

    def serve(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)  # a guard against a hang, not a measurement
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            # Content-Length promises more than is sent: the connection is not for reuse.
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
            try:
                seen.append(conn.recv(4096))  # b"" once the client's FIN arrives
            except socket.timeout:
                seen.append(b"no FIN")

    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/f"
        server = threading.Thread(target=serve, args=(listener,))
        server.start()
        cancel = Cancel()
        try:
            response = network.open(url, {}, cancel=cancel, **TIMEOUTS)
            assert response.read(5) == b"hello"
            response.close()
            server.join()
        finally:
            cancel.close()
            server.join()
    assert seen == [b""]
