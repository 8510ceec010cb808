"""Strict parsing of numeric header values: ASCII digits only, never an exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from robustfetch.policy.backoff import parse_retry_after
from robustfetch.policy.headers import (
    parse_content_length,
    parse_content_range_start,
    parse_digits,
)


@given(st.text())
def test_parsers_never_raise_and_accept_only_ascii_digits(text: str) -> None:
    number = parse_digits(text)
    if number is not None:
        stripped = text.strip(" \t")
        assert stripped.isascii() and stripped.isdigit() and int(stripped) == number
    parse_content_length(text)
    parse_content_range_start(text)
    parse_retry_after(text)


@given(st.integers(min_value=0, max_value=10**18))
def test_plain_numbers_round_trip(number: int) -> None:
    assert parse_digits(f" {number}\t") == number
    assert parse_content_length(f"{number}, {number}") == number
    assert parse_content_range_start(f"bytes {number}-{number + 1}/*") == number
    assert parse_retry_after(str(number)) == float(number)


def test_what_python_accepts_but_http_does_not() -> None:
    for value in ["²", "٣", "1_000", "+1", "-1", "1.0", "0x10", "", "1 2", "\uff11"]:
        assert parse_digits(value) is None, value
        assert parse_content_length(value) is None, value
    assert parse_content_length("7, 8") is None
    assert parse_retry_after("²") is None
    assert parse_content_range_start("items 1-2/3") is None


def test_odd_digits_elsewhere_are_named_not_crashes() -> None:
    import ftplib

    import pytest

    import robustfetch
    from robustfetch.transport.faults import describe

    document = (
        '<?xml version="1.0"?><metalink xmlns="urn:ietf:params:xml:ns:metalink">'
        '<file name="f.tgz"><size>\u00b2</size><url>https://a.example/f.tgz</url></file>'
        "</metalink>"
    )
    with pytest.raises(ValueError, match="<size>"):
        robustfetch.read_metalink(document)
    fault = describe(ftplib.error_perm("\u00b2\u00b2\u00b2 a server's odd reply"))
    assert fault.kind == "ftp" and fault.reply_code is None
