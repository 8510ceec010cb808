"""A threaded FTP server for tests (pyftpdlib) on 127.0.0.1: accounts, a command log, faults.

The handler records every command line it receives (``USER user``, ``REST 30000``...),
and its data channel can drop the connection after ``CUT`` bytes (with a ``426``
reply, or with a lying ``226``) or stop sending without closing::

    with FtpServer(root, anonymous=False, users={"user": "secret"}) as ftp:
        url = ftp.url("/gnu/gengetopt/gengetopt-2.23.tar.xz")
        ...
        assert "USER user" in ftp.behaviour.commands

pyftpdlib is imported on first use only, so the rest of the toolkit works without it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from dummyserver._net import MAX_WAIT

__all__ = ["CUT", "FtpServer", "Misbehaviour"]

#: Bytes a misbehaving data channel sends before it cuts the transfer.
CUT = 30_000


@dataclass
class Misbehaviour:
    """What the data channel does to the first ``times`` transfers, and what was asked."""

    mode: Optional[str] = None  # "abort" (426), "lie" (226), "stall"
    times: int = 1
    no_size: bool = False  # SIZE refused: only the final reply tells a cut transfer
    done: int = 0
    commands: list[str] = field(default_factory=list)

    @property
    def users(self) -> list[str]:
        """The user names sent with ``USER``, in order."""
        return [c.split(" ", 1)[1] for c in self.commands if c.upper().startswith("USER ")]


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


def _handler(root: Path, behaviour: Misbehaviour, anonymous: bool, users: Mapping[str, str]) -> Any:
    with warnings.catch_warnings():
        # pyftpdlib uses asynchat/asyncore, deprecated in Python 3.11 (vendored for 3.12+).
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import DTPHandler, FTPHandler

    class MisbehavingDTP(DTPHandler):  # type: ignore[misc]
        mode: Optional[str] = None
        stalled = False

        def push_with_producer(self, producer: Any) -> None:
            if behaviour.mode and behaviour.done < behaviour.times:
                behaviour.done += 1
                self.mode = behaviour.mode
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

    authorizer = DummyAuthorizer()
    if anonymous:
        authorizer.add_anonymous(str(root))
    for user, password in users.items():
        authorizer.add_user(user, password, str(root), perm="elr")

    class Handler(FTPHandler):  # type: ignore[misc]
        use_sendfile = False
        auth_failed_timeout = 0  # answer a bad login at once (the default waits 3 s)
        dtp_handler = MisbehavingDTP

        def ftp_SIZE(self, path: str) -> Any:
            if behaviour.no_size:
                self.respond("502 SIZE not implemented.")
                return None
            return super().ftp_SIZE(path)

        def pre_process_command(self, line: str, cmd: str, arg: str) -> Any:
            behaviour.commands.append(line)
            return super().pre_process_command(line, cmd, arg)

    Handler.authorizer = authorizer
    return Handler


class FtpServer:
    """pyftpdlib serving ``root`` on 127.0.0.1 and an ephemeral port, in a thread.

    :param anonymous: whether ``anonymous`` may log in (read only).
    :param users: accounts, user name -> password (read only, ``root`` too).
    """

    def __init__(
        self,
        root: Path,
        behaviour: Optional[Misbehaviour] = None,
        *,
        anonymous: bool = True,
        users: Optional[Mapping[str, str]] = None,
    ) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # asyncore, as above
            from pyftpdlib.ioloop import IOLoop
            from pyftpdlib.servers import FTPServer

        self.root = root
        self.behaviour = behaviour or Misbehaviour()
        handler = _handler(root, self.behaviour, anonymous, users or {})
        # An I/O loop of its own: the default one is shared by every server of the process.
        self._ioloop = IOLoop()
        self._server = FTPServer(("127.0.0.1", 0), handler, ioloop=self._ioloop)
        self.port: int = self._server.address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._server.serve_forever(timeout=0.02, blocking=False, handle_exit=False)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"ftp://{host}:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(MAX_WAIT)
        self._server.close_all()
        self._ioloop.close()

    def __enter__(self) -> FtpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
