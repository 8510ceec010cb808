"""The sink syncs as it goes, in smaller steps near the end of a body of known size."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from robustfetch.engine.sink import BUFFER, Sink, sync_due
from robustfetch.store.staging import Staging

MiB = 1 << 20


def test_syncs_every_16_mib_while_the_end_is_far_or_unknown() -> None:
    assert not sync_due(15 * MiB, None)
    assert sync_due(16 * MiB, None)
    assert not sync_due(15 * MiB, 100 * MiB)
    assert sync_due(16 * MiB, 100 * MiB)


def test_syncs_every_4_mib_in_the_last_16_mib() -> None:
    assert not sync_due(3 * MiB, 10 * MiB)
    assert sync_due(4 * MiB, 16 * MiB)
    assert sync_due(4 * MiB, 0)
    assert not sync_due(4 * MiB, 17 * MiB)


def test_a_threaded_sink_with_a_known_total_writes_every_byte_in_order(tmp_path: Path) -> None:
    data = os.urandom(21 * MiB + 12_345)
    with Staging(tmp_path / "f.part", {}) as staging:
        staging.restart()
        sink = Sink(staging, threaded=True, total=len(data))
        for offset in range(0, len(data), BUFFER):
            buffer = sink.buffer()
            piece = data[offset : offset + BUFFER]
            buffer[: len(piece)] = piece
            sink.submit(buffer, len(piece))
        sink.finish()
        assert staging.size == len(data)
        assert (tmp_path / "f.part").read_bytes() == data


def count_sync_requests(tmp_path: Path, size: int, total: Optional[int]) -> int:
    """How many syncs a threaded sink asks for while ``size`` bytes go through it."""
    requests: list[int] = []
    with Staging(tmp_path / "f.part", {}) as staging:
        staging.restart()
        sink = Sink(staging, threaded=True, total=total)
        assert sink._syncer is not None
        ask = sink._syncer.request
        sink._syncer.request = lambda: (requests.append(staging.size), ask())[1]  # type: ignore[method-assign]
        chunk = bytes(BUFFER)
        for offset in range(0, size, BUFFER):
            buffer = sink.buffer()
            count = min(BUFFER, size - offset)
            buffer[:count] = chunk[:count]
            sink.submit(buffer, count)
        sink.finish()
    return len(requests)


def test_the_sink_counts_down_to_the_known_end(tmp_path: Path) -> None:
    size = 21 * MiB + 12_345
    # 16 MiB from the end (at 6 MiB written) the steps shrink to 4 MiB: 6, 10, 14, 18.
    assert count_sync_requests(tmp_path, size, total=size) == 4
    # Without a known end, one sync at 16 MiB; the commit syncs the rest.
    assert count_sync_requests(tmp_path, size, total=None) == 1
