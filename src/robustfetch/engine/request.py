"""Runs one request: the cache, then the sources in order with retries, then the commit."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import Attempt, FetchError, Reason, SourceFailed
from ..options import Options
from ..policy.access import decide
from ..policy.backoff import retry_delay, should_retry
from ..policy.digests import is_pinned, lock_digest
from ..policy.plan import Job, Source, mirror_host, rank_mirrors, source_key
from ..policy.pypi import sdist_ref
from ..policy.secrets import redact_error, redact_result
from ..policy.urls import authority
from ..policy.witness import combine, verified_by
from ..results import FetchResult
from ..sources.later import LaterSources
from ..store.cache import ENTRY_MODE, Cache, CacheConflict, LockTimeout
from ..store.files import deliver
from ..store.health import HealthStore
from ..store.staging import Staging
from ..transport import Transport
from .transfer import Transfer

if TYPE_CHECKING:
    from .hedge import Race

__all__ = ["Engine"]

log = logging.getLogger("robustfetch")

#: Handshake failures that another address of the same host may not have.
TLS_REASONS = frozenset(
    {
        Reason.SNI_REQUIRED,
        Reason.TLS_VERSION,
        Reason.CERT_UNTRUSTED,
        Reason.CERT_HOSTNAME,
        Reason.CERT_EXPIRED,
        Reason.TLS_ERROR,
    }
)

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
            raise FetchError(_summary(job, attempts), attempts)
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
                raise FetchError(_summary(job, [attempt]), [attempt]) from exc
            path = job.dest
        log.info("%s: served from the cache (%s)", path, entry)
        self.transfer.progress(job.sources[0].url, size, size, done=True)
        # The entry's name is its sha256: the candidate that matched.
        return FetchResult(path, job.sources[0].url, entry.name, size, True, [], job.pinned_by)

    def _download(self, job: Job, staging: Staging, deadline_at: Optional[float]) -> FetchResult:
        """Try the sources (mirrors ranked first if asked), report progress, commit."""
        with self._mirror_health(job, deadline_at) as ranked:
            try:
                result = self._run_sources(ranked, staging, deadline_at)
            except FetchError as error:
                ranked.attempts[:] = error.attempts
                self.transfer.progress(job.sources[0].url, 0, None, done=True)
                raise
            ranked.attempts[:] = result.attempts
        self.transfer.progress(result.url, result.size, result.size, done=True)
        return result

    @contextmanager
    def _mirror_health(self, job: Job, deadline_at: Optional[float]) -> Iterator[_Ranked]:
        """With ``mirror_order="fastest"``: rank mirrors now, remember the outcome after."""
        if self.options.mirror_order != "fastest":
            yield _Ranked(job, [])
            return
        health = HealthStore(self.cache.root) if self.cache is not None else None
        connect_times = self._measure_mirrors(job, deadline_at)
        failures = {host: h.failures for host, h in (health.load() if health else {}).items()}
        ranked = _Ranked(
            replace(job, sources=rank_mirrors(job.sources, connect_times, failures)), []
        )
        try:
            yield ranked
        finally:
            if health is not None:
                health.record(_mirror_outcomes(ranked.job, ranked.attempts), connect_times)

    def _measure_mirrors(
        self, job: Job, deadline_at: Optional[float]
    ) -> dict[str, Optional[float]]:
        """Connect times of the mirrors' hosts, measured in parallel.

        A probe is a connection like any other: a mirror the access gate
        refuses (a blocked host, plain http that would not be used) is not probed.
        """
        rules, pinned = self.options.rule_set(), is_pinned(job.expected)
        allow_http = self.options.allow_http
        hosts = {
            mirror_host(s.url): s.url
            for s in job.sources
            if s.origin == "mirror"
            and decide(s.url, rules, pinned=pinned, allow_http=allow_http, hop="probe").allowed
        }
        if not hosts:
            return {}
        from concurrent.futures import ThreadPoolExecutor  # only mirror_order="fastest"

        timeout = min(self.options.connect_timeout, 3.0)
        if deadline_at is not None:
            timeout = max(0.001, min(timeout, deadline_at - time.monotonic()))
        measure = self.transfer.transport.connect_time
        with ThreadPoolExecutor(max_workers=min(len(hosts), 8)) as pool:
            return dict(zip(hosts, pool.map(lambda url: measure(url, timeout), hosts.values())))

    def _run_sources(
        self, ranked: _Ranked, staging: Staging, deadline_at: Optional[float]
    ) -> FetchResult:
        job = ranked.job
        attempts: list[Attempt] = []
        sources = list(job.sources)
        later = LaterSources(self.transfer, self.options, job.name, job.expected, deadline_at)
        race = self._race(job, staging, sources, deadline_at, later)
        try:
            if self.options.split > 1:
                served = self._split(job, staging, sources, deadline_at, attempts)
                if served is not None:
                    return self._commit(job, served.url, staging, attempts, served)
            index = 0
            while index < len(sources) or self._add_later(later, sources, attempts):
                source = sources[index]
                index += 1
                last = index == len(sources)
                ok = self._try_source(
                    source, job, staging, deadline_at, last, attempts, later, race
                )
                if race is not None and race.switched is not None:
                    # A hedge won: the walk goes on after it (its order is unchanged).
                    source, race.switched = race.switched, None
                    index = next(i for i, s in enumerate(sources) if s is source) + 1
                if ok:
                    return self._commit(job, source.url, staging, attempts, source)
                ref = sdist_ref(source.url)
                if ref is not None and later.pypi_ref is None and _not_found(attempts):
                    # The file may live elsewhere now: PyPI's JSON API knows where.
                    later.pypi_ref = ref
        except _Abort as abort:
            done = {a.url for a in attempts}
            attempts += [
                Attempt(s.url, abort.reason, abort.detail) for s in sources if s.url not in done
            ]
        finally:
            if race is not None:
                race.close()
        raise FetchError(_summary(job, attempts), attempts)

    def _split(
        self,
        job: Job,
        staging: Staging,
        sources: list[Source],
        deadline_at: Optional[float],
        attempts: list[Attempt],
    ) -> Optional[Source]:
        """With ``split``: the file in segments from several sources at once, if it can be.

        It needs the size, a pinned hash (the only judge of a mix of sources)
        and two usable sources; otherwise, or when a segment fails or the whole
        does not verify, the sources are tried one at a time as usual.
        Returns the first segment's source when the file verified.
        """
        from .split import MIN_SEGMENT, SplitDownload

        total = self.options.size
        if total is None or staging.size or not staging.pinned:
            return None
        usable = [
            s
            for s in sources
            if s.blocked_by is None
            and s.url.startswith(("https:", "http:"))
            and {**job.expected, **s.expected} == staging.expected
        ]
        count = min(self.options.split, len(usable), total // MIN_SEGMENT)
        if count < 2:
            return None
        download = SplitDownload(self.transfer, staging, deadline_at, home=job.url)
        ok, tried = download.run(usable[:count], total)
        attempts += tried
        return usable[0] if ok else None

    def _race(
        self,
        job: Job,
        staging: Staging,
        sources: list[Source],
        deadline_at: Optional[float],
        later: LaterSources,
    ) -> Optional[Race]:
        """Hedging for this request's sources (``hedge_after``), if it has more than one."""
        hedge_after = self.options.hedge_after
        if hedge_after is None or len(sources) < 2:
            return None
        from .hedge import Race  # threads only for requests with something to race

        def eligible(candidate: Source) -> bool:
            # Its bytes must fit the staging file's hash state as it is now.
            return {**job.expected, **candidate.expected} == staging.expected

        def on_head(candidate: Source) -> Callable[[str, Mapping[str, str]], None]:
            expected = {**job.expected, **candidate.expected}
            return lambda url, headers: later.learn(url, headers, expected)

        return Race(
            self.transfer,
            staging,
            sources,
            eligible,
            lambda candidate: _may_resume(staging, candidate.url),
            on_head,
            hedge_after,
            deadline_at,
            home=job.url,
        )

    def _add_later(
        self, later: LaterSources, sources: list[Source], attempts: list[Attempt]
    ) -> bool:
        """Append the next steps' new sources (index and find-links links, PyPI's, duplicates).

        Failed look-ups become attempts; a place already planned is not added
        twice. True when a source was added.
        """
        known = {source_key(s.url) for s in sources}
        while True:
            found = later.next()
            if found is None:
                return False
            added = False
            for item in found:
                if isinstance(item, Attempt):
                    attempts.append(item)
                elif source_key(item.url) not in known:
                    known.add(source_key(item.url))
                    sources.append(item)
                    added = True
            if added:
                return True

    def _try_source(
        self,
        source: Source,
        job: Job,
        staging: Staging,
        deadline_at: Optional[float],
        last: bool,
        attempts: list[Attempt],
        later: Optional[LaterSources] = None,
        race: Optional[Race] = None,
    ) -> bool:
        """Try ``source`` (again, for transient failures); True when ``staging`` is verified.

        ``later`` learns the duplicates the answers announce.
        """
        combined = combine(job.expected, source.expected)
        if isinstance(combined, str):
            # Two witnesses disagree: no download can satisfy both.
            detail = f"{combined}: the pin or the listing is wrong"
            attempts.append(Attempt(source.url, Reason.HASH_MISMATCH, detail))
            return False
        expected = combined
        on_head = None
        if later is not None:

            def on_head(url: str, headers: Mapping[str, str]) -> None:
                later.learn(url, headers, expected)

        if expected != staging.expected:
            staging.restart(expected)
        tries = 0
        restarted = False
        while True:
            if deadline_at is not None and time.monotonic() >= deadline_at:
                raise _Abort(
                    Reason.TIMEOUT, f"not tried: deadline of {self.options.deadline:g} s reached"
                )
            resume = _may_resume(staging, source.url)
            offset = staging.size if resume else 0
            try:
                if race is not None and tries == 0:
                    won = race.open(source)
                    attempts.extend(won.others)
                    if won.source is not source:
                        race.switched = source = won.source
                    status = self.transfer.receive(won.opened, staging, deadline_at)
                else:
                    status = self.transfer.fetch(
                        source.url, staging, deadline_at, resume, on_head=on_head, home=job.url
                    )
            except SourceFailed as failure:
                if failure.reason is Reason.HASH_MISMATCH and source.expected:
                    listed = ", ".join(sorted(source.expected))
                    failure.detail += f" (checked against the {listed} its {source.origin} listed)"
                if offset and not restarted and _blames_the_prefix(failure):
                    # The kept bytes (from another source, or an earlier run) may be
                    # what is wrong: this source gets one try from byte 0 first.
                    restarted = True
                    staging.restart()
                    detail = (
                        f"{failure.detail} (resumed after {offset} bytes kept from an "
                        "earlier try; starting over from byte 0)"
                    )
                    attempts.append(Attempt(source.url, failure.reason, detail, failure.status))
                    log.info("%s: %s: %s", source.url, failure.reason.value, detail)
                    continue
                attempts.append(Attempt(source.url, failure.reason, failure.detail, failure.status))
                log.info("%s: %s: %s", source.url, failure.reason.value, failure.detail)
                if failure.reason in TLS_REASONS and self._other_addresses(
                    source, failure.url or source.url, staging, deadline_at, attempts, job.url
                ):
                    return True
                if failure.reason is Reason.IO_ERROR:
                    raise _Abort(
                        Reason.IO_ERROR, "not tried after the local I/O error above"
                    ) from None
                if race is not None and race.busy():
                    return False  # the next source is already being asked: no retry now
                if not should_retry(failure, tries, self.options.retries, last):
                    return False
                delay = retry_delay(
                    tries, self.options.backoff, failure.retry_after, self.options.max_retry_after
                )
                if deadline_at is not None:
                    delay = min(delay, max(0.0, deadline_at - time.monotonic()))
                log.info("%s: retrying in %.2f s", source.url, delay)
                _sleep(delay)
                tries += 1
            else:
                attempts.append(Attempt(source.url, None, f"{staging.size} bytes", status))
                return True

    def _other_addresses(
        self,
        source: Source,
        failing: str,
        staging: Staging,
        deadline_at: Optional[float],
        attempts: list[Attempt],
        home: str,
    ) -> bool:
        """After a TLS failure at ``failing``, try its host's other addresses; True when one served.

        Some CDNs serve a default certificate on some addresses (often IPv6):
        the host is not given up while another address answers properly.
        ``failing`` is where a redirect from the source led, or the source
        itself; its first address is taken as the one that failed (it is tried
        first). What is staged is kept for a resume, as for any other try.
        """
        for address in self.transfer.transport.addresses(failing)[1:]:
            shown = authority(*address)
            resume = _may_resume(staging, source.url)
            try:
                status = self.transfer.fetch(
                    source.url, staging, deadline_at, resume, address, home=home, address_at=failing
                )
            except SourceFailed as failure:
                detail = f"at address {shown}: {failure.detail}"
                attempts.append(Attempt(source.url, failure.reason, detail, failure.status))
                log.info("%s: %s: %s", source.url, failure.reason.value, detail)
                continue
            detail = f"{staging.size} bytes from address {shown}"
            attempts.append(Attempt(source.url, None, detail, status))
            return True
        return False

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
            raise FetchError(_summary(job, attempts), attempts) from exc
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


@dataclass
class _Ranked:
    """A job with its sources in the order tried, and the attempts made (filled in after)."""

    job: Job
    attempts: list[Attempt]


def _sleep(seconds: float) -> None:
    """Wait between tries (a seam for tests that count the waits)."""
    time.sleep(seconds)


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
        message = f"{_summary(job, attempts)}: the hashes given for it disagree with each other"
        raise FetchError(message, attempts) from None


def _io_error(job: Job, detail: str) -> FetchError:
    attempts = [Attempt(job.sources[0].url, Reason.IO_ERROR, detail)]
    return FetchError(_summary(job, attempts), attempts)


def _offline(job: Job, detail: str) -> FetchError:
    attempts = [Attempt(s.url, Reason.OFFLINE, detail) for s in job.sources]
    return FetchError(_summary(job, attempts), attempts)


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


def _may_resume(staging: Staging, url: str) -> bool:
    """Whether a try of ``url`` may continue after the bytes ``staging`` holds.

    A pinned hash makes any source's bytes fit; otherwise only the same URL
    with an unchanged validator may continue what it sent.
    """
    return staging.size > 0 and (
        is_pinned(staging.expected) or (staging.url == url and staging.validator is not None)
    )


def _blames_the_prefix(failure: SourceFailed) -> bool:
    """Whether a failed resume may be the kept prefix's fault rather than the source's."""
    return failure.status == 416 or failure.reason in (Reason.HASH_MISMATCH, Reason.SIZE_MISMATCH)


def _not_found(attempts: list[Attempt]) -> bool:
    return bool(attempts) and attempts[-1].reason is Reason.NOT_FOUND


def _summary(job: Job, attempts: list[Attempt]) -> str:
    sources = len(job.sources)
    return f"could not fetch {job.name}: {sources} source{'s' * (sources != 1)} failed"
