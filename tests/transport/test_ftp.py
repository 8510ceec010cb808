"""``ftp://`` sources against a real FTP server (pyftpdlib) on 127.0.0.1, some misbehaving.

The server runs in a thread for each test and is closed at teardown. Its
handler records every command (``REST 30000``...), and its data channel can
drop the connection after a number of bytes (with a ``426`` reply, or with
a lying ``226``) or stop sending without closing.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

import robustfetch
from dummyserver import Server, closed_port
from robustfetch import FetchError, Reason

with warnings.catch_warnings():
    # pyftpdlib uses asynchat/asyncore, deprecated in Python 3.11 (vendored for 3.12+).
    warnings.simplefilter("ignore", DeprecationWarning)
    pytest.importorskip("pyftpdlib")
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.servers import FTPServer

DATA = os.urandom(200_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
CUT = 30_000


@dataclass
class Misbehaviour:
    """What the data channel does to the first ``times`` transfers."""

    mode: Optional[str] = None  # "abort" (426), "lie" (226), "stall"
    times: int = 1
    no_size: bool = False  # SIZE refused: only the final reply tells a cut transfer
    done: int = 0
    commands: list[str] = field(default_factory=list)


class _Cut:
    """A producer that gives ``limit`` bytes of ``inner``, then nothing (or stalls)."""

    def __init__(self, inner: Any, limit: int, channel: Any) -> None:
        self.inner, self.left, self.channel = inner, limit, channel
        self.pending = b""

    def more(self) -> bytes:
        if self.left <= 0:
            return b""
        data = self.pending or self.inner.more()
        data, self.pending = data[: self.left], data[self.left :]
        self.left -= len(data)
        if self.left <= 0 and self.channel.mode == "stall":
            self.channel.stalled = True  # never writable again: the client waits
        return data


class MisbehavingDTP(DTPHandler):  # type: ignore[misc]
    behaviour: Misbehaviour
    mode: Optional[str] = None
    stalled = False

    def push_with_producer(self, producer: Any) -> None:
        if self.behaviour.mode and self.behaviour.done < self.behaviour.times:
            self.behaviour.done += 1
            self.mode = self.behaviour.mode
            producer = _Cut(producer, CUT, self)
        super().push_with_producer(producer)

    def writable(self) -> bool:
        return not self.stalled and bool(super().writable())

    def handle_close(self) -> None:
        if self.mode == "abort" and not self._closed:
            self._resp = ("426 Connection closed; transfer aborted.", lambda *a: None)
            self.close()
            return
        if self.mode == "lie" and not self._closed:
            self._resp = ("226 Transfer complete.", lambda *a: None)
            self.transfer_finished = True
            self.close()
            return
        super().handle_close()


@dataclass
class FtpServer:
    port: int
    root: Path
    behaviour: Misbehaviour

    def url(self, path: str) -> str:
        return f"ftp://127.0.0.1:{self.port}{path}"


def start_ftp(root: Path, behaviour: Misbehaviour, anonymous: bool = True) -> Any:
    authorizer = DummyAuthorizer()
    if anonymous:
        authorizer.add_anonymous(str(root))
    authorizer.add_user("user", "secret", str(root), perm="elr")

    class Handler(FTPHandler):  # type: ignore[misc]
        use_sendfile = False
        auth_failed_timeout = 0  # answer a bad login at once (the default waits 3 s)
        dtp_handler = type("DTP", (MisbehavingDTP,), {"behaviour": behaviour})

        def ftp_SIZE(self, path: str) -> Any:
            if behaviour.no_size:
                self.respond("502 SIZE not implemented.")
                return None
            return super().ftp_SIZE(path)

        def pre_process_command(self, line: str, cmd: str, arg: str) -> Any:
            behaviour.commands.append(line)
            return super().pre_process_command(line, cmd, arg)

    Handler.authorizer = authorizer
    return FTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def make_ftp(tmp_path: Path) -> Iterator[Any]:
    servers: list[tuple[Any, threading.Thread, threading.Event]] = []

    def factory(
        mode: Optional[str] = None, times: int = 1, anonymous: bool = True, no_size: bool = False
    ) -> FtpServer:
        root = tmp_path / f"ftp-root-{len(servers)}"
        (root / "gnu" / "gengetopt").mkdir(parents=True)
        (root / "gnu" / "gengetopt" / "gengetopt-2.23.tar.xz").write_bytes(DATA)
        behaviour = Misbehaviour(mode, times, no_size)
        server = start_ftp(root, behaviour, anonymous)
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                server.serve_forever(timeout=0.02, blocking=False, handle_exit=False)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        servers.append((server, thread, stop))
        return FtpServer(server.address[1], root, behaviour)

    yield factory
    for server, thread, stop in servers:
        stop.set()
        thread.join(10)
        server.close_all()


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
