"""The one place that touches the network: the Transport protocol and its implementations."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Protocol
from urllib.parse import urlsplit

from ..options import urllib3_available

if TYPE_CHECKING:
    import ssl

    from .cancel import Cancel

__all__ = [
    "Response",
    "Transport",
    "TransportError",
    "TransportSettings",
    "make_transport",
    "transport_name",
    "urllib3_available",
]


class TransportError(Exception):
    """A request failed below HTTP; ``__cause__`` holds the underlying exception.

    :param via_proxy: the failure happened while reaching or talking to a proxy.
    :param connecting: it happened while connecting (before the request was sent).
    """

    def __init__(self, message: str, *, via_proxy: bool = False, connecting: bool = False) -> None:
        super().__init__(message)
        self.via_proxy = via_proxy
        self.connecting = connecting


@dataclass(frozen=True)
class TransportSettings:
    """What a transport needs to open connections.

    :param context: the verifying SSL context.
    :param proxies: as returned by :func:`robustfetch.proxies.proxies_from_environment`.
    :param connect_to: ``(host, port)`` to ``(addr, port)``; ``None`` ports match any.
    :param pool_size: connections kept per host.
    """

    context: ssl.SSLContext
    proxies: Mapping[str, str] = field(default_factory=dict)
    connect_to: Mapping[tuple[str, Optional[int]], tuple[str, Optional[int]]] = field(
        default_factory=dict
    )
    pool_size: int = 8

    def resolve(self, url: str, deadline_at: Optional[float] = None) -> list[tuple[str, int]]:
        """:meth:`Transport.addresses`, shared by the implementations."""
        from ..policy.urls import normalise_host
        from .proxies import proxy_for
        from .resolve import lookup

        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme == "file" or proxy_for(url, self.proxies) or self.target_for(host, port):
            return []
        try:
            found = lookup(host, port, deadline_at)  # a hung resolver ends by the deadline
        except (OSError, UnicodeError):
            return []
        addresses: list[tuple[str, int]] = []
        for *_, sockaddr in found:
            address = (str(sockaddr[0]), int(sockaddr[1]))
            if address not in addresses:
                addresses.append(address)
        return addresses

    def connect_time(self, url: str, timeout: float) -> Optional[float]:
        """:meth:`Transport.connect_time`, shared by the implementations."""
        from ..policy.urls import normalise_host
        from .eyeballs import connect
        from .proxies import proxy_for

        parts = urlsplit(url)
        host = normalise_host(parts.hostname or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if proxy_for(url, self.proxies):
            return 0.0
        address = self.target_for(host, port) or (host, port)
        started = time.monotonic()
        try:
            connect(address, timeout, deadline_at=started + timeout).close()  # hung look-ups too
        except OSError:
            return None
        return time.monotonic() - started

    def target_for(self, host: str, port: int) -> Optional[tuple[str, int]]:
        """Where ``host:port`` really connects, by ``connect_to``, or ``None``."""
        target = self.connect_to.get((host, port)) or self.connect_to.get((host, None))
        if target is None:
            return None
        return target[0], target[1] if target[1] is not None else port


class Response(Protocol):
    """An HTTP answer whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]

    def read(self, amount: int) -> bytes:
        """Up to ``amount`` body bytes as soon as some arrive; ``b""`` at the end."""

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Like :meth:`read`, into ``buffer`` (no copy); ``0`` at the end."""

    def set_read_timeout(self, seconds: float) -> None:
        """Change how long one read may wait (used as a deadline nears)."""

    def release(self) -> None:
        """The body was read to its end: give the connection back for reuse."""

    def close(self) -> None:
        """Abandon the body and the connection."""


class Transport(Protocol):
    """Sends one GET (no redirects followed, no retries, no decoding)."""

    def open(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        address: Optional[tuple[str, int]] = None,
        deadline_at: Optional[float] = None,
        cancel: Optional[Cancel] = None,
    ) -> Response:
        """Connect and return the response head; failures raise :class:`TransportError`.

        :param address: connect to this resolved address (SNI, Host and the
            certificate check stay the URL's host), not to the first that answers.
        :param deadline_at: a :func:`time.monotonic` time at which the connection is
            shut down, whatever it is doing (connecting, handshaking, reading); the
            watch ends when the response is released or closed.
        :param cancel: every socket this request uses is watched by it, so that
            another thread can abort the request (a hedge that lost the race).
        """

    def addresses(self, url: str, deadline_at: Optional[float] = None) -> list[tuple[str, int]]:
        """The addresses ``url``'s host resolves to, in the order they would be tried.

        Empty when they cannot be told apart from here (a proxy, ``connect_to``,
        a failed lookup, or one that did not end by ``deadline_at``).
        """

    def connect_time(self, url: str, timeout: float) -> Optional[float]:
        """Seconds a TCP connection to ``url``'s server takes; ``None`` if it fails.

        ``0.0`` where it cannot be told (a proxy in the way, a local file).
        """

    def close(self) -> None:
        """Close every pooled connection."""


def make_transport(name: str, settings: TransportSettings) -> Transport:
    """The transport called ``name``, with ``file://`` support.

    ``"auto"`` is urllib3 when it can be imported, else the standard library.
    """
    from .files import SchemeRouter

    network: Transport
    if name == "stdlib" or (name == "auto" and not urllib3_available()):
        from .stdlib_backend import StdlibTransport

        network = StdlibTransport(settings)
    else:
        from .urllib3_backend import Urllib3Transport

        network = Urllib3Transport(settings)
    return SchemeRouter(network, settings)


def transport_name(choice: str) -> str:
    """The transport ``choice`` ("auto", "urllib3", "stdlib") really means here."""
    if choice == "auto":
        return "urllib3" if urllib3_available() else "stdlib"
    return choice
