"""Unit tests of robustfetch.policy.urls: URL checks, file names, IDNA, host:port."""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import unquote_to_bytes

import pytest

from robustfetch.policy.urls import check_url, filename_from_url, normalise_host, split_host_port

# -- check_url ------------------------------------------------------------------------

# The stdlib codec (IDNA 2003, used without the idna package) accepts these.
NEEDS_IDNA = pytest.mark.skipif(
    importlib.util.find_spec("idna") is None, reason="IDNA 2003 accepts it"
)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/f.tgz",
        "http://example.org/f.tgz",
        "HTTPS://Example.ORG/f.tgz",
        "https://example.org",
        "https://example.org:8443/f.tgz",
        "https://127.0.0.1/f.tgz",
        "https://[::1]:8443/f.tgz",
        "https://user:secret@example.org/f.tgz",
        "https://b\u00fccher.example/f.tgz",
        "https://example.org/f.tgz?x=1&y=2#sha256=00",
        "https://example.org/a%20b.tgz",
    ],
)
def test_check_url_accepts_and_returns_unchanged(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gopher://example.org/x", "unsupported URL scheme 'gopher'"),
        ("file://server.example/etc/passwd", "file:///absolute/path"),
        ("file:relative/path", "file:///absolute/path"),
        ("GOPHER://example.org/x", "unsupported URL scheme 'gopher'"),
        ("example.org/f.tgz", "unsupported URL scheme"),
        ("//example.org/f.tgz", "unsupported URL scheme"),
        ("data:text/plain,hi", "unsupported URL scheme 'data'"),
        ("https:///f.tgz", "no host"),
        ("https://:443/f.tgz", "no host"),
        ("https:f.tgz", "no host"),
        ("https://h:99999/", "invalid port"),
        ("https://h:65536/", "invalid port"),
        ("https://h:-1/", "invalid port"),
        ("https://h:abc/", "invalid port"),
        (" https://example.org/f", "whitespace or control"),
        ("https://example.org/f ", "whitespace or control"),
        ("https://example.org/a b", "whitespace or control"),
        ("https://exa mple.org/f", "whitespace or control"),
        ("https://example.org/a\tb", "whitespace or control"),
        ("https://example.org/a\nb", "whitespace or control"),
        ("https://example.org/a\rb", "whitespace or control"),
        ("https://example.org/a\x00b", "whitespace or control"),
        ("https://example.org/a\x1bb", "whitespace or control"),
        ("https://example.org/a\x7fb", "whitespace or control"),
        ("https://exam\nple.org/f", "whitespace or control"),
        pytest.param(
            "https://\u2603.example/f", "invalid international host name", marks=NEEDS_IDNA
        ),
        ("https://[::1/f", ""),
        ("https://example.org/a\x85b", "control"),
        ("https://example.org/a\x9b31mb", "control"),
        ("https://a.example\\@b.example/f", ""),
        ("https://h\\evil.example/f", ""),
    ],
)
def test_check_url_rejects_naming_the_value(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message) if message else None) as info:
        check_url(url)
    text = str(info.value)
    if "international" in message:
        assert "\u2603.example" in text
    else:
        assert repr(url) in text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://sage:pw-in-url@h:abc/f", "invalid port"),
        ("ftp://sage:pw-in-url@/f", "no host"),
        ("gopher://sage:pw-in-url@h/f", "unsupported URL scheme 'gopher'"),
        ("https://sage:pw-in-url@h/a b", "whitespace or control"),
        ("ftp://sage:pw-in-url%0D%0AQUIT@h/f", "encoded control character"),
        ("ftp://h/f%0D%0ADELE%20f", "encoded control character"),
        ("ftp://h/f%00.tgz", "encoded control character"),
    ],
)
def test_check_url_never_shows_a_password(url: str, message: str) -> None:
    """The password is masked; an ftp line break would be a second FTP command."""
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        check_url(url)
    assert "pw-in-url" not in str(info.value)
    if "sage:" in url:
        assert "sage:***@" in str(info.value)


@pytest.mark.parametrize("url", ["", "   ", "\t", "\n"])
def test_check_url_rejects_empty(url: str) -> None:
    with pytest.raises(ValueError, match="empty URL"):
        check_url(url)


@pytest.mark.parametrize(
    "url", [None, 42, b"https://example.org/f", ["https://example.org/f"], 1.5]
)
def test_check_url_rejects_non_strings_naming_the_value(url: object) -> None:
    with pytest.raises(ValueError, match="must be a string") as info:
        check_url(url)
    assert repr(url) in str(info.value)
    assert type(url).__name__ in str(info.value)


# -- filename_from_url ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://h.example/f.tgz", "f.tgz"),
        ("https://h.example/a/b/pkg-1.0.tar.gz", "pkg-1.0.tar.gz"),
        # percent-decoding
        ("https://h.example/a/b/pkg%2D1.0.tar.gz", "pkg-1.0.tar.gz"),
        ("https://h.example/f%20name.tgz", "f name.tgz"),
        ("https://h.example/b%C3%BCcher.tgz", "b\u00fccher.tgz"),
        ("https://h.example/%FF.tgz", "\ufffd.tgz"),
        ("https://h.example/a+b.tgz", "a+b.tgz"),
        # query and fragment are ignored
        ("https://h.example/f.tgz?name=other.zip", "f.tgz"),
        ("https://h.example/f.tgz?dir=/x/y.zip", "f.tgz"),
        ("https://h.example/f.tgz#sha256=00", "f.tgz"),
        ("https://h.example/f.tgz#frag/x.zip", "f.tgz"),
        ("https://h.example/a/b/pkg%2D1.0.tar.gz?x=1#sha256=00", "pkg-1.0.tar.gz"),
        # an encoded slash or backslash never makes a directory
        ("https://h.example/a%2Fb", "b"),
        ("https://h.example/a%2fb.tgz", "b.tgz"),
        ("https://h.example/x/..%2F..%2Fetc%2Fpasswd", "passwd"),
        ("https://h.example/a%5Cb.tgz", "b.tgz"),
        ("https://h.example/a\\b.tgz", "b.tgz"),
        ("https://h.example/..%5C..%5Cwin.ini", "win.ini"),
        # NUL and control characters are removed
        ("https://h.example/a%00b.tgz", "ab.tgz"),
        ("https://h.example/a%0Ab%0D.tgz", "ab.tgz"),
        ("https://h.example/%09f.tgz", "f.tgz"),
        ("https://h.example/a%1Bb.tgz", "ab.tgz"),
        ("https://h.example/a%7Fb.tgz", "ab.tgz"),
        ("https://h.example/f.tgz%00.exe", "f.tgz.exe"),
        # dots that are not a traversal are a fine name
        ("https://h.example/...", "..."),
        ("https://h.example/.hidden", ".hidden"),
        ("https://h.example/a%C2%85b.tgz", "ab.tgz"),
        ("https://h.example/a%C2%9B31mb.tgz", "a31mb.tgz"),
    ],
)
def test_filename_from_url(url: str, name: str) -> None:
    result = filename_from_url(url)
    assert result == name
    assert "/" not in result
    assert "\\" not in result
    assert not re.search(r"[\x00-\x1f\x7f]", result)
    assert result not in ("", ".", "..")


@pytest.mark.parametrize(
    "url",
    [
        "https://h.example",
        "https://h.example/",
        "https://h.example/dir/",
        "https://h.example/dir/?f=x.tgz",
        "https://h.example/dir/#x.tgz",
        "https://h.example/.",
        "https://h.example/..",
        "https://h.example/a/..",
        "https://h.example/%2e%2e",
        "https://h.example/%2E%2E",
        "https://h.example/a/%2e",
        "https://h.example/a%2F..",
        "https://h.example/a%5C..",
        "https://h.example/.%2e",
        "https://h.example/%00",
        "https://h.example/%00..",
        "https://h.example/%2e%00%2e",
        "https://h.example/%20",
        "https://h.example/a%2F",
    ],
)
def test_filename_from_url_refuses_urls_without_a_name(url: str) -> None:
    with pytest.raises(ValueError, match="file name") as info:
        filename_from_url(url)
    assert repr(url) in str(info.value)


@pytest.mark.parametrize(
    ("stem", "suffix"),
    [
        ("a" * 300, ".tar.gz"),
        ("a" * 248, ".tar.gz"),  # 255 bytes exactly: kept whole
        ("a" * 249, ".tar.gz"),  # 256 bytes: one too many
        ("%C3%A9" * 200, ".tgz"),  # two-byte characters
        ("%F0%9F%93%A6" * 100, ".whl"),  # four-byte characters
        ("x" + "%E2%82%AC" * 100, ".zip"),  # three-byte characters, odd offset
    ],
)
def test_filename_from_url_limits_long_names_to_255_bytes(stem: str, suffix: str) -> None:
    url = f"https://h.example/dir/{stem}{suffix}?q=1"
    full_bytes = len(unquote_to_bytes(stem + suffix))
    result = filename_from_url(url)
    encoded = result.encode("utf-8")  # strict: no half characters left behind
    assert len(encoded) <= 255
    assert result.endswith(suffix)
    if full_bytes <= 255:
        assert len(encoded) == full_bytes
    else:
        assert len(encoded) >= 252  # at most one partial character dropped
        assert "\ufffd" not in result


# -- normalise_host -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.org", "example.org"),
        ("EXAMPLE.Org", "example.org"),
        ("example.org.", "example.org"),
        (" example.org ", "example.org"),
        ("B\u00fccher.Example", "xn--bcher-kva.example"),
        ("b\u00fccher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
        ("m\u00fcnchen.de", "xn--mnchen-3ya.de"),
        ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.org", "example.org"),  # full-width
        # IP literals are left alone (brackets of an IPv6 literal dropped, like urlsplit)
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.255", "10.0.0.255"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("fe80::1", "fe80::1"),
    ],
)
def test_normalise_host(host: str, expected: str) -> None:
    assert normalise_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "example.org",
        "B\u00fccher.Example",
        "xn--bcher-kva.example",
        "m\u00fcnchen.de",
        "\u0391\u0392\u0393.example",
        "127.0.0.1",
        "[::1]",
        "2001:db8::1",
    ],
)
def test_normalise_host_is_idempotent(host: str) -> None:
    once = normalise_host(host)
    assert once.isascii()
    assert normalise_host(once) == once


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("", "empty host name"),
        (".", "empty host name"),
        ("[]", "empty host name"),
        pytest.param(
            "\u2603.example", "invalid international host name '\u2603.example'", marks=NEEDS_IDNA
        ),
        pytest.param("a\u200db.example", "invalid international host name", marks=NEEDS_IDNA),
    ],
)
def test_normalise_host_rejects(host: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        normalise_host(host)


# -- split_host_port ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("example.org", None, ("example.org", None)),
        ("example.org", 443, ("example.org", 443)),
        ("example.org:8443", None, ("example.org", 8443)),
        ("example.org:8443", 443, ("example.org", 8443)),
        ("Example.ORG:1", None, ("example.org", 1)),
        ("example.org:65535", None, ("example.org", 65535)),
        (" example.org:80 ", None, ("example.org", 80)),
        ("B\u00fccher.Example:443", None, ("xn--bcher-kva.example", 443)),
        ("xn--bcher-kva.example:443", None, ("xn--bcher-kva.example", 443)),
        ("127.0.0.1:8080", None, ("127.0.0.1", 8080)),
        ("127.0.0.1", 80, ("127.0.0.1", 80)),
        ("[::1]:8443", None, ("::1", 8443)),
        ("[::1]", None, ("::1", None)),
        ("[::1]", 443, ("::1", 443)),
        ("::1", None, ("::1", None)),
        ("2001:db8::1", None, ("2001:db8::1", None)),
        ("[2001:DB8::1]:443", None, ("2001:db8::1", 443)),
    ],
)
def test_split_host_port(text: str, default: int | None, expected: tuple[str, int | None]) -> None:
    assert split_host_port(text, default) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":443",
        "example.org:0",
        "example.org:65536",
        "example.org:99999",
        "example.org:abc",
        "example.org:-1",
        "example.org:+1",
        "example.org: 1",
        "[::1",
        "[::1]x",
        "[::1]8443",
        "[::1]:0",
        "[::1]:http",
        "[]:443",
        "example.org:\u0664\u0664\u0663",  # Arabic-Indic digits for "443"
    ],
)
def test_split_host_port_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(text)
