"""The urllib3 transport's short way to a known origin's pool: same request, same pool rules."""

from __future__ import annotations

import ssl
from typing import Any, Optional

import pytest

pytest.importorskip("urllib3")  # the standard-library-only run has no urllib3

from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from dummyserver import Certs
from robustfetch.transport import TransportSettings, urllib3_backend
from robustfetch.transport.tls import Trust, make_context
from robustfetch.transport.urllib3_backend import Urllib3Transport, _plain_target

DATA = b"pooled\n" * 100
HEADERS = {"Accept-Encoding": "identity"}


def _short_way(url: str) -> Optional[tuple[str, str, str]]:
    """What the transport asks of the pool it found itself, or None for PoolManager's way."""
    target = _plain_target(url)
    if target is None:
        return None
    return url.partition(":")[0], target[0], target[1]


_URL_PIECES = st.lists(
    st.sampled_from(
        [
            *("a", "Z", "0", "-", ".", "/", "?", "#", "%2F", "%2f", "%", "%G1", "~", ":", "@"),
            *("!", " ", "é", "[", "]", "..", "./", "\\", "\t", "&x=1", ";", "=", "+", "'", "*"),
        ]
    ),
    max_size=10,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    st.sampled_from(["h.example", "H.example", "127.0.0.1", "h.example.", "[::1]", "h_x", "a"]),
    st.sampled_from(["", ":443", ":8443", ":0443", ":", ":99999", ":0"]),
    _URL_PIECES,
)
def test_the_short_way_asks_what_urllib3_would(
    scheme: str, host: str, port: str, rest: str
) -> None:
    url = f"{scheme}://{host}{port}{rest}"
    short = _short_way(url)
    if short is None:
        return  # PoolManager.urlopen parses it, as before
    parsed = parse_url(url)  # never raises for a URL the short way takes
    assert short == (parsed.scheme, parsed.host, parsed.request_uri)


def test_urls_urllib3_rejects_never_take_the_short_way() -> None:
    for url in ("https://h.example:99999/f", "https://h ex/f", "https://h.example:65536/f"):
        with pytest.raises(LocationParseError):
            parse_url(url)
        assert _plain_target(url) is None


def test_more_origins_than_pools_kept(
    make_server: Any, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One pool remembered at a time: each request to the other server forgets the last.
    monkeypatch.setattr(urllib3_backend, "_NUM_POOLS", 1)
    urls = [make_server("good").route("/f.bin", body=DATA) for _ in range(2)]
    context = make_context(Trust("bundle", certs.ca_bundle))
    assert isinstance(context, ssl.SSLContext)
    transport = Urllib3Transport(TransportSettings(context=context))
    try:
        for url in urls * 3:
            response = transport.open(url, HEADERS, connect_timeout=5, read_timeout=5)
            body = bytearray(len(DATA) + 1)
            got = 0
            while True:
                count = response.readinto(memoryview(body)[got:])
                if not count:
                    break
                got += count
            response.release()
            assert bytes(body[:got]) == DATA
            assert len(transport._pools) == 1
    finally:
        transport.close()
