"""Hedged requests: a silent source is raced by the next one; the loser is closed as superseded."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

import robustfetch
from dummyserver import RawServer
from dummyserver._net import Conn, Stopped
from robustfetch import FetchError, Reason

DATA = os.urandom(200_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
#: Far longer than a hedge needs: without hedging, a test would wait this out and fail.
SLOW = 8.0


class Silent:
    """Reads the request, never answers, and notices when the client hangs up."""

    def __init__(self) -> None:
        self.requests = 0
        self.closed = threading.Event()

    def __call__(self, conn: Conn) -> None:
        if conn.read_head() is None:
            return
        self.requests += 1
        try:
            while conn.recv_some():
                pass
        except Stopped:
            return  # the server is shutting down: the client never hung up
        except OSError:
            pass  # reset or a TLS close without close_notify: hung up all the same
        self.closed.set()


def late(delay: float, body: bytes = DATA) -> Callable[[Conn], None]:
    """Answers each request with ``body`` after ``delay`` seconds."""

    def handler(conn: Conn) -> None:
        while conn.read_head() is not None:
            if conn.wait(delay):
                return
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            try:
                conn.send_all(head + body)
            except (Stopped, OSError):
                return

    return handler


@pytest.fixture
def raw_server(certs: Any) -> Any:
    made: list[RawServer] = []

    def factory(handler: Callable[[Conn], None]) -> RawServer:
        server = RawServer(handler, certs.context_for("good"))
        made.append(server)
        return server

    yield factory
    for server in made:
        server.close()


def url_of(server: Any, path: str = "/f.bin") -> str:
    return f"https://127.0.0.1:{server.port}{path}"


def test_silent_primary_is_raced_by_the_fallback_and_closed(
    raw_server: Any, https_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    silent = Silent()
    primary = raw_server(silent)
    fallback = https_server.route("/f.bin", body=DATA)
    options = {**opts, "stall_timeout": SLOW, "hedge_after": 0.2}
    result = robustfetch.fetch(url_of(primary), DIGEST, [fallback], dest=dest_dir, **options)
    assert result.url == fallback
    assert [a.reason for a in result.attempts] == [Reason.SUPERSEDED, None]
    assert result.attempts[0].url == url_of(primary)
    assert "answered first" in result.attempts[0].detail
    assert (dest_dir / "f.bin").read_bytes() == DATA
    # The loser's connection is closed, not left to its stall_timeout.
    assert silent.closed.wait(SLOW / 2)


def test_a_primary_that_never_accepts_is_raced_too(
    https_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    """The primary's accept queue is full: its SYNs are dropped, connect() hangs."""
    hole = socket.socket()
    hole.bind(("127.0.0.3", 0))
    hole.listen(0)
    fillers = [socket.socket() for _ in range(3)]
    try:
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(hole.getsockname())
        primary = f"https://127.0.0.3:{hole.getsockname()[1]}/f.bin"
        fallback = https_server.route("/f.bin", body=DATA)
        options = {**opts, "connect_timeout": SLOW, "hedge_after": 0.2}
        result = robustfetch.fetch(primary, DIGEST, [fallback], dest=dest_dir, **options)
    finally:
        for filler in fillers:
            filler.close()
        hole.close()
    assert [(a.url, a.reason) for a in result.attempts] == [
        (primary, Reason.SUPERSEDED),
        (fallback, None),
    ]


def test_a_late_primary_still_wins_and_the_hedge_is_closed(
    raw_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    primary = raw_server(late(0.6))
    silent = Silent()
    fallback = raw_server(silent)
    options = {**opts, "stall_timeout": SLOW, "hedge_after": 0.1}
    result = robustfetch.fetch(
        url_of(primary), DIGEST, [url_of(fallback)], dest=dest_dir, **options
    )
    assert result.url == url_of(primary)
    # The successful try is the last attempt; the hedge that lost comes before it.
    assert [(a.url, a.reason) for a in result.attempts] == [
        (url_of(fallback), Reason.SUPERSEDED),
        (url_of(primary), None),
    ]
    assert silent.requests == 1
    assert silent.closed.wait(SLOW / 2)


def test_without_hedging_a_silent_primary_costs_its_timeout(
    raw_server: Any, https_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    silent = Silent()
    primary = raw_server(silent)
    fallback = https_server.route("/f.bin", body=DATA)
    options = {**opts, "stall_timeout": 0.5, "hedge_after": None}
    result = robustfetch.fetch(url_of(primary), DIGEST, [fallback], dest=dest_dir, **options)
    assert [a.reason for a in result.attempts] == [Reason.TIMEOUT, None]


def test_a_hedge_that_fails_is_recorded_in_source_order(
    raw_server: Any, https_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    """The fallback 404s while the primary is silent; the primary then answers."""
    primary = raw_server(late(0.6))
    missing = https_server.url("/missing.bin")
    good = https_server.route("/f.bin", body=DATA)
    options = {**opts, "stall_timeout": SLOW, "hedge_after": 0.1}
    result = robustfetch.fetch(url_of(primary), DIGEST, [missing, good], dest=dest_dir, **options)
    assert result.url in (url_of(primary), good)
    reasons = {a.url: a.reason for a in result.attempts}
    assert reasons[missing] is Reason.NOT_FOUND
    assert result.attempts[-1].reason is None
    urls = [a.url for a in result.attempts]
    assert len(urls) == len(set(urls))  # no source asked twice


def test_every_source_silent_fails_with_each_reported(
    raw_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    first, second = Silent(), Silent()
    a, b = raw_server(first), raw_server(second)
    options = {**opts, "stall_timeout": 1.0, "hedge_after": 0.1}
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url_of(a), DIGEST, [url_of(b)], dest=dest_dir, **options)
    assert [x.url for x in info.value.attempts] == [url_of(a), url_of(b)]
    assert all(x.reason is Reason.TIMEOUT for x in info.value.attempts)
    assert list(dest_dir.iterdir()) == []


def test_a_fast_failure_falls_over_at_once_in_order(
    https_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    missing = https_server.url("/missing.bin")
    good = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(missing, DIGEST, [good], dest=dest_dir, **opts)
    assert [a.reason for a in result.attempts] == [Reason.NOT_FOUND, None]


@pytest.mark.parametrize("value", [0, -1, "2", True, float("nan")])
def test_bad_hedge_after_is_a_value_error(value: object, dest_dir: Path) -> None:
    with pytest.raises(ValueError, match="hedge_after"):
        robustfetch.fetch("https://example.test/f.bin", DIGEST, dest=dest_dir, hedge_after=value)


@pytest.mark.parametrize("value", [0, -2, 1.5, "4", True])
def test_bad_split_is_a_value_error(value: object, dest_dir: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        robustfetch.fetch("https://example.test/f.bin", DIGEST, dest=dest_dir, split=value)
