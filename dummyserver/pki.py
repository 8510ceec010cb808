"""The test certificate authority: trustme, or the same API on ``cryptography`` alone.

trustme is what the tests use; but trustme needs the ``idna`` package, and
the suite must also run where ``idna`` (like urllib3 and certifi) is not
installed, to prove robustfetch does not need it. There, the fallback below
stands in, encoding Unicode names with Python's own ``idna`` codec.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import ipaddress
import ssl
import tempfile
from pathlib import Path
from typing import Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = ["CA", "Blob", "KeyType", "LeafCert"]

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]


class KeyType(enum.Enum):
    RSA = "rsa"
    ECDSA = "ecdsa"

    def generate(self) -> PrivateKey:
        if self is KeyType.RSA:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())


class Blob:
    """PEM bytes, as trustme hands them out."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def bytes(self) -> bytes:
        return self._data

    def write_to_path(self, path: Union[str, Path], append: bool = False) -> None:
        with open(path, "ab" if append else "wb") as handle:
            handle.write(self._data)


class LeafCert:
    """A server certificate, its key and its chain."""

    def __init__(self, key: PrivateKey, chain: list[x509.Certificate]) -> None:
        self.private_key_pem = Blob(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.cert_chain_pems = [Blob(c.public_bytes(serialization.Encoding.PEM)) for c in chain]
        self.certificate = chain[0]

    def configure_cert(self, context: ssl.SSLContext) -> None:
        """Load this certificate and key into a server-side ``context``."""
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(b"".join(blob.bytes() for blob in self.cert_chain_pems))
            key.write_bytes(self.private_key_pem.bytes())
            context.load_cert_chain(str(cert), str(key))


class CA:
    """A self-signed certificate authority that issues :class:`LeafCert` s."""

    def __init__(
        self, organization_name: Optional[str] = None, key_type: KeyType = KeyType.ECDSA
    ) -> None:
        self._key = key_type.generate()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization_name or "dummyserver"),
                x509.NameAttribute(NameOID.COMMON_NAME, "dummyserver test CA"),
            ]
        )
        now = _now()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=9), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = Blob(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue_cert(
        self,
        *identities: str,
        common_name: Optional[str] = None,
        organization_name: Optional[str] = None,
        not_before: Optional[datetime.datetime] = None,
        not_after: Optional[datetime.datetime] = None,
        key_type: KeyType = KeyType.ECDSA,
    ) -> LeafCert:
        """A leaf certificate for host names and IP addresses ``identities``."""
        key = key_type.generate()
        now = _now()
        attributes = [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization_name or "dummyserver")
        ]
        if common_name:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        public = self._cert.public_key()
        assert isinstance(public, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(days=1))
            .not_valid_after(not_after or now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([_general_name(i) for i in identities]),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return LeafCert(key, [cert])


def _general_name(identity: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity.encode("idna").decode("ascii"))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# The real thing wherever it is installed (the test extra).
with contextlib.suppress(ImportError):
    from trustme import CA, Blob, KeyType, LeafCert  # type: ignore[assignment]
