"""Segmented downloads (split): parts from several sources at once, the whole hash decides."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from robustfetch import Reason
from robustfetch.engine.split import segments

DATA = os.urandom(3 * 1024 * 1024 + 12345)
DIGEST = hashlib.sha256(DATA).hexdigest()


def mirrors(make_server: Any, count: int, **route: Any) -> tuple[list[Any], list[str]]:
    servers = [make_server("good") for _ in range(count)]
    urls = [server.route("/f.bin", body=DATA, **route) for server in servers]
    return servers, urls


def range_of(server: Any) -> list[str]:
    return [r.headers.get("range", "") for r in server.requests_for("/f.bin")]


def test_segments_come_from_different_sources_and_verify(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    servers, urls = mirrors(make_server, 3)
    result = robustfetch.fetch(
        urls[0], DIGEST, urls[1:], dest=dest_dir, split=3, size=len(DATA), **opts
    )
    assert (dest_dir / "f.bin").read_bytes() == DATA
    assert result.url == urls[0] and result.size == len(DATA)
    assert [a.reason for a in result.attempts] == [None, None, None]
    asked = [range_of(server) for server in servers]
    expected = [[f"bytes={a}-{b - 1}"] for a, b in segments(len(DATA), 3)]
    assert asked == expected


def test_a_source_with_other_bytes_fails_the_whole_and_one_at_a_time_follows(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = make_server("good")
    bad = make_server("good")
    first = good.route("/f.bin", body=DATA)
    corrupt = bytearray(DATA)
    corrupt[-100] ^= 0xFF  # same size, one byte off, in the second segment
    second = bad.route("/f.bin", body=bytes(corrupt))
    result = robustfetch.fetch(
        first, DIGEST, [second], dest=dest_dir, split=2, size=len(DATA), **opts
    )
    assert (dest_dir / "f.bin").read_bytes() == DATA
    assert [a.reason for a in result.attempts] == [Reason.HASH_MISMATCH, None]
    assert "one source at a time" in result.attempts[0].detail
    # The fall-back is a plain download of the first source, from byte 0.
    assert range_of(good) == [f"bytes=0-{len(DATA) // 2 - 1}", ""]
    assert list(dest_dir.iterdir()) == [dest_dir / "f.bin"]


def test_a_source_that_ignores_range_means_no_split(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = make_server("good")
    plain = make_server("good")
    first = good.route("/f.bin", body=DATA)
    second = plain.route("/f.bin", body=DATA, ranges=False)
    result = robustfetch.fetch(
        first, DIGEST, [second], dest=dest_dir, split=2, size=len(DATA), **opts
    )
    assert (dest_dir / "f.bin").read_bytes() == DATA
    assert [a.reason for a in result.attempts] == [None]
    assert result.url == first


def test_a_failing_segment_source_is_reported_and_the_others_serve(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = make_server("good")
    gone = make_server("good")
    first = good.route("/f.bin", body=DATA)
    missing = gone.url("/f.bin")  # no route: 404
    result = robustfetch.fetch(
        first, DIGEST, [missing], dest=dest_dir, split=2, size=len(DATA), **opts
    )
    assert (dest_dir / "f.bin").read_bytes() == DATA
    assert [(a.url, a.reason) for a in result.attempts] == [
        (missing, Reason.NOT_FOUND),
        (first, None),
    ]


def test_without_a_size_or_a_pin_there_is_no_split(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    servers, urls = mirrors(make_server, 2)
    robustfetch.fetch(urls[0], DIGEST, urls[1:], dest=dest_dir, split=2, **opts)
    assert range_of(servers[0]) == [""] and range_of(servers[1]) == []
    robustfetch.fetch(urls[0], None, urls[1:], dest=dest_dir, split=2, size=len(DATA), **opts)
    assert range_of(servers[0]) == ["", ""] and range_of(servers[1]) == []


@pytest.mark.parametrize(("total", "count"), [(10, 3), (1 << 20, 4), (7, 7), (5, 1)])
def test_segments_cover_the_file_once(total: int, count: int) -> None:
    parts = segments(total, count)
    assert len(parts) == count
    assert parts[0][0] == 0 and parts[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
