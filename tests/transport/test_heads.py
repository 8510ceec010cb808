"""Response heads parsed without the e-mail parser give exactly what http.client gives."""

from __future__ import annotations

import hashlib
import http.client
import io
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import robustfetch
from robustfetch.transport.head import FastHeadResponse, parse_head, read_lines
from robustfetch.transport.stdlib_backend import _Connection

DATA = b"the real file\n" * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()

# Pieces a hostile head is made of: plain fields, and everything the e-mail parser
# treats specially (folded lines, no colon, an empty name, a unix From line, bytes it
# splits lines at, nested content types, a bare CR, a lone LF line end).
_PIECES = st.sampled_from(
    [
        b"Content-Length: 5\r\n",
        b"Content-Type: application/octet-stream\r\n",
        b"content-type: Multipart/mixed; boundary=x\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Link: <https://m.example/f>; rel=duplicate\r\n",
        b" rel=duplicate\r\n",
        b"\tcontinued\r\n",
        b"X-Junk\r\n",
        b": no name\r\n",
        b"From someone\r\n",
        b"From: someone\r\n",
        b"Name : spaced\r\n",
        b'ETag:"x"\n',
        b"X-Trailing: value  \t\r\n",
        b"X-Empty:\r\n",
        b"X-Latin: caf\xe9\r\n",
        b"X-Nel: a\x85b\r\n",
        b"X-Vt: a\x0bb\r\n",
        b"X-Cr: a\rb\r\n",
        b"X-Colons: a:b::c\r\n",
        b"Set-Cookie: a=1\r\n",
        b"Set-Cookie: b=2\r\n",
        b"Transfer-Encoding: chunked\r\n",
    ]
)
_ENDS = st.sampled_from([b"\r\n", b"\n", b"", b"BODY", b"\r\nBODY"])


def _parsed(parse: Callable[[io.BytesIO], http.client.HTTPMessage], block: bytes) -> Any:
    fp = io.BytesIO(block)
    try:
        message = parse(fp)
    except http.client.HTTPException as exc:
        return type(exc), str(exc), fp.tell()
    return _state(message), fp.tell()


def _state(message: Any) -> Any:
    """A message's attributes, as values comparable between two parses."""
    if not isinstance(message, http.client.HTTPMessage):
        return message
    state = dict(vars(message))
    # Defects are exceptions, equal only to themselves: compare their kind and text.
    state["defects"] = [(type(d), str(d)) for d in state["defects"]]
    if isinstance(state["_payload"], list):  # a message/* or multipart/* type: parts
        state["_payload"] = [_state(part) for part in state["_payload"]]
    return state


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=8), _ENDS)
def test_any_head_parses_as_http_client_parses_it(pieces: list[bytes], end: bytes) -> None:
    block = b"".join(pieces) + end
    ours = _parsed(lambda fp: parse_head(read_lines(fp)), block)
    assert ours == _parsed(http.client.parse_headers, block)


def test_the_limits_are_http_client_s() -> None:
    too_many = b"X-A: 1\r\n" * 101 + b"\r\n"
    too_long = b"X-A: " + b"a" * 70000 + b"\r\n\r\n"
    for block in (too_many, too_long):
        assert _parsed(lambda fp: parse_head(read_lines(fp)), block) == _parsed(
            http.client.parse_headers, block
        )


@pytest.mark.parametrize("connection", ["stdlib", "urllib3-http", "urllib3-https"])
def test_both_transports_use_it(connection: str) -> None:
    if connection == "stdlib":
        assert _Connection.response_class is FastHeadResponse
        return
    pytest.importorskip("urllib3")  # the standard-library-only run has no urllib3
    from robustfetch.transport import urllib3_backend

    watched = {
        "urllib3-http": urllib3_backend._WatchedHTTPConnection,
        "urllib3-https": urllib3_backend._WatchedHTTPSConnection,
    }[connection]
    assert watched.response_class is FastHeadResponse


@pytest.mark.parametrize(
    "head",
    [
        # A line without a colon ends the head for http.client: the length after it
        # is body, the body runs to the close and is the whole file.
        b"HTTP/1.1 200 OK\r\nX-Junk\r\nContent-Length: 5\r\n\r\n",
        # A folded line continues the one before it, never a field of its own.
        b"HTTP/1.1 200 OK\r\nX-Note: a\r\n Content-Length: 5\r\n\r\n",
        # A vertical tab splits lines for the e-mail parser: what follows is body.
        b"HTTP/1.1 200 OK\r\nX-Note: a\x0bContent-Length: 5\r\n\r\n",
    ],
)
def test_a_hostile_head_means_what_it_means_to_http_client(
    raw_https: Callable[[bytes], str], opts: dict[str, Any], dest_dir: Path, head: bytes
) -> None:
    url = raw_https(head + DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
