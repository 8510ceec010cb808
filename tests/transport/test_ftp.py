"""``ftp://`` sources against a real FTP server (pyftpdlib) on 127.0.0.1, some misbehaving.

The server (:mod:`dummyserver.ftp`) runs in a thread for each test and is closed at
teardown. Its handler records every command (``REST 30000``...), and its data channel
can drop the connection after a number of bytes (with a ``426`` reply, or with a lying
``226``) or stop sending without closing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

import robustfetch
from dummyserver import Server, closed_port
from robustfetch import FetchError, Reason

pytest.importorskip("pyftpdlib")
from dummyserver.ftp import CUT, FtpServer, Misbehaviour

DATA = os.urandom(200_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def make_ftp(tmp_path: Path) -> Iterator[Any]:
    servers: list[FtpServer] = []

    def factory(
        mode: Optional[str] = None,
        times: int = 1,
        anonymous: bool = True,
        no_size: bool = False,
        users: Optional[dict[str, str]] = None,
    ) -> FtpServer:
        root = tmp_path / f"ftp-root-{len(servers)}"
        (root / "gnu" / "gengetopt").mkdir(parents=True)
        (root / "gnu" / "gengetopt" / "gengetopt-2.23.tar.xz").write_bytes(DATA)
        behaviour = Misbehaviour(mode, times, no_size)
        server = FtpServer(
            root,
            behaviour,
            anonymous=anonymous,
            users={"user": "secret"} if users is None else users,
        )
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.close()


PATH = "/gnu/gengetopt/gengetopt-2.23.tar.xz"


def test_pinned_ftp_download_is_verified(
    make_ftp: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp()
    result = robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, **opts)
    assert (result.url, result.path.read_bytes()) == (ftp.url(PATH), DATA)
    assert result.attempts[-1].status is None  # no HTTP status over ftp (audit #8)
    assert result.path == dest_dir / "gengetopt-2.23.tar.xz"
    commands = ftp.behaviour.commands
    assert "TYPE I" in commands and ("PASV" in commands or "EPSV" in commands)
    assert not [c for c in commands if c.startswith(("PORT", "EPRT"))]


def test_ftp_without_a_pin_needs_allow_http(
    make_ftp: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp()
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(ftp.url(PATH), dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.INSECURE_REFUSED]
    assert "ftp without a pinned hash" in info.value.attempts[0].detail
    assert ftp.behaviour.commands == []
    result = robustfetch.fetch(ftp.url(PATH), dest=dest_dir, allow_http=True, **opts)
    assert result.sha256 == DIGEST


@pytest.mark.parametrize("mode", ["abort", "lie"])
def test_a_dropped_data_connection_resumes_with_rest(
    mode: str, make_ftp: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp(mode)
    result = robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert [a.reason for a in result.attempts] == [Reason.TRUNCATED, None]
    assert result.attempts[-1].status is None  # a REST resume is no 206 either
    assert f"after {CUT} of {len(DATA)} bytes" in result.attempts[0].detail
    assert result.path.read_bytes() == DATA
    retrievals = [c for c in ftp.behaviour.commands if c.startswith(("REST", "RETR"))]
    assert retrievals == [
        "RETR gengetopt-2.23.tar.xz",
        f"REST {CUT}",
        "RETR gengetopt-2.23.tar.xz",
    ]


def test_without_size_the_final_reply_tells_an_aborted_transfer(
    make_ftp: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp("abort", no_size=True)
    result = robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, **{**opts, "retries": 1})
    assert [a.reason for a in result.attempts] == [Reason.TRUNCATED, None]
    assert "426" in result.attempts[0].detail
    assert f"REST {CUT}" in ftp.behaviour.commands
    assert result.path.read_bytes() == DATA


def test_a_truncated_ftp_transfer_resumes_on_the_next_source(
    make_ftp: Any, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp("abort")
    mirror = https_server.route(f"/m{PATH}", body=DATA)
    result = robustfetch.fetch(ftp.url(PATH), DIGEST, [mirror], dest=dest_dir, **opts)
    assert [a.reason for a in result.attempts] == [Reason.TRUNCATED, None]
    (request,) = https_server.requests_for(f"/m{PATH}")
    assert request.headers.get("range") == f"bytes={CUT}-"
    assert result.path.read_bytes() == DATA


def test_a_stalled_data_connection_is_stalled(
    make_ftp: Any, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp("stall")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.STALLED]
    assert "stall_timeout" in info.value.attempts[0].detail
    assert os.listdir(dest_dir) == []


def test_missing_file_is_not_found_and_the_next_source_is_tried(
    make_ftp: Any, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp()
    missing = ftp.url("/gnu/gengetopt/gengetopt-9.9.tar.xz")
    missing_folder = ftp.url("/gnu/nothing/gengetopt-2.23.tar.xz")
    mirror = https_server.route("/m/gengetopt-9.9.tar.xz", body=DATA)
    result = robustfetch.fetch(missing, DIGEST, [missing_folder, mirror], dest=dest_dir, **opts)
    assert [a.reason for a in result.attempts] == [Reason.NOT_FOUND, Reason.NOT_FOUND, None]
    assert "550" in result.attempts[0].detail and "550" in result.attempts[1].detail


def test_a_refused_login_says_so(make_ftp: Any, opts: dict[str, Any], dest_dir: Path) -> None:
    ftp = make_ftp(anonymous=False)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, **opts)
    (attempt,) = info.value.attempts
    assert attempt.reason is Reason.HTTP_STATUS
    assert "FTP login refused (530" in attempt.detail


def test_nothing_listens_is_connect(opts: dict[str, Any], dest_dir: Path) -> None:
    url = f"ftp://127.0.0.1:{closed_port()}{PATH}"
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.CONNECT]


def test_ftp_urls_are_accepted_and_gopher_is_not(dest_dir: Path) -> None:
    with pytest.raises(ValueError, match="unsupported URL scheme 'gopher'"):
        robustfetch.fetch("gopher://example.org/f.tgz", DIGEST, dest=dest_dir)
    with pytest.raises(ValueError, match="no host"):
        robustfetch.fetch("ftp:///f.tgz", DIGEST, dest=dest_dir)


def test_the_name_look_up_ends_by_the_deadline(
    opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that hangs costs the deadline, not the resolver's own time."""
    import socket
    import threading

    release, ended = threading.Event(), threading.Event()
    guarded = socket.getaddrinfo

    def hanging(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "ftp.example.test":
            return guarded(host, *args, **kwargs)
        release.wait(10)  # bounded: a failing test ends too
        ended.set()
        raise socket.gaierror(socket.EAI_AGAIN, "resolver hung")

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        with pytest.raises(FetchError) as info:
            robustfetch.fetch(
                f"ftp://ftp.example.test{PATH}", DIGEST, dest=dest_dir, **{**opts, "deadline": 1.0}
            )
        assert not ended.is_set()  # the fetch did not wait for the resolver
    finally:
        release.set()
    assert [a.reason for a in info.value.attempts] == [Reason.TIMEOUT]
