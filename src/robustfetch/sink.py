"""Hashes and writes a body as it arrives; big bodies on a helper thread, beside the network."""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO, Optional

from .commit import sync_data
from .digests import Verifier
from .errors import Reason, SourceFailed

__all__ = ["Sink"]

#: Bodies at least this large (or of unknown size) are hashed on a helper thread.
THREADED_MIN = 4 << 20
_BATCH = 1 << 20  # bytes handed to the helper at once
_IN_FLIGHT = 8  # batches queued at most: memory stays bounded (8 MiB)
# The commit fsyncs; syncing as we go spreads that disk time over the transfer.
_SYNC_EVERY = 16 << 20


class Sink:
    """Feeds received chunks to ``verifier`` and ``out``.

    hashlib, file writes and TLS reads all release the GIL, so on a machine
    with two cores hashing on a second thread hides most of its cost.
    Call :meth:`finish` after the last chunk, or :meth:`abort` on failure.
    """

    def __init__(self, verifier: Verifier, out: BinaryIO, name: str, threaded: bool) -> None:
        self.verifier = verifier
        self.out = out
        self.name = name
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
            self.verifier.update(chunk)
            self._write(chunk)
            return
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= _BATCH:
            self._hand_over()

    def finish(self) -> None:
        """Process everything fed so far; raise the write error, if one happened."""
        if self._queue is not None:
            self._hand_over()
            self._stop()
        if self._error is not None:
            raise SourceFailed(Reason.IO_ERROR, f"cannot write {self.name}: {self._error}")

    def abort(self) -> None:
        """Stop the helper thread, if any; what it had not written no longer matters."""
        self._pending.clear()
        self._discard = True
        if self._queue is not None:
            self._stop()

    def _hand_over(self) -> None:
        if self._error is not None:
            raise SourceFailed(Reason.IO_ERROR, f"cannot write {self.name}: {self._error}")
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
                self.verifier.update(data)
                self._write(data)
                unsynced += len(data)
                if unsynced >= _SYNC_EVERY and self._error is None:
                    unsynced = 0
                    self._sync()

    def _sync(self) -> None:
        try:
            self.out.flush()
            sync_data(self.out.fileno())
        except OSError as exc:
            self._error = exc

    def _write(self, data: bytes) -> None:
        try:
            self.out.write(data)
        except OSError as exc:
            if self._queue is None:
                raise SourceFailed(Reason.IO_ERROR, f"cannot write {self.name}: {exc}") from None
            self._error = exc
