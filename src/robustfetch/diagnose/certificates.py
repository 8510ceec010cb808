"""A server certificate's fields: :class:`CertificateInfo`, read by ``certificate_info()``.

With ``cryptography`` the DER certificate itself is parsed; without it, the fields
``getpeercert()`` gives for a verified connection are used, and the key stays unknown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["CertificateInfo", "certificate_info"]


@dataclass(frozen=True)
class CertificateInfo:
    """A server certificate's fields; key fields are ``None`` without ``cryptography``."""

    subject: str
    issuer: str
    sans: list[str]
    not_before: dt.datetime
    not_after: dt.datetime
    days_left: int  #: whole days until ``not_after`` (negative once expired)
    key_type: Optional[str]  #: "RSA", "EC", "Ed25519", ...
    key_bits: Optional[int]
    sha256: str  #: fingerprint of the DER certificate


def certificate_info(der: bytes, fields: Optional[Mapping[str, Any]] = None) -> CertificateInfo:
    """Parse a DER certificate with ``cryptography``, else from ``getpeercert()``'s ``fields``.

    :param der: the certificate, as ``getpeercert(binary_form=True)`` returns it.
    :param fields: ``getpeercert()`` of a verified connection, used without cryptography.
    :raises ValueError: it cannot be parsed.
    """
    fingerprint = hashlib.sha256(der).hexdigest()
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    except ImportError:
        if not fields:
            raise ValueError("cannot read the certificate: install cryptography") from None
        return _info_from_fields(fields, fingerprint)
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = san.get_values_for_type(x509.DNSName)
        sans += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    key = cert.public_key()
    kinds = [
        (rsa.RSAPublicKey, "RSA"),
        (ec.EllipticCurvePublicKey, "EC"),
        (dsa.DSAPublicKey, "DSA"),
        (ed25519.Ed25519PublicKey, "Ed25519"),
        (ed448.Ed448PublicKey, "Ed448"),
    ]
    key_type = next((name for kind, name in kinds if isinstance(key, kind)), type(key).__name__)
    bits: Optional[int] = {"Ed25519": 256, "Ed448": 456}.get(
        key_type, getattr(key, "key_size", None)
    )
    not_before, not_after = _validity(cert)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans,
        not_before=not_before,
        not_after=not_after,
        days_left=_days_left(not_after),
        key_type=key_type,
        key_bits=bits,
        sha256=fingerprint,
    )


def _validity(cert: Any) -> tuple[dt.datetime, dt.datetime]:
    """``not_valid_before/after`` as aware UTC datetimes, on cryptography before 42 too."""
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    utc = dt.timezone.utc
    return cert.not_valid_before.replace(tzinfo=utc), cert.not_valid_after.replace(tzinfo=utc)


_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
}


def _info_from_fields(fields: Mapping[str, Any], fingerprint: str) -> CertificateInfo:
    def name(rdns: Any) -> str:  # RFC 4514 order: most specific first
        return ",".join(f"{_SHORT_NAMES.get(k, k)}={v}" for rdn in reversed(rdns) for k, v in rdn)

    sans = [value for kind, value in fields.get("subjectAltName", ()) if kind == "DNS"]
    sans += [
        str(ipaddress.ip_address(value.strip()))
        for kind, value in fields.get("subjectAltName", ())
        if kind == "IP Address"
    ]

    def when(key: str) -> dt.datetime:
        seconds = ssl.cert_time_to_seconds(fields[key])
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)

    return CertificateInfo(
        subject=name(fields.get("subject", ())),
        issuer=name(fields.get("issuer", ())),
        sans=sans,
        not_before=when("notBefore"),
        not_after=when("notAfter"),
        days_left=_days_left(when("notAfter")),
        key_type=None,
        key_bits=None,
        sha256=fingerprint,
    )


def _parse_quietly(der: bytes, fields: Optional[Mapping[str, Any]]) -> Optional[CertificateInfo]:
    try:
        return certificate_info(der, fields)
    except ValueError:
        return None


def _covers(names: list[str], host: str) -> bool:
    """Whether one of a certificate's DNS names matches ``host`` (``*.`` for one label)."""
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
            return True
    return False


def _days_left(not_after: dt.datetime) -> int:
    """Whole days until ``not_after``, rounded towards zero (-2: expired two days ago)."""
    return int((not_after - _now()).total_seconds() / 86400)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
