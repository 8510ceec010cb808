"""Socket plumbing shared by the dummy servers: a threaded loopback listener and bounded I/O.

Every blocking call here polls in short slices and gives up when the owner's stop
``Event`` is set or after :data:`MAX_WAIT` seconds, so no thread can block forever.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import ipaddress
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = [
    "MAX_WAIT",
    "Conn",
    "Listener",
    "RequestHead",
    "Stopped",
    "format_host",
    "http_date",
    "is_loopback_host",
    "parse_head",
    "reason",
]

#: Upper bound, in seconds, on any single wait (idle keep-alive, hang, stall, trickle).
MAX_WAIT = 60.0
#: Socket timeout used for polling reads and writes, so the stop event is seen quickly.
POLL = 0.05
#: How long a clean TLS close waits for the peer's close_notify.
TLS_CLOSE_WAIT = 0.2
#: Largest request/response head accepted.
MAX_HEAD = 64 * 1024


class Stopped(Exception):
    """The owner is closing, the peer went away, or a bounded wait ran out."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def format_host(host: str) -> str:
    """Bracket IPv6 literals for use in URLs and ``host:port`` strings."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def http_date() -> str:
    """The current time as an HTTP ``Date`` header value."""
    return email.utils.formatdate(usegmt=True)


def reason(status: int) -> str:
    """The standard reason phrase for ``status`` (``"Unknown"`` for unregistered codes)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass
class RequestHead:
    """A parsed request (or response) head: start line split in three, headers in order."""

    first: str
    second: str
    third: str
    header_list: list[tuple[str, str]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        """Headers with lower-case names; repeated headers joined with ``", "``."""
        merged: dict[str, str] = {}
        for name, value in self.header_list:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged


def parse_head(raw: bytes) -> RequestHead:
    """Parse ``raw`` (a head without its final blank line); raise ``ValueError`` if malformed."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) != 3 or not all(parts[:2]):
        raise ValueError(f"malformed start line: {lines[0]!r}")
    head = RequestHead(parts[0], parts[1], parts[2])
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"malformed header line: {line!r}")
        head.header_list.append((name, value.strip()))
    return head


def _unsent_bytes(sock: socket.socket) -> int:
    """Bytes still queued in the kernel send buffer (Linux only; 0 elsewhere)."""
    if not sys.platform.startswith("linux"):
        return 0
    import fcntl
    import termios

    out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", out)[0])


class Conn:
    """One connected socket (plain or TLS) with stop-aware, bounded reads and writes."""

    def __init__(self, sock: socket.socket, stop: threading.Event, conn_id: int) -> None:
        self.sock = sock
        self.stop = stop
        self.conn_id = conn_id
        self.buffer = bytearray()
        self.closed = False
        sock.settimeout(POLL)

    def wait(self, seconds: float = MAX_WAIT) -> bool:
        """Sleep up to ``seconds`` (capped at MAX_WAIT); True if the owner is stopping."""
        return self.stop.wait(min(max(seconds, 0.0), MAX_WAIT))

    def recv_some(self, max_wait: float = MAX_WAIT) -> bytes:
        """Next bytes from the peer (``b""`` on EOF); raise ``Stopped`` on stop or timeout."""
        deadline = time.monotonic() + min(max_wait, MAX_WAIT)
        while True:
            if self.stop.is_set():
                raise Stopped("stopping")
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                if time.monotonic() >= deadline:
                    raise Stopped("read timed out") from None
            except ssl.SSLZeroReturnError:
                return b""

    def read_head(self) -> bytes | None:
        """Read up to a blank line; the head without it, or None on EOF/idle before any byte."""
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > MAX_HEAD:
                raise Stopped("head too large")
            try:
                data = self.recv_some()
            except Stopped:
                if self.stop.is_set() or self.buffer:
                    raise
                return None
            if not data:
                if self.buffer:
                    raise Stopped("EOF inside a head")
                return None
            self.buffer += data

    def read_exact(self, size: int) -> bytes:
        """Read exactly ``size`` bytes (buffered ones first); raise ``Stopped`` on early EOF."""
        while len(self.buffer) < size:
            data = self.recv_some()
            if not data:
                raise Stopped("EOF inside a body")
            self.buffer += data
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def take_buffer(self) -> bytes:
        """Return and clear the bytes read past the last head/body."""
        out = bytes(self.buffer)
        self.buffer.clear()
        return out

    def send_all(self, data: bytes) -> None:
        """Send all of ``data``; raise ``Stopped`` on stop or if the peer stops reading."""
        view = memoryview(data)
        deadline = time.monotonic() + MAX_WAIT
        while view:
            if self.stop.is_set():
                raise Stopped("stopping")
            try:
                sent = self.sock.send(view[:65536])
            except socket.timeout:
                if time.monotonic() >= deadline:
                    raise Stopped("write timed out") from None
                continue
            view = view[sent:]

    def close(self) -> None:
        """Close at once: no TLS close_notify, no waiting."""
        if not self.closed:
            self.closed = True
            self.sock.close()

    def close_clean(self) -> None:
        """TLS close_notify (if TLS), then FIN, then close; abrupt if the owner is stopping."""
        if self.closed:
            return
        try:
            if isinstance(self.sock, ssl.SSLSocket) and not self.stop.is_set():
                self.sock.settimeout(TLS_CLOSE_WAIT)
                with contextlib.suppress(OSError, ValueError):
                    self.sock.unwrap()  # sends close_notify, waits briefly for the reply
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
        except OSError:
            pass
        self.close()

    def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0) once the bytes already sent have left."""
        if self.closed:
            return
        try:
            deadline = time.monotonic() + 1.0
            while _unsent_bytes(self.sock) and time.monotonic() < deadline:
                if self.stop.wait(0.01):
                    break
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


_ListenerT = TypeVar("_ListenerT", bound="Listener")


class Listener:
    """A threaded TCP listener on a loopback address and an ephemeral port.

    Subclasses implement :meth:`handle`. Each accepted connection gets its own daemon
    thread; with an ``ssl_context`` the TLS handshake runs there first, and handshake
    failures are counted in :attr:`connections` but otherwise ignored silently.
    Unexpected exceptions in handlers (bugs) are kept in :attr:`errors`, not printed.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        if not is_loopback_host(host):
            raise ValueError(f"dummy servers listen on loopback addresses only, not {host!r}")
        host = "127.0.0.1" if host == "localhost" else host.strip("[]")
        self.host = host
        self.ssl_context = ssl_context
        self.stop_event = threading.Event()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._connections = 0
        self._threads: list[threading.Thread] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.bind((host, 0))
            self._listener.listen(128)
        except OSError:
            self._listener.close()
            raise
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()  # wakes the accept loop on close()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{type(self).__name__}:{self.port}", daemon=True
        )
        self._accept_thread.start()

    @property
    def connections(self) -> int:
        """Number of TCP connections accepted so far (failed TLS handshakes included)."""
        with self._lock:
            return self._connections

    def handle(self, conn: Conn) -> None:
        """Serve one connection; the caller closes ``conn`` cleanly afterwards."""
        raise NotImplementedError

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.stop_event.is_set():
                ready = [key.fileobj for key, _ in selector.select(timeout=1.0)]
                if self._listener not in ready:
                    continue
                try:
                    sock, _addr = self._listener.accept()
                except OSError:
                    continue
                with self._lock:
                    self._connections += 1
                    conn_id = self._connections
                    self._threads = [t for t in self._threads if t.is_alive()]
                    thread = threading.Thread(
                        target=self._serve,
                        args=(sock, conn_id),
                        daemon=True,
                        name=f"{type(self).__name__}:{self.port}#{conn_id}",
                    )
                    self._threads.append(thread)
                thread.start()

    def _handshake(self, sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket | None:
        try:
            tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            sock.close()
            return None
        tls.settimeout(POLL)
        deadline = time.monotonic() + MAX_WAIT
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            try:
                tls.do_handshake()
                return tls
            except socket.timeout:
                continue
            except (OSError, ValueError):
                break
        tls.close()
        return None

    def _serve(self, sock: socket.socket, conn_id: int) -> None:
        if self.ssl_context is not None:
            tls = self._handshake(sock, self.ssl_context)
            if tls is None:
                return
            sock = tls
        conn = Conn(sock, self.stop_event, conn_id)
        try:
            self.handle(conn)
        except (Stopped, OSError):
            conn.close()
        except BaseException as exc:  # a bug in a handler: keep it for the tests, don't print
            with self._lock:
                self.errors.append(exc)
            conn.close()
        finally:
            conn.close_clean()

    def close(self, timeout: float = 10.0) -> None:
        """Stop: release every waiting handler, close the listener, join threads (bounded)."""
        self.stop_event.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        deadline = time.monotonic() + timeout
        if self._accept_thread is not threading.current_thread():
            self._accept_thread.join(max(deadline - time.monotonic(), 0.0))
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.0))

    def __enter__(self: _ListenerT) -> _ListenerT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port nothing listens on: a dead host for clients to fail against."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
