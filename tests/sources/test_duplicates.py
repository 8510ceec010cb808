"""``Link: <url>; rel=duplicate`` (RFC 6249): copies a response names join the sources last."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


def _cut_short_with_duplicate(server: Server) -> tuple[str, str]:
    duplicate = server.route("/mirror/f.bin", body=DATA)
    url = server.route(
        "/f.bin",
        body=DATA,
        truncate_after=100_000,
        headers={
            "Link": f"<{duplicate}>; rel=duplicate; pri=1; geo=de, "
            f"<{server.url('/x')}>; rel=describedby"
        },
    )
    return url, duplicate


def test_duplicate_completes_a_pinned_download_cut_short(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url, duplicate = _cut_short_with_duplicate(https_server)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert result.url == duplicate
    assert [(a.url, a.reason) for a in result.attempts] == [
        (url, Reason.TRUNCATED),
        (duplicate, None),
    ]
    # The duplicate carried on after the bytes the first answer sent.
    (request,) = https_server.requests_for("/mirror/f.bin")
    assert request.headers.get("range") == "bytes=100000-"
    assert https_server.hits("/x") == 0


def test_duplicates_come_after_the_given_sources(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url, duplicate = _cut_short_with_duplicate(https_server)
    fallback = https_server.route("/fallback/f.bin", status=404)
    result = robustfetch.fetch(url, DIGEST, [fallback], dest=dest_dir, **opts)
    assert [r.path.split("?")[0] for r in https_server.requests] == [
        "/f.bin",
        "/fallback/f.bin",
        "/mirror/f.bin",
    ]
    assert result.url == duplicate


def test_duplicates_are_ignored_without_a_hash_to_check_them(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url, _ = _cut_short_with_duplicate(https_server)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.TRUNCATED]
    assert https_server.hits("/mirror/f.bin") == 0


def test_a_duplicate_may_not_point_at_a_local_file(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    local = tmp_path / "f.bin"
    local.write_bytes(DATA)
    url = https_server.route(
        "/f.bin",
        body=DATA,
        truncate_after=1000,
        headers={"Link": f"<{local.as_uri()}>; rel=duplicate"},
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert [a.url for a in info.value.attempts] == [url]


def test_duplicates_on_a_redirect_are_learnt(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """MirrorBrain announces the copies on its 302; the mirror it picked may fail."""
    duplicate = https_server.route("/copy/f.bin", body=DATA)
    broken = https_server.route("/picked/f.bin", status=404)
    url = https_server.route(
        "/f.bin",
        status=302,
        headers={"Location": broken, "Link": f"<{duplicate}>; rel=duplicate; pri=1"},
    )
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert [(a.url, a.reason) for a in result.attempts] == [
        (url, Reason.NOT_FOUND),
        (duplicate, None),
    ]


def test_duplicates_vouched_for_by_a_server_digest(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """No pin, but the answer's ``Repr-Digest`` vouches for the bytes its duplicates hold."""
    duplicate = https_server.route("/mirror/f.bin", body=DATA)
    digest = base64.b64encode(bytes.fromhex(DIGEST)).decode()
    url = https_server.route(
        "/f.bin",
        body=DATA,
        truncate_after=100_000,
        headers={"Link": f"<{duplicate}>; rel=duplicate", "Repr-Digest": f"sha-256=:{digest}:"},
    )
    result = robustfetch.fetch(url, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA and result.url == duplicate
    assert result.verified_by == "server"
    assert [a.reason for a in result.attempts] == [Reason.TRUNCATED, None]


def test_a_server_digest_vouches_only_for_the_bytes_it_names(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """A duplicate with other bytes than the announcing answer's digest says is a mismatch."""
    duplicate = https_server.route("/mirror/f.bin", body=b"x" * len(DATA))
    digest = base64.b64encode(bytes.fromhex(DIGEST)).decode()
    url = https_server.route(
        "/f.bin",
        body=DATA,
        truncate_after=100_000,
        headers={"Link": f"<{duplicate}>; rel=duplicate", "Repr-Digest": f"sha-256=:{digest}:"},
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, dest=dest_dir, **opts)
    assert [(a.url, a.reason) for a in info.value.attempts] == [
        (url, Reason.TRUNCATED),
        (duplicate, Reason.HASH_MISMATCH),
    ]


def test_a_digest_header_on_a_redirect_vouches_for_nothing(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """A 302's digest describes the redirect's own body, not the file: no duplicate is used."""
    duplicate = https_server.route("/copy/f.bin", body=DATA)
    broken = https_server.route("/picked/f.bin", body=DATA, truncate_after=1000)
    digest = base64.b64encode(bytes.fromhex(DIGEST)).decode()
    url = https_server.route(
        "/f.bin",
        status=302,
        headers={
            "Location": broken,
            "Link": f"<{duplicate}>; rel=duplicate",
            "Repr-Digest": f"sha-256=:{digest}:",
        },
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.TRUNCATED]
    assert https_server.hits("/copy/f.bin") == 0


def test_a_chain_of_announced_duplicates_is_capped_per_request(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """Each copy names one more: the request stops learning after a total cap, not per round."""
    missing = https_server.route("/missing", status=404)
    chain = 100
    for n in range(chain):
        https_server.route(
            f"/d{n}/f.bin",
            status=302,
            headers={
                "Location": missing,
                "Link": f"<{https_server.url(f'/d{n + 1}/f.bin')}>; rel=duplicate",
            },
        )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(https_server.url("/d0/f.bin"), DIGEST, dest=dest_dir, **opts)
    # The first URL, then at most 32 duplicates learnt in total.
    assert len(info.value.attempts) == 33
    assert https_server.hits(f"/d{chain - 1}/f.bin") == 0
