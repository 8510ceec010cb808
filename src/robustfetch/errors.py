"""Exceptions, the Reason vocabulary and the record of one try (Attempt)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

__all__ = ["TRANSIENT", "Attempt", "FetchError", "Reason", "SourceFailed"]


class Reason(str, enum.Enum):
    """Why one source failed; the values are part of the public contract."""

    SNI_REQUIRED = "sni_required"
    TLS_VERSION = "tls_version"
    CERT_UNTRUSTED = "cert_untrusted"
    CERT_HOSTNAME = "cert_hostname"
    CERT_EXPIRED = "cert_expired"
    TLS_ERROR = "tls_error"
    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    TOO_SLOW = "too_slow"
    HTTP_STATUS = "http_status"
    NOT_FOUND = "not_found"
    HASH_MISMATCH = "hash_mismatch"
    SIZE_MISMATCH = "size_mismatch"
    TOO_LARGE = "too_large"
    TRUNCATED = "truncated"
    REDIRECT_REFUSED = "redirect_refused"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    INSECURE_REFUSED = "insecure_refused"
    PROXY = "proxy"
    OFFLINE = "offline"
    IO_ERROR = "io_error"
    BLOCKED = "blocked"
    ERROR_PAGE = "error_page"
    SUPERSEDED = "superseded"

    def __str__(self) -> str:
        return self.value


#: Failures worth trying the same source again for (after a backoff).
TRANSIENT = frozenset({Reason.CONNECT, Reason.TRUNCATED, Reason.HTTP_STATUS})


@dataclass(frozen=True)
class Attempt:
    """One try of one source.

    :param url: the URL really requested.
    :param reason: why it failed, or ``None`` for the try that succeeded.
    :param detail: what happened, in words a user can act on.
    :param status: the HTTP status of the last response, if one came.
    """

    url: str
    reason: Optional[Reason]
    detail: str = ""
    status: Optional[int] = None

    def __str__(self) -> str:
        if self.reason is None:
            return f"{self.url}: ok" + (f" ({self.detail})" if self.detail else "")
        return f"{self.url}: {self.reason.value}: {self.detail}"


class FetchError(Exception):
    """Every source failed; :attr:`attempts` holds each try and its reason."""

    def __init__(self, message: str, attempts: Sequence[Attempt]) -> None:
        super().__init__(message)
        self.message = message
        self.attempts: list[Attempt] = list(attempts)

    def __str__(self) -> str:
        lines = [self.message]
        lines.extend(f"  - {attempt}" for attempt in self.attempts)
        return "\n".join(lines)

    def __reduce__(self) -> tuple[type[FetchError], tuple[str, list[Attempt]]]:
        return (type(self), (self.message, self.attempts))


class SourceFailed(Exception):
    """Internal: one try of one source failed for ``reason``."""

    def __init__(
        self,
        reason: Reason,
        detail: str,
        status: Optional[int] = None,
        retry_after: Optional[float] = None,
        transient: Optional[bool] = None,
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        #: The URL that failed, when a redirect led away from the one asked for.
        self.url: Optional[str] = None
        #: Worth trying the same source again; defaults by reason.
        self.transient = reason in TRANSIENT if transient is None else transient
