"""policy/ decides without I/O: checked from the source, so a new import cannot slip in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import robustfetch.policy

POLICY = Path(robustfetch.policy.__file__).parent
IO_MODULES = {
    "socket",
    "ssl",
    "http",
    "urllib3",
    "threading",
    "subprocess",
    "io",
    "os",
    "shutil",
    "tempfile",
    "asyncio",
    "selectors",
    "ftplib",
    "fcntl",
    "certifi",
}
LAYERS = {"cli", "api", "options", "diagnose", "engine", "sources", "store", "transport"}
IO_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(level, module) of every import: level 0 is absolute, 2 is ``from ..x``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def offences(source: str) -> list[str]:
    tree = ast.parse(source)
    bad = []
    for level, module in imported(tree):
        top = module.split(".")[0]
        if level == 0 and top in IO_MODULES:
            bad.append(f"imports {module}")
        if level == 0 and top == "robustfetch" and module.split(".")[1:2] != ["errors"]:
            bad.append(f"imports {module}")
        if level >= 2 and top in LAYERS:
            bad.append(f"imports layer {module}")
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if call and node.func.id in IO_CALLS:  # type: ignore[attr-defined]
            bad.append(f"calls {node.func.id}() at line {node.lineno}")
    return bad


@pytest.mark.parametrize("path", sorted(POLICY.glob("*.py")), ids=lambda p: p.name)
def test_policy_module_is_pure(path: Path) -> None:
    assert offences(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "from os import path",
        "import http.client",
        "from ..transport import Transport",
        "from ..store.cache import Cache",
        "def f():\n    return open('x')",
    ],
)
def test_the_check_sees_io(source: str) -> None:
    assert offences(source)
