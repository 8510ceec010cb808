"""Metalink 4 (RFC 5854): read_metalink, priorities, hashes, sizes, hostile documents, many."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import Reason, Request, read_metalink
from robustfetch.cli.main import main

DATA = os.urandom(60_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
SHA512 = hashlib.sha512(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


def _document(files: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink">\n'
        "  <published>2024-01-01T00:00:00Z</published>\n"
        f"{files}</metalink>\n"
    )


def _file(name: str, urls: list[tuple[str, int]], size: int = len(DATA)) -> str:
    lines = "".join(
        f'    <url location="de" priority="{priority}">{url}</url>\n' for url, priority in urls
    )
    return (
        f'  <file name="{name}">\n    <size>{size}</size>\n'
        f'    <hash type="sha-256">{DIGEST.upper()}</hash>\n'
        f'    <hash type="sha-512">{SHA512}</hash>\n'
        f'    <hash type="md5">{MD5}</hash>\n'
        '    <hash type="tiger">00ff</hash>\n'
        '    <metaurl mediatype="torrent" priority="1">https://t.example/f.torrent</metaurl>\n'
        f"{lines}  </file>\n"
    )


def test_read_metalink_names_sizes_hashes_and_priorities(tmp_path: Path) -> None:
    text = _document(
        _file(
            "pkg-1.0.tar.gz",
            [
                ("https://b.example/pkg-1.0.tar.gz", 20),
                ("https://a.example/pkg-1.0.tar.gz", 10),
                ("magnet:?xt=urn:btih:00", 1),
                ("file:///etc/pkg-1.0.tar.gz", 1),
                ("http://c.example/pkg-1.0.tar.gz", 30),
            ],
        )
    )
    path = tmp_path / "pkg.meta4"
    path.write_text(text)
    for source in (path, text, text.encode()):
        (request,) = read_metalink(source)
        assert isinstance(request, Request)
        assert request.url == "https://a.example/pkg-1.0.tar.gz"
        assert list(request.fallbacks) == [
            "https://b.example/pkg-1.0.tar.gz",
            "http://c.example/pkg-1.0.tar.gz",
        ]
        assert (request.filename, request.size, request.sha256) == (
            "pkg-1.0.tar.gz",
            len(DATA),
            DIGEST,
        )
        assert request.hashes == {"sha256": DIGEST, "sha512": SHA512, "md5": MD5}


@pytest.mark.parametrize(
    "document",
    [
        # billion laughs
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="&lol2;">'
        "<url>https://a.example/f</url></file></metalink>",
        # an external entity reading a local file
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="f">'
        "<url>https://a.example/&x;</url></file></metalink>",
        # a DTD fetched from the network
        '<!DOCTYPE metalink SYSTEM "https://evil.example/x.dtd">'
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"/>',
        # not Metalink, not XML, no file, a file without URL, a path as name
        "<feed><entry/></feed>",
        "<metalink",
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"></metalink>',
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="f"/></metalink>',
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="..">'
        "<url>https://a.example/f</url></file></metalink>",
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="f"><size>-1</size>'
        "<url>https://a.example/f</url></file></metalink>",
    ],
)
def test_hostile_or_broken_documents_are_value_errors(document: str) -> None:
    with pytest.raises(ValueError):
        read_metalink(document)


def test_a_name_with_folders_keeps_only_the_file_name() -> None:
    doc = _document(_file("../../etc/pkg.tgz", [("https://a.example/pkg.tgz", 1)]))
    assert read_metalink(doc)[0].filename == "pkg.tgz"


def test_oversized_document_is_refused_before_parsing() -> None:
    with pytest.raises(ValueError, match="larger"):
        read_metalink(b"<metalink>" + b" " * (17 << 20))


def test_metalink_first_url_404s_the_next_serves(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    first = https_server.route("/a/pkg-1.0.tar.gz", status=404)
    second = https_server.route("/b/pkg-1.0.tar.gz", body=DATA)
    (request,) = read_metalink(_document(_file("pkg-1.0.tar.gz", [(second, 2), (first, 1)])))
    (result,) = robustfetch.fetch_many([request], **{**opts, "cache_dir": dest_dir})
    assert not isinstance(result, Exception), result
    assert result.url == second
    assert [(a.url, a.reason) for a in result.attempts] == [
        (first, Reason.NOT_FOUND),
        (second, None),
    ]
    assert [r.path for r in https_server.requests] == ["/a/pkg-1.0.tar.gz", "/b/pkg-1.0.tar.gz"]


def test_metalink_hash_refuses_wrong_bytes(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    bad = https_server.route("/a/pkg-1.0.tar.gz", body=DATA[::-1])
    (request,) = read_metalink(_document(_file("pkg-1.0.tar.gz", [(bad, 1)])))
    (result,) = robustfetch.fetch_many([request], **{**opts, "cache_dir": dest_dir})
    assert isinstance(result, robustfetch.FetchError)
    assert result.attempts[-1].reason is Reason.HASH_MISMATCH


def test_many_reads_a_meta4_file(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = https_server.route("/a/pkg-1.0.tar.gz", status=404)
    second = https_server.route("/b/pkg-1.0.tar.gz", body=DATA)
    # The file is stored under the Metalink's name, not the URL's.
    other = https_server.route("/c/download?id=7", body=DATA)
    meta4 = tmp_path / "files.meta4"
    meta4.write_text(
        _document(
            _file("pkg-1.0.tar.gz", [(first, 1), (second, 2)])
            + _file("renamed-1.0.tar.gz", [(other, 1)])
        )
    )
    code = main(
        [
            "many",
            str(meta4),
            "-o",
            str(dest_dir),
            "--no-cache",
            "--ca-bundle",
            str(opts["ca_bundle"]),
            "--retries",
            "0",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["url"] for r in records) == sorted([second, other])
    assert (dest_dir / "pkg-1.0.tar.gz").read_bytes() == DATA
    assert (dest_dir / "renamed-1.0.tar.gz").read_bytes() == DATA
