"""A request whose other hashes contradict a verified cache entry: the entry stays (audit #4)."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = os.urandom(100_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
OTHER_DATA = os.urandom(50_000)
OTHER = hashlib.sha256(OTHER_DATA).hexdigest()


def entry(cache: Path, digest: str = DIGEST) -> Path:
    return cache / "sha256" / digest[:2] / digest


def sri(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


WRONG_EXTRAS = {
    "sha512": {"hashes": {"sha512": hashlib.sha512(b"not it").hexdigest()}},
    "md5": {"hashes": {"md5": hashlib.md5(b"not it").hexdigest()}},
    "integrity": {"integrity": sri("sha384", b"not it")},
}


@pytest.mark.parametrize("extra", sorted(WRONG_EXTRAS))
def test_a_wrong_extra_hash_is_a_mismatch_and_keeps_the_entry(
    https_server: Server, opts: dict[str, Any], tmp_path: Path, extra: str
) -> None:
    cached = {**opts, "cache_dir": tmp_path / "cache"}
    url = https_server.route("/f.bin", body=DATA)
    robustfetch.fetch(url, DIGEST, **cached)
    stored = entry(tmp_path / "cache")
    gone = https_server.route("/gone.bin", status=404)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(gone, DIGEST, dest=tmp_path / "x.bin", **WRONG_EXTRAS[extra], **cached)
    attempts = info.value.attempts
    assert [a.reason for a in attempts] == [Reason.HASH_MISMATCH]
    assert "cached" in attempts[0].detail and DIGEST in attempts[0].detail
    assert "disagree" in str(info.value)
    assert https_server.hits("/gone.bin") == 0  # no source could match both hashes
    assert not (tmp_path / "x.bin").exists()
    assert stored.read_bytes() == DATA  # the good entry stays
    again = robustfetch.fetch(gone, DIGEST, dest=tmp_path / "y.bin", **cached)
    assert again.from_cache and again.path.read_bytes() == DATA


def test_another_candidate_is_still_downloaded(
    https_server: Server, opts: dict[str, Any], tmp_path: Path
) -> None:
    """sha256=[a, b] and a sha512 of b: a cached copy of a is skipped, b comes from the source."""
    cached = {**opts, "cache_dir": tmp_path / "cache"}
    robustfetch.fetch(https_server.route("/a.bin", body=DATA), DIGEST, **cached)
    url = https_server.route("/b.bin", body=OTHER_DATA)
    sha512 = {"sha512": hashlib.sha512(OTHER_DATA).hexdigest()}
    result = robustfetch.fetch(url, [DIGEST, OTHER], hashes=sha512, dest=tmp_path / "b", **cached)
    assert not result.from_cache and result.sha256 == OTHER
    assert result.path.read_bytes() == OTHER_DATA
    assert entry(tmp_path / "cache").read_bytes() == DATA


def test_an_entry_holding_another_candidate_is_corrupted(
    https_server: Server, opts: dict[str, Any], tmp_path: Path
) -> None:
    """The entry's name is its sha256: content matching another candidate is not served."""
    cached = {**opts, "cache_dir": tmp_path / "cache"}
    wrong = entry(tmp_path / "cache", OTHER)
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes(DATA)  # named OTHER, holds DIGEST's bytes
    url = https_server.route("/b.bin", body=OTHER_DATA)
    result = robustfetch.fetch(url, [DIGEST, OTHER], dest=tmp_path / "b", **cached)
    assert not result.from_cache and result.path.read_bytes() == OTHER_DATA
    assert wrong.read_bytes() == OTHER_DATA  # replaced by the verified download
