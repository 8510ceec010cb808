"""One try of one URL: redirects, streaming into the staging file, size and hash checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

from ..errors import Reason, SourceFailed
from ..options import Options
from ..policy.access import HOST_BOUND, check_hop, credentials_for, origin, split_userinfo
from ..policy.backoff import parse_retry_after
from ..policy.classify import classify_status
from ..policy.digests import Verifier
from ..policy.headers import parse_content_length, parse_content_range_start
from ..policy.hops import follow_redirect, is_redirect
from ..policy.secrets import redact
from ..policy.sniff import describe_bytes, describe_error_page
from ..policy.urls import default_port, is_ip_literal, local_path
from ..policy.witness import WANT_REPR_DIGEST
from ..results import ProgressEvent
from ..store.staging import Staging
from ..transport import Response, Transport, TransportError
from ..transport.cancel import Cancel
from ..transport.faults import classify_exception
from .checks import Sniff, check_witness
from .sink import THREADED_MIN, Sink

__all__ = ["Opened", "Transfer"]

log = logging.getLogger("robustfetch")

CHUNK = 256 * 1024  # reads of small documents (error pages, API answers)
_TICK = 0.1  # seconds between progress events and speed/deadline checks
_ERROR_BODY = 64 * 1024
# Failures after which the staged prefix is still good for a resume.
_RESUMABLE = frozenset({Reason.TRUNCATED, Reason.STALLED, Reason.TIMEOUT, Reason.TOO_SLOW})


@dataclass
class Opened:
    """A response head fit to stream: from ``current`` (after redirects), body from ``offset``."""

    response: Response
    current: str
    offset: int
    url: str  # the URL asked for, before redirects

    @property
    def status(self) -> Optional[int]:
        """The answer's HTTP status (206 for a resume); ``None`` for ``file:`` and ``ftp:``."""
        scheme = urlsplit(self.current).scheme.lower()
        return None if scheme in ("file", "ftp") else self.response.status


class Transfer:
    """Performs single tries with one transport and one set of options."""

    def __init__(self, options: Options, transport: Transport, trust: str) -> None:
        self.options = options
        self.transport = transport
        self.trust = trust

    def fetch(
        self,
        url: str,
        staging: Staging,
        deadline_at: Optional[float],
        resume: bool,
        address: Optional[tuple[str, int]] = None,
        on_head: Optional[Callable[[str, Mapping[str, str]], None]] = None,
        home: Optional[str] = None,
        address_at: Optional[str] = None,
    ) -> Optional[int]:
        """One try of ``url``: follow redirects, stream the body into ``staging``, verify it.

        Returns the HTTP status of the answer that delivered (see :attr:`Opened.status`).

        With ``resume``, only the bytes after :attr:`Staging.size` are asked
        for (``Range``, plus ``If-Range`` when the staged bytes came from this
        URL). Afterwards ``staging`` holds either the complete verified body,
        or (after :class:`SourceFailed`) a clean prefix to resume, or nothing.
        ``address`` pins the connection to ``address_at``'s origin (default:
        ``url``'s, the first hop) to one resolved address;
        ``on_head`` sees the URL and head of each answer that names duplicates:
        every redirect hop (only its ``Link``: MirrorBrain's 302), a 206 (its
        ``Link``) and a 200 (all of it, digest headers included);
        ``home`` is the request's first URL, whose origin alone receives the
        credential headers of the ``headers`` option.
        """
        opened = self.request(
            url,
            staging,
            deadline_at,
            resume,
            address,
            on_head=on_head,
            home=home,
            address_at=address_at,
        )
        return self.receive(opened, staging, deadline_at)

    def request(
        self,
        url: str,
        staging: Staging,
        deadline_at: Optional[float],
        resume: bool,
        address: Optional[tuple[str, int]] = None,
        cancel: Optional[Cancel] = None,
        restart: Optional[Callable[[], None]] = None,
        on_head: Optional[Callable[[str, Mapping[str, str]], None]] = None,
        home: Optional[str] = None,
        address_at: Optional[str] = None,
    ) -> Opened:
        """The first half of :meth:`fetch`: the request, redirects, and a head fit to stream.

        Nothing is written to ``staging`` here: a head that says the staged
        prefix cannot be continued calls ``restart`` (default: empty the
        staging file), so that a hedge running on another thread leaves the
        file alone. ``cancel`` lets another thread abort the request.
        """
        restart = restart or staging.restart
        # Only the caller's pin unlocks plain http, not a witness (staging.pinned).
        pinned = staging.pinned
        offset = staging.size if resume else 0
        extra = {"Want-Repr-Digest": WANT_REPR_DIGEST}
        if offset:
            extra["Range"] = f"bytes={offset}-"
            if staging.validator is not None and staging.url == url:
                extra["If-Range"] = staging.validator
        response, current = self.open(
            url,
            pinned,
            deadline_at,
            extra,
            address,
            home=home,
            address_at=address_at,
            cancel=cancel,
            on_redirect=on_head,
        )
        if on_head is not None and response.status == 200:
            on_head(current, response.headers)
        elif on_head is not None and response.status == 206 and "Link" in response.headers:
            # A partial answer's digest headers do not describe the whole file.
            on_head(current, {"Link": response.headers["Link"]})
        if offset and response.status == 206:
            start = _range_start(response.headers)
            if start != offset:
                response.close()
                restart()
                raise SourceFailed(
                    Reason.TRUNCATED,
                    f"asked for bytes {offset}- but Content-Range says "
                    f"{response.headers.get('Content-Range')!r}; starting over",
                    transient=True,
                )
            log.info("%s: resuming after %d bytes", url, offset)
        elif response.status == 200:
            if offset:
                log.info("%s: the server sent the whole file; starting over", url)
            offset = 0
        else:
            if response.status == 416:
                restart()  # our prefix does not fit this file
            raise self._status_failure(response, url, current)
        return Opened(response, current, offset, url)

    def receive(
        self, opened: Opened, staging: Staging, deadline_at: Optional[float]
    ) -> Optional[int]:
        """The second half of :meth:`fetch`: stream the body of ``opened``, verify it.

        Returns :attr:`Opened.status`.
        """
        self._stream(
            opened.response, opened.current, staging, opened.offset, deadline_at, opened.url
        )
        return opened.status

    def get(self, url: str, limit: int, deadline_at: Optional[float]) -> bytes:
        """A small document (an API answer) in memory; more than ``limit`` bytes is an error."""
        return self.get_page(url, limit, deadline_at)[0]

    def get_page(
        self,
        url: str,
        limit: int,
        deadline_at: Optional[float],
        accept: str = "application/json",
        pinned: bool = False,
    ) -> tuple[bytes, str, str]:
        """Like :meth:`get`: the body, its ``Content-Type`` and the URL that answered.

        ``pinned`` says whether the file the document leads to has a pinned hash
        (redirects to plain http are then allowed, as for the file itself).
        """
        response, current = self.open(url, pinned, deadline_at, {"Accept": accept}, hop="lookup")
        if response.status != 200:
            raise self._status_failure(response, url, current)
        body = b""
        try:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except TransportError as exc:
                    raise self._failure(
                        exc, current, "body", len(body), None, deadline_at
                    ) from None
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    raise SourceFailed(Reason.TOO_LARGE, f"answer larger than {limit} bytes")
        except BaseException:
            response.close()
            raise
        response.release()
        return body, response.headers.get("Content-Type", ""), current

    def list_folder(self, url: str) -> Optional[list[str]]:
        """The file names in the local folder ``url`` names (find-links), or ``None``."""
        from ..transport.files import list_folder

        return list_folder(local_path(url)) if url.startswith("file:") else None

    def open(
        self,
        url: str,
        pinned: bool,
        deadline_at: Optional[float],
        extra_headers: Optional[Mapping[str, str]] = None,
        address: Optional[tuple[str, int]] = None,
        *,
        home: Optional[str] = None,
        hop: str = "source",
        address_at: Optional[str] = None,
        cancel: Optional[Cancel] = None,
        on_redirect: Optional[Callable[[str, Mapping[str, str]], None]] = None,
    ) -> tuple[Response, str]:
        """The response head of ``url`` after redirects, and the URL that gave it.

        ``on_redirect`` sees each redirect hop's URL and ``Link`` header, if it has one.

        Every hop passes the access gate (:func:`~robustfetch.policy.access.check_hop`:
        allow/block rules, plain http) before its connection is opened, and gets
        only the credentials :func:`~robustfetch.policy.access.credentials_for`
        allows it; none at all once a redirect has left the first origin.
        """
        opts = self.options
        rules = opts.rule_set()
        common = {
            "User-Agent": opts.user_agent,
            **{k: v for k, v in opts.headers.items() if k.lower() not in HOST_BOUND},
            **(extra_headers or {}),
            "Accept-Encoding": "identity",
        }
        bound = {k: v for k, v in opts.headers.items() if k.lower() in HOST_BOUND}
        current, hops, same_origin = url, 0, True
        while True:
            check_hop(current, rules, pinned=pinned, allow_http=opts.allow_http, hop=hop)
            request_url, userinfo = split_userinfo(current)
            headers = dict(common)
            if same_origin:
                headers.update(
                    credentials_for(
                        request_url,
                        home=home,
                        headers=bound,
                        auth=opts.auth,
                        netrc=opts.netrc_auth,
                        userinfo=userinfo,
                    )
                )
            read_timeout = _bounded(opts.stall_timeout, deadline_at)
            connect_timeout = _bounded(opts.connect_timeout, deadline_at)
            try:
                response = self.transport.open(
                    request_url,
                    headers,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    address=address if _origin(current) == _origin(address_at or url) else None,
                    deadline_at=deadline_at,
                    cancel=cancel,
                )
            except TransportError as exc:
                raise self._failure(exc, current, "connect", 0, None, deadline_at) from None
            if deadline_at is not None and time.monotonic() >= deadline_at:
                # The watchdog may have cut the head short: none of it can be trusted.
                response.close()
                raise _deadline_failure(opts.deadline, 0, None)
            if not is_redirect(response.status, response.headers):
                return response, current
            _drain(response)
            if on_redirect is not None and "Link" in response.headers:
                on_redirect(current, {"Link": response.headers["Link"]})
            target = follow_redirect(
                current,
                response.headers["Location"],
                hops,
                opts.max_redirects,
                pinned,
                opts.allow_http,
            )
            log.info("%s: redirected (%d) to %s", current, response.status, target)
            # Credentials stay with the origin they were meant for, for the rest of the chain.
            same_origin = same_origin and origin(target) == origin(current)
            current, hops, hop = target, hops + 1, "redirect"

    def _status_failure(self, response: Response, url: str, current: str) -> SourceFailed:
        body = _drain(response)
        if response.status == 511:
            # RFC 6585's "Network Authentication Required": a captive portal said so.
            detail = describe_error_page(body, 511, current, url)
            return SourceFailed(Reason.ERROR_PAGE, detail, 511)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        failure = classify_status(response.status, body, retry_after)
        if current != url:
            failure.detail += f" (at {current}, after redirects)"
        return failure

    def _stream(
        self,
        response: Response,
        url: str,
        staging: Staging,
        offset: int,
        deadline_at: Optional[float],
        requested: Optional[str] = None,
    ) -> None:
        try:
            length = _content_length(response.headers)
            total = None if length is None else offset + length
            _check_announced(total, self.options.size, self.options.max_size)
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
        sink = Sink(staging, threaded=length is None or length >= THREADED_MIN)
        try:
            self._receive(response, sink, url, offset, total, deadline_at, sniff)
            sniff.check(b"", b"")
            sink.finish()
            if _close_delimited(response.headers) and _passed(deadline_at):
                # The watchdog's shutdown reads as the end of such a body.
                raise _deadline_failure(self.options.deadline, staging.size, None)
            if staging.size == offset and _close_delimited(response.headers):
                # http.client ends a head at EOF as if a blank line came: a response
                # cut inside its head looks like an empty body delimited by the close.
                raise SourceFailed(
                    Reason.TRUNCATED,
                    "the server closed the connection before any byte of the body "
                    "(and sent no Content-Length): the response was cut short",
                    transient=True,
                )
            _check_complete(staging.size, total, self.options.size, staging.verifier, sniff)
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
        self.progress(url, staging.size, total)

    def _receive(
        self,
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
        opts = self.options
        received = offset
        clock = time.monotonic
        window_start, window_bytes = clock(), offset
        next_tick = window_start + _TICK
        read_timeout = _bounded(opts.stall_timeout, deadline_at)
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
                    raise self._failure(exc, url, "body", received, total, deadline_at) from None
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
                self.progress(url, received, total)
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
                        raise _deadline_failure(opts.deadline, received, total)
                    if remaining < read_timeout:
                        read_timeout = remaining
                        response.set_read_timeout(remaining)
        finally:
            # What arrived before a failure is kept (a resume continues after it).
            if filled:
                sink.submit(buffer, filled)

    def _failure(
        self,
        exc: TransportError,
        url: str,
        phase: str,
        received: int,
        length: Optional[int],
        deadline_at: Optional[float],
    ) -> SourceFailed:
        if deadline_at is not None and time.monotonic() >= deadline_at - 0.01:
            return _deadline_failure(self.options.deadline, received, length)
        host = urlsplit(url).hostname or ""
        name = "connect_timeout" if exc.connecting else "stall_timeout"
        failure = classify_exception(
            exc,
            phase=phase,
            received=received,
            expected=length,
            timeout=getattr(self.options, name),
            timeout_name=name,
            sni_sent=not is_ip_literal(host),
            via_proxy=exc.via_proxy,
            ca_description=self.trust,
        )
        failure.url = url  # after a redirect: another host than the source's
        return failure

    def progress(self, url: str, received: int, total: Optional[int], done: bool = False) -> None:
        if self.options.progress is not None:
            self.options.progress(ProgressEvent(redact(url), received, total, done))


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port(parts.scheme)


def _passed(deadline_at: Optional[float]) -> bool:
    return deadline_at is not None and time.monotonic() >= deadline_at


def _bounded(timeout: float, deadline_at: Optional[float]) -> float:
    if deadline_at is None:
        return timeout
    return max(0.001, min(timeout, deadline_at - time.monotonic()))


def _deadline_failure(
    deadline: Optional[float], received: int, length: Optional[int]
) -> SourceFailed:
    of = f" of {length}" if length is not None else ""
    return SourceFailed(
        Reason.TIMEOUT, f"deadline of {deadline:g} s reached after {received}{of} bytes"
    )


def _range_start(headers: Mapping[str, str]) -> Optional[int]:
    """The first byte of a ``Content-Range: bytes N-M/T`` answer, or ``None``."""
    return parse_content_range_start(headers.get("Content-Range"))


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


def _drain(response: Response) -> bytes:
    """Read a short non-file body (for its message) and free the connection."""
    body = b""
    try:
        while len(body) < _ERROR_BODY:
            chunk = response.read(_ERROR_BODY - len(body))
            if not chunk:
                response.release()
                return body
            body += chunk
    except TransportError:
        pass
    response.close()
    return body
