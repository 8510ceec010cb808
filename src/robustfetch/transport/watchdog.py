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
    :param watchdog: told when the watch is cancelled, to drop it early.
    """

    def __init__(self, deadline_at: float, watchdog: Optional[_Watchdog] = None) -> None:
        self.deadline_at = deadline_at
        self.fired = False
        self._cancelled = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._watchdog = watchdog
        self._queued = watchdog is not None  # in the watchdog's heap (guarded by its lock)
        self._counted = False  # among the watchdog's cancelled entries (guarded by its lock)

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
            first = not self._cancelled
            self._cancelled = True
            self._sockets.clear()
            fired = self.fired
        if first and not fired and self._watchdog is not None:
            self._watchdog.cancelled(self)
        return fired

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
        self._dead = 0  # cancelled watches still in the heap
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def arm(self, deadline_at: float) -> Watch:
        watch = Watch(deadline_at, self)
        with self._wakeup:
            heapq.heappush(self._heap, (deadline_at, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="robustfetch-watchdog", daemon=True
                )
                self._thread.start()
            self._wakeup.notify()
        return watch

    def cancelled(self, watch: Watch) -> None:
        """Note that ``watch`` is over: the heap is rebuilt once most of it is such watches.

        Else every request that ends before its deadline (nearly all) would stay
        in the heap until that deadline: a long one, many requests, much memory.
        """
        with self._wakeup:
            if not watch._queued:
                return  # already out of the heap (fired, or dropped)
            self._dead += 1
            watch._counted = True
            if self._dead * 2 > len(self._heap):
                kept = []
                for entry in self._heap:
                    if entry[2]._cancelled:
                        entry[2]._queued = False
                    else:
                        kept.append(entry)
                heapq.heapify(kept)
                self._heap, self._dead = kept, 0

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._heap:
                    self._wakeup.wait()
                deadline_at, _, watch = self._heap[0]
                if watch._cancelled and watch._queued:
                    heapq.heappop(self._heap)  # over: no need to wait for its deadline
                    watch._queued = False
                    self._dead -= watch._counted  # its cancelled() may not have come yet
                    continue
                delay = deadline_at - time.monotonic()
                if delay > 0:
                    self._wakeup.wait(delay)
                    continue  # re-read the heap: an earlier watch may have come
                heapq.heappop(self._heap)
                watch._queued = False
            watch.fire()


_WATCHDOG = _Watchdog()


def arm(deadline_at: Optional[float]) -> Optional[Watch]:
    """A :class:`Watch` for ``deadline_at`` (``None``: no deadline, no watch)."""
    if deadline_at is None:
        return None
    return _WATCHDOG.arm(deadline_at)
