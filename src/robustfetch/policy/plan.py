"""Ordered, de-duplicated sources of one request: hashed mirrors, url, fallbacks, mirrors.

Hashed mirrors (folders laid out like the cache) come first when a sha256 is
pinned: they are addressed by content, so they cannot serve another file.
Each given URL is expanded by the rewrite rules (user rules, then the built-in
legacy-host rules) and a PyPI sdist URL with a wrong bucket letter gains the
corrected form; a source whose host a rule blocks stays in the plan, marked,
so that the failure report names it and the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union
from urllib.parse import quote, urlsplit, urlunsplit

from .digests import DigestValue
from .pypi import sdist_ref
from .rewrite import RuleSet
from .urls import default_port, normalise_host, strip_fragment

__all__ = [
    "Job",
    "Source",
    "hashed_mirror_url",
    "merge_sources",
    "mirror_host",
    "mirror_url",
    "plan_sources",
    "rank_mirrors",
    "source_key",
]


@dataclass(frozen=True)
class Job:
    """One request, checked and planned.

    :param sources: in the order they are tried.
    :param expected: algorithm -> hex digest, or a set of them (any-of); empty when
        nothing is pinned.
    :param dest: the final path, or ``None`` to keep the file in the cache.
    :param name: the file name, for staging files.
    :param url: the first URL as given: the credential headers of the ``headers``
        option go to its origin only.
    :param pinned_by: who gave :attr:`expected`, reported as ``verified_by``:
        ``"pin"`` (the caller) or ``"metalink"`` (a request read from one).
    """

    sources: list[Source]
    expected: Mapping[str, DigestValue]
    dest: Optional[Path]
    name: str
    url: str = ""
    pinned_by: str = "pin"


@dataclass(frozen=True)
class Source:
    """One place to try.

    :param url: the URL to request (no fragment).
    :param origin: ``"hashed_mirror"``, ``"url"``, ``"fallback"``, ``"mirror"`` or ``"pypi"``.
    :param blocked_by: the rule that forbids this host, if one does.
    :param expected: digests known for this source only (PyPI's listing).
    :param listed_by: who vouched for ``expected`` when not ``origin`` itself:
        ``"server"`` for a duplicate that a digest header vouched for.
    """

    url: str
    origin: str
    blocked_by: Optional[str] = None
    expected: Mapping[str, DigestValue] = field(default_factory=dict)
    listed_by: Optional[str] = None


def plan_sources(
    url: str,
    fallbacks: Sequence[str],
    mirrors: Sequence[str],
    filename: str,
    rules: Optional[RuleSet] = None,
    hashed_mirrors: Sequence[str] = (),
    sha256: Union[str, Sequence[str], None] = None,
) -> list[Source]:
    """The sources of one request in the order they are tried, duplicates removed.

    Hashed mirrors (only with ``sha256``), the URL, the fallbacks, then the
    mirrors; a mirror naming ``{sha256}`` is left out without ``sha256``.
    With several sha256 candidates (any-of), hashed and ``{sha256}`` mirrors
    are tried for each, in the order given.

    >>> sources = plan_sources("https://pypi.io/packages/f.tgz#sha256=00",
    ...     ["https://A.example:443/f.tgz"], ["https://m.example/pub"], "f.tgz", RuleSet())
    >>> for source in sources:
    ...     print(source.origin, source.url)
    url https://files.pythonhosted.org/packages/f.tgz
    url https://pypi.io/packages/f.tgz
    fallback https://A.example:443/f.tgz
    mirror https://m.example/pub/f.tgz
    """
    rules = rules if rules is not None else RuleSet(builtin=False)
    given: list[tuple[str, str]] = []
    digests = [sha256] if isinstance(sha256, str) else list(sha256 or ())
    given += [
        (hashed_mirror_url(base, digest), "hashed_mirror")
        for base in hashed_mirrors
        for digest in digests
    ]
    given += [(url, "url")] + [(u, "fallback") for u in fallbacks]
    for base in mirrors:
        if "{sha256}" not in base:
            given.append((mirror_url(base, filename), "mirror"))
        else:
            given += [(mirror_url(base, filename, digest), "mirror") for digest in digests]
    candidates = [
        Source(strip_fragment(candidate), origin, _describe(rules, candidate))
        for raw, origin in given
        for candidate in _with_bucket_fix(rules.candidates(raw))
    ]
    return list(_unique(candidates))


def _with_bucket_fix(urls: list[str]) -> list[str]:
    result = []
    for url in urls:
        ref = sdist_ref(url)
        fixed = ref.bucket_fixed_url() if ref is not None else None
        if fixed is not None:
            result.append(fixed)
        result.append(url)
    return result


def _describe(rules: RuleSet, url: str) -> Optional[str]:
    rule = rules.blocked_by(url)
    return str(rule) if rule is not None else None


def mirror_url(base: str, filename: str, sha256: Optional[str] = None) -> str:
    """``base`` with ``{filename}`` and ``{sha256}`` replaced, or with ``/<filename>`` appended.

    >>> mirror_url("https://m.example/dist/{filename}?x=1", "a b.tgz")
    'https://m.example/dist/a%20b.tgz?x=1'
    >>> mirror_url("https://m.example/by-hash/{sha256}", "f.tgz", "ab" * 32)[-8:]
    'abababab'
    """
    quoted = quote(filename)
    if "{filename}" in base or "{sha256}" in base:
        if "{sha256}" in base:
            if sha256 is None:
                raise ValueError(f"mirror {base!r} names {{sha256}} but no sha256 is pinned")
            base = base.replace("{sha256}", sha256)
        return strip_fragment(base.replace("{filename}", quoted))
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + "/" + quoted
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def hashed_mirror_url(base: str, sha256: str) -> str:
    """Where a folder laid out like the cache keeps ``sha256``: ``<base>/sha256/<2 hex>/<hex>``.

    >>> hashed_mirror_url("https://m.example/cache/?x=1", "ab" + "0" * 62)[:46]
    'https://m.example/cache/sha256/ab/ab0000000000'
    """
    parts = urlsplit(base)
    path = f"{parts.path.rstrip('/')}/sha256/{sha256[:2]}/{sha256}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def merge_sources(first: Sequence[Source], second: Sequence[Source]) -> list[Source]:
    """``first``, then those of ``second`` it lacks (two requests for one file)."""
    return list(_unique([*first, *second]))


def source_key(url: str) -> str:
    """A comparison key: scheme and host case, default ports and fragments ignored."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return urlunsplit((scheme, "", parts.path, "", ""))
    host = normalise_host(parts.hostname or "")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, default_port(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _unique(sources: Iterable[Source]) -> Iterable[Source]:
    seen: set[str] = set()
    for source in sources:
        key = source_key(source.url)
        if key not in seen:
            seen.add(key)
            yield source


#: Seconds of connect time one remembered failure weighs.
FAILURE_PENALTY = 5.0
_UNREACHABLE = 60.0


def rank_mirrors(
    sources: Sequence[Source],
    connect_times: Mapping[str, Optional[float]],
    failures: Mapping[str, int],
) -> list[Source]:
    """``sources`` with the mirrors reordered fastest first; others keep their place.

    A mirror's score is its measured connect time (``None``: unreachable) plus
    :data:`FAILURE_PENALTY` per failure remembered since its last success;
    ties keep the given order.

    >>> a, b = Source("https://a.example/f", "mirror"), Source("https://b.example/f", "mirror")
    >>> [s.url for s in rank_mirrors([a, b], {"a.example:443": None, "b.example:443": 0.01}, {})]
    ['https://b.example/f', 'https://a.example/f']
    """

    def score(source: Source) -> float:
        host = mirror_host(source.url)
        measured = connect_times.get(host, 0.0)
        seconds = _UNREACHABLE if measured is None else measured
        return seconds + FAILURE_PENALTY * failures.get(host, 0)

    mirrors = sorted((s for s in sources if s.origin == "mirror"), key=score)
    ranked = iter(mirrors)
    return [next(ranked) if s.origin == "mirror" else s for s in sources]


def mirror_host(url: str) -> str:
    """The key mirror health is kept under: ``host:port`` (``file`` for local mirrors).

    >>> mirror_host("https://M.example/pub/f.tgz")
    'm.example:443'
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "file"
    return f"{normalise_host(parts.hostname or '')}:{parts.port or default_port(parts.scheme)}"
