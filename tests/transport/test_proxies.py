"""Unit tests of transport.proxies: proxy variables, proxy choice and NO_PROXY matching."""

from __future__ import annotations

from typing import Optional

import pytest

from robustfetch.transport.proxies import bypasses_proxy, proxies_from_environment, proxy_for

P = "http://proxy.example:3128"
Q = "http://other-proxy.example:8080"

# -- proxies_from_environment ---------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {}),
        ({"HTTPS_PROXY": P}, {"https": P}),
        ({"https_proxy": P}, {"https": P}),
        ({"HTTP_PROXY": P}, {"http": P}),
        ({"ALL_PROXY": P}, {"all": P}),
        ({"no_proxy": "a.example"}, {"no": "a.example"}),
        (
            {"HTTPS_PROXY": P, "HTTP_PROXY": Q, "ALL_PROXY": P, "NO_PROXY": "*"},
            {"https": P, "http": Q, "all": P, "no": "*"},
        ),
        # lower case wins over upper case
        ({"https_proxy": P, "HTTPS_PROXY": Q}, {"https": P}),
        ({"HTTPS_PROXY": Q, "https_proxy": P}, {"https": P}),
        ({"http_proxy": P, "HTTP_PROXY": Q}, {"http": P}),
        ({"no_proxy": "low.example", "NO_PROXY": "up.example"}, {"no": "low.example"}),
        ({"all_proxy": P, "ALL_PROXY": Q}, {"all": P}),
        # blank values are ignored, values are stripped
        ({"HTTPS_PROXY": "   "}, {}),
        ({"HTTPS_PROXY": f"  {P}\n"}, {"https": P}),
        # unrelated variables
        ({"FTP_PROXY": P, "SOCKS_PROXY": P, "PROXY": P, "HTTPS": "on"}, {}),
        # CGI (httpoxy): HTTP_PROXY may come from a client's "Proxy:" header
        ({"REQUEST_METHOD": "GET", "HTTP_PROXY": Q, "HTTPS_PROXY": P}, {"https": P}),
        ({"REQUEST_METHOD": "GET", "HTTP_PROXY": Q}, {}),
        ({"REQUEST_METHOD": "", "HTTP_PROXY": Q, "NO_PROXY": "x"}, {"no": "x"}),
        ({"REQUEST_METHOD": "POST", "ALL_PROXY": P}, {"all": P}),
    ],
)
def test_proxies_from_environment(environ: dict[str, str], expected: dict[str, str]) -> None:
    assert proxies_from_environment(environ) == expected


def test_empty_lower_case_variable_disables_the_proxy() -> None:
    assert proxies_from_environment({"https_proxy": "", "HTTPS_PROXY": P}) == {}


def test_proxies_from_environment_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", P)
    monkeypatch.setenv("NO_PROXY", "a.example")
    assert proxies_from_environment() == {"https": P, "no": "a.example"}


# -- proxy_for ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "proxies", "expected"),
    [
        ("https://a.example/f", {}, None),
        ("https://a.example/f", {"https": P}, P),
        ("http://a.example/f", {"https": P}, None),
        ("http://a.example/f", {"http": Q}, Q),
        ("https://a.example/f", {"http": Q}, None),
        ("https://a.example/f", {"https": P, "http": Q}, P),
        ("http://a.example/f", {"https": P, "http": Q}, Q),
        # all_proxy is the fallback for either scheme
        ("https://a.example/f", {"all": P}, P),
        ("http://a.example/f", {"all": P}, P),
        ("https://a.example/f", {"https": Q, "all": P}, Q),
        ("http://a.example/f", {"https": Q, "all": P}, P),
        ("https://a.example/f", {"https": "", "all": P}, P),
        # a proxy without a scheme is an http proxy; other schemes are kept
        ("https://a.example/f", {"https": "proxy.example:3128"}, "http://proxy.example:3128"),
        ("https://a.example/f", {"all": "proxy.example:3128"}, "http://proxy.example:3128"),
        ("https://a.example/f", {"https": "https://p.example:3129"}, "https://p.example:3129"),
        ("https://a.example/f", {"https": "socks5h://s.example:1080"}, "socks5h://s.example:1080"),
        (
            "https://a.example/f",
            {"https": "http://u:pw@p.example:3128"},
            "http://u:pw@p.example:3128",
        ),
        # NO_PROXY
        ("https://a.example/f", {"https": P, "no": "a.example"}, None),
        ("https://a.example/f", {"https": P, "no": "b.example"}, P),
        ("https://a.example/f", {"all": P, "no": "*"}, None),
        ("https://sub.a.example/f", {"https": P, "no": ".a.example"}, None),
        ("https://[::1]:8443/f", {"https": P, "no": "::1"}, None),
        ("https://127.0.0.1:8443/f", {"https": P, "no": "127.0.0.0/8"}, None),
        # host:port entries
        ("https://a.example:8443/f", {"https": P, "no": "a.example:8443"}, None),
        ("https://a.example:9443/f", {"https": P, "no": "a.example:8443"}, P),
        ("https://a.example/f", {"https": P, "no": "a.example:443"}, None),
        ("http://a.example/f", {"http": P, "no": "a.example:80"}, None),
        ("https://a.example/f", {"https": P, "no": "a.example:8443"}, P),
    ],
)
def test_proxy_for(url: str, proxies: dict[str, str], expected: Optional[str]) -> None:
    assert proxy_for(url, proxies) == expected


# -- bypasses_proxy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        # nothing, everything
        ("a.example", None, "", False),
        ("a.example", None, " , ,", False),
        ("a.example", None, "*", True),
        ("10.0.0.1", 443, "*", True),
        ("a.example", None, "b.example,*", True),
        # exact host, any case, trailing dot
        ("a.example", None, "a.example", True),
        ("A.Example", None, "a.example", True),
        ("a.example", None, "A.EXAMPLE", True),
        ("a.example.", None, "a.example", True),
        ("a.example", None, "a.example.", True),
        # suffixes, with and without a leading dot or star
        ("sub.a.example", None, "a.example", True),
        ("deep.sub.a.example", None, "a.example", True),
        ("sub.a.example", None, ".a.example", True),
        ("a.example", None, ".a.example", True),
        ("sub.a.example", None, "*.a.example", True),
        ("a.example", None, "sub.a.example", False),
        # not a substring match
        ("notexample.com", None, "example.com", False),
        ("notexample.com", None, ".example.com", False),
        ("notexample.com", None, "*example.com", False),
        ("example.com.evil.example", None, "example.com", False),
        ("example.co", None, "example.com", False),
        ("example.comx", None, "example.com", False),
        # lists: commas and/or spaces
        ("b.example", None, "a.example,b.example", True),
        ("b.example", None, "a.example, b.example", True),
        ("b.example", None, "a.example b.example", True),
        ("c.example", None, "a.example, b.example", False),
        # host:port entries
        ("a.example", 8080, "a.example:8080", True),
        ("a.example", 9090, "a.example:8080", False),
        ("a.example", 8080, "a.example", True),
        ("sub.a.example", 8080, ".a.example:8080", True),
        ("sub.a.example", 9090, ".a.example:8080", False),
        ("10.0.0.1", 8080, "10.0.0.1:8080", True),
        ("10.0.0.1", 9090, "10.0.0.1:8080", False),
        # IPv4 addresses and CIDR ranges
        ("127.0.0.1", None, "127.0.0.1", True),
        ("127.0.0.2", None, "127.0.0.1", False),
        ("10.1.2.3", None, "10.0.0.0/8", True),
        ("11.0.0.1", None, "10.0.0.0/8", False),
        ("192.168.1.7", None, "192.168.1.0/24", True),
        ("192.168.2.7", None, "192.168.1.0/24", False),
        ("192.168.1.7", None, "192.168.1.1/24", True),  # host bits set: still the /24
        ("a.example", None, "10.0.0.0/8", False),
        ("10.0.0.1", None, "a.example,10.0.0.0/8", True),
        # IPv6 addresses and ranges
        ("::1", None, "::1", True),
        ("[::1]", None, "::1", True),
        ("::1", None, "[::1]", True),
        ("::2", None, "::1", False),
        ("2001:DB8::1", None, "2001:db8:0::1", True),
        ("2001:db8::5", None, "2001:db8::/32", True),
        ("2001:db9::5", None, "2001:db8::/32", False),
        ("fe80::1", None, "fe80::/10", True),
        ("10.0.0.1", None, "::/0", False),
        ("::1", None, "0.0.0.0/0", False),
    ],
)
def test_bypasses_proxy(host: str, port: Optional[int], no_proxy: str, expected: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is expected
