"""RESULTS.md: the machine, the versions, and each case's table and targets."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import ssl
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import robustfetch
from benchmarks.common import CaseResult, Measure

__all__ = ["machine", "render", "versions"]


def machine(out: Path, load: Optional[tuple[float, float, float]]) -> list[tuple[str, str]]:
    """CPU, cores, memory, kernel, the output folder's file system, the load before."""
    cpu = _first_field(Path("/proc/cpuinfo"), "model name") or platform.processor() or "?"
    cores = str(os.cpu_count() or "?")
    if hasattr(os, "sched_getaffinity"):
        cores += f" ({len(os.sched_getaffinity(0))} usable by this process)"
    mem_kib = _first_field(Path("/proc/meminfo"), "MemTotal")
    memory = f"{int(mem_kib.split()[0]) / (1 << 20):.1f} GiB" if mem_kib else "?"
    return [
        ("CPU", cpu),
        ("cores", cores),
        ("memory", memory),
        ("kernel", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("output folder", f"`{out}` on {_file_system(out)}"),
        ("load average before the run", _load(load)),
    ]


def versions(python: str, nginx: str) -> list[tuple[str, str]]:
    """Versions of everything measured, read from the tools themselves."""

    def first_line(command: Sequence[str], stderr: bool = False) -> str:
        try:
            done = subprocess.run(list(command), capture_output=True, text=True, timeout=60)
        except OSError as exc:
            return f"not found ({exc.strerror})"
        return ((done.stderr if stderr else done.stdout).strip().splitlines() or ["?"])[0]

    curl = first_line(["curl", "--version"]).split()
    curl_text = " ".join(curl[:2] + [w for w in curl if w.startswith("OpenSSL/")])
    root = Path(__file__).resolve().parent.parent
    commit = first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "-C", str(root), "status", "--porcelain", "src"])
    source = f"commit {commit}" + (" + uncommitted changes in src/" if dirty != "?" else "")
    return [
        ("robustfetch", f"{robustfetch.__version__} ({source})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("OpenSSL (Python's)", ssl.OPENSSL_VERSION),
        ("urllib3", _dist_version("urllib3")),
        ("requests", _dist_version("requests")),
        ("curl", curl_text),
        ("nginx", first_line([nginx, "-v"], stderr=True).replace("nginx version: ", "")),
        ("pip", " ".join(first_line([python, "-m", "pip", "--version"]).split()[:2])),
    ]


def render(
    cases: Sequence[CaseResult],
    machine_rows: Sequence[tuple[str, str]],
    version_rows: Sequence[tuple[str, str]],
    header: str,
) -> str:
    lines = ["# robustfetch benchmarks", "", header, "", "## Summary", ""]
    lines += ["| # | case | target | measured | met |", "| --- | --- | --- | --- | --- |"]
    for number, case in enumerate(cases, 1):
        if case.error:
            lines.append(f"| {number} | {case.title} | — | FAILED: {case.error} | no |")
        for target in case.targets:
            met = {True: "yes", False: "**NO**", None: "n/a"}[target.met]
            lines.append(f"| {number} | {case.title} | {target.goal} | {target.measured} | {met} |")
    lines += ["", "## Machine", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in machine_rows]
    lines += ["", "## Versions", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in version_rows]
    for number, case in enumerate(cases, 1):
        lines += ["", f"## {number}. {case.title}", ""]
        lines += _table(case) if not case.error else [f"FAILED: {case.error}"]
        lines += [""] + [f"- {note}" for note in case.notes]
    return "\n".join(lines).rstrip() + "\n"


def _table(case: CaseResult) -> list[str]:
    counted = any(m.counts for m in case.measures)
    cpu = case.unit == "s" and any(m.cpu for m in case.measures)
    head = ["tool", f"median ({case.unit})", "min", "max"]
    if case.reference:
        head.append(f"ratio: {case.reference} ÷ tool" if _mixed(case) else "robustfetch ÷ tool")
    if cpu:
        head += ["client CPU (s)", "nginx CPU (s)"]
    if counted:
        head.append("TCP connections")
    head.append("note")
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for measure in case.measures:
        rows.append("| " + " | ".join(_cells(case, measure, counted, cpu)) + " |")
    return rows


def _cells(case: CaseResult, measure: Measure, counted: bool, cpu: bool) -> list[str]:
    cells = [measure.tool]
    if measure.ok:
        cells += [_num(measure.median), _num(min(measure.values)), _num(max(measure.values))]
    else:
        why = measure.unavailable or (f"FAILED: {measure.error}" if measure.error else "no data")
        cells += [why, "", ""]
    if case.reference:
        reference = measure.reference or case.reference
        ratio = case.ratio(reference, measure.tool)
        cells.append("—" if reference == measure.tool or ratio is None else f"{ratio:.2f}")
    if cpu:
        for values in (measure.cpu, measure.server_cpu):
            cells.append(_num(statistics.median(values)) if values and measure.ok else "")
    if counted:
        cells.append(str(int(statistics.median(measure.counts))) if measure.counts else "")
    note = measure.note
    if measure.reference not in (None, case.reference, measure.tool):
        note = "; ".join(filter(None, [note, f"ratio against {measure.reference}"]))
    cells.append(note)
    return cells


def _mixed(case: CaseResult) -> bool:
    """Whether the reference row is not simply robustfetch's (the transports case)."""
    return not case.reference.startswith("robustfetch")


def _load(load: Optional[tuple[float, float, float]]) -> str:
    if load is None:
        return "?"
    text = " / ".join(f"{value:.2f}" for value in load) + " (1 / 5 / 15 min)"
    if load[0] >= 0.5:
        text += ": other processes were busy, timings are noisier"
    return text


def _num(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _first_field(path: Path, name: str) -> Optional[str]:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return None


def _file_system(folder: Path) -> str:
    """``ext4 (/dev/vda)`` for the mount holding ``folder``, from /proc/mounts."""
    best = ("", "?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            inside = str(folder).startswith(mount.rstrip("/") + "/") or str(folder) == mount
            if inside and len(mount) >= len(best[0]):
                best = (mount, kind, device)
    except OSError:
        return "?"
    return f"{best[1]} ({best[2]}, mounted at {best[0]})"


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
