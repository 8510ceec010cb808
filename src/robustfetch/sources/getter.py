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
