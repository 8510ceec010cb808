"""Cancel: lets one thread abort another's request in progress (a hedge that lost the race)."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Optional

__all__ = ["Cancel", "CancelledError", "forget"]


class CancelledError(OSError):
    """The request was cancelled (it lost a race); raised by the transports' connect step."""


class Cancel:
    """The sockets one request uses, so that another thread can shut them down.

    A transport calls :meth:`watch` for every socket a request connects or
    reuses, before it blocks on it. :meth:`cancel` shuts them down, which wakes
    a thread blocked in ``connect``, the TLS handshake or ``recv`` with an
    error at once; a socket watched after that is shut down at once too.
    A duplicate of each descriptor is kept (``ssl`` wraps and detaches the
    original socket object during the handshake, keeping its number); it also
    keeps the connection open, so a transport calls :meth:`forget` before it
    closes a socket or returns it to a pool (where another request may take
    it), and :meth:`close` drops the rest when the request no longer needs
    cancelling.
    """

    def __init__(self) -> None:
        self.cancelled = False
        self._closed = False
        self._lock = threading.Lock()
        self._watched: dict[int, socket.socket] = {}  # by the watched descriptor's number

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down on :meth:`cancel` (at once if it already happened)."""
        try:
            number = sock.fileno()
            duplicate = socket.fromfd(number, sock.family, sock.type)
        except (OSError, ValueError):
            return  # already closed: nothing to wake
        with self._lock:
            if not self.cancelled:
                # Watched before (a reused connection), or a number the system reused
                # after a socket closed without forget(): the older duplicate goes.
                stale = duplicate if self._closed else self._watched.pop(number, None)
                if not self._closed:
                    self._watched[number] = duplicate
                if stale is not None:
                    stale.close()
                return
        _shut(duplicate)

    def forget(self, sock: socket.socket) -> bool:
        """Leave ``sock`` alone from now on (before it is closed or pooled).

        :returns: ``False`` if it may have been shut down already (not for reuse).
        """
        try:
            number = sock.fileno()
        except (OSError, ValueError):
            return False
        with self._lock:
            duplicate = self._watched.pop(number, None)
            intact = not self.cancelled
        if duplicate is not None:
            duplicate.close()
        return intact

    def check(self) -> None:
        """Raise :class:`CancelledError` if :meth:`cancel` was called."""
        if self.cancelled:
            raise CancelledError("cancelled: another source answered first")

    def cancel(self) -> None:
        """Shut down every socket watched, now and from now on."""
        with self._lock:
            self.cancelled = True
            watched, self._watched = list(self._watched.values()), {}
        for duplicate in watched:
            _shut(duplicate)

    def close(self) -> None:
        """Forget the sockets (the request won, or ended): they are not touched."""
        with self._lock:
            self._closed = True
            watched, self._watched = list(self._watched.values()), {}
        for duplicate in watched:
            duplicate.close()


def forget(cancel: Optional[Cancel], sock: Optional[socket.socket]) -> bool:
    """:meth:`Cancel.forget` when there is a ``cancel`` and a socket; ``True`` if intact."""
    if cancel is None or sock is None:
        return True
    return cancel.forget(sock)


def _shut(duplicate: socket.socket) -> None:
    with contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)
    duplicate.close()
