"""The sink syncs as it goes, in smaller steps near the end of a body of known size."""

from __future__ import annotations

import os
from pathlib import Path

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
