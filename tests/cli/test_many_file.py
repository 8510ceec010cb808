"""``robustfetch many``: name= and size= tokens, bad lines skipped, identical requests once.

Also the API side: Request's filename, size and hashes, and fetch_many's dedup.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, FetchResult, Reason, Request
from robustfetch.cli.main import main

A = os.urandom(3000)
B = os.urandom(4000)
SHA_A = hashlib.sha256(A).hexdigest()
SHA_B = hashlib.sha256(B).hexdigest()


def run_many(listing: Path, dest: Path, ca_bundle: Path, *extra: str) -> int:
    args = ["many", str(listing), "-o", str(dest), "--ca-bundle", str(ca_bundle)]
    return main([*args, "--retries", "0", "--no-cache", *extra])


def test_name_and_size_tokens_and_a_bad_line_skipped(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    archive = https_server.route("/archive/v2.1.tar.gz", body=A)
    other = https_server.route("/dist/b-1.0.tgz", body=B)
    listing = tmp_path / "files.txt"
    listing.write_text(
        "# URL [sha256] [fallback ...] [name=FILENAME] [size=N]\n"
        f"{archive} {SHA_A} name=lrcalc-2.1.tar.gz size={len(A)}\n"
        f"{archive} sha256:{SHA_A} name=lrcalc_python-2.1.tar.gz\n"
        "gopher://old.example/f.tgz\n"
        f"{other} {SHA_B} sha256-not-a-hash\n"
        f"{other}#sha256={SHA_B} size=x\n"
        f"{other}#sha256={SHA_B}  # a fragment is not a comment\n"
    )
    assert run_many(listing, dest_dir, ca_bundle) == 2
    out, err = capsys.readouterr()
    assert sorted(os.listdir(dest_dir)) == [
        "b-1.0.tgz",
        "lrcalc-2.1.tar.gz",
        "lrcalc_python-2.1.tar.gz",
    ]
    assert (dest_dir / "lrcalc_python-2.1.tar.gz").read_bytes() == A
    assert "line 4: unsupported URL scheme 'gopher'" in err
    assert "line 5: 'sha256-not-a-hash' is neither a sha256" in err
    assert "line 6: 'size=x': size= takes one number of bytes" in err
    assert "3 files" in err and "3 bad lines skipped" in err
    assert len(out.split()) == 3


def test_size_token_is_checked(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    url = https_server.route("/dist/a.tgz", body=A)
    listing = tmp_path / "files.txt"
    listing.write_text(f"{url} {SHA_A} size={len(A) + 1}\n")
    assert run_many(listing, dest_dir, ca_bundle) == 1
    assert f"{url}: size_mismatch" in capsys.readouterr().err
    assert os.listdir(dest_dir) == []


def test_two_packages_sharing_one_tarball_are_fetched_once(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    first = https_server.route("/gap/gap-4.13.tar.gz", body=A)
    second = https_server.route("/gap_packages/gap-4.13.tar.gz", body=A)
    listing = tmp_path / "files.txt"
    listing.write_text(f"{first} {SHA_A}\n{second} {SHA_A}\n{first} {SHA_A}\n")
    assert run_many(listing, dest_dir, ca_bundle) == 0
    out, _ = capsys.readouterr()
    assert out.split() == [str(dest_dir / "gap-4.13.tar.gz")] * 3
    assert (
        https_server.hits("/gap/gap-4.13.tar.gz")
        + https_server.hits("/gap_packages/gap-4.13.tar.gz")
        == 1
    )


def test_one_dest_with_two_hashes_skips_the_later_line(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    url = https_server.route("/dist/f.tgz", body=A)
    listing = tmp_path / "files.txt"
    listing.write_text(f"{url} {SHA_A}\n{url} {SHA_B}\n")
    assert run_many(listing, dest_dir, ca_bundle) == 2
    err = capsys.readouterr().err
    assert "line 2: two requests write the same dest" in err
    assert (dest_dir / "f.tgz").read_bytes() == A


def test_json_list_items_take_request_keys_and_bad_items_are_skipped(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    url = https_server.route("/archive/v1.tar.gz", body=A)
    items = [
        {"url": url, "sha256": SHA_A, "filename": "one-1.tar.gz", "size": len(A)},
        {"url": url, "nme": "typo"},
        42,
        {"url": url, "hashes": {"sha512": hashlib.sha512(A).hexdigest()}, "filename": "two.tgz"},
    ]
    listing = tmp_path / "files.json"
    listing.write_text(json.dumps(items))
    assert run_many(listing, dest_dir, ca_bundle, "--json") == 2
    out, err = capsys.readouterr()
    assert [json.loads(line)["path"] for line in out.splitlines()] == [
        str(dest_dir / "one-1.tar.gz"),
        str(dest_dir / "two.tgz"),
    ]
    assert "item 1: unknown keys ['nme']" in err and "item 2: expected a URL" in err


def test_a_metalink_file_goes_to_read_metalink(
    https_server: Server,
    ca_bundle: Path,
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = https_server.route("/dist/a.tgz", body=A)
    seen: list[Any] = []

    def read_metalink(source: Any) -> list[Request]:
        seen.append(source)
        return [Request(url, SHA_A, filename="from-metalink.tgz")]

    monkeypatch.setattr(robustfetch, "read_metalink", read_metalink, raising=False)
    listing = tmp_path / "files.meta4"
    document = '<?xml version="1.0"?>\n<metalink xmlns="urn:ietf:params:xml:ns:metalink"/>\n'
    listing.write_text(document)
    assert run_many(listing, dest_dir, ca_bundle) == 0
    assert seen == [document]
    assert (dest_dir / "from-metalink.tgz").read_bytes() == A


def test_request_fields_in_fetch_many(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/archive/v1.tar.gz", body=A)
    other = https_server.route("/dist/b.tgz", body=B)
    assert [f for f in Request.__dataclass_fields__] == [
        "url",
        "sha256",
        "fallbacks",
        "dest",
        "filename",
        "size",
        "hashes",
    ]
    results = robustfetch.fetch_many(
        [
            Request(url, SHA_A, (), dest_dir, "named.tgz", len(A)),
            {"url": url, "sha256": SHA_A, "dest": dest_dir, "filename": "named.tgz"},
            {"url": other, "hashes": {"sha512": hashlib.sha512(A).hexdigest()}, "dest": dest_dir},
            Request(other, dest=dest_dir, filename="sized.tgz", size=1),
        ],
        **opts,
    )
    assert isinstance(results[0], FetchResult) and results[1] is results[0]
    assert results[0].path == dest_dir / "named.tgz"
    assert https_server.hits("/archive/v1.tar.gz") == 1
    assert isinstance(results[2], FetchError) and isinstance(results[3], FetchError)
    assert [a.reason for a in results[2].attempts] == [Reason.HASH_MISMATCH]
    assert [a.reason for a in results[3].attempts] == [Reason.SIZE_MISMATCH]


def test_fetch_many_still_refuses_a_bad_item_before_any_download(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = https_server.route("/dist/a.tgz", body=A)
    with pytest.raises(ValueError, match=r"request 1: .*filename"):
        robustfetch.fetch_many(
            [Request(good, dest=dest_dir), Request(good, dest=dest_dir, filename="../x")], **opts
        )
    assert https_server.connections == 0


def test_fetch_command_takes_name_and_hashed_mirror(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    folder = tmp_path / "by-hash"
    (folder / "sha256" / SHA_A[:2]).mkdir(parents=True)
    (folder / "sha256" / SHA_A[:2] / SHA_A).write_bytes(A)
    url = https_server.route("/archive/v1.tar.gz", body=A)
    args = ["fetch", url, "--sha256", SHA_A, "-o", str(dest_dir), "--ca-bundle", str(ca_bundle)]
    assert main([*args, "--name", "pkg-1.tar.gz", "--hashed-mirror", str(folder), "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(dest_dir / "pkg-1.tar.gz")
    assert https_server.hits("/archive/v1.tar.gz") == 0
