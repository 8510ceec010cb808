"""The public entry points: fetch(), fetch_many() and Fetcher (options -> plan -> engine)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from .errors import Attempt, FetchError, Reason
from .options import Options, make_options
from .planning import RequestLike
from .planning import as_request as as_request  # the planning stays importable from here
from .planning import plan_job as plan_job
from .planning import plan_many as plan_many
from .policy.digests import is_pinned
from .policy.plan import Job, merge_sources
from .policy.secrets import LOG_FILTER, redact_error, remember_url
from .results import FetchResult, PathArg
from .transport import Transport, TransportSettings, make_transport
from .transport.proxies import proxies_from_environment
from .transport.tls import make_context, resolve_trust

if TYPE_CHECKING:
    from .engine.request import Engine

__all__ = ["Fetcher", "fetch", "fetch_many"]


# Options that shape connections: changing one per call needs another transport.
_TRANSPORT_OPTIONS = ("ca_bundle", "trust", "connect_to", "proxies", "pool_size", "transport")


def fetch(
    url: str,
    sha256: Optional[Union[str, Sequence[str]]] = None,
    fallbacks: Sequence[str] = (),
    *,
    dest: Optional[PathArg] = None,
    **options: Any,
) -> FetchResult:
    """Download ``url`` (or a fallback, or a mirror) and return the verified file.

    :param url: the first source to try.
    :param sha256: the expected digest: hex, ``"sha256:<hex>"`` or SRI ``"sha256-<base64>"``,
        or a list of these, any of which may match.
    :param fallbacks: more URLs of the same bytes, tried in order.
    :param dest: a file path or an existing folder; ``None`` keeps it in the cache.
    :param options: see the options table of the documentation.
    :raises FetchError: every source failed; ``str()`` says why for each.
    :raises ValueError: bad input, before any network traffic.

    >>> fetch("gopher://example.org/f.tgz")
    Traceback (most recent call last):
    ...
    ValueError: unsupported URL scheme 'gopher' in 'gopher://example.org/f.tgz': use https:// (or http://)
    """
    with Fetcher(**options) as fetcher:
        return fetcher.fetch(url, sha256, fallbacks, dest=dest)


def fetch_many(
    requests: Iterable[RequestLike], *, workers: int = 8, **options: Any
) -> list[Union[FetchResult, FetchError]]:
    """Fetch many files in parallel over shared connections; results in input order.

    :param requests: :class:`Request` objects, dicts with the same keys, or URLs.
    :param workers: the most threads downloading at once: two per core to start
        with, more (up to ``workers``) while downloads wait on the network.
    :returns: a :class:`FetchResult` or the :class:`FetchError` for each request.
    :raises ValueError: a bad request, before any download; two requests for one
        ``dest`` must pin the same hash (the file is then fetched once).
    """
    _check_workers(workers)
    with Fetcher(pool_size=workers, **options) as fetcher:
        return fetcher.fetch_many(requests, workers=workers)


class Fetcher:
    """Options checked once and one connection pool, reused by every fetch.

    :param options: see the options table of the documentation.
    """

    def __init__(self, **options: Any) -> None:
        # Log lines pass through the same masking as messages (idempotent).
        _logger().addFilter(LOG_FILTER)
        self.options = make_options(**options)
        self._settings = _transport_settings(self.options)
        self._transport: Optional[Transport] = None
        self._default_engine: Optional[Engine] = None
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        with self._lock:
            transport, self._transport = self._transport, None
            self._default_engine = None
        if transport is not None:
            transport.close()

    def fetch(
        self,
        url: str,
        sha256: Optional[Union[str, Sequence[str]]] = None,
        fallbacks: Sequence[str] = (),
        *,
        dest: Optional[PathArg] = None,
        **options: Any,
    ) -> FetchResult:
        """Like :func:`robustfetch.fetch`, with this fetcher's options and connections."""
        opts = make_options(self.options, **options) if options else self.options
        _check_cache_folder(opts)
        job = plan_job(url, sha256, fallbacks, dest, opts)
        return self._run(job, opts)

    def fetch_many(
        self, requests: Iterable[RequestLike], *, workers: int = 8, **options: Any
    ) -> list[Union[FetchResult, FetchError]]:
        """Like :func:`robustfetch.fetch_many`; every request is checked before any download."""
        _check_workers(workers)
        opts = make_options(self.options, **options) if options else self.options
        _check_cache_folder(opts)
        planned = plan_many(requests, opts)
        for index, item in enumerate(planned):
            if isinstance(item, ValueError):
                raise ValueError(f"request {index}: {item}")
        jobs = [item for item in planned if not isinstance(item, ValueError)]
        # Identical requests (one dest, one pinned hash) share one download.
        unique: dict[int, int] = {}
        runs: list[tuple[Job, Options]] = []
        first_of: dict[tuple[Optional[Path], str], int] = {}
        for index, (job, job_opts, place) in enumerate(jobs):
            # One place and one pinned hash: the same file.
            same = (place, repr(sorted(job.expected.items())))
            twin = first_of.get(same) if is_pinned(job.expected) else None
            if twin is None:
                unique[index] = len(runs)
                first_of.setdefault(same, len(runs))
                runs.append((job, job_opts))
            else:
                unique[index] = twin
                first, first_opts = runs[twin]
                runs[twin] = (
                    replace(first, sources=merge_sources(first.sources, job.sources)),
                    first_opts,
                )

        def run(item: tuple[Job, Options]) -> Union[FetchResult, FetchError]:
            try:
                return self._run(*item)
            except FetchError as error:
                return error

        results = _run_all(run, runs, min(workers, max(len(runs), 1)))
        return [results[unique[index]] for index in range(len(jobs))]

    def _run(self, job: Job, opts: Options) -> FetchResult:
        """The engine boundary: whatever goes wrong past planning is a :class:`FetchError`."""
        try:
            return self._run_engine(job, opts)
        except FetchError:
            raise
        except Exception as exc:
            error = _unexpected(job, exc)
            if error is exc.__context__:
                raise error from None
            raise error from exc

    def _run_engine(self, job: Job, opts: Options) -> FetchResult:
        if opts is not self.options and any(
            getattr(opts, name) != getattr(self.options, name) for name in _TRANSPORT_OPTIONS
        ):
            settings = _transport_settings(opts)
            transport = make_transport(opts.transport, settings)
            try:
                return self._engine(opts, transport).run(job)
            finally:
                transport.close()
        if opts is self.options:
            return self._shared_engine().run(job)
        return self._engine(opts, self._shared_transport()).run(job)

    def _engine(self, opts: Options, transport: Transport) -> Engine:
        # The engine (and what it needs) loads on the first fetch, not at import.
        from .engine.request import Engine
        from .store.cache import Cache

        cache = None
        if opts.cache_dir is not None:
            cache = Cache(opts.cache_dir, opts.cache_dirs_readonly)
        trust = resolve_trust(opts.ca_bundle, opts.trust).describe()
        return Engine(opts, transport, cache, trust)

    def _shared_engine(self) -> Engine:
        """One engine for this fetcher's own options, built on the first fetch."""
        with self._lock:
            engine = self._default_engine
        if engine is None:
            engine = self._engine(self.options, self._shared_transport())
            with self._lock:
                self._default_engine = engine
        return engine

    def _shared_transport(self) -> Transport:
        with self._lock:
            if self._transport is None:
                self._transport = make_transport(self.options.transport, self._settings)
            return self._transport


_T = TypeVar("_T")
_R = TypeVar("_R")


#: A file whose wall time exceeded its thread's CPU time by this much waited on the
#: network (or the disk): another thread can use such waits, so one more is started.
WAITED = 0.02


def _run_all(run: Callable[[_T], _R], items: Sequence[_T], threads: int) -> list[_R]:
    """``run`` of every item, in order, on up to ``threads`` threads, the caller's among them.

    Each thread takes the next item when it is done with one: no future per item,
    and the caller is not woken per result (for hundreds of small files those
    wake-ups cost GIL time next to the work itself). It starts with two threads
    per core: on a fast network the work is CPU-bound and more threads only
    contend for the GIL (on 2 cores and loopback, 8 took 10-20% longer than 4).
    Every item that waited :data:`WAITED` seconds more than it computed adds a
    thread, up to ``threads``: waits on a slow network are what threads overlap.
    An exception ``run`` lets out stops every thread from taking more items and
    is raised once all have stopped.
    """
    results: list[Optional[_R]] = [None] * len(items)
    failures: list[BaseException] = []
    taken = iter(range(len(items)))
    lock = threading.Lock()
    helpers: list[threading.Thread] = []

    def start_helper() -> None:  # under the lock
        helper = threading.Thread(target=work, name=f"robustfetch-{len(helpers) + 1}")
        helpers.append(helper)
        helper.start()

    def work() -> None:
        try:
            while not failures:
                with lock:
                    index = next(taken, None)
                if index is None:
                    return
                began, computed = time.monotonic(), time.thread_time()
                results[index] = run(items[index])
                waited = (time.monotonic() - began) - (time.thread_time() - computed)
                if waited > WAITED and len(helpers) + 1 < threads:
                    with lock:
                        if len(helpers) + 1 < threads:
                            start_helper()
        except BaseException as exc:  # re-raised by the caller's thread below
            failures.append(exc)

    with lock:
        for _ in range(min(threads, _busy_threads()) - 1):
            start_helper()
    try:
        work()
    finally:
        joined = 0
        while joined < len(helpers):  # helpers may start helpers until the items run out
            helpers[joined].join()
            joined += 1
    if failures:
        raise failures[0]
    return results  # type: ignore[return-value]  # every slot was filled


def _busy_threads() -> int:
    """Threads that keep this machine's cores busy with CPU-bound downloads: two per core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(2, 2 * cores)


def _unexpected(job: Job, exc: Exception) -> FetchError:
    """The :class:`FetchError` standing for ``exc``, raised below the engine boundary."""
    context = exc.__context__
    if isinstance(exc, OSError) and isinstance(context, FetchError):
        # A clean-up failed while the fetch was failing: why it failed matters more.
        _logger().warning("%s: clean-up failed: %s", job.name, exc)
        return redact_error(context)
    kind = "local I/O error" if isinstance(exc, OSError) else "unexpected error"
    attempt = Attempt(job.sources[0].url, Reason.IO_ERROR, f"{kind}: {type(exc).__name__}: {exc}")
    # Made past the engine's own masking: the source URL may carry a password.
    return redact_error(FetchError(f"could not fetch {job.name}: {kind}", [attempt]))


def _check_cache_folder(opts: Options) -> None:
    """A ``cache_dir`` that exists but is not a folder is bad input."""
    for folder in (opts.cache_dir, *opts.cache_dirs_readonly):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise ValueError(f"cache_dir {str(folder)!r} is not a folder")


def _check_workers(workers: object) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}")


def _transport_settings(opts: Options) -> TransportSettings:
    trust = resolve_trust(opts.ca_bundle, opts.trust)
    proxies = dict(opts.proxies) if opts.proxies is not None else proxies_from_environment()
    for key, proxy in proxies.items():
        if key != "no":
            remember_url(proxy)  # HTTPS_PROXY=http://user:password@...: never printed
    return TransportSettings(
        context=make_context(trust),
        proxies=proxies,
        connect_to=opts.connect_to,
        pool_size=opts.pool_size,
    )


def _logger() -> Any:
    """The ``robustfetch`` logger; :mod:`logging` loads on the first fetch, not at import."""
    import logging

    return logging.getLogger("robustfetch")
