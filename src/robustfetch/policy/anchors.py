"""The ``<a href>`` values and the ``<base href>`` of an HTML page (an index page's links)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Optional

__all__ = ["anchors"]


def anchors(text: str) -> tuple[list[str], Optional[str]]:
    """Every ``<a href>`` value in order, and the first ``<base href>`` (or ``None``).

    >>> anchors('<base href="/x/"><a href="a.tgz">a</a><a name="n">n</a><a href="b.tgz">')
    (['a.tgz', 'b.tgz'], '/x/')
    """
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    return parser.hrefs, parser.base


class _Anchors(HTMLParser):
    """Collects ``<a href>`` values and the first ``<base href>``; ignores everything else."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: Optional[str] = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        if tag not in ("a", "base"):
            return
        href = dict(attrs).get("href")
        if not href:
            return
        if tag == "a":
            self.hrefs.append(href)
        elif self.base is None:
            self.base = href
