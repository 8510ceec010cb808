"""Tries the sources of one request in order: retries, timeouts, streaming checks, commit."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from .backoff import retry_delay, should_retry
from .cache import Cache
from .commit import Staging
from .digests import Verifier
from .errors import Attempt, FetchError, Reason, SourceFailed
from .health import HealthStore
from .options import Options
from .plan import Source, mirror_host, rank_mirrors
from .pypi import SdistRef, find_file, json_api_url, sdist_ref
from .results import FetchResult
from .transfer import Transfer
from .transport import Transport
from .urls import check_url

__all__ = ["Engine", "Job"]

log = logging.getLogger("robustfetch")

_JSON_LIMIT = 64 << 20  # the largest PyPI project documents are some MiB

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
        self.cache = cache
        self.transfer = Transfer(options, transport, trust)

    def run(self, job: Job) -> FetchResult:
        """Fetch ``job``: the first source that yields verified bytes wins."""
        if job.dest is None and self.cache is not None:
            hit = self.cache.lookup(job.expected)
            if hit is not None:
                log.info("%s: served from the cache", hit[0])
                return FetchResult(hit[0], job.sources[0].url, job.expected["sha256"], hit[1], True)
        if self.options.offline:
            offline = [
                Attempt(s.url, Reason.OFFLINE, "offline: not in the cache") for s in job.sources
            ]
            raise FetchError(_summary(job, offline), offline)
        if self.options.mirror_order == "fastest":
            return self._run_fastest(job)
        return self._run_reported(job)

    def _run_reported(self, job: Job) -> FetchResult:
        """Run ``job`` and send the final progress event, success or not."""
        try:
            result = self._run_sources(job)
        except FetchError:
            self.transfer.progress(job.sources[0].url, 0, None, done=True)
            raise
        self.transfer.progress(result.url, result.size, result.size, done=True)
        return result

    def _run_fastest(self, job: Job) -> FetchResult:
        """Mirrors ranked by connect time now and failures remembered from earlier runs."""
        health = HealthStore(self.cache.root) if self.cache is not None else None
        connect_times = self._measure_mirrors(job)
        failures = {host: h.failures for host, h in (health.load() if health else {}).items()}
        job = replace(job, sources=rank_mirrors(job.sources, connect_times, failures))
        attempts: list[Attempt] = []
        try:
            result = self._run_reported(job)
            attempts = result.attempts
            return result
        except FetchError as error:
            attempts = error.attempts
            raise
        finally:
            if health is not None:
                health.record(_mirror_outcomes(job, attempts), connect_times)

    def _measure_mirrors(self, job: Job) -> dict[str, Optional[float]]:
        """Connect times of the mirrors' hosts, measured in parallel."""
        hosts = {mirror_host(s.url): s.url for s in job.sources if s.origin == "mirror"}
        if not hosts:
            return {}
        timeout = min(self.options.connect_timeout, 3.0)
        measure = self.transfer.transport.connect_time
        with ThreadPoolExecutor(max_workers=min(len(hosts), 8)) as pool:
            times = pool.map(lambda url: measure(url, timeout), hosts.values())
            return dict(zip(hosts, times))

    def _run_sources(self, job: Job) -> FetchResult:
        folder = job.dest.parent if job.dest is not None else self._cache().staging_folder()
        deadline = self.options.deadline
        deadline_at = time.monotonic() + deadline if deadline else None
        attempts: list[Attempt] = []
        sources = list(job.sources)
        asked_pypi = False
        try:
            with Staging(folder, job.name) as staging:
                index = 0
                while index < len(sources):
                    source = sources[index]
                    index += 1
                    if source.blocked_by is not None:
                        detail = f"blocked by the rule {source.blocked_by}"
                        attempts.append(Attempt(source.url, Reason.BLOCKED, detail))
                        continue
                    last = index == len(sources)
                    verifier = self._try_source(source, job, staging, deadline_at, last, attempts)
                    if verifier is not None:
                        return self._commit(job, source, staging, verifier, attempts)
                    ref = sdist_ref(source.url)
                    if ref is not None and not asked_pypi and _not_found(attempts):
                        # The file may live elsewhere now: PyPI's JSON API knows where.
                        asked_pypi = True
                        found = self._ask_pypi(ref, job, deadline_at, attempts)
                        if found is not None:
                            sources.insert(index, found)
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
            expected = {**job.expected, **source.expected}
            try:
                verifier = self.transfer.fetch(source.url, expected, staging, deadline_at)
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

    def _ask_pypi(
        self, ref: SdistRef, job: Job, deadline_at: Optional[float], attempts: list[Attempt]
    ) -> Optional[Source]:
        """The source PyPI's JSON API lists for ``ref``'s file, or ``None`` (recorded why)."""
        api = json_api_url(ref.project)
        try:
            document = json.loads(self.transfer.get(api, _JSON_LIMIT, deadline_at))
        except SourceFailed as failure:
            detail = f"PyPI lookup of {ref.project!r}: {failure.detail}"
            attempts.append(Attempt(api, failure.reason, detail, failure.status))
            return None
        except ValueError as exc:  # JSON, or its text encoding
            attempts.append(Attempt(api, Reason.HTTP_STATUS, f"PyPI answered invalid JSON: {exc}"))
            return None
        found = find_file(document, ref.filename)
        if found is None:
            detail = f"PyPI lists no file like {ref.filename} for {ref.project!r}"
            attempts.append(Attempt(api, Reason.NOT_FOUND, detail, 200))
            return None
        url, listed = found
        try:
            check_url(url)
        except ValueError as exc:
            attempts.append(Attempt(api, Reason.HTTP_STATUS, f"PyPI lists an unusable URL: {exc}"))
            return None
        pinned = job.expected.get("sha256")
        if listed is not None and pinned is not None and listed != pinned:
            detail = (
                f"PyPI lists sha256 {listed} for {ref.filename}, but {pinned} is pinned: "
                "the pin or the upload is wrong"
            )
            attempts.append(Attempt(url, Reason.HASH_MISMATCH, detail))
            return None
        log.info("%s: PyPI lists it at %s", ref.url, url)
        blocked = self.options.rule_set().blocked_by(url)
        return Source(
            url,
            "pypi",
            str(blocked) if blocked is not None else None,
            {"sha256": listed} if listed is not None else {},
        )

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


def _mirror_outcomes(job: Job, attempts: list[Attempt]) -> dict[str, bool]:
    """Mirror host -> whether its last try this run succeeded."""
    mirrors = {s.url for s in job.sources if s.origin == "mirror"}
    return {mirror_host(a.url): a.reason is None for a in attempts if a.url in mirrors}


def _not_found(attempts: list[Attempt]) -> bool:
    return bool(attempts) and attempts[-1].reason is Reason.NOT_FOUND


def _summary(job: Job, attempts: list[Attempt]) -> str:
    sources = len(job.sources)
    return f"could not fetch {job.name}: {sources} source{'s' * (sources != 1)} failed"
