"""Further sanity tests of dummyserver.Proxy: aliases, forwarding, refusals, auth (stdlib only)."""

from __future__ import annotations

import base64
import contextlib
import http.client
from collections.abc import Callable

import pytest

from dummyserver import Certs, Proxy, Server
from dummyserver.client import TIMEOUT, fetch

MakeProxy = Callable[..., Proxy]


@pytest.mark.parametrize(
    ("alias", "tunnel_host"),
    [
        ("files.pythonhosted.org", "files.pythonhosted.org"),
        ("bücher.example", "xn--bcher-kva.example"),  # clients send the IDNA form
    ],
)
def test_proxy_aliases_route_public_names_to_loopback(
    https_server: Server, make_proxy: MakeProxy, certs: Certs, alias: str, tunnel_host: str
) -> None:
    proxy = make_proxy(aliases={alias: "127.0.0.1"})
    https_server.route("/pkg", body=b"wheel")
    conn = http.client.HTTPSConnection(
        "127.0.0.1", proxy.port, timeout=TIMEOUT, context=certs.client_context()
    )
    conn.set_tunnel(tunnel_host, https_server.port)
    with contextlib.closing(conn):
        assert fetch(conn, "/pkg")[1] == b"wheel"
    assert proxy.tunnels == [f"{tunnel_host}:{https_server.port}"]


def test_proxy_forwards_plain_http(http_server: Server, proxy: Proxy) -> None:
    url = http_server.route("/plain", body=b"forwarded")
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=1)) as c:
        response, body = fetch(c, url)
    assert (response.status, body, response.getheader("Connection")) == (200, b"forwarded", "close")
    assert proxy.forwarded == [url]
    [recorded] = http_server.requests_for("/plain")
    assert recorded.path == "/plain"


def test_proxy_relays_truncation(http_server: Server, proxy: Proxy) -> None:
    url = http_server.route("/t", body=b"0123456789", truncate_after=3)
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=1)) as c:
        c.request("GET", url)
        with pytest.raises(http.client.IncompleteRead) as info:
            c.getresponse().read()
    assert info.value.partial == b"012"


@pytest.mark.parametrize("target", ["example.com:443", "10.0.0.1:80", "[2001:db8::1]:443"])
def test_proxy_refuses_non_loopback_targets(proxy: Proxy, target: str) -> None:
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=1)) as c:
        assert fetch(c, target, method="CONNECT")[0].status == 403
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=1)) as c:
        assert fetch(c, f"http://{target}/x")[0].status == 403
    assert proxy.tunnels == [target]


def test_proxy_requires_auth(https_server: Server, make_proxy: MakeProxy, certs: Certs) -> None:
    proxy = make_proxy(required_auth=("user", "secret"))
    https_server.route("/a", body=b"authed")
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=1)) as c:
        response, _ = fetch(c, f"localhost:{https_server.port}", method="CONNECT")
        assert response.status == 407
        assert response.getheader("Proxy-Authenticate") == 'Basic realm="dummyproxy"'
    token = base64.b64encode(b"user:secret").decode()
    conn = http.client.HTTPSConnection(
        "127.0.0.1", proxy.port, timeout=TIMEOUT, context=certs.client_context()
    )
    conn.set_tunnel("localhost", https_server.port, {"Proxy-Authorization": f"Basic {token}"})
    with contextlib.closing(conn):
        assert fetch(conn, "/a")[1] == b"authed"
    assert proxy.auth_url == f"http://user:secret@127.0.0.1:{proxy.port}"
