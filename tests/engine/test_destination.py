"""dest holds nothing, the old file, or exactly the verified bytes; nothing else is left."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = os.urandom(200_000)
DIGEST = hashlib.sha256(DATA).hexdigest()

FAULTS: list[dict[str, Any]] = [
    {"status": 404},
    {"status": 503},
    {"body": b"wrong bytes"},
    {"stall_after": 50_000},
    {"truncate_after": 1000},
    {"reset_after": 1000},
    {"hang_before_headers": True},
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: next(iter(f)))
def test_failure_leaves_an_existing_dest_untouched(
    fault: dict[str, Any], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    dest = dest_dir / "f.bin"
    dest.write_bytes(b"old contents")
    url = https_server.route("/f.bin", **{"body": DATA, **fault})
    with pytest.raises(FetchError):
        robustfetch.fetch(url, DIGEST, dest=dest, **opts)
    assert dest.read_bytes() == b"old contents"
    assert os.listdir(dest_dir) == ["f.bin"]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: next(iter(f)))
def test_failure_creates_nothing(
    fault: dict[str, Any], https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", **{"body": DATA, **fault})
    with pytest.raises(FetchError):
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert os.listdir(dest_dir) == []


def test_success_replaces_an_existing_dest(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    dest = dest_dir / "renamed.bin"
    dest.write_bytes(b"old contents")
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest, **opts)
    assert result.path == dest
    assert dest.read_bytes() == DATA
    assert os.listdir(dest_dir) == ["renamed.bin"]


def test_folder_dest_takes_a_sanitised_name_from_the_url_path(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route("/dir/..%2F..%2Fevil%00.tar.gz", body=DATA)
    url = https_server.url("/dir/..%2F..%2Fevil%00.tar.gz") + "?name=x#frag"
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.parent == dest_dir
    assert result.path.name == "evil.tar.gz"
    assert os.listdir(dest_dir) == ["evil.tar.gz"]


def test_name_comes_from_the_first_url_not_the_serving_one(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route("/first-name.tgz", status=404)
    second = https_server.route("/other-name.tgz", body=DATA)
    result = robustfetch.fetch(first, DIGEST, [second], dest=dest_dir, **opts)
    assert result.path == dest_dir / "first-name.tgz"
    assert result.url == second


def test_no_dest_keeps_the_file_in_the_cache(
    https_server: Server, opts: dict[str, Any], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    url = https_server.route("/f.bin", body=DATA)
    opts = {**opts, "cache_dir": cache}
    first = robustfetch.fetch(url, DIGEST, **opts)
    assert first.path == cache / "sha256" / DIGEST[:2] / DIGEST
    assert first.path.read_bytes() == DATA and not first.from_cache
    second = robustfetch.fetch(url, DIGEST, **opts)
    assert second.from_cache and second.path == first.path
    assert https_server.hits("/f.bin") == 1
    assert os.listdir(cache / "partial") == []  # nothing kept once verified


def test_no_dest_and_no_cache_is_refused(https_server: Server, opts: dict[str, Any]) -> None:
    url = https_server.route("/f.bin", body=DATA)
    with pytest.raises(ValueError, match="dest"):
        robustfetch.fetch(url, DIGEST, **opts)
    assert https_server.connections == 0


def test_disk_full_is_io_error_and_stops(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = dest_dir / "f.bin"
    dest.write_bytes(b"old contents")
    first = https_server.route("/a/f.bin", body=DATA)
    second = https_server.route("/b/f.bin", body=DATA)

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # ENOSPC surfaces at the latest when the data is synced before the commit.
    for name in ("fsync", "fdatasync"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, full_disk)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(first, DIGEST, [second], dest=dest, **opts)
    monkeypatch.undo()
    assert [a.reason for a in info.value.attempts][-1] is Reason.IO_ERROR
    assert "No space left" in str(info.value)
    assert dest.read_bytes() == b"old contents"
    assert os.listdir(dest_dir) == ["f.bin"]


class _FullDisk:
    """A staging file on a disk that fills up after ``room`` bytes."""

    def __init__(self, real: Any, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("size", [200_000, 6 << 20], ids=["inline", "threaded"])
def test_disk_full_while_writing_is_io_error(
    size: int,
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from robustfetch.store.staging import Staging

    data = os.urandom(size)
    first = https_server.route("/a/f.bin", body=data)
    second = https_server.route("/b/f.bin", body=data)
    real_open = Staging._open

    def full_disk(self: Staging, truncate_at: int) -> Any:
        real_open(self, truncate_at)
        self._file = _FullDisk(self._file, 100_000)
        return self._file

    monkeypatch.setattr(Staging, "_open", full_disk)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(first, hashlib.sha256(data).hexdigest(), [second], dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.IO_ERROR, Reason.IO_ERROR]
    assert "No space left" in info.value.attempts[0].detail
    assert "not tried" in info.value.attempts[1].detail
    assert https_server.hits("/b/f.bin") == 0
    assert os.listdir(dest_dir) == []


def test_big_file_is_verified_on_the_helper_thread(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    data = os.urandom(9 << 20)
    good = https_server.route("/g/f.bin", body=data)
    bad = https_server.route("/b/f.bin", body=data[:-1] + b"!")
    digest = hashlib.sha256(data).hexdigest()
    # No hedging: under load the bad source's head may be slow, and a hedge
    # winning would hide the mismatch this test is about.
    options = {**opts, "hedge_after": None}
    result = robustfetch.fetch(bad, digest, [good], dest=dest_dir, **options)
    assert [a.reason for a in result.attempts] == [Reason.HASH_MISMATCH, None]
    assert result.path.read_bytes() == data
