"""Hashes others vouch for: server digest headers (RFC 9530, RFC 3230) and index listings.

A witness is checked like a pin, but it is not one: it never unlocks plain
http, https-to-http redirects or the cache's pinned paths.

>>> server_digests({"Repr-Digest": "sha-256=:" + "A" * 43 + "=:, md5=:AAAA:"}, 200)
{'sha256': '0000000000000000000000000000000000000000000000000000000000000000'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Optional, Union

from .digests import DigestValue, accepted, is_pinned, parse_digest, show_digests

__all__ = ["WANT_REPR_DIGEST", "combine", "disagreement", "server_digests", "verified_by"]

#: Sent with every download (RFC 9530): sha-256 preferred, sha-512 welcome.
WANT_REPR_DIGEST = "sha-256=10, sha-512=3"

# RFC 9530's registry: only these are strong enough to vouch for a file.
_STRUCTURED = {"sha-256": "sha256", "sha-512": "sha512"}
# RFC 3230 (and RFC 5843) names, case-insensitive; md5 and sha (sha1) are ignored.
_LEGACY = {"sha-256": "sha256", "sha-512": "sha512"}
_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_BYTES = re.compile(r":([A-Za-z0-9+/]*={0,2}):")


def server_digests(headers: Mapping[str, str], status: int, offset: int = 0) -> dict[str, str]:
    """The strong digests a response head announces for the full representation.

    Only a complete ``200`` answer from byte 0 whose body is not encoded
    (``Content-Encoding`` absent or ``identity``) qualifies: a partial body or
    an encoded one hashes to something else. ``Repr-Digest`` (and, for such
    an answer, the equal ``Content-Digest``) wins over the legacy ``Digest``.
    A malformed or contradictory header is not a witness.

    :param headers: the response headers (case-insensitive mapping).
    :param status: the response status.
    :param offset: the first byte of the body within the file.
    """
    if status != 200 or offset:
        return {}
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        return {}
    for name in ("Repr-Digest", "Content-Digest"):
        value = headers.get(name)
        if value:
            found = _structured(value)
            if found:
                return found
    value = headers.get("Digest")
    return _legacy(value) if value else {}


def _structured(value: str) -> dict[str, str]:
    """An RFC 8941 dictionary of byte sequences: ``sha-256=:<base64>:, sha-512=:...:``."""
    found: dict[str, str] = {}
    for member in value.split(","):
        key, sep, item = member.strip().partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            return {}  # not a dictionary: ignore the whole field, as RFC 8941 says
        match = _BYTES.match(item.strip())
        if match is None:
            return {}
        name = _STRUCTURED.get(key)
        if name is not None and not _add(found, name, match.group(1)):
            return {}
    return found


def _legacy(value: str) -> dict[str, str]:
    """RFC 3230's ``Digest: SHA-256=<base64>, MD5=<base64>``."""
    found: dict[str, str] = {}
    for member in value.split(","):
        key, sep, item = member.strip().partition("=")
        name = _LEGACY.get(key.strip().lower())
        if name is not None and sep and not _add(found, name, item.strip()):
            return {}
    return found


def _add(found: dict[str, str], name: str, value: str) -> bool:
    """Record one digest; False when it is malformed or contradicts an earlier one."""
    try:
        digest = parse_digest(name, value)
    except ValueError:
        return False
    if found.get(name, digest) != digest:
        return False
    found[name] = digest
    return True


def combine(
    pins: Mapping[str, DigestValue], witness: Mapping[str, DigestValue]
) -> Union[dict[str, DigestValue], str]:
    """Pins and one witness together, or the sentence saying how they disagree.

    Every algorithm of either must match; where both name one, the witness's
    digest must be among the pinned ones.

    >>> combine({"sha256": {"a", "b"}}, {"sha256": "b"})
    {'sha256': 'b'}
    >>> combine({"sha256": "a"}, {"sha256": "b"})
    'sha256 b is listed, but a is pinned'
    """
    result = dict(pins)
    for name, value in witness.items():
        listed = accepted(value)
        pinned = pins.get(name)
        if pinned is None:
            result[name] = value
            continue
        both = accepted(pinned) & listed
        if not both:
            return f"{name} {show_digests(value)} is listed, but {show_digests(pinned)} is pinned"
        result[name] = next(iter(both)) if len(both) == 1 else both
    return result


def disagreement(
    expected: Mapping[str, frozenset[str]], announced: Mapping[str, str]
) -> Optional[str]:
    """How a server's digests contradict what is already expected, or ``None``."""
    for name, digest in announced.items():
        allowed = expected.get(name)
        if allowed is not None and digest not in allowed:
            return f"{name} {digest}, but {show_digests(allowed)} is expected"
    return None


def verified_by(
    pinned: Optional[str], origin: str, listed: Mapping[str, object], server: bool
) -> Optional[str]:
    """Whose hash vouched for a download: ``"pin"``, ``"index"``, ``"metalink"``, ``"server"``.

    :param pinned: who pinned a strong hash (``"pin"``, or ``"metalink"`` for a
        request read from one), ``None`` when nothing strong was pinned.
    :param origin: who listed the digests the source that served the bytes came
        with (its origin, or ``"server"`` for a duplicate a digest header vouched for).
    :param listed: the digests that source came with (an index's, Metalink's, server's).
    :param server: a strong server digest was checked.
    """

    if pinned:
        return pinned
    if is_pinned(listed):
        return origin if origin in ("metalink", "server") else "index"
    return "server" if server else None
