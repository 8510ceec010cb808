"""Mirrors: base URLs, {filename}, local folders and file:// URLs, ROBUSTFETCH_MIRRORS, --mirror."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server, closed_port
from robustfetch import FetchError, Reason
from robustfetch.cli.main import main

DATA = os.urandom(80_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
DEAD = f"https://127.0.0.1:{closed_port()}/dist/pkg-1.0.tgz"


def test_mirrors_come_after_url_and_fallbacks(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route("/m2/pkg-1.0.tgz", body=DATA)
    mirrors = [https_server.url("/m1"), https_server.url("/m2/{filename}")]
    missing = https_server.route("/fb/pkg-1.0.tgz", status=404)
    result = robustfetch.fetch(DEAD, DIGEST, [missing], dest=dest_dir, mirrors=mirrors, **opts)
    assert [a.url for a in result.attempts] == [
        DEAD,
        missing,
        https_server.url("/m1/pkg-1.0.tgz"),
        https_server.url("/m2/pkg-1.0.tgz"),
    ]
    assert [a.reason for a in result.attempts] == [
        Reason.CONNECT,
        Reason.NOT_FOUND,
        Reason.NOT_FOUND,
        None,
    ]


@pytest.mark.parametrize("spelling", ["folder", "file-url", "pathlike"])
def test_local_folder_mirror_goes_through_the_hash_check(
    spelling: str, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "pkg-1.0.tgz").write_bytes(DATA)
    mirror: Any = {"folder": str(folder), "file-url": folder.as_uri(), "pathlike": folder}[spelling]
    result = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirrors=[mirror], **opts)
    assert result.url == (folder / "pkg-1.0.tgz").as_uri()
    assert result.attempts[-1].status is None  # no HTTP status for a file (audit #8)
    assert result.path.read_bytes() == DATA
    (folder / "pkg-1.0.tgz").write_bytes(DATA[::-1])
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirrors=[mirror], **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.CONNECT, Reason.HASH_MISMATCH]
    assert (dest_dir / "pkg-1.0.tgz").read_bytes() == DATA


def test_missing_file_in_a_local_mirror_is_not_found(
    opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirrors=[str(tmp_path)], **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.CONNECT, Reason.NOT_FOUND]
    assert os.listdir(dest_dir) == []


def test_mirrors_from_the_environment(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    https_server.route("/b/pkg-1.0.tgz", body=DATA)
    value = f"  {tmp_path}\n {https_server.url('/b')}  "
    monkeypatch.setenv("ROBUSTFETCH_MIRRORS", value)
    result = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, **opts)
    assert [a.url for a in result.attempts][1:] == [
        (tmp_path / "pkg-1.0.tgz").as_uri(),
        https_server.url("/b/pkg-1.0.tgz"),
    ]


def test_cli_mirror_option(
    https_server: Server, ca_bundle: Path, dest_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    https_server.route("/m/pkg-1.0.tgz", body=DATA)
    args = ["fetch", DEAD, "--sha256", DIGEST, "-o", str(dest_dir), "--retries", "0"]
    args += ["--mirror", https_server.url("/m"), "--ca-bundle", str(ca_bundle)]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(dest_dir / "pkg-1.0.tgz")


def test_redirect_to_a_local_file_is_refused(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(DATA)
    url = https_server.route("/f.bin", status=302, headers={"Location": secret.as_uri()})
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.REDIRECT_REFUSED]


def test_fastest_tries_a_reachable_mirror_before_a_dead_one(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = https_server.url("/m")
    https_server.route("/m/pkg-1.0.tgz", body=DATA)
    dead = f"https://127.0.0.1:{closed_port()}/m"
    mirrors = [dead, good]
    given = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirrors=mirrors, **opts)
    assert [a.url for a in given.attempts][1:] == [f"{dead}/pkg-1.0.tgz", f"{good}/pkg-1.0.tgz"]
    fastest = robustfetch.fetch(
        DEAD, DIGEST, dest=dest_dir, mirrors=mirrors, mirror_order="fastest", **opts
    )
    assert [a.url for a in fastest.attempts][1:] == [f"{good}/pkg-1.0.tgz"]


def test_fastest_remembers_failures_between_runs(
    make_server: Any, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    flaky, steady = make_server("good"), make_server("good")
    flaky.route("/pkg-1.0.tgz", status=500)
    steady.route("/pkg-1.0.tgz", body=DATA)
    options = {**opts, "mirror_order": "fastest", "cache_dir": tmp_path / "c"}
    with pytest.raises(FetchError):
        robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirrors=[flaky.url("/")], **options)
    mirrors = [flaky.url("/"), steady.url("/")]
    second = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirrors=mirrors, **options)
    assert [a.url for a in second.attempts] == [DEAD, steady.url("/pkg-1.0.tgz")]
    assert flaky.hits("/pkg-1.0.tgz") == 1
    record = (tmp_path / "c" / "mirror-health.json").read_text()
    assert f"127.0.0.1:{flaky.port}" in record


@pytest.mark.parametrize("content", ["{not json", '{"hosts": {"x": 1}}', ""])
def test_fastest_ignores_a_corrupt_health_record(
    content: str, https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    cache.mkdir()
    (cache / "mirror-health.json").write_text(content)
    https_server.route("/m/pkg-1.0.tgz", body=DATA)
    options = {**opts, "mirrors": [https_server.url("/m")], "cache_dir": cache}
    result = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirror_order="fastest", **options)
    assert result.attempts[-1].reason is None
    assert '"version": 1' in (cache / "mirror-health.json").read_text()


def test_fastest_ignores_stale_failures(tmp_path: Path) -> None:
    from robustfetch.store.health import STALE_AFTER, HealthStore

    store = HealthStore(tmp_path)
    store.record({"a.example:443": False}, {})
    assert store.load()["a.example:443"].failures == 1
    later = os.path.getmtime(tmp_path / "mirror-health.json") + STALE_AFTER + 1
    assert store.load(now=later) == {}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("where", ["url", "mirror"])
def test_a_fifo_in_a_local_source_is_not_waited_on(
    where: str, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    """Opening a FIFO blocks until a writer comes: it is no file, and is never opened so."""
    fifo_folder = tmp_path / "fifo"
    fifo_folder.mkdir()
    fifo = fifo_folder / "pkg-1.0.tgz"
    os.mkfifo(fifo)
    good = tmp_path / "good"
    good.mkdir()
    (good / "pkg-1.0.tgz").write_bytes(DATA)
    url, mirrors = (fifo.as_uri(), [good]) if where == "url" else (DEAD, [fifo_folder, good])
    outcome: list[Any] = []
    options = {**opts, "hedge_after": None}  # a hedge would hide the blocked thread

    def run() -> None:
        try:
            outcome.append(
                robustfetch.fetch(url, DIGEST, dest=dest_dir, mirrors=mirrors, **options)
            )
        except Exception as exc:  # reported below
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    hung = worker.is_alive()
    if hung:  # free the blocked reader: a writer that closes at once gives it end of file
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join()
    assert not hung, "the fetch waited on a FIFO"
    (result,) = outcome
    assert isinstance(result, robustfetch.FetchResult)
    assert [a.reason for a in result.attempts][-2:] == [Reason.NOT_FOUND, None]
