"""Expected hashes (parsing every shape users write, merging, checking) and the streaming verifier.

A digest is accepted as hex, ``"<algorithm>:<hex>"``, a Subresource Integrity
value ``"<algorithm>-<base64>"`` or bare base64. An expectation maps each
algorithm to one hex digest (a ``str``) or to a set of them, meaning any-of
(pip's several ``--hash`` values for one requirement); every algorithm given
must match.

>>> parse_digest("sha256", "SHA256:" + "AB" * 32) == "ab" * 32
True
>>> parse_digest("sha256", "sha256-" + "q" * 42 + "o=") == "aa" * 32
True
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import warnings
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Optional, Union

__all__ = [
    "WEAK_ALGORITHMS",
    "DigestValue",
    "Verifier",
    "WeakHashWarning",
    "accepted",
    "expected_hashes",
    "is_pinned",
    "lock_digest",
    "normalise_algorithm",
    "parse_digest",
    "parse_digests",
    "show_digests",
]

#: Algorithms that cannot protect a download against a hostile source.
WEAK_ALGORITHMS = frozenset({"md5", "sha1", "md5-sha1"})

#: One algorithm's expectation: a hex digest, or several of which any may match.
DigestValue = Union[str, AbstractSet[str]]

_HEX = re.compile(r"[0-9a-f]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


class WeakHashWarning(UserWarning):
    """Only md5 or sha1 was given: the bytes are checked but not protected."""


def parse_digest(algorithm: str, value: str) -> str:
    """Return ``value`` as lower-case hex for ``algorithm``, or raise ``ValueError``.

    ``value`` may be hex, carry an ``"<algorithm>:"`` prefix, be an SRI value
    ``"<algorithm>-<base64>"`` (options after ``?`` ignored), or bare base64.

    :param algorithm: a hashlib algorithm name.
    :param value: the digest as the user wrote it.
    """
    algorithm = normalise_algorithm(algorithm)
    if not isinstance(value, str):
        raise ValueError(f"{algorithm} digest must be a string, not {type(value).__name__}")
    text = value.strip()
    sri = False
    prefix, sep, rest = text.partition(":")
    if sep and prefix:
        if _squash(prefix) != _squash(algorithm):
            raise _malformed(algorithm, value)
        text = rest
    else:
        prefix, sep, rest = text.partition("-")
        if sep and prefix and _names_algorithm(prefix):
            if _squash(prefix) != _squash(algorithm):
                raise _malformed(algorithm, value)
            text, sri = rest.partition("?")[0], True
    size = hashlib.new(algorithm).digest_size
    lowered = text.lower()
    if not sri and len(lowered) == 2 * size and _HEX.fullmatch(lowered):
        return lowered
    raw = _decode_base64(text)
    if raw is None or len(raw) != size:
        raise _malformed(algorithm, value)
    return raw.hex()


def _malformed(algorithm: str, value: str) -> ValueError:
    size = hashlib.new(algorithm).digest_size
    return ValueError(
        f"malformed {algorithm} digest {value!r}: expected {2 * size} hexadecimal "
        f"characters, {algorithm}:<hex> or {algorithm}-<base64 of {size} bytes>"
    )


def _is_base64_text(text: str) -> bool:
    return _BASE64.fullmatch(text) is not None


def _names_algorithm(text: str) -> bool:
    try:
        normalise_algorithm(text)
    except ValueError:
        return False
    return True


def _decode_base64(text: str) -> Optional[bytes]:
    """Standard or URL-safe base64, padding optional; ``None`` if it is neither."""
    mixed = ("-" in text or "_" in text) and ("+" in text or "/" in text)
    if mixed or not _is_base64_text(text):
        return None
    body = text.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


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


def _squash(name: str) -> str:
    """ "SHA3-256", "sha3_256" and "sha3256" compare equal."""
    return name.strip().lower().replace("-", "").replace("_", "")


def parse_digests(algorithm: str, value: Any, option: str) -> frozenset[str]:
    """One value or a list of values (any-of) for ``algorithm``, as a set of hex digests.

    :param algorithm: a hashlib algorithm name.
    :param value: a digest string, or a list/tuple/set of them.
    :param option: how the user gave it, for messages (``"sha256="``).
    """
    if isinstance(value, str):
        return frozenset({parse_digest(algorithm, value)})
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(f"{option} takes a digest or a list of digests, not {value!r}")
    if not value:
        raise ValueError(f"{option} was given an empty list of digests")
    return frozenset(parse_digest(algorithm, item) for item in value)


def accepted(value: DigestValue) -> frozenset[str]:
    """The hex digests one expectation accepts."""
    return frozenset({value}) if isinstance(value, str) else frozenset(value)


def show_digests(value: DigestValue) -> str:
    """One digest, or ``"a or b"`` for several (sorted, for stable messages)."""
    return value if isinstance(value, str) else " or ".join(sorted(value))


def sha256_order(given: Any, value: DigestValue) -> list[str]:
    """The sha256 candidates of ``value`` in the order the caller wrote them in ``given``.

    Hashed mirrors are asked once per candidate, in that order; candidates that
    came from elsewhere (a URL fragment) follow, sorted.

    >>> a, b = "a" * 64, "b" * 64
    >>> sha256_order([b, "sha256:" + a], frozenset({a, b})) == [b, a]
    True
    """
    wanted = accepted(value)
    items = [given] if isinstance(given, str) else list(given or ())
    ordered: list[str] = []
    for item in items:
        for digest in parse_digests("sha256", item, "sha256="):
            if digest in wanted and digest not in ordered:
                ordered.append(digest)
    return ordered + sorted(wanted - set(ordered))


def lock_digest(expected: Mapping[str, DigestValue]) -> Optional[str]:
    """The sha256 that keys a request's lock and partial file, or ``None`` without one.

    With several sha256 candidates it is the smallest: the same set gives the
    same key whatever order it was written in.
    """
    value = expected.get("sha256")
    return None if value is None else min(accepted(value))


def expected_hashes(
    sha256: Any,
    hashes: Optional[Mapping[str, Any]],
    urls: Iterable[str],
    integrity: Optional[str] = None,
) -> dict[str, DigestValue]:
    """Merge ``sha256``, ``hashes``, ``integrity`` and ``#alg=hex`` URL fragments.

    Each gives a set of accepted digests per algorithm; where several name one
    algorithm the file must match all of them, so their sets are intersected,
    and an empty intersection is a ``ValueError``. An algorithm left with one
    digest maps to that hex string, with several to their set. A mapping
    holding only weak algorithms triggers :class:`WeakHashWarning`.

    >>> expected_hashes(None, None, ["https://h/f.tgz#sha256=" + "0" * 64])
    {'sha256': '0000000000000000000000000000000000000000000000000000000000000000'}
    """
    from .sri import parse_integrity

    found: dict[str, tuple[frozenset[str], str]] = {}

    def add(algorithm: str, digests: frozenset[str], origin: str) -> None:
        previous = found.get(algorithm)
        if previous is not None:
            both = previous[0] & digests
            if not both:
                raise ValueError(
                    f"contradictory {algorithm} digests: {show_digests(previous[0])} "
                    f"({previous[1]}) and {show_digests(digests)} ({origin})"
                )
            digests, origin = both, f"{previous[1]} and {origin}"
        found[algorithm] = (digests, origin)

    if sha256 is not None:
        add("sha256", _sha256_values(sha256), "sha256=")
    for algorithm, value in (hashes or {}).items():
        name = normalise_algorithm(algorithm)
        add(name, parse_digests(name, value, f"hashes[{algorithm!r}]"), "hashes=")
    if integrity is not None:
        name, digests = parse_integrity(integrity)
        add(name, digests, "integrity=")
    for url in urls:
        for algorithm, value in fragment_hashes(url):
            name = normalise_algorithm(algorithm)
            add(name, frozenset({parse_digest(name, value)}), url)
    result: dict[str, DigestValue] = {
        name: next(iter(digests)) if len(digests) == 1 else digests
        for name, (digests, _) in found.items()
    }
    if result and not is_pinned(result):
        warnings.warn(
            f"only weak hashes ({', '.join(sorted(result))}) were given: the download is "
            "checked for corruption but not protected against tampering; pin a sha256",
            WeakHashWarning,
            stacklevel=4,
        )
    return result


def _sha256_values(value: Any) -> frozenset[str]:
    """``sha256=``: one digest or a list; another algorithm's prefix is a mistake."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, (list, tuple, set, frozenset)):
        for item in items:
            if isinstance(item, str) and re.match(r"\s*(sha384|sha512|md5|sha1)[-:]", item, re.I):
                raise ValueError(
                    f"sha256= was given {item!r}, a digest of another algorithm: "
                    "use hashes= or integrity= for it"
                )
    return parse_digests("sha256", value, "sha256=")


def fragment_hashes(url: str) -> list[tuple[str, str]]:
    """Return the ``(algorithm, value)`` pairs of a ``#sha256=...`` style URL fragment.

    Keys that are not hash algorithms (``#egg=name``) are ignored.
    """
    fragment = url.partition("#")[2]
    pairs = []
    for part in fragment.split("&"):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        try:
            normalise_algorithm(key)
        except ValueError:
            continue
        pairs.append((key, value))
    return pairs


def is_pinned(expected: Mapping[str, object]) -> bool:
    """True when at least one strong algorithm is expected."""
    return any(name not in WEAK_ALGORITHMS for name in expected)


class Verifier:
    """Hashes a stream once for every expected algorithm, plus sha256 for the report.

    Each algorithm is computed once and its digest looked up in the set of
    accepted values, so several candidates cost nothing extra.

    :param expected: algorithm -> hex digest, or a set of them (any-of).
    """

    def __init__(self, expected: Mapping[str, DigestValue]) -> None:
        self.expected: dict[str, DigestValue] = dict(expected)
        self._accepted = {name: accepted(value) for name, value in self.expected.items()}
        #: Who added requirements through :meth:`require` (``"server"``), and for which
        #: algorithm.
        self.origins: set[str] = set()
        self.required_by: dict[str, str] = {}
        self._hashers = {name: hashlib.new(name) for name in sorted({"sha256", *self.expected})}
        # Hot path: one bound method per algorithm, no dict walk per chunk.
        self._updates = tuple(hasher.update for hasher in self._hashers.values())
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for update in self._updates:
            update(data)
        self.size += len(data)

    def require(self, algorithm: str, digests: AbstractSet[str], origin: str) -> None:
        """Also require ``algorithm`` to be one of ``digests`` (before the first byte).

        :param origin: who vouches for it, kept in :attr:`origins`.
        """
        if self.size:
            raise RuntimeError("requirements are added before the first byte")
        previous = self._accepted.get(algorithm)
        allowed = frozenset(digests) if previous is None else previous & frozenset(digests)
        self._accepted[algorithm] = allowed
        self.expected[algorithm] = next(iter(allowed)) if len(allowed) == 1 else allowed
        self.origins.add(origin)
        self.required_by[algorithm] = origin
        if algorithm not in self._hashers:
            self._hashers[algorithm] = hashlib.new(algorithm)
            self._updates = tuple(hasher.update for hasher in self._hashers.values())

    def accepts(self, algorithm: str) -> Optional[frozenset[str]]:
        """The digests accepted for ``algorithm``, or ``None`` when it is not checked."""
        return self._accepted.get(algorithm)

    def copy(self) -> Verifier:
        clone = Verifier.__new__(Verifier)
        clone.expected = dict(self.expected)
        clone._accepted = dict(self._accepted)
        clone.origins = set(self.origins)
        clone.required_by = dict(self.required_by)
        clone._hashers = {name: hasher.copy() for name, hasher in self._hashers.items()}
        clone._updates = tuple(hasher.update for hasher in clone._hashers.values())
        clone.size = self.size
        return clone

    def hexdigest(self, algorithm: str = "sha256") -> str:
        return self._hashers[algorithm].hexdigest()

    def mismatches(self) -> list[tuple[str, str, str]]:
        """``(algorithm, expected, actual)`` for every algorithm whose digest is not accepted."""
        wrong = []
        for name, allowed in self._accepted.items():
            actual = self.hexdigest(name)
            if actual not in allowed:
                wrong.append((name, show_digests(allowed), actual))
        return wrong
