"""Strict parsing of numeric response header values (Content-Length, Content-Range, Retry-After)."""

from __future__ import annotations

from typing import Optional

__all__ = ["parse_content_length", "parse_content_range_start", "parse_digits"]

# Python's str.isdigit() and int() accept far more than HTTP's DIGIT ("²", "٣", "1_0"):
# a server's odd value must be a failure of that source, never a crash.
_DIGITS = frozenset("0123456789")
#: Longer numbers are not sizes anyone serves; refusing them bounds int()'s work.
_MAX_DIGITS = 19


def parse_digits(value: Optional[str]) -> Optional[int]:
    """The number in ``value`` (ASCII digits only, surrounding blanks allowed), else ``None``.

    >>> parse_digits(" 42 ")
    42
    >>> parse_digits("²") is None, parse_digits("-1") is None, parse_digits("1_0") is None
    (True, True, True)
    """
    if value is None:
        return None
    text = value.strip(" \t")
    if not text or len(text) > _MAX_DIGITS or not set(text) <= _DIGITS:
        return None
    return int(text)


def parse_content_length(value: str) -> Optional[int]:
    """A ``Content-Length`` value, or ``None`` when it is not valid.

    A list of identical values (``"10, 10"``: a header repeated by a proxy)
    is allowed, as RFC 9110 section 8.6 says; differing values are not.

    >>> parse_content_length("10, 10"), parse_content_length("10, 11"), parse_content_length("²")
    (10, None, None)
    """
    numbers = {parse_digits(part) for part in value.split(",")}
    if len(numbers) != 1:
        return None
    return numbers.pop()


def parse_content_range_start(value: Optional[str]) -> Optional[int]:
    """The first byte of a ``Content-Range: bytes N-M/T`` value, or ``None``.

    >>> parse_content_range_start("bytes 100-199/200"), parse_content_range_start("bytes ²-9/10")
    (100, None)
    """
    if value is None:
        return None
    unit, _, spec = value.strip().partition(" ")
    if unit.lower() != "bytes":
        return None
    return parse_digits(spec.partition("-")[0])
