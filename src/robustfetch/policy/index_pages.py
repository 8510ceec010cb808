"""Simple indexes and find-links pages, read: project names, PEP 503 HTML and PEP 691 JSON links.

>>> project_candidates("python-dateutil-2.8.2.tar.gz")
['python-dateutil']
>>> page = '<a href="../../f/six-1.16.0.tar.gz#sha256=ab">six-1.16.0.tar.gz</a>'
>>> [(link.url, link.filename) for link in html_links(page, "https://i.example/simple/six/")]
[('https://i.example/f/six-1.16.0.tar.gz', 'six-1.16.0.tar.gz')]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import quote, unquote, urljoin, urlsplit

from .access import remote_link_allowed
from .answers import load_json
from .digests import DigestValue, accepted, normalise_algorithm, parse_digest, show_digests
from .pypi import normalise_name, sdist_key
from .urls import strip_fragment

__all__ = [
    "JSON_ACCEPT",
    "Link",
    "disagreement",
    "find_link",
    "html_links",
    "is_json",
    "json_links",
    "link_refused",
    "listed_hashes",
    "page_links",
    "project_candidates",
    "project_page_url",
]

#: What a client that reads PEP 691 JSON (and PEP 503 HTML otherwise) asks for.
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_JSON_TYPES = ("application/vnd.pypi.simple.v1+json", "application/json")

_SDIST_EXTENSIONS = (".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".zip", ".tar")
# A wheel: name-version(-build)?-python-abi-platform.whl (PEP 427, PEP 491).
_WHEEL = re.compile(r"(?P<name>[^-]+)-[^-]+(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl", re.IGNORECASE)
_VERSION_START = re.compile(r"v?\d")
_MAX_LINKS = 200_000  # a page listing more is not a simple index we can trust to read


@dataclass(frozen=True)
class Link:
    """One file a page links to.

    :param url: absolute, without its fragment.
    :param filename: the last path segment, percent-decoded.
    :param hashes: algorithm -> hex digest the page lists for it.
    """

    url: str
    filename: str
    hashes: Mapping[str, str] = field(default_factory=dict)


def project_candidates(filename: str) -> list[str]:
    """PEP 503 names of the project ``filename`` (an sdist or wheel) belongs to, best first.

    A wheel names its project exactly. An sdist is ``name-version.ext``; legacy
    names hold dashes too, so every split before a plausible version is a
    candidate, the longest name first. Any other file gives ``[]``.

    >>> project_candidates("zope.interface-5.4.0-cp39-cp39-manylinux1_x86_64.whl")
    ['zope-interface']
    >>> project_candidates("foo-2-bar-1.0.tar.gz")
    ['foo-2-bar', 'foo']
    >>> project_candidates("README.txt")
    []
    """
    wheel = _WHEEL.fullmatch(filename)
    if wheel is not None:
        return [normalise_name(wheel["name"])]
    lower = filename.lower()
    extension = next((e for e in _SDIST_EXTENSIONS if lower.endswith(e)), None)
    if extension is None:
        return []
    stem = filename[: -len(extension)]
    words = stem.split("-")
    names = []
    for cut in range(len(words) - 1, 0, -1):
        if _VERSION_START.match(words[cut]):
            name = normalise_name("-".join(words[:cut]))
            if name and name not in names:
                names.append(name)
    return names


def project_page_url(index_url: str, project: str) -> str:
    """The page of ``project`` (a normalised name) in the simple index at ``index_url``.

    >>> project_page_url("https://pypi.org/simple", "six")
    'https://pypi.org/simple/six/'
    """
    parts = urlsplit(index_url)
    path = parts.path.rstrip("/") + "/" + quote(project) + "/"
    return parts._replace(path=path, fragment="").geturl()


def is_json(content_type: str, body: bytes) -> bool:
    """Whether a page is PEP 691 JSON: by its type, else by its first byte."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES:
        return True
    if media:
        return False
    return body.lstrip()[:1] == b"{"


def page_links(body: bytes, content_type: str, page_url: str) -> list[Link]:
    """The links of an index or find-links page (JSON or HTML); ``ValueError`` if unreadable."""
    if is_json(content_type, body):
        return json_links(load_json(body), page_url)
    return html_links(body.decode(_charset(content_type), "replace"), page_url)


def json_links(document: Any, page_url: str) -> list[Link]:
    """The files of a PEP 691 project page; ``ValueError`` when it is not that shape.

    >>> doc = {"meta": {"api-version": "1.0"}, "name": "six",
    ...        "files": [{"filename": "six-1.tar.gz", "url": "six-1.tar.gz",
    ...                   "hashes": {"sha256": "AB"}}]}
    >>> json_links(doc, "https://i.example/simple/six/")
    [Link(url='https://i.example/simple/six/six-1.tar.gz', filename='six-1.tar.gz', \
hashes={'sha256': 'ab'})]
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("files"), list):
        raise ValueError("not a PEP 691 project page (no 'files' list)")
    links = []
    for entry in document["files"][:_MAX_LINKS]:
        if not isinstance(entry, Mapping):
            continue
        url, name = entry.get("url"), entry.get("filename")
        if not isinstance(url, str) or not isinstance(name, str):
            continue
        hashes = entry.get("hashes")
        listed = _clean_hashes(hashes if isinstance(hashes, Mapping) else {})
        absolute = urljoin(page_url, url)
        links.append(Link(strip_fragment(absolute), name, listed or _fragment_hashes(absolute)))
    return links


def html_links(text: str, page_url: str) -> list[Link]:
    """The ``<a href>`` links of a PEP 503 page or a directory listing, absolute.

    ``<base href>`` is honoured; the file name is the link's last path segment,
    and a ``#sha256=<hex>`` style fragment gives its hashes.
    """
    # html.parser (and html.entities) load on the first page, not with every fetch.
    from .anchors import anchors

    hrefs, base_href = anchors(text)
    base = urljoin(page_url, base_href) if base_href else page_url
    links = []
    for href in hrefs[:_MAX_LINKS]:
        absolute = urljoin(base, href.strip())
        path = urlsplit(absolute).path
        if not path or path.endswith("/"):
            continue  # a folder (a directory listing's sub-folders and parent)
        name = unquote(path.rsplit("/", 1)[-1])
        links.append(Link(strip_fragment(absolute), name, _fragment_hashes(absolute)))
    return links


def find_link(links: list[Link], filename: str) -> Optional[Link]:
    """The link to ``filename``: the same name, else the same sdist in another spelling.

    >>> find_link([Link("https://h/Zope.Interface-5.0.tar.gz", "Zope.Interface-5.0.tar.gz")],
    ...           "zope_interface-5.0.tar.gz").filename
    'Zope.Interface-5.0.tar.gz'
    """
    for link in links:
        if link.filename == filename:
            return link
    wanted = sdist_key(filename)
    if not wanted[1]:
        return None
    for link in links:
        if sdist_key(link.filename) == wanted:
            return link
    return None


def _fragment_hashes(url: str) -> dict[str, str]:
    """``#sha256=<hex>`` (PEP 503) and friends; names as hashlib spells them."""
    found = {}
    for part in urlsplit(url).fragment.split("&"):
        key, sep, value = part.partition("=")
        if sep and re.fullmatch(r"[A-Za-z0-9_-]+", key) and re.fullmatch(r"[0-9a-fA-F]+", value):
            found[key.lower().replace("-", "_")] = value.lower()
    return {k: v for k, v in found.items() if k.startswith(("sha", "blake2", "md5"))}


def _clean_hashes(hashes: Mapping[Any, Any]) -> dict[str, str]:
    return {
        str(k).lower(): v.lower()
        for k, v in hashes.items()
        if isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]+", v)
    }


def _charset(content_type: str) -> str:
    match = re.search(r"charset=[\"']?([A-Za-z0-9_.:-]+)", content_type)
    if match is not None:
        import codecs

        try:
            return codecs.lookup(match[1]).name
        except LookupError:
            pass
    return "utf-8"


def listed_hashes(hashes: Mapping[str, str]) -> dict[str, str]:
    """The digests a page lists that robustfetch can check, by hashlib name; others dropped.

    >>> listed_hashes({"SHA256": "AB" * 32, "blake3": "00", "sha512": "short"})
    {'sha256': 'abababababababababababababababababababababababababababababababab'}
    """
    usable = {}
    for algorithm, value in hashes.items():
        try:
            name = normalise_algorithm(algorithm)
            usable[name] = parse_digest(name, value)
        except ValueError:
            continue
    return usable


def disagreement(listed: Mapping[str, str], expected: Mapping[str, DigestValue]) -> Optional[str]:
    """Why ``listed`` (a witness) contradicts ``expected`` (the pin), or ``None`` if it does not.

    >>> disagreement({"sha256": "aa"}, {"sha256": "bb", "md5": "cc"})
    'lists sha256 aa, but bb is pinned'
    """
    for algorithm, value in listed.items():
        pinned = expected.get(algorithm)
        if pinned is not None and value not in accepted(pinned):
            return f"lists {algorithm} {value}, but {show_digests(pinned)} is pinned"
    return None


def link_refused(url: str, pinned: bool, allow_http: bool, local_page: bool) -> Optional[str]:
    """Why a link found on a page may not be followed, or ``None`` when it may.

    A remote page may lead to https, or to plain http only where a plain-http
    source is allowed (a pinned hash or ``allow_http``); never to a local file.

    >>> link_refused("file:///etc/passwd", True, True, local_page=False)
    'a remote page may not point at a local file (file:///etc/passwd)'
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file" and local_page:
        return None
    if remote_link_allowed(url, pinned, allow_http):  # the one rule for remote links
        return None
    if scheme == "file":
        return f"a remote page may not point at a local file ({url})"
    if scheme in ("http", "ftp"):
        return f"plain {scheme} link {url} refused: pin a sha256 or pass allow_http=True"
    if scheme == "https":
        return f"link without a usable host refused: {url}"
    return f"link with unsupported scheme {scheme!r} refused: {url}"
