"""Test certificates: a CA, its PEM bundle on disk, and server SSLContexts of each kind.

``Certs`` makes everything once; the ``*_context()`` methods return a fresh server-side
``ssl.SSLContext`` on each call. Unicode identities (``"bücher.example"``) are IDNA-encoded
into the certificate's subjectAltName (``xn--bcher-kva.example``). The CA is
:mod:`dummyserver.pki` (trustme's API on ``cryptography`` alone, no ``idna``).
"""

from __future__ import annotations

import datetime
import shutil
import ssl
import tempfile
from pathlib import Path

from dummyserver import pki

__all__ = ["CONTEXT_KINDS", "GOOD_IDENTITIES", "WRONG_HOST_IDENTITY", "Certs"]

#: Names and addresses covered by the "good", "expired" and "untrusted" certificates.
GOOD_IDENTITIES: tuple[str, ...] = (
    "localhost",
    "127.0.0.1",
    "::1",
    "example.test",
    "files.pythonhosted.org",
    "pypi.io",
    "pypi.org",
    "bücher.example",
)
#: The only name in the "wrong_host" certificate.
WRONG_HOST_IDENTITY = "other.invalid"
#: Accepted values of ``Certs.context_for(kind)``.
CONTEXT_KINDS: tuple[str, ...] = ("good", "expired", "wrong_host", "untrusted")


class Certs:
    """A CA trusted through :attr:`ca_bundle`, and leaf certificates signed by it (or not).

    Attributes:
        ca: the trusted ``pki.CA``.
        ca_bundle: path of a PEM file holding only ``ca``'s certificate.
        untrusted_ca: a second CA that is *not* in ``ca_bundle``.
        good, expired, wrong_host, untrusted: the ``pki.LeafCert`` of each kind.
    """

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="dummyserver-certs-"))
        try:
            self.ca = pki.CA()
            self.untrusted_ca = pki.CA()
            self.ca_bundle = self._dir / "ca-bundle.pem"
            self.ca.cert_pem.write_to_path(str(self.ca_bundle))
            now = datetime.datetime.now(datetime.timezone.utc)
            self.good = self.ca.issue_cert(*GOOD_IDENTITIES)
            self.expired = self.ca.issue_cert(
                *GOOD_IDENTITIES,
                not_before=now - datetime.timedelta(days=30),
                not_after=now - datetime.timedelta(days=2),
            )
            self.wrong_host = self.ca.issue_cert(WRONG_HOST_IDENTITY)
            self.untrusted = self.untrusted_ca.issue_cert(*GOOD_IDENTITIES)
        except BaseException:
            self.cleanup()
            raise

    @staticmethod
    def _server_context(leaf: pki.LeafCert) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        return context

    def good_context(self) -> ssl.SSLContext:
        """Server context: valid certificate for :data:`GOOD_IDENTITIES`, signed by ``ca``."""
        return self._server_context(self.good)

    def expired_context(self) -> ssl.SSLContext:
        """Server context: same identities, signed by ``ca``, valid only until 2 days ago."""
        return self._server_context(self.expired)

    def wrong_host_context(self) -> ssl.SSLContext:
        """Server context: signed by ``ca`` but only for ``other.invalid``."""
        return self._server_context(self.wrong_host)

    def untrusted_context(self) -> ssl.SSLContext:
        """Server context: good identities, signed by a CA that is not in ``ca_bundle``."""
        return self._server_context(self.untrusted)

    def context_for(self, kind: str) -> ssl.SSLContext:
        """``"good"`` | ``"expired"`` | ``"wrong_host"`` | ``"untrusted"`` -> server context."""
        if kind == "good":
            return self.good_context()
        if kind == "expired":
            return self.expired_context()
        if kind == "wrong_host":
            return self.wrong_host_context()
        if kind == "untrusted":
            return self.untrusted_context()
        raise ValueError(f"unknown certificate kind {kind!r}; expected one of {CONTEXT_KINDS}")

    def client_context(self) -> ssl.SSLContext:
        """Client context that verifies against ``ca_bundle`` only (hostname checks on)."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def cleanup(self) -> None:
        """Delete the temporary directory holding ``ca_bundle``. Safe to call twice."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Certs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()
