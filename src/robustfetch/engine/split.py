"""Segmented downloads (``split``): parts of one file from several sources at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Optional

from ..errors import Attempt, Reason, SourceFailed
from ..policy.headers import parse_content_length, parse_content_range_start
from ..policy.plan import Source
from ..store.staging import Staging
from ..transport import TransportError
from ..transport.cancel import Cancel
from .failures import status_failure, transport_failure
from .sink import BUFFER
from .transfer import Transfer

__all__ = ["MIN_SEGMENT", "SplitDownload", "segments"]

log = logging.getLogger("robustfetch")

#: Smaller segments are not worth a connection of their own.
MIN_SEGMENT = 1 << 20
_TICK = 0.1  # seconds between progress events


def segments(total: int, count: int) -> list[tuple[int, int]]:
    """``count`` contiguous ``(start, end)`` ranges (end excluded) covering ``total`` bytes."""
    bounds = [total * index // count for index in range(count + 1)]
    return list(zip(bounds, bounds[1:]))


class SplitDownload:
    """One file in segments, each from a different source, written in place.

    Each source is asked for its segment with ``Range``; the segments are
    written where they belong in the staging file as they arrive, and the
    whole file is hashed once all are in: the pinned hash decides, whatever
    mix of sources served it. Any failure (a source that errs, ignores
    ``Range`` or sends the wrong part) cancels the other segments; the caller
    then falls back to one source at a time.

    :param transfer: makes the requests.
    :param staging: the (empty) file to fill.
    :param deadline_at: the request's deadline, if any.
    :param home: the request's first URL (where credentials may go).
    """

    def __init__(
        self,
        transfer: Transfer,
        staging: Staging,
        deadline_at: Optional[float],
        home: Optional[str] = None,
    ) -> None:
        self.transfer = transfer
        self.staging = staging
        self.deadline_at = deadline_at
        self.home = home
        self._lock = threading.Lock()
        self._received = 0
        self._failed: Optional[tuple[Source, Optional[SourceFailed]]] = None
        self._cancels: list[Cancel] = []

    def run(self, sources: Sequence[Source], total: int) -> tuple[bool, list[Attempt]]:
        """Fetch ``total`` bytes, one segment per source; whether the file verified, and tries.

        On ``False`` the staging file is emptied again for a try of one source at a time.
        """
        parts = segments(total, len(sources))
        log.info(
            "%s: %d bytes in %d segments from %s",
            sources[0].url,
            total,
            len(parts),
            ", ".join(s.url for s in sources),
        )
        self.staging.restart()
        self._cancels = [Cancel() for _ in parts]
        threads = [
            threading.Thread(
                target=self._segment,
                args=(source, start, end, cancel),
                name="robustfetch-segment",
                daemon=True,
            )
            for source, (start, end), cancel in zip(sources, parts, self._cancels)
        ]
        for thread in threads:
            thread.start()
        url = sources[0].url
        while True:
            alive = [thread for thread in threads if thread.is_alive()]
            if not alive:
                break
            alive[0].join(_TICK)
            self.transfer.progress(url, self._received, total)
        attempts: list[Attempt] = []
        if self._failed is not None:
            source, failure = self._failed
            if failure is not None:
                attempts.append(Attempt(source.url, failure.reason, failure.detail, failure.status))
            self.staging.restart()
            return False, attempts
        self.staging.rehash()
        wrong = self.staging.verifier.mismatches()
        if self.staging.size != total or wrong:
            detail = (
                f"the {len(parts)} segments from {', '.join(s.url for s in sources)} do not "
                f"verify ({self.staging.size} bytes"
                + "".join(
                    f"; {name} {actual}, expected {expected}" for name, expected, actual in wrong
                )
                + "); trying one source at a time"
            )
            self.staging.restart()
            return False, [Attempt(url, Reason.HASH_MISMATCH, detail)]
        for index, (source, (start, end)) in enumerate(zip(sources, parts)):
            detail = f"bytes {start}-{end - 1} of {total} (segment {index + 1} of {len(parts)})"
            attempts.append(Attempt(source.url, None, detail, 206))
        return True, attempts

    def _segment(self, source: Source, start: int, end: int, cancel: Cancel) -> None:
        try:
            self._fetch(source, start, end, cancel)
        except SourceFailed as failure:
            self._fail(source, failure)
        except BaseException as exc:  # a bug: still stop the others, and say so
            self._fail(source, SourceFailed(Reason.IO_ERROR, f"segment failed: {exc!r}"))
        finally:
            cancel.close()

    def _fail(self, source: Source, failure: Optional[SourceFailed]) -> None:
        with self._lock:
            if self._failed is not None:
                return  # cancelled by the first failure: not this source's fault
            self._failed = (source, failure)
        log.info("%s: segment failed: %s", source.url, failure.detail if failure else "")
        for other in self._cancels:
            other.cancel()

    def _fetch(self, source: Source, start: int, end: int, cancel: Cancel) -> None:
        transfer, staging = self.transfer, self.staging
        response, current = transfer.open(
            source.url,
            staging.pinned,
            self.deadline_at,
            {"Range": f"bytes={start}-{end - 1}"},
            home=self.home,
            cancel=cancel,
        )
        length = end - start
        try:
            if response.status != 206:
                if response.status == 200:
                    # Not the source's fault: it just does not serve parts.
                    log.info("%s: ignores Range; no split download", source.url)
                    response.close()
                    self._fail(source, None)
                    return
                raise status_failure(response, source.url, current)
            if parse_content_range_start(response.headers.get("Content-Range")) != start or (
                parse_content_length(response.headers.get("Content-Length", ""))
                not in (None, length)
            ):
                raise SourceFailed(
                    Reason.HTTP_STATUS,
                    f"asked for bytes {start}-{end - 1}, got Content-Range "
                    f"{response.headers.get('Content-Range')!r}",
                )
            buffer = bytearray(min(BUFFER, length))
            view = memoryview(buffer)
            position = start
            while position < end:
                try:
                    count = response.readinto(view[: end - position])
                except TransportError as exc:
                    raise transport_failure(
                        transfer.options,
                        transfer.trust,
                        exc,
                        current,
                        "body",
                        position - start,
                        length,
                        self.deadline_at,
                    ) from None
                if not count:
                    raise SourceFailed(
                        Reason.TRUNCATED,
                        f"segment cut short after {position - start} of {length} bytes",
                    )
                try:
                    staging.write_at(position, view[:count])
                except OSError as exc:
                    raise SourceFailed(
                        Reason.IO_ERROR, f"cannot write {staging.path}: {exc}"
                    ) from None
                position += count
                with self._lock:
                    self._received += count
        except BaseException:
            response.close()
            raise
        response.release()
