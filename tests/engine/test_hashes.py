"""Hashes in every shape, witnesses (server digests, index listings), error pages, diagnoses."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Certs, RawServer, Server
from dummyserver._net import Conn, Stopped
from robustfetch import FetchError, Reason
from robustfetch.api import Fetcher, plan_job
from robustfetch.policy.plan import Source

DATA = os.urandom(200_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
SHA512 = hashlib.sha512(DATA).hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def sri(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def fail(url: str, *args: Any, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, *args, **kwargs)
    return info.value


def reasons(attempts: list[robustfetch.Attempt]) -> list[Reason | None]:
    return [a.reason for a in attempts]


# -- every digest shape ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sha256",
    [
        DIGEST,
        DIGEST.upper(),
        "sha256:" + DIGEST,
        sri("sha256", DATA),
        [OTHER, DIGEST],  # pip's several --hash values: any may match
        ("sha256:" + OTHER, sri("sha256", DATA)),
    ],
)
def test_sha256_shapes_and_any_of(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, sha256: Any
) -> None:
    url = https_server.route("/pkg-1.0.tar.gz", body=DATA)
    result = robustfetch.fetch(url, sha256, dest=dest_dir, **opts)
    assert (result.sha256, result.verified_by) == (DIGEST, "pin")
    assert result.path.read_bytes() == DATA


def test_any_of_none_matching_names_every_candidate(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    third = hashlib.sha256(b"third").hexdigest()
    error = fail(url, [OTHER, sri("sha256", b"third")], dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.HASH_MISMATCH]
    assert OTHER in error.attempts[0].detail and third in error.attempts[0].detail
    assert DIGEST in error.attempts[0].detail
    assert list(dest_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "ok"),
    [
        ({"integrity": sri("sha512", DATA)}, True),
        # only the strongest algorithm counts: a wrong sha256 beside a right sha512
        ({"integrity": f"{sri('sha256', b'x')} {sri('sha512', DATA)}"}, True),
        # ... and a right sha384 beside a wrong sha512 fails
        ({"integrity": f"{sri('sha384', DATA)} {sri('sha512', b'x')}"}, False),
        # any of the strongest algorithm's values; SRI options after "?" ignored
        ({"integrity": f"{sri('sha512', b'x')} {sri('sha512', DATA)}?ct=application/gzip"}, True),
        ({"hashes": {"sha512": [b64(hashlib.sha512(b"x").hexdigest()), SHA512]}}, True),
        ({"hashes": {"SHA-512": "sha512:" + SHA512, "sha256": DIGEST}}, True),
        # every algorithm given must match
        ({"hashes": {"sha512": SHA512, "sha256": OTHER}}, False),
    ],
)
def test_integrity_and_hashes(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    options: dict[str, Any],
    ok: bool,
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    if ok:
        result = robustfetch.fetch(url, dest=dest_dir, **opts, **options)
        assert (result.sha256, result.verified_by) == (DIGEST, "pin")
    else:
        error = fail(url, dest=dest_dir, **opts, **options)
        assert reasons(error.attempts) == [Reason.HASH_MISMATCH]


@pytest.mark.parametrize(
    ("sha256", "options"),
    [
        ("sha256-" + "A" * 10, {}),
        (["0" * 64, "zz"], {}),
        ([], {}),
        ("sha512-" + b64(SHA512), {}),
        (None, {"integrity": "sha512-@@@"}),
        (None, {"integrity": "nonsense"}),
        (None, {"integrity": "md5-" + b64(hashlib.md5(DATA).hexdigest())}),
        (None, {"hashes": {"sha512": ["0" * 128, "short"]}}),
        (None, {"hashes": {"sha512": 42}}),
    ],
)
def test_malformed_digest_is_a_value_error_before_any_socket(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, sha256: Any, options: Any
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    with pytest.raises(ValueError) as info:
        robustfetch.fetch(url, sha256, dest=dest_dir, **opts, **options)
    given = sha256 if sha256 is not None else next(iter(options.values()))
    if isinstance(given, dict):
        given = next(iter(given.values()))
    shown = [given] if not isinstance(given, list) else given or ["empty"]
    assert any(str(part) in str(info.value) for part in shown)
    assert https_server.requests == []


def test_md5_alone_warns(https_server: Server, opts: dict[str, Any], dest_dir: Path) -> None:
    url = https_server.route("/f.bin", body=DATA)
    with pytest.warns(robustfetch.WeakHashWarning):
        result = robustfetch.fetch(
            url, dest=dest_dir, hashes={"md5": hashlib.md5(DATA).hexdigest()}, **opts
        )
    assert result.verified_by is None  # md5 checks for corruption, but vouches for nothing


def test_fragment_still_honoured_with_a_list(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(f"{url}#sha256={DIGEST}", [OTHER, DIGEST], dest=dest_dir, **opts)
    assert result.verified_by == "pin"
    with pytest.raises(ValueError, match="contradictory"):
        robustfetch.fetch(f"{url}#sha256={DIGEST}", [OTHER], dest=dest_dir, **opts)


def test_cache_hit_for_any_candidate(https_server: Server, opts: dict[str, Any]) -> None:
    url = https_server.route("/f.bin", body=DATA)
    cached = {**opts, "cache_dir": opts["ca_bundle"].parent / f"cache-{os.urandom(4).hex()}"}
    first = robustfetch.fetch(url, DIGEST, **cached)
    assert (first.from_cache, first.verified_by) == (False, "pin")
    hit = robustfetch.fetch(url, [OTHER, sri("sha256", DATA)], **cached)
    assert (hit.from_cache, hit.sha256, hit.verified_by) == (True, DIGEST, "pin")
    assert https_server.hits("/f.bin") == 1


# -- witnesses ------------------------------------------------------------------------


def test_want_repr_digest_is_sent(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, dest=dest_dir, **opts)
    want = https_server.requests_for("/f.bin")[0].headers["want-repr-digest"]
    assert "sha-256=" in want and "sha-512=" in want


@pytest.mark.parametrize(
    "headers",
    [
        {"Repr-Digest": f"sha-256=:{b64(DIGEST)}:"},
        {"Repr-Digest": f"sha-512=:{b64(SHA512)}:, md5=:AAAA:"},
        {"Digest": f"SHA-256={b64(DIGEST)}"},
        {"Digest": f"md5=abc, sha-512={b64(SHA512)}"},
    ],
)
def test_server_digest_vouches(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, headers: dict[str, str]
) -> None:
    url = https_server.route("/f.bin", body=DATA, headers=headers)
    result = robustfetch.fetch(url, dest=dest_dir, **opts)
    assert (result.sha256, result.verified_by) == (DIGEST, "server")


@pytest.mark.parametrize(
    "headers",
    [
        {"Repr-Digest": f"sha-256=:{b64(OTHER)}:"},
        {"Repr-Digest": f"sha-512=:{b64(hashlib.sha512(b'x').hexdigest())}:"},
        {"Digest": f"SHA-256={b64(OTHER)}"},
    ],
)
def test_wrong_server_digest_is_a_mismatch_and_the_next_source_serves(
    make_server: Any, opts: dict[str, Any], dest_dir: Path, headers: dict[str, str]
) -> None:
    liar, honest = make_server(), make_server()
    bad = liar.route("/f.bin", body=DATA[:-1] + b"!", headers=headers)
    good = honest.route("/f.bin", body=DATA)
    result = robustfetch.fetch(bad, None, [good], dest=dest_dir, **opts)
    assert reasons(result.attempts) == [Reason.HASH_MISMATCH, None]
    assert "from the server's digest header" in result.attempts[0].detail
    assert (result.url, result.verified_by, result.path.read_bytes()) == (good, None, DATA)


def test_server_digest_contradicting_the_pin_fails_before_the_body(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    liar, honest = make_server(), make_server()
    bad = liar.route("/f.bin", body=DATA, headers={"Repr-Digest": f"sha-256=:{b64(OTHER)}:"})
    good = honest.route("/f.bin", body=DATA)
    result = robustfetch.fetch(bad, DIGEST, [good], dest=dest_dir, **opts)
    assert reasons(result.attempts) == [Reason.HASH_MISMATCH, None]
    assert "digest header" in result.attempts[0].detail and OTHER in result.attempts[0].detail
    assert result.verified_by == "pin"


def test_server_digest_ignored_for_an_encoded_body(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    packed = gzip.compress(DATA)
    # The digest of the decoded bytes: right for the representation, wrong for what we keep.
    headers = {"Content-Encoding": "gzip", "Repr-Digest": f"sha-256=:{b64(DIGEST)}:"}
    url = https_server.route("/f.bin", body=packed, headers=headers)
    result = robustfetch.fetch(url, dest=dest_dir, **opts)
    assert (result.sha256, result.verified_by) == (hashlib.sha256(packed).hexdigest(), None)


def test_server_digest_ignored_for_a_partial_body(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    one, two = make_server(), make_server()
    cut = one.route("/f.bin", body=DATA, truncate_after=50_000)
    # A 206 carries the digest of the whole file, which these bytes are not: never checked.
    wrong = {"Repr-Digest": f"sha-256=:{b64(OTHER)}:", "Digest": f"SHA-256={b64(OTHER)}"}
    rest = two.route("/f.bin", body=DATA, headers=wrong)
    result = robustfetch.fetch(cut, DIGEST, [rest], dest=dest_dir, **opts)
    assert reasons(result.attempts) == [Reason.TRUNCATED, None]
    assert two.requests_for("/f.bin")[0].headers.get("range") == "bytes=50000-"
    assert (result.sha256, result.verified_by) == (DIGEST, "pin")


def test_server_digest_of_a_full_answer_still_holds_after_a_resume(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    headers = {"Repr-Digest": f"sha-256=:{b64(DIGEST)}:"}
    url = https_server.route(
        "/f.bin", body=DATA, headers=headers, etag="v1", truncate_after=50_000, misbehave_first=1
    )
    result = robustfetch.fetch(url, dest=dest_dir, **{**opts, "retries": 1})
    assert reasons(result.attempts) == [Reason.TRUNCATED, None]
    assert https_server.requests_for("/f.bin")[1].headers.get("range") == "bytes=50000-"
    # the digest came with the full answer, for the same validator: the whole file matched it
    assert (result.sha256, result.verified_by) == (DIGEST, "server")


def test_server_digest_does_not_unlock_plain_http(
    http_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = http_server.route(
        "/f.bin", body=DATA, headers={"Repr-Digest": f"sha-256=:{b64(DIGEST)}:"}
    )
    error = fail(url, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.INSECURE_REFUSED]
    assert http_server.requests == []


def test_no_witness_reports_the_digest_unverified(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, dest=dest_dir, **opts)
    assert (result.sha256, result.verified_by) == (DIGEST, None)


def run_sources(
    opts: dict[str, Any], dest: Path, sources: list[Source], sha256: Any = None
) -> robustfetch.FetchResult:
    """Fetch with the given sources, as the index/Metalink resolvers hand them over."""
    with Fetcher(**opts) as fetcher:
        job = plan_job(sources[0].url, sha256, (), dest, fetcher.options)
        return fetcher._run(replace(job, sources=sources), fetcher.options)


@pytest.mark.parametrize(
    ("origin", "vouched"),
    [("index", "index"), ("find_links", "index"), ("pypi", "index"), ("metalink", "metalink")],
)
def test_listed_hash_vouches(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, origin: str, vouched: str
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    result = run_sources(opts, dest_dir, [Source(url, origin, expected={"sha256": DIGEST})])
    assert (result.sha256, result.verified_by) == (DIGEST, vouched)


def test_listed_hash_failing_moves_on(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    one, two = make_server(), make_server()
    wrong = one.route("/f.bin", body=DATA)
    right = two.route("/f.bin", body=DATA)
    sources = [
        Source(wrong, "index", expected={"sha256": OTHER}),
        Source(right, "find_links", expected={"sha512": SHA512}),
    ]
    result = run_sources(opts, dest_dir, sources)
    assert reasons(result.attempts) == [Reason.HASH_MISMATCH, None]
    assert "the sha256 its index listed" in result.attempts[0].detail
    assert (result.url, result.verified_by) == (right, "index")


def test_listed_hash_contradicting_the_pin_is_not_downloaded(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    one, two = make_server(), make_server()
    listed = one.route("/f.bin", body=DATA)
    plain = two.route("/f.bin", body=DATA)
    sources = [Source(listed, "index", expected={"sha256": OTHER}), Source(plain, "fallback")]
    result = run_sources(opts, dest_dir, sources, sha256=[DIGEST, hashlib.sha256(b"y").hexdigest()])
    assert reasons(result.attempts) == [Reason.HASH_MISMATCH, None]
    assert OTHER in result.attempts[0].detail
    assert one.requests == []
    assert result.verified_by == "pin"


def test_listed_hash_and_server_digest_disagreeing_is_a_mismatch(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route(
        "/f.bin", body=DATA, headers={"Repr-Digest": f"sha-256=:{b64(OTHER)}:"}
    )
    with pytest.raises(FetchError) as info:
        run_sources(opts, dest_dir, [Source(url, "index", expected={"sha256": DIGEST})])
    assert reasons(info.value.attempts) == [Reason.HASH_MISMATCH]


# -- error pages ----------------------------------------------------------------------

PORTAL_PAGE = 32 << 20


class Portal:
    """Answers every request with a huge HTML login page; counts the body bytes it sent."""

    def __init__(self, certs: Certs, content_type: str = "text/html; charset=utf-8") -> None:
        self.sent = 0
        self.done = threading.Event()
        self.content_type = content_type
        self.server = RawServer(self.handle, certs.context_for("good"))

    def handle(self, conn: Conn) -> None:
        try:
            if conn.read_head() is None:
                return
            head = (
                "HTTP/1.1 200 OK\r\n"
                f"Content-Type: {self.content_type}\r\n"
                f"Content-Length: {PORTAL_PAGE}\r\n\r\n"
            )
            # A small send buffer: what the client does not read is not sent either.
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            conn.send_all(head.encode())
            page = (
                b"<!DOCTYPE html>\n<html><head><title>Hotel &amp; Spa WiFi: log in</title></head>"
            )
            piece = page + b"<p>" + b"x" * (65536 - len(page) - 3)
            filler = b" " * 65536
            while self.sent < PORTAL_PAGE:
                conn.send_all(piece if self.sent == 0 else filler)
                self.sent += 65536
        except (OSError, Stopped):
            pass
        finally:
            self.done.set()


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_captive_portal_is_an_error_page_abandoned_at_once(
    certs: Certs, opts: dict[str, Any], dest_dir: Path, content_type: str
) -> None:
    portal = Portal(certs, content_type)
    try:
        url = f"https://localhost:{portal.server.port}/pkg-1.0.tar.gz"
        error = fail(url, DIGEST, dest=dest_dir, **{**opts, "stall_timeout": 5.0})
        assert portal.done.wait(10)
    finally:
        portal.server.close()
    assert reasons(error.attempts) == [Reason.ERROR_PAGE]
    detail = error.attempts[0].detail
    assert "Hotel & Spa WiFi: log in" in detail
    assert "status 200" in detail and url in detail and "captive portal" in detail
    assert error.attempts[0].status == 200
    # the page was abandoned after its first chunk: most of it was never even sent
    assert portal.sent < PORTAL_PAGE // 2
    assert list(dest_dir.iterdir()) == []


def test_error_page_names_the_url_after_redirects(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    login = https_server.route(
        "/login", body=b"<html><title>Sign in</title>", headers={"Content-Type": "text/html"}
    )
    url = https_server.route("/f.tar.gz", status=302, headers={"Location": login})
    error = fail(url, dest=dest_dir, **opts)
    assert reasons(error.attempts) == [Reason.ERROR_PAGE]
    assert login in error.attempts[0].detail and url in error.attempts[0].detail
    assert "Sign in" in error.attempts[0].detail


def test_html_wanted_is_not_an_error_page(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    page = b"<!doctype html><title>docs</title>"
    url = https_server.route("/index.html", body=page, headers={"Content-Type": "text/html"})
    assert robustfetch.fetch(url, dest=dest_dir, **opts).path.read_bytes() == page


def test_archive_labelled_html_is_not_an_error_page(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    packed = gzip.compress(DATA)
    url = https_server.route("/f.tar.gz", body=packed, headers={"Content-Type": "text/html"})
    assert robustfetch.fetch(url, dest=dest_dir, **opts).path.read_bytes() == packed


# -- mismatch diagnosis ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "size", "words"),
    [
        ("f.tar.gz", b"", None, "empty"),
        ("f.tar.gz", b"PK\x03\x04" + DATA, None, "zip"),
        ("f.zip", b"\xfd7zXZ\x00" + DATA, None, "xz"),
        ("f.tar.gz", gzip.compress(DATA), None, "gzip archive as the name says"),
        ("f.bin", DATA[::-1], len(DATA), "right size"),
    ],
)
def test_mismatch_says_what_the_bytes_look_like(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    name: str,
    body: bytes,
    size: int | None,
    words: str,
) -> None:
    url = https_server.route(f"/{name}", body=body)
    error = fail(url, DIGEST, dest=dest_dir, size=size, **opts)
    assert reasons(error.attempts) == [Reason.HASH_MISMATCH]
    assert words in error.attempts[0].detail


# -- command line ---------------------------------------------------------------------


def test_cli_repeatable_sha256_integrity_and_verified_by(
    make_server: Any, ca_bundle: Path, dest_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from robustfetch.cli.main import main

    server = make_server()
    plain = server.route("/a.bin", body=DATA)
    vouched = server.route("/b.bin", body=DATA, headers={"Repr-Digest": f"sha-256=:{b64(DIGEST)}:"})
    base = ["--ca-bundle", str(ca_bundle), "--retries", "0", "--no-cache", "--json"]
    runs = [
        (["fetch", plain, "--sha256", OTHER, "--sha256", sri("sha256", DATA)], "pin"),
        (["fetch", plain, "--integrity", f"{sri('sha256', b'x')} {sri('sha512', DATA)}"], "pin"),
        (["fetch", vouched], "server"),
        (["fetch", plain], None),
    ]
    for index, (args, expected) in enumerate(runs):
        out = dest_dir / f"{index}.bin"
        assert main([*args, "-o", str(out), *base]) == 0
        record = json.loads(capsys.readouterr().out)
        assert (record["sha256"], record["verified_by"]) == (DIGEST, expected)
    assert main(["fetch", plain, "--sha256", OTHER, "-o", str(dest_dir / "x"), *base]) == 1
    failure = json.loads(capsys.readouterr().out)
    assert failure["attempts"][0]["reason"] == "hash_mismatch"
    assert main(["fetch", plain, "--integrity", "sha512-nope", *base]) == 2
    assert "sha512-nope" in capsys.readouterr().err


@pytest.mark.parametrize(("listed", "vouched"), [(DIGEST, "index"), (OTHER, None)])
def test_simple_index_hash_vouches_end_to_end(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, listed: str, vouched: str | None
) -> None:
    missing = https_server.route("/gone/pkg-1.0.tar.gz", status=404, body=b"gone")
    https_server.route("/files/pkg-1.0.tar.gz", body=DATA)
    page = f'<a href="/files/pkg-1.0.tar.gz#sha256={listed}">pkg-1.0.tar.gz</a>'
    https_server.route("/simple/pkg/", body=page.encode(), headers={"Content-Type": "text/html"})
    index = https_server.url("/simple/")
    if vouched is not None:
        result = robustfetch.fetch(missing, dest=dest_dir, index_urls=[index], **opts)
        assert (result.sha256, result.verified_by) == (DIGEST, vouched)
        return
    # the listed hash is wrong for these bytes: a mismatch, and nothing left in dest
    error = fail(missing, dest=dest_dir, index_urls=[index], **opts)
    assert reasons(error.attempts)[-1] is Reason.HASH_MISMATCH
    assert list(dest_dir.iterdir()) == []


def test_resumed_body_labelled_html_is_an_error_page(
    make_server: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    one, two = make_server(), make_server()
    cut = one.route("/f.tar.gz", body=DATA, truncate_after=50_000)
    portal = two.route(
        "/f.tar.gz",
        body=b"<html><title>Log in</title>" + b" " * len(DATA),
        headers={"Content-Type": "text/html"},
    )
    error = fail(cut, DIGEST, [portal], dest=dest_dir, **opts)
    # a 206 of a page: only its Content-Type tells (its bytes start mid-page)
    assert two.requests_for("/f.tar.gz")[0].headers.get("range") == "bytes=50000-"
    assert reasons(error.attempts)[:2] == [Reason.TRUNCATED, Reason.ERROR_PAGE]


def test_metalink_hashes_vouch_as_metalink(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/pkg-1.0.tar.gz", body=DATA)
    document = f"""<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <file name="pkg-1.0.tar.gz">
    <size>{len(DATA)}</size>
    <hash type="sha-256">{DIGEST}</hash>
    <url priority="1">{url}</url>
  </file>
</metalink>"""
    requests = [replace(r, dest=dest_dir) for r in robustfetch.read_metalink(document)]
    (result,) = robustfetch.fetch_many(requests, **opts)
    assert isinstance(result, robustfetch.FetchResult)
    assert (result.sha256, result.verified_by) == (DIGEST, "metalink")
    # the same request written by hand is the caller's pin
    (mine,) = robustfetch.fetch_many([{"url": url, "sha256": DIGEST, "dest": dest_dir}], **opts)
    assert isinstance(mine, robustfetch.FetchResult) and mine.verified_by == "pin"


def test_metalink_requests_equal_plain_requests() -> None:
    document = f"""<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <file name="f.tgz"><hash type="sha-256">{DIGEST}</hash>
    <url>https://a.example/f.tgz</url></file>
</metalink>"""
    (request,) = robustfetch.read_metalink(document)
    plain = robustfetch.Request(
        "https://a.example/f.tgz", sha256=DIGEST, filename="f.tgz", hashes={"sha256": DIGEST}
    )
    assert request == plain and plain == request
    assert repr(request) == repr(plain)
    assert replace(request, dest="x") == replace(plain, dest="x")


def test_hashed_mirror_tried_for_every_candidate(
    opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mirror"
    (folder / "sha256" / DIGEST[:2]).mkdir(parents=True)
    (folder / "sha256" / DIGEST[:2] / DIGEST).write_bytes(DATA)
    dead = "https://127.0.0.1:9/dist/pkg-1.0.tgz"
    # "0" * 64 sorts first (it keys the lock): the mirror must still be asked for DIGEST
    result = robustfetch.fetch(
        dead, ["0" * 64, DIGEST], dest=dest_dir, hashed_mirrors=[folder], **opts
    )
    assert result.url == (folder / "sha256" / DIGEST[:2] / DIGEST).as_uri()
    assert reasons(result.attempts) == [Reason.NOT_FOUND, None]


def test_network_authentication_required_is_an_error_page_not_retried(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    page = b"<html><head><title>Airport WiFi</title></head><body>Accept the terms</body></html>"
    url = https_server.route(
        "/f.tar.gz", status=511, body=page, headers={"Content-Type": "text/html"}
    )
    error = fail(url, DIGEST, dest=dest_dir, **{**opts, "retries": 2})
    assert reasons(error.attempts) == [Reason.ERROR_PAGE]
    assert (
        "Airport WiFi" in error.attempts[0].detail and "captive portal" in error.attempts[0].detail
    )
    assert https_server.hits("/f.tar.gz") == 1
