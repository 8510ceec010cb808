"""Hashed mirrors (a cache folder served as is), ``{sha256}`` in mirrors, ``cache export``.

The story of the contract: one machine's cache folder, served by a real nginx,
is a mirror for another machine with an empty cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Certs, Server, closed_port
from dummyserver.nginx import Nginx, find_nginx
from robustfetch import FetchError, Reason
from robustfetch.cli.main import main

DATA = os.urandom(70_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
OTHER = os.urandom(5_000)
OTHER_DIGEST = hashlib.sha256(OTHER).hexdigest()
DEAD = f"https://127.0.0.1:{closed_port()}/dist/pkg-1.0.tgz"


def require_nginx() -> None:
    if find_nginx() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed; CI must run the hashed-mirror tests")
        pytest.skip("nginx is not installed")


def nginx_options(nginx: Nginx, ca_bundle: Path) -> dict[str, Any]:
    return {"connect_to": {f"example.test:{nginx.port}": f"127.0.0.1:{nginx.port}"}}


def requested_paths(nginx: Nginx) -> list[str]:
    """The request targets nginx logged, in order."""
    log = (nginx.work / "access.log").read_text()
    return [line.split('"')[1].split()[1] for line in log.splitlines() if '"' in line]


def test_a_cache_folder_served_by_nginx_is_a_mirror_for_another_cache(
    https_server: Server, opts: dict[str, Any], certs: Certs, ca_bundle: Path, tmp_path: Path
) -> None:
    require_nginx()
    first_cache = tmp_path / "first-cache"
    upstream = https_server.route("/dist/pkg-1.0.tgz", body=DATA)
    first = robustfetch.fetch(upstream, DIGEST, **{**opts, "cache_dir": first_cache})
    assert first.path == first_cache / "sha256" / DIGEST[:2] / DIGEST
    assert https_server.hits("/dist/pkg-1.0.tgz") == 1
    with Nginx(first_cache, certs.good) as nginx:
        base = nginx.url("/", host="example.test")
        second_cache = tmp_path / "second-cache"
        options = {**opts, **nginx_options(nginx, ca_bundle), "cache_dir": second_cache}
        result = robustfetch.fetch(upstream, DIGEST, hashed_mirrors=[base], **options)
        # Tried first, before the URL: upstream saw no second request.
        hashed = f"{base}sha256/{DIGEST[:2]}/{DIGEST}"
        assert (result.url, result.path.read_bytes()) == (hashed, DATA)
        assert [a.url for a in result.attempts] == [hashed]
        assert https_server.hits("/dist/pkg-1.0.tgz") == 1
        assert requested_paths(nginx) == [f"/sha256/{DIGEST[:2]}/{DIGEST}"]
        assert result.path == second_cache / "sha256" / DIGEST[:2] / DIGEST
        # A file the mirror lacks: its 404, then the URL.
        other = https_server.route("/dist/other.tgz", body=OTHER)
        missed = robustfetch.fetch(other, OTHER_DIGEST, hashed_mirrors=[base], **options)
        assert [(a.url, a.reason) for a in missed.attempts] == [
            (f"{base}sha256/{OTHER_DIGEST[:2]}/{OTHER_DIGEST}", Reason.NOT_FOUND),
            (other, None),
        ]
        assert requested_paths(nginx)[-1] == f"/sha256/{OTHER_DIGEST[:2]}/{OTHER_DIGEST}"


def test_hashed_mirrors_need_a_sha256_pin(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mirror"
    (folder / "sha256" / DIGEST[:2]).mkdir(parents=True)
    (folder / "sha256" / DIGEST[:2] / DIGEST).write_bytes(DATA)
    url = https_server.route("/dist/pkg-1.0.tgz", body=DATA)
    pinned = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, hashed_mirrors=[folder], **opts)
    assert pinned.url == (folder / "sha256" / DIGEST[:2] / DIGEST).as_uri()
    assert [a.url for a in pinned.attempts] == [pinned.url]
    assert (dest_dir / "pkg-1.0.tgz").read_bytes() == DATA
    (dest_dir / "pkg-1.0.tgz").unlink()
    unpinned = robustfetch.fetch(url, dest=dest_dir, hashed_mirrors=[folder], **opts)
    assert [a.url for a in unpinned.attempts] == [url]


def test_a_hashed_mirror_with_wrong_bytes_is_passed_over(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mirror"
    (folder / "sha256" / DIGEST[:2]).mkdir(parents=True)
    (folder / "sha256" / DIGEST[:2] / DIGEST).write_bytes(DATA[::-1])
    url = https_server.route("/dist/pkg-1.0.tgz", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, hashed_mirrors=[str(folder)], **opts)
    assert [a.reason for a in result.attempts] == [Reason.HASH_MISMATCH, None]
    assert result.url == url


def test_hashed_mirrors_from_the_environment(
    opts: dict[str, Any], dest_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = [tmp_path / "a", tmp_path / "b"]
    (folders[1] / "sha256" / DIGEST[:2]).mkdir(parents=True)
    (folders[1] / "sha256" / DIGEST[:2] / DIGEST).write_bytes(DATA)
    monkeypatch.setenv("ROBUSTFETCH_HASHED_MIRRORS", f"{folders[0]}\n {folders[1]}")
    result = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, **opts)
    assert [a.reason for a in result.attempts] == [Reason.NOT_FOUND, None]
    assert result.url == (folders[1] / "sha256" / DIGEST[:2] / DIGEST).as_uri()


def test_sha256_in_a_mirror_is_replaced_or_the_mirror_skipped(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    by_hash = https_server.route(f"/by-hash/{DIGEST}/pkg-1.0.tgz", body=DATA)
    mirrors = [https_server.url("/by-hash/{sha256}/{filename}"), https_server.url("/plain")]
    result = robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, mirrors=mirrors, **opts)
    assert result.url == by_hash
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(DEAD, dest=dest_dir, mirrors=mirrors, **opts)
    assert [a.url for a in info.value.attempts] == [DEAD, https_server.url("/plain/pkg-1.0.tgz")]


def test_filename_names_the_file_for_mirrors_and_a_folder_dest(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    on_mirror = https_server.route("/m/lrcalc_python-2.1.tar.gz", body=DATA)
    archive = https_server.url("/archive/v2.1.tar.gz")
    result = robustfetch.fetch(
        archive,
        DIGEST,
        dest=dest_dir,
        filename="lrcalc_python-2.1.tar.gz",
        mirrors=[https_server.url("/m")],
        **opts,
    )
    assert result.url == on_mirror
    assert result.path == dest_dir / "lrcalc_python-2.1.tar.gz"
    assert os.listdir(dest_dir) == ["lrcalc_python-2.1.tar.gz"]


@pytest.mark.parametrize("name", ["", "..", "a/b.tgz", "a\\b.tgz", "a\x00b", "x" * 256])
def test_filename_must_be_a_plain_name(name: str, dest_dir: Path) -> None:
    with pytest.raises(ValueError, match="filename"):
        robustfetch.fetch(DEAD, DIGEST, dest=dest_dir, filename=name)


def test_cache_export_writes_the_hashed_mirror_layout(
    https_server: Server, opts: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    cache = tmp_path / "cache"
    url = https_server.route("/dist/pkg-1.0.tgz", body=DATA)
    other = https_server.route("/dist/other.tgz", body=OTHER)
    for address, digest in ((url, DIGEST), (other, OTHER_DIGEST)):
        robustfetch.fetch(address, digest, **{**opts, "cache_dir": cache})
    everything = tmp_path / "everything"
    assert main(["cache", "--cache-dir", str(cache), "export", str(everything)]) == 0
    exported = everything / "sha256" / DIGEST[:2] / DIGEST
    assert exported.read_bytes() == DATA
    assert (everything / "sha256" / OTHER_DIGEST[:2] / OTHER_DIGEST).read_bytes() == OTHER
    # A copy, not a link: changing the export leaves the cache alone.
    assert exported.stat().st_ino != (cache / "sha256" / DIGEST[:2] / DIGEST).stat().st_ino
    assert not [p for p in everything.rglob("*") if p.name.endswith(".robustfetch-part")]
    # Only what a many file names; a missing entry is reported (exit 1).
    listing = tmp_path / "files.txt"
    listing.write_text(f"{url} {DIGEST}\nhttps://x.example/y.tgz {'0' * 64}\n")
    some = tmp_path / "some"
    capsys.readouterr()
    assert main(["cache", "--cache-dir", str(cache), "export", str(some), str(listing)]) == 1
    assert [p.name for p in some.rglob("*") if p.is_file()] == [DIGEST]
    assert f"sha256 {'0' * 64}: not in the cache" in capsys.readouterr().err
    # The exported folder is a hashed mirror for a fetch with no cache of its own.
    result = robustfetch.fetch(DEAD, DIGEST, dest=tmp_path, hashed_mirrors=[some], **opts)
    assert result.path.read_bytes() == DATA


def test_cache_export_skips_a_corrupted_entry(
    https_server: Server, opts: dict[str, Any], tmp_path: Path, capsys: Any
) -> None:
    cache = tmp_path / "cache"
    url = https_server.route("/dist/pkg-1.0.tgz", body=DATA)
    entry = robustfetch.fetch(url, DIGEST, **{**opts, "cache_dir": cache}).path
    entry.write_bytes(DATA[:-1] + b"!")
    target = tmp_path / "export"
    assert main(["cache", "--cache-dir", str(cache), "export", str(target)]) == 1
    assert not (target / "sha256" / DIGEST[:2] / DIGEST).exists()


def test_every_sha256_candidate_gets_its_hashed_and_sha256_mirror_urls_in_order(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """``sha256=[a, b]`` (any-of): both mirrors are asked for a, then for b (audit #7)."""
    https_server.route(f"/hashed/sha256/{DIGEST[:2]}/{DIGEST}", body=DATA, truncate_after=100)
    https_server.route(f"/by-hash/{DIGEST}", body=DATA)
    result = robustfetch.fetch(
        DEAD,
        [OTHER_DIGEST, DIGEST],
        dest=dest_dir / "f.bin",
        hashed_mirrors=[https_server.url("/hashed")],
        mirrors=[https_server.url("/by-hash/{sha256}")],
        **opts,
    )
    assert [(a.url.replace(https_server.url("/"), ""), a.reason) for a in result.attempts] == [
        (f"hashed/sha256/{OTHER_DIGEST[:2]}/{OTHER_DIGEST}", Reason.NOT_FOUND),
        (f"hashed/sha256/{DIGEST[:2]}/{DIGEST}", Reason.TRUNCATED),
        (DEAD, Reason.CONNECT),
        (f"by-hash/{OTHER_DIGEST}", Reason.NOT_FOUND),
        (f"by-hash/{DIGEST}", None),
    ]
    assert result.path.read_bytes() == DATA
