"""Map a failed try to a Reason and advice: a transport's neutral :class:`Fault`, or an HTTP answer.

Transports know their exception types (``ssl``, ``socket``, ``http.client``,
urllib3); this module knows none of them. Each transport describes what went
wrong as a :class:`Fault` (see :mod:`robustfetch.transport.faults`), and the
decision of what that means for the user is made here, without any I/O.

>>> classify_fault(Fault("timeout", "timed out"), phase="body", timeout=30.0).reason.value
'stalled'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import Reason, SourceFailed

__all__ = ["FAULT_KINDS", "Fault", "classify_fault", "classify_status", "is_transient_status"]

#: What a transport may say went wrong, most specific first.
FAULT_KINDS = (
    "cert_verify",  # the certificate chain or its validity failed verification
    "cert_hostname",  # the certificate does not cover the host name
    "tls",  # any other TLS failure (alerts, versions, not TLS at all)
    "dns",  # the host name did not resolve
    "timeout",  # no answer (or no more bytes) within the timeout
    "incomplete",  # the body ended before its announced length
    "closed",  # the peer reset or closed the connection
    "protocol",  # the answer was not valid HTTP
    "ftp",  # an FTP server's refusal or error reply (reply_code says which)
    "other",  # anything else below HTTP
)


@dataclass(frozen=True)
class Fault:
    """What went wrong below HTTP, described without the transport's exception types.

    :param kind: one of :data:`FAULT_KINDS`.
    :param text: the underlying error in words (``Type: message``), for details.
    :param verify_code: OpenSSL's ``X509_V_ERR_*`` code of a certificate failure.
    :param tls_codes: upper-case TLS error codes and text (``UNRECOGNIZED_NAME ...``).
    :param temporary: a DNS failure the resolver itself calls temporary (``EAI_AGAIN``).
    :param reply_code: an FTP server's three-digit reply (``550``), for kind ``"ftp"``.
    """

    kind: str
    text: str
    verify_code: Optional[int] = None
    tls_codes: str = ""
    temporary: bool = False
    reply_code: Optional[int] = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")


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


def classify_fault(
    fault: Fault,
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
    """Turn ``fault`` into a :class:`SourceFailed` with a reason and a detail a user can act on.

    :param fault: what the transport saw.
    :param phase: ``"connect"`` (before any response) or ``"body"`` (while streaming).
    :param received: body bytes received so far.
    :param expected: the announced body size, if any.
    :param timeout: the timeout that applied, for the message.
    :param timeout_name: its option name, for the message.
    :param sni_sent: whether the TLS handshake carried a server name.
    :param via_proxy: a proxy was in use and the fault came from reaching it.
    :param ca_description: the trust anchors used, for certificate advice.
    """
    kind, text = fault.kind, fault.text
    if kind == "cert_verify":
        return _certificate_failure(fault, ca_description)
    if kind == "cert_hostname":
        return SourceFailed(Reason.CERT_HOSTNAME, f"certificate does not match the host: {text}")
    if via_proxy:
        return SourceFailed(Reason.PROXY, f"proxy failed: {text}", transient=True)
    progress = f"after {received} of {expected if expected is not None else '?'} bytes"
    if kind == "tls" and phase == "body":
        # TLS authenticated every record before the broken one: those bytes are
        # the server's, and a resume continues after them.
        return SourceFailed(
            Reason.TRUNCATED, f"the TLS stream broke {progress}: {text}", transient=True
        )
    if kind == "tls":
        return _tls_failure(fault, sni_sent)
    if kind == "dns":
        if fault.temporary:
            return SourceFailed(
                Reason.DNS, f"host name lookup failed for now: {text}", transient=True
            )
        return SourceFailed(Reason.DNS, f"host name lookup failed: {text}")
    if kind == "timeout":
        if phase == "body":
            return SourceFailed(
                Reason.STALLED, f"no data for {timeout:g} s ({timeout_name}) {progress}"
            )
        return SourceFailed(Reason.TIMEOUT, f"no answer within {timeout:g} s ({timeout_name})")
    if kind == "incomplete":
        return SourceFailed(Reason.TRUNCATED, f"body cut short {progress}", transient=True)
    if kind == "closed":
        if phase == "body":
            return SourceFailed(Reason.TRUNCATED, f"connection reset {progress}", transient=True)
        return SourceFailed(
            Reason.CONNECT, f"connection closed before an answer: {text}", transient=True
        )
    if kind == "protocol":
        return SourceFailed(Reason.HTTP_STATUS, f"invalid HTTP response: {text}")
    if kind == "ftp":
        return _ftp_failure(fault, phase, progress)
    if phase == "body":
        return SourceFailed(Reason.TRUNCATED, f"{text} {progress}", transient=True)
    return SourceFailed(Reason.CONNECT, f"cannot connect: {text}", transient=True)


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


def _ftp_failure(fault: Fault, phase: str, progress: str) -> SourceFailed:
    """An FTP reply: 550 is a missing file, 530 a refused login, 4xx worth a retry.

    >>> _ftp_failure(Fault("ftp", "550 No such file", reply_code=550), "connect", "").reason.value
    'not_found'
    """
    code, text = fault.reply_code, fault.text
    if phase == "body":
        return SourceFailed(
            Reason.TRUNCATED,
            f"the FTP server aborted the transfer ({text}) {progress}",
            transient=True,
        )
    if code in (550, 450):
        return SourceFailed(Reason.NOT_FOUND, f"FTP {text}: no such file here")
    if code in (530, 532):
        return SourceFailed(
            Reason.HTTP_STATUS,
            f"FTP login refused ({text}): the server does not accept the user sent "
            "(anonymous unless credentials are given for this host)",
            transient=False,  # the same login is refused again: move on at once
        )
    if code is not None and 400 <= code < 500:
        return SourceFailed(Reason.HTTP_STATUS, f"FTP {text} (temporary; retried)", transient=True)
    return SourceFailed(Reason.HTTP_STATUS, f"FTP server refused: {text}", transient=False)


def _certificate_failure(fault: Fault, ca_description: str) -> SourceFailed:
    code, message = fault.verify_code, fault.text
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


def _tls_failure(fault: Fault, sni_sent: bool) -> SourceFailed:
    text, exc = fault.tls_codes.upper(), fault.text
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


def _phrase(status: int) -> str:
    return _PHRASES.get(status, "")


# The common reason phrases (RFC 9110), without importing an HTTP library here.
_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    418: "I'm a Teapot",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    507: "Insufficient Storage",
    508: "Loop Detected",
    511: "Network Authentication Required",
}
