"""A plain fetch loads only what it uses: a fresh process pays for every module it imports."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from dummyserver import Server

DATA = os.urandom(20_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
# Needed only for an index page, an error page's title or a metalink document.
NOT_FOR_A_PLAIN_FETCH = (
    "html",
    "html.parser",
    "html.entities",
    "xml.etree.ElementTree",
    "robustfetch.policy.index_pages",
    "robustfetch.policy.metalink",
    "robustfetch.sources.pages",
    "robustfetch.diagnose.client",
)


def test_a_plain_fetch_loads_no_page_parsers(
    https_server: Server, ca_bundle: Path, tmp_path: Path, transport: str
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    code = f"""
        import sys
        import robustfetch
        robustfetch.fetch({url!r}, {DIGEST!r}, dest={str(tmp_path / "f.bin")!r},
                          ca_bundle={str(ca_bundle)!r}, cache_dir=None, transport={transport!r})
        print(" ".join(sorted(set({NOT_FOR_A_PLAIN_FETCH!r}) & set(sys.modules))))
        """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
    assert (tmp_path / "f.bin").read_bytes() == DATA
