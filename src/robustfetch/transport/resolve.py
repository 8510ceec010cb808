"""Name look-ups that end by a deadline, even when the resolver hangs."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any, Optional

__all__ = ["lookup"]

_AddrInfo = list[tuple[Any, Any, int, str, Any]]


def lookup(host: str, port: int, deadline_at: Optional[float]) -> _AddrInfo:
    """``socket.getaddrinfo`` for a TCP connection, given up at ``deadline_at``.

    ``getaddrinfo`` cannot be interrupted, so with a deadline it runs on a
    daemon thread that is abandoned (it ends when the resolver answers) if
    the deadline passes first; the caller gets :class:`socket.timeout`.
    """
    if deadline_at is None or _is_ip(host):
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def resolve() -> None:
        try:
            outcome["found"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=resolve, name="robustfetch-lookup", daemon=True).start()
    if not done.wait(max(0.0, deadline_at - time.monotonic())):
        raise socket.timeout(f"the name look-up of {host} did not end before the deadline")
    if "error" in outcome:
        raise outcome["error"]
    found: _AddrInfo = outcome["found"]
    return found


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return False
    return True
