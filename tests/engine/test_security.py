"""Policy at every hop (issue 12): rules, credentials, secrets and remote answers, end to end.

Hosts are real names sent to loopback servers with ``connect_to``, so rules and
credentials see the names while every byte stays on 127.0.0.1. A host that must
not be contacted is a live server whose accepted connections are counted: it
must see none at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = os.urandom(20_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
SDIST = "/packages/source/s/six/six-1.16.0.tar.gz"
# Names the test certificate covers: "allowed" plays mirror.internal of the README.
ALLOWED, OTHER, PYPI, FILES = "example.test", "pypi.io", "pypi.org", "files.pythonhosted.org"
RULES = ["block *", f"allow {ALLOWED}"]


@pytest.fixture
def hosts(make_server: Any) -> dict[str, Server]:
    return {host: make_server("good") for host in (ALLOWED, OTHER, PYPI, FILES)}


@pytest.fixture
def options(hosts: dict[str, Server], opts: dict[str, Any]) -> dict[str, Any]:
    connect_to = {f"{host}:443": f"127.0.0.1:{s.port}" for host, s in hosts.items()}
    return {**opts, "connect_to": connect_to, "rewrite": False}


# -- 1. rules are obeyed at every hop ------------------------------------------------------


def test_redirect_to_a_blocked_host_opens_no_connection(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path
) -> None:
    hosts[OTHER].route("/f.tgz", body=DATA)
    hosts[ALLOWED].route("/f.tgz", status=302, headers={"Location": f"https://{OTHER}/f.tgz"})
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(f"https://{ALLOWED}/f.tgz", DIGEST, dest=dest_dir, rules=RULES, **options)
    (attempt,) = info.value.attempts
    assert attempt.reason is Reason.BLOCKED
    assert "block * (rules[0])" in attempt.detail
    assert f"https://{OTHER}/f.tgz" in attempt.detail
    assert hosts[OTHER].connections == 0
    assert list(dest_dir.iterdir()) == []


def test_redirect_within_allowed_hosts_is_followed(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path
) -> None:
    hosts[OTHER].route("/f.tgz", body=DATA)
    hosts[ALLOWED].route("/f.tgz", status=302, headers={"Location": f"https://{OTHER}/f.tgz"})
    rules = [*RULES, f"allow {OTHER}"]
    result = robustfetch.fetch(
        f"https://{ALLOWED}/f.tgz", DIGEST, dest=dest_dir, rules=rules, **options
    )
    assert result.path.read_bytes() == DATA


def test_fastest_mirror_order_never_probes_a_blocked_mirror(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    hosts[ALLOWED].route("/m/f.tgz", body=DATA)
    mirrors = [f"https://{OTHER}/m", f"https://{ALLOWED}/m"]
    result = robustfetch.fetch(
        f"https://{ALLOWED}/missing/f.tgz",
        DIGEST,
        dest=dest_dir,
        mirrors=mirrors,
        mirror_order="fastest",
        rules=RULES,
        **{**options, "cache_dir": tmp_path / "cache"},
    )
    assert result.path.read_bytes() == DATA
    assert hosts[OTHER].connections == 0
    blocked = [a for a in result.attempts if a.reason is Reason.BLOCKED]
    assert [a.url for a in blocked] == [f"https://{OTHER}/m/f.tgz"]


def test_pypi_lookup_obeys_a_block_rule(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path
) -> None:
    hosts[PYPI].route("/pypi/six/json", body=b"{}")
    rules = ["block *", f"allow {FILES}"]
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(f"https://{FILES}{SDIST}", DIGEST, dest=dest_dir, rules=rules, **options)
    reasons = [(a.url, a.reason) for a in info.value.attempts]
    assert reasons == [
        (f"https://{FILES}{SDIST}", Reason.NOT_FOUND),
        (f"https://{PYPI}/pypi/six/json", Reason.BLOCKED),
    ]
    assert "block * (rules[0])" in info.value.attempts[1].detail
    assert hosts[PYPI].connections == 0


# -- 2. credentials reach only their host --------------------------------------------------

TOKEN = "Bearer t0ken-only-for-example"


def _credentials(server: Server) -> list[tuple[str, str | None, str | None]]:
    return [
        (r.path, r.headers.get("authorization"), r.headers.get("cookie")) for r in server.requests
    ]


def test_header_credentials_go_to_the_first_host_only(
    hosts: dict[str, Server], make_server: Any, options: dict[str, Any], dest_dir: Path
) -> None:
    plain = make_server(None)
    plain.route("/m/f.tgz", status=404)
    hosts[OTHER].route("/m/f.tgz", body=DATA)
    mirrors = [plain.url("/m"), f"https://{OTHER}/m"]
    headers = {"Authorization": TOKEN, "Cookie": "session=s3cret-cookie", "X-Trace": "1"}
    result = robustfetch.fetch(
        f"https://{ALLOWED}/f.tgz",
        DIGEST,
        dest=dest_dir,
        mirrors=mirrors,
        headers=headers,
        **options,
    )
    assert result.path.read_bytes() == DATA
    assert _credentials(hosts[ALLOWED]) == [("/f.tgz", TOKEN, "session=s3cret-cookie")]
    assert _credentials(plain) == [("/m/f.tgz", None, None)]
    assert _credentials(hosts[OTHER]) == [("/m/f.tgz", None, None)]
    assert hosts[OTHER].requests[0].headers["x-trace"] == "1"  # other headers go everywhere


def test_header_credentials_never_go_over_plain_http(
    http_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = http_server.route("/f.tgz", body=DATA)
    robustfetch.fetch(url, DIGEST, dest=dest_dir, headers={"Authorization": TOKEN}, **opts)
    assert _credentials(http_server) == [("/f.tgz", None, None)]


def test_pypi_lookup_gets_no_header_credentials(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path
) -> None:
    hosts[PYPI].route("/pypi/six/json", body=b"{}")
    with pytest.raises(FetchError):
        robustfetch.fetch(
            f"https://{FILES}{SDIST}",
            DIGEST,
            dest=dest_dir,
            headers={"Authorization": TOKEN},
            **options,
        )
    assert _credentials(hosts[FILES])[0][1] == TOKEN
    assert _credentials(hosts[PYPI]) == [("/pypi/six/json", None, None)]


def test_auth_goes_to_its_host_and_is_dropped_on_a_redirect(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path
) -> None:
    hosts[OTHER].route("/f.tgz", body=DATA)
    hosts[ALLOWED].route("/f.tgz", status=302, headers={"Location": f"https://{OTHER}/f.tgz"})
    auth = {ALLOWED: ("alice", "pa55word"), f"{PYPI}:443": "Bearer for-pypi"}
    robustfetch.fetch(f"https://{ALLOWED}/f.tgz", DIGEST, dest=dest_dir, auth=auth, **options)
    assert _credentials(hosts[ALLOWED]) == [("/f.tgz", "Basic YWxpY2U6cGE1NXdvcmQ=", None)]
    assert _credentials(hosts[OTHER]) == [("/f.tgz", None, None)]


def test_auth_never_goes_over_plain_http(
    http_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = http_server.route("/f.tgz", body=DATA)
    auth = {f"127.0.0.1:{http_server.port}": "Bearer t", "127.0.0.1": ("u", "p")}
    robustfetch.fetch(url, DIGEST, dest=dest_dir, auth=auth, **opts)
    assert _credentials(http_server) == [("/f.tgz", None, None)]


def test_netrc_credentials_go_to_their_host_only(
    hosts: dict[str, Server],
    options: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {ALLOWED} login bob password hunter22\ndefault login x password y\n")
    monkeypatch.setenv("NETRC", str(netrc))
    hosts[ALLOWED].route("/f.tgz", status=404)
    hosts[OTHER].route("/m/f.tgz", body=DATA)
    robustfetch.fetch(
        f"https://{ALLOWED}/f.tgz",
        DIGEST,
        dest=dest_dir,
        mirrors=[f"https://{OTHER}/m"],
        **options,
    )
    assert _credentials(hosts[ALLOWED]) == [("/f.tgz", "Basic Ym9iOmh1bnRlcjIy", None)]
    assert _credentials(hosts[OTHER]) == [("/m/f.tgz", None, None)]
    hosts[ALLOWED].requests.clear()
    with pytest.raises(FetchError):
        robustfetch.fetch(f"https://{ALLOWED}/f.tgz", DIGEST, dest=dest_dir, netrc=False, **options)
    assert _credentials(hosts[ALLOWED]) == [("/f.tgz", None, None)]


def test_a_malformed_netrc_is_a_value_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dest_dir: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine h.example login bob password hunter22 bogus-token s3cr3t-x\n")
    monkeypatch.setenv("NETRC", str(netrc))
    with pytest.raises(ValueError, match="netrc") as info:
        robustfetch.fetch("https://h.example/f.tgz", DIGEST, dest=dest_dir)
    assert str(netrc) in str(info.value)
    assert "hunter22" not in str(info.value) and "s3cr3t" not in str(info.value)


@pytest.mark.parametrize(
    "auth",
    [
        {"h.example": "s3cret-bare-token"},
        {"h.example": ("user", "s3cret", "extra")},
        {"h.example": ("us:er", "s3cret")},
        {"h.example": ("user", "s3cret\r\nX: y")},
        {"https://h.example/": ("user", "s3cret")},
        {"user:s3cret@h.example": ("user", "s3cret")},
        {"h.example:99999": "Bearer s3cret"},
        "Bearer s3cret",
    ],
)
def test_bad_auth_is_a_value_error_without_the_secret(auth: Any) -> None:
    with pytest.raises(ValueError, match="auth") as info:
        robustfetch.Fetcher(auth=auth)
    assert "s3cret" not in str(info.value)


def test_user_info_in_a_url_is_sent_to_its_host_and_never_shown(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path
) -> None:
    hosts[ALLOWED].route("/f.tgz", status=404)
    hosts[OTHER].route("/m/f.tgz", body=DATA)
    result = robustfetch.fetch(
        f"https://alice:pa55word@{ALLOWED}/f.tgz",
        DIGEST,
        dest=dest_dir,
        mirrors=[f"https://{OTHER}/m"],
        **options,
    )
    assert _credentials(hosts[ALLOWED]) == [("/f.tgz", "Basic YWxpY2U6cGE1NXdvcmQ=", None)]
    assert _credentials(hosts[OTHER]) == [("/m/f.tgz", None, None)]
    assert "pa55word" not in repr(result)
    assert result.attempts[0].url == f"https://alice:***@{ALLOWED}/f.tgz"


# -- 3. secrets are never printed -----------------------------------------------------------

PASSWORD = "s3cret-Pr0xy"


def _everything(error: BaseException, out: str, err: str, log: str) -> str:
    return "\n".join([str(error), repr(error), repr(getattr(error, "attempts", "")), out, err, log])


@pytest.mark.parametrize("scheme", ["http://", "https://", ""])
def test_a_proxy_password_is_never_printed(
    scheme: str,
    make_proxy: Any,
    https_server: Server,
    http_server: Server,
    opts: dict[str, Any],
    transport: str,
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from robustfetch.cli.main import main

    refusing = make_proxy(required_auth=("alice", "another-password"))
    proxy_url = f"{scheme}alice:{PASSWORD}@127.0.0.1:{refusing.port}"
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    https_url = https_server.route("/f.tgz", body=DATA)
    http_url = http_server.route("/f.tgz", body=DATA)
    caplog.set_level("DEBUG")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            https_url, DIGEST, [http_url], dest=dest_dir, **{**opts, "connect_timeout": 0.5}
        )
    assert info.value.attempts[0].reason is Reason.PROXY
    if transport == "stdlib":
        import robustfetch.transport as transport_module

        monkeypatch.setattr(transport_module, "urllib3_available", lambda: False)
    argv = ["fetch", https_url, "--sha256", DIGEST, "--fallback", http_url, "--retries", "0"]
    argv += ["--ca-bundle", str(opts["ca_bundle"]), "--no-cache", "-o", str(dest_dir), "-vv"]
    argv += ["--connect-timeout", "0.5", "--stall-timeout", "0.5"]
    assert main([*argv, "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[0])["attempts"][0]["reason"] == "proxy"
    everything = _everything(info.value, out, err, caplog.text)
    assert PASSWORD not in everything
    if transport == "stdlib" and scheme == "https://":
        assert f"https://alice:***@127.0.0.1:{refusing.port}" in everything  # names the proxy


def test_a_bad_proxies_value_does_not_echo_the_password() -> None:
    for proxies in (
        {"https": f"socks9://alice:{PASSWORD}@p.example:1080"},
        {"https": f"alice:{PASSWORD}@p.example:notaport"},
        {"gopher": f"http://alice:{PASSWORD}@p.example"},
    ):
        with pytest.raises(ValueError, match="proxies") as info:
            robustfetch.Fetcher(proxies=proxies)
        assert PASSWORD not in str(info.value)


def test_a_credential_header_value_is_never_printed(
    make_server: Any, opts: dict[str, Any], dest_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    echo = make_server("good")
    # A server that echoes what it got (a debugging proxy, a chatty 401 page).
    url = echo.route("/f.tgz", status=401, body=f"denied for {TOKEN}".encode())
    caplog.set_level("DEBUG")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, headers={"Authorization": TOKEN}, **opts)
    assert echo.requests[0].headers["authorization"] == TOKEN
    assert "t0ken-only-for-example" not in _everything(info.value, "", "", caplog.text)
    with pytest.raises(ValueError) as bad:
        robustfetch.Fetcher(headers={"Authorization": TOKEN + "\r\nX-Injected: 1"})
    assert "t0ken" not in str(bad.value)


@pytest.mark.parametrize(
    "password", ["qu'ote-pw1", 'dq"uote-pw2', "lt<pw3-x", "gt>pw4-x", "pct%2Fpw5-x", "at@pw6-x"]
)
def test_a_password_in_any_source_url_is_never_printed(
    password: str,
    hosts: dict[str, Server],
    options: dict[str, Any],
    dest_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RFC 3986 user info may hold ``'`` (and parsers take ``"<>@`` too): the user info runs
    to the last ``@`` of the authority, in every URL given: source, fallback, mirror, pages."""
    server = hosts[ALLOWED]
    for path in ("/f.tgz", "/fb/f.tgz", "/m/f.tgz", "/links/"):
        server.route(path, status=404)
    base = f"https://alice:{password}@{ALLOWED}"
    caplog.set_level("DEBUG")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            f"{base}/f.tgz",
            DIGEST,
            [f"{base}/fb/f.tgz"],
            dest=dest_dir,
            mirrors=[f"{base}/m"],
            find_links=[f"{base}/links/"],
            **options,
        )
    assert server.hits("/m/f.tgz") == 1 and server.hits("/links/") == 1
    everything = _everything(info.value, "", "", caplog.text)
    for shown in (password, password.replace("%2F", "/")):
        assert shown[3:] not in everything
    assert info.value.attempts[0].url == f"https://alice:***@{ALLOWED}/f.tgz"


@pytest.mark.parametrize("where", ["url", "fallback", "mirror", "find_links"])
def test_a_url_made_invalid_by_its_password_is_not_echoed(where: str) -> None:
    """A ``#`` or ``/`` in a password ends the authority early: the ValueError hides it."""
    for password in ("ha#sh-pw-77", "sl/ash-pw-77"):
        url = f"https://alice:{password}@h.example:8443/f.tgz"
        arguments: dict[str, Any] = {
            "url": {"url": url},
            "fallback": {"fallbacks": [url]},
            "mirror": {"mirrors": [url]},
            "find_links": {"find_links": [url]},
        }[where]
        with pytest.raises(ValueError) as info:
            robustfetch.fetch(
                arguments.get("url", "https://h.example/f.tgz"),
                DIGEST,
                arguments.get("fallbacks", ()),
                **{k: v for k, v in arguments.items() if k not in ("url", "fallbacks")},
            )
        assert "-pw-77" not in str(info.value), str(info.value)


# -- 4. remote answers cannot point home -----------------------------------------------------


def _pypi_answer(url: str, sha256: str) -> bytes:
    entry = {"filename": "six-1.16.0.tar.gz", "url": url, "digests": {"sha256": sha256}}
    return json.dumps({"info": {}, "urls": [entry], "releases": {}}).encode()


@pytest.mark.parametrize("pin", [True, False])
@pytest.mark.parametrize("link", ["file", "http", "ftp"])
def test_a_pypi_answer_cannot_point_at_a_local_file_or_plain_http(
    pin: bool,
    link: str,
    hosts: dict[str, Server],
    http_server: Server,
    options: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"the local secret " * 100)
    secret_digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    http_server.route("/six-1.16.0.tar.gz", body=DATA)
    url = {
        "file": secret.as_uri(),
        "http": http_server.url("/six-1.16.0.tar.gz"),
        "ftp": "ftp://127.0.0.1:1/six-1.16.0.tar.gz",
    }[link]
    listed = secret_digest if link == "file" else DIGEST
    hosts[PYPI].route("/pypi/six/json", body=_pypi_answer(url, listed))
    caplog.set_level("INFO")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            f"https://{FILES}{SDIST}", DIGEST if pin else None, dest=dest_dir, **options
        )
    attempts = info.value.attempts
    assert [a.reason for a in attempts] == [Reason.NOT_FOUND, Reason.INSECURE_REFUSED]
    assert attempts[1].url == f"https://{PYPI}/pypi/six/json"
    assert "https" in attempts[1].detail
    assert list(dest_dir.iterdir()) == []
    assert http_server.connections == 0
    everything = _everything(info.value, "", "", caplog.text)
    assert secret_digest not in everything.replace(f"sha256 {secret_digest}", "")  # no bytes read
    assert "1700 bytes" not in everything


def test_a_deeply_nested_pypi_answer_is_a_failure_not_a_crash(
    hosts: dict[str, Server], options: dict[str, Any], dest_dir: Path
) -> None:
    hosts[PYPI].route("/pypi/six/json", body=b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(f"https://{FILES}{SDIST}", DIGEST, dest=dest_dir, **options)
    assert [a.reason for a in info.value.attempts] == [Reason.NOT_FOUND, Reason.HTTP_STATUS]
    assert "nested" in info.value.attempts[1].detail
