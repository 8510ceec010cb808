"""find-links: nginx ``autoindex on``, Apache's listing, pip-style pages, local folders."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Certs, Server
from dummyserver.nginx import Nginx, find_nginx
from robustfetch import FetchError, Reason
from robustfetch.cli.main import main

DATA = os.urandom(40_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
NAME = "pkg-1.0.tar.gz"

# What Apache's mod_autoindex sends for a folder (FancyIndexing, as on most mirrors).
APACHE_LISTING = f"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /pub/python</title>
 </head>
 <body>
<h1>Index of /pub/python</h1>
  <table>
   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th></tr>
   <tr><th colspan="4"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/pub/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td></tr>
<tr><td valign="top"><img src="/icons/compressed.gif" alt="[   ]"></td><td><a href="other-2.0.tar.gz">other-2.0.tar.gz</a></td><td align="right">2024-01-01 10:00  </td><td align="right"> 12K</td></tr>
<tr><td valign="top"><img src="/icons/compressed.gif" alt="[   ]"></td><td><a href="{NAME}">{NAME}</a></td><td align="right">2024-01-01 10:00  </td><td align="right"> 39K</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="old/">old/</a></td><td align="right">2024-01-01 10:00  </td><td align="right">  - </td></tr>
   <tr><th colspan="4"><hr></th></tr>
</table>
<address>Apache/2.4.57 (Debian) Server at mirror.example Port 443</address>
</body></html>
"""  # noqa: E501 - a listing, as Apache writes it


@pytest.fixture
def autoindex(tmp_path: Path, certs: Certs) -> Iterator[Nginx]:
    """nginx with ``autoindex on`` over a folder holding /wheels/pkg-1.0.tar.gz."""
    if find_nginx() is None:
        pytest.skip("nginx is not installed")
    root = tmp_path / "listing-root"
    (root / "wheels" / "sub").mkdir(parents=True)
    (root / "wheels" / NAME).write_bytes(DATA)
    (root / "wheels" / "unrelated-3.0.zip").write_bytes(b"zip")
    with Nginx(root, certs.good, autoindex=True) as server:
        yield server


def test_nginx_autoindex_listing_is_a_find_links_page(
    autoindex: Nginx, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    missing = https_server.route(f"/dist/{NAME}", status=404)
    result = robustfetch.fetch(
        missing, DIGEST, dest=dest_dir, find_links=[autoindex.url("/wheels/")], **opts
    )
    assert result.url == autoindex.url(f"/wheels/{NAME}")
    assert result.path.read_bytes() == DATA
    assert autoindex.requests() == [(200, "/wheels/"), (200, f"/wheels/{NAME}")]
    assert [a.reason for a in result.attempts] == [Reason.NOT_FOUND, None]


def test_apache_listing_links_resolve_against_the_redirected_page_url(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    # /listing redirects to /pub/python/: relative links are relative to the latter.
    https_server.route("/listing", status=301, headers={"Location": "/pub/python/"})
    https_server.route(
        "/pub/python/",
        body=APACHE_LISTING.encode(),
        headers={"Content-Type": "text/html;charset=UTF-8"},
    )
    https_server.route(f"/pub/python/{NAME}", body=DATA)
    result = robustfetch.fetch(
        https_server.url(f"/gone/{NAME}"),
        DIGEST,
        dest=dest_dir,
        find_links=[https_server.url("/listing")],
        **opts,
    )
    assert result.url == https_server.url(f"/pub/python/{NAME}")
    assert [r.path for r in https_server.requests] == [
        f"/gone/{NAME}",
        "/listing",
        "/pub/python/",
        f"/pub/python/{NAME}",
    ]


def test_index_links_come_before_find_links(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route(
        "/simple/pkg/",
        body=f'<a href="/idx/{NAME}">{NAME}</a>'.encode(),
        headers={"Content-Type": "text/html"},
    )
    https_server.route("/fl/", body=f'<a href="/flf/{NAME}">x</a>'.encode())
    https_server.route(f"/idx/{NAME}", status=404)
    https_server.route(f"/flf/{NAME}", body=DATA)
    result = robustfetch.fetch(
        https_server.url(f"/gone/{NAME}"),
        DIGEST,
        dest=dest_dir,
        find_links=[https_server.url("/fl/")],
        index_urls=[https_server.url("/simple/")],
        **opts,
    )
    assert result.url == https_server.url(f"/flf/{NAME}")
    assert [r.path for r in https_server.requests] == [
        f"/gone/{NAME}",
        "/simple/pkg/",
        "/fl/",
        f"/idx/{NAME}",
        f"/flf/{NAME}",
    ]


def test_local_folder_as_find_links(
    tmp_path: Path, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    (folder / NAME).write_bytes(DATA)
    for spelling in (str(folder), folder, folder.as_uri()):
        result = robustfetch.fetch(
            https_server.url(f"/gone/{NAME}"),
            DIGEST,
            dest=dest_dir / f"copy-{len(list(dest_dir.iterdir()))}",
            find_links=[spelling],
            **opts,
        )
        assert result.url == (folder / NAME).as_uri()
    (folder / NAME).write_bytes(DATA[::-1])  # a local copy still passes the hash check
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            https_server.url(f"/gone/{NAME}"),
            DIGEST,
            dest=dest_dir / "x",
            find_links=[folder],
            **opts,
        )
    assert info.value.attempts[-1].reason is Reason.HASH_MISMATCH


def test_find_links_page_that_lists_nothing_is_reported(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    page = https_server.route("/fl/", body=b'<a href="other-1.0.tar.gz">other</a>')
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            https_server.url(f"/gone/{NAME}"), DIGEST, dest=dest_dir, find_links=[page], **opts
        )
    last = info.value.attempts[-1]
    assert (last.url, last.reason) == (page, Reason.NOT_FOUND)
    assert NAME in last.detail


def test_cli_find_links_and_index_url(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    https_server.route("/fl/", body=f'<a href="f/{NAME}">x</a>'.encode())
    https_server.route(f"/fl/f/{NAME}", body=DATA)
    code = main(
        [
            "fetch",
            https_server.url(f"/gone/{NAME}"),
            "--sha256",
            DIGEST,
            "--find-links",
            https_server.url("/fl/"),
            "--index-url",
            https_server.url("/simple/"),
            "--ca-bundle",
            str(opts["ca_bundle"]),
            "--retries",
            "0",
            "-o",
            str(dest_dir),
            "--no-cache",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (dest_dir / NAME).read_bytes() == DATA
