"""``mirror_order="fastest"``: mirrors ranked by connect time and past failures, outcomes kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Optional

from ..errors import Attempt
from ..options import Options
from ..policy.access import decide
from ..policy.digests import is_pinned
from ..policy.plan import Job, mirror_host, rank_mirrors
from ..store.cache import Cache
from ..store.health import HealthStore
from ..transport import Transport

__all__ = ["Ranked", "mirror_health"]


@dataclass
class Ranked:
    """A job with its sources in the order tried, and the attempts made (filled in after)."""

    job: Job
    attempts: list[Attempt]


@contextmanager
def mirror_health(
    options: Options,
    transport: Transport,
    cache: Optional[Cache],
    job: Job,
    deadline_at: Optional[float],
) -> Iterator[Ranked]:
    """With ``mirror_order="fastest"``: rank mirrors now, remember the outcome after."""
    if options.mirror_order != "fastest":
        yield Ranked(job, [])
        return
    health = HealthStore(cache.root) if cache is not None else None
    connect_times = _measure_mirrors(options, transport, job, deadline_at)
    failures = {host: h.failures for host, h in (health.load() if health else {}).items()}
    ranked = Ranked(replace(job, sources=rank_mirrors(job.sources, connect_times, failures)), [])
    try:
        yield ranked
    finally:
        if health is not None:
            health.record(_mirror_outcomes(ranked.job, ranked.attempts), connect_times)


def _measure_mirrors(
    options: Options, transport: Transport, job: Job, deadline_at: Optional[float]
) -> dict[str, Optional[float]]:
    """Connect times of the mirrors' hosts, measured in parallel.

    A probe is a connection like any other: a mirror the access gate
    refuses (a blocked host, plain http that would not be used) is not probed.
    """
    rules, pinned = options.rule_set(), is_pinned(job.expected)
    allow_http = options.allow_http
    hosts = {
        mirror_host(s.url): s.url
        for s in job.sources
        if s.origin == "mirror"
        and decide(s.url, rules, pinned=pinned, allow_http=allow_http, hop="probe").allowed
    }
    if not hosts:
        return {}
    from concurrent.futures import ThreadPoolExecutor  # only mirror_order="fastest"

    timeout = min(options.connect_timeout, 3.0)
    if deadline_at is not None:
        timeout = max(0.001, min(timeout, deadline_at - time.monotonic()))
    measure = transport.connect_time
    with ThreadPoolExecutor(max_workers=min(len(hosts), 8)) as pool:
        return dict(zip(hosts, pool.map(lambda url: measure(url, timeout), hosts.values())))


def _mirror_outcomes(job: Job, attempts: list[Attempt]) -> dict[str, bool]:
    """Mirror host -> whether its last try this run succeeded."""
    mirrors = {s.url for s in job.sources if s.origin == "mirror"}
    return {mirror_host(a.url): a.reason is None for a in attempts if a.url in mirrors}
