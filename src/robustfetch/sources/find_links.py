"""find-links pages and folders (pip's ``--find-links``, a web server's directory listing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from ..errors import Attempt, Reason
from ..policy.index_pages import find_link
from ..policy.plan import Source
from .lookup import Lookup
from .pages import link_source, read_page

__all__ = ["find_links_sources"]

_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


def find_links_sources(lookup: Lookup, pages: Sequence[str]) -> list[Union[Source, Attempt]]:
    """A source (or the failed look-up) per page or folder, in the order given.

    Links are resolved against the URL that answered (after redirects), so a
    directory listing's relative links work wherever it is served from.
    """
    found: list[Union[Source, Attempt]] = []
    for page in pages:
        answer = read_page(lookup, page, _ACCEPT, "find-links page")
        if isinstance(answer, Attempt):
            found.append(answer)
            continue
        links, current = answer
        link = find_link(links, lookup.filename)
        if link is None:
            detail = f"the find-links page lists no {lookup.filename}"
            found.append(Attempt(current, Reason.NOT_FOUND, detail, 200))
            continue
        local = current.startswith("file:")
        found.append(link_source(lookup, link, "find_links", f"the find-links page {page}", local))
    return found
