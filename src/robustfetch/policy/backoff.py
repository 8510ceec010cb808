"""Retry policy: which failures are tried again on the same source, and after how long."""

from __future__ import annotations

import datetime
import random
import time
from typing import Callable, Optional

from ..errors import Reason, SourceFailed
from .headers import parse_digits

__all__ = ["parse_retry_after", "retry_delay", "should_retry"]

#: Failures that cost a whole timeout: retried only when no other source is left.
SLOW = frozenset({Reason.TIMEOUT, Reason.STALLED})


def should_retry(failure: SourceFailed, tries_done: int, retries: int, last_source: bool) -> bool:
    """Whether to try the same source again after ``failure``.

    A hung source is not waited on twice while other sources remain: moving
    on is faster than a second timeout.

    >>> from robustfetch.errors import Reason, SourceFailed
    >>> should_retry(SourceFailed(Reason.CONNECT, "refused"), 0, 2, last_source=False)
    True
    >>> should_retry(SourceFailed(Reason.HASH_MISMATCH, "x"), 0, 2, last_source=True)
    False
    """
    if tries_done >= retries:
        return False
    return failure.transient or (last_source and failure.reason in SLOW)


def retry_delay(
    tries_done: int,
    backoff: float,
    retry_after: Optional[float],
    cap: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait before the next try: ``Retry-After`` (capped) or jittered backoff.

    Backoff is ``backoff * 2**tries_done`` with "full jitter", so parallel
    clients do not retry in step.

    >>> retry_delay(3, 0.5, None, 30.0, uniform=lambda a, b: b)
    4.0
    >>> retry_delay(0, 0.5, 3600.0, 30.0)
    30.0
    """
    if retry_after is not None:
        return max(0.0, min(retry_after, cap))
    return min(uniform(0.0, backoff * (2**tries_done)), cap)


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), or ``None``.

    >>> parse_retry_after("120")
    120.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    >>> parse_retry_after("soon") is None, parse_retry_after("²") is None
    (True, True)
    """
    if not value:
        return None
    text = value.strip()
    seconds = parse_digits(text)
    if seconds is not None:
        return float(seconds)
    import email.utils  # rare: most Retry-After headers hold seconds

    try:
        when = email.utils.parsedate_to_datetime(text)
        if when is None:
            return None
        if when.tzinfo is None:  # asctime and "-0000" dates are UTC by RFC 9110
            when = when.replace(tzinfo=datetime.timezone.utc)
        stamp = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    current = time.time() if now is None else now
    return max(0.0, stamp - current)
