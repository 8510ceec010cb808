"""Case 7: four mirrors that each throttle every connection; segments from all of them at once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Callable

import robustfetch
from benchmarks.common import CaseResult, Context, MiB, Tool, run_quiet
from benchmarks.transfers import add_speedup_target, add_target
from dummyserver.nginx import Nginx

__all__ = ["throttled_mirrors"]

MIRRORS = 4
SPLIT = "robustfetch.fetch(split=4), 4 mirrors"
ONE = "robustfetch.fetch, one source"
ARIA = "aria2c --split=4, 4 mirrors"


@contextmanager
def _mirrors(ctx: Context) -> Iterator[list[Nginx]]:
    """Four more nginx instances serving the same folder, ``limit_rate`` per connection."""
    leaf = ctx.leaf
    assert leaf is not None, "run.py gives the context its certificate"
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                Nginx(
                    ctx.root,
                    leaf,
                    access_log=False,
                    limit_rate=ctx.sizes.mirror_rate,
                    sni_required=False,  # aria2c sends no SNI for localhost
                )
            )
            for _ in range(MIRRORS)
        ]
        yield servers


def throttled_mirrors(ctx: Context) -> CaseResult:
    size, rate = ctx.sizes.mirrored, ctx.sizes.mirror_rate
    title = f"One {size // MiB} MiB file on {MIRRORS} mirrors, each with limit_rate {rate}"
    case = CaseResult("mirrors", title, "s", SPLIT)
    path, out = "/mirrored.bin", ctx.out / "mirrored.bin"
    digest = ctx.digests[path]
    with _mirrors(ctx) as servers:
        urls = [server.url(path) for server in servers]

        def ours(split: int, sources: list[str]) -> Callable[[], None]:
            def run() -> None:
                result = robustfetch.fetch(
                    sources[0],
                    digest,
                    sources[1:],
                    dest=out,
                    cache_dir=None,
                    ca_bundle=ctx.ca_file,
                    size=size,
                    split=split,
                )
                if result.sha256 != digest:
                    raise RuntimeError(f"robustfetch returned sha256 {result.sha256}")

            return run

        aria = shutil.which("aria2c")
        command = [
            aria or "aria2c",
            f"--split={MIRRORS}",
            "--max-connection-per-server=4",  # per host name: all four are localhost
            "--min-split-size=1M",
            f"--ca-certificate={ctx.ca_file}",
            "--check-certificate=true",
            f"--checksum=sha-256={digest}",
            # getaddrinfo (/etc/hosts), not aria2's own resolver: nothing leaves the machine
            "--async-dns=false",
            "--disable-ipv6=true",
            "--file-allocation=none",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--console-log-level=error",
            "--summary-interval=0",
            "--quiet=true",
            f"--dir={out.parent}",
            f"--out={out.name}",
            *urls,
        ]

        def check() -> None:
            if out.stat().st_size != size:
                raise RuntimeError(f"{out} holds {out.stat().st_size} bytes, not {size}")

        tools = [
            Tool(SPLIT, ours(MIRRORS, urls), check),
            Tool(
                ARIA,
                lambda: _none(run_quiet(command)),
                check,
                unavailable="" if aria else "aria2c is not installed",
            ),
            Tool(ONE, ours(1, urls[:1]), check, reference=ONE),
        ]
        case.measures = ctx.alternate(tools)
    add_target(case, "split=4 ≤ 1.15 x aria2c --split=4", SPLIT, ARIA, 1.15)
    add_speedup_target(case, "one source ≥ 3 x split=4", ONE, 3)
    case.notes.append(
        f"Each mirror is an nginx of its own with `limit_rate {rate}` (per connection),"
        " serving the same file over HTTPS; the size is given (`size=`), the sha256 is pinned"
        " and checked by both robustfetch and aria2c (`--checksum`)."
    )
    return case


def _none(_: object) -> None:
    return None
