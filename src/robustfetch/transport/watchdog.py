"""One shared timer thread that shuts a request's sockets down when its deadline passes."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Optional

__all__ = ["Watch", "arm"]


class Watch:
    """The sockets of one request, shut down together when ``deadline_at`` passes.

    Per-read timeouts alone cannot bound a request: a server sending one byte
    of its head every 0.2 s never lets a read time out. Shutting the socket
    down wakes whatever thread is blocked on it (a TLS handshake, a head, a
    body), which then fails and reports the deadline.

    :param deadline_at: a :func:`time.monotonic` time.
    """

    def __init__(self, deadline_at: float) -> None:
        self.deadline_at = deadline_at
        self.fired = False
        self._cancelled = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        """Watch ``sock`` too; it is shut down at once if the deadline has passed."""
        with self._lock:
            if self._cancelled:
                return
            if not self.fired:
                self._sockets.append(sock)
                return
        _shutdown(sock)

    def cancel(self) -> bool:
        """Stop watching (the request is over); True if the deadline had already fired."""
        with self._lock:
            self._cancelled = True
            self._sockets.clear()
            return self.fired

    def fire(self) -> None:
        """Shut every watched socket down (the watchdog calls this at ``deadline_at``)."""
        with self._lock:
            if self._cancelled or self.fired:
                return
            self.fired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: ssl's would drop its
    # state under the feet of the thread reading from it.
    with contextlib.suppress(OSError, ValueError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """A heap of watches and the one daemon thread that fires them in time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def arm(self, deadline_at: float) -> Watch:
        watch = Watch(deadline_at)
        with self._wakeup:
            heapq.heappush(self._heap, (deadline_at, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="robustfetch-watchdog", daemon=True
                )
                self._thread.start()
            self._wakeup.notify()
        return watch

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._heap:
                    self._wakeup.wait()
                deadline_at, _, watch = self._heap[0]
                delay = deadline_at - time.monotonic()
                if delay > 0:
                    self._wakeup.wait(delay)
                    continue  # re-read the heap: an earlier watch may have come
                heapq.heappop(self._heap)
            watch.fire()


_WATCHDOG = _Watchdog()


def arm(deadline_at: Optional[float]) -> Optional[Watch]:
    """A :class:`Watch` for ``deadline_at`` (``None``: no deadline, no watch)."""
    if deadline_at is None:
        return None
    return _WATCHDOG.arm(deadline_at)
