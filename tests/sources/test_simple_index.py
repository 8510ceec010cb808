"""Simple indexes: a static PEP 503 tree on nginx, a scripted PEP 691 endpoint, hash witnesses."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Certs, Server
from dummyserver.nginx import Nginx, find_nginx
from robustfetch import FetchError, Reason
from robustfetch.policy.index_pages import JSON_ACCEPT

DATA = os.urandom(50_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
OTHER = hashlib.sha256(b"something else").hexdigest()
SDIST = "six-1.16.0.tar.gz"


@pytest.fixture
def pep503(tmp_path: Path, certs: Certs) -> Iterator[Nginx]:
    """nginx over a static PEP 503 tree: /simple/six/index.html and /packages/<file>."""
    if find_nginx() is None:
        pytest.skip("nginx is not installed")
    root = tmp_path / "index-root"
    (root / "simple" / "six").mkdir(parents=True)
    (root / "simple" / "foo").mkdir(parents=True)
    (root / "packages").mkdir()
    (root / "packages" / SDIST).write_bytes(DATA)
    (root / "packages" / "foo-2-bar-1.0.tar.gz").write_bytes(DATA)
    (root / "simple" / "six" / "index.html").write_text(
        "<!DOCTYPE html><html><body><h1>Links for six</h1>\n"
        f'<a href="../../packages/six-1.15.0.tar.gz#sha256={OTHER}">six-1.15.0.tar.gz</a><br>\n'
        f'<a href="../../packages/{SDIST}#sha256={DIGEST}" data-requires-python="">'
        f"{SDIST}</a><br>\n</body></html>\n"
    )
    (root / "simple" / "foo" / "index.html").write_text(
        '<a href="/packages/foo-2-bar-1.0.tar.gz">foo-2-bar-1.0.tar.gz</a>'
    )
    with Nginx(root, certs.good) as server:
        yield server


def test_pep503_index_link_is_tried_after_url_and_mirrors(
    pep503: Nginx, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    missing = https_server.route(f"/dist/{SDIST}", status=404)
    https_server.route("/mirror/other.txt", body=b"x")
    result = robustfetch.fetch(
        missing,
        dest=dest_dir,
        mirrors=[https_server.url("/mirror")],
        index_urls=[pep503.url("/simple")],
        **opts,
    )
    assert result.path.read_bytes() == DATA
    assert result.url == pep503.url(f"/packages/{SDIST}")
    assert [(a.url, a.reason) for a in result.attempts] == [
        (missing, Reason.NOT_FOUND),
        (https_server.url(f"/mirror/{SDIST}"), Reason.NOT_FOUND),
        (pep503.url(f"/packages/{SDIST}"), None),
    ]
    assert [r.path for r in https_server.requests] == [f"/dist/{SDIST}", f"/mirror/{SDIST}"]
    assert pep503.requests() == [(200, "/simple/six/"), (200, f"/packages/{SDIST}")]


def test_index_hash_is_a_witness_that_catches_wrong_bytes(
    pep503: Nginx, opts: dict[str, Any], dest_dir: Path
) -> None:
    (pep503.root / "packages" / SDIST).write_bytes(DATA[::-1])  # the index lists DIGEST
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            pep503.url(f"/gone/{SDIST}"),
            dest=dest_dir,
            index_urls=[pep503.url("/simple/")],
            **opts,
        )
    last = info.value.attempts[-1]
    assert (last.url, last.reason) == (pep503.url(f"/packages/{SDIST}"), Reason.HASH_MISMATCH)
    assert list(dest_dir.iterdir()) == []


def test_index_hash_that_contradicts_the_pin_refuses_the_link(
    pep503: Nginx, opts: dict[str, Any], dest_dir: Path
) -> None:
    index = pep503.url("/simple/")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            pep503.url(f"/gone/{SDIST}"), OTHER, dest=dest_dir, index_urls=[index], **opts
        )
    last = info.value.attempts[-1]
    assert last.reason is Reason.HASH_MISMATCH
    assert index in last.detail and DIGEST in last.detail
    # The refused link was never requested.
    assert (200, f"/packages/{SDIST}") not in pep503.requests()


def test_legacy_sdist_name_with_dashes_tries_the_longest_name_first(
    pep503: Nginx, opts: dict[str, Any], dest_dir: Path
) -> None:
    result = robustfetch.fetch(
        pep503.url("/gone/foo-2-bar-1.0.tar.gz"),
        DIGEST,
        dest=dest_dir,
        index_urls=[pep503.url("/simple")],
        **opts,
    )
    assert result.url == pep503.url("/packages/foo-2-bar-1.0.tar.gz")
    assert [p for _, p in pep503.requests()] == [
        "/gone/foo-2-bar-1.0.tar.gz",
        "/simple/foo-2-bar/",
        "/simple/foo/",
        "/packages/foo-2-bar-1.0.tar.gz",
    ]


def _pep691(files: list[dict[str, Any]], name: str = "zope-interface") -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files}).encode()


WHEEL = "Zope.Interface-5.4.0-cp39-cp39-manylinux1_x86_64.whl"


def test_pep691_json_page_is_asked_for_and_read(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route(
        "/simple/zope-interface/",
        body=_pep691(
            [{"filename": WHEEL, "url": f"../../files/{WHEEL}", "hashes": {"sha256": DIGEST}}]
        ),
        headers={"Content-Type": "application/vnd.pypi.simple.v1+json"},
    )
    https_server.route(f"/files/{WHEEL}", body=DATA)
    missing = https_server.route(f"/dist/{WHEEL}", status=404)
    result = robustfetch.fetch(
        missing, dest=dest_dir, index_urls=[https_server.url("/simple/")], **opts
    )
    assert result.url == https_server.url(f"/files/{WHEEL}")
    assert result.path.name == WHEEL
    page = https_server.requests_for("/simple/zope-interface/")
    assert [r.headers.get("accept") for r in page] == [JSON_ACCEPT]
    assert [r.path for r in https_server.requests] == [
        f"/dist/{WHEEL}",
        "/simple/zope-interface/",
        f"/files/{WHEEL}",
    ]


def test_pep691_listed_hash_checks_the_bytes(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route(
        "/simple/zope-interface/",
        body=_pep691([{"filename": WHEEL, "url": f"/files/{WHEEL}", "hashes": {"sha256": OTHER}}]),
        headers={"Content-Type": "application/vnd.pypi.simple.v1+json"},
    )
    https_server.route(f"/files/{WHEEL}", body=DATA)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            https_server.url(f"/dist/{WHEEL}"),
            dest=dest_dir,
            index_urls=[https_server.url("/simple")],
            **opts,
        )
    assert info.value.attempts[-1].reason is Reason.HASH_MISMATCH


@pytest.mark.parametrize("target", ["file:///etc/hostname", "http://127.0.0.1:9/f"])
def test_remote_index_may_not_lead_to_local_files_or_plain_http(
    target: str, https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route(
        "/simple/six/",
        body=f'<a href="{target}/{SDIST}">{SDIST}</a>'.encode(),
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            https_server.url(f"/dist/{SDIST}"),
            dest=dest_dir,
            index_urls=[https_server.url("/simple/")],
            **opts,
        )
    last = info.value.attempts[-1]
    assert (last.url, last.reason) == (f"{target}/{SDIST}", Reason.INSECURE_REFUSED)


def test_a_file_not_named_like_a_distribution_asks_no_index(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    with pytest.raises(FetchError):
        robustfetch.fetch(
            https_server.url("/dist/README"),
            dest=dest_dir,
            index_urls=[https_server.url("/simple/")],
            **opts,
        )
    assert [r.path for r in https_server.requests] == ["/dist/README"]


def test_index_urls_are_checked_before_any_traffic() -> None:
    with pytest.raises(ValueError, match="index_urls"):
        robustfetch.fetch("https://h.example/f.tgz", index_urls="https://pypi.org/simple/")
    with pytest.raises(ValueError, match="gopher"):
        robustfetch.fetch("https://h.example/f.tgz", index_urls=["gopher://x/simple/"])
