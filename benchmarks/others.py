"""A source that never answers (3), peak memory (4), import time (5)."""

from __future__ import annotations

import importlib.util
import select
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Callable, Optional

import robustfetch
from benchmarks.common import CaseResult, Context, MiB, Target, Tool, alternate, run_quiet
from benchmarks.transfers import curl_command, urllib_download

__all__ = ["hanging_source", "imports", "memory"]

# The Python test server runs in a process of its own: in ours, its threads (which
# poll every 50 ms) would compete for the GIL with the client being timed.
_SERVE = """
import ssl, sys
from dummyserver import Server
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
with Server(context) as server:
    server.route("/hang.bin", hang_before_headers=True)
    print(server.url("/hang.bin", host="localhost"), flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
"""

# Peak RSS of a fetch, read by a dedicated parent from RUSAGE_CHILDREN, so that
# nothing else this benchmark ran as a child is counted.
_PARENT = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024)
"""
_FETCH = """
import sys, robustfetch
url, digest, dest, ca = sys.argv[1:]
robustfetch.fetch(url, digest, dest=dest, cache_dir=None, ca_bundle=ca)
"""
_MODULES = """
import sys, robustfetch
names = ("urllib3", "requests", "certifi", "idna", "ssl", "http.client", "email.parser",
         "concurrent.futures", "hashlib", "threading")
print(" ".join(n for n in names if n in sys.modules))
"""


@contextmanager
def _hanging_server(ctx: Context) -> Iterator[str]:
    """A ``dummyserver.Server`` in a child process whose one route never answers."""
    command = [ctx.python, "-c", _SERVE, str(ctx.cert_file), str(ctx.key_file)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ctx.env, text=True
    )
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None and stdout is not None
    try:
        if not select.select([stdout], [], [], 30.0)[0]:
            raise RuntimeError("the hanging server did not start within 30 s")
        url = stdout.readline().strip()
        if not url.startswith("https://"):
            raise RuntimeError(f"the hanging server failed to start (exit {process.poll()})")
        yield url
    finally:
        _stop(process, stdin)


def _stop(process: subprocess.Popen[str], stdin: IO[str]) -> None:
    stdin.close()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()  # by its PID
        process.wait(15)


DEFAULTS = "robustfetch.fetch (default options)"


def hanging_source(ctx: Context) -> CaseResult:
    stall, peer = ctx.sizes.stall, ctx.sizes.peer_timeout
    rf = f"robustfetch.fetch(stall_timeout={stall:g})"
    title = "The primary accepts connections and never answers; the fallback is good"
    case = CaseResult("hanging_source", title, "s", rf)
    path, out = "/fallback.bin", ctx.out / "fallback.bin"
    fallback, digest = ctx.url(path), ctx.digests[path]
    context = ssl.create_default_context(cafile=str(ctx.ca_file))
    seen: list[str] = []
    seen_default: list[str] = []
    with _hanging_server(ctx) as primary:

        def ours() -> None:
            result = robustfetch.fetch(
                primary,
                digest,
                [fallback],
                dest=out,
                cache_dir=None,
                ca_bundle=ctx.ca_file,
                stall_timeout=stall,
            )
            reasons = [str(a.reason.value if a.reason else "ok") for a in result.attempts]
            seen.append(" → ".join(reasons))
            if result.url != fallback:
                raise RuntimeError(f"served by {result.url}")

        def urllib_loop() -> None:
            for url in (primary, fallback):
                try:
                    urllib_download(url, digest, out, context, timeout=peer)
                    return
                except OSError:
                    continue
            raise RuntimeError("every source failed")

        def curl() -> None:
            command = [*curl_command(ctx), "--max-time", f"{peer:g}", "-o", str(out)]
            first = subprocess.run([*command, primary], capture_output=True, check=False)
            if first.returncode == 0:
                raise RuntimeError("curl got an answer from the hanging source")
            run_quiet([*command, fallback])

        def check() -> None:
            if out.stat().st_size != MiB:
                raise RuntimeError("the fallback's file did not arrive")

        def defaults() -> None:
            result = robustfetch.fetch(
                primary, digest, [fallback], dest=out, cache_dir=None, ca_bundle=ctx.ca_file
            )
            reasons = [str(a.reason.value if a.reason else "ok") for a in result.attempts]
            seen_default.append(" → ".join(reasons))
            if result.url != fallback:
                raise RuntimeError(f"served by {result.url}")

        tools = [
            Tool(rf, ours, check),
            Tool(DEFAULTS, defaults, check, reference=DEFAULTS),
            Tool(f"urllib loop [primary, fallback], timeout={peer:g}", urllib_loop, check),
            Tool(f"curl --max-time {peer:g}, then the fallback", curl, check),
        ]
        # Nothing to warm up, and a round of the peers takes twice their timeout.
        case.measures = ctx.alternate(tools, warm_up=False)
    ours_measure = case.get(rf)
    limit = stall + 0.5
    measured = "—" if ours_measure is None else f"worst of {len(ours_measure.values)}: "
    if ours_measure is not None:
        measured += f"{max(ours_measure.values):.2f} s"
    met = None if ours_measure is None else max(ours_measure.values) <= limit
    case.targets.append(Target(f"success in ≤ stall_timeout + 0.5 s = {limit:g} s", measured, met))
    default = case.get(DEFAULTS)
    worst = None if default is None else max(default.values)
    case.targets.append(
        Target(
            "default options (hedge_after=2): success in ≤ 2.5 s",
            "—" if worst is None else f"worst of {len(default.values)}: {worst:.2f} s",
            None if worst is None else worst <= 2.5,
        )
    )
    case.notes += [
        "The primary is `dummyserver.Server` with `hang_before_headers=True` (TLS handshake"
        " done, request read, no answer), in a child process of its own so that its threads"
        " do not share a GIL with the client being timed; the fallback is nginx (1 MiB).",
        f"robustfetch's attempts: {seen[0] if seen else '—'}; with the default options"
        f" (connect_timeout=10, stall_timeout=30, hedge_after=2):"
        f" {seen_default[0] if seen_default else '—'}. Peers: {peer:g} s is pip's"
        " default timeout; curl has no default, `--max-time` bounds the whole transfer.",
    ]
    return case


def memory(ctx: Context) -> CaseResult:
    small, (half, full) = ctx.sizes.small, ctx.sizes.memory
    case = CaseResult("memory", "Peak memory (RSS) of a process fetching one file", "MiB", "")

    def tool(path: str, label: str) -> Tool:
        url, digest = ctx.url(path), ctx.digests[path]
        dest = ctx.out / path.rsplit("/", 1)[1]
        command = [ctx.python, "-c", _PARENT, ctx.python, "-c", _FETCH, url, digest]
        command += [str(dest), str(ctx.ca_file)]
        return Tool(label, lambda: float(run_quiet(command, env=ctx.env)))

    names = {size: f"fetch {size // MiB} MiB" for size in (half, full)}
    tools = [tool(f"/small/f{0:04}.bin", f"fetch {small // 1024} KiB (baseline)")]
    tools += [tool(f"/mem-{size // MiB}.bin", names[size]) for size in (half, full)]
    case.measures = ctx.alternate(tools)
    top, low = case.get(names[full]), case.get(names[half])
    met: Optional[bool] = None
    shown = "—"
    if top is not None:
        met, shown = max(top.values) <= 60, f"{max(top.values):.1f} MiB (worst run)"
    case.targets.append(Target(f"≤ 60 MiB RSS fetching {full // MiB} MiB", shown, met))
    if top is not None and low is not None:
        growth = top.median - low.median
        flat = Target("flat as the size doubles (grows ≤ 4 MiB)", f"{growth:+.1f} MiB", None)
        flat.met = growth <= 4
        case.targets.append(flat)
    case.notes.append(
        "Each fetch runs in a fresh interpreter under a dedicated parent that reads"
        " `getrusage(RUSAGE_CHILDREN).ru_maxrss`; written to disk, hash verified, cache off."
        " The baseline is the same program fetching one small file: interpreter, imports,"
        " TLS and threads."
    )
    return case


def imports(ctx: Context) -> CaseResult:
    title = "Import time: a fresh `python -c 'import X'`, minus a bare `python -c pass`"
    case = CaseResult("imports", title, "ms", "import robustfetch")
    names = ["robustfetch", "urllib3", "requests"]
    bare = "python -c pass"
    env = ctx.env
    tools = [Tool(bare, _timed([ctx.python, "-c", "pass"], env), reference=bare)]
    for name in names:
        found = importlib.util.find_spec(name) is not None
        missing = "" if found else f"not installed (pip install {name}, or the bench extra)"
        tool = Tool(f"import {name}", _timed([ctx.python, "-c", f"import {name}"], env))
        tool.unavailable = missing
        tools.append(tool)
    case.measures = alternate(tools, ctx.sizes.import_rounds, progress=lambda _: None)
    for measure in case.measures:
        measure.values = [v * 1000 for v in measure.values]  # milliseconds
    base = case.get(bare)
    if base is not None:
        start = base.median
        base.note = "interpreter start: subtracted from the rows below"
        for measure in case.measures[1:]:
            measure.values = [max(v - start, 0.0) for v in measure.values]
    ratio = case.ratio("import robustfetch", "import urllib3")
    met = None if ratio is None else ratio <= 1.15
    shown = "—" if ratio is None else f"{ratio:.2f} x (net of interpreter start)"
    case.targets.append(Target("≤ 1.15 x import urllib3", shown, met))
    loaded = run_quiet([ctx.python, "-c", _MODULES], env=ctx.env).split()
    lazy = "urllib3" not in loaded
    case.targets.append(
        Target(
            "`import robustfetch` does not import urllib3 (lazy)",
            "urllib3 not imported" if lazy else "urllib3 IS imported",
            lazy,
        )
    )
    case.notes.append(
        "Among urllib3, requests, certifi, idna, ssl, http.client, email.parser,"
        " concurrent.futures, hashlib and threading, `import robustfetch` loads: "
        + (", ".join(f"`{n}`" for n in loaded) or "none")
        + f". {ctx.sizes.import_rounds} rounds each, after one warm-up run that compiles"
        " every module's bytecode into the cache folder all child processes share"
        " (`PYTHONPYCACHEPREFIX`), as a pip install would have."
    )
    return case


def _timed(command: list[str], env: dict[str, str]) -> Callable[[], Optional[float]]:
    def run() -> None:
        run_quiet(command, env=env)

    return run
