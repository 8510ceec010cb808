"""fetch_many and ``robustfetch many``: shared connections, input order, isolated failures."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import robustfetch
import robustfetch.api
from dummyserver import Server
from robustfetch import FetchError, FetchResult, Reason
from robustfetch.cli.main import main

FILES = {f"/pkg/f{i:03}.bin": os.urandom(2048 + i) for i in range(300)}


def test_hundreds_of_files_over_few_connections(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    requests = [
        robustfetch.Request(https_server.route(path, body=body), hashlib.sha256(body).hexdigest())
        for path, body in FILES.items()
    ]
    results = robustfetch.fetch_many(
        [robustfetch.Request(r.url, r.sha256, dest=dest_dir) for r in requests], workers=8, **opts
    )
    assert all(isinstance(r, FetchResult) for r in results)
    assert [r.url for r in results if isinstance(r, FetchResult)] == [r.url for r in requests]
    assert len(os.listdir(dest_dir)) == len(FILES)
    assert https_server.connections <= 8  # keep-alive: one pool shared by the workers


def test_one_failure_never_stops_the_others(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = [https_server.route(p, body=b) for p, b in list(FILES.items())[:20]]
    bad = https_server.route("/pkg/missing.bin", status=404)
    results = robustfetch.fetch_many(
        [{"url": u, "dest": dest_dir} for u in [*good[:10], bad, *good[10:]]], workers=4, **opts
    )
    assert isinstance(results[10], FetchError)
    assert [a.reason for a in results[10].attempts] == [Reason.NOT_FOUND]
    assert len([r for r in results if isinstance(r, FetchResult)]) == 20


def test_an_interrupt_stops_every_worker_and_reaches_the_caller(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """Ctrl-C (or SystemExit) in one download: no file more is started, no thread is left."""
    urls = [https_server.route(p, body=b) for p, b in list(FILES.items())[:40]]
    seen: list[str] = []

    def progress(event: robustfetch.ProgressEvent) -> None:
        seen.append(event.url)
        if len(seen) == 3:
            raise KeyboardInterrupt

    def workers() -> set[threading.Thread]:  # the test servers' threads are daemons
        return {t for t in threading.enumerate() if not t.daemon}

    before = workers()
    with pytest.raises(KeyboardInterrupt):
        robustfetch.fetch_many(
            [{"url": u, "dest": dest_dir} for u in urls], workers=4, progress=progress, **opts
        )
    assert workers() <= before  # every worker stopped, none left behind
    asked = sum(https_server.hits(p) for p in list(FILES)[:40])
    assert asked < 3 + 4  # what was under way, nothing taken after the interrupt


def test_threads_beyond_two_per_core_only_for_downloads_that_wait(
    https_server: Server, opts: dict[str, Any], dest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPU-bound (nothing waits): two threads per core; more would only contend."""
    busy = robustfetch.api._busy_threads()
    monkeypatch.setattr(robustfetch.api, "WAITED", 60.0)  # no file counts as waiting
    urls = [https_server.route(p, body=b) for p, b in list(FILES.items())[:60]]
    results = robustfetch.fetch_many(
        [{"url": u, "dest": dest_dir} for u in urls], workers=busy + 4, **opts
    )
    assert all(isinstance(r, FetchResult) for r in results)
    assert https_server.connections <= busy


def test_downloads_that_wait_on_the_network_get_every_worker(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """Each answer trickles in (a slow network): threads grow to ``workers`` to overlap waits."""
    busy = robustfetch.api._busy_threads()
    workers = busy + 3
    urls = [
        https_server.route(p, body=b, trickle=(1024, 0.05))
        for p, b in list(FILES.items())[: 3 * workers]
    ]
    results = robustfetch.fetch_many(
        [{"url": u, "dest": dest_dir} for u in urls], workers=workers, **opts
    )
    assert all(isinstance(r, FetchResult) for r in results)
    assert https_server.connections > busy


def test_bad_request_is_refused_before_any_download(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = https_server.route("/pkg/a.bin", body=b"a")
    with pytest.raises(ValueError, match="gopher"):
        robustfetch.fetch_many([{"url": good, "dest": dest_dir}, "gopher://example.org/x"], **opts)
    assert https_server.connections == 0


def many_file(tmp_path: Path, server: Server, count: int) -> tuple[Path, list[str]]:
    lines, urls = ["# URL SHA256 [FALLBACK...]"], []
    for path, body in list(FILES.items())[:count]:
        url = server.route(path, body=body)
        urls.append(url)
        lines.append(f"{url} {hashlib.sha256(body).hexdigest()}  # comment")
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(lines) + "\n\n")
    return listing, urls


def test_cli_many_reports_each_file_and_a_summary(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    listing, urls = many_file(tmp_path, https_server, 12)
    missing = https_server.route("/pkg/missing.bin", status=404)
    dead = https_server.url("/pkg/dead.bin")
    with listing.open("a") as handle:
        handle.write(f"{missing} {'0' * 64} {dead}\n")
    args = ["many", str(listing), "-o", str(dest_dir), "--ca-bundle", str(ca_bundle)]
    assert main([*args, "--retries", "0", "--no-cache"]) == 1
    out, err = capsys.readouterr()
    assert out.split() == [str(dest_dir / Path(u).name) for u in urls]
    assert f"{missing}: not_found" in err and f"{dead}: not_found" in err
    total = sum(len(b) for b in list(FILES.values())[:12])
    assert f"13 files, {total} bytes, 0 from the cache, 1 failed" in err


def test_cli_many_json_list_and_json_output(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    items: list[Any] = [https_server.route("/pkg/f000.bin", body=FILES["/pkg/f000.bin"])]
    body = FILES["/pkg/f001.bin"]
    items.append(
        {
            "url": https_server.route("/pkg/f001.bin", body=body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    )
    listing = tmp_path / "files.json"
    listing.write_text(json.dumps(items))
    args = ["many", str(listing), "-o", str(dest_dir), "--ca-bundle", str(ca_bundle), "--json"]
    assert main(args) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["size"] for r in records] == [len(FILES["/pkg/f000.bin"]), len(body)]


@pytest.mark.parametrize(
    ("content", "message"),
    [("https://a.example/f x y\n", "line 1"), ("[1, 2]", "item 0"), ("[{", "invalid JSON")],
)
def test_cli_many_bad_file_is_usage_error(
    content: str, message: str, tmp_path: Path, capsys: Any
) -> None:
    listing = tmp_path / "files.txt"
    listing.write_text(content)
    assert main(["many", str(listing)]) == 2
    assert message in capsys.readouterr().err
