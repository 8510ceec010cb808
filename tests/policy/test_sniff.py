"""Error pages and archive types recognised from a body's first bytes."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustfetch.policy.sniff import (
    describe_bytes,
    describe_error_page,
    expected_kind,
    is_error_page,
    kind_of,
    page_title,
)


def tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"a"))
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "a")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content_type", "head", "name", "page"),
    [
        ("text/html", b"", "f.tar.gz", True),
        ("TEXT/HTML; charset=iso-8859-1", b"hello", "f", True),
        ("application/xhtml+xml", b"", "f.whl", True),
        (None, b"<!DOCTYPE html><html>", "f.zip", True),
        (None, b"\xef\xbb\xbf\r\n  <html lang=en>", "f.zip", True),
        (None, b"<!-- portal -->\n<HTML>", "f.zip", True),
        ("application/octet-stream", b"  <!doctype HTML>", "f.bin", True),
        # the name asks for HTML
        ("text/html", b"<html>", "index.html", False),
        ("text/html", b"<html>", "INDEX.HTM", False),
        # the bytes are an archive: a mislabelled file, not a page
        ("text/html", gzip.compress(b"x"), "f.tar.gz", False),
        ("text/html", zip_bytes(), "f.whl", False),
        # neither header nor bytes
        ("application/octet-stream", b"<htmlx", "f", False),
        (None, b"plain text <html>", "f.txt", False),
        ("text/plain", b"", "f", False),
    ],
)
def test_is_error_page(content_type: str | None, head: bytes, name: str, page: bool) -> None:
    assert is_error_page(content_type, head, name) is page


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (gzip.compress(b"x"), "gzip"),
        (zip_bytes(), "zip"),
        (b"\xfd7zXZ\x00\x00", "xz"),
        (b"BZh91AY&SY", "bzip2"),
        (b"\x28\xb5\x2f\xfd\x00", "zstd"),
        (tar_bytes(), "tar"),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_kind_of(head: bytes, kind: str | None) -> None:
    assert kind_of(head[:512]) == kind


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a-1.tar.gz", "gzip"),
        ("a.TGZ", "gzip"),
        ("a.whl", "zip"),
        ("a.tar.xz", "xz"),
        ("a.tar.bz2", "bzip2"),
        ("a.tar.zst", "zstd"),
        ("a.tar", "tar"),
        ("a.bin", None),
    ],
)
def test_expected_kind(name: str, kind: str | None) -> None:
    assert expected_kind(name) == kind


def test_title_and_error_page_description() -> None:
    body = b"<html><head><TITLE>\n  Caf&eacute; &amp; WiFi  </title>"
    assert page_title(body) == "Caf\u00e9 & WiFi"
    assert page_title(b"<html>") is None
    text = describe_error_page(body, 200, "https://portal/login", "https://files/f.tgz")
    assert "Caf\u00e9 & WiFi" in text and "status 200" in text
    assert "https://portal/login" in text and "https://files/f.tgz" in text
    assert "captive portal" in text


@pytest.mark.parametrize(
    ("head", "size", "name", "expected_size", "words"),
    [
        (b"", 0, "f.tar.gz", None, "empty"),
        (None, 10, "f.tar.gz", None, "resumed"),
        (b"<!doctype html><title>Login</title>", 900, "f.tar.gz", None, "HTML page titled 'Login'"),
        (zip_bytes(), 900, "f.tar.gz", None, "promises a gzip archive but the bytes are a zip"),
        (b"\x00\x01junk", 900, "f.tar.gz", None, "no known archive type"),
        (gzip.compress(b"x"), 900, "f.tar.gz", 900, "right size"),
        (gzip.compress(b"x"), 900, "f.tar.gz", 1000, "gzip archive as the name says"),
        (b"\x00\x01junk", 900, "f.bin", None, "not a recognised archive"),
    ],
)
def test_describe_bytes(
    head: bytes | None, size: int, name: str, expected_size: int | None, words: str
) -> None:
    assert words in describe_bytes(head, size, name, expected_size)


@given(st.binary(max_size=600), st.text(max_size=40), st.none() | st.text(max_size=40))
def test_sniffing_never_crashes(head: bytes, name: str, content_type: str | None) -> None:
    assert isinstance(is_error_page(content_type, head, name), bool)
    assert describe_bytes(head, len(head), name)
    page_title(head)
