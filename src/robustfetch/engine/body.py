"""Streaming one answer's body into staging: progress, size, speed, deadline and hash checks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Optional

from ..errors import Reason, SourceFailed
from ..policy.digests import Verifier
from ..policy.headers import parse_content_length
from ..policy.sniff import describe_bytes
from ..store.staging import Staging
from ..transport import Response, TransportError
from .checks import Sniff, check_witness
from .failures import bounded, deadline_failure, passed, transport_failure
from .sink import THREADED_MIN, Sink

if TYPE_CHECKING:
    from .transfer import Transfer

__all__ = ["stream_body"]

_TICK = 0.1  # seconds between progress events and speed/deadline checks
# Failures after which the staged prefix is still good for a resume.
_RESUMABLE = frozenset({Reason.TRUNCATED, Reason.STALLED, Reason.TIMEOUT, Reason.TOO_SLOW})


def stream_body(
    transfer: Transfer,
    response: Response,
    url: str,
    staging: Staging,
    offset: int,
    deadline_at: Optional[float],
    requested: Optional[str] = None,
) -> None:
    """Stream the body of ``response`` (from ``url``) into ``staging`` after ``offset``; verify it.

    Afterwards ``staging`` holds either the complete verified body, or (after
    :class:`SourceFailed`) a clean prefix to resume, or nothing.
    ``requested`` is the URL asked for, before redirects.
    """
    try:
        length = _content_length(response.headers)
        total = None if length is None else offset + length
        _check_announced(total, transfer.options.size, transfer.options.max_size)
        if offset:
            staging.resume()
        else:
            staging.restart()
    except OSError as exc:
        response.close()
        raise SourceFailed(Reason.IO_ERROR, f"cannot write {staging.path}: {exc}") from None
    except BaseException:
        response.close()
        raise
    staging.describe(url, _validator(response.headers))
    sniff = Sniff(response, url, requested or url, staging.name, offset)
    try:
        check_witness(response, staging.verifier, offset)
    except SourceFailed:
        response.close()
        staging.restart()
        raise
    sink = Sink(staging, threaded=length is None or length >= THREADED_MIN, total=total)
    try:
        _receive(transfer, response, sink, url, offset, total, deadline_at, sniff)
        sniff.check(b"", b"")
        sink.finish()
        if _close_delimited(response.headers) and passed(deadline_at):
            # The watchdog's shutdown reads as the end of such a body.
            raise deadline_failure(transfer.options.deadline, staging.size, None)
        if staging.size == offset and _close_delimited(response.headers):
            # http.client ends a head at EOF as if a blank line came: a response
            # cut inside its head looks like an empty body delimited by the close.
            raise SourceFailed(
                Reason.TRUNCATED,
                "the server closed the connection before any byte of the body "
                "(and sent no Content-Length): the response was cut short",
                transient=True,
            )
        _check_complete(staging.size, total, transfer.options.size, staging.verifier, sniff)
    except SourceFailed as failure:
        response.close()
        if failure.reason in _RESUMABLE:
            sink.finish()  # keep what arrived: the next try resumes after it
        else:
            sink.abort()
            staging.restart()
        raise
    except BaseException:
        sink.abort()
        response.close()
        raise
    response.release()
    transfer.progress(url, staging.size, total)


def _receive(
    transfer: Transfer,
    response: Response,
    sink: Sink,
    url: str,
    offset: int,
    total: Optional[int],
    deadline_at: Optional[float],
    sniff: Optional[Sniff] = None,
) -> int:
    """Feed the body to ``sink``, enforcing max_size, min_speed and the deadline.

    ``sniff`` sees the first bytes before they are kept: an HTML page where
    a file was expected stops the transfer after its first read.

    ``received`` counts from ``offset``: the bytes staged before this body.
    """
    opts = transfer.options
    received = offset
    clock = time.monotonic
    window_start, window_bytes = clock(), offset
    next_tick = window_start + _TICK
    read_timeout = bounded(opts.stall_timeout, deadline_at)
    max_size = opts.max_size
    readinto = response.readinto
    buffer = sink.buffer()
    view, filled = memoryview(buffer), 0
    size = len(view)
    try:
        while True:
            try:
                count = readinto(view[filled:])
            except TransportError as exc:
                raise transport_failure(
                    opts, transfer.trust, exc, url, "body", received, total, deadline_at
                ) from None
            if not count:
                return received
            received += count
            filled += count
            if sniff is not None and sniff.wanted:
                sniff.check(view[filled - count : filled], view[:filled])
            if max_size is not None and received > max_size:
                filled = 0  # never written: the file stays a clean prefix
                raise SourceFailed(
                    Reason.TOO_LARGE, f"more than max_size={max_size} bytes; stopped"
                )
            if filled == size:
                sink.submit(buffer, filled)
                buffer = sink.buffer()
                view, filled = memoryview(buffer), 0
            now = clock()
            if now < next_tick:
                continue
            # Once per tick, not per read: progress, speed and deadline checks.
            next_tick = now + _TICK
            if filled:
                # A slow body still reaches the disk, for a resume if we are killed.
                sink.submit(buffer, filled)
                buffer = sink.buffer()
                view, filled = memoryview(buffer), 0
            transfer.progress(url, received, total)
            if opts.min_speed and now - window_start >= opts.min_speed_window:
                speed = (received - window_bytes) / (now - window_start)
                if speed < opts.min_speed:
                    raise SourceFailed(
                        Reason.TOO_SLOW,
                        f"{speed:.0f} B/s over {now - window_start:.1f} s, below "
                        f"min_speed={opts.min_speed:g} B/s; moving on",
                    )
                window_start, window_bytes = now, received
            if deadline_at is not None:
                remaining = deadline_at - now
                if remaining <= 0:
                    raise deadline_failure(opts.deadline, received, total)
                if remaining < read_timeout:
                    read_timeout = remaining
                    response.set_read_timeout(remaining)
    finally:
        # What arrived before a failure is kept (a resume continues after it).
        if filled:
            sink.submit(buffer, filled)


def _validator(headers: Mapping[str, str]) -> Optional[str]:
    """What ``If-Range`` may carry: a strong ETag, else Last-Modified."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified") or None


def _content_length(headers: Mapping[str, str]) -> Optional[int]:
    """The announced body size; an invalid one makes this response unusable."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return None
    value = headers.get("Content-Length")
    if value is None:
        return None
    length = parse_content_length(value)
    if length is None:
        raise SourceFailed(
            Reason.HTTP_STATUS, f"invalid response: Content-Length {value[:40]!r} is not a number"
        )
    return length


def _close_delimited(headers: Mapping[str, str]) -> bool:
    """Whether the body ends only when the server closes the connection."""
    chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
    return not chunked and "Content-Length" not in headers


def _check_announced(length: Optional[int], size: Optional[int], max_size: Optional[int]) -> None:
    if length is None:
        return
    if max_size is not None and length > max_size:
        raise SourceFailed(
            Reason.TOO_LARGE, f"the server announces {length} bytes, over max_size={max_size}"
        )
    if size is not None and length != size:
        raise SourceFailed(
            Reason.SIZE_MISMATCH, f"the server announces {length} bytes, expected size={size}"
        )


def _check_complete(
    received: int,
    length: Optional[int],
    size: Optional[int],
    verifier: Verifier,
    sniff: Optional[Sniff] = None,
) -> None:
    if length is not None and received < length:
        raise SourceFailed(
            Reason.TRUNCATED, f"body cut short after {received} of {length} bytes", transient=True
        )
    if size is not None and received != size:
        raise SourceFailed(Reason.SIZE_MISMATCH, f"got {received} bytes, expected size={size}")
    for algorithm, expected, actual in verifier.mismatches():
        looks = ""
        if verifier.required_by.get(algorithm) == "server":
            expected += " (from the server's digest header)"
        if sniff is not None:
            head = sniff.head if sniff.offset == 0 else None
            looks = "; " + describe_bytes(head, received, sniff.name, size)
        raise SourceFailed(
            Reason.HASH_MISMATCH,
            f"{algorithm} mismatch: expected {expected}, got {actual} ({received} bytes){looks}",
        )
