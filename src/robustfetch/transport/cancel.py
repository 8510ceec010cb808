"""Cancel: lets one thread abort another's request in progress (a hedge that lost the race)."""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["Cancel", "CancelledError"]


class CancelledError(OSError):
    """The request was cancelled (it lost a race); raised by the transports' connect step."""


class Cancel:
    """The sockets one request uses, so that another thread can shut them down.

    A transport calls :meth:`watch` for every socket a request connects or
    reuses, before it blocks on it. :meth:`cancel` shuts them down, which wakes
    a thread blocked in ``connect``, the TLS handshake or ``recv`` with an
    error at once; a socket watched after that is shut down at once too.
    A duplicate of each descriptor is kept (``ssl`` wraps and detaches the
    original socket object during the handshake); :meth:`close` drops them
    when the request no longer needs cancelling.
    """

    def __init__(self) -> None:
        self.cancelled = False
        self._closed = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down on :meth:`cancel` (at once if it already happened)."""
        try:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except (OSError, ValueError):
            return  # already closed: nothing to wake
        with self._lock:
            if not self.cancelled:
                if self._closed:
                    duplicate.close()
                else:
                    self._watched.append(duplicate)
                return
        _shut(duplicate)

    def check(self) -> None:
        """Raise :class:`CancelledError` if :meth:`cancel` was called."""
        if self.cancelled:
            raise CancelledError("cancelled: another source answered first")

    def cancel(self) -> None:
        """Shut down every socket watched, now and from now on."""
        with self._lock:
            self.cancelled = True
            watched, self._watched = self._watched, []
        for duplicate in watched:
            _shut(duplicate)

    def close(self) -> None:
        """Forget the sockets (the request won, or ended): they are not touched."""
        with self._lock:
            self._closed = True
            watched, self._watched = self._watched, []
        for duplicate in watched:
            duplicate.close()


def _shut(duplicate: socket.socket) -> None:
    with contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)
    duplicate.close()
