"""Connecting to a host: its addresses raced, IPv6 and IPv4 interleaved (RFC 8305)."""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Sequence
from typing import Any, Optional

from .cancel import Cancel, forget
from .resolve import lookup

__all__ = ["ATTEMPT_DELAY", "connect", "interleave"]

#: RFC 8305's "Connection Attempt Delay": the next address starts this long after the last.
ATTEMPT_DELAY = 0.25
_IN_PROGRESS = {
    errno.EINPROGRESS,
    errno.EWOULDBLOCK,
    errno.EAGAIN,
    getattr(errno, "WSAEWOULDBLOCK", -1),
}

_AddrInfo = tuple[Any, Any, int, str, Any]


def connect(
    address: tuple[str, int],
    timeout: Optional[float],
    *,
    cancel: Optional[Cancel] = None,
    source_address: Optional[tuple[str, int]] = None,
    socket_options: Sequence[tuple[int, int, Any]] = (),
    delay: float = ATTEMPT_DELAY,
    deadline_at: Optional[float] = None,
) -> socket.socket:
    """A connected socket to ``address``, as ``socket.create_connection`` gives.

    A host with several addresses has them tried in :func:`interleave` order,
    each started ``delay`` seconds after the one before (or at once when the
    one before failed); the first to connect wins and the others are closed.
    The name look-up gives up at ``deadline_at`` (:func:`~.resolve.lookup`).
    One dead address costs ``delay``, not ``timeout``. ``timeout`` bounds the
    whole race and is left set on the socket returned.

    :raises socket.gaierror: the name does not resolve.
    :raises TimeoutError: no address connected within ``timeout``.
    :raises OSError: every address failed (the first failure is raised).
    """
    host, port = address
    infos = interleave(lookup(host, port, deadline_at))
    if not infos:
        raise OSError(f"getaddrinfo returned no address for {host!r}")
    if len(infos) == 1:
        return _connect_one(infos[0], timeout, cancel, source_address, socket_options)
    return _race(infos, timeout, cancel, source_address, socket_options, delay)


def interleave(infos: Sequence[_AddrInfo]) -> list[_AddrInfo]:
    """Addresses in the order RFC 8305 tries them: families alternate, the first one's first."""
    if not infos:
        return []
    first = infos[0][0]
    same = [info for info in infos if info[0] == first]
    other = [info for info in infos if info[0] != first]
    ordered: list[_AddrInfo] = []
    for index in range(max(len(same), len(other))):
        ordered += same[index : index + 1] + other[index : index + 1]
    return ordered


def _new_socket(
    info: _AddrInfo,
    cancel: Optional[Cancel],
    source_address: Optional[tuple[str, int]],
    socket_options: Sequence[tuple[int, int, Any]],
) -> socket.socket:
    family, kind, proto, _, _ = info
    sock = socket.socket(family, kind, proto)
    try:
        for option in socket_options:
            sock.setsockopt(*option)
        if source_address is not None:
            sock.bind(source_address)
        if cancel is not None:
            cancel.watch(sock)
    except BaseException:
        _discard(sock, cancel)
        raise
    return sock


def _connect_one(
    info: _AddrInfo,
    timeout: Optional[float],
    cancel: Optional[Cancel],
    source_address: Optional[tuple[str, int]],
    socket_options: Sequence[tuple[int, int, Any]],
) -> socket.socket:
    sock = _new_socket(info, cancel, source_address, socket_options)
    try:
        sock.settimeout(timeout)
        sock.connect(info[4])
        if cancel is not None:
            cancel.check()
    except BaseException:
        _discard(sock, cancel)
        raise
    return sock


def _race(
    infos: list[_AddrInfo],
    timeout: Optional[float],
    cancel: Optional[Cancel],
    source_address: Optional[tuple[str, int]],
    socket_options: Sequence[tuple[int, int, Any]],
    delay: float,
) -> socket.socket:
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    pending: dict[socket.socket, _AddrInfo] = {}
    errors: list[OSError] = []
    next_index, next_start = 0, started
    winner: Optional[socket.socket] = None
    with selectors.DefaultSelector() as selector:
        try:
            while winner is None:
                if cancel is not None:
                    cancel.check()
                now = time.monotonic()
                if next_index < len(infos) and (now >= next_start or not pending):
                    info = infos[next_index]
                    next_index += 1
                    next_start = now + delay
                    sock = _new_socket(info, cancel, source_address, socket_options)
                    sock.setblocking(False)
                    code = sock.connect_ex(info[4])
                    if code == 0:
                        winner = sock
                    elif code in _IN_PROGRESS:
                        pending[sock] = info
                        selector.register(sock, selectors.EVENT_WRITE)
                    else:
                        _discard(sock, cancel)
                        errors.append(OSError(code, f"{info[4][0]}: {_strerror(code)}"))
                    continue
                if not pending:
                    raise errors[0]
                if deadline is not None and now >= deadline:
                    raise socket.timeout("timed out")
                waits = [deadline - now] if deadline is not None else []
                if next_index < len(infos):
                    waits.append(next_start - now)
                for key, _ in selector.select(max(min(waits), 0.0) if waits else None):
                    sock = key.fileobj  # type: ignore[assignment]
                    selector.unregister(sock)
                    info = pending.pop(sock)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code == 0 and winner is None:
                        winner = sock
                        continue
                    _discard(sock, cancel)
                    if code:
                        errors.append(OSError(code, f"{info[4][0]}: {_strerror(code)}"))
        except BaseException:
            if winner is not None:
                _discard(winner, cancel)
            raise
        finally:
            for sock in pending:
                _discard(sock, cancel)
    winner.setblocking(True)
    winner.settimeout(timeout)
    return winner


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:
        return f"error {code}"


def _discard(sock: socket.socket, cancel: Optional[Cancel]) -> None:
    """Close a socket the race lost; the Cancel's duplicate would keep it connected."""
    forget(cancel, sock)
    sock.close()
