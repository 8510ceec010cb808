"""Security policy: plain http, redirects, and which headers may follow a redirect."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

from ..errors import Reason, SourceFailed
from .access import check_hop
from .rewrite import RuleSet
from .urls import SCHEMES, check_url, default_port, strip_fragment

__all__ = ["check_plain_http", "follow_redirect", "headers_for_redirect", "is_redirect"]

_NO_RULES = RuleSet(builtin=False)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Credentials meant for one host never travel to another.
_HOST_BOUND = frozenset({"authorization", "cookie", "proxy-authorization"})


def check_plain_http(url: str, pinned: bool, allow_http: bool) -> None:
    """Refuse a plain-http or ftp source unless a hash is pinned or ``allow_http`` is set.

    >>> check_plain_http("http://h.example/f", pinned=True, allow_http=False)
    >>> check_plain_http("http://h.example/f", pinned=False, allow_http=False)
    Traceback (most recent call last):
    ...
    robustfetch.errors.SourceFailed: insecure_refused: plain http without a pinned hash \
could be tampered with: pin a sha256 or pass allow_http=True
    """
    # The plain-http rule of the access gate, without allow/block rules.
    check_hop(url, _NO_RULES, pinned=pinned, allow_http=allow_http)


def is_redirect(status: int, headers: Mapping[str, str]) -> bool:
    return status in _REDIRECTS and bool(headers.get("Location"))


def follow_redirect(
    current: str, location: str, hops: int, max_redirects: int, pinned: bool, allow_http: bool
) -> str:
    """The URL a redirect leads to, or :class:`SourceFailed` if it must not be followed.

    A raw space in ``location`` (invalid, but common) is percent-encoded, as
    curl, wget, requests and browsers do.

    >>> follow_redirect("https://a.example/x/f", "../g", 0, 10, False, False)
    'https://a.example/g'
    >>> follow_redirect("https://a.example/x/f", "/my file.tgz", 0, 10, False, False)
    'https://a.example/my%20file.tgz'
    """
    if hops >= max_redirects:
        raise SourceFailed(
            Reason.TOO_MANY_REDIRECTS,
            f"more than {max_redirects} redirects (max_redirects); last one to {location}",
        )
    try:
        joined = urljoin(current, location.strip().replace(" ", "%20"))
        target = check_url(strip_fragment(joined))
    except ValueError as exc:
        raise SourceFailed(
            Reason.REDIRECT_REFUSED, f"redirect to an unusable URL {location!r}: {exc}"
        ) from None
    scheme = urlsplit(target).scheme
    if scheme not in SCHEMES:
        raise SourceFailed(
            Reason.REDIRECT_REFUSED, f"redirect to a {scheme}: URL refused: {location!r}"
        )
    if urlsplit(current).scheme == "https" and scheme == "http" and not pinned:
        raise SourceFailed(
            Reason.REDIRECT_REFUSED,
            f"redirect from https to plain http ({target}) refused: pin a sha256 to allow it",
        )
    check_plain_http(target, pinned, allow_http)
    return target


def headers_for_redirect(headers: Mapping[str, str], current: str, target: str) -> dict[str, str]:
    """``headers`` to send to ``target``: credentials are dropped when the origin changes."""
    if "\\" not in urlsplit(target).netloc and _origin(current) == _origin(target):
        # (A backslash makes parsers disagree on the host: never the same origin.)
        return dict(headers)
    return {k: v for k, v in headers.items() if k.lower() not in _HOST_BOUND}


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or default_port(parts.scheme)
