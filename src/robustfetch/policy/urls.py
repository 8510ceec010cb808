"""URL checks, host normalisation (IDNA) and safe file names from URL paths.

>>> filename_from_url("https://h.example/a/b/pkg%2D1.0.tar.gz?x=1#sha256=00")
'pkg-1.0.tar.gz'
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from .secrets import MASK, redact

__all__ = [
    "SCHEMES",
    "SOURCE_SCHEMES",
    "authority",
    "check_url",
    "default_port",
    "filename_from_url",
    "is_ip_literal",
    "local_path",
    "normalise_host",
    "split_host_port",
    "strip_fragment",
]

#: Schemes a redirect may lead to.
SCHEMES = ("https", "http")
#: Schemes a source may have (``check_url`` also accepts ``file://``, for local mirrors).
SOURCE_SCHEMES = ("https", "http", "ftp")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_NAME_BYTES = 255


def check_url(url: object) -> str:
    """Return ``url`` if it is an absolute http(s) or ftp URL with a host, or a ``file://`` URL.

    Anything else is a ``ValueError`` naming the URL.

    >>> check_url("gopher://example.org/x")
    Traceback (most recent call last):
    ...
    ValueError: unsupported URL scheme 'gopher' in 'gopher://example.org/x': use https:// (or http://)
    """
    if not isinstance(url, str):
        raise ValueError(f"URL must be a string, not {type(url).__name__}: {url!r}")
    if not url.strip():
        raise ValueError("empty URL")
    if url != url.strip() or _CONTROL.search(url) or " " in url:
        raise ValueError(f"URL contains whitespace or control characters: {_shown(url)!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        shown = _shown(url)
        detail = "" if shown != url else f": {exc}"  # the parser may quote the user info
        raise ValueError(f"malformed URL {shown!r}{detail}") from None
    if "\\" in parts.netloc:
        # Parsers disagree on where such a host ends (urllib3 stops at the
        # backslash, urlsplit does not): refuse rather than guess.
        raise ValueError(f"URL has a backslash in its host part: {_shown(url)!r}")
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"file URL must be file:///absolute/path, not {_shown(url)!r}")
        return url
    if scheme not in SOURCE_SCHEMES:
        named = scheme or "(none)"
        raise ValueError(
            f"unsupported URL scheme {named!r} in {_shown(url)!r}: use https:// (or http://)"
        )
    if not parts.hostname:
        raise ValueError(f"URL has no host: {_shown(url)!r}")
    if scheme == "ftp" and _CONTROL.search(unquote(parts.netloc + parts.path)):
        # FTP commands are lines: a %0D%0A in the path or login would add a command.
        raise ValueError(f"ftp URL has an encoded control character: {_shown(url)!r}")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise ValueError(f"URL has an invalid port: {_shown(url)!r}") from None
    normalise_host(parts.hostname)
    return url


def _shown(url: str) -> str:
    """``url`` for a message: its password masked (``ftp://user:***@host/``).

    >>> _shown("https://alice:pa#ss@h.example:99/f")
    'https://alice:***@h.example:99/f'

    ``https://a.example\\@b.example/`` is shown as written: parsers disagree on
    whether a user name stands before such an ``@``, and no password does.
    """
    head = url.partition("@")[0].partition("://")[2]
    if "\\" in head and ":" not in head:
        return url
    # A refused URL is often one whose password holds a "#" or "/", which ends the
    # authority early: all before the last "@" is what its writer may have meant.
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        meant, _, tail = rest.rpartition("@")
        user, colon, _password = meant.partition(":")
        if colon and not any(c in user for c in "/?#"):
            return f"{scheme}://{user}:{MASK}@{tail}"
        return f"{scheme}://{MASK}@{tail}"
    return redact(url)


def strip_fragment(url: str) -> str:
    """Return ``url`` without its ``#fragment`` (never sent to a server)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def default_port(scheme: str) -> int:
    return {"https": 443, "ftp": 21}.get(scheme, 80)


@functools.lru_cache(maxsize=1024)  # pure, and asked several times per request
def normalise_host(host: str) -> str:
    """Return the ASCII (punycode) lower-case form of ``host``; IP literals unchanged.

    >>> normalise_host("Bücher.Example")
    'xn--bcher-kva.example'
    """
    text = host.strip().lower()
    if text.strip("[].") == "":
        raise ValueError(f"empty host name in {host!r}")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if not _is_ipv6(text):
            raise ValueError(f"not an IPv6 address in brackets: {host!r}")
        return text
    if _is_ipv6(text):
        return text
    if not text.isascii():
        text = _idna_encode(text, host)
    text = text.rstrip(".")  # after IDNA, which maps U+3002 and friends to "."
    if not _HOST.fullmatch(text):
        raise ValueError(f"invalid host name {host!r}")
    return text


_HOST = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def _is_ipv6(text: str) -> bool:
    if ":" not in text:  # every IPv6 literal has one; skip the parse for host names
        return False
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _idna_encode(text: str, host: str) -> str:
    try:
        import idna
    except ImportError:  # pragma: no cover - exercised by the stdlib-only environment
        try:
            return text.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise ValueError(f"invalid international host name {host!r}: {exc}") from None
    try:
        return idna.encode(text.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"invalid international host name {host!r}: {exc}") from None


def split_host_port(text: str, port: Optional[int] = None) -> tuple[str, Optional[int]]:
    """Split ``"host:port"``, ``"[v6]:port"`` or ``"host"`` into a normalised host and a port.

    >>> split_host_port("[::1]:8443")
    ('::1', 8443)
    """
    text = text.strip()
    host, sep, tail = text.rpartition(":")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unbalanced brackets in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"cannot read host and port from {text!r}")
        tail, sep = rest[1:], rest[:1]
    elif not sep or ":" in host:
        host, tail = text, ""
    if tail:
        if not (tail.isascii() and tail.isdigit()) or not 0 < int(tail) < 65536:
            raise ValueError(f"invalid port {tail!r} in {text!r}")
        port = int(tail)
    return normalise_host(host), port


def filename_from_url(url: str) -> str:
    """The last path segment of ``url``, percent-decoded and made safe as a file name.

    Directories, ``..``, NUL and control characters never survive; a URL whose
    path names no file is a ``ValueError``.
    """
    path = unquote(urlsplit(url).path, errors="replace")
    name = re.split(r"[/\\]", path)[-1]
    # Surrogates (undecodable bytes) have no UTF-8 form: replace them.
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = _CONTROL.sub("", name).strip()
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_NAME_BYTES:  # keep the end: it holds the extension
        name = encoded[-_MAX_NAME_BYTES:].decode("utf-8", "ignore").strip()
    if name in ("", ".", ".."):
        raise ValueError(f"cannot take a file name from the path of {url!r}: give a file as dest")
    return name


def authority(host: str, port: int) -> str:
    """``host:port``, with IPv6 addresses in brackets.

    >>> authority("::1", 443)
    '[::1]:443'
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IP address (no SNI is sent to those)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def local_path(url: str) -> str:
    """The file system path of a ``file://`` URL.

    >>> local_path("file:///srv/mirror/a%20b.tgz")
    '/srv/mirror/a b.tgz'
    """
    from urllib.request import url2pathname

    return url2pathname(urlsplit(url).path)
