"""A big body is read past http.client's buffer once it is empty: no byte lost or reordered.

Each server here sends the head and the start of the body in one write (so
``http.client``'s buffered file holds body bytes when the body begins), then
the rest in pieces, and then misbehaves in one way: closes without
``close_notify``, goes silent, or serves a second request on the connection.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

import robustfetch
from dummyserver import Certs, Conn, RawServer
from dummyserver._net import Stopped
from robustfetch import FetchError, Reason
from robustfetch.transport import body as body_module
from robustfetch.transport.body import BodyReader

BODY = os.urandom(300_000)  # many TLS records: most of it arrives after the switch
DIGEST = hashlib.sha256(BODY).hexdigest()
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY)
FIRST = 5_000  # body bytes sent with the head: they wait in http.client's buffer

Handler = Callable[[Conn], None]


@pytest.fixture
def serve(certs: Certs) -> Iterator[Callable[[Handler], str]]:
    made: list[RawServer] = []

    def factory(handler: Handler) -> str:
        server = RawServer(handler, certs.context_for("good"))
        made.append(server)
        return f"https://127.0.0.1:{server.port}/f.bin"

    yield factory
    for server in made:
        server.close()


def send_in_pieces(conn: Conn, body: bytes, until: int) -> None:
    """The head with the first bytes, then the body up to ``until`` in uneven pieces."""
    conn.send_all(HEAD + body[:FIRST])
    offset, step = FIRST, 1
    while offset < until:
        if conn.wait(0.001):
            raise Stopped("stopping")
        piece = 7_001 * step % 40_000 + 1
        conn.send_all(body[offset : min(offset + piece, until)])
        offset += piece
        step += 1


def test_a_body_begun_in_the_buffer_and_ended_past_it_arrives_whole(
    serve: Callable[[Handler], str],
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def handler(conn: Conn) -> None:
        conn.read_head()
        send_in_pieces(conn, BODY, len(BODY))
        conn.close_clean()

    switched: list[bool] = []
    original = body_module._direct_read

    def spy(fp: object) -> Any:
        direct = original(fp)
        switched.append(direct is not None)
        return direct

    monkeypatch.setattr(body_module, "_direct_read", spy)
    result = robustfetch.fetch(serve(handler), DIGEST, dest=dest_dir / "f.bin", **opts)
    assert result.size == len(BODY)
    assert (dest_dir / "f.bin").read_bytes() == BODY
    assert switched and switched[0], "the body was not read past http.client's buffer"


def test_a_direct_read_after_the_socket_closed_reads_no_other_connection(
    serve: Callable[[Handler], str], certs: Certs
) -> None:
    def handler(conn: Conn) -> None:
        conn.read_head()
        send_in_pieces(conn, BODY, len(BODY))
        conn.wait(5.0)

    url = serve(handler)
    port = int(url.split(":")[2].split("/")[0])
    context = ssl.create_default_context(cafile=str(certs.ca_bundle))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    connection.request("GET", "/f.bin")
    response = connection.getresponse()
    reader = BodyReader(response)
    buffer = bytearray(100_000)
    assert reader.readinto(buffer) > 0  # drains http.client's buffer: direct from now on
    assert reader._direct is not None
    fp = response.fp
    assert fp is not None
    tls = fp.raw._sock  # type: ignore[attr-defined]
    fp.close()  # closed from elsewhere: the file, then its socket
    tls.close()
    # The freed descriptor number goes to a new connection with a TLS record waiting.
    mine, theirs = socket.socketpair()
    try:
        theirs.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
        with pytest.raises(ConnectionAbortedError):
            reader.readinto(buffer)
        mine.setblocking(False)
        assert len(mine.recv(1000)) == 69  # nothing was read from it
    finally:
        mine.close()
        theirs.close()
        response.fp = None  # already closed above, behind http.client's back
        connection.close()


def test_a_close_without_close_notify_after_the_switch_is_a_cut_body(
    serve: Callable[[Handler], str], opts: dict[str, Any], dest_dir: Path
) -> None:
    def handler(conn: Conn) -> None:
        conn.read_head()
        send_in_pieces(conn, BODY, 200_000)
        conn.close()  # abrupt: no close_notify, no more bytes

    with pytest.raises(FetchError) as info:
        robustfetch.fetch(serve(handler), DIGEST, dest=dest_dir / "f.bin", **opts)
    (attempt,) = info.value.attempts
    assert attempt.reason is Reason.TRUNCATED
    assert "200000" in attempt.detail
    assert not (dest_dir / "f.bin").exists()


def test_silence_after_the_switch_is_a_stall(
    serve: Callable[[Handler], str], opts: dict[str, Any], dest_dir: Path
) -> None:
    def handler(conn: Conn) -> None:
        conn.read_head()
        send_in_pieces(conn, BODY, 150_000)
        conn.wait(10.0)  # silent until the test ends

    with pytest.raises(FetchError) as info:
        robustfetch.fetch(serve(handler), DIGEST, dest=dest_dir / "f.bin", **opts)
    (attempt,) = info.value.attempts
    assert attempt.reason is Reason.STALLED
    assert not (dest_dir / "f.bin").exists()


def test_the_connection_serves_the_next_request_after_a_direct_read(
    serve: Callable[[Handler], str], opts: dict[str, Any], dest_dir: Path
) -> None:
    other = os.urandom(120_000)
    connections: list[int] = []

    def handler(conn: Conn) -> None:
        connections.append(conn.conn_id)
        for body in (BODY, other):
            if conn.read_head() is None:
                return
            conn.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            send_in_pieces_raw(conn, body)
        conn.close_clean()

    url = serve(handler)
    results = robustfetch.fetch_many(
        [
            robustfetch.Request(url, DIGEST, dest=dest_dir / "a.bin"),
            robustfetch.Request(
                url.replace("f.bin", "g.bin"),
                hashlib.sha256(other).hexdigest(),
                dest=dest_dir / "b.bin",
            ),
        ],
        workers=1,
        **opts,
    )
    assert all(isinstance(r, robustfetch.FetchResult) for r in results), results
    assert (dest_dir / "a.bin").read_bytes() == BODY
    assert (dest_dir / "b.bin").read_bytes() == other
    assert len(connections) == 1  # the second request went over the first connection


def send_in_pieces_raw(conn: Conn, body: bytes) -> None:
    for offset in range(0, len(body), 33_333):
        conn.send_all(body[offset : offset + 33_333])


def test_a_corrupt_tls_record_mid_body_is_a_cut_body_kept_for_a_resume(
    serve: Callable[[Handler], str], opts: dict[str, Any], dest_dir: Path
) -> None:
    tries: list[int] = []

    def handler(conn: Conn) -> None:
        head = conn.read_head() or b""
        tries.append(len(tries))
        if b"range:" in head.lower():  # the resume: the rest, as asked
            start = int(head.lower().split(b"range: bytes=")[1].split(b"-")[0])
            rest = BODY[start:]
            conn.send_all(
                b"HTTP/1.1 206 Partial Content\r\nContent-Length: %d\r\n"
                b"Content-Range: bytes %d-%d/%d\r\n\r\n"
                % (len(rest), start, len(BODY) - 1, len(BODY))
                + rest
            )
            conn.close_clean()
            return
        send_in_pieces(conn, BODY, 200_000)
        # An application-data record that fails its authentication check, written
        # under the TLS layer, as a broken middlebox would.
        with socket.socket(fileno=os.dup(conn.sock.fileno())) as raw:
            raw.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
        conn.wait(5.0)

    result = robustfetch.fetch(
        serve(handler), DIGEST, dest=dest_dir / "f.bin", **{**opts, "retries": 1}
    )
    first = result.attempts[0]
    assert first.reason is Reason.TRUNCATED, first
    assert "TLS" in first.detail and "200000" in first.detail
    assert len(tries) == 2
    assert (dest_dir / "f.bin").read_bytes() == BODY


class _StreamSocket:
    """What http.client needs of a socket, over bytes in memory: no socket under the file."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def test_a_body_with_no_socket_under_it_is_looked_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked: list[object] = []
    original = body_module._direct_read

    def spy(fp: object) -> Any:
        looked.append(fp)
        return original(fp)

    monkeypatch.setattr(body_module, "_direct_read", spy)
    response = http.client.HTTPResponse(_StreamSocket(HEAD + BODY))  # type: ignore[arg-type]
    response.begin()
    reader, received = BodyReader(response), bytearray()
    buffer = bytearray(65_536)
    while count := reader.readinto(buffer):
        received += buffer[:count]
    assert received == BODY
    assert len(looked) == 1  # not once per read: the answer cannot change
