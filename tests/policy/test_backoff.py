"""Unit tests of robustfetch.policy.backoff: what is retried, how long to wait, Retry-After."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from typing import Optional

import pytest

from robustfetch import Reason
from robustfetch.errors import SourceFailed
from robustfetch.policy import backoff as backoff_module
from robustfetch.policy.backoff import parse_retry_after, retry_delay, should_retry

#: "Wed, 21 Oct 2015 07:28:00 GMT" minus ten seconds.
NOW = 1445412480.0 - 10.0

# -- should_retry ---------------------------------------------------------------------

TRANSIENT_FAILURES = [
    SourceFailed(Reason.CONNECT, "connection refused"),
    SourceFailed(Reason.TRUNCATED, "connection reset after 10 of 100 bytes"),
    SourceFailed(Reason.HTTP_STATUS, "HTTP 503", status=503, transient=True),
    SourceFailed(Reason.HTTP_STATUS, "HTTP 429", status=429, retry_after=3.0, transient=True),
    SourceFailed(Reason.PROXY, "proxy failed", transient=True),
]
PERMANENT_FAILURES = [
    SourceFailed(Reason.HASH_MISMATCH, "sha256 differs"),
    SourceFailed(Reason.NOT_FOUND, "HTTP 404", status=404),
    SourceFailed(Reason.NOT_FOUND, "HTTP 410", status=410),
    SourceFailed(Reason.HTTP_STATUS, "HTTP 403", status=403, transient=False),
    SourceFailed(Reason.SIZE_MISMATCH, "size differs"),
    SourceFailed(Reason.TOO_LARGE, "over max_size"),
    SourceFailed(Reason.INSECURE_REFUSED, "plain http"),
    SourceFailed(Reason.REDIRECT_REFUSED, "https to http"),
    SourceFailed(Reason.TOO_MANY_REDIRECTS, "11 redirects"),
    SourceFailed(Reason.CERT_UNTRUSTED, "self signed"),
    SourceFailed(Reason.SNI_REQUIRED, "no SNI"),
    SourceFailed(Reason.TLS_VERSION, "TLS 1.0 only"),
    SourceFailed(Reason.DNS, "no such host"),
    SourceFailed(Reason.OFFLINE, "offline"),
]
SLOW_FAILURES = [
    SourceFailed(Reason.TIMEOUT, "no answer within 10 s"),
    SourceFailed(Reason.STALLED, "no data for 30 s"),
]


def _id(failure: SourceFailed) -> str:
    return f"{failure.reason.value}-{failure.status}"


@pytest.mark.parametrize("failure", TRANSIENT_FAILURES, ids=_id)
@pytest.mark.parametrize(
    ("tries_done", "retries", "expected"),
    [(0, 2, True), (1, 2, True), (2, 2, False), (3, 2, False), (0, 0, False), (4, 5, True)],
)
@pytest.mark.parametrize("last_source", [False, True])
def test_transient_failures_retried_up_to_retries(
    failure: SourceFailed, tries_done: int, retries: int, expected: bool, last_source: bool
) -> None:
    assert should_retry(failure, tries_done, retries, last_source) is expected


@pytest.mark.parametrize("failure", PERMANENT_FAILURES, ids=_id)
@pytest.mark.parametrize("last_source", [False, True])
@pytest.mark.parametrize("tries_done", [0, 1])
def test_permanent_failures_never_retried(
    failure: SourceFailed, last_source: bool, tries_done: int
) -> None:
    assert should_retry(failure, tries_done, 5, last_source) is False


@pytest.mark.parametrize("failure", SLOW_FAILURES, ids=_id)
@pytest.mark.parametrize(
    ("tries_done", "retries", "last_source", "expected"),
    [
        (0, 2, False, False),  # another source is waiting: move on
        (1, 2, False, False),
        (0, 2, True, True),  # nothing else left: wait once more
        (1, 2, True, True),
        (2, 2, True, False),
        (0, 0, True, False),
    ],
)
def test_slow_failures_retried_only_on_last_source(
    failure: SourceFailed, tries_done: int, retries: int, last_source: bool, expected: bool
) -> None:
    assert should_retry(failure, tries_done, retries, last_source) is expected


# -- retry_delay ----------------------------------------------------------------------


def _no_jitter(low: float, high: float) -> float:
    raise AssertionError(f"uniform({low}, {high}) called although Retry-After was given")


@pytest.mark.parametrize(
    ("tries_done", "retry_after", "cap", "expected"),
    [
        (0, 5.0, 30.0, 5.0),
        (4, 5.0, 30.0, 5.0),  # Retry-After replaces the backoff, whatever the try
        (0, 30.0, 30.0, 30.0),
        (0, 3600.0, 30.0, 30.0),  # capped
        (0, 86400.0 * 365, 10.0, 10.0),
        (0, 0.0, 30.0, 0.0),
        (0, -5.0, 30.0, 0.0),  # never negative
        (0, 5.0, 0.0, 0.0),
        (0, 2.5, 30.0, 2.5),
    ],
)
def test_retry_after_is_honoured_but_capped(
    tries_done: int, retry_after: float, cap: float, expected: float
) -> None:
    assert retry_delay(tries_done, 0.5, retry_after, cap, uniform=_no_jitter) == expected


@pytest.mark.parametrize(
    ("tries_done", "backoff", "high"),
    [(0, 0.5, 0.5), (1, 0.5, 1.0), (3, 0.5, 4.0), (0, 2.0, 2.0), (2, 1.5, 6.0), (1, 0.0, 0.0)],
)
@pytest.mark.parametrize("pick", ["low", "high", "middle"])
def test_jitter_is_full_between_zero_and_backoff(
    tries_done: int, backoff: float, high: float, pick: str
) -> None:
    calls: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        calls.append((a, b))
        return {"low": a, "high": b, "middle": (a + b) / 2}[pick]

    delay = retry_delay(tries_done, backoff, None, 1000.0, uniform=uniform)
    assert calls == [(0.0, high)]
    assert delay == {"low": 0.0, "high": high, "middle": high / 2}[pick]


@pytest.mark.parametrize(
    ("backoff", "cap", "expected"),
    [
        (0.5, 1000.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
        (1.0, 10.0, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]),
        (0.25, 1.0, [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_backoff_grows_exponentially_up_to_cap(
    backoff: float, cap: float, expected: list[float]
) -> None:
    def top(a: float, b: float) -> float:
        return b

    delays = [retry_delay(n, backoff, None, cap, uniform=top) for n in range(len(expected))]
    assert delays == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tries_done", [0, 1, 2, 5])
def test_jittered_delays_stay_within_bounds(seed: int, tries_done: int) -> None:
    rng = random.Random(seed)
    high = min(0.5 * 2**tries_done, 30.0)
    delays = [retry_delay(tries_done, 0.5, None, 30.0, uniform=rng.uniform) for _ in range(200)]
    assert all(0.0 <= d <= high for d in delays)
    assert len(set(delays)) > 100  # jittered, not in step
    if 0.5 * 2**tries_done <= 30.0:
        assert max(delays) > high / 2


# -- parse_retry_after ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("  7 ", 7.0),
        ("86400", 86400.0),
        # HTTP dates (RFC 9110: IMF-fixdate and the obsolete RFC 850 form)
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:30:00 GMT", 130.0),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 10.0),
        ("Wed, 21 Oct 2015 09:28:00 +0200", 10.0),
        # in the past: retry now
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        # garbage
        (None, None),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("120abc", None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ("Wed, 21 Foo 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: Optional[str], expected: Optional[float]) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_uses_the_clock_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff_module.time, "time", lambda: NOW - 50.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 60.0
    assert parse_retry_after("15") == 15.0


@pytest.fixture
def local_timezone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the process time zone set to ``request.param``, then restore it."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset() is not available on this platform")
    saved = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.mark.parametrize(
    "local_timezone",
    [
        "UTC0",
        "EST+5",
        "JST-9",
    ],
    indirect=True,
)
@pytest.mark.parametrize(
    "value",
    [
        "Wed Oct 21 07:28:00 2015",  # asctime-date, always GMT (RFC 9110 section 5.6.7)
        "Wed, 21 Oct 2015 07:28:00 -0000",
    ],
)
def test_parse_retry_after_dates_are_gmt_whatever_the_local_zone(
    local_timezone: str, value: str
) -> None:
    assert parse_retry_after(value, now=NOW) == 10.0
