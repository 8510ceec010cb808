"""Candidate URLs for one URL: built-in legacy-host rules (PyPI) and user rewrite/allow/block rules.

Built-in rules (:func:`rewrite_url`), for ``http``/``https`` URLs only:

* ``pypi.io``, ``pypi.python.org``, ``pypi.org`` and the single-letter mirror names
  ``[a-z].pypi.python.org`` retired by PEP 449, with a path under ``/packages/``, and
  ``files.pythonhosted.org`` over plain ``http``: ``https://files.pythonhosted.org`` first;
* any other path on ``pypi.io``, ``pypi.python.org`` or ``[a-z].pypi.python.org``, and
  ``http://pypi.org``: ``https://pypi.org`` first.

Everything after the host (path, query, ``#sha256=`` fragment) is kept byte for byte; the
original URL comes last. Hosts compare case-insensitively and IDNA-normalised, a trailing dot
and the scheme's default port are ignored; a URL with another port or with user info is left
alone, as is every other host (``www.pypi.org``, ``last.pypi.python.org``, ``notpypi.io``).

User rules, one per line, in the spirit of Bazel's ``--downloader_config`` (but keeping the
original URL, see below):

``rewrite REGEX REPLACEMENT``
    ``REGEX`` must match the whole URL without its scheme and fragment (``host[:port]/path?query``,
    as written: add ``(?i)`` to ignore case). ``$1``, ``${1}`` in ``REPLACEMENT`` stand for a
    group (``$0`` for the whole match), ``$$`` for a ``$``. A replacement without ``http://``,
    ``https://`` or ``file://`` gets ``https://`` (Bazel keeps the original scheme). The
    original fragment is appended unless the replacement has one.
``allow HOST`` / ``block HOST``
    ``HOST`` covers itself and its subdomains; ``*`` covers every host. An ``allow`` overrides
    every ``block``.

Blank lines and lines starting with ``#`` are ignored. Rewrites come before the URL, not
instead of it (unlike Bazel): the results of the matching rules, in rule order, are tried
first, then the original URL, as the contract's order of sources says ("its repaired forms
first (legacy-host and user rules), then itself"); each goes through the built-in rules.
:meth:`RuleSet.candidates` does not apply allow/block: the caller asks
:meth:`RuleSet.blocked_by` about each candidate, so a blocked source (the original URL
included) is reported as such.

>>> rewrite_url("http://pypi.python.org/packages/source/s/six/six-1.16.0.tar.gz")[0]
'https://files.pythonhosted.org/packages/source/s/six/six-1.16.0.tar.gz'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from .urls import SCHEMES, default_port, normalise_host

__all__ = ["LIST_WHERE", "Rule", "RuleSet", "parse_rules", "rewrite_url"]

FILES_HOST = "files.pythonhosted.org"
PYPI_HOST = "pypi.org"
_RETIRED = frozenset({"pypi.io", "pypi.python.org"})
_MIRROR = re.compile(r"[a-z]\.pypi\.python\.org")
_FIELDS = {"rewrite": 2, "allow": 1, "block": 1}
_REFERENCE = re.compile(r"\$(\$|\d+|\{\d+\})?")
_SCHEMES_KEPT = ("http://", "https://", "file://")

LIST_WHERE = "rules"
"""The default ``where`` of :func:`parse_rules`: locations read ``rules[<index>]``."""


def rewrite_url(url: str) -> list[str]:
    """Candidates for ``url`` under the built-in legacy-host rules, best first.

    :param url: any URL; one no rule applies to comes back alone.
    :returns: the rewritten URL, then ``url`` itself; or ``[url]``.

    >>> rewrite_url("https://pypi.io/packages/source/s/six/six-1.16.0.tar.gz#sha256=00")
    ['https://files.pythonhosted.org/packages/source/s/six/six-1.16.0.tar.gz#sha256=00', \
'https://pypi.io/packages/source/s/six/six-1.16.0.tar.gz#sha256=00']
    >>> rewrite_url("https://B.pypi.python.org:443/simple/six/")
    ['https://pypi.org/simple/six/', 'https://B.pypi.python.org:443/simple/six/']
    >>> rewrite_url("https://files.pythonhosted.org/packages/x")
    ['https://files.pythonhosted.org/packages/x']
    """
    first = _builtin(url)
    return [url] if first is None or first == url else [first, url]


def _builtin(url: str) -> Optional[str]:
    """The URL the built-in rules try before ``url``, or ``None`` if none applies."""
    lowered = url.lower()
    if url.isascii() and "pypi" not in lowered and "pythonhosted" not in lowered:
        return None  # no legacy host (only non-ASCII hosts can map to one by IDNA): no parse
    try:
        parts = urlsplit(url)
        port = parts.port
        host = _host_key(parts.hostname or "")
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    prefix = f"{parts.scheme}://{parts.netloc}"
    if (
        scheme not in SCHEMES
        or port not in (None, default_port(scheme))
        or parts.username is not None
        or url[: len(prefix)].lower() != prefix.lower()  # urlsplit dropped characters
    ):
        return None
    retired = host in _RETIRED or _MIRROR.fullmatch(host) is not None
    packages = (retired or host == PYPI_HOST) and parts.path.startswith("/packages/")
    if packages or (host == FILES_HOST and scheme == "http"):
        target = FILES_HOST
    elif retired or (host == PYPI_HOST and scheme == "http"):
        target = PYPI_HOST
    else:
        return None
    return f"https://{target}{url[len(prefix) :]}"


@dataclass(frozen=True)
class Rule:
    """One user rule; constructing it checks it (``ValueError`` if malformed).

    :param kind: ``"rewrite"``, ``"allow"`` or ``"block"``.
    :param pattern: the regular expression of a rewrite; the host (or ``"*"``) of allow/block.
    :param replacement: the replacement of a rewrite; ``None`` otherwise.
    :param where: where the rule was written (``"config.txt:3"``, ``"rules[2]"``), for messages.

    >>> print(Rule("block", "example.com", where="config.txt:3"))
    block example.com (config.txt:3)
    """

    kind: str
    pattern: str
    replacement: Optional[str] = None
    where: str = ""

    def __post_init__(self) -> None:
        problem = _problem(self.kind, self.pattern, self.replacement)
        if problem:
            raise ValueError(_located(self.where, problem, self.line()))

    def line(self) -> str:
        """The rule as a line of a rule file."""
        return " ".join(f for f in (self.kind, self.pattern, self.replacement) if f is not None)

    def __str__(self) -> str:
        return f"{self.line()} ({self.where})" if self.where else self.line()


def parse_rules(lines: Iterable[str], where: str = LIST_WHERE) -> list[Rule]:
    """Parse rule lines (from a rule file, or the ``rules=[...]`` option).

    A location in messages (and in :attr:`Rule.where`) reads ``<where>:<line>``, lines counted
    from 1, as for a file; with the default ``where`` (:data:`LIST_WHERE`), it reads
    ``rules[<index>]``, counted from 0 as in the Python list. A string is split into lines.

    :param lines: the lines; blank ones and ``#`` comments are skipped.
    :param where: the file name, or :data:`LIST_WHERE` for a list of rules.
    :raises ValueError: ``"<location>: <what is wrong>: <the line>"`` for a malformed line.

    >>> [str(r) for r in parse_rules(["# mirror", "rewrite (.*) m.example/$1", "block *"])]
    ['rewrite (.*) m.example/$1 (rules[1])', 'block * (rules[2])']
    >>> parse_rules(["", "rewrite a/(.*) $2"], "dl.cfg")
    Traceback (most recent call last):
    ...
    ValueError: dl.cfg:2: replacement refers to group 2 but the pattern has 1: rewrite a/(.*) $2
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    rules: list[Rule] = []
    for index, line in enumerate(lines):
        loc = f"{where}[{index}]" if where == LIST_WHERE else f"{where}:{index + 1}"
        if not isinstance(line, str):
            raise ValueError(f"{loc}: a rule must be a string, not {type(line).__name__}: {line!r}")
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        kind, args = fields[0], fields[1:]
        count = _FIELDS.get(kind)
        if count is None:
            problem: Optional[str] = f"unknown directive {kind!r} (use rewrite, allow or block)"
        elif len(args) != count:
            wanted = "a regular expression and a replacement" if count == 2 else "one host name"
            problem = f"{kind} takes {wanted}, not {len(args)} fields"
        else:
            problem = _problem(kind, args[0], args[1] if count == 2 else None)
        if problem:
            raise ValueError(_located(loc, problem, line.strip()))
        rules.append(Rule(kind, args[0], args[1] if count == 2 else None, loc))
    return rules


@dataclass(frozen=True)
class RuleSet:
    """User rules plus the built-in ones.

    :param rules: the user rules, in the order written.
    :param builtin: also apply the built-in legacy-host rules (:func:`rewrite_url`).
    """

    rules: tuple[Rule, ...] = ()
    builtin: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))

    def candidates(self, url: str) -> list[str]:
        """The URLs to try for ``url``, best first, without duplicates (compared as strings).

        The user rules' rewrites, then ``url`` itself, each after its built-in repairs.

        :param url: the URL as given, fragment included.

        >>> rs = RuleSet(tuple(parse_rules(["rewrite pypi.io/(.*) m.example/$1"])))
        >>> rs.candidates("https://pypi.io/packages/a.tgz")
        ['https://m.example/packages/a.tgz', 'https://files.pythonhosted.org/packages/a.tgz', \
'https://pypi.io/packages/a.tgz']
        >>> rs.candidates("https://example.org/a.tgz")
        ['https://example.org/a.tgz']
        """
        found = [u for rule in self.rules if (u := _apply(rule, url)) is not None] + [url]
        result: list[str] = []
        for candidate in found:
            for u in rewrite_url(candidate) if self.builtin else [candidate]:
                if u not in result:
                    result.append(u)
        return result

    def blocked_by(self, url: str) -> Optional[Rule]:
        """The first ``block`` rule covering the host of ``url``, unless an ``allow`` covers it.

        :param url: a candidate URL.

        >>> rs = RuleSet(tuple(parse_rules(["block *", "allow Example.ORG"])))
        >>> print(rs.blocked_by("https://dl.example.org/f"), rs.blocked_by("https://x.example/f"))
        None block * (rules[0])
        """
        if not any(r.kind == "block" for r in self.rules):
            return None  # the usual case, and once per request hop: no URL parsing
        try:
            hostname = urlsplit(url).hostname or ""
        except ValueError:  # a malformed [IPv6] host
            hostname = ""
        try:
            host = _host_key(hostname)
        except ValueError:
            host = hostname.rstrip(".")
        if any(r.kind == "allow" and _covers(r.pattern, host) for r in self.rules):
            return None
        return next((r for r in self.rules if r.kind == "block" and _covers(r.pattern, host)), None)


def _apply(rule: Rule, url: str) -> Optional[str]:
    """The URL ``rule`` rewrites ``url`` to, or ``None`` if it does not match."""
    if rule.kind != "rewrite" or rule.replacement is None:
        return None
    _scheme, sep, rest = url.partition("://")
    rest, hash_, fragment = (rest if sep else url).partition("#")
    match = re.fullmatch(rule.pattern, rest)
    if match is None:
        return None
    result = _substitute(rule.replacement, match.re.groups, match)
    if not result.lower().startswith(_SCHEMES_KEPT):
        result = "https://" + result
    return result + hash_ + fragment if "#" not in result else result


def _substitute(replacement: str, groups: int, match: Optional[re.Match[str]] = None) -> str:
    """``replacement`` with its ``$`` references expanded (checked only, if ``match`` is None)."""
    out: list[str] = []
    pos = 0
    for ref in _REFERENCE.finditer(replacement):
        out.append(replacement[pos : ref.start()])
        pos = ref.end()
        token = ref.group(1)
        if token is None:
            raise ValueError("a `$` must be followed by a group number, `{number}` or `$`")
        if token == "$":
            out.append("$")
            continue
        number = int(token.strip("{}"))
        if number > groups:
            raise ValueError(f"replacement refers to group {number} but the pattern has {groups}")
        out.append((match.group(number) or "") if match else "")
    out.append(replacement[pos:])
    return "".join(out)


def _problem(kind: str, pattern: str, replacement: Optional[str]) -> Optional[str]:
    """What is wrong with a rule, or ``None``."""
    if kind not in _FIELDS:
        return f"unknown directive {kind!r} (use rewrite, allow or block)"
    if kind == "rewrite":
        if replacement is None:
            return "rewrite takes a regular expression and a replacement"
        try:
            _substitute(replacement, re.compile(pattern).groups)
        except re.error as exc:
            return f"invalid regular expression: {exc}"
        except ValueError as exc:
            return str(exc)
        return None
    if replacement is not None:
        return f"{kind} takes one host name"
    if pattern == "*":
        return None
    if "/" in pattern or "@" in pattern:
        return f"{kind} takes a host name, not a URL"
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        return f"write {pattern[2:]!r} instead: a domain covers its subdomains"
    if "*" in pattern:
        return f"the only wildcard is {kind} *"
    if pattern.count(":") == 1 or (pattern.startswith("[") and "]:" in pattern):
        return f"{kind} takes a host name without a port"
    try:
        normalise_host(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _covers(pattern: str, host: str) -> bool:
    """Whether a host pattern of allow/block covers ``host`` (already normalised)."""
    if pattern == "*":
        return True
    domain = _host_key(pattern)
    return host == domain or host.endswith("." + domain)


def _host_key(host: str) -> str:
    """``normalise_host``, then trailing dots stripped (IDNA can turn ``a\u3002`` into ``a.``)."""
    return normalise_host(host).rstrip(".")


def _located(where: str, problem: str, line: str) -> str:
    return f"{where}: {problem}: {line}" if where else f"{problem}: {line}"
