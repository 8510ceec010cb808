"""The command line: exit codes 0/1/2, --json, the progress bar only on a terminal."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dummyserver import Server, closed_port
from robustfetch.cli.main import main

DATA = os.urandom(400_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


def base_args(ca_bundle: Path) -> list[str]:
    return ["--ca-bundle", str(ca_bundle), "--retries", "0", "--stall-timeout", "0.5"]


def test_fetch_prints_the_path_and_exits_0(
    https_server: Server, ca_bundle: Path, dest_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    code = main(["fetch", url, "--sha256", DIGEST, "-o", str(dest_dir), *base_args(ca_bundle)])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip() == str(dest_dir / "f.bin")
    assert DIGEST in err
    assert (dest_dir / "f.bin").read_bytes() == DATA


def test_every_source_failing_exits_1_and_lists_each(
    https_server: Server, ca_bundle: Path, dest_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = https_server.route("/m/f.bin", status=404)
    dead = f"https://127.0.0.1:{closed_port()}/f.bin"
    args = ["fetch", missing, "--fallback", dead, "--sha256", DIGEST, "-o", str(dest_dir)]
    code = main([*args, *base_args(ca_bundle)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert f"{missing}: not_found" in err
    assert f"{dead}: connect" in err
    assert os.listdir(dest_dir) == []


@pytest.mark.parametrize(
    "args",
    [
        ["fetch", "gopher://example.org/f"],
        ["fetch", "https://example.org/f", "--sha256", "xyz"],
        ["fetch", "https://example.org/f", "-o", "/no/such/folder/f"],
        ["fetch", "https://example.org/f", "--connect-timeout", "-1"],
        ["fetch", "https://example.org/f", "--connect-to", "nonsense"],
        ["fetch"],
        ["frobnicate"],
        [],
    ],
)
def test_bad_usage_exits_2_before_any_connection(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError("a socket was opened for bad input")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own usage errors
        code = exit.code  # type: ignore[assignment]
    assert code == 2
    assert capsys.readouterr().err


def test_json_lines_for_success_and_failure(
    https_server: Server, ca_bundle: Path, dest_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = https_server.route("/m/f.bin", status=404)
    good = https_server.route("/g/f.bin", body=DATA)
    args = ["fetch", missing, "--fallback", good, "--sha256", DIGEST, "-o", str(dest_dir)]
    assert main([*args, "--json", *base_args(ca_bundle)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["url"] == good
    assert record["path"] == str(dest_dir / "f.bin")
    assert (record["sha256"], record["size"], record["from_cache"]) == (DIGEST, len(DATA), False)
    assert [a["reason"] for a in record["attempts"]] == ["not_found", None]
    assert record["attempts"][0]["status"] == 404

    assert main(["fetch", missing, "--json", "-o", str(dest_dir), *base_args(ca_bundle)]) == 1
    failure = json.loads(capsys.readouterr().out)
    assert failure["url"] == missing
    assert "could not fetch" in failure["error"]
    assert failure["attempts"][0]["reason"] == "not_found"


def run_module(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "robustfetch", *args], env=env, timeout=60, check=False, **kwargs
    )


def test_python_m_and_progress_bar_only_on_a_terminal(
    https_server: Server, ca_bundle: Path, dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA, trickle=(50_000, 0.1))
    args = ["fetch", url, "--sha256", DIGEST, "-o", str(dest_dir / "a.bin"), "--no-cache"]
    args += base_args(ca_bundle)
    piped = run_module(args, capture_output=True)
    assert piped.returncode == 0, piped.stderr
    assert b"\r" not in piped.stderr
    assert piped.stdout.decode().strip() == str(dest_dir / "a.bin")

    primary, secondary = pty.openpty()
    try:
        args[5] = str(dest_dir / "b.bin")
        on_tty = run_module(args, stdout=subprocess.PIPE, stderr=secondary)
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(primary)
    assert on_tty.returncode == 0
    assert b"\r" in drawn and b"%" in drawn


def test_config_file_option(
    https_server: Server,
    ca_bundle: Path,
    dest_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    config = tmp_path / "rules.cfg"
    config.write_text("block 127.0.0.1\n")
    args = ["fetch", url, "--sha256", DIGEST, "-o", str(dest_dir), "--config", str(config)]
    assert main([*args, *base_args(ca_bundle)]) == 1
    assert f"blocked by the rule block 127.0.0.1 ({config}:1)" in capsys.readouterr().err
    config.write_text("blok 127.0.0.1\n")
    assert main([*args, *base_args(ca_bundle)]) == 2
    assert f"{config}:1" in capsys.readouterr().err
    assert https_server.connections == 0


def test_probe_command_reports_the_client_and_a_host(
    https_server: Server, ca_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = f"example.test:{https_server.port}"
    args = ["probe", host, "--ca-bundle", str(ca_bundle)]
    args += ["--connect-to", f"example.test:{https_server.port}:127.0.0.1:{https_server.port}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "OpenSSL" in out and "example.test" in out
    assert main([*args, "--json"]) == 0
    client, report = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "tls_versions" in client
    assert report["host"] == "example.test"
    assert report["addresses"][0]["verified"] is True
