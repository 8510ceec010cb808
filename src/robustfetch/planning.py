"""From requests to jobs: each request checked and planned, before any download."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

from .options import Options, make_options
from .policy.digests import expected_hashes, is_pinned, sha256_order
from .policy.plan import Job, plan_sources
from .policy.secrets import redact, remember_url
from .policy.urls import check_url, filename_from_url
from .results import PathArg, Request

__all__ = ["Places", "Planned", "RequestLike", "as_request", "plan_job", "plan_many"]

RequestLike = Union[Request, Mapping[str, Any], str]


def plan_job(
    url: str,
    sha256: Optional[Union[str, Sequence[str]]],
    fallbacks: Sequence[str],
    dest: Optional[PathArg],
    opts: Options,
) -> Job:
    """Check one request and turn it into a :class:`Job`; all errors are ``ValueError``."""
    listed = not isinstance(fallbacks, (str, bytes)) and isinstance(fallbacks, Iterable)
    fallbacks = list(fallbacks) if listed else fallbacks
    for given in (url, *(fallbacks if listed else [fallbacks])):
        if isinstance(given, str):
            remember_url(given)  # a password in a source URL is never printed
    try:
        return _plan_job(url, sha256, fallbacks, dest, opts)
    except ValueError as exc:
        raise ValueError(redact(str(exc))) from None


def _plan_job(
    url: str,
    sha256: Optional[Union[str, Sequence[str]]],
    fallbacks: Sequence[str],
    dest: Optional[PathArg],
    opts: Options,
) -> Job:
    if isinstance(fallbacks, (str, bytes)) or not isinstance(fallbacks, Iterable):
        raise ValueError(f"fallbacks must be a list of URLs, not {fallbacks!r}")
    check_url(url)
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
        sha256_order(sha256, expected["sha256"]) if "sha256" in expected else None,
    )
    return Job(sources, expected, target, name or "download", url)


class Planned(NamedTuple):
    """One request of a batch, planned: its job, its options, and where its file lands."""

    job: Job
    options: Options
    place: Optional[Path]  # Places.key(job)


def plan_many(requests: Iterable[RequestLike], opts: Options) -> list[Union[Planned, ValueError]]:
    """Each request checked and planned with its own options, or the ``ValueError`` it raised.

    No I/O. One ``dest`` written by two requests needs the same pinned hash in
    both (the file is then fetched once); a later request that breaks this is refused.
    """
    planned: list[Union[Planned, ValueError]] = []
    places = Places()
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
        planned.append(Planned(job, job_opts, place))
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


class Places:
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
