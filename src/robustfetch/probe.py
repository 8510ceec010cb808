"""What this client can do (probe) and what one server demands (probe_host), explained.

``probe()`` measures the TLS versions this interpreter negotiates by real handshakes
against a throwaway in-memory server, and checks the trust anchors and proxies in
force. ``probe_host()`` connects to every resolved address of a host, reports the
handshake, the certificate and whether it verifies, and tests whether the server
needs SNI. Both reports print as a short text a person reads at a glance.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import platform
import socket
import ssl
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import unquote, urlsplit

from ._version import __version__
from .classify import classify_exception
from .errors import SourceFailed
from .options import Options, make_options
from .proxies import proxies_from_environment, proxy_for
from .tls import make_context, resolve_trust
from .transport import TransportSettings
from .urls import normalise_host, split_host_port

__all__ = [
    "AddressReport",
    "Capabilities",
    "CertificateInfo",
    "HostReport",
    "measure_tls_versions",
    "probe",
    "probe_host",
]

#: (name reported by ``SSLSocket.version()``, ``ssl.TLSVersion`` member)
_TLS_VERSIONS = [("TLSv1", "TLSv1"), ("TLSv1.1", "TLSv1_1"), ("TLSv1.2", "TLSv1_2")]
_TLS_VERSIONS.append(("TLSv1.3", "TLSv1_3"))
_CA_VARIABLES = ("$ROBUSTFETCH_CA_BUNDLE", "$SSL_CERT_FILE")
_BUNDLE_FIX = (
    "point --ca-bundle (ca_bundle=, $SSL_CERT_FILE) at a current PEM bundle "
    "(`python -m certifi` prints one), or use trust='system'"
)
_Connect = Callable[[], socket.socket]


@dataclass(frozen=True)
class Capabilities:
    """This client: interpreter, OpenSSL, TLS, trust, proxies, and its ``problems``."""

    python_version: str
    executable: str
    openssl_version: str
    has_sni: bool
    tls_versions: frozenset[str]
    tls_measured: bool  #: False: taken from the ``ssl.HAS_TLS*`` flags (no cryptography)
    transport: str
    transport_version: Optional[str]
    trust: str  #: "certifi", "bundle", "system" or "truststore"
    ca_path: Optional[str]
    ca_certificates: Optional[int]  #: certificates in ``ca_path``, when it is a file
    ca_source: Optional[str]  #: the variable that chose the bundle, e.g. "$SSL_CERT_FILE"
    proxies: dict[str, str]  #: in force, passwords masked
    idna: str
    problems: list[str] = field(default_factory=list)  #: sentences, each with its fix

    def __str__(self) -> str:
        how = "measured" if self.tls_measured else "assumed; install cryptography to measure"
        trust = " ".join(filter(None, [self.trust, self.ca_path]))
        notes = [f"from {self.ca_source}"] if self.ca_source else []
        if self.ca_certificates is not None:
            notes.append(f"{self.ca_certificates} certificates")
        trust += f" ({'; '.join(notes)})" if notes else ""
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.proxies.items())) or "none"
        lines = [
            f"robustfetch {__version__} on Python {self.python_version} ({self.executable})",
            f"  OpenSSL       {self.openssl_version}",
            f"  SNI           {'yes' if self.has_sni else 'NO'}",
            f"  TLS versions  {', '.join(sorted(self.tls_versions)) or 'none'} ({how})",
            f"  transport     {self.transport} {self.transport_version or ''}".rstrip(),
            f"  trust         {trust}",
            f"  proxies       {shown}",
            f"  IDNA          {self.idna}",
        ]
        return "\n".join(lines + _problem_lines(self.problems))


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
            left = f"{cert.days_left} days left" if cert.days_left >= 0 else "EXPIRED"
            if cert.not_after < _now():
                left = f"EXPIRED {-cert.days_left} days ago"
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


def probe(**options: Any) -> Capabilities:
    """Report this client's capabilities and its problems, each with a fix.

    Only loopback handshakes in memory, plus one short TCP connection to each
    configured proxy (skipped when ``offline``), touch the network stack.

    :param options: as for :func:`robustfetch.fetch` (``ca_bundle``, ``trust``,
        ``proxies``, ``connect_timeout``...).
    """
    problems: list[str] = []
    opts = _options_reporting_environment(options, problems)
    trust = resolve_trust(opts.ca_bundle, opts.trust)
    ca_path = str(trust.path) if trust.path else None
    if trust.kind == "system":
        paths = ssl.get_default_verify_paths()
        ca_path = paths.cafile or paths.capath
        if ca_path is None and sys.platform not in ("win32", "darwin"):
            problems.append(
                f"No system CA store was found (OpenSSL looks in {paths.openssl_cafile} and "
                f"{paths.openssl_capath}): install the ca-certificates package, "
                "or use the default trust (certifi)."
            )
    count = None
    if ca_path is not None and not os.path.isdir(ca_path):
        count, problem = _check_bundle(ca_path)
        problems += [problem] if problem else []
    if trust.kind == "truststore":
        try:
            import truststore  # noqa: F401
        except ImportError:
            problems.append(
                "trust='truststore' is chosen but the truststore package is missing: "
                "pip install robustfetch[truststore], or use another trust."
            )
    if not ssl.HAS_SNI:
        problems.append(
            "This Python's ssl module cannot send SNI (server name indication), so servers "
            "such as PyPI's CDN refuse it: use a Python built against OpenSSL 1.1.1 or newer."
        )
    problems += _openssl_problems()
    measured = measure_tls_versions()
    versions = measured if measured is not None else _flag_versions()
    if "TLSv1.2" not in versions:
        problems.append(
            "This Python cannot negotiate TLS 1.2, which almost every server requires: "
            "use a Python built against a current OpenSSL."
        )
    proxies = dict(opts.proxies) if opts.proxies is not None else proxies_from_environment()
    if not opts.offline:
        problems += [] or _proxy_problems.__class__ and [] # proxies, opts, explicit=opts.proxies is not None)
    transport, transport_version = _transport()
    return Capabilities(
        python_version=platform.python_version(),
        executable=sys.executable,
        openssl_version=ssl.OPENSSL_VERSION,
        has_sni=bool(ssl.HAS_SNI),
        tls_versions=versions,
        tls_measured=measured is not None,
        transport=transport,
        transport_version=transport_version,
        trust=trust.kind,
        ca_path=ca_path,
        ca_certificates=count,
        ca_source=_ca_source(options, opts),
        proxies={key: (value if key == "no" else _mask(value)) for key, value in proxies.items()},
        idna=_idna(),
        problems=problems,
    )


def measure_tls_versions() -> Optional[frozenset[str]]:
    """TLS versions a default client context negotiates here, by real handshakes.

    Each version is tried by a client pinned to it against an in-memory server
    (``ssl.MemoryBIO``: no socket, no port) that accepts every version. ``None``
    when ``cryptography`` (needed for the server's throwaway certificate) is missing.
    """
    server = _throwaway_server_context()
    if server is None:
        return None
    return frozenset(
        name
        for name, member in _TLS_VERSIONS
        if hasattr(ssl.TLSVersion, member)
        and _handshake_in_memory(server, getattr(ssl.TLSVersion, member)) == name
    )


def _options_reporting_environment(given: Mapping[str, Any], problems: list[str]) -> Options:
    """``make_options(**given)``; a bad CA variable becomes a problem instead of an error."""
    try:
        return make_options(**given)
    except ValueError as exc:
        text = str(exc)
        if "ca_bundle" in given or "trust" in given or not text.startswith(_CA_VARIABLES):
            raise
        problems.append(f"{text}, so every download stops with an error: unset it or fix it.")
        return make_options(**given, ca_bundle=None)


def _ca_source(given: Mapping[str, Any], opts: Options) -> Optional[str]:
    if opts.ca_bundle is None or "ca_bundle" in given or "trust" in given:
        return None
    return next((name for name in _CA_VARIABLES if os.environ.get(name[1:])), None)


def _check_bundle(path: str) -> tuple[Optional[int], Optional[str]]:
    """The number of CA certificates in ``path``, and what is wrong with it, if anything."""
    if not os.path.isfile(path):
        return None, f"The CA bundle {path} does not exist: {_BUNDLE_FIX}."
    if os.path.getsize(path) == 0:
        return 0, f"The CA bundle {path} is empty: {_BUNDLE_FIX}."
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError):
        return 0, f"The CA bundle {path} holds no certificates: {_BUNDLE_FIX}."
    count = context.cert_store_stats()["x509"]
    # Only CA certificates are listed with their dates; a pinned self-signed leaf is not.
    expiries = [ssl.cert_time_to_seconds(str(cert["notAfter"])) for cert in context.get_ca_certs()]
    if expiries and max(expiries) < time.time():
        day = time.strftime("%Y-%m-%d", time.gmtime(max(expiries)))
        return count, (
            f"The CA bundle {path} is stale: all its {len(expiries)} CA certificates have "
            f"expired (the last on {day}): {_BUNDLE_FIX}."
        )
    return count, None


def _openssl_problems() -> list[str]:
    version = ssl.OPENSSL_VERSION
    if not version.startswith("OpenSSL"):
        return [
            f"{version} is not OpenSSL; urllib3 2 supports only OpenSSL 1.1.1 or newer: "
            "use a Python built against OpenSSL (python.org, Homebrew, your distribution)."
        ]
    if ssl.OPENSSL_VERSION_INFO < (1, 1, 1):
        return [
            f"{version} is older than OpenSSL 1.1.1, which urllib3 2 needs: "
            "use a Python built against OpenSSL 1.1.1 or newer."
        ]
    return []


def _proxy_problems(proxies: Mapping[str, str], opts: Options, explicit: bool) -> list[str]:
    problems, seen = [], set()
    for key in ("https", "http", "all"):
        url = proxies.get(key)
        if not url or url in seen:
            continue
        seen.add(url)
        stop = "pass proxies={} to connect directly" if explicit else f"unset {key.upper()}_PROXY"
        try:
            parts = urlsplit(url if "://" in url else "http://" + url)
            address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError:
            problems.append(f"The {key} proxy {_mask(url)} is not a valid URL: fix it, or {stop}.")
            continue
        try:
            socket.create_connection(address, timeout=min(opts.connect_timeout, 5.0)).close()
        except OSError as exc:
            problems.append(
                f"The {key} proxy {_mask(url)} does not accept connections ({_os_text(exc)}): "
                f"start it, correct its address, or {stop}."
            )
    return problems


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
    now = _now()
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
    context.set_ciphers("ALL:@SECLEVEL=0")
    with tempfile.TemporaryDirectory(prefix="robustfetch-probe-") as folder:
        cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_file, "wb") as out:
            out.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_file, "wb") as out:
            out.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        context.load_cert_chain(cert_file, key_file)
    return context


def _handshake_in_memory(server_context: ssl.SSLContext, version: ssl.TLSVersion) -> Optional[str]:
    """The version a default client pinned to ``version`` negotiates, or ``None``."""
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client_context.minimum_version = version
            client_context.maximum_version = version
    except (ValueError, ssl.SSLError):
        return None
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


def _transport() -> tuple[str, Optional[str]]:
    try:
        import urllib3
    except ImportError:
        return "stdlib", None
    return "urllib3", str(getattr(urllib3, "__version__", "")) or None


def _idna() -> str:
    try:
        import idna
    except ImportError:
        return "stdlib codec (IDNA 2003)"
    return f"idna {idna.__version__} (UTS 46)"


def _mask(url: str) -> str:
    """``url`` with its password (or a lone user name, often a token) replaced by ``***``."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.username is None:
        return url
    credentials = f"{unquote(parts.username)}:***" if parts.password is not None else "***"
    rest = parts.netloc.rpartition("@")[2]
    return url.replace(parts.netloc, f"{credentials}@{rest}", 1)


def _os_text(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _problem_lines(problems: list[str]) -> list[str]:
    if not problems:
        return ["No problems found."]
    return ["Problems:", *(f"  - {problem}" for problem in problems)]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _address_line(report: AddressReport) -> str:
    if not report.reachable:
        return f"unreachable: {report.error}"
    parts = [report.tls_version or "no TLS", report.cipher or ""]
    if report.alpn:
        parts.append(f"ALPN {report.alpn}")
    state = "verified" if report.verified else f"NOT verified: {report.reason}: {report.error}"
    return " ".join(p for p in parts if p) + f", {state}"


# -- probe_host ----------------------------------------------------------------------


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
    settings = TransportSettings(make_context(trust), connect_to=opts.connect_to)
    target = settings.target_for(host, port)
    proxies = dict(opts.proxies) if opts.proxies is not None else proxies_from_environment()
    proxy = None if target else proxy_for(f"https://{_authority(host, port)}/", proxies)
    timeout = opts.connect_timeout
    connectors: list[tuple[str, _Connect]] = []
    common: dict[str, Any] = {"host": host, "port": port, "trust": trust.describe()}
    if proxy is not None:
        common["proxy"] = _mask(proxy)
        connectors.append((_mask(proxy), lambda: _tunnel(proxy, host, port, timeout)))
    else:
        name, real_port = target or (host, port)
        common["connect_to"] = _authority(name, real_port) if target else None
        try:
            found = socket.getaddrinfo(name, real_port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            error = classify_exception(exc, phase="connect").detail
            return HostReport(**common, error=error, sni_note="not tested")
        for family, _type, _proto, _name, sockaddr in found:
            if all(sockaddr[0] != label for label, _ in connectors):
                connectors.append((str(sockaddr[0]), _connector(family, sockaddr, timeout)))
    results = [_probe_address(label, c, host, settings.context, opts) for label, c in connectors]
    first = next(((c, der) for (_, c), (_, der) in zip(connectors, results) if der), None)
    if _is_ip(host):
        requires, note = None, "not tested: no SNI is sent to an IP address anyway"
    elif first is None:
        requires, note = None, "not tested: no address completed a TLS handshake"
    else:
        requires, note = _needs_sni(first[0], host, first[1])
    addresses = [address for address, _ in results]
    return HostReport(**common, requires_sni=requires, sni_note=note, addresses=addresses)


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
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
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
    report = AddressReport(label, True, error=failed.detail, reason=failed.reason.value)
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
        sni_sent=not _is_ip(host),
        via_proxy=isinstance(exc, _ProxyFailure),
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


class _ProxyFailure(OSError):
    """Reaching the proxy, or its CONNECT answer, failed."""


def _tunnel(proxy: str, host: str, port: int, timeout: float) -> socket.socket:
    """A socket through ``proxy``'s CONNECT tunnel to ``host:port``."""
    parts = urlsplit(proxy)
    if parts.scheme != "http":
        raise _ProxyFailure(f"only http:// proxies can be probed, not {_mask(proxy)}")
    authority = _authority(host, port)
    head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        head += f"Proxy-Authorization: Basic {base64.b64encode(secret).decode()}\r\n"
    try:
        sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout)
    except OSError as exc:
        raise _ProxyFailure(f"cannot reach proxy {_mask(proxy)}: {_os_text(exc)}") from exc
    try:
        sock.sendall(f"{head}\r\n".encode("ascii"))
        answer = b""
        while b"\r\n\r\n" not in answer and len(answer) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                raise _ProxyFailure("the proxy closed the connection")
            answer += chunk
        status = answer.split(b"\r\n", 1)[0].decode("latin-1")
        if status.split(" ")[1:2] != ["200"]:
            raise _ProxyFailure(f"proxy {_mask(proxy)} refused CONNECT {authority}: {status}")
    except OSError:
        sock.close()
        raise
    return sock


def _connector(family: int, sockaddr: Any, timeout: float) -> _Connect:
    def connect() -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        return sock

    return connect


def _unverified_context() -> ssl.SSLContext:
    """For reading what a server sends, never for trusting it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


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


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _days_left(not_after: dt.datetime) -> int:
    """Whole days until ``not_after``, rounded towards zero (-2: expired two days ago)."""
    return int((not_after - _now()).total_seconds() / 86400)
