"""PyPI knowledge: the sdist URL layout, name normalisation (PEP 503/625), JSON API answers.

>>> ref = sdist_ref("https://files.pythonhosted.org/packages/source/S/six/six-1.16.0.tar.gz")
>>> ref.bucket_fixed_url()
'https://files.pythonhosted.org/packages/source/s/six/six-1.16.0.tar.gz'
>>> json_api_url("Zope.Interface")
'https://pypi.org/pypi/zope-interface/json'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote, unquote, urlsplit

__all__ = [
    "SdistRef",
    "find_file",
    "json_api_url",
    "normalise_name",
    "sdist_key",
    "sdist_ref",
]

FILES_HOST = "files.pythonhosted.org"
_SOURCE_PATH = re.compile(r"/packages/source/(?P<letter>[^/]+)/(?P<project>[^/]+)/(?P<file>[^/]+)")
# An sdist is <name>-<version><ext>; the version starts at the last "-<digit>".
_SDIST_NAME = re.compile(r"(?P<name>.+?)-(?P<rest>\d[^-]*(?:\.tar\.gz|\.zip|\.tar\.bz2|\.tgz))$")


@dataclass(frozen=True)
class SdistRef:
    """A ``files.pythonhosted.org/packages/source/<letter>/<project>/<file>`` URL, split."""

    url: str
    letter: str
    project: str
    filename: str

    def bucket_fixed_url(self) -> Optional[str]:
        """The same URL with the bucket letter PyPI uses (the project's first character).

        ``None`` when the letter is already right.
        """
        if not self.project or self.letter == self.project[0]:
            return None
        parts = urlsplit(self.url)
        path = f"/packages/source/{quote(self.project[0])}/{quote(self.project)}/"
        return f"https://{FILES_HOST}{path}{quote(self.filename)}" + (
            f"?{parts.query}" if parts.query else ""
        )


def sdist_ref(url: str) -> Optional[SdistRef]:
    """Split a PyPI source-distribution URL, or ``None`` for any other URL."""
    parts = urlsplit(url)
    if (parts.hostname or "").lower().rstrip(".") != FILES_HOST:
        return None
    match = _SOURCE_PATH.fullmatch(parts.path)
    if match is None:
        return None
    return SdistRef(
        url, unquote(match["letter"]), unquote(match["project"]), unquote(match["file"])
    )


def normalise_name(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become one ``-``, lower case.

    >>> normalise_name("Zope__Interface.x")
    'zope-interface-x'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def json_api_url(project: str) -> str:
    """PyPI's JSON API for ``project``."""
    return f"https://pypi.org/pypi/{quote(normalise_name(project))}/json"


def sdist_key(filename: str) -> tuple[str, str]:
    """What two spellings of one sdist share: the PEP 503 name and the rest, lower case.

    >>> sdist_key("Zope.Interface-5.0.tar.gz") == sdist_key("zope_interface-5.0.tar.gz")
    True
    """
    match = _SDIST_NAME.fullmatch(filename)
    if match is None:
        return filename.lower(), ""
    return normalise_name(match["name"]), match["rest"].lower()


def find_file(document: Any, filename: str) -> Optional[tuple[str, Optional[str]]]:
    """``(url, sha256)`` of ``filename``, in any spelling of its name, in a JSON API answer.

    Looks in ``urls`` (the latest release) and in every release; ``None`` when
    absent or when ``document`` is not the shape PyPI serves. The first
    ``https`` entry wins; a plain one is returned only when there is no other,
    so that the caller can say why it is not used.
    """
    if not isinstance(document, Mapping):
        return None
    files: list[Any] = list(document.get("urls") or [])
    releases = document.get("releases")
    if isinstance(releases, Mapping):
        for entries in releases.values():
            if isinstance(entries, list):
                files.extend(entries)
    wanted = sdist_key(filename)
    fallback: Optional[tuple[str, Optional[str]]] = None
    for entry in files:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
            continue
        if sdist_key(str(entry.get("filename", ""))) == wanted:
            digests = entry.get("digests")
            sha256 = digests.get("sha256") if isinstance(digests, Mapping) else None
            found = entry["url"], sha256 if isinstance(sha256, str) else None
            if found[0].lower().startswith("https://"):
                return found
            fallback = fallback or found
    return fallback
