"""Digest shapes (hex, algo:hex, SRI, base64, lists), SRI strings and server digest headers."""

from __future__ import annotations

import base64
import hashlib
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustfetch.policy.digests import (
    Verifier,
    WeakHashWarning,
    expected_hashes,
    is_pinned,
    lock_digest,
    parse_digest,
)
from robustfetch.policy.sri import parse_integrity
from robustfetch.policy.witness import combine, server_digests, verified_by

DATA = b"shapes" * 100
SHA256 = hashlib.sha256(DATA).hexdigest()
SHA384 = hashlib.sha384(DATA).hexdigest()
SHA512 = hashlib.sha512(DATA).hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()
ALGORITHMS = ["sha256", "sha384", "sha512", "sha1", "md5", "blake2b"]


def b64(hex_digest: str, alphabet: str = "standard") -> str:
    raw = bytes.fromhex(hex_digest)
    return (base64.urlsafe_b64encode if alphabet == "url" else base64.b64encode)(raw).decode()


# -- parse_digest: every shape of one digest ------------------------------------------


@given(st.sampled_from(ALGORITHMS), st.data())
def test_every_shape_of_a_digest_parses_to_its_hex(algorithm: str, data: st.DataObject) -> None:
    size = hashlib.new(algorithm).digest_size
    raw = data.draw(st.binary(min_size=size, max_size=size))
    hexed = raw.hex()
    shapes = [
        hexed,
        hexed.upper(),
        f"{algorithm}:{hexed}",
        f"{algorithm.upper()}:{hexed}",
        f"{algorithm}-{base64.b64encode(raw).decode()}",
        f"{algorithm}-{base64.b64encode(raw).decode()}?ct=application/x-tar",
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        f"  {hexed}\n",
    ]
    for shape in shapes:
        assert parse_digest(algorithm, shape) == hexed, shape


@given(st.sampled_from(ALGORITHMS), st.text(max_size=150))
def test_any_text_is_a_digest_or_a_value_error_naming_it(algorithm: str, text: str) -> None:
    try:
        result = parse_digest(algorithm, text)
    except ValueError as exc:
        assert repr(text) in str(exc)
    else:
        assert len(result) == 2 * hashlib.new(algorithm).digest_size
        assert result == result.lower()
        int(result, 16)


@pytest.mark.parametrize(
    "value",
    [
        "sha512-" + b64(SHA512),  # another algorithm's SRI value
        "sha256-" + b64(SHA512),  # right name, wrong length
        "sha256-" + b64(SHA256)[:-4],
        "sha256-" + b64(SHA256).replace("A", "*", 1) if "A" in b64(SHA256) else "sha256-*",
        b64(SHA256, "url").replace("_", "/").replace("-", "+") + "-_",  # mixed alphabets
    ],
)
def test_parse_digest_rejects_bad_sri_and_base64(value: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_digest("sha256", value)


# -- expected_hashes: lists, integrity, merging ---------------------------------------


def test_sha256_list_is_any_of() -> None:
    result = expected_hashes([SHA256, "sha256-" + b64(OTHER)], None, [])
    assert result == {"sha256": frozenset({SHA256, OTHER})}
    assert is_pinned(result)
    assert lock_digest(result) == min(SHA256, OTHER)
    # the key does not depend on the order the candidates came in
    assert lock_digest(expected_hashes([OTHER, SHA256], None, [])) == lock_digest(result)


def test_duplicates_in_a_list_collapse_to_one_digest() -> None:
    assert expected_hashes([SHA256, SHA256.upper()], None, []) == {"sha256": SHA256}


def test_fragment_narrows_a_list() -> None:
    urls = [f"https://a.example/f#sha256={SHA256}"]
    assert expected_hashes([OTHER, SHA256], None, urls) == {"sha256": SHA256}
    with pytest.raises(ValueError, match="contradictory"):
        expected_hashes([OTHER], None, urls)


def test_hashes_lists_every_algorithm_must_match() -> None:
    result = expected_hashes(None, {"sha512": [b64(SHA512), "0" * 128], "SHA-256": SHA256}, [])
    assert result == {"sha512": frozenset({SHA512, "0" * 128}), "sha256": SHA256}


@pytest.mark.parametrize(
    "value",
    [[], [SHA256, 42], 42, b"0" * 64, {"sha256": SHA256}, "sha512:" + SHA512, "md5-AAAA"],
)
def test_sha256_rejects_bad_values(value: object) -> None:
    with pytest.raises(ValueError):
        expected_hashes(value, None, [])


def test_integrity_checks_only_the_strongest() -> None:
    text = (
        f"sha256-{b64(OTHER)} sha384-{b64(SHA384)} sha512-{b64(SHA512)}?x sha512-{b64('0' * 128)}"
    )
    assert parse_integrity(text) == ("sha512", frozenset({SHA512, "0" * 128}))
    assert expected_hashes(None, None, [], text) == {"sha512": frozenset({SHA512, "0" * 128})}
    # unknown algorithms are skipped, as the SRI spec says
    assert parse_integrity(f"md5-AAAA sha384-{b64(SHA384)}") == ("sha384", frozenset({SHA384}))


@pytest.mark.parametrize(
    "text", ["", "   ", "sha256", "sha256-", f"sha512-{b64(SHA256)}", "md5-AAAA", "-AAAA", 42]
)
def test_integrity_rejects(text: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_integrity(text)
    assert repr(text) in str(info.value) or str(text) in str(info.value)


@given(st.text(max_size=300))
def test_integrity_parser_never_crashes(text: str) -> None:
    try:
        algorithm, digests = parse_integrity(text)
    except ValueError:
        return
    assert algorithm in ("sha256", "sha384", "sha512") and digests


@given(st.lists(st.binary(min_size=64, max_size=64), min_size=1, max_size=4), st.data())
def test_integrity_round_trip(raws: list[bytes], data: st.DataObject) -> None:
    weaker = data.draw(st.lists(st.binary(min_size=32, max_size=32), max_size=3))
    tokens = [f"sha512-{base64.b64encode(r).decode()}" for r in raws]
    tokens += [f"sha256-{base64.b64encode(r).decode()}" for r in weaker]
    shuffled = data.draw(st.permutations(tokens))
    assert parse_integrity(" ".join(shuffled)) == ("sha512", frozenset(r.hex() for r in raws))


def test_weak_integrity_alone_is_refused_but_weak_hashes_warn() -> None:
    with pytest.raises(ValueError):
        expected_hashes(None, None, [], "sha1-" + b64(hashlib.sha1(DATA).hexdigest()))
    with pytest.warns(WeakHashWarning):
        expected_hashes(None, {"md5": [hashlib.md5(DATA).hexdigest(), "0" * 32]}, [])


# -- Verifier with several candidates -------------------------------------------------


def test_verifier_any_of_and_every_algorithm() -> None:
    good = Verifier({"sha256": frozenset({OTHER, SHA256}), "sha512": SHA512})
    good.update(DATA)
    assert good.mismatches() == []
    bad = Verifier({"sha256": frozenset({OTHER, "0" * 64}), "sha512": SHA512})
    bad.update(DATA)
    ((name, expected, actual),) = bad.mismatches()
    assert (name, actual) == ("sha256", SHA256)
    assert OTHER in expected and "0" * 64 in expected


def test_verifier_require_adds_an_algorithm_before_the_first_byte() -> None:
    verifier = Verifier({})
    verifier.require("sha512", {SHA512}, "server")
    verifier.update(DATA)
    assert verifier.mismatches() == [] and verifier.origins == {"server"}
    late = Verifier({})
    late.update(b"x")
    with pytest.raises(RuntimeError):
        late.require("sha512", {SHA512}, "server")


# -- server digest headers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "offset", "expected"),
    [
        ({"Repr-Digest": f"sha-256=:{b64(SHA256)}:"}, 200, 0, {"sha256": SHA256}),
        (
            {"Repr-Digest": f"sha-512=:{b64(SHA512)}:, sha-256=:{b64(SHA256)}:;p=1"},
            200,
            0,
            {"sha256": SHA256, "sha512": SHA512},
        ),
        ({"Content-Digest": f"sha-256=:{b64(SHA256)}:"}, 200, 0, {"sha256": SHA256}),
        ({"Digest": f"SHA-256={b64(SHA256)}"}, 200, 0, {"sha256": SHA256}),
        ({"Digest": f"sha-256={SHA256}"}, 200, 0, {"sha256": SHA256}),  # hex, seen in the wild
        ({"Digest": f"MD5=AAAA, SHA-512={b64(SHA512)}"}, 200, 0, {"sha512": SHA512}),
        # Repr-Digest wins over the legacy header
        (
            {"Repr-Digest": f"sha-256=:{b64(SHA256)}:", "Digest": f"SHA-256={b64(OTHER)}"},
            200,
            0,
            {"sha256": SHA256},
        ),
        # weak algorithms only: no witness
        ({"Repr-Digest": "md5=:AAAAAAAAAAAAAAAAAAAAAA==:"}, 200, 0, {}),
        ({"Digest": "SHA=AAAA"}, 200, 0, {}),
        # partial, encoded, or another status: never
        ({"Repr-Digest": f"sha-256=:{b64(SHA256)}:"}, 206, 0, {}),
        ({"Repr-Digest": f"sha-256=:{b64(SHA256)}:"}, 200, 10, {}),
        ({"Repr-Digest": f"sha-256=:{b64(SHA256)}:", "Content-Encoding": "gzip"}, 200, 0, {}),
        (
            {"Repr-Digest": f"sha-256=:{b64(SHA256)}:", "Content-Encoding": "identity"},
            200,
            0,
            {"sha256": SHA256},
        ),
        # malformed or contradictory: not a witness
        ({"Repr-Digest": f"sha-256={b64(SHA256)}"}, 200, 0, {}),
        ({"Repr-Digest": f"sha-256=:{b64(SHA256)[:-4]}:"}, 200, 0, {}),
        ({"Repr-Digest": f"sha-256=:{b64(SHA256)}:, sha-256=:{b64(OTHER)}:"}, 200, 0, {}),
        ({"Digest": f"SHA-256={b64(SHA256)}, SHA-256={b64(OTHER)}"}, 200, 0, {}),
    ],
)
def test_server_digests(
    headers: dict[str, str], status: int, offset: int, expected: dict[str, str]
) -> None:
    assert server_digests(headers, status, offset) == expected


@given(st.text(max_size=200), st.text(max_size=200))
def test_server_digest_parsers_never_crash(repr_digest: str, digest: str) -> None:
    found = server_digests({"Repr-Digest": repr_digest, "Digest": digest}, 200)
    assert set(found) <= {"sha256", "sha512"}


# -- combining pins and witnesses -----------------------------------------------------


def test_combine_and_verified_by() -> None:
    assert combine({"sha256": frozenset({SHA256, OTHER})}, {"sha256": SHA256}) == {"sha256": SHA256}
    assert combine({}, {"sha512": SHA512}) == {"sha512": SHA512}
    assert isinstance(combine({"sha256": SHA256}, {"sha256": OTHER}), str)
    assert verified_by("pin", "index", {"sha256": SHA256}, True) == "pin"
    assert verified_by("metalink", "url", {}, False) == "metalink"
    assert verified_by(None, "find_links", {"sha256": SHA256}, True) == "index"
    assert verified_by(None, "metalink", {"sha512": SHA512}, False) == "metalink"
    assert verified_by(None, "index", {"md5": "0" * 32}, True) == "server"
    assert verified_by(None, "url", {}, False) is None


def test_no_warning_for_strong_lists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected_hashes([SHA256, OTHER], {"md5": "0" * 32}, [])
