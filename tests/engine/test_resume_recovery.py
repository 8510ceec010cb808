"""A resume that goes wrong starts over once from byte 0 before the source is blamed (#11)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason
from robustfetch.store.cache import Cache

DATA = os.urandom(600_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
WRONG = os.urandom(len(DATA))


def range_starts(server: Server, path: str) -> list[int]:
    """The first byte each request for ``path`` asked for (0 without a Range)."""
    starts = []
    for request in server.requests_for(path):
        value = request.headers.get("range", "bytes=0-")
        starts.append(int(value.split("=")[1].split("-")[0]))
    return starts


def kept_partial(cache_dir: Path, content: bytes) -> Path:
    """Leave ``content`` where a killed earlier run would have left its partial download."""
    partial = Cache(cache_dir).partial_path(DIGEST)
    partial.write_bytes(content)
    return partial


def test_wrong_bytes_then_a_stall_do_not_blame_the_good_fallback(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    bad = https_server.route("/bad/f.bin", body=WRONG, stall_after=100_000)
    good = https_server.route("/good/f.bin", body=DATA)
    result = robustfetch.fetch(bad, DIGEST, [good], dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert result.url == good
    assert [a.reason for a in result.attempts] == [Reason.STALLED, Reason.HASH_MISMATCH, None]
    assert "starting over from byte 0" in result.attempts[1].detail
    assert range_starts(https_server, "/good/f.bin") == [100_000, 0]


def test_a_source_is_blamed_when_it_is_wrong_from_byte_0_too(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route("/a/f.bin", body=DATA, truncate_after=100_000)
    liar = https_server.route("/b/f.bin", body=WRONG)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(first, DIGEST, [liar], dest=dest_dir, **opts)
    reasons = [a.reason for a in info.value.attempts]
    assert reasons == [Reason.TRUNCATED, Reason.HASH_MISMATCH, Reason.HASH_MISMATCH]
    assert range_starts(https_server, "/b/f.bin") == [100_000, 0]  # one restart, not more
    assert os.listdir(dest_dir) == []


def test_a_kept_partial_longer_than_the_file_starts_over(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    kept_partial(cache, DATA + b"and some bytes too many")
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "cache_dir": cache})
    assert result.path.read_bytes() == DATA
    assert [a.status for a in result.attempts] == [416, 200]
    assert range_starts(https_server, "/f.bin") == [len(DATA) + 23, 0]


def test_a_kept_partial_holding_the_whole_file_is_committed_without_a_request(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    partial = kept_partial(cache, DATA)  # killed after the last write, before the rename
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "cache_dir": cache})
    assert result.path.read_bytes() == DATA
    assert result.sha256 == DIGEST
    assert https_server.requests_for("/f.bin") == []
    assert not partial.exists()
    again = robustfetch.fetch(url, DIGEST, **{**opts, "cache_dir": cache})
    assert again.from_cache and again.path.read_bytes() == DATA
