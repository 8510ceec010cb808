"""probe(): measured client facts and each problem sentence; probe_host() against real servers."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import importlib.util
import json
import platform
import socket
import ssl
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dummyserver import Certs, Proxy, Server, closed_port, pki
from robustfetch.cli.probe import add_probe_command, run_probe
from robustfetch.diagnose.certificates import _validity
from robustfetch.diagnose.client import probe
from robustfetch.diagnose.handshakes import (
    _handshake_in_memory,
    _pinned_client,
    _throwaway_server_context,
    measure_tls_versions,
)
from robustfetch.diagnose.host import probe_host

# The package exports a probe() function that shadows its probe module's name.
probe_module = importlib.import_module("robustfetch.diagnose.client")

UTC = dt.timezone.utc


def host_opts(server: Server, ca_bundle: Path, **more: Any) -> dict[str, Any]:
    """Options reaching ``server`` as example.test through connect_to."""
    target = {f"example.test:{server.port}": f"127.0.0.1:{server.port}"}
    return {"ca_bundle": ca_bundle, "connect_to": target, "connect_timeout": 2.0, **more}


def subject_of(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


def self_signed_ca(path: Path, not_before: dt.datetime, not_after: dt.datetime) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old Test CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def sni_server(
    default: Optional[ssl.SSLContext], named: ssl.SSLContext, names: tuple[str, ...]
) -> Server:
    """A Python server that picks its certificate by SNI, as CDNs do.

    Clients naming one of ``names`` get ``named``'s certificate; clients sending no
    SNI get ``default``'s, or an ``unrecognized_name`` alert when ``default`` is None.
    """
    context = default or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def pick(sock: Any, server_name: Optional[str], _context: ssl.SSLContext) -> Optional[int]:
        if server_name in names:
            sock.context = named
            return None
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if default is None else None

    context.sni_callback = pick
    return Server(context)


@pytest.fixture
def chosen(certs: Certs) -> Iterator[tuple[Server, pki.LeafCert, dt.datetime]]:
    """A server whose RSA certificate's fields the test chose; ALPN http/1.1."""
    not_after = (dt.datetime.now(UTC) + dt.timedelta(days=10, hours=1)).replace(microsecond=0)
    leaf = certs.ca.issue_cert(
        "example.test",
        "www.example.test",
        "127.0.0.1",
        common_name="example.test",
        organization_name="Probe Tests",
        not_before=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        not_after=not_after,
        key_type=pki.KeyType.RSA,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    with Server(context) as server:
        yield server, leaf, not_after


# -- probe() ---------------------------------------------------------------------------


def test_probe_reports_this_interpreter(ca_bundle: Path) -> None:
    caps = probe(ca_bundle=ca_bundle)
    assert caps.python_version == platform.python_version()
    assert caps.executable == sys.executable
    assert caps.openssl_version == ssl.OPENSSL_VERSION
    assert caps.has_sni is True
    assert "TLSv1.2" in caps.tls_versions and caps.tls_measured
    transport = "urllib3" if importlib.util.find_spec("urllib3") else "stdlib"
    assert (caps.transport, caps.trust, caps.ca_path) == (transport, "bundle", str(ca_bundle))
    assert caps.ca_certificates == 1
    if importlib.util.find_spec("idna"):
        assert caps.idna.startswith("idna ") and caps.idna.endswith("(UTS 46)")
    assert (caps.proxies, caps.problems) == ({}, [])
    lines = str(caps).splitlines()
    assert lines[0].startswith(f"robustfetch {probe_module.__version__} on Python ")
    assert f"  trust         bundle {ca_bundle} (1 certificate)" in lines
    assert lines[-1] == "No problems found."


def test_tls_versions_come_from_handshakes_not_flags(
    monkeypatch: pytest.MonkeyPatch, certs: Certs
) -> None:
    if not ssl.HAS_TLSv1_3:
        pytest.skip("this OpenSSL has no TLS 1.3")
    monkeypatch.setattr(ssl, "HAS_TLSv1_3", False)  # the flag lies; the handshake does not
    measured = measure_tls_versions()
    assert measured is not None and "TLSv1.3" in measured
    # What a real handshake over a socket gives for 1.2 and 1.3 agrees.
    with Server(certs.good_context()) as server:
        for name, member in (("TLSv1.2", "TLSv1_2"), ("TLSv1.3", "TLSv1_3")):
            client = certs.client_context()
            client.minimum_version = client.maximum_version = getattr(ssl.TLSVersion, member)
            with (
                socket.create_connection(("127.0.0.1", server.port), timeout=2) as raw,
                client.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                assert (tls.version() == name) == (name in measured)


def test_throwaway_server_accepts_old_versions_so_the_client_limits_are_measured() -> None:
    server = _throwaway_server_context()
    assert server is not None
    for name, member in (("TLSv1", "TLSv1"), ("TLSv1.3", "TLSv1_3")):
        client = _pinned_client(member)
        if client is None or not getattr(ssl, f"HAS_{member}"):
            continue  # this OpenSSL cannot offer it at all
        client.set_ciphers("ALL:@SECLEVEL=0")  # a client that allows what the default refuses
        assert _handshake_in_memory(server, client) == name


def test_without_cryptography_versions_are_assumed_and_certificates_read_from_ssl(
    monkeypatch: pytest.MonkeyPatch, make_server: Any, ca_bundle: Path, certs: Certs
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    caps = probe(ca_bundle=ca_bundle)
    assert caps.tls_measured is False and "TLSv1.2" in caps.tls_versions
    assert "install cryptography to measure" in str(caps)
    server = make_server("good")
    report = probe_host(f"example.test:{server.port}", **host_opts(server, ca_bundle))
    cert = report.certificate
    assert cert is not None and (cert.key_type, cert.key_bits) == (None, None)
    assert cert.issuer == subject_of(certs.ca.cert_pem.bytes())
    assert "example.test" in cert.sans and "127.0.0.1" in cert.sans and "::1" in cert.sans
    expired = make_server("expired")
    report = probe_host(f"example.test:{expired.port}", **host_opts(expired, ca_bundle))
    assert report.addresses[0].reason == "cert_expired" and report.certificate is None


def test_certificate_dates_with_cryptography_before_42() -> None:
    naive = dt.datetime(2030, 1, 2, 3, 4, 5)
    old_style = types.SimpleNamespace(not_valid_before=naive, not_valid_after=naive)
    assert _validity(old_style) == (naive.replace(tzinfo=UTC),) * 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"# nothing here\n", "holds no certificates"),
    ],
)
def test_unusable_ca_bundle_is_a_problem(tmp_path: Path, content: bytes, expected: str) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(content)
    caps = probe(ca_bundle=bundle)
    (problem,) = caps.problems
    assert problem.startswith(f"The CA bundle {bundle} {expected}: point --ca-bundle")
    assert "trust='system'" in problem
    assert str(caps).splitlines()[-2:] == ["Problems:", f"  - {problem}"]


def test_bundle_whose_certificates_all_expired_is_stale(tmp_path: Path) -> None:
    now = dt.datetime.now(UTC)
    old = self_signed_ca(
        tmp_path / "old.pem",
        dt.datetime(2024, 1, 1, tzinfo=UTC),
        dt.datetime(2025, 3, 4, tzinfo=UTC),
    )
    (problem,) = probe(ca_bundle=old).problems
    assert f"The CA bundle {old} is stale: all its 1 CA certificates have expired" in problem
    assert "(the last on 2025-03-04)" in problem
    fresh = self_signed_ca(tmp_path / "fresh.pem", now, now + dt.timedelta(days=30))
    mixed = tmp_path / "mixed.pem"
    mixed.write_bytes(old.read_bytes() + fresh.read_bytes())
    caps = probe(ca_bundle=mixed)
    assert (caps.problems, caps.ca_certificates) == ([], 2)


def test_missing_certifi_bundle_is_a_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    certifi = pytest.importorskip("certifi")

    monkeypatch.setattr(certifi, "where", lambda: str(tmp_path / "gone.pem"))
    caps = probe()
    assert (caps.trust, caps.ca_certificates) == ("certifi", None)
    assert caps.problems == [
        f"The CA bundle {tmp_path / 'gone.pem'} does not exist: {probe_module._BUNDLE_FIX}."
    ]


def test_ca_variable_naming_a_missing_file_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "gone.pem"))
    caps = probe()
    assert caps.trust == ("certifi" if importlib.util.find_spec("certifi") else "system")
    assert caps.problems[0].startswith(f"$SSL_CERT_FILE '{tmp_path / 'gone.pem'}' is not")
    assert caps.problems[0].endswith("so every download stops with an error: unset it or fix it.")
    with pytest.raises(ValueError, match="ca_bundle"):
        probe(ca_bundle=tmp_path / "gone.pem")


def test_bundle_from_the_environment_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, ca_bundle: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_bundle))
    caps = probe()
    assert (caps.trust, caps.ca_source) == ("bundle", "$SSL_CERT_FILE")
    assert f"bundle {ca_bundle} (from $SSL_CERT_FILE; 1 certificate)" in str(caps)


def test_no_sni_is_a_problem(monkeypatch: pytest.MonkeyPatch, ca_bundle: Path) -> None:
    monkeypatch.setattr(ssl, "HAS_SNI", False)
    caps = probe(ca_bundle=ca_bundle)
    assert caps.has_sni is False and "  SNI           NO" in str(caps)
    (problem,) = caps.problems
    assert "cannot send SNI" in problem and "use a Python built against OpenSSL 1.1.1" in problem


@pytest.mark.parametrize(
    ("version", "info", "expected"),
    [
        ("OpenSSL 1.0.2k  26 Jan 2017", (1, 0, 2, 11, 15), "is older than OpenSSL 1.1.1"),
        ("LibreSSL 2.8.3", (2, 8, 3, 0, 0), "is not OpenSSL; urllib3 2 supports only"),
    ],
)
def test_old_openssl_is_a_problem(
    monkeypatch: pytest.MonkeyPatch, ca_bundle: Path, version: str, info: Any, expected: str
) -> None:
    monkeypatch.setattr(ssl, "OPENSSL_VERSION", version)
    monkeypatch.setattr(ssl, "OPENSSL_VERSION_INFO", info)
    (problem,) = probe(ca_bundle=ca_bundle).problems
    assert problem.startswith(f"{version} {expected}") and "use a Python built against" in problem


def test_tls_12_not_negotiable_is_a_problem(
    monkeypatch: pytest.MonkeyPatch, ca_bundle: Path
) -> None:
    monkeypatch.setattr(probe_module, "measure_tls_versions", lambda: frozenset({"TLSv1.3"}))
    caps = probe(ca_bundle=ca_bundle)
    assert caps.tls_versions == {"TLSv1.3"}
    assert caps.problems == [
        "This Python cannot negotiate TLS 1.2, which almost every server requires: "
        "use a Python built against a current OpenSSL."
    ]


def test_proxy_that_refuses_connections_is_a_problem(
    monkeypatch: pytest.MonkeyPatch, ca_bundle: Path
) -> None:
    dead = f"http://user:secret@127.0.0.1:{closed_port()}"
    caps = probe(ca_bundle=ca_bundle, proxies={"https": dead})
    masked = dead.replace(":secret@", ":***@")
    assert caps.proxies == {"https": masked}
    (problem,) = caps.problems
    assert problem.startswith(f"The https proxy {masked} does not accept connections (")
    assert problem.endswith(
        "start it, correct its address, or pass proxies={} to connect directly."
    )
    assert "secret" not in str(caps)
    monkeypatch.setenv("HTTPS_PROXY", dead)
    (problem,) = probe(ca_bundle=ca_bundle).problems
    assert problem.endswith("or unset HTTPS_PROXY.")
    assert probe(ca_bundle=ca_bundle, offline=True).problems == []  # offline: no socket


def test_live_proxy_is_fine(ca_bundle: Path, proxy: Proxy) -> None:
    url = f"http://127.0.0.1:{proxy.port}"
    caps = probe(ca_bundle=ca_bundle, proxies={"https": url, "no": "localhost"})
    assert (caps.proxies, caps.problems) == ({"https": url, "no": "localhost"}, [])
    assert f"  proxies       https={url}, no=localhost" in str(caps)


def test_system_trust_without_a_store_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ssl.get_default_verify_paths()
    assert probe(trust="system").ca_path == (real.cafile or real.capath)
    if sys.platform in ("win32", "darwin"):
        pytest.skip("the system store is not a file here")
    empty = real._replace(cafile=None, capath=None)
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: empty)
    (problem,) = probe(trust="system").problems
    assert problem.startswith("No system CA store was found (OpenSSL looks in")
    assert "install the ca-certificates package" in problem


def test_without_urllib3_the_stdlib_transport_is_reported(
    monkeypatch: pytest.MonkeyPatch, ca_bundle: Path
) -> None:
    monkeypatch.setitem(sys.modules, "urllib3", None)
    caps = probe(ca_bundle=ca_bundle)
    assert (caps.transport, caps.transport_version, caps.problems) == ("stdlib", None, [])
    assert "  transport     stdlib" in str(caps).splitlines()
    with pytest.raises(ValueError, match="transport='urllib3' but urllib3 is not installed"):
        probe(ca_bundle=ca_bundle, transport="urllib3")


def test_without_idna_the_stdlib_codec_is_reported(
    monkeypatch: pytest.MonkeyPatch, ca_bundle: Path
) -> None:
    monkeypatch.setitem(sys.modules, "idna", None)
    caps = probe(ca_bundle=ca_bundle)
    assert caps.idna == "stdlib codec (IDNA 2003)"
    assert "  IDNA          stdlib codec (IDNA 2003)" in str(caps).splitlines()


def test_truststore_missing_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "truststore", None)
    caps = probe(trust="truststore")
    assert caps.trust == "truststore" and caps.ca_path is None
    assert caps.problems == [
        "trust='truststore' is chosen but the truststore package is missing: "
        "pip install robustfetch[truststore], or use another trust."
    ]


# -- probe_host() ----------------------------------------------------------------------


def test_certificate_fields_are_those_the_test_chose(
    chosen: tuple[Server, pki.LeafCert, dt.datetime], certs: Certs, ca_bundle: Path
) -> None:
    server, leaf, not_after = chosen
    url = f"https://example.test:{server.port}/some/file.tar.gz"
    report = probe_host(url, **host_opts(server, ca_bundle))
    assert (report.host, report.port, report.error) == ("example.test", server.port, None)
    assert report.connect_to == f"127.0.0.1:{server.port}"
    (address,) = report.addresses
    assert (address.address, address.reachable, address.verified) == ("127.0.0.1", True, True)
    assert address.tls_version in ("TLSv1.2", "TLSv1.3") and address.cipher
    assert (address.alpn, address.error, address.reason) == ("http/1.1", None, None)
    cert = report.certificate
    assert cert is not None and cert is address.certificate
    assert cert.subject == subject_of(leaf.cert_chain_pems[0].bytes())
    assert "CN=example.test" in cert.subject and "O=Probe Tests" in cert.subject
    assert cert.issuer == subject_of(certs.ca.cert_pem.bytes())
    assert cert.sans == ["example.test", "www.example.test", "127.0.0.1"]
    assert cert.not_before == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert cert.not_after == not_after
    assert (cert.days_left, cert.key_type, cert.key_bits) == (10, "RSA", 2048)
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    assert cert.sha256 == hashlib.sha256(der).hexdigest()
    assert (report.requires_sni, report.verified) == (False, True)
    assert report.sni_note == "without SNI the server sends the same certificate"


def test_ec_key_and_readable_report(make_server: Any, ca_bundle: Path) -> None:
    server = make_server("good")
    report = probe_host(f"example.test:{server.port}", **host_opts(server, ca_bundle))
    assert report.certificate is not None
    assert (report.certificate.key_type, report.certificate.key_bits) == ("EC", 256)
    lines = str(report).splitlines()
    assert lines[0] == f"example.test port {server.port}"
    assert f"  connect_to    127.0.0.1:{server.port} (instead of resolving example.test)" in lines
    assert "  needs SNI     no: without SNI the server sends the same certificate" in lines
    assert "    key         EC 256 bits" in lines
    assert f"  addresses     1, trust: bundle ({ca_bundle})" in lines
    assert lines[-2].startswith("    127.0.0.1  TLSv1.") and lines[-2].endswith(", verified")
    assert lines[-1] == "  verdict       OK"


@pytest.mark.parametrize(
    ("kind", "reason", "words"),
    [
        ("expired", "cert_expired", "has expired"),
        ("wrong_host", "cert_hostname", "does not cover this host name"),
        ("untrusted", "cert_untrusted", "CA bundle used: bundle ("),
    ],
)
def test_failed_verification_still_shows_the_certificate(
    make_server: Any, certs: Certs, ca_bundle: Path, kind: str, reason: str, words: str
) -> None:
    server = make_server(kind)
    report = probe_host(f"example.test:{server.port}", **host_opts(server, ca_bundle))
    (address,) = report.addresses
    assert (address.reachable, address.verified, address.reason) == (True, False, reason)
    assert address.error is not None and words in address.error
    assert address.tls_version is not None and address.cipher
    cert = report.certificate
    assert cert is not None and report.verified is False
    leaf = getattr(certs, kind)
    assert cert.subject == subject_of(leaf.cert_chain_pems[0].bytes())
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    assert cert.sha256 == hashlib.sha256(der).hexdigest()
    if kind == "expired":
        assert cert.days_left == -2 and cert.not_after < dt.datetime.now(UTC)
        assert "(EXPIRED 2 days ago)" in str(report)
    if kind == "wrong_host":
        assert cert.sans == ["other.invalid"]
    if kind == "untrusted":
        assert cert.issuer == subject_of(certs.untrusted_ca.cert_pem.bytes())
    assert f", NOT verified ({reason}): " in str(report)
    assert str(report).endswith("  verdict       FAILED: see the addresses above")


def test_certificate_not_valid_yet(certs: Certs, ca_bundle: Path) -> None:
    now = dt.datetime.now(UTC)
    leaf = certs.ca.issue_cert(
        "example.test", not_before=now + dt.timedelta(days=3), not_after=now + dt.timedelta(days=9)
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    with Server(context) as server:
        report = probe_host(f"example.test:{server.port}", **host_opts(server, ca_bundle))
    assert report.addresses[0].reason == "cert_expired"
    assert report.addresses[0].error is not None and "not valid yet" in report.addresses[0].error
    assert report.certificate is not None and report.certificate.days_left == 8
    assert "(NOT VALID YET)" in str(report)


def test_unusable_bundle_is_reported_by_probe_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    report = probe_host("example.test", ca_bundle=empty)
    assert report.addresses == [] and report.verified is False
    assert report.error is not None and report.error.startswith(f"CA bundle {str(empty)!r}")
    assert run(["--ca-bundle", str(empty), "example.test"]) == 1
    client, host = capsys.readouterr().out.split("\n\n")
    assert f"The CA bundle {empty} is empty" in client
    assert host.startswith("example.test port 443\n  error         CA bundle")


def test_default_certificate_without_sni_means_sni_is_required(
    certs: Certs, ca_bundle: Path
) -> None:
    with sni_server(certs.wrong_host_context(), certs.good_context(), ("example.test",)) as server:
        report = probe_host(f"example.test:{server.port}", **host_opts(server, ca_bundle))
    assert report.verified is True and report.requires_sni is True
    assert report.sni_note == (
        "without SNI the server sends a certificate for other.invalid, not for example.test"
    )
    assert report.certificate is not None and "example.test" in report.certificate.sans
    assert "  needs SNI     yes: without SNI the server sends a certificate for" in str(report)


def test_another_certificate_that_covers_the_host_means_no_sni_needed(
    certs: Certs, ca_bundle: Path
) -> None:
    with sni_server(certs.expired_context(), certs.good_context(), ("example.test",)) as server:
        report = probe_host(f"example.test:{server.port}", **host_opts(server, ca_bundle))
    assert (report.verified, report.requires_sni) == (True, False)
    assert (
        report.sni_note == "without SNI the server sends another certificate, also for example.test"
    )


def test_handshake_refused_without_sni_means_sni_is_required(certs: Certs, ca_bundle: Path) -> None:
    with sni_server(None, certs.good_context(), ("example.test",)) as server:
        report = probe_host(f"example.test:{server.port}", **host_opts(server, ca_bundle))
        ip_report = probe_host(f"127.0.0.1:{server.port}", ca_bundle=ca_bundle)
    assert (report.verified, report.requires_sni) == (True, True)
    assert report.sni_note.startswith("without SNI the server refuses the handshake (")
    assert "UNRECOGNIZED_NAME" in report.sni_note
    # By IP address no SNI is sent at all: the engine's own classification says why.
    (address,) = ip_report.addresses
    assert (address.reachable, address.verified, address.reason) == (True, False, "sni_required")
    assert address.error is not None and "use the host name" in address.error
    assert ip_report.requires_sni is None and "IP address" in ip_report.sni_note


def test_every_resolved_address_is_reported(
    monkeypatch: pytest.MonkeyPatch, certs: Certs, ca_bundle: Path
) -> None:
    dead = closed_port()
    with (
        Server(certs.untrusted_context()) as bad,
        Server(certs.good_context(), host="127.0.0.2") as good,
    ):
        answers = [("127.0.0.1", bad.port), ("127.0.0.2", good.port), ("127.0.0.2", 9)]

        def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            assert (host, port) == ("example.test", 443)
            tcp = (socket.AF_INET, socket.SOCK_STREAM, 6, "")
            return [(*tcp, address) for address in answers]

        monkeypatch.setattr(socket, "getaddrinfo", resolver)
        report = probe_host("example.test", ca_bundle=ca_bundle, connect_timeout=2.0)
        assert [a.address for a in report.addresses] == ["127.0.0.1", "127.0.0.2"]
        assert report.addresses[0].reason == "cert_untrusted"
        assert report.addresses[1].verified is True
        assert report.verified is False  # one reachable address fails
        answers[0] = ("127.0.0.1", dead)
        report = probe_host("example.test", ca_bundle=ca_bundle, connect_timeout=2.0)
    unreachable, ok = report.addresses
    assert (unreachable.reachable, unreachable.reason) == (False, "connect")
    assert unreachable.error is not None and "refused" in unreachable.error.lower()
    assert ok.verified is True and report.verified is True  # unreachable ones don't count
    assert report.certificate is ok.certificate
    assert "    127.0.0.1  unreachable: cannot connect: " in str(report)


def test_name_that_does_not_resolve(ca_bundle: Path) -> None:
    report = probe_host("https://nowhere.test/x", ca_bundle=ca_bundle)
    assert (report.addresses, report.verified, report.requires_sni) == ([], False, None)
    assert report.error is not None and report.error.startswith("host name lookup failed")
    assert "  error         host name lookup failed" in str(report)


def test_probe_through_a_proxy_tunnel(make_proxy: Any, make_server: Any, ca_bundle: Path) -> None:
    server = make_server("good")
    proxy = make_proxy(required_auth=("user", "pw"), aliases={"example.test": "127.0.0.1"})
    via = f"http://user:pw@127.0.0.1:{proxy.port}"
    report = probe_host(f"example.test:{server.port}", ca_bundle=ca_bundle, proxies={"https": via})
    assert proxy.tunnels == [f"example.test:{server.port}"] * 2  # with SNI, then without
    assert report.proxy == f"http://user:***@127.0.0.1:{proxy.port}"
    (address,) = report.addresses
    assert (address.address, address.verified, report.requires_sni) == (report.proxy, True, False)
    dead = f"http://127.0.0.1:{closed_port()}"
    report = probe_host(f"example.test:{server.port}", ca_bundle=ca_bundle, proxies={"https": dead})
    assert (report.addresses[0].reachable, report.addresses[0].reason) == (False, "proxy")


def test_bad_targets_are_refused_before_any_connection(ca_bundle: Path) -> None:
    with pytest.raises(ValueError, match="https:// URL or a host"):
        probe_host("http://example.test/f", ca_bundle=ca_bundle)
    with pytest.raises(ValueError, match="offline"):
        probe_host("example.test", ca_bundle=ca_bundle, offline=True)


# -- robustfetch probe -----------------------------------------------------------------


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="robustfetch")
    add_probe_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["probe", *argv])
    assert args.handler is run_probe
    return run_probe(args)


def test_cli_client_report(capsys: pytest.CaptureFixture[str], ca_bundle: Path) -> None:
    assert run(["--ca-bundle", str(ca_bundle)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("robustfetch ") and out.endswith("No problems found.\n")
    assert run(["--ca-bundle", str(ca_bundle), "--json"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["kind"] == "client" and record["problems"] == []
    assert "TLSv1.2" in record["tls_versions"] and record["ca_path"] == str(ca_bundle)


def test_cli_exit_codes(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    make_server: Any,
    ca_bundle: Path,
) -> None:
    good, expired = make_server("good"), make_server("expired")
    common = ["--ca-bundle", str(ca_bundle), "--connect-timeout", "2"]
    to = [f"--connect-to=example.test:{s.port}:127.0.0.1:{s.port}" for s in (good, expired)]
    assert run([*common, *to, f"example.test:{good.port}"]) == 0
    assert run([*common, *to, f"example.test:{good.port}", f"example.test:{expired.port}"]) == 1
    assert "cert_expired" in capsys.readouterr().out
    assert run([*common, "--connect-to", "nonsense", "example.test"]) == 2
    assert run([*common, "http://example.test/"]) == 2
    assert "https:// URL or a host" in capsys.readouterr().err
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    assert run(common) == 1  # a client problem alone fails the probe


def test_cli_json_is_complete(
    capsys: pytest.CaptureFixture[str], make_server: Any, ca_bundle: Path
) -> None:
    server = make_server("expired")
    argv = ["--json", "--ca-bundle", str(ca_bundle), f"example.test:{server.port}"]
    assert run([*argv, f"--connect-to=example.test:{server.port}:127.0.0.1:{server.port}"]) == 1
    client, host = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert client["kind"] == "client"
    assert host["kind"] == "host" and host["verified"] is False
    assert (host["host"], host["port"], host["requires_sni"]) == (
        "example.test",
        server.port,
        False,
    )
    (address,) = host["addresses"]
    assert address["reason"] == "cert_expired" and address["tls_version"].startswith("TLSv1")
    assert address["certificate"] == host["certificate"]
    not_after = dt.datetime.fromisoformat(host["certificate"]["not_after"])
    assert host["certificate"]["not_after"] == not_after.isoformat()
    assert not_after < dt.datetime.now(UTC) and host["certificate"]["days_left"] == -2
    assert set(host["certificate"]) == {
        "subject", "issuer", "sans", "not_before", "not_after", "days_left",
        "key_type", "key_bits", "sha256",
    }  # fmt: skip
