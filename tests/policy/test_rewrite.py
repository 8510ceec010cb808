"""Unit tests of robustfetch.policy.rewrite: legacy hosts, user rules, parsing."""

from __future__ import annotations

import doctest
import importlib.util
import re
import string
from typing import Optional

import pytest

from robustfetch.policy import rewrite
from robustfetch.policy.rewrite import LIST_WHERE, Rule, RuleSet, parse_rules, rewrite_url

FILES = "https://files.pythonhosted.org"
PATH = "/packages/source/s/six/six-1.16.0.tar.gz"

# -- built-in rules: the contract's table -----------------------------------------------

# The stdlib codec (IDNA 2003, used without the idna package) accepts these.
NEEDS_IDNA = pytest.mark.skipif(
    importlib.util.find_spec("idna") is None, reason="IDNA 2003 accepts it"
)


@pytest.mark.parametrize(
    ("url", "first"),
    [
        # pypi.io, pypi.python.org, pypi.org under /packages/: files.pythonhosted.org
        (f"https://pypi.io{PATH}", FILES + PATH),
        (f"http://pypi.io{PATH}", FILES + PATH),
        (f"https://pypi.python.org{PATH}", FILES + PATH),
        (f"http://pypi.python.org{PATH}", FILES + PATH),
        (f"https://pypi.org{PATH}", FILES + PATH),
        (f"http://pypi.org{PATH}", FILES + PATH),
        # files.pythonhosted.org over http
        (f"http://files.pythonhosted.org{PATH}", FILES + PATH),
        ("http://files.pythonhosted.org/other/x", FILES + "/other/x"),
        # any other path on the retired names: pypi.org
        ("https://pypi.io/simple/six/", "https://pypi.org/simple/six/"),
        ("http://pypi.io/pypi/six/json", "https://pypi.org/pypi/six/json"),
        ("https://pypi.python.org/simple/six/", "https://pypi.org/simple/six/"),
        ("http://pypi.python.org/pypi/six/1.16.0/json", "https://pypi.org/pypi/six/1.16.0/json"),
        ("https://pypi.io/packages", "https://pypi.org/packages"),
        ("https://pypi.io/", "https://pypi.org/"),
        ("https://pypi.io", "https://pypi.org"),
        # http://pypi.org: https first
        ("http://pypi.org/simple/six/", "https://pypi.org/simple/six/"),
        ("http://pypi.org/", "https://pypi.org/"),
    ],
)
def test_legacy_host_table(url: str, first: str) -> None:
    assert rewrite_url(url) == [first, url]


@pytest.mark.parametrize("letter", string.ascii_lowercase)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_every_single_letter_mirror_name(letter: str, scheme: str) -> None:
    host = f"{letter}.pypi.python.org"
    packages = f"{scheme}://{host}{PATH}"
    simple = f"{scheme}://{host}/simple/six/"
    assert rewrite_url(packages) == [FILES + PATH, packages]
    assert rewrite_url(simple) == ["https://pypi.org/simple/six/", simple]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://pypi.io/packages/source/s/six/six-1.16.0.tar.gz",
            [
                "https://files.pythonhosted.org/packages/source/s/six/six-1.16.0.tar.gz",
                "https://pypi.io/packages/source/s/six/six-1.16.0.tar.gz",
            ],
        ),
        (
            "https://files.pythonhosted.org/packages/x",
            ["https://files.pythonhosted.org/packages/x"],
        ),
        (
            "http://files.pythonhosted.org/packages/x",
            [
                "https://files.pythonhosted.org/packages/x",
                "http://files.pythonhosted.org/packages/x",
            ],
        ),
        (
            "https://b.pypi.python.org/simple/six/",
            ["https://pypi.org/simple/six/", "https://b.pypi.python.org/simple/six/"],
        ),
    ],
)
def test_examples_of_the_brief(url: str, expected: list[str]) -> None:
    assert rewrite_url(url) == expected


@pytest.mark.parametrize(
    ("url", "first"),
    [
        # case, trailing dot, default ports
        (f"HTTPS://PyPI.IO{PATH}", FILES + PATH),
        (f"https://pypi.io.{PATH}", FILES + PATH),
        (f"https://B.PYPI.PYTHON.ORG.{PATH}", FILES + PATH),
        (f"https://pypi.io:443{PATH}", FILES + PATH),
        (f"http://pypi.io:80{PATH}", FILES + PATH),
        (f"http://files.pythonhosted.org:80{PATH}", FILES + PATH),
        (f"http://Files.PythonHosted.org.{PATH}", FILES + PATH),
        ("http://pypi.org.:80/simple/", "https://pypi.org/simple/"),
        (f"https://pypi.io:{PATH}", FILES + PATH),  # empty port: the default
        # an IDNA spelling of the name (full-width letters) is the same host
        ("https://\uff50\uff59\uff50\uff49.io/simple/", "https://pypi.org/simple/"),
        # query and fragment kept byte for byte
        (f"https://pypi.io{PATH}?a=1&b=%2F", f"{FILES}{PATH}?a=1&b=%2F"),
        (f"https://pypi.io{PATH}#sha256=ab12", f"{FILES}{PATH}#sha256=ab12"),
        (f"http://pypi.io{PATH}?x#sha256=ab12", f"{FILES}{PATH}?x#sha256=ab12"),
        (f"https://pypi.io{PATH}?", f"{FILES}{PATH}?"),
        (f"https://pypi.io{PATH}#", f"{FILES}{PATH}#"),
        ("https://pypi.python.org/simple/six/#frag", "https://pypi.org/simple/six/#frag"),
        # the path is not decoded or normalised
        ("https://pypi.io/packages/a%20b/../c//d", f"{FILES}/packages/a%20b/../c//d"),
    ],
)
def test_host_spelling_and_rest_of_url(url: str, first: str) -> None:
    assert rewrite_url(url) == [first, url]


@pytest.mark.parametrize(
    "url",
    [
        # already the best form
        f"https://files.pythonhosted.org{PATH}",
        f"https://files.pythonhosted.org:443{PATH}",
        f"https://files.pythonhosted.org.{PATH}",
        "https://pypi.org/simple/six/",
        "https://PyPI.org:443/simple/six/",
        # non-default ports: not the PyPI host
        f"https://pypi.io:8443{PATH}",
        f"http://pypi.io:443{PATH}",
        f"https://pypi.io:80{PATH}",
        f"http://files.pythonhosted.org:8080{PATH}",
        f"http://pypi.org:8080{PATH}",
        "http://a.pypi.python.org:8080/simple/",
        f"https://pypi.io:99999{PATH}",  # invalid port
        # user info: not rewritten to another host
        f"https://user@pypi.io{PATH}",
        f"http://user:pw@files.pythonhosted.org{PATH}",
        # other hosts
        f"https://notpypi.io{PATH}",
        f"https://pypi.io.evil.example{PATH}",
        f"https://evilpypi.org{PATH}",
        f"https://evil-pypi.org{PATH}",
        f"https://www.pypi.org{PATH}",
        f"https://test.pypi.org{PATH}",
        f"https://last.pypi.python.org{PATH}",
        f"https://aa.pypi.python.org{PATH}",
        f"https://a.b.pypi.python.org{PATH}",
        f"https://1.pypi.python.org{PATH}",
        f"https://pypi.python.org.evil.example{PATH}",
        f"https://files.pythonhosted.org.evil.example{PATH}",
        f"https://example.org{PATH}",
        f"https://pypi.io%2e{PATH}",
        # other schemes, no scheme, not a URL
        f"ftp://pypi.io{PATH}",
        f"file://pypi.io{PATH}",
        f"//pypi.io{PATH}",
        f"pypi.io{PATH}",
        "http://[pypi.io/packages/x",
        "",
        " ",
    ],
)
def test_unrelated_or_already_best_urls_come_back_alone(url: str) -> None:
    assert rewrite_url(url) == [url]


def test_original_is_last_and_first_is_https() -> None:
    url = f"http://a.pypi.python.org{PATH}"
    result = rewrite_url(url)
    assert result[-1] == url
    assert result[0].startswith("https://")
    assert len(result) == len(set(result)) == 2


# -- user rules: rewrite --------------------------------------------------------------


def _rules(*lines: str, builtin: bool = True) -> RuleSet:
    return RuleSet(tuple(parse_rules(lines)), builtin=builtin)


def test_matching_rewrites_come_first_in_rule_order_then_the_url() -> None:
    rs = _rules(
        "rewrite example.org/(.*) m1.example/$1",
        "rewrite nomatch/(.*) never.example/$1",
        "rewrite (example.org)/(.*) http://m2.example/$1/$2",
    )
    assert rs.candidates("https://example.org/pub/f.tgz") == [
        "https://m1.example/pub/f.tgz",
        "http://m2.example/example.org/pub/f.tgz",
        "https://example.org/pub/f.tgz",
    ]


def test_an_identity_rewrite_changes_nothing_but_the_scheme() -> None:
    rs = _rules("rewrite example.org/(.*) m.example/$1", "rewrite (.*) $1")
    assert rs.candidates("https://example.org/f") == [
        "https://m.example/f",
        "https://example.org/f",
    ]
    assert rs.candidates("http://example.org/f") == [
        "https://m.example/f",
        "https://example.org/f",
        "http://example.org/f",
    ]


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ("m.example/$1", "https://m.example/pub"),
        ("m.example/${2}0", "https://m.example/f.tgz0"),
        ("m.example/$2$1", "https://m.example/f.tgzpub"),
        ("m.example/$0", "https://m.example/example.org/pub/f.tgz"),
        ("m.example/$$1/$$$1", "https://m.example/$1/$pub"),
        ("m.example/$3", "https://m.example/"),  # a group that did not take part
        ("http://m.example/$2", "http://m.example/f.tgz"),
        ("HTTP://m.example/$2", "HTTP://m.example/f.tgz"),
        ("file:///srv/mirror/$2", "file:///srv/mirror/f.tgz"),
        ("ftp.example/$2", "https://ftp.example/f.tgz"),
        ("m.example/$2#sha256=ff", "https://m.example/f.tgz#sha256=ff"),
    ],
)
def test_replacement_syntax(replacement: str, expected: str) -> None:
    rs = _rules(rf"rewrite example\.org/(\w+)/([^/]+?)(-x)? {replacement}", builtin=False)
    assert rs.candidates("http://example.org/pub/f.tgz") == [
        expected,
        "http://example.org/pub/f.tgz",
    ]


def test_rewrite_matches_the_whole_url_without_scheme_and_fragment() -> None:
    rs = _rules("rewrite example.org/(.*) m.example/$1", builtin=False)
    assert rs.candidates("https://example.org/f.tgz#sha256=ab") == [
        "https://m.example/f.tgz#sha256=ab",
        "https://example.org/f.tgz#sha256=ab",
    ]
    # a partial match is no match
    assert rs.candidates("https://www.example.org/f.tgz") == ["https://www.example.org/f.tgz"]
    # the host is matched as written: (?i) ignores case
    assert rs.candidates("https://EXAMPLE.org/f") == ["https://EXAMPLE.org/f"]
    rs = _rules("rewrite (?i)example.org(:443)?/(.*) m.example/$2", builtin=False)
    assert rs.candidates("https://EXAMPLE.org:443/f?x=1") == [
        "https://m.example/f?x=1",
        "https://EXAMPLE.org:443/f?x=1",
    ]


def test_rewritten_urls_go_through_the_builtin_rules() -> None:
    rs = _rules("rewrite mirror.example/(.*) pypi.io/$1")
    assert rs.candidates(f"https://mirror.example{PATH}") == [
        FILES + PATH,
        f"https://pypi.io{PATH}",
        f"https://mirror.example{PATH}",
    ]
    rs = _rules("rewrite mirror.example/(.*) pypi.io/$1", builtin=False)
    assert rs.candidates(f"https://mirror.example{PATH}") == [
        f"https://pypi.io{PATH}",
        f"https://mirror.example{PATH}",
    ]
    # the original's own repairs come after the rewrites', before the original
    rs = _rules("rewrite pypi.io/(.*) m.example/$1")
    assert rs.candidates(f"http://pypi.io{PATH}") == [
        f"https://m.example{PATH}",
        FILES + PATH,
        f"http://pypi.io{PATH}",
    ]


def test_no_matching_rewrite_leaves_the_builtin_rules() -> None:
    url = f"https://pypi.io{PATH}"
    rs = _rules("rewrite other.example/(.*) m.example/$1", "block *")
    assert rs.candidates(url) == rewrite_url(url) == [FILES + PATH, url]
    assert RuleSet(rs.rules, builtin=False).candidates(url) == [url]
    assert RuleSet().candidates(url) == [FILES + PATH, url]


def test_candidates_are_unique_in_order() -> None:
    rs = _rules(
        "rewrite (.*) pypi.io/$1",
        "rewrite (.*) files.pythonhosted.org/$1",
        "rewrite (.*) pypi.io/$1",
    )
    assert rs.candidates("https://packages/x") == [
        "https://files.pythonhosted.org/packages/x",
        "https://pypi.io/packages/x",
        "https://packages/x",
    ]


def test_ruleset_accepts_a_list() -> None:
    rs = RuleSet(parse_rules(["block *"]))  # type: ignore[arg-type]
    assert isinstance(rs.rules, tuple)
    assert hash(rs) == hash(RuleSet(tuple(parse_rules(["block *"]))))


# -- user rules: allow and block ------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "url", "blocked_by"),
    [
        ([], "https://example.com/f", None),
        (["block example.com"], "https://example.com/f", "block example.com"),
        (["block example.com"], "https://dl.example.com/f", "block example.com"),
        (["block example.com"], "https://a.b.example.com:8443/f", "block example.com"),
        (["block example.com"], "https://EXAMPLE.com./f", "block example.com"),
        (["block example.com"], "https://example.com\u3002/f", "block example.com"),
        (["block Example.COM."], "https://example.com/f", "block Example.COM."),
        (["block example.com"], "https://notexample.com/f", None),
        (["block example.com"], "https://example.com.evil.org/f", None),
        (["block example.com"], "https://example.org/f", None),
        (["block dl.example.com"], "https://example.com/f", None),
        (["block example.com"], "https://example.com@evil.org/f", None),
        (["block evil.org"], "https://example.com@evil.org/f", "block evil.org"),
        # IDNA: a rule in Unicode covers the punycode host and the other way round
        (
            ["block b\u00fccher.example"],
            "https://xn--bcher-kva.example/f",
            "block b\u00fccher.example",
        ),
        (
            ["block xn--bcher-kva.example"],
            "https://B\u00dcCHER.example/f",
            "block xn--bcher-kva.example",
        ),
        (["block example"], "https://b\u00fccher.example/f", "block example"),
        # IP literals
        (["block 192.0.2.1"], "https://192.0.2.1:8443/f", "block 192.0.2.1"),
        (["block [::1]"], "https://[::1]/f", "block [::1]"),
        (["block ::1"], "https://[::1]/f", "block ::1"),
        # block *: every host, even none
        (["block *"], "https://example.com/f", "block *"),
        (["block *"], "http://[malformed/f", "block *"),
        (["block *"], "not a url", "block *"),
        # allow wins, whatever the order
        (["block *", "allow example.com"], "https://dl.example.com/f", None),
        (["allow example.com", "block *"], "https://example.com/f", None),
        (["allow example.com", "block *"], "https://example.org/f", "block *"),
        (["block dl.example.com", "allow example.com"], "https://dl.example.com/f", None),
        (["block example.com", "allow dl.example.com"], "https://dl.example.com/f", None),
        (
            ["block example.com", "allow dl.example.com"],
            "https://www.example.com/f",
            "block example.com",
        ),
        (["allow *", "block example.com"], "https://example.com/f", None),
        # the first block rule that covers the host
        (["block a.example", "block example", "block *"], "https://x.example/f", "block example"),
    ],
)
def test_blocked_by(lines: list[str], url: str, blocked_by: Optional[str]) -> None:
    rule = _rules(*lines).blocked_by(url)
    assert (rule.line() if rule else None) == blocked_by


def test_blocked_by_returns_the_rule_with_its_location() -> None:
    rs = RuleSet(tuple(parse_rules(["# mirrors only", "", "block *"], "dl.cfg")))
    rule = rs.blocked_by("https://example.com/f")
    assert rule == Rule("block", "*", where="dl.cfg:3")
    assert str(rule) == "block * (dl.cfg:3)"


def test_candidates_do_not_filter_blocked_urls() -> None:
    rs = _rules("block files.pythonhosted.org")
    url = f"https://pypi.io{PATH}"
    assert rs.candidates(url) == [FILES + PATH, url]
    assert [rs.blocked_by(u) is not None for u in rs.candidates(url)] == [True, False]


# -- parsing --------------------------------------------------------------------------


def test_parse_skips_blank_lines_and_comments_and_splits_on_whitespace() -> None:
    text = (
        "# a comment\n\n   \t\n  #indented comment\n"
        "rewrite\t(.*)   m.example/$1  \nallow a.example\n"
    )
    rules = parse_rules(text.splitlines(keepends=True), "dl.cfg")
    assert rules == [
        Rule("rewrite", "(.*)", "m.example/$1", "dl.cfg:5"),
        Rule("allow", "a.example", None, "dl.cfg:6"),
    ]
    assert parse_rules(text, "dl.cfg") == rules  # a string is split into lines
    assert parse_rules(iter(text.splitlines()), "dl.cfg") == rules
    assert parse_rules([]) == []


def test_locations_in_a_list_are_indexes() -> None:
    rules = parse_rules(["# x", "block *", "allow a.example"])
    assert [r.where for r in rules] == ["rules[1]", "rules[2]"]
    assert LIST_WHERE == "rules"
    assert [str(r) for r in rules] == ["block * (rules[1])", "allow a.example (rules[2])"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("rewrit (.*) $1", "unknown directive 'rewrit' (use rewrite, allow or block)"),
        ("Block *", "unknown directive 'Block'"),
        ("all_blocked_message go away", "unknown directive 'all_blocked_message'"),
        ("https://example.org/f", "unknown directive"),
        ("rewrite (.*)", "rewrite takes a regular expression and a replacement, not 1 fields"),
        ("rewrite", "not 0 fields"),
        ("rewrite (.*) $1 # comment", "not 4 fields"),
        ("allow", "allow takes one host name, not 0 fields"),
        ("block a.example b.example", "block takes one host name, not 2 fields"),
        ("rewrite (.* $1", "invalid regular expression: missing ), unterminated subpattern"),
        ("rewrite * $1", "invalid regular expression: nothing to repeat at position 0"),
        ("rewrite (.*) m/$2", "replacement refers to group 2 but the pattern has 1"),
        ("rewrite .* m/$1", "replacement refers to group 1 but the pattern has 0"),
        ("rewrite (.*) m/${9}", "replacement refers to group 9 but the pattern has 1"),
        ("rewrite (.*) m/$x", "a `$` must be followed by a group number, `{number}` or `$`"),
        ("rewrite (.*) m/${x}", "a `$` must be followed"),
        ("rewrite (.*) m/$", "a `$` must be followed"),
        ("block https://example.org/", "block takes a host name, not a URL"),
        ("allow user@example.org", "allow takes a host name, not a URL"),
        ("block *.example.org", "write 'example.org' instead: a domain covers its subdomains"),
        ("block ex*ample.org", "the only wildcard is block *"),
        ("allow **", "the only wildcard is allow *"),
        ("block example.org:8443", "block takes a host name without a port"),
        ("block [::1]:443", "block takes a host name without a port"),
        ("block .", "empty host name"),
        pytest.param("block a\u200db.example", "invalid international host name", marks=NEEDS_IDNA),
    ],
)
def test_parse_errors_name_the_file_line_problem_and_line(line: str, message: str) -> None:
    lines = ["# header", "", "block *", "  " + line + "  "]
    with pytest.raises(ValueError) as file_error:
        parse_rules(lines, "config.txt")
    text = str(file_error.value)
    assert text.startswith("config.txt:4: ")
    assert message in text
    assert text.endswith(": " + line)
    with pytest.raises(ValueError, match=r"^rules\[3\]: ") as list_error:
        parse_rules(lines)
    assert str(list_error.value) == text.replace("config.txt:4", "rules[3]")


def test_bad_regex_message_carries_the_re_error_text() -> None:
    with pytest.raises(re.error) as expected:
        re.compile("a(?P<")
    with pytest.raises(ValueError, match=re.escape(str(expected.value))):
        parse_rules(["rewrite a(?P< $0"])


def test_non_string_rule() -> None:
    with pytest.raises(ValueError, match=r"^rules\[1\]: a rule must be a string, not tuple"):
        parse_rules(["block *", ("block", "x")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"kind": "deny", "pattern": "x"},
            "unknown directive 'deny' (use rewrite, allow or block): deny x",
        ),
        (
            {"kind": "rewrite", "pattern": "(.*)"},
            "rewrite takes a regular expression and a replacement",
        ),
        (
            {"kind": "block", "pattern": "x", "replacement": "y"},
            "block takes one host name: block x y",
        ),
        (
            {"kind": "rewrite", "pattern": "(", "replacement": "$1", "where": "a:1"},
            "a:1: invalid regular",
        ),
    ],
)
def test_rules_are_checked_when_made(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Rule(**kwargs)


def test_rule_text() -> None:
    rule = Rule("rewrite", "(.*)", "m.example/$1")
    assert rule.line() == str(rule) == "rewrite (.*) m.example/$1"
    assert (
        str(Rule("allow", "b\u00fccher.example", where="c:1")) == "allow b\u00fccher.example (c:1)"
    )


def test_doctests() -> None:
    assert doctest.testmod(rewrite).failed == 0
