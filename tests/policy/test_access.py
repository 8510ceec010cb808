"""The access gate and credential choice (policy/access.py) and masking (policy/secrets.py)."""

from __future__ import annotations

import logging
from typing import Optional

import pytest

from robustfetch.errors import Attempt, FetchError, Reason, SourceFailed
from robustfetch.policy import access, secrets
from robustfetch.policy.rewrite import RuleSet, parse_rules

RULES = RuleSet(tuple(parse_rules(["block *", "allow mirror.internal"])), builtin=False)


@pytest.mark.parametrize(
    ("url", "pinned", "allow_http", "reason"),
    [
        ("https://mirror.internal/f", False, False, None),
        ("https://dl.mirror.internal:8443/f", False, False, None),
        ("https://evil.example/f", True, True, Reason.BLOCKED),
        ("https://MIRROR.internal./f", False, False, None),
        ("http://mirror.internal/f", False, False, Reason.INSECURE_REFUSED),
        ("http://mirror.internal/f", True, False, None),
        ("http://mirror.internal/f", False, True, None),
        ("ftp://mirror.internal/f", False, False, Reason.INSECURE_REFUSED),
        ("ftp://mirror.internal/f", True, False, None),
        ("http://evil.example/f", False, False, Reason.BLOCKED),  # the rule is named first
    ],
)
def test_decide(url: str, pinned: bool, allow_http: bool, reason: Optional[Reason]) -> None:
    decision = access.decide(url, RULES, pinned=pinned, allow_http=allow_http)
    assert decision.reason is reason
    if reason is Reason.BLOCKED:
        assert decision.rule == "block * (rules[0])"
        assert "blocked by the rule block * (rules[0])" in decision.detail


@pytest.mark.parametrize("hop", access.HOP_KINDS)
def test_every_hop_kind_is_refused_with_a_failure_naming_the_rule(hop: str) -> None:
    with pytest.raises(SourceFailed) as info:
        access.check_hop("https://evil.example/f", RULES, pinned=True, allow_http=True, hop=hop)
    assert info.value.reason is Reason.BLOCKED and not info.value.transient
    assert "block * (rules[0])" in info.value.detail


@pytest.mark.parametrize(
    ("url", "pinned", "allow_http", "allowed"),
    [
        ("https://m.example/f", False, False, True),
        ("http://m.example/f", False, False, False),
        ("http://m.example/f", True, False, True),
        ("ftp://m.example/f", False, True, True),
        ("file:///etc/passwd", True, True, False),
        ("file://localhost/etc/passwd", True, True, False),
        ("FILE:///etc/passwd", True, True, False),
        ("data:text/plain,x", True, True, False),
        ("javascript:alert(1)", True, True, False),
        ("https:///nohost", True, True, False),
        ("https://a\\b.example/f", True, True, False),
        ("https://[::1/f", True, True, False),
        ("https://h.example:99999/f", True, True, False),
    ],
)
def test_remote_link_allowed(url: str, pinned: bool, allow_http: bool, allowed: bool) -> None:
    assert access.remote_link_allowed(url, pinned, allow_http) is allowed


HEADERS = {"Authorization": "Bearer first", "Cookie": "c=1"}
AUTH = {("a.example", None): "Basic YQ==", ("b.example", 8443): "Bearer b"}
NETRC = {"a.example": "Basic bmV0cmM=", "c.example": "Basic Yw=="}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/f", {"Authorization": "Bearer first", "Cookie": "c=1"}),
        ("https://a.example:8443/f", {"Authorization": "Basic YQ=="}),  # not the first origin
        ("http://a.example/f", {}),
        ("https://b.example:8443/f", {"Authorization": "Bearer b"}),
        ("https://b.example/f", {}),
        ("https://c.example/f", {"Authorization": "Basic Yw=="}),
        ("https://sub.c.example/f", {}),
        ("https://d.example/f", {}),
    ],
)
def test_credentials_for(url: str, expected: dict[str, str]) -> None:
    found = access.credentials_for(
        url, home="https://A.example:443/x", headers=HEADERS, auth=AUTH, netrc=NETRC
    )
    assert found == expected


def test_user_info_beats_auth_and_netrc_for_its_own_url() -> None:
    bare, userinfo = access.split_userinfo("https://u:p@c.example/f")
    assert bare == "https://c.example/f"
    found = access.credentials_for(
        bare, home=None, headers={}, auth={}, netrc=NETRC, userinfo=userinfo
    )
    assert found == {"Authorization": "Basic dTpw"}


FTP_AUTH = {
    ("a.example", None): "Basic YQ==",
    ("b.example", 2121): "Basic Yg==",
    ("t.example", None): "Bearer t",
}
URL_LOGIN = "Basic dTpw"


@pytest.mark.parametrize(
    ("url", "userinfo", "expected"),
    [
        ("ftp://a.example/f", None, "Basic YQ=="),
        ("ftp://a.example:2121/f", URL_LOGIN, URL_LOGIN),  # the URL's own login wins, as for https
        ("ftp://b.example:2121/f", None, "Basic Yg=="),
        ("ftp://b.example/f", None, None),  # that key names another port
        ("ftp://c.example/f", None, "Basic Yw=="),  # .netrc
        ("ftp://c.example/f", URL_LOGIN, URL_LOGIN),  # the URL's login beats .netrc
        ("ftp://sub.c.example/f", None, None),
        ("ftp://t.example/f", None, None),  # a token is no FTP login
        ("ftp://t.example/f", URL_LOGIN, URL_LOGIN),
        ("ftp://d.example/f", URL_LOGIN, URL_LOGIN),
        ("ftp://d.example/f", None, None),  # anonymous
    ],
)
def test_ftp_credentials_are_for_their_own_host(
    url: str, userinfo: Optional[str], expected: Optional[str]
) -> None:
    found = access.credentials_for(
        url, home=url, headers=HEADERS, auth=FTP_AUTH, netrc=NETRC, userinfo=userinfo
    )
    # The headers option (Cookie, Authorization) is for https only, even at the first URL.
    assert found == ({"Authorization": expected} if expected else {})


@pytest.mark.parametrize(
    ("value", "login"),
    [
        ("Basic dXNlcjpwYXNz", ("user", "pass")),
        ("basic dXNlcjo=", ("user", "")),
        ("Bearer dXNlcjpwYXNz", None),
        ("Basic not base64!", None),
        ("Basic dQ0KOnA=", None),  # "u\r\n:p": a second FTP command
        ("Basic dTpwAA==", None),  # "u:p\0"
    ],
)
def test_ftp_login(value: str, login: Optional[tuple[str, str]]) -> None:
    assert access.ftp_login(value) == login


def test_redact_masks_urls_and_remembered_values() -> None:
    secrets.remember(["Bearer tok-remembered-1", "Basic dXNlcjpwYXNzLXJlbWVtYmVyZWQ="])
    text = secrets.redact(
        "got tok-remembered-1 and pass-remembered from socks5://bob:pw@p:1 and https://tk@h/"
    )
    assert "tok-remembered-1" not in text and "pass-remembered" not in text
    assert "socks5://bob:***@p:1" in text and "https://***@h/" in text
    assert secrets.redact("nothing to hide: https://h.example/f") == (
        "nothing to hide: https://h.example/f"
    )


def test_redact_error_masks_in_place_and_keeps_the_cause() -> None:
    cause = OSError("x")
    error = FetchError("could not fetch https://u:pw@h/f", [Attempt("https://u:pw@h/f", None)])
    error.__cause__ = cause
    assert secrets.redact_error(error) is error
    assert "pw" not in str(error) and error.attempts[0].url == "https://u:***@h/f"
    assert error.__cause__ is cause


def test_the_log_filter_masks_formatted_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("robustfetch.test-access")
    logger.addFilter(secrets.LOG_FILTER)
    try:
        with caplog.at_level(logging.INFO):
            logger.info("%s: %s", "https://alice:hunter2@h/f", "proxy http://a:b@p:1")
    finally:
        logger.removeFilter(secrets.LOG_FILTER)
    assert "hunter2" not in caplog.text and ":b@" not in caplog.text
    assert "https://alice:***@h/f" in caplog.text


def test_user_info_without_a_host_is_refused() -> None:
    """Found by fuzzing: ``a://@//@`` lost its user info but kept an ``@`` in its netloc."""
    with pytest.raises(ValueError, match="no host"):
        access.split_userinfo("A://@//@")
