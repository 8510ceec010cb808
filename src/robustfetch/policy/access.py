"""What may reach which host: user rules, plain http and credentials, decided once per hop.

Every connection robustfetch makes passes :func:`decide` first, whoever asks
for it: a planned source, a redirect hop, a hedged or duplicate source, a
mirror probe, an index or PyPI look-up. The engine calls it in one place, just
before the transport opens a connection (and before a mirror's connect time is
measured); a refused hop opens no connection at all.

Credentials are chosen here too (:func:`credentials_for`): the ``Authorization``,
``Cookie`` and ``Proxy-Authorization`` headers of the ``headers`` option go to
the first URL's origin only; ``auth`` and ``.netrc`` entries to their own host
only; all of them over https only, and none after a redirect left the origin.
An ``ftp://`` server gets the ``auth``/``.netrc`` login for its own host, else
the URL's ``user:password@`` (:func:`ftp_login` turns it into USER and PASS).

>>> from .rewrite import RuleSet, parse_rules
>>> rules = RuleSet(tuple(parse_rules(["block *", "allow mirror.internal"])))
>>> decide("https://mirror.internal/f", rules, pinned=False, allow_http=False).allowed
True
>>> print(decide("https://evil.example/f", rules, pinned=True, allow_http=False,
...              hop="redirect").detail)
redirect to https://evil.example/f blocked by the rule block * (rules[0])
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional, Union
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import Reason, SourceFailed
from .rewrite import RuleSet
from .secrets import HOST_BOUND
from .urls import default_port, normalise_host

__all__ = [
    "HOP_KINDS",
    "HOST_BOUND",
    "Decision",
    "auth_header",
    "check_hop",
    "credentials_for",
    "decide",
    "ftp_login",
    "origin",
    "remote_link_allowed",
    "split_userinfo",
]

#: Who asks for a connection; ``hop`` of :func:`decide` names it in messages.
HOP_KINDS = ("source", "redirect", "probe", "lookup", "duplicate", "hedge")
# Schemes a link read from a remote answer may use, and when.
_PLAIN = frozenset({"http", "ftp"})

Origin = tuple[str, str, int]
#: ``auth``: ``(host, port)`` (``None`` port: any) -> the ``Authorization`` value.
AuthMap = Mapping[tuple[str, Optional[int]], str]


@dataclass(frozen=True)
class Decision:
    """The verdict on one hop.

    :param reason: ``None`` when allowed; else :attr:`Reason.BLOCKED` or
        :attr:`Reason.INSECURE_REFUSED`.
    :param detail: why, naming the rule or the option that would allow it.
    :param rule: the rule that blocks the host, as written with its location.
    """

    reason: Optional[Reason] = None
    detail: str = ""
    rule: Optional[str] = None

    @property
    def allowed(self) -> bool:
        return self.reason is None

    def failure(self) -> SourceFailed:
        """The refusal as the failure of one try (not worth retrying)."""
        assert self.reason is not None, "an allowed hop does not fail"
        return SourceFailed(self.reason, self.detail, transient=False)


def decide(
    url: str,
    rules: RuleSet,
    *,
    pinned: bool,
    allow_http: bool,
    hop: str = "source",
) -> Decision:
    """May a connection for ``url`` be opened?

    :param url: the URL about to be requested (or probed).
    :param rules: the user's allow/block rules (rewrites are applied before, at planning).
    :param pinned: a hash is pinned, so plain http cannot slip in tampered bytes.
    :param allow_http: the ``allow_http`` option.
    :param hop: one of :data:`HOP_KINDS`, for the message.
    """
    rule = rules.blocked_by(url)
    if rule is not None:
        return Decision(Reason.BLOCKED, f"{_what(url, hop)}blocked by the rule {rule}", str(rule))
    scheme = _scheme(url)
    if scheme in _PLAIN and not (pinned or allow_http):
        shown = "plain http" if scheme == "http" else scheme
        return Decision(
            Reason.INSECURE_REFUSED,
            f"{_what(url, hop)}{shown} without a pinned hash could be tampered with: "
            "pin a sha256 or pass allow_http=True",
        )
    return Decision()


def check_hop(
    url: str, rules: RuleSet, *, pinned: bool, allow_http: bool, hop: str = "source"
) -> None:
    """:func:`decide`, raising its :class:`SourceFailed` when the hop is refused."""
    decision = decide(url, rules, pinned=pinned, allow_http=allow_http, hop=hop)
    if not decision.allowed:
        raise decision.failure()


def remote_link_allowed(url: str, pinned: bool, allow_http: bool) -> bool:
    """Whether a link read from a remote answer (an index page, find-links, Metalink,
    a ``Link`` header) may become a source.

    ``https`` always; ``http`` and ``ftp`` only under the plain-http rule (a
    pinned hash or ``allow_http``); never ``file:`` or anything else, so a
    server cannot make robustfetch copy a local file.

    >>> remote_link_allowed("file:///etc/passwd", pinned=True, allow_http=True)
    False
    >>> remote_link_allowed("http://m.example/f", pinned=True, allow_http=False)
    True
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if not parts.hostname or "\\" in parts.netloc:
        return False
    if scheme == "https":
        return True
    return scheme in _PLAIN and (pinned or allow_http)


def origin(url: str) -> Optional[Origin]:
    """``(scheme, host, port)`` of ``url``, host normalised; ``None`` if it has none.

    >>> origin("HTTPS://Example.ORG./f")
    ('https', 'example.org', 443)
    """
    try:
        parts = urlsplit(url)
        port = parts.port
        if "\\" in parts.netloc:  # parsers disagree on such a host: no origin
            return None
        host = normalise_host(parts.hostname or "").rstrip(".")
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not host:
        return None
    return scheme, host, port or default_port(scheme)


def split_userinfo(url: str) -> tuple[str, Optional[str]]:
    """``url`` without ``user:password@``, and the ``Authorization`` value it stood for.

    >>> split_userinfo("https://al%40ce:pw@h.example/f")
    ('https://h.example/f', 'Basic YWxAY2U6cHc=')
    >>> split_userinfo("https://h.example/f")
    ('https://h.example/f', None)
    """
    if "@" not in url and "[" not in url and "]" not in url:
        return url, None  # the usual case, no parse (brackets: urlsplit may refuse the URL)
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if not hostport:
        # check_url refuses such URLs first; a bare "scheme://@" would re-parse as user info.
        raise ValueError("a URL with user info but no host")
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, auth_header((unquote(user), unquote(password)))


def auth_header(credential: Union[str, tuple[str, str]]) -> str:
    """The ``Authorization`` value for a ``(user, password)`` pair or a ``"Bearer <token>"``.

    >>> auth_header(("user", "pass"))
    'Basic dXNlcjpwYXNz'
    """
    if isinstance(credential, tuple):
        pair = f"{credential[0]}:{credential[1]}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return credential


def credentials_for(
    url: str,
    *,
    home: Optional[str],
    headers: Mapping[str, str],
    auth: AuthMap,
    netrc: Mapping[str, str],
    userinfo: Optional[str] = None,
) -> dict[str, str]:
    """The credential headers that may go with a request for ``url``.

    Call it only for a hop that has not left its first origin: a redirect to
    another origin drops every credential (the caller stops asking).

    :param url: the URL about to be requested.
    :param home: the first URL of the request; ``headers`` go to its origin only.
    :param headers: the host-bound (:data:`HOST_BOUND`) headers of the ``headers`` option.
    :param auth: the ``auth`` option: ``(host, port or None)`` -> ``Authorization`` value.
    :param netrc: host -> ``Authorization`` value, read from ``.netrc``.
    :param userinfo: the ``Authorization`` value of ``user:password@`` in ``url`` itself.

    >>> credentials_for("https://a.example/f", home="https://a.example/g",
    ...                 headers={"Cookie": "c=1"}, auth={}, netrc={"b.example": "Basic x"})
    {'Cookie': 'c=1'}
    >>> credentials_for("http://a.example/f", home="http://a.example/f",
    ...                 headers={"Cookie": "c=1"}, auth={}, netrc={})
    {}
    """
    if not (userinfo or auth or netrc or headers):
        return {}  # nothing to hand out (the usual case): no URL parsing per hop
    target = origin(url)
    if target is not None and target[0] == "ftp":
        return _ftp_login(target[1], target[2], auth, netrc, userinfo)
    if target is None or target[0] != "https":
        return {}
    host, port = target[1], target[2]
    found: dict[str, str] = {}
    # The most specific wins: the URL's own user info, auth for host:port, for host, .netrc.
    value = userinfo or auth.get((host, port)) or auth.get((host, None)) or netrc.get(host)
    if value is not None:
        found["Authorization"] = value
    if home is not None and origin(home) == target:
        # Given in ``headers``: the caller meant the first URL's server.
        found = {k: v for k, v in found.items() if k.lower() not in _lower(headers)}
        found.update(headers)
    return found


def _ftp_login(
    host: str, port: int, auth: AuthMap, netrc: Mapping[str, str], userinfo: Optional[str]
) -> dict[str, str]:
    """The login for an ``ftp://`` server, as the ``Authorization`` value it was given as.

    FTP has no TLS here, so the https-only rule cannot hold; the credentials
    configured for this very host (and port) are still the only ones sent,
    as curl and wget do. The most specific wins, in the same order as for
    https: the URL's own ``user:password@``, ``auth`` for host:port, for host,
    ``.netrc``, else none (anonymous). A token is no FTP login.

    >>> _ftp_login("f.example", 21, {("f.example", None): "Bearer t"}, {}, "Basic dTpw")
    {'Authorization': 'Basic dTpw'}
    """
    for value in (userinfo, auth.get((host, port)), auth.get((host, None)), netrc.get(host)):
        if value is not None and ftp_login(value) is not None:
            return {"Authorization": value}
    return {}


def ftp_login(authorization: str) -> Optional[tuple[str, str]]:
    """``(user, password)`` of a ``Basic`` ``Authorization`` value; ``None`` for anything else.

    A user or password holding a line break or NUL is refused too: FTP commands
    are lines, and such a login would smuggle in another command.

    >>> ftp_login("Basic dXNlcjpwYXNz"), ftp_login("Bearer t"), ftp_login("Basic dQ0KOnA=")
    (('user', 'pass'), None, None)
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    user, _, password = decoded.partition(":")
    if any(c in decoded for c in "\r\n\x00"):
        return None
    return user, password


def _lower(headers: Mapping[str, str]) -> set[str]:
    return {name.lower() for name in headers}


def _scheme(url: str) -> str:
    return url.partition(":")[0].lower() if ":" in url else ""


def _what(url: str, hop: str) -> str:
    if hop == "redirect":
        return f"redirect to {url} "
    if hop in ("probe", "lookup", "duplicate"):
        return f"{hop} of {url} "
    return ""
