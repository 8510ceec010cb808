"""Legacy PyPI hosts, PyPI's JSON API and user rules, end to end on loopback.

Each PyPI host gets its own server holding a trustme certificate for its name;
``connect_to`` sends ``<host>:443`` there, so SNI, Host and certificate checks
are those of the real names while every byte stays on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason

DATA = os.urandom(50_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
SDIST = "/packages/source/s/six/six-1.16.0.tar.gz"
HASHED = "/packages/ab/cd/ef0123/six-1.16.0.tar.gz"
HOSTS = ("files.pythonhosted.org", "pypi.org", "pypi.io", "pypi.python.org", "b.pypi.python.org")


@dataclass
class PyPI:
    servers: dict[str, Server]
    options: dict[str, Any]

    def __getitem__(self, host: str) -> Server:
        return self.servers[host]

    def hits(self) -> dict[str, int]:
        return {host: len(server.requests) for host, server in self.servers.items()}


@pytest.fixture
def pypi(make_server: Any, opts: dict[str, Any]) -> PyPI:
    servers = {host: make_server("good") for host in HOSTS}
    connect_to = {f"{host}:443": f"127.0.0.1:{s.port}" for host, s in servers.items()}
    return PyPI(servers, {**opts, "connect_to": connect_to})


@pytest.mark.parametrize(
    ("url", "served_by", "path"),
    [
        (f"https://pypi.io{SDIST}", "files.pythonhosted.org", SDIST),
        (f"http://pypi.io{SDIST}", "files.pythonhosted.org", SDIST),
        (f"https://pypi.python.org{SDIST}", "files.pythonhosted.org", SDIST),
        (f"https://pypi.org{SDIST}", "files.pythonhosted.org", SDIST),
        (f"https://b.pypi.python.org{SDIST}", "files.pythonhosted.org", SDIST),
        (f"http://files.pythonhosted.org{SDIST}", "files.pythonhosted.org", SDIST),
        ("https://pypi.io/simple/six/f.tgz", "pypi.org", "/simple/six/f.tgz"),
        ("https://pypi.python.org/simple/six/f.tgz", "pypi.org", "/simple/six/f.tgz"),
        ("https://b.pypi.python.org/simple/six/f.tgz", "pypi.org", "/simple/six/f.tgz"),
    ],
)
def test_legacy_url_is_served_by_the_current_host(
    url: str, served_by: str, path: str, pypi: PyPI, dest_dir: Path
) -> None:
    pypi[served_by].route(path, body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **pypi.options)
    assert result.url == f"https://{served_by}{path}"
    assert [a.url for a in result.attempts] == [result.url]
    assert pypi.hits() == {host: int(host == served_by) for host in HOSTS}
    assert pypi[served_by].requests[0].headers["host"] == served_by


def test_original_url_is_kept_as_the_last_candidate(pypi: PyPI, dest_dir: Path) -> None:
    pypi["pypi.io"].route("/simple/six/f.tgz", body=DATA)
    result = robustfetch.fetch(
        "https://pypi.io/simple/six/f.tgz", DIGEST, dest=dest_dir, **pypi.options
    )
    assert [(a.url, a.reason) for a in result.attempts] == [
        ("https://pypi.org/simple/six/f.tgz", Reason.NOT_FOUND),
        ("https://pypi.io/simple/six/f.tgz", None),
    ]


def test_rewrite_false_uses_the_url_as_given(pypi: PyPI, dest_dir: Path) -> None:
    pypi["pypi.io"].route(SDIST, body=DATA)
    result = robustfetch.fetch(
        f"https://pypi.io{SDIST}", DIGEST, dest=dest_dir, rewrite=False, **pypi.options
    )
    assert result.url == f"https://pypi.io{SDIST}"
    assert pypi["files.pythonhosted.org"].connections == 0


def test_wrong_bucket_letter_is_corrected(pypi: PyPI, dest_dir: Path) -> None:
    pypi["files.pythonhosted.org"].route(SDIST, body=DATA)
    wrong = "https://files.pythonhosted.org/packages/source/x/six/six-1.16.0.tar.gz"
    result = robustfetch.fetch(wrong, DIGEST, dest=dest_dir, **pypi.options)
    assert result.url == f"https://files.pythonhosted.org{SDIST}"
    assert len(result.attempts) == 1


def json_document(filename: str, url: str, sha256: str) -> bytes:
    entry = {"filename": filename, "url": url, "digests": {"sha256": sha256}}
    return json.dumps({"info": {}, "urls": [], "releases": {"1.0": [entry]}}).encode()


def test_missing_sdist_is_found_through_the_json_api(pypi: PyPI, dest_dir: Path) -> None:
    files = pypi["files.pythonhosted.org"]
    files.route(SDIST, status=404)
    hashed = files.route(HASHED, body=DATA).replace(f"127.0.0.1:{files.port}", files_host())
    pypi["pypi.org"].route(
        "/pypi/six/json", body=json_document("six-1.16.0.tar.gz", hashed, DIGEST)
    )
    result = robustfetch.fetch(
        f"https://files.pythonhosted.org{SDIST}", dest=dest_dir, **pypi.options
    )
    assert [(a.url, a.reason) for a in result.attempts] == [
        (f"https://files.pythonhosted.org{SDIST}", Reason.NOT_FOUND),
        (hashed, None),
    ]
    assert result.path.read_bytes() == DATA


def files_host() -> str:
    return "files.pythonhosted.org"


def test_json_api_digest_must_agree_with_the_pin(pypi: PyPI, dest_dir: Path) -> None:
    files = pypi["files.pythonhosted.org"]
    files.route(SDIST, status=404)
    files.route(HASHED, body=DATA)
    listed = "ab" * 32
    hashed = f"https://files.pythonhosted.org{HASHED}"
    pypi["pypi.org"].route(
        "/pypi/six/json", body=json_document("six-1.16.0.tar.gz", hashed, listed)
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            f"https://files.pythonhosted.org{SDIST}", DIGEST, dest=dest_dir, **pypi.options
        )
    last = info.value.attempts[-1]
    assert (last.url, last.reason) == (hashed, Reason.HASH_MISMATCH)
    assert listed in last.detail and DIGEST in last.detail
    assert files.hits(HASHED) == 0


def test_json_api_digest_is_checked_when_nothing_is_pinned(pypi: PyPI, dest_dir: Path) -> None:
    files = pypi["files.pythonhosted.org"]
    files.route(SDIST, status=404)
    files.route(HASHED, body=DATA + b"tampered")
    hashed = f"https://files.pythonhosted.org{HASHED}"
    pypi["pypi.org"].route(
        "/pypi/six/json", body=json_document("six-1.16.0.tar.gz", hashed, DIGEST)
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(f"https://files.pythonhosted.org{SDIST}", dest=dest_dir, **pypi.options)
    assert [a.reason for a in info.value.attempts] == [Reason.NOT_FOUND, Reason.HASH_MISMATCH]


def test_json_api_prefers_an_https_entry_over_an_http_one(
    pypi: PyPI, make_server: Any, dest_dir: Path
) -> None:
    """An http entry listed first for the same file is passed over (audit #9)."""
    files = pypi["files.pythonhosted.org"]
    files.route(SDIST, status=404)
    files.route(HASHED, body=DATA)
    plain = make_server(None)
    plain.route(HASHED, body=DATA)
    entries = [
        {"filename": "six-1.16.0.tar.gz", "url": f"http://files.pythonhosted.org{HASHED}"},
        {"filename": "six-1.16.0.tar.gz", "url": f"https://files.pythonhosted.org{HASHED}"},
    ]
    for entry in entries:
        entry["digests"] = {"sha256": DIGEST}  # type: ignore[assignment]
    document = {"info": {}, "urls": entries, "releases": {}}
    pypi["pypi.org"].route("/pypi/six/json", body=json.dumps(document).encode())
    connect_to = {
        **pypi.options["connect_to"],
        "files.pythonhosted.org:80": f"127.0.0.1:{plain.port}",
    }
    options = {**pypi.options, "connect_to": connect_to}
    result = robustfetch.fetch(
        f"https://files.pythonhosted.org{SDIST}", DIGEST, dest=dest_dir, **options
    )
    assert result.url == f"https://files.pythonhosted.org{HASHED}"
    assert [a.reason for a in result.attempts] == [Reason.NOT_FOUND, None]
    assert plain.hits(HASHED) == 0


def test_json_api_with_only_an_http_entry_says_why_it_is_not_used(
    pypi: PyPI, dest_dir: Path
) -> None:
    files = pypi["files.pythonhosted.org"]
    files.route(SDIST, status=404)
    plain_url = f"http://files.pythonhosted.org{HASHED}"
    pypi["pypi.org"].route(
        "/pypi/six/json", body=json_document("six-1.16.0.tar.gz", plain_url, DIGEST)
    )
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            f"https://files.pythonhosted.org{SDIST}", DIGEST, dest=dest_dir, **pypi.options
        )
    last = info.value.attempts[-1]
    assert last.reason is Reason.INSECURE_REFUSED and "only https links" in last.detail


@pytest.mark.parametrize(
    ("requested", "listed"),
    [
        ("python-dateutil-2.8.2.tar.gz", "python_dateutil-2.8.2.tar.gz"),
        ("zope_interface-5.0.tar.gz", "zope.interface-5.0.tar.gz"),
    ],
)
def test_json_api_finds_other_spellings_of_the_sdist_name(
    requested: str, listed: str, pypi: PyPI, dest_dir: Path
) -> None:
    project = requested.rsplit("-", 1)[0]
    sdist = f"/packages/source/{project[0]}/{project}/{requested}"
    files = pypi["files.pythonhosted.org"]
    files.route(sdist, status=404)
    files.route(f"/packages/aa/bb/{listed}", body=DATA)
    hashed = f"https://files.pythonhosted.org/packages/aa/bb/{listed}"
    normalised = project.replace("_", "-").replace(".", "-").lower()
    pypi["pypi.org"].route(f"/pypi/{normalised}/json", body=json_document(listed, hashed, DIGEST))
    result = robustfetch.fetch(
        f"https://files.pythonhosted.org{sdist}", DIGEST, dest=dest_dir, **pypi.options
    )
    assert result.url == hashed
    assert result.path.name == requested


def test_unknown_project_on_pypi_is_reported(pypi: PyPI, dest_dir: Path) -> None:
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            f"https://files.pythonhosted.org{SDIST}", DIGEST, dest=dest_dir, **pypi.options
        )
    attempts = info.value.attempts
    assert [(a.url, a.reason) for a in attempts] == [
        (f"https://files.pythonhosted.org{SDIST}", Reason.NOT_FOUND),
        ("https://pypi.org/pypi/six/json", Reason.NOT_FOUND),
    ]
    assert "PyPI lookup of 'six'" in attempts[1].detail


def test_block_rule_stops_a_source_and_names_the_rule(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    good = https_server.route("/g/f.bin", body=DATA)
    blocked = f"https://example.test:{https_server.port}/f.bin"
    rules = ["block example.test"]
    result = robustfetch.fetch(blocked, DIGEST, [good], dest=dest_dir, rules=rules, **opts)
    assert [(a.url, a.reason) for a in result.attempts] == [(blocked, Reason.BLOCKED), (good, None)]
    assert "block example.test" in result.attempts[0].detail
    assert https_server.hits("/f.bin") == 0


def test_block_everything_but_allowed_hosts_from_a_config_file(
    https_server: Server,
    opts: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "downloader.cfg"
    config.write_text("# only loopback\nblock *\nallow 127.0.0.1\n")
    monkeypatch.setenv("ROBUSTFETCH_CONFIG", str(config))
    https_server.route("/f.bin", body=DATA)
    other = f"https://localhost:{https_server.port}/f.bin"
    result = robustfetch.fetch(other, DIGEST, [https_server.url("/f.bin")], dest=dest_dir, **opts)
    assert [a.reason for a in result.attempts] == [Reason.BLOCKED, None]
    assert f"{config}:2" in result.attempts[0].detail


def test_user_rewrite_rule_redirects_to_a_mirror(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    https_server.route("/mirror/pkg/f.bin", body=DATA)
    rule = f"rewrite example.test/dist/(.*) 127.0.0.1:{https_server.port}/mirror/$1"
    result = robustfetch.fetch(
        "https://example.test/dist/pkg/f.bin", DIGEST, dest=dest_dir, rules=[rule], **opts
    )
    assert result.url == https_server.url("/mirror/pkg/f.bin")
    assert [a.url for a in result.attempts] == [result.url]


def test_the_original_url_is_tried_after_its_user_rewrite(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    """Order of sources, step 2: the URL's repaired forms first, then the URL itself."""
    url = https_server.route("/dist/f.bin", body=DATA)
    mirror = https_server.route("/mirror/f.bin", status=404)
    port = https_server.port
    rule = rf"rewrite 127\.0\.0\.1:{port}/dist/(.*) 127.0.0.1:{port}/mirror/$1"
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, rules=[rule], **opts)
    assert result.url == url
    assert [(a.url, a.reason) for a in result.attempts] == [
        (mirror, Reason.NOT_FOUND),
        (url, None),
    ]


def test_a_blocked_original_is_reported_after_its_rewrite(
    https_server: Server, opts: dict[str, Any], dest_dir: Path
) -> None:
    url = f"https://localhost:{https_server.port}/dist/f.bin"
    mirror = https_server.route("/mirror/f.bin", status=404)
    rules = [
        f"rewrite localhost:{https_server.port}/dist/(.*) 127.0.0.1:{https_server.port}/mirror/$1",
        "block localhost",
    ]
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, rules=rules, **opts)
    assert [(a.url, a.reason) for a in info.value.attempts] == [
        (mirror, Reason.NOT_FOUND),
        (url, Reason.BLOCKED),
    ]
    assert https_server.hits("/dist/f.bin") == 0


def test_malformed_config_file_names_the_line(tmp_path: Path, dest_dir: Path) -> None:
    config = tmp_path / "bad.cfg"
    config.write_text("block *\nredirect a b\n")
    with pytest.raises(ValueError, match=rf"{config}:2"):
        robustfetch.fetch("https://example.test/f.bin", DIGEST, dest=dest_dir, config=config)
