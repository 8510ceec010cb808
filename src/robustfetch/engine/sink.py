"""Moves a body from reused buffers into the staging file; big bodies on helper threads."""

from __future__ import annotations

import collections
import queue
import threading
from typing import Optional

from ..errors import Reason, SourceFailed
from ..store.staging import Staging

__all__ = ["BUFFER", "THREADED_MIN", "Sink", "sync_due"]

#: Bodies at least this large (or of unknown size) are hashed and written on a helper thread.
THREADED_MIN = 4 << 20
#: The size of one buffer: the socket is read straight into it, in place.
BUFFER = 1 << 20
_IN_FLIGHT = 6  # buffers one threaded sink uses at most: memory stays bounded
# The commit syncs; syncing as we go, on a thread of its own, overlaps that
# disk time with the transfer instead of adding it at the end. Near the end
# of a body of known size, smaller steps leave the commit's own sync less to
# wait for; earlier, bigger steps cost fewer journal commits.
_SYNC_EVERY = 16 << 20
_SYNC_TAIL = 4 << 20
_KEPT = 16  # idle buffers kept for the next transfers (fetch_many reuses them)

# Buffers between transfers: allocating and zeroing 1 MiB per file would cost
# more than a small file's whole transfer. deque's append/pop are atomic.
_idle: collections.deque[bytearray] = collections.deque()


def _take() -> bytearray:
    try:
        return _idle.pop()
    except IndexError:
        return bytearray(BUFFER)


def _give_back(buffer: bytearray) -> None:
    if len(_idle) < _KEPT:
        _idle.append(buffer)


class Sink:
    """Writes and hashes filled buffers into ``staging``.

    The reader asks for a :meth:`buffer`, reads into it, and hands it over with
    :meth:`submit`. Inline, the bytes are written and hashed at once and the
    same buffer comes back. Threaded, one helper thread hashes and writes
    (hashlib and file writes release the GIL for big buffers, so the reading
    thread keeps reading meanwhile), buffers come back through a free list of
    :data:`_IN_FLIGHT`, and a third thread makes what was written durable as
    the transfer goes (``total``, the staged size expected at the end, if
    known, tells it when the end is near). Call :meth:`finish` after the last
    buffer, and also after a transfer is cut off (what arrived is kept, for a
    resume); :meth:`abort` to drop what is queued.
    """

    def __init__(self, staging: Staging, threaded: bool, total: Optional[int] = None) -> None:
        self.staging = staging
        self._total = total
        self._error: Optional[OSError] = None
        self._discard = False
        self._own: Optional[bytearray] = None
        self._queue: Optional[queue.Queue[Optional[tuple[bytearray, int]]]] = None
        self._thread: Optional[threading.Thread] = None
        self._syncer: Optional[_Syncer] = None
        if threaded:
            # Queues only here: a small file's inline sink costs no lock objects.
            self._free: queue.Queue[bytearray] = queue.Queue()
            for _ in range(_IN_FLIGHT):
                self._free.put(_take())
            self._queue = queue.Queue()
            self._syncer = _Syncer(staging)
            self._thread = threading.Thread(target=self._work, name="robustfetch-sink", daemon=True)
            self._thread.start()

    def buffer(self) -> bytearray:
        """An empty buffer to read into (waits while every buffer is in flight)."""
        if self._queue is None:
            if self._own is None:
                self._own = _take()
            return self._own
        self._raise_error()
        return self._free.get()

    def submit(self, buffer: bytearray, count: int) -> None:
        """The first ``count`` bytes of ``buffer`` are body: write and hash them."""
        if self._queue is None:
            self._write(memoryview(buffer)[:count])
            self._raise_error()
            return
        self._raise_error()
        self._queue.put((buffer, count))

    def finish(self) -> None:
        """Write everything submitted; raise the write error, if one happened."""
        self._stop()
        self._raise_error()

    def abort(self) -> None:
        """Stop the helper threads, if any, dropping what they had not written."""
        self._discard = True
        self._stop()

    def _stop(self) -> None:
        if self._queue is not None:
            assert self._thread is not None and self._syncer is not None
            self._queue.put(None)
            self._thread.join()
            self._syncer.stop()
            if self._error is None and not self._discard:
                self._error = self._syncer.error
            self._queue = None
            while not self._free.empty():
                _give_back(self._free.get_nowait())
        elif self._own is not None:
            _give_back(self._own)
            self._own = None

    def _work(self) -> None:
        assert self._queue is not None and self._syncer is not None
        work, free, syncer = self._queue, self._free, self._syncer
        staging, total = self.staging, self._total
        unsynced = 0
        while True:
            item = work.get()
            if item is None:
                return
            buffer, count = item
            if self._error is None and not self._discard:
                self._write(memoryview(buffer)[:count])
                unsynced += count
                if sync_due(unsynced, None if total is None else total - staging.size):
                    unsynced = 0
                    syncer.request()
            free.put(buffer)
            if syncer.error is not None and self._error is None:
                self._error = syncer.error

    def _write(self, data: memoryview) -> None:
        try:
            self.staging.write(data)
        except OSError as exc:
            self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise SourceFailed(Reason.IO_ERROR, f"cannot write {self.staging.path}: {self._error}")


def sync_due(unsynced: int, left: Optional[int]) -> bool:
    """Whether ``unsynced`` bytes written since the last sync call for one now.

    :param left: bytes still to come, if the size is known.
    """
    if unsynced >= _SYNC_EVERY:
        return True
    return unsynced >= _SYNC_TAIL and left is not None and left <= _SYNC_EVERY


class _Syncer:
    """fdatasync()s the staging file on request, on its own thread, while writes go on."""

    def __init__(self, staging: Staging) -> None:
        self.staging = staging
        self.error: Optional[OSError] = None
        self._wanted = False
        self._stopping = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="robustfetch-sync", daemon=True)
        self._thread.start()

    def request(self) -> None:
        with self._condition:
            self._wanted = True
            self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._wanted and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                self._wanted = False
            try:
                self.staging.sync()
            except OSError as exc:
                self.error = exc
                return
