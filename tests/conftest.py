"""Shared pytest fixtures: test certificates, dummy HTTP(S) servers, a proxy, a clean environment.

Every server/proxy made here listens on loopback only and is closed at teardown; teardown
also fails the test if a server handler hit an unexpected exception (a dummyserver bug).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, Protocol

import pytest

from dummyserver import Certs, Conn, Proxy, RawServer, Server
from dummyserver._net import Listener

# Removed from the environment for every test, whatever their case (http_proxy, ...).
_REMOVED_ENV_VARS = frozenset(
    {
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "ROBUSTFETCH_CA_BUNDLE",
        "ROBUSTFETCH_CACHE_DIR",
        "ROBUSTFETCH_OFFLINE",
    }
)


def _close_and_check(listener: Listener) -> None:
    listener.close()
    if listener.errors:
        raise AssertionError(f"{type(listener).__name__} handler errors: {listener.errors!r}")


class MakeServer(Protocol):
    def __call__(self, kind: str | None = "good", host: str = "127.0.0.1") -> Server: ...


class MakeProxy(Protocol):
    def __call__(
        self,
        required_auth: tuple[str, str] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> Proxy: ...


@pytest.fixture(autouse=True)
def robustfetch_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Autouse: drop proxy/CA/robustfetch variables; point the cache at a per-test folder.

    Removes HTTPS_PROXY, HTTP_PROXY, NO_PROXY, ALL_PROXY, SSL_CERT_FILE, SSL_CERT_DIR and
    every ROBUSTFETCH_* variable (any case), then sets ROBUSTFETCH_CACHE_DIR to
    ``tmp_path / "robustfetch-cache"`` (not created). Returns that path.
    """
    for name in list(os.environ):
        upper = name.upper()
        if upper in _REMOVED_ENV_VARS or upper.startswith("ROBUSTFETCH_"):
            monkeypatch.delenv(name)
    cache_dir = tmp_path / "robustfetch-cache"
    monkeypatch.setenv("ROBUSTFETCH_CACHE_DIR", str(cache_dir))
    return cache_dir


@pytest.fixture(scope="session")
def certs() -> Iterator[Certs]:
    """One trustme CA and its leaf certificates for the whole session."""
    made = Certs()
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture(scope="session")
def ca_bundle(certs: Certs) -> Path:
    """PEM file holding only the test CA (trusts good/expired/wrong_host, not untrusted)."""
    return certs.ca_bundle


@pytest.fixture
def make_server(certs: Certs) -> Iterator[MakeServer]:
    """Factory: ``make_server(kind="good"|"expired"|"wrong_host"|"untrusted"|None)``.

    ``None`` gives plain HTTP. Every server made is closed at teardown.
    """
    made: list[Server] = []

    def factory(kind: str | None = "good", host: str = "127.0.0.1") -> Server:
        context = None if kind is None else certs.context_for(kind)
        server = Server(context, host=host)
        made.append(server)
        return server

    yield factory
    for server in made:
        _close_and_check(server)


@pytest.fixture
def https_server(make_server: MakeServer) -> Server:
    """HTTPS server with the good certificate (localhost, 127.0.0.1, ::1, example.test...)."""
    return make_server("good")


@pytest.fixture
def http_server(make_server: MakeServer) -> Server:
    """Plain HTTP server."""
    return make_server(None)


@pytest.fixture
def make_proxy() -> Iterator[MakeProxy]:
    """Factory: ``make_proxy(required_auth=None, aliases=None)``; all closed at teardown."""
    made: list[Proxy] = []

    def factory(
        required_auth: tuple[str, str] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> Proxy:
        proxy = Proxy(required_auth=required_auth, aliases=aliases)
        made.append(proxy)
        return proxy

    yield factory
    for proxy in made:
        _close_and_check(proxy)


@pytest.fixture
def proxy(make_proxy: MakeProxy) -> Proxy:
    """Forward proxy (CONNECT + absolute-URI http), no auth, loopback targets only."""
    return make_proxy()


# =====================================================================================
# robustfetch fixtures: the main engineer adds fixtures for the library below this line.
# =====================================================================================


@pytest.fixture(params=["urllib3", "stdlib"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each transport in turn: every test using ``opts`` runs against both."""
    from robustfetch.transport import urllib3_available

    if request.param == "urllib3" and not urllib3_available():
        pytest.skip("urllib3 is not installed here")
    return str(request.param)


@pytest.fixture
def opts(ca_bundle: Path, transport: str) -> dict[str, object]:
    """Options for fast, deterministic fetches against the dummy servers.

    The cache is off: these tests are about sources; tests of the cache
    pass ``cache_dir`` themselves. Parametrised over the transports.
    """
    return {
        "transport": transport,
        "ca_bundle": ca_bundle,
        "cache_dir": None,
        "connect_timeout": 2.0,
        "stall_timeout": 0.5,
        "retries": 0,
        "backoff": 0.0,
    }


@pytest.fixture
def dest_dir(tmp_path: Path) -> Path:
    """An empty destination folder; tests assert what is left in it."""
    folder = tmp_path / "dest"
    folder.mkdir()
    return folder


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@pytest.fixture(autouse=True)
def loopback_only_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Autouse: name lookups other than loopback fail here, never reaching a resolver.

    A test that forgets ``connect_to`` then fails with reason ``dns`` instead of
    sending a query off this machine; it also lets tests produce ``dns`` for real.
    """
    import ipaddress
    import socket

    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            loopback = ipaddress.ip_address(name.strip("[]")).is_loopback
        except ValueError:
            loopback = name.lower() in _LOOPBACK_NAMES
        if not loopback:
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no lookups of {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture
def raw_https(certs: Certs) -> Iterator[Callable[[bytes], str]]:
    """Factory: an HTTPS server that reads a request head, sends ``answer`` verbatim, closes.

    For answers no well-behaved server sends (a head cut short, odd header
    values); returns the URL of a file on it.
    """
    made: list[RawServer] = []

    def factory(answer: bytes) -> str:
        def handler(conn: Conn) -> None:
            conn.read_head()
            conn.send_all(answer)
            conn.close_clean()

        server = RawServer(handler, certs.context_for("good"))
        made.append(server)
        return f"https://127.0.0.1:{server.port}/files/f.bin"

    yield factory
    for server in made:
        server.close()
