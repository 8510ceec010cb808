"""Steps 5 to 7 of the order of sources: looked up only once the planned sources are spent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Optional, Union

from ..errors import Attempt
from ..options import Options
from ..policy.digests import DigestValue, is_pinned
from ..policy.plan import Source
from ..policy.pypi import SdistRef
from ..policy.witness import combine, server_digests
from .getter import DocumentGetter
from .lookup import Lookup

# The page and Link-header readers load when a request gets this far (most
# never do): a fresh process that fetches one file does not pay for them.

__all__ = ["LaterSources"]

log = logging.getLogger("robustfetch")

# A response may not flood a request with sources: a cap on all it learns, not per round,
# else copies that each name one more keep a request going for ever.
_MAX_DUPLICATES = 32


class LaterSources:
    """Finds more places for one request, one step at a time (see :meth:`next`).

    :param filename: the file looked for.
    :param expected: the request's pinned digests.
    """

    def __init__(
        self,
        getter: DocumentGetter,
        options: Options,
        filename: str,
        expected: Mapping[str, DigestValue],
        deadline_at: Optional[float],
    ) -> None:
        self.getter = getter
        self.options = options
        self.lookup = Lookup(
            getter, options.rule_set(), options.allow_http, filename, expected, deadline_at
        )
        #: A PyPI sdist URL that answered 404 (step 6 asks PyPI's JSON API about it).
        self.pypi_ref: Optional[SdistRef] = None
        self._steps = ["links", "pypi", "duplicates"]
        self._duplicates: list[Source] = []
        self._learned: list[Source] = []  # every duplicate taken, for the request's whole life
        self._lock = threading.Lock()  # hedged tries may report heads from two threads

    def learn(
        self, url: str, headers: Mapping[str, str], expected: Mapping[str, DigestValue]
    ) -> None:
        """Note the ``Link: rel=duplicate`` copies an answer names, if a hash vouches for them.

        The hash is pinned, listed with the source (``expected``), or announced
        by the answer itself (``Repr-Digest``; the transfer passes digest
        headers only for a complete 200). Without any, nothing would check that
        a duplicate holds the same bytes: such announcements are ignored.
        """
        header = headers.get("Link")
        if not header:
            return
        from ..policy.index_pages import link_refused
        from ..policy.metalink import duplicate_links

        announced = server_digests(headers, 200)
        vouched = combine(expected, announced)
        if isinstance(vouched, str) or not is_pinned(vouched):
            return  # a contradicting answer fails its own try; nothing vouches for its copies
        witness = {k: v for k, v in vouched.items() if k not in self.lookup.expected}
        # The server alone vouched when the source came with no listing of its own.
        listed = set(expected) - set(self.lookup.expected)
        listed_by = "server" if witness and not listed else None
        rules = self.lookup.rules
        for target in duplicate_links(header, url):
            if link_refused(target, self.lookup.pinned, self.options.allow_http, False):
                log.info("%s: duplicate %s ignored (scheme not allowed)", url, target)
                continue
            blocked = rules.blocked_by(target)
            source = Source(
                target, "duplicate", str(blocked) if blocked else None, witness, listed_by
            )
            with self._lock:
                if len(self._learned) < _MAX_DUPLICATES and source not in self._learned:
                    log.info("%s: announces a duplicate at %s", url, target)
                    self._learned.append(source)
                    self._duplicates.append(source)

    def next(self) -> Optional[list[Union[Source, Attempt]]]:
        """The next step's sources (and failed look-ups), or ``None`` when none is left.

        Duplicates are asked for last, and again as long as tried duplicates
        announce new ones.
        """
        while self._steps:
            step = self._steps[0]
            if step != "duplicates":
                self._steps.pop(0)
            if step == "links":
                from .find_links import find_links_sources
                from .index import index_sources

                found = index_sources(self.lookup, self.options.index_urls)
                found += find_links_sources(self.lookup, self.options.find_links)
                return found
            if step == "pypi":
                if self.pypi_ref is None:
                    continue
                from .pypi import ask_pypi

                lookup = self.lookup
                answer = ask_pypi(
                    self.getter,
                    self.pypi_ref,
                    lookup.expected,
                    lookup.rules,
                    lookup.deadline_at,
                )
                return [answer]
            with self._lock:
                found_duplicates, self._duplicates = self._duplicates, []
            if not found_duplicates:
                self._steps.clear()
                return None
            return list(found_duplicates)
        return None
