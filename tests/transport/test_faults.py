"""Exceptions described as faults (transport.faults) and mapped to Reasons, and HTTP answers."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest

from robustfetch import Reason
from robustfetch.errors import SourceFailed
from robustfetch.policy.classify import classify_status
from robustfetch.transport.faults import classify_exception

CA = "bundle (/etc/test/ca-bundle.pem)"

# -- real exception objects -----------------------------------------------------------


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(
        1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message} (_ssl.c:1006)"
    )
    exc.reason = "CERTIFICATE_VERIFY_FAILED"
    exc.library = "SSL"
    exc.verify_code = code
    exc.verify_message = message
    return exc


def ssl_error(reason: str, text: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {text} (_ssl.c:1006)")
    exc.reason = reason
    exc.library = "SSL"
    return exc


def ssl_error_plain(reason: str, text: str) -> ssl.SSLError:
    """An SSLError whose message lacks the ``[SSL: REASON]`` code (only ``.reason`` has it)."""
    exc = ssl.SSLError(1, text)
    exc.reason = reason
    exc.library = "SSL"
    return exc


def wrap_cause(inner: BaseException) -> Exception:
    """``inner`` two levels deep, by ``raise ... from ...``, inside generic exceptions."""
    try:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise Exception("connection pool: request failed") from exc
        except Exception as exc:
            raise Exception("max retries exceeded") from exc
    except Exception as outer:
        return outer


def wrap_context(inner: BaseException) -> Exception:
    """``inner`` two levels deep by implicit chaining (an error while handling it)."""
    try:
        try:
            try:
                raise inner
            except BaseException:
                raise RuntimeError("while handling")  # noqa: B904 - implicit chaining on purpose
        except BaseException:
            raise Exception("outer")  # noqa: B904 - implicit chaining on purpose
    except Exception as outer:
        return outer


def wrap_explicit_cause(inner: BaseException) -> Exception:
    """``inner`` two levels deep through ``__cause__`` alone (no ``__context__``)."""
    middle = Exception("connection pool: request failed")
    middle.__cause__ = inner
    outer = Exception("max retries exceeded")
    outer.__cause__ = middle
    return outer


class _Urllib3Like(Exception):
    """urllib3 keeps the cause in ``.reason`` (MaxRetryError) or in ``args`` (ProtocolError)."""

    def __init__(self, message: str, reason: Optional[BaseException] = None) -> None:
        super().__init__(message)
        self.reason = reason


def wrap_attributes(inner: BaseException) -> Exception:
    protocol_error = Exception("Connection aborted.", inner)
    return _Urllib3Like("Max retries exceeded with url: /f", reason=protocol_error)


WRAPPERS: dict[str, Callable[[BaseException], BaseException]] = {
    "bare": lambda exc: exc,
    "cause": wrap_cause,
    "explicit-cause": wrap_explicit_cause,
    "context": wrap_context,
    "attributes": wrap_attributes,
}


@dataclass
class Case:
    """One exception (made fresh per test) and what classify_exception must say about it."""

    make: Callable[[], BaseException]
    reason: Reason
    transient: bool
    detail: list[str]
    kwargs: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "cert-expired": Case(
        lambda: cert_error(10, "certificate has expired"),
        Reason.CERT_EXPIRED,
        False,
        ["expired", "clock"],
    ),
    "cert-not-yet-valid": Case(
        lambda: cert_error(9, "certificate is not yet valid"),
        Reason.CERT_EXPIRED,
        False,
        ["not valid yet", "clock"],
    ),
    "cert-hostname": Case(
        lambda: cert_error(62, "Hostname mismatch, certificate is not valid for 'a.example'."),
        Reason.CERT_HOSTNAME,
        False,
        ["Hostname mismatch", "a.example"],
    ),
    "cert-ip-address": Case(
        lambda: cert_error(64, "IP address mismatch, certificate is not valid for '10.0.0.1'."),
        Reason.CERT_HOSTNAME,
        False,
        ["10.0.0.1"],
    ),
    "cert-untrusted": Case(
        lambda: cert_error(20, "unable to get local issuer certificate"),
        Reason.CERT_UNTRUSTED,
        False,
        ["unable to get local issuer certificate", CA, "--ca-bundle"],
        {"ca_description": CA},
    ),
    "cert-self-signed": Case(
        lambda: cert_error(18, "self-signed certificate"),
        Reason.CERT_UNTRUSTED,
        False,
        ["self-signed certificate", CA],
        {"ca_description": CA},
    ),
    "cert-error-via-proxy": Case(
        lambda: cert_error(10, "certificate has expired"),
        Reason.CERT_EXPIRED,
        False,
        ["expired"],
        {"via_proxy": True},
    ),
    "tls-protocol-version": Case(
        lambda: ssl_error("TLSV1_ALERT_PROTOCOL_VERSION", "tlsv1 alert protocol version"),
        Reason.TLS_VERSION,
        False,
        ["TLS", "TLSV1_ALERT_PROTOCOL_VERSION"],
    ),
    "tls-unsupported-protocol": Case(
        lambda: ssl_error("UNSUPPORTED_PROTOCOL", "unsupported protocol"),
        Reason.TLS_VERSION,
        False,
        ["UNSUPPORTED_PROTOCOL"],
    ),
    "sni-unrecognized-name": Case(
        lambda: ssl_error("TLSV1_UNRECOGNIZED_NAME", "tlsv1 unrecognized name"),
        Reason.SNI_REQUIRED,
        False,
        ["SNI", "TLSV1_UNRECOGNIZED_NAME"],
    ),
    "sni-reason-only-in-attribute": Case(
        lambda: ssl_error_plain("TLSV1_UNRECOGNIZED_NAME", "tlsv1 unrecognized name"),
        Reason.SNI_REQUIRED,
        False,
        ["SNI"],
    ),
    "tls-version-reason-only-in-attribute": Case(
        lambda: ssl_error_plain("TLSV1_ALERT_PROTOCOL_VERSION", "tlsv1 alert protocol version"),
        Reason.TLS_VERSION,
        False,
        ["protocol version"],
    ),
    "handshake-failure-without-sni": Case(
        lambda: ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE", "sslv3 alert handshake failure"),
        Reason.SNI_REQUIRED,
        False,
        ["SNI", "IP address", "host name"],
        {"sni_sent": False},
    ),
    "handshake-failure-with-sni": Case(
        lambda: ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE", "sslv3 alert handshake failure"),
        Reason.TLS_ERROR,
        False,
        ["SSLV3_ALERT_HANDSHAKE_FAILURE"],
        {"sni_sent": True},
    ),
    "tls-wrong-version-number": Case(
        lambda: ssl_error("WRONG_VERSION_NUMBER", "wrong version number"),
        Reason.TLS_ERROR,
        False,
        ["http://"],
    ),
    "dns": Case(
        lambda: socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        Reason.DNS,
        False,
        ["Name or service not known"],
    ),
    "timeout-connect": Case(
        lambda: TimeoutError("timed out"),
        Reason.TIMEOUT,
        False,
        ["7.5 s"],
        {"phase": "connect", "timeout": 7.5},
    ),
    "socket-timeout-connect": Case(
        lambda: socket.timeout("_ssl.c:980: The handshake operation timed out"),
        Reason.TIMEOUT,
        False,
        ["10 s"],
        {"phase": "connect", "timeout": 10.0},
    ),
    "timeout-body": Case(
        lambda: TimeoutError("The read operation timed out"),
        Reason.STALLED,
        False,
        ["30 s", "stall_timeout", "after 4096 of 10000 bytes"],
        {"phase": "body", "timeout": 30.0, "received": 4096, "expected": 10000},
    ),
    "timeout-body-unknown-length": Case(
        lambda: TimeoutError("timed out"),
        Reason.STALLED,
        False,
        ["after 12 of ? bytes"],
        {"phase": "body", "timeout": 5.0, "received": 12},
    ),
    "incomplete-read": Case(
        lambda: http.client.IncompleteRead(b"x" * 100, 900),
        Reason.TRUNCATED,
        True,
        ["after 100 of 1000 bytes"],
        {"phase": "body", "received": 100, "expected": 1000},
    ),
    "reset-connect": Case(
        lambda: ConnectionResetError(104, "Connection reset by peer"),
        Reason.CONNECT,
        True,
        ["Connection reset by peer"],
        {"phase": "connect"},
    ),
    "reset-body": Case(
        lambda: ConnectionResetError(104, "Connection reset by peer"),
        Reason.TRUNCATED,
        True,
        ["reset", "after 500 of 2000 bytes"],
        {"phase": "body", "received": 500, "expected": 2000},
    ),
    "remote-disconnected-connect": Case(
        lambda: http.client.RemoteDisconnected("Remote end closed connection without response"),
        Reason.CONNECT,
        True,
        ["closed connection without response"],
        {"phase": "connect"},
    ),
    "broken-pipe-body": Case(
        lambda: BrokenPipeError(32, "Broken pipe"),
        Reason.TRUNCATED,
        True,
        ["after 1 of 2 bytes"],
        {"phase": "body", "received": 1, "expected": 2},
    ),
    "refused": Case(
        lambda: ConnectionRefusedError(111, "Connection refused"),
        Reason.CONNECT,
        True,
        ["Connection refused"],
        {"phase": "connect"},
    ),
    "refused-via-proxy": Case(
        lambda: ConnectionRefusedError(111, "Connection refused"),
        Reason.PROXY,
        True,
        ["proxy", "Connection refused"],
        {"phase": "connect", "via_proxy": True},
    ),
    "unknown-oserror-connect": Case(
        lambda: OSError(113, "No route to host"),
        Reason.CONNECT,
        True,
        ["No route to host"],
        {"phase": "connect"},
    ),
    "unknown-oserror-body": Case(
        lambda: OSError(5, "Input/output error"),
        Reason.TRUNCATED,
        True,
        ["after 3 of 9 bytes"],
        {"phase": "body", "received": 3, "expected": 9},
    ),
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("name", list(CASES))
def test_classify_exception(name: str, wrapper: str) -> None:
    case = CASES[name]
    kwargs = {"phase": "connect", **case.kwargs}
    exc = WRAPPERS[wrapper](case.make())
    failure = classify_exception(exc, **kwargs)
    assert isinstance(failure, SourceFailed)
    assert isinstance(failure.reason, Reason)
    assert failure.reason is case.reason
    assert failure.transient is case.transient
    for bit in case.detail:
        assert bit in failure.detail, f"{bit!r} missing from {failure.detail!r}"
    assert failure.status is None


def test_wrappers_really_hide_the_exception() -> None:
    """The wrapped forms are not the original class: classification must walk the chain."""
    inner = ConnectionRefusedError(111, "Connection refused")
    for name, wrap in WRAPPERS.items():
        if name != "bare":
            assert not isinstance(wrap(inner), OSError)


# -- classify_status ------------------------------------------------------------------

FASTLY_SNI = (
    b"Client does not support Server Name Indication (SNI). "
    b"Please upgrade to a client that supports SNI."
)


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "reason", "transient"),
    [
        (404, b"Not Found", None, Reason.NOT_FOUND, False),
        (410, b"Gone", None, Reason.NOT_FOUND, False),
        (404, FASTLY_SNI, None, Reason.NOT_FOUND, False),  # only a 403 means SNI
        (503, b"Service Unavailable", None, Reason.HTTP_STATUS, True),
        (503, b"", 120.0, Reason.HTTP_STATUS, True),
        (429, b"Too Many Requests", 30.0, Reason.HTTP_STATUS, True),
        (408, b"", None, Reason.HTTP_STATUS, True),
        (500, b"", None, Reason.HTTP_STATUS, True),
        (502, b"", None, Reason.HTTP_STATUS, True),
        (504, b"", 1.0, Reason.HTTP_STATUS, True),
        (599, b"", None, Reason.HTTP_STATUS, True),
        (403, b"Forbidden", None, Reason.HTTP_STATUS, False),
        (403, b"SNI", None, Reason.HTTP_STATUS, False),
        (401, b"", None, Reason.HTTP_STATUS, False),
        (400, b"", None, Reason.HTTP_STATUS, False),
        (418, b"", None, Reason.HTTP_STATUS, False),
        (451, b"", None, Reason.HTTP_STATUS, False),
        (206, b"", None, Reason.HTTP_STATUS, False),  # unexpected success
        (403, FASTLY_SNI, None, Reason.SNI_REQUIRED, False),
        (403, FASTLY_SNI.upper(), None, Reason.SNI_REQUIRED, False),
        (403, FASTLY_SNI.lower(), None, Reason.SNI_REQUIRED, False),
        (403, FASTLY_SNI.swapcase(), None, Reason.SNI_REQUIRED, False),
        (
            403,
            b"<html><body><h1>Error 403</h1><p>" + FASTLY_SNI + b"</p></body></html>",
            None,
            Reason.SNI_REQUIRED,
            False,
        ),
        (
            403,
            b"Fastly error: " + b"x" * 1000 + b"\n" + FASTLY_SNI,
            None,
            Reason.SNI_REQUIRED,
            False,
        ),
    ],
)
def test_classify_status(
    status: int,
    body: bytes,
    retry_after: Optional[float],
    reason: Reason,
    transient: bool,
) -> None:
    failure = classify_status(status, body, retry_after)
    assert isinstance(failure.reason, Reason)
    assert failure.reason is reason
    assert failure.transient is transient
    assert failure.status == status
    assert str(status) in failure.detail
    if reason is Reason.HTTP_STATUS:
        assert failure.retry_after == retry_after
    if reason is Reason.SNI_REQUIRED:
        assert "Server Name Indication" in failure.detail
        assert "host name" in failure.detail


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(503, "Service Unavailable"), (429, "Too Many Requests"), (403, "Forbidden")],
)
def test_classify_status_names_the_status(status: int, phrase: str) -> None:
    assert phrase in classify_status(status, b"", None).detail
