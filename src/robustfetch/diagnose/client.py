"""The client report: ``probe()`` and its :class:`Capabilities`, every problem with its fix.

``probe()`` measures the TLS versions this interpreter negotiates (by real handshakes
in memory, see :mod:`robustfetch.handshakes`), and checks the trust anchors and
proxies in force. The report prints as a short text a person reads at a glance.
What one server demands is :func:`robustfetch.hostprobe.probe_host`'s report.
"""

from __future__ import annotations

import os
import platform
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

from .._version import __version__
from ..options import Options, make_options
from ..policy.secrets import redact
from ..transport import transport_name
from ..transport.probing import connect_host
from ..transport.proxies import proxies_from_environment
from ..transport.tls import resolve_trust
from .handshakes import _flag_versions, measure_tls_versions

__all__ = ["Capabilities", "probe"]

_CA_VARIABLES = ("$ROBUSTFETCH_CA_BUNDLE", "$SSL_CERT_FILE")
_BUNDLE_FIX = (
    "point --ca-bundle (ca_bundle=, $SSL_CERT_FILE) at a current PEM bundle "
    "(`python -m certifi` prints one), or use trust='system'"
)


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
            plural = "s" * (self.ca_certificates != 1)
            notes.append(f"{self.ca_certificates} certificate{plural}")
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


def probe(**options: Any) -> Capabilities:
    """Report this client's capabilities and its problems, each with a fix.

    Only loopback handshakes in memory, plus one short TCP connection to each
    configured proxy (skipped when ``offline``), touch the network stack.

    :param options: as for :func:`robustfetch.fetch` (``ca_bundle``, ``trust``,
        ``proxies``, ``connect_timeout``...).
    """
    problems: list[str] = []
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
    proxies = dict(opts.proxies) if opts.proxies is not None else proxies_from_environment()
    if not opts.offline:
        problems += _proxy_problems(proxies, opts, explicit=opts.proxies is not None)
    transport, transport_version = _transport(opts.transport)
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
            connect_host(address, min(opts.connect_timeout, 5.0)).close()
        except OSError as exc:
            problems.append(
                f"The {key} proxy {_mask(url)} does not accept connections ({_os_text(exc)}): "
                f"start it, correct its address, or {stop}."
            )
    return problems


def _transport(choice: str) -> tuple[str, Optional[str]]:
    """The transport fetch uses for ``choice``, and its version."""
    name = transport_name(choice)
    if name != "urllib3":
        return name, None
    import urllib3

    return name, str(getattr(urllib3, "__version__", "")) or None


def _idna() -> str:
    try:
        import idna
    except ImportError:
        return "stdlib codec (IDNA 2003)"
    return f"idna {idna.__version__} (UTS 46)"


def _mask(url: str) -> str:
    """``url`` with its password (or a lone user name, often a token) replaced by ``***``."""
    return redact(url)


def _os_text(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _problem_lines(problems: list[str]) -> list[str]:
    if not problems:
        return ["No problems found."]
    return ["Problems:", *(f"  - {problem}" for problem in problems)]
