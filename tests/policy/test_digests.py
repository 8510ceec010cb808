"""Unit tests of policy.digests: digest parsing, hash merging and the streaming verifier."""

from __future__ import annotations

import hashlib
import warnings

import pytest

from robustfetch.policy.digests import (
    Verifier,
    WeakHashWarning,
    expected_hashes,
    is_pinned,
    normalise_algorithm,
    parse_digest,
)

DATA = b"robustfetch test payload \x00\xff" * 37
SHA256 = hashlib.sha256(DATA).hexdigest()
SHA512 = hashlib.sha512(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()
SHA1 = hashlib.sha1(DATA).hexdigest()
OTHER_SHA256 = hashlib.sha256(b"other").hexdigest()


# -- parse_digest ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "value", "expected"),
    [
        ("sha256", SHA256, SHA256),
        ("sha256", SHA256.upper(), SHA256),
        ("sha256", "sha256:" + SHA256, SHA256),
        ("sha256", "SHA256:" + SHA256.upper(), SHA256),
        ("sha256", f"  {SHA256}\n", SHA256),
        ("SHA-256", SHA256, SHA256),
        ("sha512", SHA512, SHA512),
        ("sha512", "sha512:" + SHA512, SHA512),
        ("md5", MD5.upper(), MD5),
        ("sha1", SHA1, SHA1),
    ],
)
def test_parse_digest_accepts(algorithm: str, value: str, expected: str) -> None:
    assert parse_digest(algorithm, value) == expected


@pytest.mark.parametrize(
    ("algorithm", "value"),
    [
        ("sha256", ""),
        ("sha256", SHA256[:-1]),  # one character short
        ("sha256", SHA256 + "0"),  # one character long
        ("sha256", SHA512),  # a sha512 given as sha256
        ("sha512", SHA256),  # and the other way round
        ("sha256", "g" + SHA256[1:]),  # not hex
        ("sha256", SHA256[:32] + " " + SHA256[33:]),  # inner space
        ("sha256", "0x" + SHA256[2:]),
        ("sha256", "sha512:" + SHA256),  # prefix of another algorithm
        ("sha256", "sha256:sha256:" + SHA256),
        ("sha256", "\uff10" * 64),  # full-width digits are not hex
        ("md5", MD5[:-2]),
    ],
)
def test_parse_digest_rejects_malformed_value_naming_it(algorithm: str, value: str) -> None:
    with pytest.raises(ValueError, match="malformed") as info:
        parse_digest(algorithm, value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [None, 42, b"0" * 64, ["0" * 64], bytearray(b"0" * 64)])
def test_parse_digest_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match=type(value).__name__):
        parse_digest("sha256", value)  # type: ignore[arg-type]


# -- normalise_algorithm --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sha256", "sha256"),
        ("SHA256", "sha256"),
        ("SHA-256", "sha256"),
        ("  Sha-256 ", "sha256"),
        ("sha512", "sha512"),
        ("SHA-512", "sha512"),
        ("sha384", "sha384"),
        ("blake2b", "blake2b"),
        ("BLAKE2s", "blake2s"),
        ("md5", "md5"),
        ("SHA-1", "sha1"),
        ("sha3_256", "sha3_256"),
    ],
)
def test_normalise_algorithm(name: str, expected: str) -> None:
    assert normalise_algorithm(name) == expected


@pytest.mark.parametrize(("name", "expected"), [("SHA3-256", "sha3_256")])
def test_normalise_algorithm_fips_spelling(name: str, expected: str) -> None:
    assert normalise_algorithm(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sha999", "unknown hash algorithm 'sha999'"),
        ("", "unknown hash algorithm ''"),
        ("crc32", "unknown hash algorithm 'crc32'"),
        ("shake_128", "no fixed digest size"),
        ("SHAKE-256", "no fixed digest size"),
        ("shake256", "no fixed digest size"),
    ],
)
def test_normalise_algorithm_rejects(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_algorithm(name)


@pytest.mark.parametrize("name", [None, 256, b"sha256"])
def test_normalise_algorithm_rejects_non_strings(name: object) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        normalise_algorithm(name)  # type: ignore[arg-type]


# -- expected_hashes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sha256", "hashes", "urls", "expected"),
    [
        (None, None, [], {}),
        (None, None, ["https://a.example/f.tgz"], {}),
        (SHA256, None, [], {"sha256": SHA256}),
        ("sha256:" + SHA256.upper(), None, [], {"sha256": SHA256}),
        (None, {"sha512": SHA512}, [], {"sha512": SHA512}),
        (None, {"SHA-512": SHA512.upper()}, [], {"sha512": SHA512}),
        (SHA256, {"sha512": SHA512}, [], {"sha256": SHA256, "sha512": SHA512}),
        (None, None, [f"https://a.example/f.tgz#sha256={SHA256}"], {"sha256": SHA256}),
        (None, None, [f"https://a.example/f.tgz#SHA256={SHA256.upper()}"], {"sha256": SHA256}),
        (None, None, [f"https://a.example/f.tgz#sha512={SHA512}"], {"sha512": SHA512}),
        # fragments on several URLs are merged
        (
            None,
            None,
            [
                f"https://a.example/f.tgz#sha256={SHA256}",
                f"https://b.example/f.tgz#sha512={SHA512}",
            ],
            {"sha256": SHA256, "sha512": SHA512},
        ),
        # agreeing duplicates, whatever their spelling, are fine
        (
            SHA256,
            {"SHA-256": SHA256.upper()},
            [
                f"https://a.example/f.tgz#sha256={SHA256}",
                f"https://b.example/f.tgz#sha256=sha256:{SHA256}",
            ],
            {"sha256": SHA256},
        ),
        # pip-style fragments: non-hash keys are ignored
        (None, None, [f"https://a.example/f.tgz#egg=x&sha256={SHA256}"], {"sha256": SHA256}),
        (None, None, [f"https://a.example/f.tgz#sha256={SHA256}&egg=x"], {"sha256": SHA256}),
        (None, None, ["https://a.example/f.tgz#egg=x&subdirectory=y"], {}),
        (None, None, ["https://a.example/f.tgz#section"], {}),
        # a hash-looking query parameter is not a fragment
        (None, None, [f"https://a.example/f.tgz?sha256={SHA256}"], {}),
        # weak + strong: both kept
        (SHA256, {"md5": MD5}, [], {"sha256": SHA256, "md5": MD5}),
    ],
)
def test_expected_hashes_merges(
    sha256: str | None,
    hashes: dict[str, str] | None,
    urls: list[str],
    expected: dict[str, str],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert expected_hashes(sha256, hashes, urls) == expected


@pytest.mark.parametrize(
    ("sha256", "hashes", "urls", "first", "second"),
    [
        (SHA256, {"sha256": OTHER_SHA256}, [], SHA256, OTHER_SHA256),
        (SHA256, None, [f"https://a.example/f#sha256={OTHER_SHA256}"], SHA256, OTHER_SHA256),
        (
            None,
            None,
            [f"https://a.example/f#sha256={SHA256}", f"https://b.example/f#sha256={OTHER_SHA256}"],
            SHA256,
            OTHER_SHA256,
        ),
        (
            None,
            {"sha512": SHA512},
            [f"https://a.example/f#egg=x&sha512={'0' * 128}"],
            SHA512,
            "0" * 128,
        ),
    ],
)
def test_expected_hashes_contradiction_names_both(
    sha256: str | None,
    hashes: dict[str, str] | None,
    urls: list[str],
    first: str,
    second: str,
) -> None:
    with pytest.raises(ValueError, match="contradictory") as info:
        expected_hashes(sha256, hashes, urls)
    assert first in str(info.value)
    assert second in str(info.value)


@pytest.mark.parametrize(
    ("sha256", "hashes", "urls"),
    [
        ("abc", None, []),
        (None, {"sha256": "abc"}, []),
        (None, {"sha999": SHA256}, []),
        (None, {"shake_128": "00" * 16}, []),
        (None, None, ["https://a.example/f#sha256=abc"]),
        (None, None, ["https://a.example/f#egg=x&sha256="]),
    ],
)
def test_expected_hashes_rejects_malformed(
    sha256: str | None, hashes: dict[str, str] | None, urls: list[str]
) -> None:
    with pytest.raises(ValueError):
        expected_hashes(sha256, hashes, urls)


@pytest.mark.parametrize(
    ("hashes", "urls"),
    [
        ({"md5": MD5}, []),
        ({"sha1": SHA1}, []),
        ({"MD5": MD5, "SHA-1": SHA1}, []),
        (None, [f"https://a.example/f.tgz#md5={MD5}"]),
        (None, [f"https://a.example/f.tgz#egg=x&sha1={SHA1}"]),
    ],
)
def test_expected_hashes_weak_only_warns(hashes: dict[str, str] | None, urls: list[str]) -> None:
    with pytest.warns(WeakHashWarning, match="weak"):
        result = expected_hashes(None, hashes, urls)
    assert result
    assert set(result) <= {"md5", "sha1"}


@pytest.mark.parametrize(
    ("sha256", "hashes", "urls"),
    [
        (SHA256, {"md5": MD5}, []),
        (None, {"md5": MD5, "sha512": SHA512}, []),
        (None, {"sha1": SHA1}, [f"https://a.example/f.tgz#sha256={SHA256}"]),
        (None, None, [f"https://a.example/f.tgz#md5={MD5}&sha256={SHA256}"]),
        (None, None, []),  # nothing given: reported, not verified, and no warning
    ],
)
def test_expected_hashes_weak_with_strong_does_not_warn(
    sha256: str | None, hashes: dict[str, str] | None, urls: list[str]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected_hashes(sha256, hashes, urls)


# -- is_pinned ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "pinned"),
    [
        ({}, False),
        ({"md5": MD5}, False),
        ({"sha1": SHA1}, False),
        ({"md5": MD5, "sha1": SHA1}, False),
        ({"sha256": SHA256}, True),
        ({"sha512": SHA512}, True),
        ({"blake2b": "0" * 128}, True),
        ({"md5": MD5, "sha256": SHA256}, True),
    ],
)
def test_is_pinned(expected: dict[str, str], pinned: bool) -> None:
    assert is_pinned(expected) is pinned


def test_md5_sha1_concatenation_is_not_a_pin() -> None:
    assert is_pinned({"md5-sha1": "0" * 72}) is False


# -- Verifier -------------------------------------------------------------------------


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "blake2b", "md5", "sha1", "sha3_256"])
@pytest.mark.parametrize("piece", [1, 7, 64, 1000, 10**6])
def test_verifier_streamed_equals_whole(algorithm: str, piece: int) -> None:
    whole = hashlib.new(algorithm, DATA).hexdigest()
    verifier = Verifier({algorithm: whole})
    for chunk in _pieces(DATA, piece):
        verifier.update(chunk)
    assert verifier.hexdigest(algorithm) == whole
    assert verifier.hexdigest() == SHA256  # sha256 is always computed for the report
    assert verifier.mismatches() == []
    assert verifier.size == len(DATA)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_verifier_accepts_bytes_like(kind: type) -> None:
    verifier = Verifier({"sha256": SHA256})
    for chunk in _pieces(DATA, 100):
        verifier.update(kind(chunk))
    assert verifier.hexdigest() == SHA256
    assert verifier.size == len(DATA)


@pytest.mark.parametrize(
    ("expected", "wrong"),
    [
        ({"sha256": OTHER_SHA256}, [("sha256", OTHER_SHA256, SHA256)]),
        ({"sha256": SHA256, "sha512": "0" * 128}, [("sha512", "0" * 128, SHA512)]),
        (
            {"sha256": OTHER_SHA256, "md5": "f" * 32},
            [("sha256", OTHER_SHA256, SHA256), ("md5", "f" * 32, MD5)],
        ),
        ({"sha256": SHA256, "sha512": SHA512, "md5": MD5}, []),
    ],
)
def test_verifier_mismatches(expected: dict[str, str], wrong: list[tuple[str, str, str]]) -> None:
    verifier = Verifier(expected)
    verifier.update(DATA)
    assert sorted(verifier.mismatches()) == sorted(wrong)


@pytest.mark.parametrize("chunks", [[], [b""], [b"a"], [b"ab", b"", b"cde"], [b"\x00" * 65536] * 3])
def test_verifier_size_counts_bytes(chunks: list[bytes]) -> None:
    verifier = Verifier({})
    for chunk in chunks:
        verifier.update(chunk)
    data = b"".join(chunks)
    assert verifier.size == len(data)
    assert verifier.hexdigest() == hashlib.sha256(data).hexdigest()
    assert verifier.mismatches() == []


@pytest.mark.parametrize("split", [0, 1, len(DATA) // 2, len(DATA)])
def test_verifier_copy_is_independent(split: int) -> None:
    head, tail = DATA[:split], DATA[split:]
    original = Verifier({"sha256": SHA256, "sha512": SHA512})
    original.update(head)
    clone = original.copy()
    assert clone.size == original.size == len(head)
    assert clone.expected == original.expected
    assert clone.expected is not original.expected

    clone.update(tail)
    # the original is untouched by what the clone hashed
    assert original.size == len(head)
    assert original.hexdigest() == hashlib.sha256(head).hexdigest()
    assert original.hexdigest("sha512") == hashlib.sha512(head).hexdigest()
    assert clone.hexdigest() == SHA256
    assert clone.mismatches() == []

    original.update(b"junk")
    # and the clone is untouched by what the original hashes afterwards
    assert clone.size == len(DATA)
    assert clone.hexdigest("sha512") == SHA512
    assert original.hexdigest() == hashlib.sha256(head + b"junk").hexdigest()
    clone.expected["sha256"] = "changed"
    assert original.expected["sha256"] == SHA256
