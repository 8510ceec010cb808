"""Fuzzing the ``many`` file reader (#12): any text is requests, problems, or one ValueError."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustfetch.cli.many import read_listing
from robustfetch.results import Request

_WORDS = st.sampled_from(
    [
        "https://a.example/f-1.0.tgz",
        "http://b.example/x/g.zip",
        "file:///tmp/f.tgz",
        "0" * 64,
        "sha256:" + "a" * 64,
        "sha256-" + "A" * 43 + "=",
        "name=f.tgz",
        "name=../x",
        "name=",
        "size=12",
        "size=-1",
        "size=²",
        "#",
        "[",
        "{",
        "<?xml",
        "<metalink>",
        "\x00",
        "ftp://c.example/h.tar.gz",
    ]
)
_LINE = st.lists(_WORDS | st.text(max_size=12), max_size=5).map(" ".join)
_MANY = st.one_of(
    st.lists(_LINE, max_size=6).map("\n".join),
    st.text(max_size=200),
    st.lists(st.text(max_size=10), max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
)


@settings(
    max_examples=300,
    deadline=timedelta(seconds=2),  # a hang fails the example; no timing asserts
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_MANY, st.sampled_from([None, "/tmp/out"]))
def test_a_many_file_is_requests_and_problems_or_a_value_error(text: str, dest: str | None) -> None:
    try:
        listing = read_listing(text, dest)
    except ValueError:
        return
    for where, request in listing.requests:
        assert isinstance(where, str) and isinstance(request, Request)
    assert all(isinstance(problem, str) for problem in listing.problems)
