"""What the look-ups for one request share: the page getter, the rules, the pinned digests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from ..policy.digests import DigestValue, is_pinned
from ..policy.rewrite import RuleSet
from .getter import DocumentGetter

__all__ = ["Lookup"]


@dataclass(frozen=True)
class Lookup:
    """What every look-up for one request shares.

    :param filename: the file looked for.
    :param expected: the request's pinned digests (possibly empty).
    """

    getter: DocumentGetter
    rules: RuleSet
    allow_http: bool
    filename: str
    expected: Mapping[str, DigestValue]
    deadline_at: Optional[float]

    @property
    def pinned(self) -> bool:
        return is_pinned(self.expected)
