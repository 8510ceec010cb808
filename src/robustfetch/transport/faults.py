"""Exceptions of the network libraries turned into neutral faults (no Reason decided here).

This is the one place that knows ``ssl``, ``socket`` and ``http.client``
exception types (and urllib3's, by the wrappers it nests them in); what a
fault means for the user is decided in :mod:`robustfetch.policy.classify`.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import SourceFailed
from ..policy.classify import Fault, classify_fault
from ..policy.headers import parse_digits

__all__ = ["classify_exception", "describe"]

_CLOSED = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    http.client.RemoteDisconnected,
)


def describe(exc: BaseException) -> Fault:
    """What ``exc`` (and every exception it wraps) says went wrong, most telling cause first."""
    chain = list(_chain(exc))
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            message = getattr(item, "verify_message", None) or str(item)
            return Fault("cert_verify", message, verify_code=getattr(item, "verify_code", None))
        if type(item).__name__ == "CertificateError":
            return Fault("cert_hostname", str(item))
    for item in chain:
        if isinstance(item, ssl.SSLError):
            codes = f"{getattr(item, 'reason', None) or ''} {item}"
            return Fault("tls", str(item), tls_codes=codes)
    for item in chain:
        if isinstance(item, socket.gaierror):
            temporary = item.errno == getattr(socket, "EAI_AGAIN", None)
            return Fault("dns", str(item), temporary=temporary)
    ftplib = sys.modules.get("ftplib")  # loaded only once an ftp:// source was used
    for item in chain:
        if ftplib is not None and isinstance(item, ftplib.Error):
            text = str(item).strip()
            code = parse_digits(text[:3])
            return Fault("ftp", text or type(item).__name__, reply_code=code)
    for item in chain:
        if isinstance(item, (TimeoutError, socket.timeout)):
            return Fault("timeout", _text(item))
    for item in chain:
        if isinstance(item, http.client.IncompleteRead):
            return Fault("incomplete", _text(item))
    for item in chain:
        if isinstance(item, _CLOSED):
            return Fault("closed", str(item))
    for item in chain:
        if isinstance(item, http.client.HTTPException):
            return Fault("protocol", repr(item))
    return Fault("other", _text(chain[-1]))


def classify_exception(exc: BaseException, **context: Any) -> SourceFailed:
    """:func:`~robustfetch.policy.classify.classify_fault` of what ``exc`` describes.

    :param exc: the exception a transport (or a probe) caught.
    :param context: the keywords of :func:`~robustfetch.policy.classify.classify_fault`.
    """
    return classify_fault(describe(exc), **context)


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


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
