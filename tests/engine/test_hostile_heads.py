"""Servers that lie in their response heads: cut short, odd numbers, raw spaces in Location."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = b"the real file\n" * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()

MakeRaw = Callable[[bytes], str]


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"],
)
def test_a_head_cut_short_is_truncated_not_an_empty_file(
    raw_https: MakeRaw, opts: dict[str, Any], dest_dir: Path, answer: bytes
) -> None:
    url = raw_https(answer)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.TRUNCATED]
    assert list(dest_dir.iterdir()) == []


@pytest.mark.parametrize("value", ["²", "٣", "12abc", "-5", "10, 11"])
def test_an_odd_content_length_fails_that_source_only(
    raw_https: MakeRaw, https_server: Server, opts: dict[str, Any], dest_dir: Path, value: str
) -> None:
    bad = raw_https(f"HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n".encode() + DATA)
    good = https_server.route("/files/f.bin", body=DATA)
    result = robustfetch.fetch(bad, DIGEST, [good], dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert result.attempts[0].url == bad and result.attempts[0].reason is not None
    assert [a.reason for a in result.attempts][1:] == [None]


def test_an_odd_retry_after_is_ignored_not_a_crash(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    bad = https_server.route("/a/f.bin", body=DATA, status=503, headers={"Retry-After": "²"})
    good = https_server.route("/b/f.bin", body=DATA)
    result = robustfetch.fetch(bad, DIGEST, [good], dest=dest_dir, **{**opts, "retries": 1})
    assert [a.reason for a in result.attempts] == [Reason.HTTP_STATUS, Reason.HTTP_STATUS, None]


def test_fetch_many_keeps_every_result_next_to_an_odd_header(
    raw_https: MakeRaw, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    bad = raw_https(b"HTTP/1.1 503 Busy\r\nRetry-After: \xb2\r\nContent-Length: 0\r\n\r\n")
    good = https_server.route("/files/g.bin", body=DATA)
    results = robustfetch.fetch_many(
        [{"url": bad, "dest": dest_dir / "f.bin"}, {"url": good, "dest": dest_dir / "g.bin"}],
        **{**opts, "retries": 1},
    )
    assert isinstance(results[0], FetchError)
    assert not isinstance(results[1], FetchError) and results[1].path.read_bytes() == DATA


def test_a_redirect_to_a_path_with_a_raw_space_is_followed(
    raw_https: MakeRaw, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route("/files/my%20file.tar.gz", body=DATA)
    location = f"{https_server.base_url}/files/my file.tar.gz"
    url = raw_https(
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    )
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir / "f.tgz", **opts)
    assert result.path.read_bytes() == DATA
    assert https_server.requests_for("/files/my%20file.tar.gz")
