"""Each Reason the engine produces, produced by a server that really behaves so."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
import robustfetch.engine.walk
from dummyserver import Server, closed_port
from robustfetch import FetchError, Reason

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


def fail(url: str, *args: Any, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, *args, **kwargs)
    return info.value


def reasons(attempts: list[robustfetch.Attempt]) -> list[Reason | None]:
    return [a.reason for a in attempts]


def assert_clean(folder: Path, *expected: str) -> None:
    """Nothing but ``expected`` in ``folder``: no staging file survived."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)


def test_success_records_one_attempt_and_writes_exact_bytes(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/pkg-1.0.tar.gz", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path == dest_dir / "pkg-1.0.tar.gz"
    assert result.path.read_bytes() == DATA
    assert (result.url, result.sha256, result.size, result.from_cache) == (
        url,
        DIGEST,
        len(DATA),
        False,
    )
    assert reasons(result.attempts) == [None]
    assert os.fspath(result) == str(result.path)
    assert_clean(dest_dir, "pkg-1.0.tar.gz")


def test_not_found_moves_on_at_once(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    missing = https_server.route("/a/f.bin", status=404, body=b"gone")
    good = https_server.route("/b/f.bin", body=DATA)
    result = robustfetch.fetch(missing, DIGEST, [good], dest=dest_dir, **{**opts, "retries": 3})
    assert reasons(result.attempts) == [Reason.NOT_FOUND, None]
    assert result.attempts[0].status == 404
    assert https_server.hits("/a/f.bin") == 1
    assert result.url == good


def test_server_error_is_retried_then_succeeds(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, fail_first=2, fail_status=503)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "retries": 2})
    assert reasons(result.attempts) == [Reason.HTTP_STATUS, Reason.HTTP_STATUS, None]
    assert [a.status for a in result.attempts] == [503, 503, 200]
    assert https_server.hits("/f.bin") == 3


def test_retries_are_bounded(https_server: Server, opts: dict[str, Any], dest_dir: Path) -> None:
    url = https_server.route("/f.bin", status=500)
    error = fail(url, DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert reasons(error.attempts) == [Reason.HTTP_STATUS, Reason.HTTP_STATUS]
    assert "HTTP 500" in str(error)
    assert_clean(dest_dir)


def test_retry_after_is_honoured_but_capped(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(robustfetch.engine.walk, "_sleep", waits.append)
    url = https_server.route(
        "/f.bin", body=DATA, fail_first=2, fail_status=429, fail_headers={"Retry-After": "3600"}
    )
    options = {**opts, "retries": 2, "max_retry_after": 7.5}
    robustfetch.fetch(url, DIGEST, dest=dest_dir, **options)
    assert waits == [7.5, 7.5]


def test_client_errors_are_not_retried(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", status=403, body=b"forbidden")
    error = fail(url, DIGEST, dest=dest_dir, **{**opts, "retries": 3})
    assert reasons(error.attempts) == [Reason.HTTP_STATUS]
    assert error.attempts[0].status == 403


def test_fastly_sni_403_is_sni_required(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    body = b"Client does not support Server Name Indication (SNI), which is required"
    url = https_server.route("/f.bin", status=403, body=body)
    error = fail(url, DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.SNI_REQUIRED]


def test_stall_mid_body_is_stalled_and_the_fallback_serves(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    stalled = https_server.route("/s/f.bin", body=DATA, stall_after=100_000)
    good = https_server.route("/g/f.bin", body=DATA)
    result = robustfetch.fetch(stalled, DIGEST, [good], dest=dest_dir, **{**opts, "retries": 2})
    assert reasons(result.attempts) == [Reason.STALLED, None]
    assert f"of {len(DATA)} bytes" in result.attempts[0].detail
    assert "0.5 s" in result.attempts[0].detail
    assert result.path.read_bytes() == DATA
    assert_clean(dest_dir, "f.bin")


def test_no_answer_is_timeout(https_server: Server, opts: dict[str, Any], dest_dir: Path) -> None:
    url = https_server.route("/f.bin", body=DATA, hang_before_headers=True)
    error = fail(url, DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.TIMEOUT]
    assert "no answer within 0.5 s (stall_timeout)" in error.attempts[0].detail
    assert_clean(dest_dir)


def test_a_hung_last_source_is_retried(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, hang_before_headers=True)
    error = fail(url, DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert reasons(error.attempts) == [Reason.TIMEOUT, Reason.TIMEOUT]


@pytest.mark.parametrize(
    "fault",
    [
        {"truncate_after": 1000},
        {"content_length": len(DATA) + 500},
        {"reset_after": 5000},
    ],
    ids=["short-body", "lying-length", "reset"],
)
def test_body_cut_short_is_truncated(
    fault: dict[str, int], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, **fault)
    error = fail(url, DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.TRUNCATED]
    assert_clean(dest_dir)


def test_truncation_is_transient(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, truncate_after=10, misbehave_first=1)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert reasons(result.attempts) == [Reason.TRUNCATED, None]


def test_refused_connection_is_connect_and_retried(opts: dict[str, Any], dest_dir: Path) -> None:
    url = f"https://127.0.0.1:{closed_port()}/f.bin"
    error = fail(url, DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert reasons(error.attempts) == [Reason.CONNECT, Reason.CONNECT]
    assert "refused" in error.attempts[0].detail.lower()


def test_hash_mismatch_moves_on_without_retry(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    bad = https_server.route("/bad/f.bin", body=DATA[:-1] + b"x")
    good = https_server.route("/good/f.bin", body=DATA)
    result = robustfetch.fetch(bad, DIGEST, [good], dest=dest_dir, **{**opts, "retries": 3})
    assert reasons(result.attempts) == [Reason.HASH_MISMATCH, None]
    detail = result.attempts[0].detail
    assert DIGEST in detail and hashlib.sha256(DATA[:-1] + b"x").hexdigest() in detail
    assert https_server.hits("/bad/f.bin") == 1


def test_every_given_hash_must_match(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    wrong512 = hashlib.sha512(b"other").hexdigest()
    error = fail(url, DIGEST, dest=dest_dir, hashes={"sha512": wrong512}, **opts)
    assert reasons(error.attempts) == [Reason.HASH_MISMATCH]
    assert "sha512" in error.attempts[0].detail
    good512 = hashlib.sha512(DATA).hexdigest()
    result = robustfetch.fetch(url, dest=dest_dir, hashes={"sha512": good512}, **opts)
    assert result.sha256 == DIGEST


def test_fragment_digest_is_verified(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    error = fail(url + "#sha256=" + "0" * 64, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.HASH_MISMATCH]
    assert https_server.requests_for("/f.bin")[0].path == "/f.bin"  # fragment never sent
    assert robustfetch.fetch(url + "#sha256=" + DIGEST, dest=dest_dir, **opts).size == len(DATA)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_wrong_size_is_size_mismatch(
    chunked: bool, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, chunked=chunked)
    error = fail(url, DIGEST, dest=dest_dir, size=len(DATA) + 1, **opts)
    assert reasons(error.attempts) == [Reason.SIZE_MISMATCH]
    assert str(len(DATA) + 1) in error.attempts[0].detail


@pytest.mark.parametrize("chunked", [False, True], ids=["announced", "streamed"])
def test_over_max_size_is_too_large(
    chunked: bool, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, chunked=chunked)
    error = fail(url, DIGEST, dest=dest_dir, max_size=1000, **opts)
    assert reasons(error.attempts) == [Reason.TOO_LARGE]
    assert_clean(dest_dir)


def test_slow_source_is_too_slow(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    slow = https_server.route("/slow/f.bin", body=DATA, trickle=(200, 0.02))
    good = https_server.route("/good/f.bin", body=DATA)
    options = {**opts, "min_speed": 1_000_000, "min_speed_window": 0.3}
    result = robustfetch.fetch(slow, DIGEST, [good], dest=dest_dir, **options)
    assert reasons(result.attempts) == [Reason.TOO_SLOW, None]
    assert "min_speed" in result.attempts[0].detail


def test_deadline_covers_all_sources(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    hung = https_server.route("/h/f.bin", body=DATA, hang_before_headers=True)
    good = https_server.route("/g/f.bin", body=DATA)
    options = {**opts, "stall_timeout": 30.0, "deadline": 0.4}
    error = fail(hung, DIGEST, [good], dest=dest_dir, **options)
    assert reasons(error.attempts) == [Reason.TIMEOUT, Reason.TIMEOUT]
    assert "deadline" in error.attempts[0].detail
    assert "not tried" in error.attempts[1].detail
    assert https_server.hits("/g/f.bin") == 0


def test_redirect_loop_is_too_many_redirects(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    a = https_server.url("/a")
    b = https_server.route("/b", status=302, headers={"Location": a})
    https_server.route("/a", status=301, headers={"Location": b})
    error = fail(a, DIGEST, dest=dest_dir / "f.bin", max_redirects=3, **opts)
    assert reasons(error.attempts) == [Reason.TOO_MANY_REDIRECTS]
    assert https_server.hits("/a") + https_server.hits("/b") == 4


def test_redirects_are_followed(https_server: Server, opts: dict[str, Any], dest_dir: Path) -> None:
    https_server.route("/real/f.bin", body=DATA)
    url = https_server.route("/old/f.bin", status=308, headers={"Location": "/real/f.bin"})
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path == dest_dir / "f.bin"
    assert https_server.hits("/real/f.bin") == 1


def test_https_to_http_redirect_needs_a_pinned_hash(
    https_server: Server, http_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    plain = http_server.route("/f.bin", body=DATA)
    url = https_server.route("/f.bin", status=302, headers={"Location": plain})
    error = fail(url, dest=dest_dir, allow_http=True, **opts)
    assert reasons(error.attempts) == [Reason.REDIRECT_REFUSED]
    assert http_server.hits("/f.bin") == 0
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA


def test_plain_http_needs_a_pin_or_allow_http(
    http_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = http_server.route("/f.bin", body=DATA)
    error = fail(url, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.INSECURE_REFUSED]
    assert http_server.connections == 0
    assert robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts).size == len(DATA)
    assert robustfetch.fetch(url, dest=dest_dir, allow_http=True, **opts).sha256 == DIGEST


def test_gzip_content_encoding_is_never_decoded(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    tarball = gzip.compress(DATA)
    url = https_server.route(
        "/f.tar.gz", body=tarball, headers={"Content-Encoding": "gzip", "Content-Type": "x/y"}
    )
    result = robustfetch.fetch(
        url,
        hashlib.sha256(tarball).hexdigest(),
        dest=dest_dir,
        headers={"Accept-Encoding": "gzip"},
        **opts,
    )
    assert result.path.read_bytes() == tarball
    assert https_server.requests_for("/f.tar.gz")[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("wrong_host", Reason.CERT_HOSTNAME),
        ("untrusted", Reason.CERT_UNTRUSTED),
        ("expired", Reason.CERT_EXPIRED),
    ],
)
def test_certificate_problems(
    kind: str, reason: Reason, make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    server = make_server(kind)
    url = server.route("/f.bin", body=DATA)
    error = fail(url, DIGEST, dest=dest_dir, **{**opts, "retries": 2})
    assert reasons(error.attempts) == [reason]
    assert server.hits("/f.bin") == 0
    if reason is Reason.CERT_UNTRUSTED:
        assert str(opts["ca_bundle"]) in error.attempts[0].detail


def test_error_message_names_every_source(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    dead = f"https://127.0.0.1:{closed_port()}/f.bin"
    missing = https_server.route("/m/f.bin", status=404)
    corrupt = https_server.route("/c/f.bin", body=b"nope")
    error = fail(dead, DIGEST, [missing, corrupt], dest=dest_dir, **opts)
    text = str(error)
    for url, reason in [(dead, "connect"), (missing, "not_found"), (corrupt, "hash_mismatch")]:
        assert f"{url}: {reason}: " in text
    assert "3 sources failed" in text


def test_unknown_host_is_dns(opts: dict[str, Any], dest_dir: Path) -> None:
    # conftest's guard answers every non-loopback lookup with EAI_NONAME locally.
    error = fail("https://no-such-host.invalid/f.bin", DIGEST, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.DNS]
    assert (
        "no-such-host.invalid" in error.attempts[0].detail or "lookup" in error.attempts[0].detail
    )


def test_deadline_stops_a_body_that_stalls(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, stall_after=1000)
    error = fail(url, DIGEST, dest=dest_dir, **{**opts, "stall_timeout": 30.0, "deadline": 0.5})
    assert reasons(error.attempts) == [Reason.TIMEOUT]
    assert "deadline of 0.5 s reached after 1000 of" in error.attempts[0].detail
    assert_clean(dest_dir)
