"""Unit tests of robustfetch.options.make_options and of input checks in the public entry points.

Every bad value is a ValueError naming it, raised before any socket opens.
"""

from __future__ import annotations

import importlib.util
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from robustfetch.options import Options, default_cache_dir, make_options

GOOD_SHA256 = "ab" * 32
NAN = float("nan")
INF = float("inf")

# -- bad values -----------------------------------------------------------------------

# The stdlib codec (IDNA 2003, used without the idna package) accepts these.
NEEDS_IDNA = pytest.mark.skipif(
    importlib.util.find_spec("idna") is None, reason="IDNA 2003 accepts it"
)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *[
            (name, value)
            for name in ("connect_timeout", "stall_timeout", "min_speed_window")
            for value in (-1, -0.5, 0, 0.0, NAN, "10", True, None, [5])
        ],
        ("deadline", 0),
        ("deadline", -3.0),
        ("deadline", NAN),
        ("deadline", "60"),
        ("min_speed", -1),
        ("min_speed", NAN),
        ("backoff", -0.1),
        ("max_retry_after", -1),
        ("retries", -1),
        ("retries", True),
        ("retries", False),
        ("retries", 1.5),
        ("retries", "2"),
        ("retries", None),
        ("max_redirects", -1),
        ("max_redirects", True),
        ("size", -1),
        ("size", 1.5),
        ("size", True),
        ("size", "100"),
        ("max_size", -1),
        ("max_size", 2.0),
        ("trust", "certify"),
        ("trust", "SYSTEM"),
        ("trust", ""),
        ("offline", "yes"),
        ("offline", 1),
        ("allow_http", "true"),
        ("rewrite", None),
        ("mirror_order", "random"),
        ("transport", "curl"),
        ("pool_size", -1),
        ("cache_dir", True),
        ("progress", 42),
        ("progress", "print"),
        ("mirrors", "https://m.example/dist"),
        ("mirrors", ["gopher://m.example/dist"]),
        ("mirrors", ["https://m.example/dist", "m.example/dist"]),
        ("headers", {"X-A": "a\nb"}),
        ("headers", {"X-A\n": "a"}),
        ("headers", {"X-A": "a\r\nInjected: 1"}),
        ("headers", {"X-A": 1}),
        ("headers", {1: "a"}),
        ("headers", "X-A: a"),
        ("user_agent", "agent\nInjected: 1"),
        ("user_agent", None),
        ("hashes", {"sha256": 123}),
        ("hashes", "sha256=00"),
        ("proxies", "http://p.example:3128"),
        ("proxies", {"ftp": "http://p.example:3128"}),
        ("proxies", {"https": "ftp://p.example"}),
        ("connect_to", "a.example:443:127.0.0.1:8443"),
        ("connect_to", [("a.example:443", "127.0.0.1:8443")]),
        ("connect_to", {"a.example:abc": "127.0.0.1:8443"}),
        ("connect_to", {"a.example:0": "127.0.0.1:8443"}),
        ("connect_to", {"a.example:65536": "127.0.0.1:8443"}),
        ("connect_to", {"[::1": "127.0.0.1:8443"}),
        ("connect_to", {"": "127.0.0.1:8443"}),
        ("connect_to", {":443": "127.0.0.1:8443"}),
        pytest.param("connect_to", {"\u2603.example:443": "127.0.0.1:8443"}, marks=NEEDS_IDNA),
        ("connect_to", {443: "127.0.0.1:8443"}),
        ("connect_to", {"a.example:443": 8443}),
        ("connect_to", {"a.example:443": "127.0.0.1:99999"}),
        ("mirrors", [123]),
        ("headers", {"X-A": "a\rInjected: 1"}),
        *[(name, INF) for name in ("connect_timeout", "stall_timeout")],
    ],
)
def test_bad_value_is_a_value_error_naming_it(name: str, value: Any) -> None:
    with pytest.raises(ValueError) as info:
        make_options(**{name: value})
    message = str(info.value)
    shown = [repr(value)]
    if isinstance(value, dict):
        shown += [repr(k) for k in value] + [repr(v) for v in value.values()]
    elif isinstance(value, list):
        shown += [repr(item) for item in value]
    assert any(text in message for text in shown), message


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ({"size": 11, "max_size": 10}, ["11", "10"]),
        ({"size": 10**9, "max_size": 1}, [str(10**9), "max_size=1"]),
    ],
)
def test_size_larger_than_max_size(given: dict[str, Any], shown: list[str]) -> None:
    with pytest.raises(ValueError, match="larger than") as info:
        make_options(**given)
    assert all(text in str(info.value) for text in shown)


def test_size_larger_than_max_size_over_a_base() -> None:
    base = make_options(max_size=10)
    with pytest.raises(ValueError, match="size=11"):
        base.with_changes(size=11)


@pytest.mark.parametrize(
    "missing", ["missing.pem", "no/such/dir/ca.pem", "~/surely-not-here-robustfetch.pem"]
)
def test_ca_bundle_must_be_a_file(tmp_path: Path, missing: str) -> None:
    path = tmp_path / missing if not missing.startswith("~") else missing
    with pytest.raises(ValueError, match="ca_bundle") as info:
        make_options(ca_bundle=path)
    assert Path(str(path)).name in str(info.value)


def test_ca_bundle_must_not_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        make_options(ca_bundle=tmp_path)


def test_ca_bundle_and_system_trust_contradict(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    with pytest.raises(ValueError, match="contradict"):
        make_options(ca_bundle=bundle, trust="system")


@pytest.mark.parametrize("name", ["timeout", "conect_timeout", "sha256", "dest", "retry"])
def test_unknown_option_is_a_type_error_naming_it(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        make_options(**{name: 1})


def test_mirror_order_fastest_is_accepted() -> None:
    assert make_options(mirror_order="fastest").mirror_order == "fastest"


# -- good values ----------------------------------------------------------------------


def test_defaults(robustfetch_cache_dir: Path) -> None:
    options = make_options()
    assert isinstance(options, Options)
    assert options.mirrors == ()
    assert options.cache_dir == robustfetch_cache_dir
    assert options.offline is False
    assert options.connect_timeout == 10.0
    assert options.stall_timeout == 30.0
    assert options.min_speed == 0
    assert options.min_speed_window == 10.0
    assert options.retries == 2
    assert options.max_redirects == 10
    assert options.allow_http is False
    assert options.ca_bundle is None
    assert options.connect_to == {}
    assert options.rewrite is True
    assert options.size is None
    assert options.max_size is None
    assert options.deadline is None
    assert options.mirror_order == "given"
    assert options.progress is None
    assert options.user_agent.startswith("robustfetch/")
    assert robustfetch.__version__ in options.user_agent


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("connect_timeout", 5, 5.0),
        ("connect_timeout", 0.25, 0.25),
        ("stall_timeout", 1e-3, 1e-3),
        ("deadline", None, None),
        ("deadline", 60, 60.0),
        ("min_speed", 0, 0.0),
        ("backoff", 0, 0.0),
        ("retries", 0, 0),
        ("retries", 7, 7),
        ("max_redirects", 0, 0),
        ("size", 0, 0),
        ("size", None, None),
        ("max_size", 10**12, 10**12),
        ("trust", "system", "system"),
        ("trust", "certifi", "certifi"),
        ("trust", None, None),
        ("offline", True, True),
        ("cache_dir", None, None),
        ("cache_dir", False, None),
        ("mirrors", ["https://m.example/a", "https://n.example/{filename}"], None),
        ("mirrors", ("https://m.example/a",), ("https://m.example/a",)),
        ("headers", {"X-A": "a b"}, {"X-A": "a b"}),
        ("progress", print, print),
        ("user_agent", "me/1.0", "me/1.0"),
    ],
)
def test_good_value_is_kept(name: str, value: Any, expected: Any) -> None:
    options = make_options(**{name: value})
    got = getattr(options, name)
    if name == "mirrors":
        assert got == tuple(value)
    else:
        assert got == expected
        assert type(got) is type(expected)


def test_size_equal_to_max_size_is_fine() -> None:
    options = make_options(size=10, max_size=10)
    assert (options.size, options.max_size) == (10, 10)


def test_cache_dir_is_a_path(tmp_path: Path) -> None:
    assert make_options(cache_dir=str(tmp_path)).cache_dir == tmp_path
    assert make_options(cache_dir=tmp_path / "sub").cache_dir == tmp_path / "sub"


def test_ca_bundle_is_a_path(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    assert make_options(ca_bundle=str(bundle)).ca_bundle == bundle


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"a.example:443": "127.0.0.1:8443"}, {("a.example", 443): ("127.0.0.1", 8443)}),
        ({"A.Example:443": "127.0.0.1"}, {("a.example", 443): ("127.0.0.1", None)}),
        ({"a.example": "127.0.0.1:8443"}, {("a.example", None): ("127.0.0.1", 8443)}),
        (
            {"B\u00fccher.Example:443": "[::1]:8443"},
            {("xn--bcher-kva.example", 443): ("::1", 8443)},
        ),
        (
            {"xn--bcher-kva.example:443": "10.0.0.1:443"},
            {("xn--bcher-kva.example", 443): ("10.0.0.1", 443)},
        ),
        ({"[::1]:443": "127.0.0.1:8443"}, {("::1", 443): ("127.0.0.1", 8443)}),
    ],
)
def test_connect_to_keys_in_unicode_or_punycode(
    given: dict[str, str], expected: dict[tuple[str, Any], tuple[str, Any]]
) -> None:
    assert dict(make_options(connect_to=given).connect_to) == expected


def test_options_are_checked_again_over_a_base() -> None:
    base = make_options(retries=5)
    changed = base.with_changes(connect_timeout=3)
    assert (changed.retries, changed.connect_timeout) == (5, 3.0)
    with pytest.raises(ValueError, match="-1"):
        base.with_changes(retries=-1)


# -- environment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "offline"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        (" 1 ", True),
        ("0", False),
        ("", False),
        ("no", False),
        ("false", False),
    ],
)
def test_robustfetch_offline(monkeypatch: pytest.MonkeyPatch, value: str, offline: bool) -> None:
    monkeypatch.setenv("ROBUSTFETCH_OFFLINE", value)
    assert make_options().offline is offline


def test_offline_keyword_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBUSTFETCH_OFFLINE", "1")
    assert make_options(offline=False).offline is False


def test_offline_unset_is_online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBUSTFETCH_OFFLINE", raising=False)
    assert make_options().offline is False


def test_robustfetch_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROBUSTFETCH_CACHE_DIR", str(tmp_path / "env-cache"))
    assert make_options().cache_dir == tmp_path / "env-cache"
    assert make_options(cache_dir=tmp_path / "mine").cache_dir == tmp_path / "mine"
    assert make_options(cache_dir=None).cache_dir is None
    assert make_options(cache_dir=False).cache_dir is None


@pytest.mark.parametrize("value", [None, ""])
def test_default_cache_dir_without_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("ROBUSTFETCH_CACHE_DIR", raising=False)
    else:
        monkeypatch.setenv("ROBUSTFETCH_CACHE_DIR", value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "xdg"))
    expected = default_cache_dir()
    assert make_options().cache_dir == expected
    assert "robustfetch" in str(expected)


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first.pem", tmp_path / "second.pem"
    first.write_text("")
    second.write_text("")
    return first, second


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"ROBUSTFETCH_CA_BUNDLE": 0}, 0),
        ({"SSL_CERT_FILE": 0}, 0),
        ({"ROBUSTFETCH_CA_BUNDLE": 0, "SSL_CERT_FILE": 1}, 0),  # ours first
        ({"ROBUSTFETCH_CA_BUNDLE": "", "SSL_CERT_FILE": 1}, 1),
        ({}, None),
    ],
)
def test_ca_bundle_from_environment(
    monkeypatch: pytest.MonkeyPatch,
    pem_files: tuple[Path, Path],
    variables: dict[str, Any],
    expected: int | None,
) -> None:
    for name, index in variables.items():
        monkeypatch.setenv(name, "" if index == "" else str(pem_files[index]))
    assert make_options().ca_bundle == (None if expected is None else pem_files[expected])


@pytest.mark.parametrize("variable", ["ROBUSTFETCH_CA_BUNDLE", "SSL_CERT_FILE"])
def test_ca_bundle_from_environment_is_overridden(
    monkeypatch: pytest.MonkeyPatch, pem_files: tuple[Path, Path], variable: str
) -> None:
    first, second = pem_files
    monkeypatch.setenv(variable, str(first))
    assert make_options(ca_bundle=second).ca_bundle == second
    assert make_options(ca_bundle=None).ca_bundle is None
    system = make_options(trust="system")
    assert (system.ca_bundle, system.trust) == (None, "system")


@pytest.mark.parametrize("variable", ["ROBUSTFETCH_CA_BUNDLE", "SSL_CERT_FILE"])
def test_ca_bundle_from_environment_must_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    missing = tmp_path / "gone.pem"
    monkeypatch.setenv(variable, str(missing))
    with pytest.raises(ValueError, match=re.escape(repr(str(missing)))):
        make_options()
    # an explicit choice does not trip over the stale variable
    assert make_options(trust="system").ca_bundle is None


# -- before any socket opens ----------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if anything tries to resolve a name or open a connection."""
    calls: list[str] = []

    def forbidden(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(f"{name}{args!r}")
            pytest.fail(f"network used before the input was checked: {name}{args!r}")

        return call

    monkeypatch.setattr(socket.socket, "connect", forbidden("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", forbidden("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", forbidden("socket.getaddrinfo"))
    yield calls
    assert calls == []


@pytest.fixture
def clean_dest(tmp_path: Path) -> Iterator[Path]:
    """An empty destination folder; afterwards nothing may have been written anywhere."""
    folder = tmp_path / "dest"
    folder.mkdir()
    yield folder
    assert list(folder.iterdir()) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


URL = "https://a.example/pub/f.tgz"

BAD_FETCHES: dict[str, tuple[tuple[Any, ...], dict[str, Any], str]] = {
    # id: (positional args, keyword args, text the message must contain)
    "malformed-digest": ((URL, "abc"), {}, "'abc'"),
    "short-digest": ((URL, "sha256:" + "0" * 63), {}, "0" * 63),
    "non-hex-digest": ((URL, "z" * 64), {}, "z" * 64),
    "sha512-as-sha256": ((URL, "0" * 128), {}, "0" * 128),
    "malformed-fragment-digest": ((URL + "#sha256=xyz",), {}, "'xyz'"),
    "contradictory-digests": (
        (URL + "#sha256=" + "cd" * 32, GOOD_SHA256),
        {},
        GOOD_SHA256,
    ),
    "unknown-hash-algorithm": ((URL,), {"hashes": {"sha999": "00" * 32}}, "sha999"),
    "shake-hash": ((URL,), {"hashes": {"shake_128": "00" * 16}}, "shake_128"),
    "malformed-sha512": ((URL,), {"hashes": {"sha512": "00"}}, "'00'"),
    "unsupported-scheme": (("gopher://a.example/pub/f.tgz",), {}, "gopher"),
    "remote-file-url": (("file://host.example/etc/passwd",), {}, "host.example"),
    "empty-url": (("",), {}, "empty URL"),
    "blank-url": (("   ",), {}, "empty URL"),
    "url-with-space": (("https://a.example/a b.tgz",), {}, "a b.tgz"),
    "non-string-url": ((b"https://a.example/f.tgz",), {}, "bytes"),
    "bad-fallback": ((URL, None, ["gopher://b.example/f.tgz"]), {}, "gopher"),
    "fallbacks-as-string": ((URL, None, "https://b.example/f.tgz"), {}, "b.example"),
    "mirrors-as-string": ((URL,), {"mirrors": "https://m.example/dist"}, "m.example"),
    "negative-timeout": ((URL,), {"connect_timeout": -1}, "-1"),
    "zero-stall-timeout": ((URL,), {"stall_timeout": 0}, "stall_timeout"),
    "nan-timeout": ((URL,), {"connect_timeout": NAN}, "nan"),
    "bool-retries": ((URL,), {"retries": True}, "True"),
    "negative-retries": ((URL,), {"retries": -1}, "-1"),
    "size-over-max-size": ((URL,), {"size": 2, "max_size": 1}, "max_size"),
    "bad-connect-to": ((URL,), {"connect_to": {"a.example:x": "127.0.0.1:1"}}, "a.example:x"),
    "bad-header": ((URL,), {"headers": {"X-A": "1\nX-B: 2"}}, "X-A"),
}


@pytest.mark.parametrize("case", list(BAD_FETCHES))
def test_fetch_rejects_bad_input_before_any_socket_opens(
    no_network: list[str], clean_dest: Path, case: str
) -> None:
    args, kwargs, shown = BAD_FETCHES[case]
    with pytest.raises(ValueError) as info:
        robustfetch.fetch(*args, dest=clean_dest, **kwargs)
    assert shown in str(info.value)


@pytest.mark.parametrize(
    ("relative", "shown"),
    [("missing/f.tgz", "missing"), ("a/b/c/f.tgz", "c")],
)
def test_fetch_rejects_dest_in_a_missing_folder(
    no_network: list[str], clean_dest: Path, relative: str, shown: str
) -> None:
    with pytest.raises(ValueError, match="does not exist") as info:
        robustfetch.fetch(URL, GOOD_SHA256, dest=clean_dest / relative)
    assert shown in str(info.value)


@pytest.mark.parametrize(
    "url", ["https://a.example/", "https://a.example/dir/", "https://a.example"]
)
def test_fetch_into_a_folder_needs_a_file_name(
    no_network: list[str], clean_dest: Path, url: str
) -> None:
    with pytest.raises(ValueError, match="file name"):
        robustfetch.fetch(url, GOOD_SHA256, dest=clean_dest)


def test_fetch_with_mirrors_needs_a_file_name(no_network: list[str], clean_dest: Path) -> None:
    with pytest.raises(ValueError, match="file name") as info:
        robustfetch.fetch(
            "https://a.example/dir/",
            GOOD_SHA256,
            dest=clean_dest / "out.bin",
            mirrors=["https://m.example/dist"],
        )
    assert "'https://a.example/dir/'" in str(info.value)


def test_fetch_unknown_option_is_a_type_error(no_network: list[str], clean_dest: Path) -> None:
    with pytest.raises(TypeError, match="timeout"):
        robustfetch.fetch(URL, GOOD_SHA256, dest=clean_dest, timeout=5)


def test_fetcher_rejects_bad_input_before_any_socket_opens(
    no_network: list[str], clean_dest: Path
) -> None:
    with robustfetch.Fetcher(retries=0) as fetcher:
        with pytest.raises(ValueError, match="'abc'"):
            fetcher.fetch(URL, "abc", dest=clean_dest)
        with pytest.raises(ValueError, match="connect_timeout"):
            fetcher.fetch(URL, GOOD_SHA256, dest=clean_dest, connect_timeout=-1)


@pytest.mark.parametrize(
    ("requests", "kwargs", "shown"),
    [
        # one bad request among good ones: nothing is downloaded at all
        (
            [
                robustfetch.Request(URL, GOOD_SHA256),
                {"url": "https://b.example/g.tgz", "sha256": "abc"},
            ],
            {},
            "'abc'",
        ),
        ([URL, "gopher://b.example/g.tgz"], {}, "gopher"),
        ([{"url": URL, "sha": GOOD_SHA256}], {}, "'sha'"),
        ([{"sha256": GOOD_SHA256}], {}, "url"),
        ([42], {}, "42"),
        ([URL], {"workers": 0}, "workers"),
        ([URL], {"workers": -3}, "workers"),
        ([URL], {"workers": True}, "workers"),
        ([URL], {"workers": "8"}, "workers"),
        ([URL], {"connect_timeout": 0}, "connect_timeout"),
    ],
)
def test_fetch_many_checks_every_request_first(
    no_network: list[str],
    clean_dest: Path,
    requests: list[Any],
    kwargs: dict[str, Any],
    shown: str,
) -> None:
    requests = [
        robustfetch.Request(r.url, r.sha256, r.fallbacks, clean_dest)
        if isinstance(r, robustfetch.Request)
        else r
        for r in requests
    ]
    with pytest.raises(ValueError) as info:
        robustfetch.fetch_many(requests, **kwargs)
    assert shown in str(info.value)


def test_fetch_many_refuses_two_requests_for_one_dest(
    no_network: list[str], clean_dest: Path
) -> None:
    target = clean_dest / "f.tgz"
    with pytest.raises(ValueError, match="request 1: two requests write the same dest"):
        robustfetch.fetch_many(
            [
                robustfetch.Request(URL, GOOD_SHA256, dest=target),
                robustfetch.Request("https://b.example/f.tgz", "1" * 64, dest=clean_dest),
            ]
        )
