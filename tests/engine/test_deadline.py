"""``deadline`` is wall-clock: servers that trickle heads, handshakes or error bodies (#11)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import robustfetch
from dummyserver import Certs, Conn, RawServer
from dummyserver._net import Stopped
from robustfetch import FetchError, Reason

DEADLINE = 1.5
HANG_GUARD = DEADLINE + 5.0  # generous: only catches a fetch that does not end

Trickle = Callable[[bytes, bytes, Optional[str]], str]


@pytest.fixture
def trickler(certs: Certs) -> Iterator[Trickle]:
    """Factory: a server that sends ``prefix``, then ``drip`` one byte every 0.2 s.

    It stops after 40 bytes (8 s, past ``HANG_GUARD``), so a client that waits for
    it fails the time check instead of hanging the test run.

    ``kind`` "good" is TLS (the drip comes after the handshake); ``None`` is plain TCP
    (dripping into a client's TLS handshake).
    """
    made: list[RawServer] = []

    def factory(prefix: bytes, drip: bytes, kind: Optional[str] = "good") -> str:
        def handler(conn: Conn) -> None:
            if kind is not None:
                conn.read_head()
            conn.send_all(prefix)
            for index in range(40):
                if conn.wait(0.2):
                    raise Stopped("stopping")
                conn.send_all(drip[index % len(drip) : index % len(drip) + 1])

        server = RawServer(handler, None if kind is None else certs.context_for(kind))
        made.append(server)
        return f"https://127.0.0.1:{server.port}/f.bin"

    yield factory
    for server in made:
        server.close()


def fetch_failure(url: str, opts: dict[str, Any], dest: Path) -> FetchError:
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, dest=dest, **{**opts, "deadline": DEADLINE})
    assert time.monotonic() - started < HANG_GUARD
    return info.value


def test_a_head_sent_one_byte_at_a_time_ends_at_the_deadline(
    trickler: Trickle, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = trickler(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000)
    error = fetch_failure(url, opts, dest_dir)
    assert [a.reason for a in error.attempts] == [Reason.TIMEOUT]
    assert os_listing(dest_dir) == []


def test_a_tls_handshake_answered_one_byte_at_a_time_ends_at_the_deadline(
    trickler: Trickle, opts: dict[str, Any], dest_dir: Path
) -> None:
    # A TLS record header announcing a long handshake record, then its bytes, slowly.
    url = trickler(b"\x16\x03\x03\x3f\xff", b"\x02", kind=None)
    error = fetch_failure(url, opts, dest_dir)
    assert [a.reason for a in error.attempts] == [Reason.TIMEOUT]


def test_an_error_body_sent_one_byte_at_a_time_ends_at_the_deadline(
    trickler: Trickle, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = trickler(b"HTTP/1.1 503 Busy\r\nContent-Length: 60000\r\n\r\n", b"x")
    error = fetch_failure(url, opts, dest_dir)
    assert error.attempts[-1].reason in (Reason.TIMEOUT, Reason.HTTP_STATUS)
    assert all(a.reason is not None for a in error.attempts)


def test_a_close_delimited_body_cut_by_the_deadline_is_not_a_complete_file(
    trickler: Trickle, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = trickler(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"body")
    error = fetch_failure(url, {**opts, "stall_timeout": 5.0}, dest_dir)
    assert [a.reason for a in error.attempts] == [Reason.TIMEOUT]
    assert os_listing(dest_dir) == []


def os_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_name_look_up_that_hangs_ends_at_the_deadline(
    opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import threading

    guarded = socket.getaddrinfo
    released = threading.Event()

    def hanging(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow.example.test":
            released.wait(HANG_GUARD + 2)  # a resolver that does not answer
            raise socket.gaierror(socket.EAI_AGAIN, "no answer")
        return guarded(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        error = fetch_failure("https://slow.example.test/f.bin", opts, dest_dir)
    finally:
        released.set()
    assert [a.reason for a in error.attempts] == [Reason.TIMEOUT]


def test_an_ftp_greeting_sent_one_byte_at_a_time_ends_at_the_deadline(
    trickler: Trickle, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_url = trickler(b"", b"220-welcome, " + b"w" * 1000, kind=None)
    url = "ftp" + https_url.removeprefix("https")
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, "0" * 64, dest=dest_dir, **{**opts, "deadline": DEADLINE})
    assert time.monotonic() - started < HANG_GUARD
    assert [a.reason for a in info.value.attempts] == [Reason.TIMEOUT]
