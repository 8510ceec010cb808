"""Plumbing shared by the benchmark cases: sizes, the served files, tools, round-robin timing."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from dummyserver import pki
from dummyserver.nginx import Nginx, find_nginx

__all__ = [
    "FULL",
    "QUICK",
    "CaseResult",
    "Context",
    "KiB",
    "Measure",
    "MiB",
    "Sizes",
    "Target",
    "Tool",
    "alternate",
    "ensure_nginx",
    "make_file",
    "run_quiet",
    "sha256_file",
]

KiB = 1 << 10
MiB = 1 << 20


@dataclass(frozen=True)
class Sizes:
    """How big each case is, and how long its timeouts are."""

    big: int  # bytes of the big file (cases 1 and 6)
    files: int  # how many small files (case 2)
    small: int  # bytes of each small file
    memory: tuple[int, int]  # file sizes whose peak RSS is compared (case 4)
    stall: float  # robustfetch's stall_timeout against the hanging source (case 3)
    peer_timeout: float  # the urllib and curl timeouts there (pip's default is 15 s)
    rounds: int
    import_rounds: int  # interpreter starts are short and noisy: more of them
    mirrored: int = 64 * MiB  # bytes of the file on the throttled mirrors (case 7)
    mirror_rate: str = "8m"  # nginx limit_rate of each mirror connection


FULL = Sizes(128 * MiB, 300, 16 * KiB, (512 * MiB, 1024 * MiB), 2.0, 15.0, 5, 20)
QUICK = Sizes(8 * MiB, 50, 16 * KiB, (64 * MiB, 128 * MiB), 1.0, 2.0, 2, 6, 8 * MiB)


@dataclass
class Context:
    """What every case needs: the running nginx, the files it serves, the output folder."""

    sizes: Sizes
    nginx: Nginx
    root: Path  # the folder nginx serves
    out: Path  # where every tool writes (one folder for all, on the same file system)
    shm: Optional[Path]  # a folder on /dev/shm (tmpfs), if there is room
    ca_file: Path
    cert_file: Path  # leaf certificate and key for the Python test server (case 3)
    key_file: Path
    digests: dict[str, str]  # served path ("/big.bin") -> sha256
    env: dict[str, str]  # environment of every child process
    leaf: Optional[pki.LeafCert] = None  # nginx's certificate, for more servers (case 7)
    python: str = sys.executable

    def url(self, path: str) -> str:
        return self.nginx.url(path)

    def alternate(self, tools: Sequence[Tool], warm_up: bool = True) -> list[Measure]:
        """:func:`alternate` with this context's rounds, clean outputs and nginx's CPU."""
        return alternate(
            tools,
            self.sizes.rounds,
            self.clean_outputs,
            warm_up=warm_up,
            server_cpu=self.nginx.cpu_seconds,
        )

    def clean_outputs(self) -> None:
        """Empty the output folders and flush dirty pages, so each run starts alike."""
        for folder in (self.out, self.shm):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
        os.sync()


@dataclass
class Tool:
    """One contender: ``run`` does the work; its duration is measured around it.

    If ``run`` returns a number, that number is the measurement instead (peak
    RSS in MiB, for instance). ``check`` runs afterwards, untimed, and raises if
    the output is wrong; ``unavailable`` explains why the tool is not measured
    at all (not installed), which is reported but is no failure.
    """

    name: str
    run: Callable[[], Optional[float]]
    check: Optional[Callable[[], None]] = None
    unavailable: str = ""
    note: str = ""
    reference: Optional[str] = None  # the robustfetch row this one is compared with
    # Called (untimed) before each run; what it returns is called after the run
    # and gives one more figure per run (the TCP connections nginx saw).
    counter: Optional[Callable[[], Callable[[], int]]] = None


@dataclass
class Measure:
    """One tool's results in one case."""

    tool: str
    values: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    error: str = ""
    unavailable: str = ""
    note: str = ""
    reference: Optional[str] = None
    cpu: list[float] = field(default_factory=list)  # client CPU seconds per run
    server_cpu: list[float] = field(default_factory=list)  # nginx CPU seconds per run

    @property
    def ok(self) -> bool:
        return bool(self.values) and not self.error

    @property
    def median(self) -> float:
        return statistics.median(self.values)


@dataclass
class Target:
    """A goal from the issue and whether it was reached (``None``: could not be told)."""

    goal: str
    measured: str
    met: Optional[bool]


@dataclass
class CaseResult:
    key: str
    title: str
    unit: str  # "s", "ms" or "MiB"
    reference: str  # robustfetch's row: the numerator of the ratio column
    measures: list[Measure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""  # the case could not run at all

    def get(self, tool: str) -> Optional[Measure]:
        return next((m for m in self.measures if m.tool == tool and m.ok), None)

    def ratio(self, numerator: str, denominator: str) -> Optional[float]:
        top, bottom = self.get(numerator), self.get(denominator)
        if top is None or bottom is None or bottom.median <= 0:
            return None
        return top.median / bottom.median

    @property
    def failed(self) -> bool:
        return bool(self.error) or any(m.error for m in self.measures)


def alternate(
    tools: Sequence[Tool],
    rounds: int,
    before: Optional[Callable[[], None]] = None,
    progress: Callable[[str], None] = print,
    warm_up: bool = True,
    server_cpu: Optional[Callable[[], Optional[float]]] = None,
) -> list[Measure]:
    """Run every tool ``rounds`` times, round-robin, each round starting one tool later.

    With ``warm_up``, every tool runs once first, untimed (bytecode compiled,
    binaries and files in the page cache). ``before`` runs (untimed) before
    every run. A tool that fails once is reported with its error and not run again.
    Each run's client CPU time (this process and the children it waited for) is
    recorded, and the server's if ``server_cpu`` reads it.
    """
    measures = [
        Measure(t.name, unavailable=t.unavailable, note=t.note, reference=t.reference)
        for t in tools
    ]
    live = [i for i, t in enumerate(tools) if not t.unavailable]
    for round_index in range(-1 if warm_up else 0, rounds):
        shift = round_index % len(live) if live else 0
        for index in live[shift:] + live[:shift]:
            tool, measure = tools[index], measures[index]
            if measure.error:
                continue
            try:
                if before is not None:
                    before()
                count = tool.counter() if tool.counter is not None else None
                server = server_cpu() if server_cpu is not None else None
                cpu, started = _cpu(), time.perf_counter()
                value = tool.run()
                elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
                server_after = server_cpu() if server_cpu is not None else None
                if tool.check is not None:
                    tool.check()
                if count is not None:
                    measure.counts.append(count())
            except Exception as exc:  # a peer that breaks is reported, not fatal
                measure.error = f"{type(exc).__name__}: {exc}".strip()[:500]
                progress(f"    {tool.name}: FAILED {measure.error}")
                continue
            if round_index < 0:
                measure.counts.clear()
                progress(f"    warm-up {tool.name}: {elapsed:.3f} s")
                continue
            measure.values.append(elapsed if value is None else value)
            measure.cpu.append(cpu)
            if server is not None and server_after is not None:
                measure.server_cpu.append(server_after - server)
            progress(f"    round {round_index + 1} {tool.name}: {measure.values[-1]:.3f}")
    return measures


def _cpu() -> float:
    """User + system seconds of this process and of the children it has waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_quiet(
    command: Sequence[str], env: Optional[dict[str, str]] = None, timeout: float = 600.0
) -> str:
    """Run ``command``; return its stdout; raise with its stderr if it fails."""
    done = subprocess.run(
        list(command), env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-400:]
        raise RuntimeError(f"{Path(command[0]).name} exited {done.returncode}: {tail}")
    return done.stdout


def make_file(path: Path, size: int) -> str:
    """Write ``size`` bytes of incompressible data to ``path``; return their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        for index in range(-(-size // MiB)):
            shift = index % MiB
            chunk = (block[shift:] + block[:shift])[: min(MiB, size - index * MiB)]
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_nginx(progress: Callable[[str], None] = print) -> str:
    """The nginx binary; installs ``nginx-light`` with apt-get first if missing (as .ci/run)."""
    found = find_nginx()
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("nginx is not installed and apt-get is not available: install nginx")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    progress("== nginx is missing: installing nginx-light (as .ci/run does)")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    install = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq"]
    subprocess.run([*sudo, *install, "nginx-light"], check=True, stdout=subprocess.DEVNULL)
    found = find_nginx()
    if found is None:
        raise RuntimeError("nginx-light was installed but no nginx binary was found")
    return found
