"""``ftp://`` logins: ``auth``, ``$NETRC``, ``user:password@`` in the URL, to their own server only.

Each server (:mod:`dummyserver.ftp`, pyftpdlib on 127.0.0.1) has a user account and,
unless a test says otherwise, no anonymous access; its command log shows who logged
in. No password may show up in an error, a log record or the CLI's ``--json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

import robustfetch
from robustfetch import FetchError, Reason
from robustfetch.cli.main import main

pytest.importorskip("pyftpdlib")
from dummyserver.ftp import FtpServer

DATA = os.urandom(50_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
PATH = "/pub/singular/singular-4.4.1.tar.gz"
PASSWORD = "s3cr3t-ftp-pw"  # the account's password
WRONG = "wr0ng-ftp-pw"  # a password the server refuses

MakeFtp = Callable[..., FtpServer]


@pytest.fixture
def make_ftp(tmp_path: Path) -> Iterator[MakeFtp]:
    servers: list[FtpServer] = []

    def factory(anonymous: bool = False) -> FtpServer:
        root = tmp_path / f"ftp-{len(servers)}"
        (root / "pub" / "singular").mkdir(parents=True)
        (root / "pub" / "singular" / "singular-4.4.1.tar.gz").write_bytes(DATA)
        server = FtpServer(root, anonymous=anonymous, users={"sage": PASSWORD})
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.close()


@pytest.fixture(autouse=True)
def no_netrc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ~/.netrc of the machine's: an empty one unless a test writes its own."""
    empty = tmp_path / "empty-netrc"
    empty.write_text("")
    monkeypatch.setenv("NETRC", str(empty))


def write_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(text)
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))


def passwords_sent(ftp: FtpServer) -> list[str]:
    return [c.split(" ", 1)[1] for c in ftp.behaviour.commands if c.upper().startswith("PASS ")]


@pytest.mark.parametrize("key", ["127.0.0.1", "127.0.0.1:{port}"])
def test_login_with_auth(key: str, make_ftp: MakeFtp, opts: dict[str, Any], dest_dir: Path) -> None:
    ftp = make_ftp()
    auth = {key.format(port=ftp.port): ("sage", PASSWORD)}
    result = robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, auth=auth, **opts)
    assert result.path.read_bytes() == DATA
    assert ftp.behaviour.users == ["sage"]


def test_login_with_netrc(
    make_ftp: MakeFtp,
    opts: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ftp = make_ftp()
    write_netrc(tmp_path, monkeypatch, f"machine 127.0.0.1 login sage password {PASSWORD}\n")
    result = robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert ftp.behaviour.users == ["sage"]
    with pytest.raises(FetchError) as info:  # netrc=False: anonymous, refused, not retried
        robustfetch.fetch(
            ftp.url(PATH), DIGEST, dest=dest_dir, netrc=False, **{**opts, "retries": 2}
        )
    assert [a.reason for a in info.value.attempts] == [Reason.HTTP_STATUS]
    assert ftp.behaviour.users == ["sage", "anonymous"]


def test_login_with_the_urls_user_info(
    make_ftp: MakeFtp, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp()
    url = ftp.url(PATH).replace("ftp://", f"ftp://sage:{PASSWORD}@")
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert result.path.read_bytes() == DATA
    assert ftp.behaviour.users == ["sage"] and passwords_sent(ftp) == [PASSWORD]
    assert PASSWORD not in result.url and PASSWORD not in repr(result.attempts)
    assert result.url == url.replace(PASSWORD, "***")


def test_the_urls_user_info_comes_before_auth_and_netrc(
    make_ftp: MakeFtp,
    opts: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The most specific wins, as for https (and as curl does): the URL's own login."""
    ftp = make_ftp()
    url = ftp.url(PATH).replace("ftp://", f"ftp://sage:{PASSWORD}@")
    auth = {"127.0.0.1": ("other", WRONG)}
    robustfetch.fetch(url, DIGEST, dest=dest_dir / "a", auth=auth, **opts)
    write_netrc(tmp_path, monkeypatch, f"machine 127.0.0.1 login other password {WRONG}\n")
    robustfetch.fetch(url, DIGEST, dest=dest_dir / "b", **{**opts, "cache_dir": None})
    assert ftp.behaviour.users == ["sage", "sage"]
    assert WRONG not in passwords_sent(ftp)


def test_a_bearer_token_is_not_an_ftp_login(
    make_ftp: MakeFtp, opts: dict[str, Any], dest_dir: Path
) -> None:
    ftp = make_ftp(anonymous=True)
    auth = {"127.0.0.1": "Bearer tok-not-for-ftp"}
    robustfetch.fetch(ftp.url(PATH), DIGEST, dest=dest_dir, auth=auth, **opts)
    assert ftp.behaviour.users == ["anonymous"]
    assert "tok-not-for-ftp" not in " ".join(ftp.behaviour.commands)


def test_credentials_never_reach_another_host_name(
    make_ftp: MakeFtp, opts: dict[str, Any], dest_dir: Path
) -> None:
    """Both names lead to 127.0.0.1 (connect_to): only the URL's host name chooses."""
    mine, other = make_ftp(), make_ftp(anonymous=True)
    connect_to = {
        "ftp.mine.test:21": f"127.0.0.1:{mine.port}",
        "ftp.other.test:21": f"127.0.0.1:{other.port}",
    }
    auth = {"ftp.mine.test": ("sage", PASSWORD)}
    options = {**opts, "connect_to": connect_to, "auth": auth}
    robustfetch.fetch(f"ftp://ftp.other.test{PATH}", DIGEST, dest=dest_dir / "o", **options)
    robustfetch.fetch(f"ftp://ftp.mine.test{PATH}", DIGEST, dest=dest_dir / "m", **options)
    assert (other.behaviour.users, mine.behaviour.users) == (["anonymous"], ["sage"])
    assert PASSWORD not in passwords_sent(other)


def test_a_port_specific_key_is_for_that_port_only(
    make_ftp: MakeFtp, opts: dict[str, Any], dest_dir: Path
) -> None:
    mine, other = make_ftp(), make_ftp(anonymous=True)
    auth = {f"127.0.0.1:{mine.port}": ("sage", PASSWORD)}
    robustfetch.fetch(other.url(PATH), DIGEST, dest=dest_dir / "o", auth=auth, **opts)
    robustfetch.fetch(mine.url(PATH), DIGEST, dest=dest_dir / "m", auth=auth, **opts)
    assert (other.behaviour.users, mine.behaviour.users) == (["anonymous"], ["sage"])


def test_a_refused_login_never_shows_the_password(
    make_ftp: MakeFtp,
    opts: dict[str, Any],
    dest_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ftp = make_ftp()
    url = ftp.url(PATH).replace("ftp://", f"ftp://sage:{WRONG}@")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **opts)
    assert passwords_sent(ftp) == [WRONG]  # it was really tried
    (attempt,) = info.value.attempts
    assert attempt.reason is Reason.HTTP_STATUS and "530" in attempt.detail
    assert attempt.url == url.replace(WRONG, "***")
    shown = str(info.value) + repr(info.value.attempts) + caplog.text
    assert WRONG not in shown and "sage:***@" in str(info.value)
    assert os.listdir(dest_dir) == []


def test_a_refused_login_from_auth_never_shows_the_password(
    make_ftp: MakeFtp, opts: dict[str, Any], dest_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ftp = make_ftp()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(
            ftp.url(PATH), DIGEST, dest=dest_dir, auth={"127.0.0.1": ("sage", WRONG)}, **opts
        )
    assert passwords_sent(ftp) == [WRONG]
    assert WRONG not in str(info.value) + repr(info.value.attempts) + caplog.text


@pytest.mark.parametrize("where", ["url", "netrc"])
def test_the_cli_json_never_shows_the_password(
    where: str,
    make_ftp: MakeFtp,
    ca_bundle: Path,
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ftp = make_ftp()
    url = ftp.url(PATH)
    if where == "url":
        url = url.replace("ftp://", f"ftp://sage:{WRONG}@")
    else:
        write_netrc(tmp_path, monkeypatch, f"machine 127.0.0.1 login sage password {WRONG}\n")
    args = ["fetch", url, "--sha256", DIGEST, "-o", str(dest_dir), "--json", "--retries", "0", "-v"]
    assert main([*args, "--ca-bundle", str(ca_bundle)]) == 1
    out, err = capsys.readouterr()
    assert passwords_sent(ftp) == [WRONG]
    (line,) = out.splitlines()
    shown = json.loads(line)
    assert shown["attempts"][0]["reason"] == "http_status"
    assert WRONG not in out + err
    if where == "url":
        assert shown["url"] == url.replace(WRONG, "***")


def test_the_cli_json_of_a_success_masks_the_password(
    make_ftp: MakeFtp, ca_bundle: Path, dest_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ftp = make_ftp()
    url = ftp.url(PATH).replace("ftp://", f"ftp://sage:{PASSWORD}@")
    args = ["fetch", url, "--sha256", DIGEST, "-o", str(dest_dir), "--json", "-v", "--no-cache"]
    assert main([*args, "--ca-bundle", str(ca_bundle)]) == 0
    out, err = capsys.readouterr()
    assert passwords_sent(ftp) == [PASSWORD]
    assert PASSWORD not in out + err
    assert json.loads(out)["url"] == url.replace(PASSWORD, "***")
