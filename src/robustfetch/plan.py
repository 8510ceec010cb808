"""Ordered, de-duplicated candidate sources for one request: url, fallbacks, mirrors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from .urls import default_port, normalise_host, strip_fragment

__all__ = ["Source", "mirror_url", "plan_sources", "source_key"]


@dataclass(frozen=True)
class Source:
    """One place to try.

    :param url: the URL to request (no fragment).
    :param origin: ``"url"``, ``"fallback"`` or ``"mirror"``.
    """

    url: str
    origin: str


def plan_sources(
    url: str, fallbacks: Sequence[str], mirrors: Sequence[str], filename: str
) -> list[Source]:
    """The sources of one request in the order they are tried, duplicates removed.

    >>> [s.url for s in plan_sources("https://a.example/f.tgz#sha256=00",
    ...     ["https://A.example:443/f.tgz"], ["https://m.example/pub"], "f.tgz")]
    ['https://a.example/f.tgz', 'https://m.example/pub/f.tgz']
    """
    candidates: list[Source] = [Source(strip_fragment(url), "url")]
    candidates += [Source(strip_fragment(u), "fallback") for u in fallbacks]
    candidates += [Source(mirror_url(base, filename), "mirror") for base in mirrors]
    return list(_unique(candidates))


def mirror_url(base: str, filename: str) -> str:
    """``base`` with ``{filename}`` replaced, or with ``/<filename>`` appended.

    >>> mirror_url("https://m.example/dist/{filename}?x=1", "a b.tgz")
    'https://m.example/dist/a%20b.tgz?x=1'
    """
    quoted = quote(filename)
    if "{filename}" in base:
        return strip_fragment(base.replace("{filename}", quoted))
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + "/" + quoted
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def source_key(url: str) -> str:
    """A comparison key: scheme and host case, default ports and fragments ignored."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
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
