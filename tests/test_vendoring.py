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
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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
