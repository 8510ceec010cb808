"""What the first bytes of a body are: an HTML error page, an archive type, or nothing known.

>>> is_error_page("text/html; charset=utf-8", b"", "pkg-1.0.tar.gz")
True
>>> is_error_page(None, b"\\xef\\xbb\\xbf  <!DOCTYPE HTML><title>x</title>", "pkg.zip")
True
>>> is_error_page("text/html", b"<html>", "index.html")
False
>>> kind_of(b"\\x1f\\x8b\\x08\\x00")
'gzip'
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = [
    "SNIFF_BYTES",
    "describe_bytes",
    "describe_error_page",
    "expected_kind",
    "is_error_page",
    "kind_of",
    "page_title",
]

#: How much of a body's start is kept for these checks.
SNIFF_BYTES = 512

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_NAMES = (".html", ".htm", ".xhtml", ".shtml")
_HTML_START = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.I | re.S)

# Magic numbers of the archive formats source releases come in.
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x5d\x00\x00", "lzma"),
)
_NAMES = (
    ((".tar.gz", ".tgz", ".gz"), "gzip"),
    ((".zip", ".whl", ".jar", ".egg", ".nupkg"), "zip"),
    ((".tar.xz", ".txz", ".xz"), "xz"),
    ((".tar.bz2", ".tbz2", ".tbz", ".bz2"), "bzip2"),
    ((".tar.zst", ".tzst", ".zst"), "zstd"),
    ((".7z",), "7z"),
    ((".tar.lzma", ".lzma"), "lzma"),
    ((".tar",), "tar"),
)


def is_error_page(content_type: Optional[str], head: bytes, name: str) -> bool:
    """True when an HTML page came where the file ``name`` (not ``.html``/``.htm``) was expected.

    Recognised from ``Content-Type`` (unless the bytes are plainly an archive:
    a misconfigured server labels anything) or from an HTML start in ``head``.

    :param content_type: the response's ``Content-Type``, if any.
    :param head: the first bytes of the body (any number, even none).
    :param name: the file name asked for.
    """
    if name.lower().endswith(_HTML_NAMES):
        return False
    media = (content_type or "").partition(";")[0].strip().lower()
    if media in _HTML_TYPES and kind_of(head) is None:
        return True
    return _HTML_START.match(head) is not None


def page_title(body: bytes) -> Optional[str]:
    """The text of an HTML page's ``<title>``, shortened, or ``None``."""
    match = _TITLE.search(body)
    if match is None:
        return None
    import html  # its entity table loads only for an error page with a title

    text = html.unescape(match.group(1).decode("utf-8", "replace"))
    text = " ".join(text.split())
    return (text[:117] + "...") if len(text) > 120 else (text or None)


def describe_error_page(body: bytes, status: int, url: str, requested: str) -> str:
    """Say what an unexpected HTML page was and what usually causes one.

    :param body: the start of the page (for its title).
    :param status: the HTTP status it came with.
    :param url: where it came from, after redirects.
    :param requested: the URL asked for.
    """
    title = page_title(body)
    what = f"an HTML page titled {title!r}" if title else "an HTML page"
    where = f"from {url} (after redirects from {requested})" if url != requested else f"from {url}"
    return (
        f"{what} came instead of the file (status {status}, {where}); abandoned after "
        f"{len(body)} bytes. A captive portal, a proxy login or a wrong link serves such "
        "pages: log in to the network or fix the URL"
    )


def kind_of(head: bytes) -> Optional[str]:
    """The archive format ``head`` starts with (``"gzip"``, ``"zip"``, ``"tar"``...) or ``None``."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    return None


def expected_kind(name: str) -> Optional[str]:
    """The archive format a file name promises, or ``None``."""
    lowered = name.lower()
    for suffixes, kind in _NAMES:
        if lowered.endswith(suffixes):
            return kind
    return None


def describe_bytes(
    head: Optional[bytes], size: int, name: str, expected_size: Optional[int] = None
) -> str:
    """What a body that failed its hash looks like, so the user knows whom to blame.

    :param head: its first bytes (``None`` when they are unknown: a resumed body).
    :param size: how many bytes it had.
    :param name: the file name asked for.
    :param expected_size: the size the file should have, when known.
    """
    if size == 0:
        return "the body was empty: the server sent nothing (a broken mirror or proxy)"
    if head is None:
        return "the body was resumed from bytes kept earlier: one of its parts may be stale"
    if is_error_page(None, head, name) or (
        _HTML_START.search(head[:SNIFF_BYTES]) is not None and kind_of(head) is None
    ):
        title = page_title(head)
        named = f" titled {title!r}" if title else ""
        return (
            f"the bytes are an HTML page{named}, not the file: a captive portal, "
            "a proxy login or an error page answered"
        )
    actual, promised = kind_of(head), expected_kind(name)
    if promised is not None and actual != promised:
        got = f"a {actual} archive" if actual else "data of no known archive type"
        return (
            f"the name promises a {promised} archive but the bytes are {got}: "
            "the source serves another file"
        )
    if expected_size is not None and size == expected_size:
        return (
            "the right size with different content: a corrupted copy, another "
            "release under the same name, or an outdated pin"
        )
    like = f"a {actual} archive as the name says" if actual else "not a recognised archive"
    return (
        f"the bytes are {like} ({size} bytes): the source holds another version "
        "or a corrupted copy, or the pin is outdated"
    )
