"""Fuzzing every parser that reads what a server sends or a user writes (#12).

Each property feeds arbitrary (and near-valid) text to one parser and allows
only its documented outcomes: a value, ``None`` where documented, or a
``ValueError``. Anything else (``IndexError``, ``RecursionError``,
``UnicodeError`` outside ``ValueError``...) would escape ``fetch()`` as a crash.
Hangs are caught by hypothesis' per-example deadline, not by timing asserts.
"""

from __future__ import annotations

import string
from datetime import timedelta
from typing import Any, Callable, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustfetch.policy import (
    access,
    answers,
    backoff,
    digests,
    headers,
    hops,
    index_pages,
    metalink,
    rewrite,
    secrets,
    sri,
    urls,
    witness,
)
from robustfetch.policy.rewrite import RuleSet

T = TypeVar("T")

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),  # far above any honest parse; a hang fails the example
    suppress_health_check=[HealthCheck.too_slow],
)

# Text with the characters parsers trip on: digits of other scripts, controls, brackets.
_TRICKY = "0123456789²٣_-+.:;,/@#%?[]<>{}\"'\\ \t\r\n\x00\u3002\uff0e\u200b\ufffdé"
text = st.text(alphabet=st.sampled_from(_TRICKY) | st.characters(), max_size=80)
header_value = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=80)


def only_value_error(function: Callable[..., T], *args: Any) -> T | None:
    """``function(*args)``, where a ``ValueError`` (and its subclasses) is an allowed outcome."""
    try:
        return function(*args)
    except ValueError:
        return None


# -- what servers send ---------------------------------------------------------------------


@FUZZ
@given(header_value)
def test_retry_after_is_seconds_or_none(value: str) -> None:
    seconds = backoff.parse_retry_after(value, now=1_700_000_000.0)
    assert seconds is None or (isinstance(seconds, float) and seconds == seconds)


@FUZZ
@given(st.one_of(header_value, st.from_regex(r"\s*bytes \d{0,25}-\d{0,5}/\d{0,5}\s*")))
def test_content_range_start_is_a_number_or_none(value: str) -> None:
    start = headers.parse_content_range_start(value)
    assert start is None or (isinstance(start, int) and start >= 0)


@FUZZ
@given(st.one_of(header_value, st.from_regex(r"\s*\d{0,25}(, ?\d{0,25})*\s*")))
def test_content_length_is_a_number_or_none(value: str) -> None:
    length = headers.parse_content_length(value)
    assert length is None or (isinstance(length, int) and length >= 0)


@FUZZ
@given(st.dictionaries(st.sampled_from(["Repr-Digest", "Content-Digest", "Digest"]), header_value))
def test_server_digests_are_a_mapping(values: dict[str, str]) -> None:
    found = witness.server_digests(values, 200)
    assert isinstance(found, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in found.items())


@FUZZ
@given(header_value, st.sampled_from(["", "https://m.example/a/b"]))
def test_link_header_duplicates_are_strings(value: str, base: str) -> None:
    links = only_value_error(metalink.duplicate_links, value, base)
    assert links is None or all(isinstance(link, str) for link in links)


@FUZZ
@given(header_value)
def test_redirect_locations_are_followed_or_refused(location: str) -> None:
    from robustfetch.errors import SourceFailed

    try:
        target = hops.follow_redirect("https://a.example/x/f", location, 0, 10, False, False)
    except SourceFailed:
        return
    assert urls.check_url(target) == target


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["text/html", "application/json", ""]))
def test_index_pages_are_links_or_value_errors(body: bytes, content_type: str) -> None:
    links = only_value_error(index_pages.page_links, body, content_type, "https://i.example/s/")
    assert links is None or all(isinstance(link.url, str) for link in links)


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=20,
    ).map(lambda doc: __import__("json").dumps(doc).encode())
    | st.binary(max_size=200)
    | st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n)
)
def test_json_answers_are_documents_or_value_errors(body: bytes) -> None:
    only_value_error(answers.load_json, body)


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_metalink_documents_are_files_or_value_errors(document: str | bytes) -> None:
    only_value_error(metalink.parse_metalink, document)


@FUZZ
@given(text, st.booleans(), st.booleans())
def test_remote_links_are_judged_without_crashing(url: str, pinned: bool, allow: bool) -> None:
    allowed = access.remote_link_allowed(url, pinned, allow)
    assert isinstance(allowed, bool)
    if url.lower().startswith("file:"):
        assert not allowed


# -- what users write ----------------------------------------------------------------------

url_like = st.one_of(
    text,
    st.builds(
        "{}://{}{}/{}".format,
        st.sampled_from(["http", "https", "HTTPS", "file", "ftp", "h\u0074tp", ""]),
        st.sampled_from(["", "user:pw@", "@", ":@"]),
        st.text(alphabet=st.sampled_from(_TRICKY + "abcxn-"), max_size=20),
        text,
    ),
)


@FUZZ
@given(url_like)
def test_check_url_accepts_or_raises_value_error(url: str) -> None:
    result = only_value_error(urls.check_url, url)
    if result is not None:
        assert result == url
        assert access.origin(url) is not None or url.lower().startswith("file:")


@FUZZ
@given(text)
def test_hosts_normalise_or_raise_value_error(host: str) -> None:
    normal = only_value_error(urls.normalise_host, host)
    assert normal is None or isinstance(normal, str)
    only_value_error(urls.split_host_port, host)


@FUZZ
@given(url_like)
def test_file_names_from_urls_are_safe_or_value_errors(url: str) -> None:
    name = only_value_error(urls.filename_from_url, url)
    if name is not None:
        assert name not in ("", ".", "..") and "/" not in name and "\x00" not in name
        assert len(name.encode("utf-8", "surrogateescape")) <= 255


rule_line = st.one_of(
    text,
    st.builds(
        "{} {} {}".format,
        st.sampled_from(["rewrite", "allow", "block", "#", "Rewrite"]),
        text,
        st.sampled_from(["", "$1", "${1}", "$$", "$0", "https://m.example/$1", "$9"]),
    ),
)


@FUZZ
@given(st.lists(rule_line, max_size=5), url_like)
def test_rules_files_parse_or_name_the_line(lines: list[str], url: str) -> None:
    try:
        rules = rewrite.parse_rules("\n".join(lines), "fuzz.cfg")
    except ValueError as exc:
        assert "fuzz.cfg:" in str(exc)
        return
    ruleset = RuleSet(tuple(rules))
    candidates = ruleset.candidates(url)
    assert candidates and all(isinstance(c, str) for c in candidates)
    for candidate in candidates:
        ruleset.blocked_by(candidate)
        access.decide(candidate, ruleset, pinned=False, allow_http=False)


@FUZZ
@given(
    st.sampled_from(["sha256", "sha512", "md5", "SHA-256", "blake2b", "nope", ""]),
    st.one_of(
        text, st.from_regex(r"[0-9a-fA-F]{60,70}"), st.from_regex(r"[A-Za-z0-9+/=_-]{40,90}")
    ),
)
def test_digests_parse_or_raise_value_error(algorithm: str, value: str) -> None:
    parsed = only_value_error(digests.parse_digest, algorithm, value)
    assert parsed is None or all(c in string.hexdigits for c in parsed)


@FUZZ
@given(st.one_of(text, st.lists(text, max_size=3), st.none(), st.integers()))
def test_sha256_options_parse_or_raise_value_error(value: Any) -> None:
    only_value_error(digests.expected_hashes, value, {}, ["https://a.example/f#sha256=" + "0" * 3])


@FUZZ
@given(
    st.one_of(text, st.from_regex(r"(sha(256|384|512)-[A-Za-z0-9+/]{0,90}={0,2}(\?\S*)? ?){1,3}"))
)
def test_integrity_strings_parse_or_raise_value_error(value: str) -> None:
    only_value_error(sri.parse_integrity, value)


# -- what robustfetch says about them --------------------------------------------------------


@FUZZ
@given(text, st.text(alphabet=string.ascii_letters + string.digits + "!$&*", min_size=4))
def test_redact_never_shows_a_url_password(prefix: str, password: str) -> None:
    shown = secrets.redact(f"{prefix} http://alice:{password}@p.example:3128/ {prefix}")
    assert f":{password}@" not in shown


@FUZZ
@given(url_like)
def test_user_info_is_split_off_or_the_url_kept(url: str) -> None:
    try:
        bare, value = access.split_userinfo(url)
    except ValueError:
        return
    from urllib.parse import urlsplit

    assert "@" not in urlsplit(bare).netloc
    assert (value is None) == (bare == url)
