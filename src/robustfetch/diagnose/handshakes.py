"""The TLS versions this client negotiates, measured by real handshakes in memory.

Each version is tried by a default client context pinned to it against a throwaway
server (a fresh self-signed certificate, every version accepted), the two joined by
``ssl.MemoryBIO`` buffers: no socket, no port. Without ``cryptography`` (needed for
that certificate) only the ``ssl.HAS_TLS*`` flags are left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
import warnings
from typing import Optional

from ..store.scratch import scratch_files

__all__ = ["measure_tls_versions"]

#: (name reported by ``SSLSocket.version()``, ``ssl.TLSVersion`` member)
_TLS_VERSIONS = [("TLSv1", "TLSv1"), ("TLSv1.1", "TLSv1_1"), ("TLSv1.2", "TLSv1_2")]
_TLS_VERSIONS.append(("TLSv1.3", "TLSv1_3"))


def measure_tls_versions() -> Optional[frozenset[str]]:
    """TLS versions a default client context negotiates here, by real handshakes.

    Each version is tried by a client pinned to it against an in-memory server
    (``ssl.MemoryBIO``: no socket, no port) that accepts every version. ``None``
    when ``cryptography`` (needed for the server's throwaway certificate) is missing.
    """
    server = _throwaway_server_context()
    if server is None:
        return None
    found = set()
    for name, member in _TLS_VERSIONS:
        client = _pinned_client(member)
        if client is not None and _handshake_in_memory(server, client) == name:
            found.add(name)
    return frozenset(found)


def _flag_versions() -> frozenset[str]:
    return frozenset(name for name, member in _TLS_VERSIONS if getattr(ssl, f"HAS_{member}"))


def _throwaway_server_context() -> Optional[ssl.SSLContext]:
    """A server context with a fresh self-signed certificate, accepting every TLS version."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "robustfetch probe")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated, and wanted here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):  # let the client's own limits decide
        context.set_ciphers("ALL:@SECLEVEL=0")
    pem = {
        "cert.pem": cert.public_bytes(serialization.Encoding.PEM),
        "key.pem": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }
    # ssl loads a certificate chain only from files.
    with scratch_files(pem, prefix="robustfetch-probe-") as files:
        context.load_cert_chain(files["cert.pem"], files["key.pem"])
    return context


def _pinned_client(member: str) -> Optional[ssl.SSLContext]:
    """A default client context that offers only ``ssl.TLSVersion.<member>``, if it can."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.minimum_version = client.maximum_version = getattr(ssl.TLSVersion, member)
    except (AttributeError, ValueError, ssl.SSLError):
        return None
    return client


def _handshake_in_memory(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> Optional[str]:
    """The TLS version the two contexts negotiate, or ``None`` if the handshake fails."""
    # Two endpoints joined by memory buffers: what one writes, the other reads.
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    sides = [(client, client_out, server_in), (server, server_out, client_in)]
    done = [False, False]
    for _ in range(8):
        for index, (side, outgoing, peer_in) in enumerate(sides):
            try:
                if not done[index]:
                    side.do_handshake()
                    done[index] = True
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, OSError):
                return None
            peer_in.write(outgoing.read())
        if all(done):
            return client.version()
    return None
