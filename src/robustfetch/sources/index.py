"""Simple indexes (PEP 503 HTML, PEP 691 JSON): the project's page names where a file lives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from ..errors import Attempt, Reason
from ..policy.index_pages import JSON_ACCEPT, find_link, project_candidates, project_page_url
from ..policy.plan import Source
from .lookup import Lookup
from .pages import link_source, read_page

__all__ = ["index_sources"]


def index_sources(lookup: Lookup, index_urls: Sequence[str]) -> list[Union[Source, Attempt]]:
    """A source (or the failed look-up) per index, in the order the indexes are given.

    The project comes from the file name (an sdist or a wheel); a legacy sdist
    name with dashes is tried longest name first, the next only after a 404.
    Nothing is asked for a file not named like a Python distribution.
    """
    projects = project_candidates(lookup.filename)
    found: list[Union[Source, Attempt]] = []
    if not projects:
        return found
    for index_url in index_urls:
        for number, project in enumerate(projects, 1):
            page = project_page_url(index_url, project)
            answer = read_page(lookup, page, JSON_ACCEPT, f"index page of {project!r}")
            if isinstance(answer, Attempt):
                if answer.reason is Reason.NOT_FOUND and number < len(projects):
                    continue  # the name may hold fewer dashes than this guess
                found.append(answer)
                break
            links, current = answer
            link = find_link(links, lookup.filename)
            if link is None:
                if number < len(projects):
                    continue
                detail = f"the index page of {project!r} lists no {lookup.filename}"
                found.append(Attempt(current, Reason.NOT_FOUND, detail, 200))
                break
            found.append(link_source(lookup, link, "index", f"the index {index_url}", False))
            break
    return found
