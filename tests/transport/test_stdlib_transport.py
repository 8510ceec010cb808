"""The standard-library transport (http.client + ssl): on its own, then under real fetches."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

import robustfetch
import robustfetch.api
from dummyserver import Certs, Conn, Proxy, RawServer, Server, closed_port
from robustfetch import FetchError, Reason
from robustfetch.transport import Transport, TransportError, TransportSettings, make_transport
from robustfetch.transport.files import SchemeRouter
from robustfetch.transport.stdlib_backend import StdlibResponse, StdlibTransport
from robustfetch.transport.tls import Trust, make_context

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
HEADERS = {"User-Agent": "stdlib-test", "Accept-Encoding": "identity"}
TIMEOUTS: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 2.0}


# -- helpers and fixtures ------------------------------------------------------------


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, outermost first."""
    found: list[BaseException] = []
    item: Optional[BaseException] = exc
    while item is not None and item not in found:
        found.append(item)
        item = item.__cause__ or item.__context__
    return found


def chain_has(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(item, kind) for item in chain(exc))


def read_all(response: StdlibResponse, size: int = 65536) -> bytes:
    body = b""
    while True:
        chunk = response.read(size)
        if not chunk:
            return body
        body += chunk


def get(transport: StdlibTransport, url: str, **headers: str) -> tuple[StdlibResponse, bytes]:
    """GET ``url``, read the whole body and release the connection."""
    response = transport.open(url, {**HEADERS, **headers}, **TIMEOUTS)
    body = read_all(response)
    response.release()
    return response, body


def open_error(transport: StdlibTransport, url: str, **timeouts: float) -> TransportError:
    with pytest.raises(TransportError) as info:
        transport.open(url, HEADERS, **{**TIMEOUTS, **timeouts})
    return info.value


def read_error(response: StdlibResponse) -> TransportError:
    with pytest.raises(TransportError) as info:
        read_all(response)
    response.close()
    return info.value


@pytest.fixture
def context(ca_bundle: Path) -> ssl.SSLContext:
    return make_context(Trust("bundle", ca_bundle))


@pytest.fixture
def make_client(context: ssl.SSLContext) -> Iterator[Any]:
    """Factory: ``make_client(**settings)`` -> StdlibTransport, closed at teardown."""
    made: list[StdlibTransport] = []

    def factory(**settings: Any) -> StdlibTransport:
        made.append(StdlibTransport(TransportSettings(context=context, **settings)))
        return made[-1]

    yield factory
    for transport in made:
        transport.close()


@pytest.fixture
def client(make_client: Any) -> StdlibTransport:
    """A StdlibTransport with the default settings (trusting the test CA)."""
    result: StdlibTransport = make_client()
    return result


@pytest.fixture
def transport() -> str:
    """Overrides conftest's: the fetches below (through ``opts``) use the stdlib only."""
    return "stdlib"


@pytest.fixture
def stdlib(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Transport]]:
    """Checks that the test's fetches went through a StdlibTransport (at teardown)."""
    made: list[Transport] = []

    def spy(name: str, settings: TransportSettings) -> Transport:
        made.append(make_transport(name, settings))
        return made[-1]

    monkeypatch.setattr(robustfetch.api, "make_transport", spy)
    yield made
    assert made, "no fetch went through make_transport"
    for router in made:
        assert isinstance(router, SchemeRouter) and isinstance(router.network, StdlibTransport)


def fail(url: str, *args: Any, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, *args, **kwargs)
    return info.value


def reasons(attempts: list[robustfetch.Attempt]) -> list[Optional[Reason]]:
    return [a.reason for a in attempts]


def silent_tls_server() -> RawServer:
    """Accepts TCP connections and never answers: a TLS handshake there hangs."""

    def handler(conn: Conn) -> None:
        conn.wait()

    return RawServer(handler)


def closing_server() -> RawServer:
    """Reads a request head, then closes without a word."""

    def handler(conn: Conn) -> None:
        conn.read_head()

    return RawServer(handler)


# -- the transport on its own --------------------------------------------------------


def test_get_returns_the_head_then_the_body(https_server: Server, client: StdlibTransport) -> None:
    url = https_server.route("/f.bin", body=DATA, headers={"X-Extra": "yes"}, etag="v1")
    response = client.open(url, HEADERS, **TIMEOUTS)
    assert response.status == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["X-EXTRA"] == "yes"
    assert response.headers.get("etag") == '"v1"'
    assert "Content-Type" in response.headers and "X-Nope" not in response.headers
    with pytest.raises(KeyError):
        response.headers["X-Nope"]
    assert read_all(response) == DATA
    response.release()


def test_headers_are_sent_as_given_plus_host(https_server: Server, client: StdlibTransport) -> None:
    url = https_server.route("/f.bin?x=1#frag", body=b"ok")
    get(client, url, **{"X-Token": "t"})
    (request,) = https_server.requests_for("/f.bin")
    assert request.path == "/f.bin?x=1"
    assert request.headers == {
        "host": f"127.0.0.1:{https_server.port}",
        "user-agent": "stdlib-test",
        "accept-encoding": "identity",
        "x-token": "t",
    }


def test_request_target_is_percent_encoded_as_urllib3_does(
    https_server: Server, client: StdlibTransport
) -> None:
    https_server.route("/a%20b/%C3%BC.bin", body=b"x")
    get(client, https_server.url("/a%20b/\u00fc.bin?q=\u00e4&r=%41|x{}^"))
    (request,) = https_server.requests
    assert request.path == "/a%20b/%C3%BC.bin?q=%C3%A4&r=%41%7Cx%7B%7D%5E"


def test_read_returns_as_soon_as_some_bytes_arrive(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA[:4000], trickle=(1000, 0.4))
    response = client.open(url, HEADERS, **TIMEOUTS)
    started = time.monotonic()
    first = response.read(1 << 20)
    assert 0 < len(first) <= 1000
    assert time.monotonic() - started < 0.3
    assert first + read_all(response) == DATA[:4000]
    response.release()


def test_redirects_are_not_followed(https_server: Server, client: StdlibTransport) -> None:
    https_server.route("/new", body=b"new")
    url = https_server.route("/old", status=302, headers={"Location": "/new"})
    response, _ = get(client, url)
    assert (response.status, response.headers["location"]) == (302, "/new")
    assert https_server.hits("/new") == 0


def test_gzip_is_never_decoded(https_server: Server, client: StdlibTransport) -> None:
    packed = gzip.compress(DATA)
    url = https_server.route("/f.gz", body=packed, headers={"Content-Encoding": "gzip"})
    response, body = get(client, url)
    assert body == packed
    assert response.headers["content-encoding"] == "gzip"


def test_range_request_gets_206(https_server: Server, client: StdlibTransport) -> None:
    url = https_server.route("/f.bin", body=DATA)
    response, body = get(client, url, Range="bytes=1000-")
    assert response.status == 206
    assert response.headers["content-range"] == f"bytes 1000-{len(DATA) - 1}/{len(DATA)}"
    assert body == DATA[1000:]


def test_chunked_body_is_read_and_the_connection_reused(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA, chunked=True)
    for _ in range(2):
        response, body = get(client, url)
        assert body == DATA
        assert "content-length" not in response.headers
    assert https_server.connections == 1


# -- keep-alive ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["https", "http"])
def test_connection_is_reused_after_a_full_read(
    kind: str, make_server: Any, client: StdlibTransport
) -> None:
    server = make_server("good" if kind == "https" else None)
    urls = [server.route(f"/f{i}", body=DATA) for i in range(3)]
    for url in urls:
        assert get(client, url)[1] == DATA
        assert client.idle_connections() == 1
    assert server.connections == 1
    assert {r.connection_id for r in server.requests} == {1}


def test_closed_response_discards_its_connection(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    response = client.open(url, HEADERS, **TIMEOUTS)
    assert response.read(1000)
    response.close()
    assert client.idle_connections() == 0
    assert get(client, url)[1] == DATA
    assert https_server.connections == 2


def test_close_after_release_leaves_the_pooled_connection_alone(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    response, _ = get(client, url)
    response.close()
    assert client.idle_connections() == 1
    assert get(client, url)[1] == DATA
    assert https_server.connections == 1


def test_unfinished_body_is_not_pooled_even_if_released(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    response = client.open(url, HEADERS, **TIMEOUTS)
    assert response.read(1000)
    response.release()
    assert client.idle_connections() == 0


def test_server_that_will_close_is_not_pooled(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA, headers={"Connection": "close"})
    assert get(client, url)[1] == DATA
    assert client.idle_connections() == 0
    get(client, url)
    assert https_server.connections == 2


def test_pool_keeps_at_most_pool_size_idle_connections(
    https_server: Server, make_client: Any
) -> None:
    transport = make_client(pool_size=1)
    url = https_server.route("/f.bin", body=DATA)
    first = transport.open(url, HEADERS, **TIMEOUTS)
    second = transport.open(url, HEADERS, **TIMEOUTS)
    for response in (first, second):
        assert read_all(response) == DATA
        response.release()
    assert https_server.connections == 2
    assert transport.idle_connections() == 1


def test_close_closes_pooled_connections(https_server: Server, client: StdlibTransport) -> None:
    url = https_server.route("/f.bin", body=DATA)
    get(client, url)
    response = client.open(url, HEADERS, **TIMEOUTS)
    (pooled_sock,) = [response._sock]
    read_all(response)
    response.release()
    client.close()
    assert client.idle_connections() == 0
    assert pooled_sock.fileno() == -1
    get(client, url)
    assert https_server.connections == 2


def test_threads_share_one_transport(https_server: Server, make_client: Any) -> None:
    transport = make_client(pool_size=8)
    urls = [https_server.route(f"/f{i}", body=DATA[i:]) for i in range(8)]
    bad: list[str] = []

    def worker(index: int) -> None:
        for _ in range(5):
            if get(transport, urls[index])[1] != DATA[index:]:
                bad.append(urls[index])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert bad == []
    assert len(https_server.requests) == 40
    assert https_server.connections <= 8
    assert transport.idle_connections() <= 8


@pytest.mark.parametrize("pause", [0.0, 0.5], ids=["at-once", "after-close"])
@pytest.mark.parametrize("kind", ["https", "http"])
def test_stale_pooled_connection_is_retried_on_a_fresh_one(
    kind: str, pause: float, make_server: Any, client: StdlibTransport
) -> None:
    server = make_server("good" if kind == "https" else None)
    # The whole body, announced as kept alive, then the server closes (FIN) anyway.
    url = server.route(
        "/f.bin",
        body=DATA,
        truncate_after=len(DATA),
        headers={"Connection": "keep-alive"},
        misbehave_first=1,
    )
    assert get(client, url)[1] == DATA
    assert client.idle_connections() == 1
    time.sleep(pause)
    assert get(client, url)[1] == DATA
    assert server.connections == 2
    assert server.hits("/f.bin") == 2


def test_a_fresh_connection_closed_without_answer_is_an_error() -> None:
    with closing_server() as server:
        transport = StdlibTransport(TransportSettings(context=ssl.create_default_context()))
        error = open_error(transport, f"http://127.0.0.1:{server.port}/f")
        assert chain_has(error, http.client.RemoteDisconnected)
        assert not error.connecting and not error.via_proxy
        assert server.connections == 1  # not retried


# -- failures ------------------------------------------------------------------------


def test_refused_connection_is_connecting(client: StdlibTransport) -> None:
    error = open_error(client, f"https://127.0.0.1:{closed_port()}/f")
    assert error.connecting and not error.via_proxy
    assert chain_has(error, ConnectionRefusedError)


def test_unknown_host_keeps_the_gaierror(client: StdlibTransport) -> None:
    error = open_error(client, "https://no-such-host.invalid/f")
    assert error.connecting
    assert chain_has(error, socket.gaierror)


def test_tls_handshake_is_bounded_by_the_connect_timeout(client: StdlibTransport) -> None:
    with silent_tls_server() as server:
        started = time.monotonic()
        error = open_error(
            client,
            f"https://127.0.0.1:{server.port}/f",
            connect_timeout=0.3,
            read_timeout=10.0,
        )
        assert time.monotonic() - started < 3.0
    assert error.connecting
    assert chain_has(error, socket.timeout)


def test_no_answer_is_a_read_timeout(https_server: Server, client: StdlibTransport) -> None:
    url = https_server.route("/f.bin", body=DATA, hang_before_headers=True)
    started = time.monotonic()
    error = open_error(client, url, connect_timeout=10.0, read_timeout=0.3)
    assert time.monotonic() - started < 3.0
    assert not error.connecting
    assert chain_has(error, socket.timeout)


def test_stalled_body_times_out_and_set_read_timeout_shortens_it(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA, stall_after=1000)
    response = client.open(url, HEADERS, connect_timeout=2.0, read_timeout=30.0)
    response.set_read_timeout(0.2)
    started = time.monotonic()
    error = read_error(response)
    assert time.monotonic() - started < 3.0
    assert chain_has(error, socket.timeout)


@pytest.mark.parametrize(
    "fault",
    [{"truncate_after": 1000}, {"content_length": len(DATA) + 500}],
    ids=["short-body", "lying-length"],
)
def test_short_body_is_an_incomplete_read(
    fault: dict[str, Any], https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA, **fault)
    response = client.open(url, HEADERS, **TIMEOUTS)
    error = read_error(response)
    assert chain_has(error, http.client.IncompleteRead)
    assert "body cut short" in str(error)


def test_cut_chunked_body_is_an_incomplete_read(
    https_server: Server, client: StdlibTransport
) -> None:
    url = https_server.route("/f.bin", body=DATA, chunked=True, truncate_after=1000)
    error = read_error(client.open(url, HEADERS, **TIMEOUTS))
    assert chain_has(error, http.client.IncompleteRead)


@pytest.mark.parametrize("kind", ["https", "http"])
def test_reset_body_is_an_error(kind: str, make_server: Any, client: StdlibTransport) -> None:
    server = make_server("good" if kind == "https" else None)
    url = server.route("/f.bin", body=DATA, reset_after=5000)
    error = read_error(client.open(url, HEADERS, **TIMEOUTS))
    # Over TLS, some ssl builds report the reset as a ragged EOF: the length check catches it.
    assert chain_has(error, ConnectionResetError) or (
        kind == "https" and chain_has(error, http.client.IncompleteRead)
    )


@pytest.mark.parametrize(("kind", "code"), [("expired", 10), ("wrong_host", 64), ("untrusted", 20)])
def test_certificate_failures_keep_the_ssl_error(
    kind: str, code: int, make_server: Any, client: StdlibTransport
) -> None:
    server = make_server(kind)
    error = open_error(client, server.route("/f.bin", body=DATA))
    assert error.connecting and not error.via_proxy
    (cert_error,) = [e for e in chain(error) if isinstance(e, ssl.SSLCertVerificationError)]
    assert cert_error.verify_code == code
    assert server.hits("/f.bin") == 0


def test_peer_certificate(https_server: Server, http_server: Server, certs: Certs) -> None:
    transport = StdlibTransport(
        TransportSettings(context=make_context(Trust("bundle", certs.ca_bundle)))
    )
    response, _ = get(transport, https_server.route("/f", body=b"x"))
    leaf = certs.good.cert_chain_pems[0].bytes().decode()
    assert response.peer_certificate() == ssl.PEM_cert_to_DER_cert(leaf)
    response, _ = get(transport, http_server.route("/f", body=b"x"))
    assert response.peer_certificate() is None
    transport.close()


# -- connect_to ----------------------------------------------------------------------


@pytest.fixture
def sni_server(certs: Certs) -> Iterator[tuple[Server, list[Optional[str]]]]:
    """A good HTTPS server that records the SNI name of every handshake."""
    names: list[Optional[str]] = []
    context = certs.good_context()

    def record(sock: ssl.SSLObject, name: Optional[str], ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = record
    server = Server(context)
    yield server, names
    server.close()
    assert not server.errors


@pytest.mark.parametrize("name", ["example.test", "bücher.example"])
def test_connect_to_keeps_host_header_and_sni(
    name: str, sni_server: tuple[Server, list[Optional[str]]], make_client: Any
) -> None:
    server, names = sni_server
    server.route("/f.bin", body=DATA)
    ascii_name = name.encode("idna").decode()
    transport = make_client(connect_to={(ascii_name, server.port): ("127.0.0.1", server.port)})
    assert get(transport, f"https://{name}:{server.port}/f.bin")[1] == DATA
    assert names == [ascii_name]
    assert server.requests[0].headers["host"] == f"{ascii_name}:{server.port}"


def test_ip_literals_send_no_sni(
    sni_server: tuple[Server, list[Optional[str]]], client: StdlibTransport
) -> None:
    server, names = sni_server
    get(client, server.route("/f.bin", body=b"x"))
    assert names == [None]


def test_connect_to_checks_the_certificate_against_the_url_host(
    https_server: Server, make_client: Any
) -> None:
    port = https_server.port
    transport = make_client(connect_to={("not-in-cert.test", None): ("127.0.0.1", port)})
    error = open_error(transport, f"https://not-in-cert.test:{port}/f")
    assert chain_has(error, ssl.SSLCertVerificationError)


def test_pinned_address_is_where_tcp_goes(
    make_server: Any, sni_server: tuple[Server, list[Optional[str]]], client: StdlibTransport
) -> None:
    server, names = sni_server
    server.route("/f.bin", body=DATA)
    decoy = make_server("good", host="127.0.0.2")
    url = f"https://example.test:{server.port}/f.bin"
    for _ in range(2):
        response = client.open(url, HEADERS, address=("127.0.0.1", server.port), **TIMEOUTS)
        assert read_all(response) == DATA
        response.release()
    assert names == ["example.test"]  # one handshake, then the pooled connection
    assert server.requests[0].headers["host"] == f"example.test:{server.port}"
    # Another address of the same host gets its own connection, not the pooled one.
    decoy.route("/f.bin", body=b"decoy")
    response = client.open(url, HEADERS, address=("127.0.0.2", decoy.port), **TIMEOUTS)
    assert read_all(response) == b"decoy"
    response.close()
    assert (server.connections, decoy.connections) == (1, 1)


def test_addresses(https_server: Server, proxy: Proxy, make_client: Any) -> None:
    url = f"https://localhost:{https_server.port}/f"
    assert ("127.0.0.1", https_server.port) in make_client().addresses(url)
    assert make_client(proxies={"https": proxy.url}).addresses(url) == []
    pinned = make_client(connect_to={("localhost", None): ("127.0.0.1", 1)})
    assert pinned.addresses(url) == []


def test_connect_time(https_server: Server, proxy: Proxy, make_client: Any) -> None:
    direct = make_client()
    seconds = direct.connect_time(https_server.url("/"), 2.0)
    assert seconds is not None and 0.0 < seconds < 2.0
    assert direct.connect_time(f"https://127.0.0.1:{closed_port()}/", 2.0) is None
    proxied = make_client(proxies={"https": proxy.url})
    assert proxied.connect_time(https_server.url("/"), 2.0) == 0.0
    # The server counts a connection when its accept loop gets to it: wait (bounded).
    for _ in range(500):
        if https_server.connections:
            break
        time.sleep(0.01)
    assert https_server.connections == 1 and proxy.connections == 0


# -- proxies -------------------------------------------------------------------------


def test_https_through_a_connect_tunnel_is_kept_alive(
    https_server: Server, proxy: Proxy, make_client: Any
) -> None:
    transport = make_client(proxies={"https": proxy.url})
    urls = [https_server.route(f"/f{i}", body=DATA) for i in range(2)]
    for url in urls:
        assert get(transport, url)[1] == DATA
    assert proxy.tunnels == [f"127.0.0.1:{https_server.port}"]
    assert https_server.requests[0].headers["host"] == f"127.0.0.1:{https_server.port}"


def test_tunnel_to_a_name_makes_no_lookup_here(
    https_server: Server, make_proxy: Any, make_client: Any
) -> None:
    proxy = make_proxy(aliases={"files.pythonhosted.org": "127.0.0.1"})
    transport = make_client(proxies={"https": proxy.url})
    https_server.route("/pkg", body=DATA)
    url = f"https://files.pythonhosted.org:{https_server.port}/pkg"
    assert get(transport, url)[1] == DATA
    assert proxy.tunnels == [f"files.pythonhosted.org:{https_server.port}"]


def test_tunnel_to_an_ipv6_address(make_server: Any, proxy: Proxy, make_client: Any) -> None:
    server = make_server("good", host="::1")
    transport = make_client(proxies={"https": proxy.url})
    assert get(transport, server.route("/f", body=DATA))[1] == DATA
    assert proxy.tunnels == [f"[::1]:{server.port}"]


def test_proxy_credentials_from_its_url(
    https_server: Server, http_server: Server, make_proxy: Any, make_client: Any
) -> None:
    guarded = make_proxy(required_auth=("user", "p@ss"))
    address = guarded.url.split("://", 1)[1]
    secure = https_server.route("/f.bin", body=DATA)
    plain = http_server.route("/f.bin", body=DATA)
    anonymous = make_client(proxies={"https": guarded.url})
    error = open_error(anonymous, secure)
    assert error.via_proxy and error.connecting
    assert "407 Proxy Authentication Required" in str(error)
    with_auth = f"http://user:p%40ss@{address}"
    transport = make_client(proxies={"https": with_auth, "http": with_auth})
    assert get(transport, secure)[1] == DATA
    assert get(transport, plain)[1] == DATA
    assert guarded.forwarded == [plain]
    expected = "Basic dXNlcjpwQHNz"  # user:p@ss
    assert [r.headers.get("proxy-authorization") for r in guarded.requests] == [
        None,
        expected,
        expected,
    ]
    assert "proxy-authorization" not in https_server.requests[0].headers


@pytest.mark.parametrize("kind", ["https", "http"])
def test_dead_proxy_is_via_proxy(kind: str, make_server: Any, make_client: Any) -> None:
    server = make_server("good" if kind == "https" else None)
    transport = make_client(proxies={kind: f"http://127.0.0.1:{closed_port()}"})
    error = open_error(transport, server.route("/f", body=b"x"))
    assert error.via_proxy and error.connecting
    assert chain_has(error, ConnectionRefusedError)
    assert server.connections == 0


@pytest.mark.parametrize(
    ("spelling", "message"),
    [
        ("https://127.0.0.1:{port}", "http:// proxies only"),
        ("socks5://127.0.0.1:{port}", "http:// proxies only"),
        ("http://127.0.0.1:99999", "out of range"),
    ],
)
def test_unusable_proxy_urls_are_refused_clearly(
    spelling: str, message: str, https_server: Server, proxy: Proxy, make_client: Any
) -> None:
    client = make_client(proxies={"https": spelling.format(port=proxy.port)})
    error = open_error(client, https_server.route("/f", body=b"x"))
    assert error.via_proxy and error.connecting
    assert message in str(error)
    assert proxy.connections == 0


def test_plain_http_goes_to_the_proxy_with_the_absolute_url(
    http_server: Server, proxy: Proxy, make_client: Any
) -> None:
    transport = make_client(proxies={"http": proxy.url})
    url = http_server.route("/f.bin?q=1", body=DATA)
    assert get(transport, url)[1] == DATA
    assert proxy.forwarded == [url]
    assert proxy.tunnels == []
    assert http_server.requests[0].headers["host"] == f"127.0.0.1:{http_server.port}"


# -- real fetches through the stdlib transport -----------------------------------------


def test_fetch_succeeds(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/pkg-1.0.tar.gz", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert reasons(result.attempts) == [None]


def test_fetcher_reuses_one_connection(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    urls = [https_server.route(f"/f{i}.bin", body=DATA) for i in range(4)]
    with robustfetch.Fetcher(**opts) as fetcher:
        for url in urls:
            fetcher.fetch(url, DIGEST, dest=dest_dir)
    assert https_server.connections == 1
    assert len(stdlib) == 1


def test_fetcher_retries_a_stale_connection_unseen(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route(
        "/a/f.bin", body=DATA, truncate_after=len(DATA), headers={"Connection": "keep-alive"}
    )
    second = https_server.route("/b/f.bin", body=DATA)
    with robustfetch.Fetcher(**opts) as fetcher:
        fetcher.fetch(first, DIGEST, dest=dest_dir / "a.bin")
        time.sleep(0.3)
        result = fetcher.fetch(second, DIGEST, dest=dest_dir / "b.bin")
    assert reasons(result.attempts) == [None]
    assert https_server.connections == 2


def test_fetch_many_shares_the_transport(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    urls = [https_server.route(f"/f{i}.bin", body=DATA) for i in range(40)]
    requests = [robustfetch.Request(u, DIGEST, dest=dest_dir) for u in urls]
    results = robustfetch.fetch_many(requests, workers=8, **opts)
    assert all(isinstance(r, robustfetch.FetchResult) for r in results)
    assert https_server.connections <= 8


def test_fetch_not_found(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    missing = https_server.route("/a/f.bin", status=404, body=b"gone")
    good = https_server.route("/b/f.bin", body=DATA)
    result = robustfetch.fetch(missing, DIGEST, [good], dest=dest_dir, **opts)
    assert reasons(result.attempts) == [Reason.NOT_FOUND, None]
    assert https_server.connections == 1  # the 404's body drained, the connection reused


def test_fetch_stall_is_stalled_then_resumed_with_range(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, stall_after=100_000, misbehave_first=1)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert reasons(result.attempts) == [Reason.STALLED, None]
    assert "0.5 s (stall_timeout)" in result.attempts[0].detail
    second = https_server.requests_for("/f.bin")[1]
    assert second.headers["range"].startswith("bytes=")
    assert second.headers["range"] != "bytes=0-"
    assert result.path.read_bytes() == DATA


def test_fetch_hang_is_timeout(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, hang_before_headers=True)
    error = fail(url, DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.TIMEOUT]
    assert "no answer within 0.5 s (stall_timeout)" in error.attempts[0].detail


def test_fetch_tls_handshake_hang_names_the_connect_timeout(
    stdlib: list[Transport], opts: dict[str, Any], dest_dir: Path
) -> None:
    with silent_tls_server() as server:
        url = f"https://127.0.0.1:{server.port}/f.bin"
        error = fail(url, DIGEST, dest=dest_dir, **{**opts, "connect_timeout": 0.3})
    assert reasons(error.attempts) == [Reason.TIMEOUT]
    assert "(connect_timeout)" in error.attempts[0].detail


@pytest.mark.parametrize(
    "fault",
    [
        {"truncate_after": 1000},
        {"content_length": len(DATA) + 500},
        {"reset_after": 5000},
        {"chunked": True, "truncate_after": 1000},
    ],
    ids=["short-body", "lying-length", "reset", "chunked"],
)
def test_fetch_cut_body_is_truncated(
    fault: dict[str, Any],
    stdlib: list[Transport],
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
) -> None:
    url = https_server.route("/f.bin", body=DATA, **fault)
    error = fail(url, DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.TRUNCATED]


def test_fetch_refused_and_unknown_host(
    stdlib: list[Transport], opts: dict[str, Any], dest_dir: Path
) -> None:
    error = fail(f"https://127.0.0.1:{closed_port()}/f.bin", DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.CONNECT]
    assert "refused" in error.attempts[0].detail.lower()
    error = fail("https://no-such-host.invalid/f.bin", DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.DNS]


def test_fetch_gzip_is_never_decoded(
    stdlib: list[Transport], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    packed = gzip.compress(DATA)
    url = https_server.route("/f.tar.gz", body=packed, headers={"Content-Encoding": "gzip"})
    digest = hashlib.sha256(packed).hexdigest()
    result = robustfetch.fetch(url, digest, dest=dest_dir, **opts)
    assert result.path.read_bytes() == packed


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("wrong_host", Reason.CERT_HOSTNAME),
        ("untrusted", Reason.CERT_UNTRUSTED),
        ("expired", Reason.CERT_EXPIRED),
    ],
)
def test_fetch_certificate_problems(
    kind: str,
    reason: Reason,
    stdlib: list[Transport],
    make_server: Any,
    opts: dict[str, Any],
    dest_dir: Path,
) -> None:
    server = make_server(kind)
    error = fail(server.route("/f.bin", body=DATA), DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [reason]


def test_fetch_with_connect_to(
    stdlib: list[Transport],
    sni_server: tuple[Server, list[Optional[str]]],
    opts: dict[str, Any],
    dest_dir: Path,
) -> None:
    server, names = sni_server
    server.route("/f.bin", body=DATA)
    url = f"https://example.test:{server.port}/f.bin"
    target = {f"example.test:{server.port}": f"127.0.0.1:{server.port}"}
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, connect_to=target, **opts)
    assert result.size == len(DATA)
    assert names == ["example.test"]
    assert server.requests[0].headers["host"] == f"example.test:{server.port}"


def test_fetch_moves_to_the_next_address_after_a_tls_failure(
    stdlib: list[Transport],
    make_server: Any,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = make_server("wrong_host", host="127.0.0.1")
    good = make_server("good", host="127.0.0.2")
    for server in (bad, good):
        server.route("/f.bin", body=DATA)
    guarded = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "example.test":
            return guarded(host, port, *args, **kwargs)
        stream = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
        return [(*stream, (s.host, s.port)) for s in (bad, good)]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    url = f"https://example.test:{bad.port}/f.bin"
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert reasons(result.attempts) == [Reason.CERT_HOSTNAME, None]
    assert good.hits("/f.bin") == 1
    assert good.requests[0].headers["host"] == f"example.test:{bad.port}"


def test_fetch_through_proxies(
    stdlib: list[Transport],
    https_server: Server,
    http_server: Server,
    proxy: Proxy,
    opts: dict[str, Any],
    dest_dir: Path,
) -> None:
    secure = https_server.route("/s/f.bin", body=DATA)
    plain = http_server.route("/p/f.bin", body=DATA)
    proxies = {"https": proxy.url, "http": proxy.url}
    robustfetch.fetch(secure, DIGEST, dest=dest_dir / "s.bin", proxies=proxies, **opts)
    robustfetch.fetch(plain, DIGEST, dest=dest_dir / "p.bin", proxies=proxies, **opts)
    assert proxy.tunnels == [f"127.0.0.1:{https_server.port}"]
    assert proxy.forwarded == [plain]


def test_fetch_proxy_auth_and_dead_proxy_are_proxy(
    stdlib: list[Transport],
    https_server: Server,
    make_proxy: Any,
    opts: dict[str, Any],
    dest_dir: Path,
) -> None:
    guarded = make_proxy(required_auth=("user", "p@ss"))
    url = https_server.route("/f.bin", body=DATA)
    for proxy_url in (guarded.url, f"http://127.0.0.1:{closed_port()}"):
        error = fail(url, DIGEST, dest=dest_dir, proxies={"https": proxy_url}, **opts)
        assert reasons(error.attempts) == [Reason.PROXY]
    address = guarded.url.split("://", 1)[1]
    proxies = {"https": f"http://user:p%40ss@{address}"}
    assert robustfetch.fetch(url, DIGEST, dest=dest_dir, proxies=proxies, **opts).size == len(DATA)
    assert https_server.hits("/f.bin") == 1
