"""The mirror health record is written safely (#12): O_EXCL temporary, no link followed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

import robustfetch.store.health as health_module
from robustfetch.store.health import RECORD, HealthStore

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX links")


def test_a_link_planted_at_the_temporary_name_is_never_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user of a shared cache guessed the temporary name and put a link there."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    cache = tmp_path / "cache"
    cache.mkdir()
    planted = f".{RECORD}.guessed.robustfetch-part"
    monkeypatch.setattr(health_module, "temporary_name", lambda name: planted)
    (cache / planted).symlink_to(victim)
    with contextlib.suppress(FileExistsError):  # refused cleanly: the record is best effort
        HealthStore(cache).record({"m.example:443": False}, {"m.example:443": 0.01})
    assert victim.read_text() == "precious"
    assert (cache / planted).is_symlink()  # left as found: not ours to remove


def test_a_record_that_is_a_link_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text(
        '{"version": 1, "hosts": {"m.example:443": {"failures": 7, '
        '"connect_time": null, "updated": 1e12}}}'
    )
    before = victim.read_text()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / RECORD).symlink_to(victim)
    store = HealthStore(cache)
    assert store.load(now=1e12) == {}  # someone else's file is not read as ours
    store.record({"m.example:443": True}, {})
    assert victim.read_text() == before
    assert not (cache / RECORD).is_symlink()
    assert store.load()["m.example:443"].failures == 0


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    store = HealthStore(tmp_path)
    for n in range(3):
        store.record({f"m{n}.example:443": bool(n % 2)}, {})
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != RECORD + ".lock") == [RECORD]
