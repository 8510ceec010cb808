"""Metalink 4 documents (RFC 5854) and ``Link: rel=duplicate`` headers (RFC 6249), read safely.

>>> doc = '''<?xml version="1.0" encoding="UTF-8"?>
... <metalink xmlns="urn:ietf:params:xml:ns:metalink">
...   <file name="f.tgz"><size>3</size>
...     <hash type="sha-256">ABCD</hash>
...     <url priority="2">https://b.example/f.tgz</url>
...     <url priority="1">https://a.example/f.tgz</url>
...   </file>
... </metalink>'''
>>> [(f.name, f.size, f.hashes, f.urls) for f in parse_metalink(doc)]
[('f.tgz', 3, {'sha256': 'abcd'}, ['https://a.example/f.tgz', 'https://b.example/f.tgz'])]
>>> duplicate_links('<https://m.example/f.tgz>; rel=duplicate; pri=1, <https://x/>; rel=x')
['https://m.example/f.tgz']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union
from urllib.parse import urljoin

from .headers import parse_digits

if TYPE_CHECKING:
    from xml.etree import ElementTree

__all__ = ["MAX_DOCUMENT", "MetalinkFile", "duplicate_links", "parse_metalink"]

#: Larger documents are refused before parsing (a Metalink lists files, not their bytes).
MAX_DOCUMENT = 16 << 20

_NAMESPACES = ("urn:ietf:params:xml:ns:metalink", "http://www.metalinker.org/", "")
# A declaration a document could use to define entities or reach other files.
_MARKUP_DECLARATION = re.compile(r"<!(?!--|\[CDATA\[)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_NO_PRIORITY = 1 << 30


@dataclass(frozen=True)
class MetalinkFile:
    """One ``<file>`` of a Metalink document.

    :param name: a bare file name (no folders).
    :param urls: best first (lower ``priority`` first, then document order).
    :param hashes: hashlib names (``sha256``) -> lower-case hex digests.
    """

    name: str
    urls: list[str]
    size: Optional[int] = None
    hashes: dict[str, str] = field(default_factory=dict)


def parse_metalink(document: Union[str, bytes]) -> list[MetalinkFile]:
    """The files a Metalink 4 document lists; ``ValueError`` for anything else.

    Documents holding a DTD, entity or any other ``<!`` declaration are refused
    before parsing: nothing in a document may expand or fetch anything.
    """
    text = _decode(document)
    if _MARKUP_DECLARATION.search(text):
        raise ValueError("Metalink document holds a <!DOCTYPE> or <!ENTITY> declaration: refused")
    text = _XML_DECLARATION.sub("", text, count=1)
    from xml.etree import ElementTree  # only Metalink readers pay for the XML parser

    try:
        root = ElementTree.fromstring(text)  # no DTD can reach the parser (above)
    except ElementTree.ParseError as exc:
        raise ValueError(f"not a readable Metalink document: {exc}") from None
    namespace = _namespace(root.tag)
    if _local(root.tag) != "metalink" or namespace not in _NAMESPACES:
        raise ValueError(f"not a Metalink document: the root element is {root.tag!r}")
    prefix = f"{{{namespace}}}" if namespace else ""
    files = []
    for index, element in enumerate(root.iter(f"{prefix}file")):
        files.append(_file(element, prefix, index))
    if not files:
        raise ValueError("the Metalink document lists no <file>")
    return files


def _file(element: ElementTree.Element, prefix: str, index: int) -> MetalinkFile:
    name = _bare_name(element.get("name") or "", index)
    size = None
    size_text = (element.findtext(f"{prefix}size") or "").strip()
    if size_text:
        size = parse_digits(size_text)
        if size is None:
            raise ValueError(f"file {name!r}: <size> {size_text!r} is not a number of bytes")
    hashes: dict[str, str] = {}
    for hash_element in element.findall(f"{prefix}hash"):
        algorithm = _algorithm(hash_element.get("type") or "")
        value = (hash_element.text or "").strip().lower()
        if algorithm is None or not re.fullmatch(r"[0-9a-f]+", value):
            continue  # an algorithm we cannot check says nothing
        hashes[algorithm] = value
    ranked = []
    for position, url_element in enumerate(element.findall(f"{prefix}url")):
        url = (url_element.text or "").strip()
        if not url:
            continue
        priority = (url_element.get("priority") or "").strip()
        rank = parse_digits(priority)
        if rank is None:
            rank = _NO_PRIORITY
        ranked.append((rank, position, url))
    urls = [url for _, _, url in sorted(ranked)]
    if not urls:
        raise ValueError(f"file {name!r} lists no <url>")
    return MetalinkFile(name, urls, size, hashes)


def _algorithm(label: str) -> Optional[str]:
    """IANA hash names (``sha-256``) as hashlib spells them (``sha256``); ``None`` if unknown."""
    name = label.strip().lower().replace("-", "")
    known = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
    return name if name in known else None


def _bare_name(name: str, index: int) -> str:
    """A file name from a document: never a folder, never ``..``."""
    bare = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if bare in ("", ".", "..") or "\x00" in bare or len(bare.encode()) > 255:
        raise ValueError(f"file {index + 1} of the Metalink document has no usable name: {name!r}")
    return bare


def _decode(document: Union[str, bytes]) -> str:
    if len(document) > MAX_DOCUMENT:
        raise ValueError(f"Metalink document larger than {MAX_DOCUMENT} bytes: refused")
    if isinstance(document, str):
        return document.lstrip("\ufeff")
    utf16 = document.startswith((b"\xff\xfe", b"\xfe\xff"))
    encoding = "utf-16" if utf16 else "utf-8-sig"
    try:
        return document.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"Metalink document is not UTF-8 or UTF-16: {exc}") from None


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_LINK_VALUE = re.compile(r"\s*<([^>]*)>\s*((?:;\s*[^;,]*)*)")


def duplicate_links(header: str, base: str = "") -> list[str]:
    """The targets of ``rel=duplicate`` entries of a ``Link`` header, resolved against ``base``."""
    found = []
    position = 0
    while position < len(header):
        match = _LINK_VALUE.match(header, position)
        if match is None:
            break
        position = match.end()
        while position < len(header) and header[position] in ", ":
            position += 1
        params = {}
        for param in match[2].split(";"):
            key, _, value = param.partition("=")
            params[key.strip().lower()] = value.strip().strip('"').lower()
        if "duplicate" in params.get("rel", "").split():
            found.append(urljoin(base, match[1].strip()) if base else match[1].strip())
    return found
