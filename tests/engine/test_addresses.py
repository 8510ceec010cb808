"""A host whose first address fails TLS and whose second serves: both are tried."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = os.urandom(100_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


def resolve_to(monkeypatch: pytest.MonkeyPatch, name: str, servers: list[Server]) -> None:
    """Make ``name`` resolve to each server's (address, port), in order: a resolver hook."""
    guarded = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return guarded(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (s.host, s.port))
            for s in servers
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("wrong_host", Reason.CERT_HOSTNAME), ("untrusted", Reason.CERT_UNTRUSTED)],
)
def test_tls_failure_on_one_address_moves_to_the_next(
    kind: str,
    reason: Reason,
    make_server: Any,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = make_server(kind, host="127.0.0.1")
    good = make_server("good", host="127.0.0.2")
    for server in (bad, good):
        server.route("/f.bin", body=DATA)
    resolve_to(monkeypatch, "example.test", [bad, good])
    url = f"https://example.test:{bad.port}/f.bin"
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert [a.reason for a in result.attempts] == [reason, None]
    assert f"from address 127.0.0.2:{good.port}" in result.attempts[1].detail
    assert result.attempts[1].status == 200
    assert good.hits("/f.bin") == 1 and bad.hits("/f.bin") == 0
    assert good.requests[0].headers["host"] == f"example.test:{bad.port}"


def test_every_address_failing_is_reported_per_address(
    make_server: Any, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_server("expired", host="127.0.0.1")
    second = make_server("wrong_host", host="127.0.0.2")
    resolve_to(monkeypatch, "example.test", [first, second])
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(f"https://example.test:{first.port}/f.bin", DIGEST, dest=dest_dir, **opts)
    attempts = info.value.attempts
    assert [a.reason for a in attempts] == [Reason.CERT_EXPIRED, Reason.CERT_HOSTNAME]
    assert f"at address 127.0.0.2:{second.port}" in attempts[1].detail


def test_other_failures_do_not_walk_the_addresses(
    make_server: Any, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_server("good", host="127.0.0.1")
    second = make_server("good", host="127.0.0.2")
    first.route("/f.bin", status=404)
    second.route("/f.bin", body=DATA)
    resolve_to(monkeypatch, "example.test", [first, second])
    with pytest.raises(FetchError):
        robustfetch.fetch(f"https://example.test:{first.port}/f.bin", DIGEST, dest=dest_dir, **opts)
    assert second.connections == 0


def test_after_a_redirect_the_failing_hosts_addresses_are_walked_and_the_partial_kept(
    make_server: Any, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_server("good", host="127.0.0.1")
    cut = first.route("/cut/f.bin", body=DATA, truncate_after=40_000)
    bad = make_server("wrong_host", host="127.0.0.2")
    good = make_server("good", host="127.0.0.3")
    for server in (bad, good):
        server.route("/f.bin", body=DATA)
    resolve_to(monkeypatch, "example.test", [bad, good])
    moved = first.route(
        "/moved/f.bin", status=302, headers={"Location": f"https://example.test:{bad.port}/f.bin"}
    )
    result = robustfetch.fetch(cut, DIGEST, [moved], dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    reasons = [a.reason for a in result.attempts]
    assert reasons == [Reason.TRUNCATED, Reason.CERT_HOSTNAME, None]
    assert f"from address 127.0.0.3:{good.port}" in result.attempts[2].detail
    assert result.attempts[2].status == 206  # a resume (audit #8)
    (request,) = good.requests_for("/f.bin")
    assert request.headers["range"] == "bytes=40000-"  # the first source's bytes kept
    assert request.headers["host"] == f"example.test:{bad.port}"


def test_a_temporary_dns_failure_is_retried(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    https_server.route("/f.bin", body=DATA)
    guarded = socket.getaddrinfo
    calls: list[str] = []

    def flaky(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "example.test":
            calls.append(host)
            if len(calls) == 1:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return guarded("127.0.0.1", port, *args, **kwargs)
        return guarded(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    url = f"https://example.test:{https_server.port}/f.bin"
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert [a.reason for a in result.attempts] == [Reason.DNS, None]
    assert result.path.read_bytes() == DATA


class _HangingResolver:
    """``name`` resolves once; later look-ups hang until released (then fail)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, servers: list[Server]) -> None:
        import threading

        self.release = threading.Event()
        self.ended = threading.Event()  # a hung look-up came back
        self.calls = 0
        guarded = socket.getaddrinfo

        def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != name:
                return guarded(host, port, *args, **kwargs)
            self.calls += 1
            if self.calls > 1:
                self.release.wait(10)  # bounded: a failing test ends too
                self.ended.set()
                raise socket.gaierror(socket.EAI_AGAIN, "resolver hung")
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (s.host, s.port))
                for s in servers
            ]

        monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_the_other_addresses_look_up_ends_by_the_deadline(
    make_server: Any, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a TLS failure the host's addresses are looked up again: bounded by the deadline."""
    bad = make_server("untrusted", host="127.0.0.1")
    resolver = _HangingResolver(monkeypatch, "example.test", [bad])
    try:
        with pytest.raises(FetchError) as info:
            robustfetch.fetch(
                f"https://example.test:{bad.port}/f.bin",
                DIGEST,
                dest=dest_dir,
                **{**opts, "deadline": 1.0},
            )
        assert resolver.calls == 2  # the second look-up is the one that hung
        assert not resolver.ended.is_set()  # the fetch did not wait for it
    finally:
        resolver.release.set()
    assert info.value.attempts[0].reason is Reason.CERT_UNTRUSTED
