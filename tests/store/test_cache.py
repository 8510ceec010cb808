"""The content-addressed cache, read-only cache folders, offline mode, cross-process locks."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason
from robustfetch.cli.main import main

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def cached(opts: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """``opts`` with a cache folder of the test's own."""
    return {**opts, "cache_dir": tmp_path / "cache"}


def entry(cache: Path, digest: str = DIGEST) -> Path:
    return cache / "sha256" / digest[:2] / digest


def test_pinned_hit_needs_no_network_and_copies_dest(
    https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    first = robustfetch.fetch(url, DIGEST, dest=dest_dir / "a.bin", **cached)
    assert not first.from_cache
    second = robustfetch.fetch(url, DIGEST, dest=dest_dir / "b.bin", **cached)
    assert second.from_cache and second.attempts == []
    assert second.path.read_bytes() == DATA
    assert https_server.hits("/f.bin") == 1
    stored = entry(cached["cache_dir"])
    assert os.stat(second.path).st_ino != os.stat(stored).st_ino  # a copy, not a hard link
    assert sorted(os.listdir(dest_dir)) == ["a.bin", "b.bin"]


def test_unpinned_downloads_are_stored_by_their_digest(
    https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, dest=dest_dir, **cached)
    assert entry(cached["cache_dir"]).read_bytes() == DATA
    assert robustfetch.fetch(url, DIGEST, **cached).from_cache


def test_corrupted_entry_is_removed_logged_and_fetched_again(
    https_server: Server,
    cached: dict[str, Any],
    dest_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, DIGEST, **cached)
    stored = entry(cached["cache_dir"])
    stored.chmod(0o644)
    stored.write_bytes(b"bit rot")
    with caplog.at_level(logging.WARNING, logger="robustfetch"):
        result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **cached)
    assert not result.from_cache and result.path.read_bytes() == DATA
    assert any("corrupted" in r.getMessage() for r in caplog.records)
    assert stored.read_bytes() == DATA
    assert https_server.hits("/f.bin") == 2


def test_read_only_cache_folders_are_consulted(
    https_server: Server, cached: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    distdir = tmp_path / "distdir"
    entry(distdir).parent.mkdir(parents=True)
    entry(distdir).write_bytes(DATA)
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, cache_dirs_readonly=[distdir], **cached)
    assert result.from_cache and result.path.read_bytes() == DATA
    assert https_server.hits("/f.bin") == 0


def test_read_only_folder_from_the_environment_and_never_modified(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    distdir = tmp_path / "distdir"
    entry(distdir).parent.mkdir(parents=True)
    entry(distdir).write_bytes(b"corrupted copy")
    monkeypatch.setenv("ROBUSTFETCH_CACHE_DIR", f"{tmp_path / 'cache'}{os.pathsep}{distdir}")
    options = {k: v for k, v in opts.items() if k != "cache_dir"}
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **options)
    assert not result.from_cache
    assert entry(distdir).read_bytes() == b"corrupted copy"
    assert entry(tmp_path / "cache").read_bytes() == DATA


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a socket was opened while offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_offline_serves_hits_and_opens_no_socket(
    https_server: Server, cached: dict[str, Any], dest_dir: Path, request: pytest.FixtureRequest
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, DIGEST, **cached)
    request.getfixturevalue("no_sockets")
    hit = robustfetch.fetch(url, DIGEST, dest=dest_dir, offline=True, **cached)
    assert hit.from_cache and hit.path.read_bytes() == DATA
    other = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, other, dest=dest_dir / "x", offline=True, **cached)
    assert [a.reason for a in info.value.attempts] == [Reason.OFFLINE]


def test_offline_from_the_environment(
    https_server: Server,
    cached: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_sockets: None,
) -> None:
    monkeypatch.setenv("ROBUSTFETCH_OFFLINE", "1")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(https_server.url("/f.bin"), DIGEST, dest=dest_dir, **cached)
    assert [a.reason for a in info.value.attempts] == [Reason.OFFLINE]
    assert os.listdir(dest_dir) == []


RACER = textwrap.dedent(
    """
    import sys, robustfetch
    url, digest, dest, cache, ca = sys.argv[1:]
    result = robustfetch.fetch(url, digest, dest=dest, cache_dir=cache, ca_bundle=ca)
    print(result.from_cache)
    """
)


def test_two_processes_racing_download_once(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path
) -> None:
    data = os.urandom(1 << 20)
    digest = hashlib.sha256(data).hexdigest()
    url = https_server.route("/f.bin", body=data, trickle=(64 << 10, 0.02))
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACER,
                url,
                digest,
                str(dest_dir / f"{n}.bin"),
                str(tmp_path / "cache"),
                str(ca_bundle),
            ],
            stdout=subprocess.PIPE,
        )
        for n in range(2)
    ]
    outputs = [racer.communicate(timeout=60)[0].decode().strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0]
    assert sorted(outputs) == ["False", "True"]  # one downloaded, the other waited
    assert https_server.hits("/f.bin") == 1
    assert all((dest_dir / f"{n}.bin").read_bytes() == data for n in range(2))


def test_cache_commands(
    https_server: Server, cached: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    cache = cached["cache_dir"]
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, DIGEST, **cached)
    assert main(["cache", "--cache-dir", str(cache), "info"]) == 0
    assert "entries:          1 (293.0 KiB)" in capsys.readouterr().out
    assert main(["cache", "--cache-dir", str(cache), "verify"]) == 0
    entry(cache).chmod(0o644)
    entry(cache).write_bytes(b"rot")
    assert main(["cache", "--cache-dir", str(cache), "verify"]) == 1
    assert "corrupted, removed" in capsys.readouterr().out
    assert not entry(cache).exists()
    robustfetch.fetch(url, DIGEST, **cached)
    assert main(["cache", "--cache-dir", str(cache), "clear", "--older-than", "1"]) == 0
    assert entry(cache).exists()
    assert main(["cache", "--cache-dir", str(cache), "clear"]) == 0
    assert not entry(cache).exists()
    assert "removed 1 entries" in capsys.readouterr().out
