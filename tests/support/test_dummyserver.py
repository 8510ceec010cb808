"""Sanity tests of the dummyserver toolkit (certificates, server, proxy tunnel) via stdlib only."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from dummyserver import GOOD_IDENTITIES, Certs, Conn, Proxy, RawServer, Route, Server, serve_bytes
from dummyserver.client import TIMEOUT, connect, fetch, live_threads, read_to_eof, tls_socket

MakeServer = Callable[..., Server]

# OpenSSL X509_V_ERR_* codes, stable across OpenSSL versions.
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64


# -- certificates ---------------------------------------------------------------------


def test_ca_bundle_holds_only_the_ca(certs: Certs, ca_bundle: Path) -> None:
    pem = ca_bundle.read_bytes()
    assert pem.count(b"BEGIN CERTIFICATE") == 1
    assert pem == certs.ca.cert_pem.bytes()


@pytest.mark.parametrize("name", GOOD_IDENTITIES)
def test_good_certificate_verifies_for_every_identity(
    https_server: Server, certs: Certs, name: str
) -> None:
    https_server.route("/", body=b"ok")
    with tls_socket(https_server.port, certs, name) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_to_eof(sock).endswith(b"\r\n\r\nok")


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("expired", {X509_V_ERR_CERT_HAS_EXPIRED}),
        ("wrong_host", {X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH}),
        ("untrusted", {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY}),
    ],
)
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_bad_certificates_fail_verification(
    make_server: MakeServer,
    certs: Certs,
    capfd: pytest.CaptureFixture[str],
    kind: str,
    codes: set[int],
    host: str,
) -> None:
    server = make_server(kind)
    server.route("/", body=b"ok")
    with pytest.raises(ssl.SSLCertVerificationError) as info, connect(server, certs, host) as conn:
        fetch(conn, "/")
    assert info.value.verify_code in codes
    server.close()
    assert server.connections == 1
    assert server.requests == []
    assert capfd.readouterr().err == ""


def test_wrong_host_certificate_is_valid_for_its_own_name(
    make_server: MakeServer, certs: Certs
) -> None:
    server = make_server("wrong_host")
    with tls_socket(server.port, certs, "other.invalid") as sock:
        assert sock.version() is not None


def test_expired_certificate_validity_is_in_the_past(certs: Certs) -> None:
    cert = x509.load_pem_x509_certificate(certs.expired.cert_chain_pems[0].bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    assert cert.not_valid_after_utc < now - datetime.timedelta(days=1)


def test_context_for_rejects_unknown_kind(certs: Certs) -> None:
    with pytest.raises(ValueError, match="unknown certificate kind"):
        certs.context_for("bogus")


# -- basic serving ----------------------------------------------------------------------


def test_get_records_request_with_lowercase_headers(https_server: Server, certs: Certs) -> None:
    url = https_server.route("/file.bin", body=b"0123456789", headers={"X-Extra": "1"})
    assert url == f"https://127.0.0.1:{https_server.port}/file.bin"
    with connect(https_server, certs) as conn:
        response, body = fetch(conn, "/file.bin?q=1", {"X-Custom": "yes"})
    assert (response.status, body) == (200, b"0123456789")
    assert response.getheader("Content-Length") == "10"
    assert response.getheader("X-Extra") == "1"
    [recorded] = https_server.requests_for("/file.bin")
    assert (recorded.method, recorded.path, recorded.connection_id) == ("GET", "/file.bin?q=1", 1)
    assert recorded.headers["x-custom"] == "yes"
    assert https_server.hits("/file.bin") == 1


def test_url_host_override_and_plain_http(http_server: Server, certs: Certs) -> None:
    assert http_server.url("/a", host="localhost") == f"http://localhost:{http_server.port}/a"
    http_server.route("/a", body=b"plain")
    with connect(http_server, certs) as conn:
        assert fetch(conn, "/a")[1] == b"plain"


def test_unknown_path_is_404(https_server: Server, certs: Certs) -> None:
    with connect(https_server, certs) as conn:
        response, body = fetch(conn, "/nope")
    assert response.status == 404
    assert body


def test_keep_alive_serves_several_requests_on_one_connection(
    https_server: Server, certs: Certs
) -> None:
    https_server.route("/a", body=b"A")
    https_server.route("/empty")
    with connect(https_server, certs) as conn:
        assert fetch(conn, "/a")[1] == b"A"
        assert fetch(conn, "/empty")[0].getheader("Content-Length") == "0"
        assert fetch(conn, "/a", method="HEAD")[1] == b""
        assert fetch(conn, "/a")[1] == b"A"
    assert https_server.connections == 1
    assert {r.connection_id for r in https_server.requests} == {1}


def test_fail_first_then_success(https_server: Server, certs: Certs) -> None:
    https_server.route("/flaky", body=b"good", fail_first=2, fail_headers={"Retry-After": "0"})
    with connect(https_server, certs) as conn:
        first, second, third = (fetch(conn, "/flaky") for _ in range(3))
    assert [first[0].status, second[0].status, third[0].status] == [503, 503, 200]
    assert first[0].getheader("Retry-After") == "0"
    assert first[0].getheader("Content-Length") == "0"
    assert third[1] == b"good"
    assert https_server.connections == 1


def test_redirect_and_empty_statuses(http_server: Server, certs: Certs) -> None:
    target = http_server.route("/target", body=b"here")
    http_server.route("/moved", status=302, headers={"Location": target})
    http_server.route("/error", status=500)
    http_server.route("/nothing", status=204)
    with connect(http_server, certs) as conn:
        moved, body = fetch(conn, "/moved")
        assert (moved.status, moved.getheader("Location"), body) == (302, target, b"")
        assert moved.getheader("Content-Length") == "0"
        assert fetch(conn, "/error")[0].getheader("Content-Length") == "0"
        nothing = fetch(conn, "/nothing")[0]
        assert (nothing.status, nothing.getheader("Content-Length")) == (204, None)


def test_chunked_has_no_content_length(https_server: Server, certs: Certs) -> None:
    https_server.route("/chunked", body=b"x" * 100_000, chunked=True)
    with connect(https_server, certs) as conn:
        response, body = fetch(conn, "/chunked")
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    assert body == b"x" * 100_000


def test_trickle_sends_pieces(http_server: Server) -> None:
    http_server.route("/slow", body=b"abcdefghij", chunked=True, trickle=(4, 0.01))
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        wire = read_to_eof(sock)
    assert wire.endswith(b"\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n2\r\nij\r\n0\r\n\r\n")


# -- ranges and validators -------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "status", "content_range", "body"),
    [
        ("bytes=5-", 206, "bytes 5-9/10", b"56789"),
        ("bytes=2-4", 206, "bytes 2-4/10", b"234"),
        ("bytes=-3", 206, "bytes 7-9/10", b"789"),
        ("bytes=10-", 416, "bytes */10", b""),
        ("bytes=0-1,4-5", 200, None, b"0123456789"),
    ],
)
def test_ranges(
    https_server: Server,
    certs: Certs,
    range_header: str,
    status: int,
    content_range: str | None,
    body: bytes,
) -> None:
    https_server.route("/r", body=b"0123456789")
    with connect(https_server, certs) as conn:
        response, got = fetch(conn, "/r", {"Range": range_header})
    assert (response.status, response.getheader("Content-Range"), got) == (
        status,
        content_range,
        body,
    )
    assert response.getheader("Accept-Ranges") == "bytes"


def test_ranges_disabled_sends_full_200(https_server: Server, certs: Certs) -> None:
    https_server.route("/r", body=b"0123456789", ranges=False)
    with connect(https_server, certs) as conn:
        response, body = fetch(conn, "/r", {"Range": "bytes=5-"})
    assert (response.status, body) == (200, b"0123456789")
    assert response.getheader("Accept-Ranges") is None


def test_etag_conditionals(https_server: Server, certs: Certs) -> None:
    https_server.route("/e", body=b"0123456789", etag="v1")
    with connect(https_server, certs) as conn:
        assert fetch(conn, "/e")[0].getheader("ETag") == '"v1"'
        assert fetch(conn, "/e", {"If-None-Match": '"v1"'})[0].status == 304
        matching = fetch(conn, "/e", {"Range": "bytes=8-", "If-Range": '"v1"'})
        assert (matching[0].status, matching[1]) == (206, b"89")
        stale = fetch(conn, "/e", {"Range": "bytes=8-", "If-Range": '"v0"'})
        assert (stale[0].status, stale[1]) == (200, b"0123456789")


# -- misbehaviour ----------------------------------------------------------------------


def test_hang_before_headers_times_out_and_close_releases_it(
    https_server: Server, certs: Certs
) -> None:
    https_server.route("/hang", body=b"never", hang_before_headers=True)
    with connect(https_server, certs, timeout=0.5) as conn:
        conn.request("GET", "/hang")
        with pytest.raises(socket.timeout):
            conn.getresponse()
    assert len(https_server.requests_for("/hang")) == 1
    https_server.close()
    assert live_threads(https_server) == []


def test_stall_after_then_client_read_timeout(https_server: Server, certs: Certs) -> None:
    https_server.route("/stall", body=b"0123456789", stall_after=4)
    with connect(https_server, certs, timeout=0.5) as conn:
        conn.request("GET", "/stall")
        response = conn.getresponse()
        assert response.getheader("Content-Length") == "10"
        assert response.read(4) == b"0123"
        with pytest.raises(socket.timeout):
            response.read(1)
    https_server.close()
    assert live_threads(https_server) == []


def test_trickle_is_released_by_close(http_server: Server, certs: Certs) -> None:
    http_server.route("/slow", body=b"abc", trickle=(1, 30.0))
    with connect(http_server, certs) as conn:
        conn.request("GET", "/slow")
        assert conn.getresponse().read(1) == b"a"
        http_server.close()
    assert live_threads(http_server) == []


@pytest.mark.parametrize("kind", [None, "good"])
def test_truncate_after_gives_incomplete_read(
    make_server: MakeServer, certs: Certs, kind: str | None
) -> None:
    server = make_server(kind)
    server.route("/t", body=b"0123456789", truncate_after=3)
    with connect(server, certs) as conn:
        conn.request("GET", "/t")
        response = conn.getresponse()
        assert response.getheader("Connection") == "close"
        with pytest.raises(http.client.IncompleteRead) as info:
            response.read()
    assert (info.value.partial, info.value.expected) == (b"012", 7)


def test_truncate_over_tls_sends_close_notify(https_server: Server, certs: Certs) -> None:
    https_server.route("/t", body=b"0123456789", truncate_after=3)
    with tls_socket(https_server.port, certs, "localhost", suppress_ragged_eofs=False) as sock:
        sock.sendall(b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_to_eof(sock).endswith(b"\r\n\r\n012")  # clean EOF, no SSLEOFError


def test_reset_after_gives_connection_reset(http_server: Server, certs: Certs) -> None:
    http_server.route("/r", body=b"0123456789", reset_after=3)
    with connect(http_server, certs) as conn:
        conn.request("GET", "/r")
        response = conn.getresponse()
        with pytest.raises(ConnectionResetError):
            response.read()


def test_reset_over_tls_is_an_unclean_eof(https_server: Server, certs: Certs) -> None:
    # Python's ssl surfaces a TCP RST after TLS data as EOF: SSLEOFError when ragged EOFs
    # are not suppressed (and a plain b"" / IncompleteRead when they are, the default).
    https_server.route("/r", body=b"0123456789", reset_after=3)
    with tls_socket(https_server.port, certs, "localhost", suppress_ragged_eofs=False) as sock:
        sock.sendall(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises((ssl.SSLEOFError, ConnectionResetError)):
            read_to_eof(sock)
    https_server.route("/r2", body=b"0123456789", reset_after=3)
    with connect(https_server, certs) as conn:
        conn.request("GET", "/r2")
        with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
            conn.getresponse().read()


def test_content_length_lies(https_server: Server, certs: Certs) -> None:
    https_server.route("/long", body=b"0123456789", content_length=20)
    https_server.route("/short", body=b"0123456789", content_length=4)
    with connect(https_server, certs) as conn:
        conn.request("GET", "/long")
        with pytest.raises(http.client.IncompleteRead) as info:
            conn.getresponse().read()
        assert info.value.partial == b"0123456789"
    with connect(https_server, certs) as conn:
        response, body = fetch(conn, "/short")
        assert (body, response.getheader("Connection")) == (b"0123", "close")


def test_misbehave_first_then_resume_with_range(https_server: Server, certs: Certs) -> None:
    https_server.route("/m", body=b"0123456789", truncate_after=3, misbehave_first=1)
    with connect(https_server, certs) as conn:
        conn.request("GET", "/m")
        with pytest.raises(http.client.IncompleteRead):
            conn.getresponse().read()
    with connect(https_server, certs) as conn:
        response, body = fetch(conn, "/m", {"Range": "bytes=3-"})
    assert (response.status, body) == (206, b"3456789")


@pytest.mark.parametrize(
    "request_bytes",
    [b"garbage\r\n\r\n", b"GET / HTTP/1.1\r\nno colon\r\n\r\n", b"GET http://[x/ HTTP/1.1\r\n\r\n"],
)
def test_malformed_requests_get_400(
    http_server: Server, proxy: Proxy, request_bytes: bytes
) -> None:
    for port in (http_server.port, proxy.port):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(request_bytes)
            assert read_to_eof(sock).startswith(b"HTTP/1.1 400 ")
    # errors == [] is checked by the fixtures at teardown


def test_route_validation_and_override(https_server: Server) -> None:
    with pytest.raises(ValueError, match="at most one"):
        Route(stall_after=1, reset_after=2)
    base = Route(body=b"x", status=201)
    https_server.route("/o", base, status=202)
    assert base.status == 201


# -- server lifecycle and variants -------------------------------------------------------


def test_close_is_idempotent_and_context_manager(certs: Certs) -> None:
    with Server(certs.good_context()) as server:
        server.route("/", body=b"x")
    server.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), 0.5):
        pass


def test_non_loopback_listen_address_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Server(host="0.0.0.0")


def test_ipv6_server(make_server: MakeServer, certs: Certs) -> None:
    try:
        server = make_server("good", host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    url = server.route("/six", body=b"6")
    assert url == f"https://[::1]:{server.port}/six"
    raw = socket.create_connection(("::1", server.port), timeout=TIMEOUT)
    with certs.client_context().wrap_socket(raw, server_hostname="::1") as sock:
        sock.sendall(b"GET /six HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_to_eof(sock).endswith(b"\r\n\r\n6")


def test_raw_server_and_serve_bytes(certs: Certs) -> None:
    def echo(conn: Conn) -> None:
        conn.send_all(conn.recv_some().upper())

    with RawServer(echo) as raw, socket.create_connection(raw.address, TIMEOUT) as sock:
        sock.sendall(b"ping")
        assert read_to_eof(sock) == b"PING"
    server, url = serve_bytes(certs.good_context(), b"payload", etag="e")
    with server, connect(server, certs) as conn:
        response, body = fetch(conn, "/file")
    assert url.endswith("/file")
    assert (body, response.getheader("ETag")) == (b"payload", '"e"')


# -- proxy -------------------------------------------------------------------------------


def test_proxy_tunnels_tls(https_server: Server, proxy: Proxy, certs: Certs) -> None:
    https_server.route("/via", body=b"tunnelled")
    conn = http.client.HTTPSConnection(
        "127.0.0.1", proxy.port, timeout=TIMEOUT, context=certs.client_context()
    )
    conn.set_tunnel("localhost", https_server.port)
    with contextlib.closing(conn):
        assert fetch(conn, "/via")[1] == b"tunnelled"
        assert fetch(conn, "/via")[1] == b"tunnelled"
    assert proxy.tunnels == [f"localhost:{https_server.port}"]
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    assert len(https_server.requests_for("/via")) == 2
    assert https_server.connections == 1
