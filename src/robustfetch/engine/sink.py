"""Feeds a body to the staging file as it arrives; big bodies on a helper thread."""

from __future__ import annotations

import queue
import threading
from typing import Optional

from ..errors import Reason, SourceFailed
from ..store.staging import Staging

__all__ = ["Sink"]

#: Bodies at least this large (or of unknown size) are hashed on a helper thread.
THREADED_MIN = 4 << 20
_BATCH = 1 << 20  # bytes handed to the helper at once
_IN_FLIGHT = 8  # batches queued at most: memory stays bounded (8 MiB)
# The commit syncs; syncing as we go spreads that disk time over the transfer.
_SYNC_EVERY = 16 << 20


class Sink:
    """Writes and hashes received chunks into ``staging``.

    hashlib, file writes and TLS reads all release the GIL, so on a machine
    with two cores hashing on a second thread hides most of its cost. Call
    :meth:`finish` after the last chunk, and also after a transfer is cut
    off (what arrived is kept, for a resume); :meth:`abort` to drop it.
    """

    def __init__(self, staging: Staging, threaded: bool) -> None:
        self.staging = staging
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._error: Optional[OSError] = None
        self._discard = False
        self._queue: Optional[queue.Queue[Optional[list[bytes]]]] = None
        self._thread: Optional[threading.Thread] = None
        if threaded:
            self._queue = queue.Queue(_IN_FLIGHT)
            self._thread = threading.Thread(target=self._work, name="robustfetch-sink", daemon=True)
            self._thread.start()

    def feed(self, chunk: bytes) -> None:
        if self._queue is None:
            self._write(chunk)
            self._raise_error()
            return
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= _BATCH:
            self._hand_over()

    def flush(self) -> None:
        """Hand what is pending to the helper thread (called now and then, not per chunk)."""
        if self._queue is not None and self._pending:
            self._hand_over()

    def finish(self) -> None:
        """Write everything fed so far; raise the write error, if one happened."""
        if self._queue is not None:
            self._hand_over()
            self._stop()
        self._raise_error()

    def abort(self) -> None:
        """Stop the helper thread, if any, dropping what it had not written."""
        self._pending.clear()
        self._discard = True
        if self._queue is not None:
            self._stop()

    def _hand_over(self) -> None:
        self._raise_error()
        if self._pending:
            assert self._queue is not None
            self._queue.put(self._pending)
            self._pending, self._pending_size = [], 0

    def _stop(self) -> None:
        assert self._queue is not None and self._thread is not None
        self._queue.put(None)
        self._thread.join()
        self._queue = None

    def _work(self) -> None:
        assert self._queue is not None
        work = self._queue
        unsynced = 0
        while True:
            batch = work.get()
            if batch is None:
                return
            if self._error is None and not self._discard:
                data = b"".join(batch)
                self._write(data)
                unsynced += len(data)
                if unsynced >= _SYNC_EVERY and self._error is None:
                    unsynced = 0
                    try:
                        self.staging.sync()
                    except OSError as exc:
                        self._error = exc

    def _write(self, data: bytes) -> None:
        try:
            self.staging.write(data)
        except OSError as exc:
            self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise SourceFailed(Reason.IO_ERROR, f"cannot write {self.staging.path}: {self._error}")
