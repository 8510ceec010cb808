"""Subresource Integrity strings (``"sha384-<b64> sha512-<b64>"``), read as the SRI spec says.

>>> algorithm, digests = parse_integrity("sha256-" + "A" * 43 + "= sha512-" + "A" * 86 + "==?x")
>>> algorithm, sorted(digests) == ["00" * 64]
('sha512', True)
"""

from __future__ import annotations

from .digests import parse_digest

__all__ = ["SRI_ALGORITHMS", "parse_integrity"]

#: The algorithms SRI defines, weakest first: only the strongest present is checked.
SRI_ALGORITHMS = ("sha256", "sha384", "sha512")


def parse_integrity(text: object) -> tuple[str, frozenset[str]]:
    """The strongest algorithm of an SRI string and its accepted hex digests (any-of).

    Tokens are separated by white space; each is ``<algorithm>-<base64>``,
    optionally followed by ``?options``, which are ignored (SRI reserves them).
    As in the spec, tokens naming another algorithm are skipped; a token that
    is not of that shape, bad base64, or no usable token at all is a
    ``ValueError`` naming the value.

    :param text: the integrity string.
    """
    if not isinstance(text, str):
        raise ValueError(f"integrity must be a string like 'sha384-<base64>', not {text!r}")
    found: dict[str, set[str]] = {}
    for token in text.split():
        algorithm, sep, rest = token.partition("-")
        if not sep or not algorithm or not rest:
            raise ValueError(
                f"malformed integrity token {token!r} in {text!r}: expected <algorithm>-<base64>"
            )
        name = algorithm.lower()
        if name not in SRI_ALGORITHMS:
            continue  # the SRI spec ignores algorithms it does not know
        found.setdefault(name, set()).add(parse_digest(name, f"{name}-{rest}"))
    if not found:
        raise ValueError(f"integrity {text!r} holds no sha256, sha384 or sha512 digest")
    strongest = max(found, key=SRI_ALGORITHMS.index)
    return strongest, frozenset(found[strongest])
