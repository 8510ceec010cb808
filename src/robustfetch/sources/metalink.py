"""``read_metalink``: the requests a Metalink 4 document (RFC 5854) describes."""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Any, Union

from ..policy.metalink import MAX_DOCUMENT, MetalinkFile, parse_metalink
from ..policy.urls import check_url
from ..results import Request

__all__ = ["read_metalink"]


def read_metalink(source: Union[str, bytes, os.PathLike[str]]) -> list[Request]:
    """One :class:`Request` per ``<file>`` of a Metalink 4 document.

    Each request has the file's name (``filename``), ``size`` and hashes
    (``sha256`` and every checkable ``<hash>`` in ``hashes``), and its URLs
    best first: the lowest ``priority`` is the URL, the others fallbacks.
    URLs robustfetch cannot fetch (or local files) are left out.

    :param source: a path to read (an ``os.PathLike``), or the document itself
        (``bytes`` or ``str``).
    :raises ValueError: unreadable, not Metalink, unsafe (a DTD or entity),
        or a file without any usable URL.
    """
    document: Union[str, bytes]
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        try:
            with open(path, "rb") as handle:
                document = handle.read(MAX_DOCUMENT + 1)
        except OSError as exc:
            raise ValueError(f"cannot read Metalink file {path!r}: {exc}") from None
    elif isinstance(source, (str, bytes)):
        document = source
    else:
        raise ValueError(f"read_metalink takes a path or the document, not {source!r}")
    return [_request(entry) for entry in parse_metalink(document)]


def _request(entry: MetalinkFile) -> Request:
    urls = [url for url in entry.urls if _usable(url)]
    if not urls:
        shown = ", ".join(entry.urls)
        raise ValueError(f"Metalink file {entry.name!r}: no URL robustfetch can fetch ({shown})")
    return _MetalinkRequest(
        urls[0],
        sha256=entry.hashes.get("sha256"),
        fallbacks=tuple(urls[1:]),
        filename=entry.name,
        size=entry.size,
        hashes=dict(entry.hashes) or None,
    )


class _MetalinkRequest(Request):
    """A :class:`Request` whose hashes a Metalink listed: ``verified_by`` says ``"metalink"``.

    The same fields (the public signature is fixed), equal to and shown as the
    plain :class:`Request` with the same values; ``dataclasses.replace`` keeps
    the class, so a request given a ``dest`` is still the Metalink's.
    """

    pinned_by = "metalink"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Request):
            return _values(self) == _values(other)
        return NotImplemented

    __hash__ = Request.__hash__

    def __repr__(self) -> str:
        return repr(Request(**dict(zip(_NAMES, _values(self)))))


_NAMES = tuple(f.name for f in fields(Request))


def _values(request: Request) -> tuple[Any, ...]:
    return tuple(getattr(request, name) for name in _NAMES)


def _usable(url: str) -> bool:
    if url.lower().startswith("file:"):
        return False  # a document names remote copies, never files on this machine
    try:
        check_url(url)
    except ValueError:
        return False
    return True
