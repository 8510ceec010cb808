"""A real server that refuses clients without SNI (nginx, ``ssl_reject_handshake on``).

nginx is started on 127.0.0.1 for this module and stopped by its PID. Without
nginx these tests are skipped, except under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Certs
from dummyserver.nginx import Nginx, find_nginx
from robustfetch import FetchError, Reason
from robustfetch.cli.probe import add_probe_command, run_probe
from robustfetch.diagnose.host import probe_host

DATA = os.urandom(100_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


def require_nginx() -> None:
    """Skip without nginx; under CI fail instead, so the SNI tests cannot vanish."""
    if find_nginx() is None:
        message = "nginx is not installed (apt-get install nginx-light)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the SNI tests")
        pytest.skip(message)


@pytest.fixture(scope="module")
def nginx(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """nginx serving ``/f.bin`` as localhost and example.test; no SNI, no handshake."""
    require_nginx()
    root = tmp_path_factory.mktemp("nginx-root")
    (root / "f.bin").write_bytes(DATA)
    with Nginx(root, certs.good) as server:
        yield server


def by_name(nginx: Nginx, ca_bundle: Path) -> dict[str, Any]:
    """Options that reach nginx as example.test (SNI sent) through connect_to."""
    return {
        "ca_bundle": ca_bundle,
        "connect_to": {f"example.test:{nginx.port}": f"127.0.0.1:{nginx.port}"},
        "connect_timeout": 2.0,
    }


def test_ip_literal_url_fails_with_sni_required(
    nginx: Nginx, opts: dict[str, Any], dest_dir: Path
) -> None:
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(nginx.url("/f.bin", host="127.0.0.1"), DIGEST, dest=dest_dir, **opts)
    (attempt,) = info.value.attempts
    assert attempt.reason is Reason.SNI_REQUIRED
    assert "the URL is an IP address, so none is sent: use the host name" in attempt.detail
    assert "use the host name" in str(info.value)
    assert list(dest_dir.iterdir()) == []


def test_host_name_with_connect_to_succeeds(
    nginx: Nginx, opts: dict[str, Any], dest_dir: Path, ca_bundle: Path
) -> None:
    url = nginx.url("/f.bin", host="example.test")
    options = {**opts, **by_name(nginx, ca_bundle)}
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **options)
    assert (result.url, result.sha256, result.path.read_bytes()) == (url, DIGEST, DATA)
    assert [a.reason for a in result.attempts] == [None]


def test_probe_host_finds_that_sni_is_required(nginx: Nginx, ca_bundle: Path) -> None:
    report = probe_host(f"example.test:{nginx.port}", **by_name(nginx, ca_bundle))
    assert report.requires_sni is True
    assert report.sni_note.startswith("without SNI the server refuses the handshake")
    assert "UNRECOGNIZED_NAME" in report.sni_note
    (address,) = report.addresses
    assert (address.address, address.verified, address.error) == ("127.0.0.1", True, None)
    assert report.certificate is not None and "example.test" in report.certificate.sans
    by_ip = probe_host(f"127.0.0.1:{nginx.port}", ca_bundle=ca_bundle)
    assert (by_ip.verified, by_ip.addresses[0].reason) == (False, "sni_required")


def probe_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="robustfetch")
    add_probe_command(parser.add_subparsers(dest="command"))
    return run_probe(parser.parse_args(["probe", *argv]))


def test_cli_probe_report_is_readable_and_json_complete(
    nginx: Nginx, ca_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"example.test:{nginx.port}"
    common = ["--ca-bundle", str(ca_bundle), f"--connect-to={target}:127.0.0.1:{nginx.port}"]
    assert probe_command(*common, f"https://{target}/f.bin") == 0
    out = capsys.readouterr().out
    client, host = out.split("\n\n")
    assert client.startswith("robustfetch ") and client.endswith("No problems found.")
    lines = host.splitlines()
    assert lines[0] == f"example.test port {nginx.port}"
    assert any(
        line.startswith("  needs SNI     yes: without SNI the server refuses") for line in lines
    )
    assert any(line.startswith("    names       ") and "example.test" in line for line in lines)
    assert any(
        line.startswith("    127.0.0.1  TLSv1.") and line.endswith(", verified") for line in lines
    )
    assert lines[-1] == "  verdict       OK"

    assert probe_command("--json", *common, target) == 0
    client_record, host_record = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert client_record["kind"] == "client" and client_record["problems"] == []
    assert host_record["kind"] == "host"
    assert (host_record["requires_sni"], host_record["verified"]) == (True, True)
    assert "refuses the handshake" in host_record["sni_note"]
    (address,) = host_record["addresses"]
    assert address["address"] == "127.0.0.1" and address["cipher"]
    assert address["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert address["certificate"]["sans"] == host_record["certificate"]["sans"]
    assert "example.test" in address["certificate"]["sans"]
    assert address["certificate"]["not_after"].endswith("+00:00")

    assert probe_command(*common[:1], common[1], f"127.0.0.1:{nginx.port}") == 1
    assert "TLS handshake failed (sni_required): " in capsys.readouterr().out


def test_nginx_stops_by_its_pid(certs: Certs, tmp_path: Path) -> None:
    require_nginx()
    server = Nginx(tmp_path, certs.good)
    pid = server.pid
    assert pid is not None
    server.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert server.pid is None and not server.work.exists()
