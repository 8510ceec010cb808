"""What a resolver needs from the engine: a small document fetched through the per-hop policy."""

from __future__ import annotations

from typing import Optional, Protocol

__all__ = ["DocumentGetter"]


class DocumentGetter(Protocol):
    """Fetches a small document (an API answer, an index page) like any source is fetched.

    The engine's transfer implements it: the same transport, redirects, rules
    and timeouts as a download, so a look-up cannot escape what a source obeys.
    """

    def get(self, url: str, limit: int, deadline_at: Optional[float]) -> bytes:
        """The body of ``url``; more than ``limit`` bytes is a :class:`SourceFailed`."""
        ...

    def get_page(
        self,
        url: str,
        limit: int,
        deadline_at: Optional[float],
        accept: str = "application/json",
        pinned: bool = False,
    ) -> tuple[bytes, str, str]:
        """Like :meth:`get`: the body, its ``Content-Type`` and the URL that answered it.

        :param pinned: the file the page leads to has a pinned hash (redirects
            to plain http are then followed, as they would be for the file).
        """
        ...

    def list_folder(self, url: str) -> Optional[list[str]]:
        """The files in the local folder a ``file:`` URL names, or ``None`` if it is no folder."""
        ...
