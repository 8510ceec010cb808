"""SSL contexts and the choice of trust anchors (certifi, a bundle, the system store)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["Trust", "make_context", "resolve_trust"]


@dataclass(frozen=True)
class Trust:
    """Where trust anchors come from.

    :param kind: ``"bundle"``, ``"certifi"``, ``"system"`` or ``"truststore"``.
    :param path: the CA file, when there is one.
    """

    kind: str
    path: Optional[Path] = None

    def describe(self) -> str:
        return f"{self.kind} ({self.path})" if self.path else self.kind


def resolve_trust(ca_bundle: Optional[Path], trust: Optional[str]) -> Trust:
    """Pick the trust anchors: an explicit bundle, then ``trust``, then certifi, then the system."""
    if ca_bundle is not None:
        return Trust("bundle", ca_bundle)
    if trust in ("system", "truststore"):
        return Trust(trust)
    try:
        import certifi
    except ImportError:
        if trust == "certifi":
            raise ValueError("trust='certifi' but the certifi package is not installed") from None
        return Trust("system")
    return Trust("certifi", Path(certifi.where()))


def make_context(trust: Trust) -> ssl.SSLContext:
    """A verifying client context: TLS 1.2 or newer, HTTP/1.1 by ALPN, ``trust``'s anchors."""
    if trust.kind == "truststore":
        try:
            import truststore
        except ImportError:
            raise ValueError(
                "trust='truststore' needs the truststore package: "
                "pip install robustfetch[truststore]"
            ) from None
        context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if trust.path is not None:
            try:
                context.load_verify_locations(cafile=str(trust.path))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"CA bundle {str(trust.path)!r} is unusable: {exc}") from None
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context
