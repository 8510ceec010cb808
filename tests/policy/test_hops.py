"""Unit tests of robustfetch.policy.hops: plain http, redirects and headers across redirects."""

from __future__ import annotations

import http.client

import pytest

from robustfetch import Reason
from robustfetch.errors import SourceFailed
from robustfetch.policy.hops import (
    check_plain_http,
    follow_redirect,
    headers_for_redirect,
    is_redirect,
)

# -- check_plain_http -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "pinned", "allow_http"),
    [
        ("http://h.example/f", True, False),
        ("http://h.example/f", False, True),
        ("http://h.example/f", True, True),
        ("https://h.example/f", False, False),
        ("https://h.example/f", True, False),
        ("https://h.example/f", False, True),
        ("https://h.example/f", True, True),
        ("HTTPS://h.example/f", False, False),
    ],
)
def test_check_plain_http_allows(url: str, pinned: bool, allow_http: bool) -> None:
    check_plain_http(url, pinned=pinned, allow_http=allow_http)


@pytest.mark.parametrize(
    "url", ["http://h.example/f", "HTTP://h.example/f", "http://127.0.0.1:8080/f.tgz"]
)
def test_check_plain_http_refuses_unpinned_http(url: str) -> None:
    with pytest.raises(SourceFailed) as info:
        check_plain_http(url, pinned=False, allow_http=False)
    failure = info.value
    assert failure.reason is Reason.INSECURE_REFUSED
    assert failure.transient is False
    assert "allow_http" in failure.detail
    assert "sha256" in failure.detail


# -- follow_redirect ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "location", "expected"),
    [
        ("https://a.example/x/f", "../g", "https://a.example/g"),
        ("https://a.example/x/f", "g", "https://a.example/x/g"),
        ("https://a.example/x/f", "/abs/g", "https://a.example/abs/g"),
        ("https://a.example/x/f", "?q=1", "https://a.example/x/f?q=1"),
        ("https://a.example/x/f", "//b.example/g", "https://b.example/g"),
        ("https://a.example:8443/x/f", "/g", "https://a.example:8443/g"),
        ("https://a.example/x/f", "https://b.example/g", "https://b.example/g"),
        ("https://a.example/x/f", "  /g \r\n", "https://a.example/g"),
        ("https://a.example/x/f", "/g#frag", "https://a.example/g"),
        ("https://a.example/x/f", "https://b.example/g?x=1#sha256=00", "https://b.example/g?x=1"),
        ("http://a.example/x/f", "https://b.example/g", "https://b.example/g"),  # upgrade
    ],
)
def test_follow_redirect_resolves_location(current: str, location: str, expected: str) -> None:
    assert follow_redirect(current, location, 0, 10, pinned=False, allow_http=False) == expected


@pytest.mark.parametrize(
    ("hops", "max_redirects", "allowed"),
    [(0, 10, True), (9, 10, True), (10, 10, False), (11, 10, False), (0, 0, False), (0, 1, True)],
)
def test_follow_redirect_counts_hops(hops: int, max_redirects: int, allowed: bool) -> None:
    args = ("https://a.example/f", "/g", hops, max_redirects, False, False)
    if allowed:
        assert follow_redirect(*args) == "https://a.example/g"
        return
    with pytest.raises(SourceFailed) as info:
        follow_redirect(*args)
    assert info.value.reason is Reason.TOO_MANY_REDIRECTS
    assert info.value.transient is False
    assert str(max_redirects) in info.value.detail
    assert "max_redirects" in info.value.detail


@pytest.mark.parametrize(
    ("current", "location", "pinned", "allow_http", "result"),
    [
        # https -> http: only with a pinned hash; allow_http does not suffice
        ("https://a.example/f", "http://a.example/f", False, False, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "http://a.example/f", False, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "http://b.example/f", False, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "HTTP://b.example/f", False, False, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "http://a.example/f", True, False, "http://a.example/f"),
        ("https://a.example/f", "http://b.example/g", True, True, "http://b.example/g"),
        # http -> http: the plain-http rule applies to the target
        ("http://a.example/f", "/g", False, False, Reason.INSECURE_REFUSED),
        ("http://a.example/f", "/g", False, True, "http://a.example/g"),
        ("http://a.example/f", "/g", True, False, "http://a.example/g"),
        # schemes other than http(s), or no host: never followed
        ("https://a.example/f", "ftp://a.example/f", True, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "file:///etc/passwd", True, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "data:text/plain,hi", True, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "javascript:alert(1)", True, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "gopher://a.example/", True, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "http:///nohost", True, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "https://[::1/f", True, True, Reason.REDIRECT_REFUSED),
        ("https://a.example/f", "https://b.example:99999/f", True, True, Reason.REDIRECT_REFUSED),
        (
            "https://b.example/f",
            "https://a.example\\@b.example/g",
            True,
            True,
            Reason.REDIRECT_REFUSED,
        ),
    ],
)
def test_follow_redirect_policy(
    current: str, location: str, pinned: bool, allow_http: bool, result: object
) -> None:
    if isinstance(result, Reason):
        with pytest.raises(SourceFailed) as info:
            follow_redirect(current, location, 0, 10, pinned, allow_http)
        assert info.value.reason is result
        assert info.value.transient is False
        if (
            not pinned
            and result is Reason.REDIRECT_REFUSED
            and location.lower().startswith("http://")
        ):
            assert "pin a sha256" in info.value.detail
    else:
        assert follow_redirect(current, location, 0, 10, pinned, allow_http) == result


# -- headers_for_redirect -------------------------------------------------------------

HEADERS = {
    "User-Agent": "robustfetch/test",
    "Accept-Encoding": "identity",
    "X-Custom": "1",
    "Authorization": "Bearer secret",
    "Cookie": "session=1",
    "Proxy-Authorization": "Basic c2VjcmV0",
}
PUBLIC = {"User-Agent", "Accept-Encoding", "X-Custom"}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("https://a.example/x", "https://a.example/y"),
        ("https://a.example/x", "https://a.example/x?z=1"),
        ("https://a.example/x", "https://A.EXAMPLE/y"),
        ("HTTPS://a.example/x", "https://a.example/y"),
        ("https://a.example:8443/x", "https://a.example:8443/y"),
        ("http://a.example/x", "http://a.example/y"),
        ("https://a.example/x", "https://a.example:443/y"),
    ],
)
def test_headers_kept_on_same_origin(current: str, target: str) -> None:
    result = headers_for_redirect(HEADERS, current, target)
    assert result == HEADERS
    assert result is not HEADERS


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("https://a.example/x", "https://b.example/x"),  # host
        ("https://a.example/x", "https://sub.a.example/x"),  # subdomain is another host
        ("https://sub.a.example/x", "https://a.example/x"),
        ("https://a.example/x", "https://a.example.evil.example/x"),
        ("https://a.example/x", "https://a.example:8443/x"),  # port
        ("https://a.example:8443/x", "https://a.example:9443/x"),
        ("https://a.example:8443/x", "https://a.example/x"),
        ("https://a.example/x", "http://a.example/x"),  # scheme
        ("http://a.example/x", "https://a.example/x"),
        ("https://127.0.0.1/x", "https://[::1]/x"),
        ("https://b.example/x", "https://a.example\\@b.example/y"),
    ],
)
def test_credentials_dropped_on_origin_change(current: str, target: str) -> None:
    result = headers_for_redirect(HEADERS, current, target)
    assert set(result) == PUBLIC
    assert all(result[name] == HEADERS[name] for name in PUBLIC)


@pytest.mark.parametrize(
    "name",
    ["Authorization", "authorization", "AUTHORIZATION", "Cookie", "COOKIE", "proxy-authorization"],
)
def test_credential_header_names_are_case_insensitive(name: str) -> None:
    headers = {name: "secret", "Accept": "*/*"}
    assert headers_for_redirect(headers, "https://a.example/", "https://b.example/") == {
        "Accept": "*/*"
    }
    assert headers_for_redirect(headers, "https://a.example/", "https://a.example/z") == headers


# -- is_redirect ----------------------------------------------------------------------


def _message(**fields: str) -> http.client.HTTPMessage:
    """A case-insensitive header mapping, as a transport hands over (stdlib-only safe)."""
    message = http.client.HTTPMessage()
    for name, value in fields.items():
        message[name.replace("_", "-")] = value
    return message


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (301, {"Location": "/x"}, True),
        (302, {"Location": "/x"}, True),
        (303, {"Location": "/x"}, True),
        (307, {"Location": "/x"}, True),
        (308, {"Location": "https://b.example/x"}, True),
        (302, _message(location="/x"), True),  # as a transport hands it over
        (302, _message(LOCATION="/x"), True),
        (302, {}, False),
        (302, {"Location": ""}, False),
        (301, _message(Content_Location="/x"), False),
        (300, {"Location": "/x"}, False),
        (304, {"Location": "/x"}, False),
        (305, {"Location": "/x"}, False),
        (200, {"Location": "/x"}, False),
        (201, {"Location": "/x"}, False),
        (404, {"Location": "/x"}, False),
    ],
)
def test_is_redirect(status: int, headers: dict[str, str], expected: bool) -> None:
    assert is_redirect(status, headers) is expected
