"""How a try fails: a bad status, a transport error or the deadline, each as a SourceFailed."""

from __future__ import annotations

import time
from typing import Optional
from urllib.parse import urlsplit

from ..errors import Reason, SourceFailed
from ..options import Options
from ..policy.backoff import parse_retry_after
from ..policy.classify import classify_status
from ..policy.sniff import describe_error_page
from ..policy.urls import is_ip_literal
from ..transport import Response, TransportError
from ..transport.faults import classify_exception
from .checks import ERROR_BODY

__all__ = [
    "bounded",
    "deadline_failure",
    "drain",
    "passed",
    "status_failure",
    "transport_failure",
]


def status_failure(response: Response, url: str, current: str) -> SourceFailed:
    """The failure an answer with an unusable status stands for (its body read for the message).

    ``current`` is where redirects from ``url`` led.
    """
    body = drain(response)
    if response.status == 511:
        # RFC 6585's "Network Authentication Required": a captive portal said so.
        detail = describe_error_page(body, 511, current, url)
        return SourceFailed(Reason.ERROR_PAGE, detail, 511)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    failure = classify_status(response.status, body, retry_after)
    if current != url:
        failure.detail += f" (at {current}, after redirects)"
    return failure


def transport_failure(
    options: Options,
    trust: str,
    exc: TransportError,
    url: str,
    phase: str,
    received: int,
    length: Optional[int],
    deadline_at: Optional[float],
) -> SourceFailed:
    """The failure a transport error at ``url`` stands for; past the deadline, a timeout.

    ``trust`` describes the CA certificates in use (for certificate errors).
    """
    if deadline_at is not None and time.monotonic() >= deadline_at - 0.01:
        return deadline_failure(options.deadline, received, length)
    host = urlsplit(url).hostname or ""
    name = "connect_timeout" if exc.connecting else "stall_timeout"
    failure = classify_exception(
        exc,
        phase=phase,
        received=received,
        expected=length,
        timeout=getattr(options, name),
        timeout_name=name,
        sni_sent=not is_ip_literal(host),
        via_proxy=exc.via_proxy,
        ca_description=trust,
    )
    failure.url = url  # after a redirect: another host than the source's
    return failure


def deadline_failure(
    deadline: Optional[float], received: int, length: Optional[int]
) -> SourceFailed:
    """The ``timeout`` failure of a request whose deadline passed."""
    of = f" of {length}" if length is not None else ""
    return SourceFailed(
        Reason.TIMEOUT, f"deadline of {deadline:g} s reached after {received}{of} bytes"
    )


def passed(deadline_at: Optional[float]) -> bool:
    """Whether the deadline (if any) has passed."""
    return deadline_at is not None and time.monotonic() >= deadline_at


def bounded(timeout: float, deadline_at: Optional[float]) -> float:
    """``timeout``, shortened to what is left before the deadline."""
    if deadline_at is None:
        return timeout
    return max(0.001, min(timeout, deadline_at - time.monotonic()))


def drain(response: Response) -> bytes:
    """Read a short non-file body (for its message) and free the connection."""
    body = b""
    try:
        while len(body) < ERROR_BODY:
            chunk = response.read(ERROR_BODY - len(body))
            if not chunk:
                response.release()
                return body
            body += chunk
    except TransportError:
        pass
    response.close()
    return body
