"""The command as its own process: every line of output arrives, exit codes hold.

The process ends with ``os._exit`` once its output is flushed (no interpreter
teardown): these tests run the real script and ``python -m robustfetch``
with their output piped, as a bootstrap script would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dummyserver import Server

SCRIPT = Path(sys.executable).with_name("robustfetch")
# Block-buffered output, as a pipe normally gets: what is not flushed is lost.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def commands() -> list[list[str]]:
    found = [[sys.executable, "-m", "robustfetch"]]
    if SCRIPT.exists():  # the installed entry point (absent when run from a source tree)
        found.append([str(SCRIPT)])
    return found


@pytest.mark.parametrize(
    "command", commands(), ids=lambda c: "python -m" if len(c) > 1 else "script"
)
def test_many_prints_every_json_line_and_exits_1_when_one_fails(
    command: list[str], https_server: Server, ca_bundle: Path, tmp_path: Path
) -> None:
    lines, bodies = [], {}
    for index in range(40):
        body = os.urandom(2_000 + index)
        url = https_server.route(f"/f{index}.bin", body=body)
        bodies[url] = body
        lines.append(f"{url} {hashlib.sha256(body).hexdigest()}")
    missing = https_server.route("/missing.bin", status=404)
    lines.append(f"{missing} {'0' * 64}")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    args = ["many", str(listing), "-o", str(out), "--json", "--no-cache"]
    args += ["--ca-bundle", str(ca_bundle), "--retries", "0"]
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        env={**ENV, "PYTHONWARNINGS": "error"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(records) == 41
    assert sorted(r["url"] for r in records if "error" not in r) == sorted(bodies)
    assert [r["url"] for r in records if "error" in r] == [missing]
    assert b"not_found" in done.stderr


@pytest.mark.parametrize(
    "command", commands(), ids=lambda c: "python -m" if len(c) > 1 else "script"
)
def test_exit_codes_0_and_2_and_the_usage_message(
    command: list[str], https_server: Server, ca_bundle: Path, tmp_path: Path
) -> None:
    body = os.urandom(3_000)
    url = https_server.route("/f.bin", body=body)
    base = ["--no-cache", "--ca-bundle", str(ca_bundle)]
    args = [
        "fetch",
        url,
        "--sha256",
        hashlib.sha256(body).hexdigest(),
        "-o",
        str(tmp_path / "f.bin"),
    ]
    ok = subprocess.run(
        [*command, *args, *base],
        capture_output=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.decode().strip() == str(tmp_path / "f.bin")
    bad = subprocess.run(
        [*command, "fetch", url, "--sha256", "nothex", *base],
        capture_output=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert b"nothex" in bad.stderr
