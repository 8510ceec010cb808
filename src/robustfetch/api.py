"""The public entry points: fetch(), fetch_many() and Fetcher (options -> plan -> engine)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .errors import Attempt, FetchError, Reason
from .options import Options, make_options
from .policy.digests import accepted, expected_hashes, is_pinned
from .policy.plan import Job, merge_sources, plan_sources
from .policy.secrets import LOG_FILTER, remember_url
from .policy.urls import check_url, filename_from_url
from .results import FetchResult, PathArg, Request
from .transport import Transport, TransportSettings, make_transport
from .transport.proxies import proxies_from_environment
from .transport.tls import make_context, resolve_trust

if TYPE_CHECKING:
    from .engine.request import Engine

__all__ = ["Fetcher", "fetch", "fetch_many"]

log = logging.getLogger("robustfetch")

RequestLike = Union[Request, Mapping[str, Any], str]
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
    :param workers: threads downloading at once.
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
        logging.getLogger("robustfetch").addFilter(LOG_FILTER)
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
        jobs: list[tuple[Job, Options]] = [item for item in planned if isinstance(item, tuple)]
        # Identical requests (one dest, one pinned hash) share one download.
        unique: dict[int, int] = {}
        runs: list[tuple[Job, Options]] = []
        places = _Places()
        first_of: dict[tuple[Optional[Path], str], int] = {}
        for index, (job, job_opts) in enumerate(jobs):
            # One place and one pinned hash: the same file.
            same = (places.key(job), repr(sorted(job.expected.items())))
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

        from concurrent.futures import ThreadPoolExecutor  # only fetch_many needs threads

        with ThreadPoolExecutor(max_workers=min(workers, max(len(runs), 1))) as pool:
            results = list(pool.map(run, runs))
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
        if any(getattr(opts, name) != getattr(self.options, name) for name in _TRANSPORT_OPTIONS):
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


def plan_job(
    url: str,
    sha256: Optional[Union[str, Sequence[str]]],
    fallbacks: Sequence[str],
    dest: Optional[PathArg],
    opts: Options,
) -> Job:
    """Check one request and turn it into a :class:`Job`; all errors are ``ValueError``."""
    check_url(url)
    if isinstance(fallbacks, (str, bytes)) or not isinstance(fallbacks, Iterable):
        raise ValueError(f"fallbacks must be a list of URLs, not {fallbacks!r}")
    fallbacks = [check_url(u) for u in fallbacks]
    expected = expected_hashes(sha256, opts.hashes, [url, *fallbacks], opts.integrity)
    name: Optional[str] = opts.filename
    if name is None:
        try:
            name = filename_from_url(url)
        except ValueError:
            name = None
    target = _destination(dest, name, url, opts)
    if opts.mirrors and name is None:
        filename_from_url(url)  # raises the explanation
    sources = plan_sources(
        url,
        fallbacks,
        opts.mirrors,
        name or "",
        opts.rule_set(),
        opts.hashed_mirrors,
        sorted(accepted(expected["sha256"])) if "sha256" in expected else None,
    )
    return Job(sources, expected, target, name or "download", url)


def plan_many(
    requests: Iterable[RequestLike], opts: Options
) -> list[Union[tuple[Job, Options], ValueError]]:
    """Each request checked and planned with its own options, or the ``ValueError`` it raised.

    No I/O. One ``dest`` written by two requests needs the same pinned hash in
    both (the file is then fetched once); a later request that breaks this is refused.
    """
    planned: list[Union[tuple[Job, Options], ValueError]] = []
    places = _Places()
    seen: dict[Optional[Path], list[Job]] = {}
    for item in requests:
        try:
            request = as_request(item)
            changes = {
                name: getattr(request, name)
                for name in ("filename", "size", "hashes")
                if getattr(request, name) is not None
            }
            job_opts = make_options(opts, **changes) if changes else opts
            job = plan_job(request.url, request.sha256, request.fallbacks, request.dest, job_opts)
            # read_metalink marks its requests: their hashes are the Metalink's.
            pinned_by = getattr(request, "pinned_by", None)
            if isinstance(pinned_by, str):
                job = replace(job, pinned_by=pinned_by)
            place = places.key(job)
            _check_dest_conflict(job, seen.get(place, ()))
        except ValueError as exc:
            planned.append(exc)
            continue
        seen.setdefault(place, []).append(job)
        planned.append((job, job_opts))
    return planned


def _destination(
    dest: Optional[PathArg], name: Optional[str], url: str, opts: Options
) -> Optional[Path]:
    if dest is None:
        if opts.cache_dir is None:
            raise ValueError("no dest and no cache: give dest, or enable the cache")
        return None
    try:
        path = Path(os.fspath(dest))
    except TypeError:
        raise ValueError(f"dest must be a path, not {dest!r}") from None
    if str(path) == "":
        raise ValueError("dest is an empty path")
    if path.is_dir():
        if name is None:
            filename_from_url(url)  # raises the explanation
        assert name is not None
        return path / name
    if not path.parent.is_dir():
        raise ValueError(f"dest {str(path)!r}: folder {str(path.parent)!r} does not exist")
    return path


_REQUEST_KEYS = tuple(f.name for f in fields(Request))


def as_request(item: RequestLike) -> Request:
    """``item`` (a :class:`Request`, a dict with its keys, or a URL) as a :class:`Request`."""
    if isinstance(item, str):
        return Request(item)
    if isinstance(item, Request):
        return item
    if isinstance(item, Mapping):
        unknown = set(item) - set(_REQUEST_KEYS)
        if unknown or "url" not in item:
            raise ValueError(
                f"bad request {dict(item)!r}: keys are {', '.join(_REQUEST_KEYS)} (url required)"
            )
        return Request(**item)
    raise ValueError(f"bad request {item!r}: give a Request, a dict or a URL")


def _unexpected(job: Job, exc: Exception) -> FetchError:
    """The :class:`FetchError` standing for ``exc``, raised below the engine boundary."""
    context = exc.__context__
    if isinstance(exc, OSError) and isinstance(context, FetchError):
        # A clean-up failed while the fetch was failing: why it failed matters more.
        log.warning("%s: clean-up failed: %s", job.name, exc)
        return context
    kind = "local I/O error" if isinstance(exc, OSError) else "unexpected error"
    attempt = Attempt(job.sources[0].url, Reason.IO_ERROR, f"{kind}: {type(exc).__name__}: {exc}")
    return FetchError(f"could not fetch {job.name}: {kind}", [attempt])


def _check_cache_folder(opts: Options) -> None:
    """A ``cache_dir`` that exists but is not a folder is bad input."""
    for folder in (opts.cache_dir, *opts.cache_dirs_readonly):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise ValueError(f"cache_dir {str(folder)!r} is not a folder")


def _check_workers(workers: object) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}")


class _Places:
    """Where each job's file lands, as one comparable key: the resolved ``dest`` or ``None``.

    Each folder is resolved once (not each request's path, nor each pair of
    requests): fetch_many's planning stays a few microseconds per file.
    """

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}

    def key(self, job: Job) -> Optional[Path]:
        dest = job.dest
        if dest is None:
            return None
        if os.path.islink(dest):  # a link to another dest is that dest
            return dest.resolve()
        folder = self._folders.get(dest.parent)
        if folder is None:
            folder = self._folders[dest.parent] = dest.parent.resolve()
        return folder / dest.name


def _same_pin(a: Job, b: Job) -> bool:
    """Whether two jobs at one place ask for one file: the same pinned hash."""
    return is_pinned(a.expected) and a.expected == b.expected


def _check_dest_conflict(job: Job, same_place: Sequence[Job]) -> None:
    """``same_place``: the earlier jobs whose file lands where ``job``'s does."""
    if job.dest is None:
        return
    for other in same_place:
        if not _same_pin(job, other):
            raise ValueError(
                f"two requests write the same dest {str(job.dest)!r} without the same pinned hash"
            )


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
