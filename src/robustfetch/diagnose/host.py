"""What one server demands: ``probe_host()`` and its :class:`HostReport`, address by address.

``probe_host()`` connects to every resolved address of a host (or through the proxy
in force), reports the handshake, the certificate and whether it verifies, and tests
whether the server needs SNI. The report prints as a short text a person reads at
a glance.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from ..errors import SourceFailed
from ..options import Options, make_options
from ..policy.urls import authority, is_ip_literal, normalise_host, split_host_port
from ..transport import TransportSettings
from ..transport.faults import classify_exception
from ..transport.probing import ProxyFailure, connect_address, stream_addresses, tunnel
from ..transport.proxies import proxies_from_environment, proxy_for
from ..transport.tls import make_context, resolve_trust
from .certificates import CertificateInfo, _covers, _now, _parse_quietly
from .client import _mask, _os_text

__all__ = ["AddressReport", "HostReport", "probe_host"]

_Connect = Callable[[], socket.socket]


@dataclass(frozen=True)
class AddressReport:
    """One resolved address: TCP, the TLS handshake with SNI, and verification."""

    address: str
    reachable: bool = False
    tls_version: Optional[str] = None
    cipher: Optional[str] = None
    alpn: Optional[str] = None
    verified: bool = False
    error: Optional[str] = None
    reason: Optional[str] = None  #: a :class:`~robustfetch.Reason` value, as fetch reports it
    certificate: Optional[CertificateInfo] = None


@dataclass(frozen=True)
class HostReport:
    """One host: every address, whether it needs SNI, and why."""

    host: str
    port: int
    requires_sni: Optional[bool] = None
    sni_note: str = ""
    addresses: list[AddressReport] = field(default_factory=list)
    trust: str = ""
    connect_to: Optional[str] = None
    proxy: Optional[str] = None
    error: Optional[str] = None

    @property
    def certificate(self) -> Optional[CertificateInfo]:
        """The certificate of the first address that sent one."""
        return next((a.certificate for a in self.addresses if a.certificate), None)

    @property
    def verified(self) -> bool:
        """Some address is reachable and every reachable one verified."""
        reachable = [a for a in self.addresses if a.reachable]
        return bool(reachable) and all(a.verified for a in reachable)

    def __str__(self) -> str:
        lines = [f"{self.host} port {self.port}"]
        if self.connect_to:
            lines.append(f"  connect_to    {self.connect_to} (instead of resolving {self.host})")
        if self.proxy:
            lines.append(f"  proxy         {self.proxy}")
        if self.error:
            lines.append(f"  error         {self.error}")
        sni = {True: "yes", False: "no", None: "unknown"}[self.requires_sni]
        lines.append(f"  needs SNI     {sni}: {self.sni_note}")
        cert = self.certificate
        if cert is not None:
            left = f"{cert.days_left} days left"
            if cert.not_after < _now():
                left = f"EXPIRED {-cert.days_left} days ago" if cert.days_left else "EXPIRED"
            elif cert.not_before > _now():
                left = "NOT VALID YET"
            lines += [
                f"  certificate   {cert.subject or '(empty subject)'}",
                f"    issued by   {cert.issuer}",
                f"    names       {', '.join(cert.sans) or '(none)'}",
                f"    valid       {cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d} ({left})",
            ]
            if cert.key_type:
                lines.append(f"    key         {cert.key_type} {cert.key_bits} bits")
        lines.append(f"  addresses     {len(self.addresses)}, trust: {self.trust}")
        width = max((len(a.address) for a in self.addresses), default=0)
        lines += [f"    {a.address:<{width}}  {_address_line(a)}" for a in self.addresses]
        verdict = "OK" if self.verified else "FAILED: see the addresses above"
        return "\n".join([*lines, f"  verdict       {verdict}"])


def _address_line(report: AddressReport) -> str:
    if not report.reachable:
        return f"unreachable: {report.error}"
    if report.tls_version is None:
        return f"TLS handshake failed ({report.reason}): {report.error}"
    parts = [report.tls_version, report.cipher or "?"]
    parts += [f"ALPN {report.alpn}"] if report.alpn else []
    verdict = "verified" if report.verified else f"NOT verified ({report.reason}): {report.error}"
    return ", ".join([*parts, verdict])


def probe_host(url_or_host: str, **options: Any) -> HostReport:
    """Connect to every address of a host and report TLS, the certificate and SNI needs.

    For each address: a verifying handshake with SNI (the configured trust); if
    the certificate is what fails, a second, unverified handshake reads it anyway.
    Then one handshake without SNI to the first address that completed one:
    ``requires_sni`` is True if it is refused or its certificate does not cover
    the host. With a proxy in force (and no ``connect_to``) the handshakes go
    through an ``http://`` proxy's CONNECT tunnel, so no address is known.

    :param url_or_host: ``https://host[:port]/...``, ``host``, ``host:port`` or ``[v6]:port``.
    :param options: as for :func:`robustfetch.fetch`; ``ca_bundle``, ``trust``,
        ``connect_to``, ``proxies`` and ``connect_timeout`` apply.
    """
    host, port = _host_and_port(url_or_host)
    opts = make_options(**options)
    if opts.offline:
        raise ValueError("probe_host needs the network, but offline=True")
    trust = resolve_trust(opts.ca_bundle, opts.trust)
    try:
        context = make_context(trust)
    except ValueError as exc:  # an unusable bundle, a missing truststore: say so, as fetch would
        return HostReport(host, port, sni_note="not tested", trust=trust.describe(), error=str(exc))
    settings = TransportSettings(context, connect_to=opts.connect_to)
    target = settings.target_for(host, port)
    proxies = dict(opts.proxies) if opts.proxies is not None else proxies_from_environment()
    proxy = None if target else proxy_for(f"https://{authority(host, port)}/", proxies)
    timeout = opts.connect_timeout
    connectors: list[tuple[str, _Connect]] = []
    common: dict[str, Any] = {"host": host, "port": port, "trust": trust.describe()}
    if proxy is not None:
        common["proxy"] = _mask(proxy)
        connectors.append((_mask(proxy), lambda: tunnel(proxy, host, port, timeout)))
    else:
        name, real_port = target or (host, port)
        common["connect_to"] = authority(name, real_port) if target else None
        try:
            found = stream_addresses(name, real_port)
        except (OSError, UnicodeError) as exc:
            error = classify_exception(exc, phase="connect").detail
            return HostReport(**common, error=error, sni_note="not tested")
        for family, sockaddr in found:
            if all(sockaddr[0] != label for label, _ in connectors):
                connectors.append((str(sockaddr[0]), _connector(family, sockaddr, timeout)))
    results = [_probe_address(label, c, host, settings.context, opts) for label, c in connectors]
    first = next(((c, der) for (_, c), (_, der) in zip(connectors, results) if der), None)
    if is_ip_literal(host):
        requires, note = None, "not tested: no SNI is sent to an IP address anyway"
    elif first is None:
        requires, note = None, "not tested: no address completed a TLS handshake"
    else:
        requires, note = _needs_sni(first[0], host, first[1])
    addresses = [address for address, _ in results]
    return HostReport(**common, requires_sni=requires, sni_note=note, addresses=addresses)


def _probe_address(
    label: str, connect: _Connect, host: str, context: ssl.SSLContext, opts: Options
) -> tuple[AddressReport, Optional[bytes]]:
    """The report of one address, and the certificate it sent (DER), if any."""
    try:
        raw = connect()
    except OSError as exc:
        failed = _classify(exc, host, opts)
        return AddressReport(label, error=failed.detail, reason=failed.reason.value), None
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
            cipher = tls.cipher()
            verified = AddressReport(
                label,
                reachable=True,
                tls_version=tls.version(),
                cipher=cipher[0] if cipher else None,
                alpn=tls.selected_alpn_protocol(),
                verified=True,
                certificate=_parse_quietly(der, tls.getpeercert()) if der else None,
            )
            return verified, der
    except (OSError, ValueError) as exc:
        raw.close()
        failure: BaseException = exc
    failed = _classify(failure, host, opts)
    report = AddressReport(label, reachable=True, error=failed.detail, reason=failed.reason.value)
    if not isinstance(failure, (ssl.SSLCertVerificationError, ssl.CertificateError)):
        return report, None
    # The certificate is what failed: read it over an unverified handshake.
    try:
        with _unverified_context().wrap_socket(connect(), server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
            version, cipher, alpn = tls.version(), tls.cipher(), tls.selected_alpn_protocol()
    except OSError:
        return report, None
    return AddressReport(
        label,
        reachable=True,
        tls_version=version,
        cipher=cipher[0] if cipher else None,
        alpn=alpn,
        error=report.error,
        reason=report.reason,
        certificate=_parse_quietly(der, None) if der else None,
    ), der


def _classify(exc: BaseException, host: str, opts: Options) -> SourceFailed:
    return classify_exception(
        exc,
        phase="connect",
        timeout=opts.connect_timeout,
        timeout_name="connect_timeout",
        sni_sent=not is_ip_literal(host),
        via_proxy=isinstance(exc, ProxyFailure),
        ca_description=resolve_trust(opts.ca_bundle, opts.trust).describe(),
    )


def _needs_sni(connect: _Connect, host: str, sni_der: bytes) -> tuple[Optional[bool], str]:
    """Whether a handshake without SNI is refused, or answered for another name."""
    try:
        raw = connect()
    except OSError as exc:
        return None, f"not tested: cannot connect again ({_os_text(exc)})"
    try:
        with _unverified_context().wrap_socket(raw) as tls:  # no server_hostname: no SNI
            der = tls.getpeercert(binary_form=True)
    except (socket.timeout, TimeoutError):
        raw.close()
        return None, "not tested: the handshake without SNI timed out"
    except OSError as exc:
        raw.close()
        shown = getattr(exc, "reason", None) or _os_text(exc)
        return True, f"without SNI the server refuses the handshake ({shown})"
    if der == sni_der:
        return False, "without SNI the server sends the same certificate"
    info = _parse_quietly(der, None) if der else None
    if info is None:
        return None, "without SNI the server sends another certificate, which cannot be read"
    if _covers(info.sans, host):
        return False, f"without SNI the server sends another certificate, also for {host}"
    names = ", ".join(info.sans[:3]) or info.subject or "no name"
    return True, f"without SNI the server sends a certificate for {names}, not for {host}"


def _connector(family: int, sockaddr: Any, timeout: float) -> _Connect:
    return lambda: connect_address(family, sockaddr, timeout)


def _unverified_context() -> ssl.SSLContext:
    """For reading what a server sends, never for trusting it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _host_and_port(text: str) -> tuple[str, int]:
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise ValueError(f"probe_host checks TLS: give an https:// URL or a host, not {text!r}")
        try:
            port = parts.port or 443
        except ValueError:
            raise ValueError(f"invalid port in {text!r}") from None
        return normalise_host(parts.hostname), port
    name, given = split_host_port(text)
    return name, given or 443
