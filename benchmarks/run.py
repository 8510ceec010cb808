"""robustfetch against curl, pip and urllib, side by side on one real nginx over loopback HTTPS.

    python benchmarks/run.py            # full sizes, 5 rounds: writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # tiny sizes, 2 rounds, well under a minute:
                                        # writes benchmarks/RESULTS-quick.md (git-ignored)
    python benchmarks/run.py --case big_file --case many_files --rounds 3

Cases: big_file (1), many_files (2), hanging_source (3), memory (4), imports (5),
transports (6), mirrors (7). Each tool runs --rounds times, round-robin. Every server (nginx,
the Python test server) listens on 127.0.0.1 only and is stopped by its PID.

Installs nothing, except nginx-light with apt-get when nginx is missing (as
.ci/run does). Without ``requests`` its import row says "not installed"
(``pip install -e '.[bench]'`` adds it). Exit status: 1 if a case, or a tool in
it, failed to produce a result; 0 otherwise, whether or not targets were met.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import mirrors, others, report, sdist, transfers  # noqa: E402
from benchmarks.common import (  # noqa: E402
    FULL,
    QUICK,
    CaseResult,
    Context,
    MiB,
    Sizes,
    ensure_nginx,
    make_file,
)
from dummyserver import pki  # noqa: E402
from dummyserver.nginx import Nginx  # noqa: E402

CASES: dict[str, Callable[[Context], CaseResult]] = {
    "big_file": transfers.big_file,
    "many_files": transfers.many_files,
    "hanging_source": others.hanging_source,
    "memory": others.memory,
    "imports": others.imports,
    "transports": transfers.transports,
    "mirrors": mirrors.throttled_mirrors,
}
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds")
    parser.add_argument("--rounds", type=int, help="runs of each tool (default 5; quick: 2)")
    parser.add_argument("--case", action="append", choices=list(CASES), help="repeatable")
    parser.add_argument("--output", type=Path, help="default benchmarks/RESULTS[-quick].md")
    parser.add_argument(
        "--work-dir", type=Path, help="parent of the served files and the output folder"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds is not None:
        sizes = dataclasses.replace(sizes, rounds=max(1, args.rounds))
    name = "RESULTS-quick.md" if args.quick else "RESULTS.md"
    output: Path = args.output or Path(__file__).resolve().parent / name
    selected = args.case or list(CASES)
    _loopback_only()
    nginx_binary = ensure_nginx()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.monotonic()
    results: list[CaseResult] = []
    with _context(sizes, selected, args.work_dir) as ctx:
        for key in selected:
            print(f"== {key}", flush=True)
            try:
                results.append(CASES[key](ctx))
            except Exception as exc:
                traceback.print_exc()
                failed = CaseResult(key, key.replace("_", " "), "s", "")
                failed.error = f"{type(exc).__name__}: {exc}"[:500]
                results.append(failed)
        machine_rows = report.machine(ctx.out, load)
    elapsed = time.monotonic() - started
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    today = datetime.date.today().isoformat()
    header = (
        f"`{command}` on {today}, in {elapsed:.0f} s: {sizes.rounds} rounds per case,"
        " the tools alternated round-robin after one untimed warm-up run each (not in case 3);"
        " each row gives the median (and min, max) of its rounds. Ratios are medians divided:"
        " below 1, robustfetch is faster (or smaller). CPU columns: user + system seconds of"
        " the client (this process, or the child it waited for) and of nginx, per run."
        " All traffic stays on loopback: nginx over HTTPS with a test CA"
        " (`dummyserver.pki`), plus a Python test server for the source that never answers."
    )
    text = report.render(
        results, machine_rows, report.versions(sys.executable, nginx_binary), header
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text.split("## Machine")[0])
    print(f"written to {output}")
    return 1 if any(case.failed for case in results) else 0


def _loopback_only() -> None:
    """No proxy for anything we start: every request goes to 127.0.0.1."""
    for variable in _PROXY_VARIABLES:
        os.environ.pop(variable, None)
        os.environ.pop(variable.upper(), None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "*"


@contextmanager
def _context(sizes: Sizes, selected: Sequence[str], parent: Optional[Path]) -> Iterator[Context]:
    work = Path(tempfile.mkdtemp(prefix="rf-bench-", dir=parent))
    shm: Optional[Path] = None
    try:
        www = work / "www"
        print(f"== making files in {www}", flush=True)
        ca = pki.CA()
        ca_file, cert_file, key_file = work / "ca.pem", work / "cert.pem", work / "key.pem"
        ca.cert_pem.write_to_path(ca_file)
        leaf = ca.issue_cert("localhost", "example.test", "127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(cert_file)
        leaf.private_key_pem.write_to_path(key_file)
        digests = _make_files(www, sizes, selected)
        shm = _shm_folder(2 * sizes.big)
        with Nginx(www, leaf, access_log=True) as nginx:
            ctx = Context(
                sizes=sizes,
                nginx=nginx,
                root=www,
                out=work / "out",
                shm=shm,
                ca_file=ca_file,
                cert_file=cert_file,
                key_file=key_file,
                digests=digests,
                env=_child_environment(work),
                leaf=leaf,
            )
            ctx.clean_outputs()
            yield ctx
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


def _child_environment(work: Path) -> dict[str, str]:
    """Children import ``dummyserver`` and cache bytecode in a folder of ours.

    Bytecode is cached for every module alike, as after any pip install:
    ``PYTHONDONTWRITEBYTECODE`` would recompile robustfetch's editable source at
    every start, but not urllib3's installed ``.pyc`` files.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def _make_files(www: Path, sizes: Sizes, selected: Sequence[str]) -> dict[str, str]:
    """The served files each selected case needs; returns path -> sha256."""
    digests = {"/fallback.bin": make_file(www / "fallback.bin", MiB)}
    for index in range(sizes.files):
        path = f"/small/f{index:04}.bin"
        digests[path] = make_file(www / path.lstrip("/"), sizes.small)
    if {"big_file", "transports"} & set(selected):
        digests["/big.bin"] = make_file(www / "big.bin", sizes.big)
    if "big_file" in selected:
        sdist.make_sdist(www, www / "big.bin")
    if "mirrors" in selected:
        digests["/mirrored.bin"] = make_file(www / "mirrored.bin", sizes.mirrored)
    if "memory" in selected:
        for size in sizes.memory:
            path = f"/mem-{size // MiB}.bin"
            digests[path] = make_file(www / path.lstrip("/"), size)
    return digests


def _shm_folder(needed: int) -> Optional[Path]:
    """A fresh folder on /dev/shm (tmpfs) if it exists with ``needed`` bytes free."""
    shm = Path("/dev/shm")
    try:
        if shutil.disk_usage(shm).free < needed:
            return None
        return Path(tempfile.mkdtemp(prefix="rf-bench-", dir=shm))
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
