"""Property tests (hypothesis) of URL rewriting, host normalisation and file names from URLs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from robustfetch.policy.rewrite import Rule, RuleSet, rewrite_url
from robustfetch.policy.urls import filename_from_url, normalise_host

PROPERTIES = settings(max_examples=200, deadline=None)

_PYPI_HOSTS = [
    "pypi.io",
    "pypi.python.org",
    "pypi.org",
    "files.pythonhosted.org",
    *(f"{c}.pypi.python.org" for c in "abcxyz"),
]
_OTHER_HOSTS = [
    "example.org",
    "notpypi.io",
    "pypi.io.evil.example",
    "www.pypi.org",
    "aa.pypi.python.org",
]
_URL_CHARS = st.characters(codec="utf-8", exclude_characters="#?")
_PATH_SEGMENT = st.text(_URL_CHARS, max_size=12).map(lambda s: s.replace("/", "%2F"))


@st.composite
def _pypi_urls(draw: st.DrawFn, hosts: list[str] = _PYPI_HOSTS) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(st.sampled_from(hosts))
    host = (
        "".join(c.upper() if draw(st.booleans()) else c for c in host)
        if draw(st.booleans())
        else host
    )
    host += draw(st.sampled_from(["", "."]))
    port = draw(st.sampled_from(["", ":", ":443", ":80", ":8443"]))
    top = draw(st.sampled_from(["/packages/", "/simple/", "/pypi/", "/", ""]))
    path = top + "/".join(draw(st.lists(_PATH_SEGMENT, max_size=4))) if top else ""
    query = draw(st.sampled_from(["", "?", "?a=1&b=%2F", "?x"]))
    fragment = draw(st.sampled_from(["", "#", "#sha256=" + "ab" * 32]))
    return f"{scheme}://{host}{port}{path}{query}{fragment}"


_ANY_URLS = st.one_of(_pypi_urls(), _pypi_urls(_OTHER_HOSTS), st.text(max_size=60))


@PROPERTIES
@given(_ANY_URLS)
def test_rewrite_is_deterministic_and_keeps_the_original_last(url: str) -> None:
    result = rewrite_url(url)
    assert result == rewrite_url(url)
    assert result[-1] == url
    assert 1 <= len(result) <= 2
    assert len(set(result)) == len(result)
    if len(result) == 2:
        assert result[0].startswith(("https://files.pythonhosted.org", "https://pypi.org"))


@PROPERTIES
@given(_ANY_URLS)
def test_rewrite_is_idempotent_on_its_first_candidate(url: str) -> None:
    first = rewrite_url(url)[0]
    assert rewrite_url(first)[0] == first
    assert rewrite_url(first) == [first]


@PROPERTIES
@given(_pypi_urls())
@example("https://pypi.io/packages/a%2Fb/../c?x#sha256=00")
def test_every_candidate_keeps_path_query_and_fragment(url: str) -> None:
    original = urlsplit(url)
    for candidate in rewrite_url(url):
        parts = urlsplit(candidate)
        assert (parts.path, parts.query, parts.fragment) == (
            original.path,
            original.query,
            original.fragment,
        )
        assert candidate.endswith(url[len(f"{original.scheme}://{original.netloc}") :])


@PROPERTIES
@given(_pypi_urls(_OTHER_HOSTS))
def test_other_hosts_are_left_alone(url: str) -> None:
    assert rewrite_url(url) == [url]


@PROPERTIES
@given(st.sampled_from(["http", "https"]), st.text(_URL_CHARS, max_size=40))
def test_identity_rewrite_rule_keeps_the_url(scheme: str, rest: str) -> None:
    # A rest that itself starts with a scheme is taken as the replacement's scheme.
    assume(not rest.lower().startswith(("http://", "https://", "file://")))
    url = f"{scheme}://{rest}"
    rules = RuleSet((Rule("rewrite", "(.*)", "$1"),), builtin=False)
    # The rewrite (over https) first, then the URL itself, once.
    expected = [url] if scheme == "https" or "\n" in rest else ["https://" + rest, url]
    assert rules.candidates(url) == expected


_LABEL = st.text(
    st.characters(categories=["Ll", "Lu", "Lo", "Nd"]) | st.sampled_from("-"),
    min_size=1,
    max_size=10,
)
_HOSTS = st.builds(
    lambda labels, dot, pad: pad + ".".join(labels) + dot + pad,
    st.lists(_LABEL, min_size=1, max_size=4),
    st.sampled_from(["", "."]),
    st.sampled_from(["", " "]),
)


@PROPERTIES
@given(
    _HOSTS
    | st.sampled_from(["[::1]", "192.0.2.1", "B\u00fccher.Example.", "xn--bcher-kva.example"])
)
def test_normalise_host_is_idempotent(host: str) -> None:
    try:
        once = normalise_host(host)
    except ValueError:
        assume(False)
        raise
    assert normalise_host(once) == once
    assert once == once.lower()
    assert once.isascii()


@pytest.mark.parametrize("host", ["[[x]]", "[a.]", "a\u3002"])
def test_normalise_host_idempotent_former_failures(host: str) -> None:
    try:
        once = normalise_host(host)
    except ValueError:
        return  # refusing is fine; changing on a second pass is not
    assert normalise_host(once) == once


FOLDER = Path(tempfile.gettempdir()) / "robustfetch-dest"
_NAMES = st.text(max_size=40) | st.sampled_from(
    [".", "..", "%2e%2e", "..%2F..", "a%00b", "%2F", "\\..", "a/..", " .. ", "..\u0085"]
)


@PROPERTIES
@given(st.sampled_from(["https://h.example/", "https://h.example/d/%2e%2e/"]), _NAMES, _NAMES)
@example("https://h.example/", "x" * 300, "")
@example("https://h.example/", "\u00e9" * 200, ".tar.gz")
def test_filename_from_url_stays_in_the_folder(base: str, name: str, tail: str) -> None:
    try:
        got = filename_from_url(base + name + tail)
    except ValueError:
        return
    assert got not in ("", ".", "..")
    assert not {"/", "\\", "\x00"} & set(got)
    assert len(got.encode("utf-8", "surrogateescape")) <= 255
    assert (FOLDER / got).resolve().parent == FOLDER.resolve()


@pytest.mark.parametrize("tail", ["", ".", ".."])
def test_filename_from_url_former_escape(tail: str) -> None:
    # surrogate-escaped bytes (os.fsdecode of a command line) longer than 255 bytes
    try:
        got = filename_from_url("https://h.example/" + "\udcff" * 300 + tail)
    except ValueError:
        return
    assert got not in ("", ".", "..")
