"""Tries the sources of one request in order: retries, timeouts, streaming checks, commit."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from .backoff import parse_retry_after, retry_delay, should_retry
from .cache import Cache
from .classify import classify_exception, classify_status
from .commit import Staging
from .digests import Verifier, is_pinned
from .errors import Attempt, FetchError, Reason, SourceFailed
from .options import Options
from .plan import Source
from .policy import check_plain_http, follow_redirect, headers_for_redirect, is_redirect
from .results import FetchResult, ProgressEvent
from .sink import THREADED_MIN, Sink
from .transport import Response, Transport, TransportError

__all__ = ["Engine", "Job"]

log = logging.getLogger("robustfetch")

CHUNK = 256 * 1024
_TICK = 0.1  # seconds between progress events and speed/deadline checks
_ERROR_BODY = 64 * 1024


@dataclass(frozen=True)
class Job:
    """One request, checked and planned.

    :param sources: in the order they are tried.
    :param expected: algorithm -> hex digest; empty when nothing is pinned.
    :param dest: the final path, or ``None`` to keep the file in ``cache``.
    :param name: the file name, for staging files.
    """

    sources: list[Source]
    expected: Mapping[str, str]
    dest: Optional[Path]
    name: str


class Engine:
    """Runs jobs with one transport and one set of options."""

    def __init__(
        self, options: Options, transport: Transport, cache: Optional[Cache], trust: str
    ) -> None:
        self.options = options
        self.transport = transport
        self.cache = cache
        self.trust = trust

    def run(self, job: Job) -> FetchResult:
        """Fetch ``job``: the first source that yields verified bytes wins."""
        if job.dest is None and self.cache is not None:
            hit = self.cache.lookup(job.expected)
            if hit is not None:
                log.info("%s: served from the cache", hit[0])
                return FetchResult(hit[0], job.sources[0].url, job.expected["sha256"], hit[1], True)
        if self.options.offline:
            attempts = [
                Attempt(s.url, Reason.OFFLINE, "offline: not in the cache") for s in job.sources
            ]
            raise FetchError(_summary(job, attempts), attempts)
        try:
            result = self._run_sources(job)
        except FetchError:
            self._progress(job.sources[0].url, 0, None, done=True)
            raise
        self._progress(result.url, result.size, result.size, done=True)
        return result

    def _run_sources(self, job: Job) -> FetchResult:
        folder = job.dest.parent if job.dest is not None else self._cache().staging_folder()
        deadline = self.options.deadline
        deadline_at = time.monotonic() + deadline if deadline else None
        attempts: list[Attempt] = []
        try:
            with Staging(folder, job.name) as staging:
                for index, source in enumerate(job.sources):
                    last = index == len(job.sources) - 1
                    verifier = self._try_source(source, job, staging, deadline_at, last, attempts)
                    if verifier is not None:
                        return self._commit(job, source, staging, verifier, attempts)
        except _Abort as abort:
            done = {a.url for a in attempts}
            attempts += [
                Attempt(s.url, abort.reason, abort.detail) for s in job.sources if s.url not in done
            ]
        raise FetchError(_summary(job, attempts), attempts)

    def _try_source(
        self,
        source: Source,
        job: Job,
        staging: Staging,
        deadline_at: Optional[float],
        last: bool,
        attempts: list[Attempt],
    ) -> Optional[Verifier]:
        tries = 0
        while True:
            if deadline_at is not None and time.monotonic() >= deadline_at:
                raise _Abort(
                    Reason.TIMEOUT, f"not tried: deadline of {self.options.deadline:g} s reached"
                )
            try:
                verifier = self._try_once(source.url, job, staging, deadline_at)
            except SourceFailed as failure:
                attempts.append(Attempt(source.url, failure.reason, failure.detail, failure.status))
                log.info("%s: %s: %s", source.url, failure.reason.value, failure.detail)
                if failure.reason is Reason.IO_ERROR:
                    raise _Abort(
                        Reason.IO_ERROR, "not tried after the local I/O error above"
                    ) from None
                if not should_retry(failure, tries, self.options.retries, last):
                    return None
                delay = retry_delay(
                    tries, self.options.backoff, failure.retry_after, self.options.max_retry_after
                )
                if deadline_at is not None:
                    delay = min(delay, max(0.0, deadline_at - time.monotonic()))
                log.info("%s: retrying in %.2f s", source.url, delay)
                _sleep(delay)
                tries += 1
            else:
                attempts.append(Attempt(source.url, None, f"{verifier.size} bytes", 200))
                return verifier

    def _try_once(
        self, url: str, job: Job, staging: Staging, deadline_at: Optional[float]
    ) -> Verifier:
        opts = self.options
        pinned = is_pinned(job.expected)
        check_plain_http(url, pinned, opts.allow_http)
        headers = {"User-Agent": opts.user_agent, **opts.headers, "Accept-Encoding": "identity"}
        current, hops = url, 0
        while True:
            read_timeout = _bounded(opts.stall_timeout, deadline_at)
            connect_timeout = _bounded(opts.connect_timeout, deadline_at)
            try:
                response = self.transport.open(
                    current, headers, connect_timeout=connect_timeout, read_timeout=read_timeout
                )
            except TransportError as exc:
                raise self._failure(exc, current, "connect", 0, None, deadline_at) from None
            if is_redirect(response.status, response.headers):
                _drain(response)
                target = follow_redirect(
                    current,
                    response.headers["Location"],
                    hops,
                    opts.max_redirects,
                    pinned,
                    opts.allow_http,
                )
                log.info("%s: redirected (%d) to %s", current, response.status, target)
                headers = headers_for_redirect(headers, current, target)
                current, hops = target, hops + 1
                continue
            if response.status != 200:
                body = _drain(response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                failure = classify_status(response.status, body, retry_after)
                if current != url:
                    failure.detail += f" (at {current}, after {hops} redirects)"
                raise failure
            return self._stream(response, current, job, staging, deadline_at)

    def _stream(
        self,
        response: Response,
        url: str,
        job: Job,
        staging: Staging,
        deadline_at: Optional[float],
    ) -> Verifier:
        length = _content_length(response.headers)
        try:
            _check_announced(length, self.options.size, self.options.max_size)
            out = staging.restart()
        except OSError as exc:
            response.close()
            raise SourceFailed(Reason.IO_ERROR, f"cannot write {staging.path}: {exc}") from None
        except BaseException:
            response.close()
            raise
        verifier = Verifier(job.expected)
        threaded = length is None or length >= THREADED_MIN
        sink = Sink(verifier, out, str(staging.path), threaded)
        try:
            received = self._receive(response, sink, url, length, deadline_at)
            sink.finish()
            _check_complete(received, length, self.options.size, verifier)
        except BaseException:
            sink.abort()
            response.close()
            raise
        response.release()
        self._progress(url, received, length)
        return verifier

    def _receive(
        self,
        response: Response,
        sink: Sink,
        url: str,
        length: Optional[int],
        deadline_at: Optional[float],
    ) -> int:
        """Feed the body to ``sink``, enforcing max_size, min_speed and the deadline."""
        opts = self.options
        received = 0
        clock = time.monotonic
        window_start, window_bytes = clock(), 0
        next_tick = window_start + _TICK
        read_timeout = _bounded(opts.stall_timeout, deadline_at)
        while True:
            try:
                chunk = response.read(CHUNK)
            except TransportError as exc:
                raise self._failure(exc, url, "body", received, length, deadline_at) from None
            if not chunk:
                return received
            received += len(chunk)
            if opts.max_size is not None and received > opts.max_size:
                raise SourceFailed(
                    Reason.TOO_LARGE, f"more than max_size={opts.max_size} bytes; stopped"
                )
            sink.feed(chunk)
            now = clock()
            if now < next_tick:
                continue
            # Once per tick, not per chunk: progress, speed and deadline checks.
            next_tick = now + _TICK
            self._progress(url, received, length)
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
                    raise _deadline_failure(opts.deadline, received, length)
                if remaining < read_timeout:
                    read_timeout = remaining
                    response.set_read_timeout(remaining)

    def _commit(
        self,
        job: Job,
        source: Source,
        staging: Staging,
        verifier: Verifier,
        attempts: list[Attempt],
    ) -> FetchResult:
        sha256 = verifier.hexdigest("sha256")
        target = job.dest if job.dest is not None else self._cache().entry_folder(sha256) / sha256
        try:
            staging.commit(target)
        except OSError as exc:
            failure = Attempt(
                source.url, Reason.IO_ERROR, f"cannot move the file to {target}: {exc}"
            )
            attempts[-1] = failure
            raise FetchError(_summary(job, attempts), attempts) from exc
        log.info("%s: saved %s (%d bytes, sha256 %s)", source.url, target, verifier.size, sha256)
        return FetchResult(target, source.url, sha256, verifier.size, False, list(attempts))

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
        return classify_exception(
            exc,
            phase=phase,
            received=received,
            expected=length,
            timeout=getattr(self.options, name),
            timeout_name=name,
            sni_sent=not _is_ip(host),
            via_proxy=exc.via_proxy,
            ca_description=self.trust,
        )

    def _progress(self, url: str, received: int, total: Optional[int], done: bool = False) -> None:
        if self.options.progress is not None:
            self.options.progress(ProgressEvent(url, received, total, done))

    def _cache(self) -> Cache:
        assert self.cache is not None, "api checks that a destination exists"
        return self.cache


def _sleep(seconds: float) -> None:
    """Wait between tries (a seam for tests that count the waits)."""
    time.sleep(seconds)


class _Abort(Exception):
    """Stop trying sources: the rest are recorded with this reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _summary(job: Job, attempts: list[Attempt]) -> str:
    sources = len(job.sources)
    return f"could not fetch {job.name}: {sources} source{'s' * (sources != 1)} failed"


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


def _content_length(headers: Mapping[str, str]) -> Optional[int]:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return None
    value = headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


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
    received: int, length: Optional[int], size: Optional[int], verifier: Verifier
) -> None:
    if length is not None and received < length:
        raise SourceFailed(
            Reason.TRUNCATED, f"body cut short after {received} of {length} bytes", transient=True
        )
    if size is not None and received != size:
        raise SourceFailed(Reason.SIZE_MISMATCH, f"got {received} bytes, expected size={size}")
    for algorithm, expected, actual in verifier.mismatches():
        raise SourceFailed(
            Reason.HASH_MISMATCH,
            f"{algorithm} mismatch: expected {expected}, got {actual} ({received} bytes)",
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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
