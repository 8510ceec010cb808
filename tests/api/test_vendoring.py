"""robustfetch copied into another package, and run with nothing but the standard library."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import robustfetch
from dummyserver import Server

DATA = os.urandom(50_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
PACKAGE = Path(robustfetch.__file__).resolve().parent
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(code: str, cwd: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**env, "PYTHONWARNINGS": "error"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_vendored_copy_under_another_package(
    https_server: Server, ca_bundle: Path, tmp_path: Path
) -> None:
    vendor = tmp_path / "vendorpkg" / "_vendor"
    shutil.copytree(PACKAGE, vendor / "robustfetch", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "vendorpkg" / "__init__.py").write_text("")
    (vendor / "__init__.py").write_text("")
    url = https_server.route("/f.bin", body=DATA)
    done = run(
        f"""
        import sys
        from vendorpkg._vendor import robustfetch
        assert robustfetch.__file__.startswith({str(tmp_path)!r}), robustfetch.__file__
        result = robustfetch.fetch({url!r}, {DIGEST!r}, dest={str(tmp_path)!r},
                                   ca_bundle={str(ca_bundle)!r}, cache_dir=None)
        assert "robustfetch" not in sys.modules, "the copy imported an installed robustfetch"
        print(result.size, robustfetch.__version__)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(DATA)), robustfetch.__version__]
    assert (tmp_path / "f.bin").read_bytes() == DATA


def test_importing_has_no_side_effects(tmp_path: Path) -> None:
    done = run(
        """
        import logging, os, sys, threading
        def state():
            root = logging.getLogger()
            return set(os.environ.items()), root.handlers[:], threading.active_count()
        before = state()
        import robustfetch
        after = state()
        assert before == after
        assert "urllib3" not in sys.modules, "urllib3 imported before it is needed"
        print("ok")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_fetches_with_only_the_standard_library(
    https_server: Server, ca_bundle: Path, tmp_path: Path
) -> None:
    missing = https_server.route("/a/f.bin", status=404)
    good = https_server.route("/b/f.bin", body=DATA)
    port = https_server.port
    done = run(
        f"""
        import sys
        for name in ("urllib3", "certifi", "idna"):
            sys.modules[name] = None  # as if not installed
        import robustfetch
        caps = robustfetch.probe(ca_bundle={str(ca_bundle)!r})
        options = dict(ca_bundle={str(ca_bundle)!r}, cache_dir=None)
        result = robustfetch.fetch({missing!r}, {DIGEST!r}, [{good!r}],
                                   dest={str(tmp_path / "a.bin")!r}, **options)
        assert [a.reason for a in result.attempts] == ["not_found", None], result.attempts
        idn = robustfetch.fetch("https://bücher.example:{port}/b/f.bin", {DIGEST!r},
                                dest={str(tmp_path / "b.bin")!r},
                                connect_to={{"bücher.example:{port}": "127.0.0.1:{port}"}},
                                **options)
        print(caps.transport, "|", caps.idna, "|", result.url, "|", idn.size)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    transport, idna, url, size = (part.strip() for part in done.stdout.split("|"))
    assert (transport, url, size) == ("stdlib", good, str(len(DATA)))
    assert "IDNA 2003" in idna
    host = https_server.requests_for("/b/f.bin")[-1].headers["host"]
    assert host == f"xn--bcher-kva.example:{port}"


def test_bootstrap_example_with_a_vendored_copy_and_no_site_packages(
    https_server: Server, ca_bundle: Path, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    shutil.copytree(
        PACKAGE, tools / "_vendor" / "robustfetch", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(EXAMPLES / "bootstrap.py", tools / "bootstrap.py")
    other = os.urandom(1000)
    https_server.route("/mirror/tool-1.0.tgz", body=DATA)
    https_server.route("/b/other.tgz", body=other)
    manifest = tmp_path / "manifest.txt"
    manifest.write_text(
        f"{DIGEST} tool-1.0.tgz {https_server.url('/gone/tool-1.0.tgz')} "
        f"{https_server.url('/mirror')}\n"
        f"{hashlib.sha256(other).hexdigest()} other.tgz {https_server.url('/b/other.tgz')}\n"
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "SSL_CERT_FILE": str(ca_bundle)}
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-W",
            "error",
            str(tools / "bootstrap.py"),
            str(manifest),
            str(dest),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   tool-1.0.tgz" in done.stdout and "2 of 2 files ready" in done.stdout
    assert (dest / "tool-1.0.tgz").read_bytes() == DATA
    assert sorted(os.listdir(dest)) == ["other.tgz", "tool-1.0.tgz"]
