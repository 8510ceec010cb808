"""Settings users expect: proxies, trust, connect_to, headers, progress, logging, pooling."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Proxy, Server, closed_port
from robustfetch import FetchError, ProgressEvent, Reason

DATA = os.urandom(700_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


def test_https_proxy_from_environment_tunnels(
    https_server: Server,
    proxy: Proxy,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert proxy.tunnels == [f"127.0.0.1:{https_server.port}"]


def test_no_proxy_bypasses_the_proxy(
    https_server: Server,
    proxy: Proxy,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.0/8")
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert proxy.tunnels == []
    assert https_server.hits("/f.bin") == 1


def test_proxy_with_credentials_in_its_url(
    https_server: Server, make_proxy: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    guarded = make_proxy(required_auth=("user", "p@ss"))
    url = https_server.route("/f.bin", body=DATA)
    address = guarded.url.split("://", 1)[1]
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, proxies={"https": guarded.url}, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.PROXY]
    proxies = {"https": f"http://user:p%40ss@{address}"}
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, proxies=proxies, **opts)
    assert result.size == len(DATA)


def test_dead_proxy_is_proxy(https_server: Server, opts: dict[str, Any], dest_dir: Path) -> None:
    url = https_server.route("/f.bin", body=DATA)
    proxies = {"https": f"http://127.0.0.1:{closed_port()}"}
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, proxies=proxies, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.PROXY]
    assert https_server.connections == 0


def test_plain_http_through_the_proxy(
    http_server: Server,
    proxy: Proxy,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    url = http_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert proxy.forwarded == [url]


@pytest.mark.parametrize("variable", ["ROBUSTFETCH_CA_BUNDLE", "SSL_CERT_FILE"])
def test_trust_from_environment(
    variable: str,
    https_server: Server,
    ca_bundle: Path,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, retries=0)
    assert [a.reason for a in info.value.attempts] == [Reason.CERT_UNTRUSTED]
    assert "certifi" in info.value.attempts[0].detail
    monkeypatch.setenv(variable, str(ca_bundle))
    assert robustfetch.fetch(url, DIGEST, dest=dest_dir).size == len(DATA)


@pytest.mark.parametrize(
    "key", ["example.test:{port}", "bücher.example:{port}", "xn--bcher-kva.example:{port}"]
)
def test_connect_to_keeps_host_sni_and_certificate_checks(
    key: str, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route("/f.bin", body=DATA)
    host = key.split(":")[0]
    url = f"https://{host}:{https_server.port}/f.bin"
    target = {key.format(port=https_server.port): f"127.0.0.1:{https_server.port}"}
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, connect_to=target, **opts)
    assert result.size == len(DATA)
    sent_host = https_server.requests_for("/f.bin")[0].headers["host"]
    assert sent_host.split(":")[0] in ("example.test", "xn--bcher-kva.example")


def test_connect_to_still_checks_the_certificate_against_the_named_host(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    server = make_server("good")
    server.route("/f.bin", body=DATA)
    url = f"https://not-in-cert.test:{server.port}/f.bin"
    target = {f"not-in-cert.test:{server.port}": f"127.0.0.1:{server.port}"}
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, connect_to=target, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.CERT_HOSTNAME]


def test_headers_sent(https_server: Server, opts: dict[str, Any], dest_dir: Path) -> None:
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, DIGEST, dest=dest_dir, headers={"X-Token": "t"}, **opts)
    headers = https_server.requests_for("/f.bin")[0].headers
    assert headers["user-agent"] == f"robustfetch/{robustfetch.__version__}"
    assert headers["accept-encoding"] == "identity"
    assert headers["x-token"] == "t"


def test_credentials_do_not_follow_a_redirect_to_another_host(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    other = https_server.route("/real.bin", body=DATA).replace("127.0.0.1", "localhost")
    url = https_server.route("/f.bin", status=302, headers={"Location": other})
    auth = {"Authorization": "Bearer secret", "X-Other": "kept"}
    robustfetch.fetch(url, DIGEST, dest=dest_dir / "f.bin", headers=auth, **opts)
    first, second = (
        https_server.requests_for("/f.bin")[0],
        https_server.requests_for("/real.bin")[0],
    )
    assert first.headers["authorization"] == "Bearer secret"
    assert "authorization" not in second.headers
    assert second.headers["x-other"] == "kept"


def test_progress_events(https_server: Server, opts: dict[str, Any], dest_dir: Path) -> None:
    events: list[ProgressEvent] = []
    url = https_server.route("/f.bin", body=DATA, trickle=(100_000, 0.12))
    robustfetch.fetch(url, DIGEST, dest=dest_dir, progress=events.append, **opts)
    assert len(events) >= 3
    assert events[-1] == ProgressEvent(url, len(DATA), len(DATA), True)
    received = [e.received for e in events]
    assert received == sorted(received)
    assert all(e.total == len(DATA) and not e.done for e in events[:-1])


def test_attempts_are_logged(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = https_server.route("/m/f.bin", status=404)
    good = https_server.route("/g/f.bin", body=DATA)
    with caplog.at_level(logging.INFO, logger="robustfetch"):
        robustfetch.fetch(missing, DIGEST, [good], dest=dest_dir, **opts)
    messages = [r.getMessage() for r in caplog.records if r.name == "robustfetch"]
    assert any(missing in m and "not_found" in m for m in messages)
    assert any("saved" in m for m in messages)


def test_fetcher_reuses_connections(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    urls = [https_server.route(f"/f{i}.bin", body=DATA) for i in range(4)]
    with robustfetch.Fetcher(**opts) as fetcher:
        for url in urls:
            fetcher.fetch(url, DIGEST, dest=dest_dir)
    assert https_server.connections == 1
    assert len(os.listdir(dest_dir)) == 4


def test_fetch_many_keeps_order_and_isolates_failures(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = [https_server.route(f"/f{i}.bin", body=DATA) for i in range(6)]
    bad = https_server.route("/missing.bin", status=404)
    requests: list[Any] = [robustfetch.Request(u, DIGEST, dest=dest_dir) for u in good[:3]]
    requests.append({"url": bad, "sha256": DIGEST, "dest": dest_dir})
    requests += [robustfetch.Request(u, DIGEST, dest=dest_dir) for u in good[3:]]
    results = robustfetch.fetch_many(requests, workers=3, **opts)
    assert isinstance(results[3], FetchError)
    oks = [r for r in results if isinstance(r, robustfetch.FetchResult)]
    assert [r.url for r in oks] == good
    assert https_server.connections <= 3
