"""Unit tests of robustfetch.policy.plan: source order, de-duplication and mirror URLs."""

from __future__ import annotations

import pytest

from robustfetch.policy.plan import Source, mirror_url, plan_sources, source_key

URL = "https://a.example/pub/f.tgz"


def _plan(
    url: str, fallbacks: list[str], mirrors: list[str], filename: str = "f.tgz"
) -> list[tuple[str, str]]:
    return [(s.url, s.origin) for s in plan_sources(url, fallbacks, mirrors, filename)]


# -- order ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fallbacks", "mirrors", "expected"),
    [
        ([], [], [(URL, "url")]),
        (
            ["https://b.example/f.tgz", "https://c.example/f.tgz"],
            [],
            [
                (URL, "url"),
                ("https://b.example/f.tgz", "fallback"),
                ("https://c.example/f.tgz", "fallback"),
            ],
        ),
        (
            [],
            ["https://m1.example/dist", "https://m2.example/dist/"],
            [
                (URL, "url"),
                ("https://m1.example/dist/f.tgz", "mirror"),
                ("https://m2.example/dist/f.tgz", "mirror"),
            ],
        ),
        (
            ["https://c.example/f.tgz", "https://b.example/f.tgz"],
            ["https://m2.example", "https://m1.example"],
            [
                (URL, "url"),
                ("https://c.example/f.tgz", "fallback"),
                ("https://b.example/f.tgz", "fallback"),
                ("https://m2.example/f.tgz", "mirror"),
                ("https://m1.example/f.tgz", "mirror"),
            ],
        ),
    ],
)
def test_order_is_url_then_fallbacks_then_mirrors(
    fallbacks: list[str], mirrors: list[str], expected: list[tuple[str, str]]
) -> None:
    assert _plan(URL, fallbacks, mirrors) == expected


def test_plan_returns_sources() -> None:
    sources = plan_sources(URL, ["https://b.example/f.tgz"], [], "f.tgz")
    assert sources == [Source(URL, "url"), Source("https://b.example/f.tgz", "fallback")]


# -- de-duplication -------------------------------------------------------------------


@pytest.mark.parametrize(
    "duplicate",
    [
        URL,
        URL + "#sha256=" + "0" * 64,
        URL + "#egg=f",
        "HTTPS://a.example/pub/f.tgz",
        "https://A.EXAMPLE/pub/f.tgz",
        "https://a.example:443/pub/f.tgz",
        "https://a.example.:443/pub/f.tgz",
        "hTTpS://A.Example:443/pub/f.tgz#x",
    ],
)
def test_duplicates_of_the_url_are_dropped(duplicate: str) -> None:
    assert _plan(URL, [duplicate], ["https://a.example/pub"]) == [(URL, "url")]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("http://a.example/f", "http://a.example:80/f"),
        ("http://a.example/f", "HTTP://A.example:80/f#frag"),
        ("https://b\u00fccher.example/f", "https://xn--bcher-kva.example/f"),
        ("https://B\u00dcCHER.example/f", "https://xn--bcher-kva.example:443/f"),
        ("https://[::1]/f", "https://[::1]:443/f"),
        ("https://[2001:DB8::1]/f", "https://[2001:db8::1]:443/f"),
        ("https://a.example", "https://a.example/"),
        ("https://a.example/f?x=1", "https://a.example:443/f?x=1#y"),
    ],
)
def test_same_source_spelled_differently_is_tried_once(first: str, second: str) -> None:
    assert source_key(first) == source_key(second)
    url = "https://origin.example/f"
    plan = _plan(url, [first, second], [])
    assert plan == [(url, "url"), (first.split("#")[0], "fallback")]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://a.example/f", "http://a.example/f"),  # scheme matters
        ("https://a.example/f", "https://a.example:8443/f"),  # non-default port
        ("http://a.example/f", "http://a.example:443/f"),  # 443 is not http's default
        ("https://a.example/f", "https://b.example/f"),
        ("https://a.example/f", "https://a.example/F"),  # path case matters
        ("https://a.example/f", "https://a.example/f/"),
        ("https://a.example/f", "https://a.example/f?x=1"),  # query matters
        ("https://a.example/f?x=1", "https://a.example/f?x=2"),
        ("https://a.example/f", "https://a.example/g/../f"),  # not normalised: harmless
        ("https://[::1]:8443/f", "https://[::1:8443]/f"),  # IPv6 address vs address + port
    ],
)
def test_different_sources_are_kept(first: str, second: str) -> None:
    assert source_key(first) != source_key(second)
    url = "https://origin.example/f"
    assert _plan(url, [first, second], []) == [
        (url, "url"),
        (first, "fallback"),
        (second, "fallback"),
    ]


@pytest.mark.parametrize(
    ("fallbacks", "mirrors", "expected"),
    [
        # the first occurrence wins and keeps its origin
        (
            ["https://b.example/f.tgz", "https://B.example:443/f.tgz"],
            ["https://b.example/"],
            [(URL, "url"), ("https://b.example/f.tgz", "fallback")],
        ),
        # a mirror equal to the URL is dropped
        (
            [],
            ["https://a.example/pub", "https://m.example/x", "https://m.example/x/"],
            [(URL, "url"), ("https://m.example/x/f.tgz", "mirror")],
        ),
        # {filename} placeholder and appended name give the same URL
        (
            [],
            ["https://m.example/x/{filename}", "https://m.example/x"],
            [(URL, "url"), ("https://m.example/x/f.tgz", "mirror")],
        ),
    ],
)
def test_deduplication_keeps_first(
    fallbacks: list[str], mirrors: list[str], expected: list[tuple[str, str]]
) -> None:
    assert _plan(URL, fallbacks, mirrors) == expected


@pytest.mark.parametrize(
    ("url", "fallbacks", "expected"),
    [
        (URL + "#sha256=" + "0" * 64, [], [URL]),
        (URL, ["https://b.example/f.tgz#sha256=" + "0" * 64], [URL, "https://b.example/f.tgz"]),
        (URL + "#x", ["https://b.example/f.tgz#egg=f"], [URL, "https://b.example/f.tgz"]),
    ],
)
def test_fragments_are_never_requested(url: str, fallbacks: list[str], expected: list[str]) -> None:
    assert [s.url for s in plan_sources(url, fallbacks, [], "f.tgz")] == expected


# -- mirror URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "filename", "expected"),
    [
        # appended
        ("https://m.example/dist", "f.tgz", "https://m.example/dist/f.tgz"),
        ("https://m.example/dist/", "f.tgz", "https://m.example/dist/f.tgz"),
        ("https://m.example/dist//", "f.tgz", "https://m.example/dist/f.tgz"),
        ("https://m.example", "f.tgz", "https://m.example/f.tgz"),
        ("https://m.example/dist#frag", "f.tgz", "https://m.example/dist/f.tgz"),
        # placeholder
        ("https://m.example/{filename}", "f.tgz", "https://m.example/f.tgz"),
        ("https://m.example/d/{filename}/get", "f.tgz", "https://m.example/d/f.tgz/get"),
        ("https://m.example/dist/{filename}?x=1", "f.tgz", "https://m.example/dist/f.tgz?x=1"),
        ("https://m.example/get?file={filename}", "f.tgz", "https://m.example/get?file=f.tgz"),
        ("https://m.example/{filename}#frag", "f.tgz", "https://m.example/f.tgz"),
        ("https://m.example/{filename}.sig/{filename}", "f", "https://m.example/f.sig/f"),
        # quoting
        ("https://m.example/dist", "a b.tgz", "https://m.example/dist/a%20b.tgz"),
        (
            "https://m.example/dist/{filename}?x=1",
            "a b.tgz",
            "https://m.example/dist/a%20b.tgz?x=1",
        ),
        ("https://m.example/dist", "a#b?.tgz", "https://m.example/dist/a%23b%3F.tgz"),
        ("https://m.example/dist", "100%.tgz", "https://m.example/dist/100%25.tgz"),
        ("https://m.example/dist", "b\u00fccher.tgz", "https://m.example/dist/b%C3%BCcher.tgz"),
        ("https://m.example/dist", "a+b&c.tgz", "https://m.example/dist/a%2Bb%26c.tgz"),
        ("https://m.example/dist", "pkg-1.0_x~y.tgz", "https://m.example/dist/pkg-1.0_x~y.tgz"),
        (
            "https://m.example/pub?token=abc",
            "f.tgz",
            "https://m.example/pub/f.tgz?token=abc",
        ),
    ],
)
def test_mirror_url(base: str, filename: str, expected: str) -> None:
    assert mirror_url(base, filename) == expected


@pytest.mark.parametrize("filename", ["a b.tgz", "x y z-1.0.tar.gz", "tab\there.tgz"])
def test_planned_mirror_urls_have_no_spaces(filename: str) -> None:
    sources = plan_sources(
        URL, [], ["https://m.example/d", "https://n.example/{filename}"], filename
    )
    for source in sources[1:]:
        assert " " not in source.url
        assert "\t" not in source.url
        assert source.origin == "mirror"


def test_rank_mirrors_weighs_remembered_failures() -> None:
    from robustfetch.policy.plan import FAILURE_PENALTY, rank_mirrors

    url = Source("https://u.example/f", "url")
    a, b = Source("https://a.example/f", "mirror"), Source("https://b.example/f", "mirror")
    times = {"a.example:443": 0.010, "b.example:443": 0.020}
    assert rank_mirrors([url, a, b], times, {}) == [url, a, b]
    assert rank_mirrors([url, a, b], times, {"a.example:443": 1}) == [url, b, a]
    slow = {"a.example:443": 0.010, "b.example:443": 0.010 + FAILURE_PENALTY + 1}
    assert rank_mirrors([url, a, b], slow, {"a.example:443": 1}) == [url, a, b]
