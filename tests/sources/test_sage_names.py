"""examples/sage_checksums.py passes ftp upstreams through and names tarballs with filename=."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dummyserver import Server, closed_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GENGETOPT = os.urandom(40_000)
LRCALC = os.urandom(20_000)


def load_sage() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sage_names_example", EXAMPLES / "sage_checksums.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def package(pkgs: Path, name: str, checksums: str) -> None:
    (pkgs / name).mkdir(parents=True)
    (pkgs / name / "checksums.ini").write_text(checksums)
    (pkgs / name / "package-version.txt").write_text("2.1\n")


def test_ftp_upstream_and_archive_urls_reach_the_mirror_under_the_tarball_name(
    https_server: Server,
    ca_bundle: Path,
    dest_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ROBUSTFETCH_CA_BUNDLE", str(ca_bundle))
    sage = load_sage()
    pkgs = tmp_path / "pkgs"
    dead_ftp = f"ftp://127.0.0.1:{closed_port()}/gnu/gengetopt/gengetopt-VERSION.tar.gz"
    package(
        pkgs,
        "gengetopt",
        "tarball=gengetopt-VERSION.tar.gz\n"
        f"sha256={hashlib.sha256(GENGETOPT).hexdigest()}\nupstream_url={dead_ftp}\n",
    )
    # lrcalc_python's upstream is a GitHub archive: its path names another file.
    archive = https_server.route("/lrcalc/archive/v2.1.tar.gz", status=404)
    package(
        pkgs,
        "lrcalc_python",
        "tarball=lrcalc_python-VERSION.tar.gz\n"
        f"sha256={hashlib.sha256(LRCALC).hexdigest()}\n"
        f"upstream_url={https_server.url('/lrcalc/archive/vVERSION.tar.gz')}\n",
    )
    https_server.route("/spkg/gengetopt/gengetopt-2.1.tar.gz", body=GENGETOPT)
    https_server.route("/spkg/lrcalc_python/lrcalc_python-2.1.tar.gz", body=LRCALC)
    argv = [str(pkgs), "--dest", str(dest_dir), "--mirror", https_server.url("/spkg/${SPKG}")]
    assert sage.main(argv) == 0
    assert sorted(os.listdir(dest_dir)) == ["gengetopt-2.1.tar.gz", "lrcalc_python-2.1.tar.gz"]
    assert (dest_dir / "lrcalc_python-2.1.tar.gz").read_bytes() == LRCALC
    assert https_server.hits("/lrcalc/archive/v2.1.tar.gz") == 1 and archive
    assert "2 fetched, 0 failed, 0 bad" in capsys.readouterr().out
