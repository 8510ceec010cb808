"""Runs one request: the cache and its lock, the staging file, the walk over sources, the commit."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..errors import Attempt, FetchError, Reason
from ..options import Options
from ..policy.digests import is_pinned, lock_digest
from ..policy.plan import Job, Source
from ..policy.secrets import redact_error, redact_result
from ..policy.witness import verified_by
from ..results import FetchResult
from ..store.cache import ENTRY_MODE, Cache, CacheConflict, LockTimeout
from ..store.files import deliver
from ..store.staging import Staging
from ..transport import Transport
from .mirrors import mirror_health
from .transfer import Transfer
from .walk import SourceWalk, summary

__all__ = ["Engine"]

log = logging.getLogger("robustfetch")

#: How long to wait for another process downloading the same file.
LOCK_WAIT = 15 * 60.0


class Engine:
    """Runs jobs with one transport, one set of options and one cache."""

    def __init__(
        self, options: Options, transport: Transport, cache: Optional[Cache], trust: str
    ) -> None:
        self.options = options
        self.cache = cache
        self.transfer = Transfer(options, transport, trust)
        self.walk = SourceWalk(options, self.transfer)

    def run(self, job: Job) -> FetchResult:
        """Fetch ``job``: from the cache if a pinned copy is there, else from its sources.

        With several sha256 candidates the cache is searched for each, while the
        lock and the partial file are keyed by the smallest (:func:`lock_digest`):
        one key whatever order the candidates were written in. What leaves here
        is masked (:mod:`robustfetch.policy.secrets`): no password or token in a
        URL, detail or message. The deadline starts now: lock waits, look-ups,
        probes and every transfer count against the one ``deadline_at``.
        """
        try:
            return redact_result(self._run(job))
        except FetchError as error:
            redact_error(error)
            raise

    def _run(self, job: Job) -> FetchResult:
        deadline = self.options.deadline
        deadline_at = time.monotonic() + deadline if deadline else None
        sha256 = lock_digest(job.expected)
        if self.cache is None or sha256 is None:
            if self.options.offline:
                raise _offline(job, "offline, and without a pinned sha256 the cache cannot help")
            return self._download_beside(job, deadline_at)
        wait = LOCK_WAIT if deadline_at is None else max(0.0, deadline_at - time.monotonic())
        held = ExitStack()
        try:
            held.enter_context(self.cache.lock(sha256, wait))  # another process may be at it
        except LockTimeout:
            return self._without_lock(job, wait, deadline_at)
        except OSError as exc:
            raise _io_error(job, f"cannot lock the cache: {exc}") from exc
        with held:
            hit = _lookup(self.cache, job)
            if hit is not None:
                return self._from_cache(job, *hit)
            if self.options.offline:
                raise _offline(job, "offline, and not in the cache")
            partial = self.cache.partial_path(sha256)
            try:
                staging = Staging.resumable(partial, job.expected, job.name)
            except OSError as exc:
                raise _io_error(job, f"cannot stage {partial}: {exc}") from exc
            with staging:
                if staging.size and self._complete(staging):
                    # Killed after the last write, before the rename: nothing to ask for.
                    log.info("%s: the %d bytes kept verify; committing", job.name, staging.size)
                    url = staging.url or job.sources[0].url
                    kept = self._commit(job, url, staging, [])
                    self.transfer.progress(url, kept.size, kept.size, done=True)
                    return replace(kept, from_cache=True)
                if staging.size:
                    log.info(
                        "%s: resuming the %d bytes kept from an earlier run", job.name, staging.size
                    )
                return self._download(job, staging, deadline_at)

    def _download_beside(self, job: Job, deadline_at: Optional[float]) -> FetchResult:
        """Stage a file of its own beside ``dest`` (or in the cache's staging folder)."""
        folder = job.dest.parent if job.dest is not None else self._cache().staging_folder()
        with Staging.beside(folder, job.name, job.expected) as staging:
            return self._download(job, staging, deadline_at)

    def _without_lock(self, job: Job, waited: float, deadline_at: Optional[float]) -> FetchResult:
        """Another process held the digest's lock all the time we could wait.

        Its partial file is its own: with a deadline the request fails
        (``timeout``); without one, the file is downloaded into staging of
        our own, and the atomic commits keep every copy whole.
        """
        if self.options.deadline is not None:
            detail = (
                f"not tried: another process or thread is downloading this file"
                f" (its lock stayed held for the whole deadline of {waited:g} s)"
            )
            attempts = [Attempt(s.url, Reason.TIMEOUT, detail) for s in job.sources]
            raise FetchError(summary(job, attempts), attempts)
        log.warning("%s: lock held for over %.0f s; downloading on our own", job.name, waited)
        hit = _lookup(self._cache(), job)
        if hit is not None:
            return self._from_cache(job, *hit)
        if self.options.offline:
            raise _offline(job, "offline, and not in the cache")
        return self._download_beside(job, deadline_at)

    def _from_cache(self, job: Job, entry: Path, size: int) -> FetchResult:
        path = entry
        if job.dest is not None:
            try:
                deliver(entry, job.dest)
            except OSError as exc:
                attempt = Attempt(
                    entry.as_uri(), Reason.IO_ERROR, f"cannot write {job.dest}: {exc}"
                )
                raise FetchError(summary(job, [attempt]), [attempt]) from exc
            path = job.dest
        log.info("%s: served from the cache (%s)", path, entry)
        self.transfer.progress(job.sources[0].url, size, size, done=True)
        # The entry's name is its sha256: the candidate that matched.
        return FetchResult(path, job.sources[0].url, entry.name, size, True, [], job.pinned_by)

    def _download(self, job: Job, staging: Staging, deadline_at: Optional[float]) -> FetchResult:
        """Try the sources (mirrors ranked first if asked), report progress, commit."""
        transport = self.transfer.transport
        with mirror_health(self.options, transport, self.cache, job, deadline_at) as ranked:
            try:
                source, attempts = self.walk.run(ranked.job, staging, deadline_at)
                result = self._commit(ranked.job, source.url, staging, attempts, source)
            except FetchError as error:
                ranked.attempts[:] = error.attempts
                self.transfer.progress(job.sources[0].url, 0, None, done=True)
                raise
            ranked.attempts[:] = result.attempts
        self.transfer.progress(result.url, result.size, result.size, done=True)
        return result

    def _complete(self, staging: Staging) -> bool:
        """Whether ``staging`` already holds the whole pinned file."""
        size, max_size = self.options.size, self.options.max_size
        return (
            is_pinned(staging.expected)
            and (size is None or staging.size == size)
            and (max_size is None or staging.size <= max_size)
            and not staging.verifier.mismatches()
        )

    def _commit(
        self,
        job: Job,
        url: str,
        staging: Staging,
        attempts: list[Attempt],
        source: Optional[Source] = None,
    ) -> FetchResult:
        """Move the verified bytes into place: the cache entry and/or ``dest``.

        ``source`` (the one that served them) says whose listed hash vouched.
        """
        sha256 = staging.verifier.hexdigest("sha256")
        size = staging.size
        cache = self.cache
        target = job.dest
        try:
            if cache is not None and (job.dest is None or staging.keep):
                # Staged inside the cache: the entry first, then a copy at dest.
                entry = cache.entry_folder(sha256) / sha256
                staging.commit(entry, ENTRY_MODE)
                if job.dest is not None:
                    deliver(entry, job.dest)
                target = job.dest or entry
            else:
                assert job.dest is not None
                staging.commit(job.dest)
                if cache is not None:
                    cache.store(job.dest, sha256)
        except OSError as exc:
            failed = Attempt(url, Reason.IO_ERROR, f"cannot write {target}: {exc}")
            attempts = [*attempts[:-1], failed] if attempts else [failed]
            raise FetchError(summary(job, attempts), attempts) from exc
        assert target is not None
        log.info("%s: saved %s (%d bytes, sha256 %s)", url, target, size, sha256)
        by = verified_by(
            job.pinned_by if is_pinned(job.expected) else None,
            (source.listed_by or source.origin) if source is not None else "",
            source.expected if source is not None else {},
            "server" in staging.verifier.origins,
        )
        return FetchResult(target, url, sha256, size, False, list(attempts), by)

    def _cache(self) -> Cache:
        assert self.cache is not None, "api checks that a destination exists"
        return self.cache


def _lookup(cache: Cache, job: Job) -> Optional[tuple[Path, int]]:
    """The cache's verified entry for ``job``; hashes that contradict each other fail here."""
    try:
        return cache.lookup(job.expected)
    except CacheConflict as conflict:
        attempts = [
            Attempt(
                entry.as_uri(),
                Reason.HASH_MISMATCH,
                f"the cached file with sha256 {entry.name} (verified) has {algorithm} {actual},"
                f" not {expected}: no source can match both",
            )
            for entry, algorithm, expected, actual in conflict.conflicts
        ]
        message = f"{summary(job, attempts)}: the hashes given for it disagree with each other"
        raise FetchError(message, attempts) from None


def _io_error(job: Job, detail: str) -> FetchError:
    attempts = [Attempt(job.sources[0].url, Reason.IO_ERROR, detail)]
    return FetchError(summary(job, attempts), attempts)


def _offline(job: Job, detail: str) -> FetchError:
    attempts = [Attempt(s.url, Reason.OFFLINE, detail) for s in job.sources]
    return FetchError(summary(job, attempts), attempts)
