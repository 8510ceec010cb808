"""Another process's sweep never removes a temporary file still being committed."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

import robustfetch
import robustfetch.store.files as files_module
import robustfetch.store.staging as staging_module
from dummyserver import Server
from robustfetch.store.files import sweep

DATA = os.urandom(100_000)
DIGEST = hashlib.sha256(DATA).hexdigest()

pytestmark = pytest.mark.skipif(os.name == "nt", reason="Windows renames no open file")


def _sweep_aged(folder: Path) -> None:
    """What a sweep in another process does if the temporary files look old enough."""
    old = time.time() - 3600
    for name in os.listdir(folder):
        if name.startswith("."):
            os.utime(folder / name, (old, old))
    # flock's locks belong to each opening: this sweep sees the writer's lock
    # as another process's sweep would.
    sweep(folder, always=True)


@pytest.mark.parametrize("point", ["rename", "deliver"])
def test_a_sweep_just_before_the_rename_leaves_the_file_alone(
    point: str,
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    robustfetch_cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    real = files_module.crash_point
    swept: list[str] = []

    def at(name: str) -> None:
        if name == point:
            _sweep_aged(dest_dir)
            swept.append(name)
        real(name)

    monkeypatch.setattr(staging_module, "crash_point", at)
    monkeypatch.setattr(files_module, "crash_point", at)
    # "rename": staged beside dest (no cache); "deliver": copied from the cache to dest.
    cache = robustfetch_cache_dir if point == "deliver" else None
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **{**opts, "cache_dir": cache})
    assert swept == [point]
    assert result.path.read_bytes() == DATA
    assert os.listdir(dest_dir) == ["f.bin"]
