"""The sources of one request in order: tries, retries, other addresses, hedges, later sources."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import Attempt, FetchError, Reason, SourceFailed
from ..options import Options
from ..policy.backoff import retry_delay, should_retry
from ..policy.digests import is_pinned
from ..policy.plan import Job, Source, source_key
from ..policy.pypi import sdist_ref
from ..policy.urls import authority
from ..policy.witness import combine
from ..sources.later import LaterSources
from ..store.staging import Staging
from .transfer import Transfer

if TYPE_CHECKING:
    from .hedge import Race

__all__ = ["TLS_REASONS", "SourceWalk", "summary"]

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


class SourceWalk:
    """Tries the sources of jobs in order with one transfer and one set of options."""

    def __init__(self, options: Options, transfer: Transfer) -> None:
        self.options = options
        self.transfer = transfer

    def run(
        self, job: Job, staging: Staging, deadline_at: Optional[float]
    ) -> tuple[Source, list[Attempt]]:
        """The source whose bytes ``staging`` now holds, verified, and the attempts made.

        :raises FetchError: when no source served (every attempt in it).
        """
        attempts: list[Attempt] = []
        sources = list(job.sources)
        later = LaterSources(self.transfer, self.options, job.name, job.expected, deadline_at)
        race = self._race(job, staging, sources, deadline_at, later)
        try:
            if self.options.split > 1:
                served = self._split(job, staging, sources, deadline_at, attempts)
                if served is not None:
                    return served, attempts
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
                    return source, attempts
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
        raise FetchError(summary(job, attempts), attempts)

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
        for address in self.transfer.transport.addresses(failing, deadline_at)[1:]:
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


def _sleep(seconds: float) -> None:
    """Wait between tries (a seam for tests that count the waits)."""
    time.sleep(seconds)


class _Abort(Exception):
    """Stop trying sources: the rest are recorded with this reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


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


def summary(job: Job, attempts: list[Attempt]) -> str:
    """The message of a :class:`FetchError` for ``job``."""
    sources = len(job.sources)
    return f"could not fetch {job.name}: {sources} source{'s' * (sources != 1)} failed"
