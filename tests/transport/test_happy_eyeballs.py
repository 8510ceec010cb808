"""Happy Eyeballs (RFC 8305): a host's addresses are raced, so one dead address costs little."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver._net import closed_port
from robustfetch import FetchError, Reason
from robustfetch.transport.eyeballs import connect, interleave

DATA = os.urandom(50_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def black_hole() -> Iterator[tuple[str, int]]:
    """A loopback address and port whose SYNs are dropped: its accept queue is full."""
    hole = socket.socket()
    hole.bind(("127.0.0.3", 0))
    hole.listen(0)
    fillers = []
    for _ in range(3):  # never accepted: the kernel drops later SYNs, connect() hangs
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(hole.getsockname())
        fillers.append(filler)
    try:
        yield hole.getsockname()
    finally:
        for filler in fillers:
            filler.close()
        hole.close()


def resolve_to(monkeypatch: pytest.MonkeyPatch, name: str, addresses: list[Any]) -> None:
    """``name`` resolves to these ``(family, sockaddr)`` pairs, in order."""
    guarded = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return guarded(host, port, *args, **kwargs)
        return [(f, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", a) for f, a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_a_black_holed_first_address_does_not_hold_the_request(
    black_hole: tuple[str, int],
    https_server: Any,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = https_server
    good.route("/f.bin", body=DATA)
    resolve_to(
        monkeypatch,
        "example.test",
        [(socket.AF_INET, black_hole), (socket.AF_INET, (good.host, good.port))],
    )
    # Tried one after the other, the first address would use up the whole
    # deadline (connect_timeout is longer); raced, the second starts 250 ms in.
    options = {**opts, "connect_timeout": 30.0, "deadline": 3.0}
    url = f"https://example.test:{good.port}/f.bin"
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **options)
    assert [a.reason for a in result.attempts] == [None]
    assert (dest_dir / "f.bin").read_bytes() == DATA
    assert good.requests[0].headers["host"] == f"example.test:{good.port}"


def test_every_address_refusing_is_a_connect_failure(
    opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = closed_port("127.0.0.1"), closed_port("127.0.0.2")
    resolve_to(
        monkeypatch,
        "example.test",
        [(socket.AF_INET, ("127.0.0.1", first)), (socket.AF_INET, ("127.0.0.2", second))],
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(f"https://example.test:{first}/f.bin", DIGEST, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.CONNECT]


def test_connect_returns_the_address_that_answers(
    black_hole: tuple[str, int], https_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = (https_server.host, https_server.port)
    resolve_to(monkeypatch, "example.test", [(socket.AF_INET, black_hole), (socket.AF_INET, good)])
    with connect(("example.test", 0), timeout=20.0, delay=0.05) as sock:
        assert sock.getpeername() == good
        assert sock.gettimeout() == 20.0


def test_connect_gives_up_at_its_timeout(
    black_hole: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_to(
        monkeypatch, "example.test", [(socket.AF_INET, black_hole), (socket.AF_INET, black_hole)]
    )
    with pytest.raises(socket.timeout):
        connect(("example.test", 0), timeout=0.3, delay=0.05)


def test_families_alternate_starting_with_the_first() -> None:
    v6 = [(socket.AF_INET6, 1, 6, "", (f"::{i}", 443, 0, 0)) for i in (1, 2, 3)]
    v4 = [(socket.AF_INET, 1, 6, "", (f"10.0.0.{i}", 443)) for i in (1, 2)]
    ordered = interleave([*v6, *v4])
    assert [info[4][0] for info in ordered] == ["::1", "10.0.0.1", "::2", "10.0.0.2", "::3"]
    assert [info[4][0] for info in interleave([*v4, *v6])][:2] == ["10.0.0.1", "::1"]
    assert interleave([]) == []
