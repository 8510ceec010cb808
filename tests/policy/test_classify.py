"""Unit tests of robustfetch.policy.classify: neutral faults mapped to Reasons, no I/O types."""

from __future__ import annotations

from typing import Any

import pytest

from robustfetch import Reason
from robustfetch.policy.classify import FAULT_KINDS, Fault, classify_fault

CASES: list[tuple[Fault, dict[str, Any], Reason, bool, str]] = [
    (
        Fault("cert_verify", "certificate has expired", verify_code=10),
        {},
        Reason.CERT_EXPIRED,
        False,
        "expired",
    ),
    (Fault("cert_verify", "not yet valid", verify_code=9), {}, Reason.CERT_EXPIRED, False, "clock"),
    (
        Fault("cert_verify", "Hostname mismatch", verify_code=62),
        {},
        Reason.CERT_HOSTNAME,
        False,
        "host name",
    ),
    (
        Fault("cert_verify", "unable to get local issuer", verify_code=20),
        {"ca_description": "bundle X"},
        Reason.CERT_UNTRUSTED,
        False,
        "bundle X",
    ),
    (Fault("cert_hostname", "no match"), {}, Reason.CERT_HOSTNAME, False, "no match"),
    (
        Fault("tls", "alert", tls_codes="TLSV1_UNRECOGNIZED_NAME alert"),
        {},
        Reason.SNI_REQUIRED,
        False,
        "SNI",
    ),
    (
        Fault("tls", "hs", tls_codes="SSLV3_ALERT_HANDSHAKE_FAILURE hs"),
        {"sni_sent": False},
        Reason.SNI_REQUIRED,
        False,
        "IP address",
    ),
    (
        Fault("tls", "hs", tls_codes="SSLV3_ALERT_HANDSHAKE_FAILURE hs"),
        {},
        Reason.TLS_ERROR,
        False,
        "hs",
    ),
    (
        Fault("tls", "v", tls_codes="UNSUPPORTED_PROTOCOL v"),
        {},
        Reason.TLS_VERSION,
        False,
        "TLS version",
    ),
    (Fault("tls", "w", tls_codes="WRONG_VERSION_NUMBER w"), {}, Reason.TLS_ERROR, False, "http://"),
    (Fault("dns", "Name or service not known"), {}, Reason.DNS, False, "lookup"),
    (Fault("dns", "Temporary failure", temporary=True), {}, Reason.DNS, True, "for now"),
    (
        Fault("timeout", "timed out"),
        {"timeout": 3.0, "timeout_name": "connect_timeout"},
        Reason.TIMEOUT,
        False,
        "connect_timeout",
    ),
    (
        Fault("timeout", "timed out"),
        {"phase": "body", "received": 5, "expected": 9},
        Reason.STALLED,
        False,
        "after 5 of 9 bytes",
    ),
    (Fault("incomplete", "IncompleteRead"), {"phase": "body"}, Reason.TRUNCATED, True, "cut short"),
    (Fault("closed", "reset"), {}, Reason.CONNECT, True, "closed before an answer"),
    (Fault("closed", "reset"), {"phase": "body"}, Reason.TRUNCATED, True, "reset"),
    (Fault("protocol", "BadStatusLine('x')"), {}, Reason.HTTP_STATUS, True, "invalid HTTP"),
    (Fault("other", "OSError: no route"), {}, Reason.CONNECT, True, "no route"),
    (Fault("other", "OSError: EIO"), {"phase": "body"}, Reason.TRUNCATED, True, "EIO"),
    (Fault("other", "refused"), {"via_proxy": True}, Reason.PROXY, True, "proxy"),
    (Fault("tls", "bad", tls_codes="X"), {"via_proxy": True}, Reason.PROXY, True, "proxy"),
    (
        Fault("tls", "bad record mac", tls_codes="DECRYPTION_FAILED_OR_BAD_RECORD_MAC"),
        {"phase": "body", "received": 7, "expected": 9},
        Reason.TRUNCATED,
        True,
        "TLS stream broke after 7 of 9 bytes",
    ),
]


@pytest.mark.parametrize(("fault", "context", "reason", "transient", "words"), CASES)
def test_classify_fault(
    fault: Fault, context: dict[str, Any], reason: Reason, transient: bool, words: str
) -> None:
    failure = classify_fault(fault, **{"phase": "connect", **context})
    assert failure.reason is reason
    assert failure.transient is transient
    assert words in failure.detail


def test_every_kind_is_classified() -> None:
    for kind in FAULT_KINDS:
        assert isinstance(classify_fault(Fault(kind, "x"), phase="connect").reason, Reason)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="'socket'"):
        Fault("socket", "x")
