"""Only FetchError or ValueError leave fetch(); fetch_many never loses a result (#11 item 9)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, ProgressEvent, Reason

DATA = b"payload " * 4096
DIGEST = hashlib.sha256(DATA).hexdigest()


def test_a_cache_dir_that_is_a_file_is_bad_input(
    https_server: Server, opts: dict[str, Any], tmp_path: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_bytes(b"a file")
    for sha256 in (DIGEST, None):
        with pytest.raises(ValueError, match="cache_dir"):
            robustfetch.fetch(url, sha256, **{**opts, "cache_dir": not_a_folder})
    assert https_server.requests == []


@pytest.mark.parametrize(
    "value", ["http://user:s3cr3t@[bad", "http://user:s3cr3t@proxy:99999", "socks5://proxy:1080"]
)
def test_a_malformed_proxy_variable_is_a_value_error_naming_it(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(ValueError, match="HTTPS_PROXY") as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert "s3cr3t" not in str(info.value)
    assert https_server.requests == []


def test_a_failed_clean_up_does_not_hide_the_fetch_error(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = https_server.route("/f.bin", body=DATA, truncate_after=1000)
    real_unlink = os.unlink

    def failing_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith(".robustfetch-part"):
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", failing_unlink)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert [a.reason for a in info.value.attempts] == [Reason.TRUNCATED]


def test_fetch_many_keeps_its_results_when_one_job_breaks_unexpectedly(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = https_server.route("/good.bin", body=DATA)
    bad = https_server.route("/bad.bin", body=DATA)

    def progress(event: ProgressEvent) -> None:
        if event.url == bad:
            raise RuntimeError("a progress callback with a bug")

    results = robustfetch.fetch_many(
        [{"url": good, "dest": dest_dir / "g"}, {"url": bad, "dest": dest_dir / "b"}],
        **{**opts, "progress": progress},
    )
    assert not isinstance(results[0], FetchError) and results[0].path.read_bytes() == DATA
    assert isinstance(results[1], FetchError)
    assert "RuntimeError" in str(results[1])
    with pytest.raises(FetchError):
        robustfetch.fetch(bad, dest=dest_dir / "b", **{**opts, "progress": progress})


def test_an_unexpected_error_does_not_show_a_password(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """The FetchError made for a bug past the engine is masked like any other."""
    https_server.route("/f.bin", body=DATA)
    url = https_server.url("/f.bin").replace("://", "://alice:unexp-s3cret@")

    def progress(event: ProgressEvent) -> None:
        raise RuntimeError(f"a progress callback with a bug, at {event.url}")

    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "progress": progress})
    assert "RuntimeError" in str(info.value)
    shown = str(info.value) + repr(info.value.attempts)
    assert "unexp-s3cret" not in shown and "alice:***@" in shown
