"""Throughput cases: one big file (1), many small files (2), the two transports (6)."""

from __future__ import annotations

import hashlib
import os
import ssl
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

import robustfetch
from benchmarks import floors
from benchmarks.common import (
    CaseResult,
    Context,
    MiB,
    Target,
    Tool,
    run_quiet,
)
from benchmarks.sdist import SDIST

__all__ = [
    "big_file",
    "curl_command",
    "many_files",
    "rf_fetch",
    "transports",
    "urllib_download",
]

RF = "robustfetch.fetch"
CURL = "curl -o (no hash)"
FLOOR = "threaded Python floor (recv_into, 2 threads)"
KEEPALIVE = "durable keep-alive http.client floor"
CLI = "robustfetch CLI, a fresh process"
FLOOR_CLI = "threaded Python floor, a fresh process"
# What a fresh process imports before a fetch with the default transport can start.
_FETCH_IMPORTS = "import robustfetch.engine.request, robustfetch.transport.urllib3_backend"
_SHM = " → /dev/shm"


def rf_fetch(ctx: Context, path: str, dest: Path, **options: Any) -> Callable[[], None]:
    """``robustfetch.fetch`` of a served file to ``dest``, hash verified, cache off."""
    url, digest = ctx.url(path), ctx.digests[path]

    def run() -> None:
        result = robustfetch.fetch(
            url, digest, dest=dest, cache_dir=None, ca_bundle=ctx.ca_file, **options
        )
        if result.sha256 != digest:
            raise RuntimeError(f"robustfetch returned sha256 {result.sha256}")

    return run


def curl_command(ctx: Context) -> list[str]:
    return ["curl", "-sS", "--fail", "--noproxy", "*", "--cacert", str(ctx.ca_file)]


def urllib_download(
    url: str, digest: str, dest: Path, context: ssl.SSLContext, timeout: float = 60.0
) -> None:
    """What a bootstrap script does with the standard library: stream, hash, rename."""
    partial = dest.with_name(dest.name + ".part")
    hasher = hashlib.sha256()
    opened = urllib.request.urlopen(url, timeout=timeout, context=context)
    with opened as response, open(partial, "wb") as handle:
        for chunk in iter(lambda: response.read(MiB), b""):
            hasher.update(chunk)
            handle.write(chunk)
    if hasher.hexdigest() != digest:
        partial.unlink()
        raise RuntimeError(f"sha256 mismatch for {url}")
    os.replace(partial, dest)


def _has_size(path: Path, size: int) -> Callable[[], None]:
    def check() -> None:
        if path.stat().st_size != size:
            raise RuntimeError(f"{path} holds {path.stat().st_size} bytes, not {size}")

    return check


def big_file(ctx: Context) -> CaseResult:
    size = ctx.sizes.big
    case = CaseResult("big_file", f"One {size // MiB} MiB file, hash verified", "s", RF)
    path, out = "/big.bin", ctx.out / "big.bin"
    url, digest = ctx.url(path), ctx.digests[path]
    curl = curl_command(ctx)
    context = ssl.create_default_context(cafile=str(ctx.ca_file))

    def curl_sha256sum() -> None:
        run_quiet([*curl, "-o", str(out), url])
        if run_quiet(["sha256sum", str(out)]).split()[0] != digest:
            raise RuntimeError("sha256sum disagrees")

    name, version = SDIST
    sdist = ctx.out / f"{name}-{version}.tar.gz"
    pip = [ctx.python, "-m", "pip", "download", "--no-deps", "--no-build-isolation"]
    pip += ["--no-cache-dir", "--disable-pip-version-check", "--quiet", "--cert"]
    pip += [str(ctx.ca_file), "--index-url", ctx.url("/simple/"), "--dest", str(ctx.out)]
    # Only the command line counts: no config file, no PIP_* variables, and no
    # REQUESTS_CA_BUNDLE (it would override --cert).
    ignored = {k for k in ctx.env if k.startswith("PIP_")}
    ignored |= {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
    pip_env = {k: v for k, v in ctx.env.items() if k not in ignored}
    pip_env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1")
    sdist_size = (ctx.root / "packages" / sdist.name).stat().st_size
    full = _has_size(out, size)

    def floor() -> None:
        if floors.threaded(url, str(out), digest, str(ctx.ca_file)) != 0:
            raise RuntimeError("the threaded floor's sha256 disagrees")

    cli = [ctx.python, "-m", "robustfetch", "fetch", url, "--sha256", digest, "-o", str(out)]
    cli += ["--no-cache", "--ca-bundle", str(ctx.ca_file)]
    floor_cli = [ctx.python, "-m", "benchmarks.floors", "threaded", url, str(out), digest]
    floor_cli.append(str(ctx.ca_file))
    tools = [
        Tool(RF, rf_fetch(ctx, path, out), full),
        Tool(CURL, lambda: _none(run_quiet([*curl, "-o", str(out), url])), full),
        Tool(FLOOR, floor, full, note="benchmarks/floors.py, in this process like robustfetch"),
        Tool(CLI, lambda: _none(run_quiet(cli, env=ctx.env)), full, note="python -m robustfetch"),
        Tool(FLOOR_CLI, lambda: _none(run_quiet(floor_cli, env=ctx.env)), full),
        Tool("curl -o, then sha256sum", curl_sha256sum, full),
        Tool("urllib.request + hashlib", lambda: urllib_download(url, digest, out, context), full),
        Tool(
            "pip download (simple index, sdist)",
            lambda: _none(run_quiet([*pip, f"{name}=={version}"], env=pip_env)),
            _has_size(sdist, sdist_size),
            note="also unpacks the sdist and asks its build backend for metadata",
        ),
    ]
    if ctx.shm is not None:
        shm_out = ctx.shm / "big.bin"
        shm_curl = [*curl, "-o", str(shm_out), url]
        in_shm = _has_size(shm_out, size)
        tools += [
            Tool(RF + _SHM, rf_fetch(ctx, path, shm_out), in_shm, reference=RF + _SHM),
            Tool(CURL + _SHM, lambda: _none(run_quiet(shm_curl)), in_shm, reference=RF + _SHM),
        ]
    case.measures = ctx.alternate(tools)
    add_target(case, "≤ 1.10 x curl -o (no hash)", RF, CURL, 1.10)
    add_target(case, "≤ 1.10 x the threaded Python floor", RF, FLOOR, 1.10)
    add_target(case, "faster than curl -o, then sha256sum", RF, tools[5].name, 1.0, strict=True)
    add_target(case, "fresh processes: ≤ 1.10 x curl -o (no hash)", CLI, CURL, 1.10)
    add_target(case, "fresh processes: ≤ 1.10 x the threaded floor", CLI, FLOOR_CLI, 1.10)
    case.notes += [
        f"The first eight rows write to one folder on disk (`{ctx.out}`); the `/dev/shm` rows"
        " write to tmpfs. robustfetch fdatasyncs the file before its atomic rename (on a"
        " thread of its own as it goes: every 16 MiB, every 4 MiB in the last 16);"
        " the threaded floor, curl, urllib and pip never sync: on disk that is a real cost which"
        " the tmpfs rows leave out. Before every run the outputs are deleted and `sync` is run.",
        "The threaded Python floor: one connection read with `recv_into` into 1 MiB buffers,"
        " a second thread hashing and writing each, buffers recycled through a free list of"
        " 6, the hash checked, and a rename (no sync): the least a Python program can do.",
        "curl -o verifies nothing; robustfetch, urllib, sha256sum and pip check the sha256.",
    ]
    shm_ratio = case.ratio(RF + _SHM, CURL + _SHM)
    if shm_ratio is not None:
        case.notes.append(f"On tmpfs (no disk): robustfetch ÷ curl -o = {shm_ratio:.2f}.")
    case.notes.append(_cpu_note(case, ctx, RF, CURL))
    case.notes.append(_start_note(ctx))
    return case


def _start_note(ctx: Context) -> str:
    """What a fresh Python process costs before its first byte: start, imports, exit."""

    def median_run(code: str) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            subprocess.run([ctx.python, "-c", code], env=ctx.env, check=True)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    bare = median_run("pass")
    urllib3_only = median_run("import urllib3")
    fetch = median_run(_FETCH_IMPORTS)
    return (
        "The fresh-process rows pay for a Python start before any byte:"
        f" `python -c pass` takes {bare:.3f} s here, `python -c 'import urllib3'` (the default"
        f" transport) {urllib3_only:.3f} s, and importing all a fetch needs"
        f" (`{_FETCH_IMPORTS}`) {fetch:.3f} s, start and exit included; curl starts in a few"
        " milliseconds. The in-process rows above measure the transfer itself."
    )


def _cpu_note(case: CaseResult, ctx: Context, ours: str, peer: str) -> str:
    """What the hash costs here, against the CPU the client and nginx use (cores)."""
    data = (ctx.root / "big.bin").read_bytes()
    started = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    seconds = time.perf_counter() - started
    text = (
        f"SHA-256 of these {len(data) // MiB} MiB takes {seconds:.3f} s of one core here"
        f" (hashlib); curl -o computes none. {os.cpu_count()} cores serve client and nginx"
        " both"
    )
    mine, theirs = case.get(ours), case.get(peer)
    if mine is None or theirs is None or not (mine.cpu and mine.server_cpu):
        return text + "."
    extra = statistics.median(mine.cpu) - statistics.median(theirs.cpu)
    busy = (statistics.median(mine.cpu) + statistics.median(mine.server_cpu)) / mine.median
    text += (
        f": during robustfetch's runs client and nginx kept {busy:.1f} cores busy on"
        f" average, and robustfetch used {extra:.2f} s more CPU than curl -o"
    )
    if busy >= 0.75 * (os.cpu_count() or 1):
        text += ", work that finds no idle core to run on here"
    return text + "."


def many_files(ctx: Context) -> CaseResult:
    count, size = ctx.sizes.files, ctx.sizes.small
    title = f"{count} files of {size // 1024} KiB, hashes verified"
    reference = "robustfetch.fetch_many(workers=8)"
    case = CaseResult("many_files", title, "s", reference)
    paths = sorted(p for p in ctx.digests if p.startswith("/small/"))
    context = ssl.create_default_context(cafile=str(ctx.ca_file))
    config = ctx.out.parent / "curl-parallel.cfg"
    config.write_text(
        "".join(f'url = "{ctx.url(p)}"\noutput = "{ctx.out / p[7:]}"\n' for p in paths)
    )

    def fetch_many(workers: int) -> Callable[[], None]:
        def run() -> None:
            requests = [
                robustfetch.Request(ctx.url(p), ctx.digests[p], dest=ctx.out) for p in paths
            ]
            options = {"cache_dir": None, "ca_bundle": ctx.ca_file}
            for result in robustfetch.fetch_many(requests, workers=workers, **options):
                if not isinstance(result, robustfetch.FetchResult):
                    raise result

        return run

    def urllib_loop() -> None:
        for p in paths:
            urllib_download(ctx.url(p), ctx.digests[p], ctx.out / p[7:], context)

    def check() -> None:
        found = sum(1 for entry in ctx.out.iterdir() if entry.stat().st_size == size)
        if found != count:
            raise RuntimeError(f"{found} of {count} files arrived")

    def connections() -> Callable[[], int]:
        start = ctx.nginx.log_size()
        return lambda: len(ctx.nginx.connections(start))

    parallel = [*curl_command(ctx), "--parallel", "--parallel-max", "8", "-K", str(config)]
    listed = [f"{p.lstrip('/')}:{ctx.digests[p]}" for p in paths]

    def keepalive_floor() -> None:
        if floors.keepalive(ctx.url("/"), str(ctx.out), str(ctx.ca_file), listed) != 0:
            raise RuntimeError("the keep-alive floor's hashes disagree")

    tools = [
        Tool(reference, fetch_many(8)),
        Tool("curl --parallel --parallel-max 8", lambda: _none(run_quiet(parallel))),
        Tool("sequential urllib.request loop", urllib_loop),
        Tool(
            "robustfetch.fetch_many(workers=1)",
            fetch_many(1),
            note="for comparison: one thread, one connection",
        ),
        Tool(
            KEEPALIVE,
            keepalive_floor,
            note="benchmarks/floors.py: one connection; hash, write, fdatasync, rename per file",
        ),
    ]
    for tool in tools:
        tool.check, tool.counter = check, connections
    case.measures = ctx.alternate(tools)
    add_target(case, "≤ 1.25 x curl --parallel", reference, tools[1].name, 1.25)
    add_target(case, "≤ 1.30 x the durable keep-alive floor", reference, KEEPALIVE, 1.30)
    add_speedup_target(case, "≥ 5 x faster than the sequential urllib loop", tools[2].name, 5)
    case.notes.append(
        "One output folder for all; curl does not verify hashes. TCP connections are"
        " counted by nginx (distinct `$connection` serial numbers in its access log)."
    )
    per_file = [
        f"{m.tool} {statistics.median(m.cpu) / count * 1e6:.0f} µs"
        for m in case.measures
        if m.ok and m.cpu
    ]
    if per_file:
        case.notes.append("Client CPU per file: " + "; ".join(per_file) + ".")
    return case


def transports(ctx: Context) -> CaseResult:
    size = ctx.sizes.big
    title = f"Both transports on the {size // MiB} MiB file"
    case = CaseResult("transports", title, "s", "transport=stdlib")
    import robustfetch.options

    choices = getattr(robustfetch.options, "TRANSPORT_CHOICES", ())
    missing = "" if "stdlib" in choices else "not available in this version"
    folder = ctx.shm or ctx.out
    dest, path = folder / "big.bin", "/big.bin"
    check = _has_size(dest, size)
    stdlib = rf_fetch(ctx, path, dest, transport="stdlib")
    tools = [
        Tool("transport=stdlib", stdlib, check, unavailable=missing),
        Tool("transport=urllib3", rf_fetch(ctx, path, dest, transport="urllib3"), check),
    ]
    case.measures = ctx.alternate(tools)
    add_target(case, "stdlib ≤ 1.3 x urllib3", "transport=stdlib", "transport=urllib3", 1.3)
    where = "tmpfs (/dev/shm), so the disk does not hide" if ctx.shm else "disk"
    case.notes.append(f"Written to {where} the transports' own cost; hash verified.")
    if missing:
        case.notes.append(f"The stdlib transport is {missing} (`TRANSPORT_CHOICES`).")
    return case


def add_target(
    case: CaseResult, goal: str, ours: str, peer: str, limit: float, strict: bool = False
) -> None:
    """A target of the form ``ours ≤ limit x peer`` (``<`` if ``strict``), on medians."""
    ratio = case.ratio(ours, peer)
    if ratio is None:
        case.targets.append(Target(goal, "not available", None))
        return
    met = ratio < limit if strict else ratio <= limit
    case.targets.append(Target(goal, f"{ratio:.2f} x ({ours} ÷ {peer})", met))


def add_speedup_target(case: CaseResult, goal: str, slower: str, minimum: float) -> None:
    """A target of the form ``slower ≥ minimum x`` the case's reference row, on medians."""
    ratio = case.ratio(slower, case.reference)
    if ratio is None:
        case.targets.append(Target(goal, "not available", None))
        return
    case.targets.append(
        Target(goal, f"{ratio:.2f} x faster ({slower} ÷ {case.reference})", ratio >= minimum)
    )


def _none(_: object) -> Optional[float]:
    return None
