"""Expected hashes (parsing, merging, checking) and the streaming verifier.

>>> parse_digest("sha256", "SHA256:" + "AB" * 32) == "ab" * 32
True
"""

from __future__ import annotations

import functools
import hashlib
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Optional
from urllib.parse import urlsplit

__all__ = [
    "WEAK_ALGORITHMS",
    "Verifier",
    "WeakHashWarning",
    "expected_hashes",
    "is_pinned",
    "parse_digest",
]

#: Algorithms that cannot protect a download against a hostile source.
WEAK_ALGORITHMS = frozenset({"md5", "sha1", "md5-sha1"})

_HEX = re.compile(r"[0-9a-f]+")


class WeakHashWarning(UserWarning):
    """Only md5 or sha1 was given: the bytes are checked but not protected."""


def parse_digest(algorithm: str, value: str) -> str:
    """Return ``value`` as lower-case hex for ``algorithm``, or raise ``ValueError``.

    ``value`` may carry an ``"<algorithm>:"`` prefix.

    :param algorithm: a hashlib algorithm name.
    :param value: the digest as the user wrote it.
    """
    algorithm = normalise_algorithm(algorithm)
    if not isinstance(value, str):
        raise ValueError(f"{algorithm} digest must be a string, not {type(value).__name__}")
    text = value.strip().lower()
    prefix = algorithm + ":"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    size = _hex_length(algorithm)
    if len(text) != size or not _HEX.fullmatch(text):
        raise ValueError(
            f"malformed {algorithm} digest {value!r}: expected {size} hexadecimal characters"
        )
    return text


@functools.lru_cache(maxsize=64)
def normalise_algorithm(name: str) -> str:
    """Return the hashlib name for ``name`` ("SHA-256" -> "sha256"), or raise ``ValueError``."""
    if not isinstance(name, str):
        raise ValueError(f"hash algorithm name must be a string, not {name!r}")
    candidate = _squash(name)
    if candidate.startswith("shake"):
        raise ValueError(f"hash algorithm {name!r} has no fixed digest size; use sha256 or sha512")
    for known in hashlib.algorithms_available:
        if _squash(known) == candidate:
            return known.lower()
    raise ValueError(f"unknown hash algorithm {name!r}")


@functools.lru_cache(maxsize=64)
def _hex_length(algorithm: str) -> int:
    return hashlib.new(algorithm).digest_size * 2


def _squash(name: str) -> str:
    """ "SHA3-256", "sha3_256" and "sha3256" compare equal."""
    return name.strip().lower().replace("-", "").replace("_", "")


def expected_hashes(
    sha256: Optional[str],
    hashes: Optional[Mapping[str, str]],
    urls: Iterable[str],
) -> dict[str, str]:
    """Merge ``sha256``, ``hashes`` and ``#alg=hex`` URL fragments into one mapping.

    Two different values for one algorithm are a ``ValueError``. A mapping
    holding only weak algorithms triggers :class:`WeakHashWarning`.

    >>> expected_hashes(None, None, ["https://h/f.tgz#sha256=" + "0" * 64])
    {'sha256': '0000000000000000000000000000000000000000000000000000000000000000'}
    """
    found: dict[str, tuple[str, str]] = {}

    def add(algorithm: str, value: str, origin: str) -> None:
        name = normalise_algorithm(algorithm)
        digest = parse_digest(name, value)
        previous = found.get(name)
        if previous is not None and previous[0] != digest:
            raise ValueError(
                f"contradictory {name} digests: {previous[0]} ({previous[1]}) "
                f"and {digest} ({origin})"
            )
        found[name] = (digest, origin)

    if sha256 is not None:
        add("sha256", sha256, "sha256=")
    for algorithm, value in (hashes or {}).items():
        add(algorithm, value, "hashes=")
    for url in urls:
        for algorithm, value in fragment_hashes(url):
            add(algorithm, value, url)
    result = {name: digest for name, (digest, _) in found.items()}
    if result and not is_pinned(result):
        warnings.warn(
            f"only weak hashes ({', '.join(sorted(result))}) were given: the download is "
            "checked for corruption but not protected against tampering; pin a sha256",
            WeakHashWarning,
            stacklevel=4,
        )
    return result


def fragment_hashes(url: str) -> list[tuple[str, str]]:
    """Return the ``(algorithm, value)`` pairs of a ``#sha256=...`` style URL fragment.

    Keys that are not hash algorithms (``#egg=name``) are ignored.
    """
    pairs = []
    for part in re.split(r"[&]", urlsplit(url).fragment):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        try:
            normalise_algorithm(key)
        except ValueError:
            continue
        pairs.append((key, value))
    return pairs


def is_pinned(expected: Mapping[str, str]) -> bool:
    """True when at least one strong algorithm is expected."""
    return any(name not in WEAK_ALGORITHMS for name in expected)


class Verifier:
    """Hashes a stream once for every expected algorithm, plus sha256 for the report."""

    def __init__(self, expected: Mapping[str, str]) -> None:
        self.expected = dict(expected)
        names = {"sha256", *self.expected}
        self._hashers = {name: hashlib.new(name) for name in sorted(names)}
        # Hot path: one bound method per algorithm, no dict walk per chunk.
        self._updates = tuple(hasher.update for hasher in self._hashers.values())
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for update in self._updates:
            update(data)
        self.size += len(data)

    def copy(self) -> Verifier:
        clone = Verifier.__new__(Verifier)
        clone.expected = dict(self.expected)
        clone._hashers = {name: hasher.copy() for name, hasher in self._hashers.items()}
        clone._updates = tuple(hasher.update for hasher in clone._hashers.values())
        clone.size = self.size
        return clone

    def hexdigest(self, algorithm: str = "sha256") -> str:
        return self._hashers[algorithm].hexdigest()

    def mismatches(self) -> list[tuple[str, str, str]]:
        """``(algorithm, expected, actual)`` for every expected digest that differs."""
        return [
            (name, digest, self.hexdigest(name))
            for name, digest in self.expected.items()
            if self.hexdigest(name) != digest
        ]
