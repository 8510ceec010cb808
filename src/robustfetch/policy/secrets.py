"""Masking secrets wherever text is made for people: passwords in URLs, credential values.

:func:`redact` is the one place: every :class:`~robustfetch.errors.FetchError`
and :class:`~robustfetch.results.FetchResult` the engine hands out (their
attempts included, :func:`redact_error`, :func:`redact_result`), every record of
the ``robustfetch`` logger (through :data:`LOG_FILTER`), progress events and option
errors pass their text through it. It masks the
user info of every URL in the text (``https://alice:***@proxy``) and every
credential value the options carried (:func:`remember`: header values, ``auth``
and ``.netrc`` passwords and tokens, proxy passwords), wherever it shows up, a
server echoing it back included.

>>> redact("proxy http://alice:s3cret@p.example:3128 refused")
'proxy http://alice:***@p.example:3128 refused'
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import Attempt, FetchError
from ..results import FetchResult

#: Header names that carry credentials: masked in messages, and they never
#: travel to another origin (:mod:`robustfetch.policy.access`).
HOST_BOUND = frozenset({"authorization", "cookie", "proxy-authorization"})

__all__ = [
    "HOST_BOUND",
    "LOG_FILTER",
    "MASK",
    "RedactingFilter",
    "redact",
    "redact_attempt",
    "redact_error",
    "redact_result",
    "remember",
    "remember_url",
]

MASK = "***"
# scheme://userinfo@ ; as in RFC 3986 the authority ends at the first "/", "?" or "#",
# and its user info runs to the last "@" in it: quotes, "<", ">" and "@" may be inside.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/?#]*)@")
# A proxy written without a scheme: "alice:s3cret@proxy:3128" (as HTTPS_PROXY allows).
_BARE_USERINFO = re.compile(r"(?<![\w/.:@%+-])([\w.%+-]+):([^\s/?#@'\"<>\[\]]+)@(?=[\w\[])")
# Shorter values would mask ordinary words; URL passwords are masked whatever their length.
_MIN_LENGTH = 4
# Values seen in options, in the order remembered. A dict: adding and copying it
# are single operations under the GIL, so threads never see it change mid-read.
_known: dict[str, None] = {}


def redact(text: str) -> str:
    """``text`` with URL user info and every remembered secret replaced by :data:`MASK`.

    >>> redact("https://token@h.example/f and ftp://u:p@h/")
    'https://***@h.example/f and ftp://u:***@h/'
    >>> redact("proxy 'alice:pw@p.example:3128' refused")
    "proxy 'alice:***@p.example:3128' refused"
    """
    if "@" in text:  # both patterns need one: most texts skip the regular expressions
        text = _USERINFO.sub(_mask_userinfo, text)
        text = _BARE_USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    for secret in list(_known):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_attempt(attempt: Attempt) -> Attempt:
    """``attempt`` with its URL and detail passed through :func:`redact`."""
    url, detail = redact(attempt.url), redact(attempt.detail)
    if url == attempt.url and detail == attempt.detail:
        return attempt
    return Attempt(url, attempt.reason, detail, attempt.status)


def redact_result(result: FetchResult) -> FetchResult:
    """``result`` with its URL and attempts passed through :func:`redact`.

    ``result`` itself when nothing in it needed masking (the common case: no copy).
    """
    url = redact(result.url)
    attempts = [redact_attempt(a) for a in result.attempts]
    if url == result.url and all(a is b for a, b in zip(attempts, result.attempts)):
        return result
    return dataclasses.replace(result, url=url, attempts=attempts)


def redact_error(error: FetchError) -> FetchError:
    """``error`` itself, its message and attempts passed through :func:`redact` in place.

    In place, so the traceback and the chained cause stay as they were.
    """
    error.message = redact(error.message)
    error.args = (error.message,)
    error.attempts = [redact_attempt(a) for a in error.attempts]
    return error


def remember(values: Iterable[str]) -> None:
    """Mask these values from now on (credential headers, passwords, tokens).

    The parts a header value is made of are remembered too: the token after
    ``Bearer``/``Basic``, the decoded password of a Basic value, each cookie value.
    """
    for value in values:
        for part in _parts(value):
            if len(part) >= _MIN_LENGTH:
                _known.setdefault(part, None)


def remember_url(url: str) -> None:
    """Mask the password (or lone user name, often a token) of ``url``, as written and decoded."""
    url = url if "://" in url else "http://" + url
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        user = password = None
    secret = password if password is not None else user
    if secret:
        remember([secret, unquote(secret)])
    # A "#" or "/" written into a password ends the authority early (the URL is then
    # refused or names another host): what the writer meant as user info is masked too.
    meant = url.partition("://")[2].rpartition("@")[0]
    if meant:
        user, colon, password = meant.partition(":")
        secret = password if colon else user
        remember([secret, unquote(secret)])


class RedactingFilter:
    """A :mod:`logging` filter that passes every record's message through :func:`redact`."""

    def filter(self, record: Any) -> bool:
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        return True


#: The filter installed on the ``robustfetch`` logger (and the CLI's handlers).
LOG_FILTER = RedactingFilter()


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match.group(1), match.group(2)
    user, colon, _password = userinfo.partition(":")
    if not userinfo:
        return match.group(0)
    return f"{scheme}{user}:{MASK}@" if colon else f"{scheme}{MASK}@"


def _parts(value: str) -> list[str]:
    value = value.strip()
    parts = [value]
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if token:
        parts.append(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8")
            except ValueError:
                decoded = ""
            parts.append(decoded.partition(":")[2])
    for cookie in value.split(";"):
        parts.append(cookie.partition("=")[2].strip())
    return parts
