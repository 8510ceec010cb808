"""Map a failed try (exception chain or HTTP answer) to a Reason and advice; no I/O."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from typing import Optional

from ..errors import Reason, SourceFailed

__all__ = ["classify_exception", "classify_status", "is_transient_status"]

# OpenSSL verify codes (X509_V_ERR_*).
_EXPIRED = {10}
_NOT_YET_VALID = {9}
_HOSTNAME = {62, 64}
_TLS_VERSION_MARKERS = (
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
    "VERSION_TOO_HIGH",
)
_SNI_MARKERS = ("UNRECOGNIZED_NAME", "TLSV1_UNRECOGNIZED_NAME")
_FASTLY_SNI_TEXT = b"server name indication"
_CLOSED = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.RemoteDisconnected,
)


def classify_exception(
    exc: BaseException,
    *,
    phase: str,
    received: int = 0,
    expected: Optional[int] = None,
    timeout: float = 0.0,
    timeout_name: str = "stall_timeout",
    sni_sent: bool = True,
    via_proxy: bool = False,
    ca_description: str = "",
) -> SourceFailed:
    """Turn ``exc`` into a :class:`SourceFailed` with a reason and a detail a user can act on.

    :param phase: ``"connect"`` (before any response) or ``"body"`` (while streaming).
    :param received: body bytes received so far.
    :param expected: the announced body size, if any.
    :param timeout: the timeout that applied, for the message.
    :param timeout_name: its option name, for the message.
    :param sni_sent: whether the TLS handshake carried a server name.
    :param via_proxy: a proxy was in use and ``exc`` came from reaching it.
    :param ca_description: the trust anchors used, for certificate advice.
    """
    chain = list(_chain(exc))
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return _certificate_failure(item, ca_description)
        if type(item).__name__ == "CertificateError":
            return SourceFailed(
                Reason.CERT_HOSTNAME, f"certificate does not match the host: {item}"
            )
    if via_proxy:
        return SourceFailed(Reason.PROXY, f"proxy failed: {_root_text(chain)}", transient=True)
    for item in chain:
        if isinstance(item, ssl.SSLError):
            return _tls_failure(item, sni_sent)
    for item in chain:
        if isinstance(item, socket.gaierror):
            return SourceFailed(Reason.DNS, f"host name lookup failed: {item}")
    progress = f"after {received} of {expected if expected is not None else '?'} bytes"
    for item in chain:
        if isinstance(item, (TimeoutError, socket.timeout)):
            if phase == "body":
                return SourceFailed(
                    Reason.STALLED, f"no data for {timeout:g} s ({timeout_name}) {progress}"
                )
            return SourceFailed(Reason.TIMEOUT, f"no answer within {timeout:g} s ({timeout_name})")
    for item in chain:
        if isinstance(item, http.client.IncompleteRead):
            return SourceFailed(Reason.TRUNCATED, f"body cut short {progress}", transient=True)
    for item in chain:
        if isinstance(item, _CLOSED):
            if phase == "body":
                return SourceFailed(
                    Reason.TRUNCATED, f"connection reset {progress}", transient=True
                )
            return SourceFailed(
                Reason.CONNECT, f"connection closed before an answer: {item}", transient=True
            )
    for item in chain:
        if isinstance(item, http.client.HTTPException):
            return SourceFailed(Reason.HTTP_STATUS, f"invalid HTTP response: {item!r}")
    if phase == "body":
        return SourceFailed(Reason.TRUNCATED, f"{_root_text(chain)} {progress}", transient=True)
    return SourceFailed(Reason.CONNECT, f"cannot connect: {_root_text(chain)}", transient=True)


def classify_status(status: int, body: bytes, retry_after: Optional[float]) -> SourceFailed:
    """The failure for an HTTP answer that is neither a success nor a redirect."""
    snippet = body[:4096].lower()
    if status == 403 and _FASTLY_SNI_TEXT in snippet:
        return SourceFailed(
            Reason.SNI_REQUIRED,
            "HTTP 403: the server does not support clients without Server Name Indication; "
            "use the host name, not an IP address, or a Python/OpenSSL with SNI",
            status=status,
        )
    if status in (404, 410):
        return SourceFailed(Reason.NOT_FOUND, f"HTTP {status}: no such file here", status=status)
    transient = is_transient_status(status)
    hint = " (temporary; retried)" if transient else ""
    return SourceFailed(
        Reason.HTTP_STATUS,
        f"HTTP {status} {_phrase(status)}{hint}",
        status=status,
        retry_after=retry_after,
        transient=transient,
    )


def is_transient_status(status: int) -> bool:
    """Statuses worth retrying on the same source: 408, 429 and 5xx."""
    return status in (408, 429) or 500 <= status <= 599


def _certificate_failure(exc: ssl.SSLCertVerificationError, ca_description: str) -> SourceFailed:
    code = getattr(exc, "verify_code", None)
    message = getattr(exc, "verify_message", None) or str(exc)
    if code in _EXPIRED:
        return SourceFailed(
            Reason.CERT_EXPIRED,
            f"the server's certificate has expired ({message}); "
            "check the server, or this machine's clock",
        )
    if code in _NOT_YET_VALID:
        return SourceFailed(
            Reason.CERT_EXPIRED,
            f"the server's certificate is not valid yet ({message}); check this machine's clock",
        )
    if code in _HOSTNAME:
        return SourceFailed(
            Reason.CERT_HOSTNAME,
            f"the certificate does not cover this host name ({message})",
        )
    used = f"CA bundle used: {ca_description}; " if ca_description else ""
    return SourceFailed(
        Reason.CERT_UNTRUSTED,
        f"certificate not trusted ({message}); {used}try --ca-bundle FILE or trust='system'",
    )


def _tls_failure(exc: ssl.SSLError, sni_sent: bool) -> SourceFailed:
    text = f"{getattr(exc, 'reason', None) or ''} {exc}".upper()
    if any(marker in text for marker in _SNI_MARKERS) or (
        not sni_sent and "HANDSHAKE_FAILURE" in text
    ):
        advice = (
            "the URL is an IP address, so none is sent: use the host name"
            if not sni_sent
            else "this client sent one; the server may not serve this name"
        )
        return SourceFailed(
            Reason.SNI_REQUIRED,
            f"handshake refused: this server needs SNI (server name indication); {advice} ({exc})",
        )
    if any(marker in text for marker in _TLS_VERSION_MARKERS):
        return SourceFailed(
            Reason.TLS_VERSION,
            f"no TLS version in common with the server ({exc}); this client offers TLS 1.2+",
        )
    if "WRONG_VERSION_NUMBER" in text or "RECORD_LAYER_FAILURE" in text:
        return SourceFailed(
            Reason.TLS_ERROR, f"the server does not speak TLS on this port: is it http://? ({exc})"
        )
    return SourceFailed(Reason.TLS_ERROR, f"TLS handshake failed: {exc}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps, outermost first (urllib3 nests them deeply)."""
    todo, seen = [exc], set()
    while todo:
        item = todo.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        nested = [item.__cause__, item.__context__, getattr(item, "reason", None)]
        nested += [arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException)]
        todo.extend(n for n in nested if isinstance(n, BaseException))


def _root_text(chain: list[BaseException]) -> str:
    root = chain[-1]
    return f"{type(root).__name__}: {root}" if str(root) else type(root).__name__


def _phrase(status: int) -> str:
    try:
        return http.client.responses[status]
    except KeyError:
        return ""
