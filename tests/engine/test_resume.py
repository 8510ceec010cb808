"""Resuming: on the next source, on the same source, and in the next run after a kill."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = os.urandom(600_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


def range_start(server: Server, path: str) -> list[int]:
    """The first byte each request for ``path`` asked for (0 without a Range)."""
    starts = []
    for request in server.requests_for(path):
        value = request.headers.get("range", "bytes=0-")
        starts.append(int(value.split("=")[1].split("-")[0]))
    return starts


def test_cut_off_transfer_continues_on_the_next_source(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route("/a/f.bin", body=DATA, reset_after=200_000)
    second = https_server.route("/b/f.bin", body=DATA)
    result = robustfetch.fetch(first, DIGEST, [second], dest=dest_dir, **opts)
    assert [a.reason for a in result.attempts] == [Reason.TRUNCATED, None]
    assert result.attempts[-1].status == 206  # the resume's real answer (audit #8)
    assert result.path.read_bytes() == DATA
    (start,) = range_start(https_server, "/b/f.bin")
    assert 0 < start <= 200_000
    assert "if-range" not in https_server.requests_for("/b/f.bin")[0].headers  # other server


def test_same_source_resumes_with_if_range(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, stall_after=250_000, misbehave_first=1, etag="v1")
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert [a.reason for a in result.attempts] == [Reason.STALLED, None]
    assert range_start(https_server, "/f.bin")[0] == 0
    assert 0 < range_start(https_server, "/f.bin")[1] <= 250_000
    assert https_server.requests_for("/f.bin")[1].headers["if-range"] == '"v1"'
    assert result.path.read_bytes() == DATA


def test_without_a_pin_other_sources_start_over(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route("/a/f.bin", body=DATA, truncate_after=200_000)
    second = https_server.route("/b/f.bin", body=DATA)
    result = robustfetch.fetch(first, None, [second], dest=dest_dir, **opts)
    assert result.sha256 == DIGEST
    assert range_start(https_server, "/b/f.bin") == [0]


def test_a_source_ignoring_range_costs_only_a_restart(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route("/a/f.bin", body=DATA, truncate_after=200_000)
    second = https_server.route("/b/f.bin", body=DATA, ranges=False)
    result = robustfetch.fetch(first, DIGEST, [second], dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert range_start(https_server, "/b/f.bin")[0] > 0  # asked, and got the whole file
    assert [a.reason for a in result.attempts] == [Reason.TRUNCATED, None]
    assert result.attempts[-1].status == 200


def test_partial_kept_in_the_cache_resumes_in_the_next_run(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    url = https_server.route("/f.bin", body=DATA, stall_after=150_000, misbehave_first=1, etag="e")
    with pytest.raises(FetchError):
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "cache_dir": cache})
    assert (cache / "partial" / DIGEST).stat().st_size == 150_000
    assert os.listdir(dest_dir) == []
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "cache_dir": cache})
    assert result.path.read_bytes() == DATA
    assert range_start(https_server, "/f.bin") == [0, 150_000]
    assert https_server.requests_for("/f.bin")[1].headers["if-range"] == '"e"'
    assert os.listdir(cache / "partial") == []


def test_a_partial_that_no_longer_fits_starts_over(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    (cache / "partial").mkdir(parents=True)
    (cache / "partial" / DIGEST).write_bytes(b"garbage that is not a prefix")
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "cache_dir": cache})
    assert [a.reason for a in result.attempts] == [Reason.HASH_MISMATCH, None]
    assert result.path.read_bytes() == DATA
    assert range_start(https_server, "/f.bin") == [28, 0]


VICTIM = textwrap.dedent(
    """
    import sys, robustfetch
    url, digest, dest, cache, ca = sys.argv[1:]
    robustfetch.fetch(url, digest, dest=dest, cache_dir=cache, ca_bundle=ca)
    """
)


def test_killed_download_resumes_in_the_next_run(
    https_server: Server, ca_bundle: Path, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    data = os.urandom(2 << 20)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "cache"
    url = https_server.route("/f.bin", body=data, trickle=(32 << 10, 0.05), misbehave_first=1)
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, url, digest, str(dest_dir), str(cache), str(ca_bundle)]
    )
    partial = cache / "partial" / digest
    try:
        for _ in range(400):  # at most 20 s
            if partial.exists() and partial.stat().st_size >= 256 << 10:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first run never got going")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    kept = partial.stat().st_size
    result = robustfetch.fetch(url, digest, dest=dest_dir, **{**opts, "cache_dir": cache})
    assert result.path.read_bytes() == data
    assert range_start(https_server, "/f.bin")[-1] == kept
    assert os.listdir(dest_dir) == ["f.bin"]
    assert os.listdir(cache / "partial") == []


def test_everything_received_is_kept_for_the_resume(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    big = os.urandom(6 << 20)  # large enough for the helper thread
    first = https_server.route("/a/f.bin", body=big, truncate_after=5_000_000)
    second = https_server.route("/b/f.bin", body=big)
    result = robustfetch.fetch(
        first, hashlib.sha256(big).hexdigest(), [second], dest=dest_dir, **opts
    )
    assert result.path.read_bytes() == big
    assert range_start(https_server, "/b/f.bin") == [5_000_000]


def test_wrong_content_range_starts_over(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route("/a/f.bin", body=DATA, truncate_after=100_000)
    liar = https_server.route(
        "/b/f.bin", body=DATA, headers={"Content-Range": f"bytes 0-{len(DATA) - 1}/{len(DATA)}"}
    )
    result = robustfetch.fetch(first, DIGEST, [liar], dest=dest_dir, **{**opts, "retries": 1})
    reasons = [a.reason for a in result.attempts]
    assert reasons == [Reason.TRUNCATED, Reason.TRUNCATED, Reason.TRUNCATED, None]
    assert "starting over" in result.attempts[2].detail
    assert range_start(https_server, "/b/f.bin") == [200_000, 0]  # first source: 2 tries
    assert result.path.read_bytes() == DATA
