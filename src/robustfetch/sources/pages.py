"""Reading a page of links (index, find-links page or folder); turning a link into a source."""

from __future__ import annotations

import logging
from typing import Union
from urllib.parse import quote

from ..errors import Attempt, Reason, SourceFailed
from ..policy.hops import check_plain_http
from ..policy.index_pages import (
    Link,
    disagreement,
    link_refused,
    listed_hashes,
    page_links,
)
from ..policy.plan import Source
from .lookup import Lookup

__all__ = ["link_source", "read_page"]

log = logging.getLogger("robustfetch")

#: The largest page read: PyPI's biggest project pages are some MiB.
PAGE_LIMIT = 64 << 20


def read_page(
    lookup: Lookup, url: str, accept: str, what: str
) -> Union[tuple[list[Link], str], Attempt]:
    """The links on the page at ``url`` and the URL that answered, or why there are none.

    ``what`` names the look-up in failure details (``"index page of 'six'"``).
    A local folder (a ``file:`` URL) is listed as if it were a directory page.
    """
    if url.startswith("file:"):
        names = lookup.getter.list_folder(url)
        if names is not None:
            base = url if url.endswith("/") else url + "/"
            return [Link(base + quote(name), name) for name in names], base
    blocked = lookup.rules.blocked_by(url)
    if blocked is not None:
        return Attempt(url, Reason.BLOCKED, f"{what}: blocked by the rule {blocked}")
    try:
        check_plain_http(url, lookup.pinned, lookup.allow_http)
        body, content_type, current = lookup.getter.get_page(
            url, PAGE_LIMIT, lookup.deadline_at, accept, lookup.pinned
        )
    except SourceFailed as failure:
        return Attempt(url, failure.reason, f"{what}: {failure.detail}", failure.status)
    try:
        return page_links(body, content_type, current), current
    except (ValueError, RecursionError) as exc:  # JSON, its text, or its shape
        return Attempt(url, Reason.HTTP_STATUS, f"{what}: unreadable answer: {exc}", 200)


def link_source(
    lookup: Lookup, link: Link, origin: str, where: str, local_page: bool
) -> Union[Source, Attempt]:
    """``link`` as a source of ``origin``, or the refused :class:`Attempt` saying why.

    The digests the page lists are a witness: one that contradicts the pin
    refuses the link (naming ``where``); agreeing or alone, they are checked
    on that source's bytes.
    """
    refused = link_refused(link.url, lookup.pinned, lookup.allow_http, local_page)
    if refused is not None:
        return Attempt(link.url, Reason.INSECURE_REFUSED, f"found on {where}: {refused}")
    listed = listed_hashes(link.hashes)
    contradiction = disagreement(listed, lookup.expected)
    if contradiction is not None:
        detail = f"{where} {contradiction} for {link.filename}: the pin or the index is wrong"
        return Attempt(link.url, Reason.HASH_MISMATCH, detail)
    blocked = lookup.rules.blocked_by(link.url)
    log.info("%s: %s lists it at %s", lookup.filename, where, link.url)
    return Source(link.url, origin, str(blocked) if blocked is not None else None, listed)
