"""Only transport/ opens sockets and only store/ writes files, diagnose/ included (audit #10).

Checked from the source, as ``tests/policy/test_purity.py`` does for policy/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import robustfetch

PACKAGE = Path(robustfetch.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
#: ``socket.<name>(...)`` calls that open a connection or look a name up.
SOCKET_CALLS = {"socket", "create_connection", "getaddrinfo", "socketpair", "fromfd"}
#: Methods of ``pathlib.Path`` (and ``os`` functions) that change the file system.
WRITING_CALLS = {"write_bytes", "write_text", "mkdir", "touch", "unlink", "rmdir", "symlink_to"}
WRITING_MODULES = {"tempfile", "shutil"}


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def socket_offences(source: str) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, name = node.func.value, node.func.attr
            if isinstance(owner, ast.Name) and owner.id == "socket" and name in SOCKET_CALLS:
                bad.append(f"calls socket.{name}() at line {node.lineno}")
    return bad


def file_offences(source: str) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            bad += [f"imports {a.name}" for a in node.names if a.name in WRITING_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if (node.module or "").split(".")[0] in WRITING_MODULES:
                bad.append(f"imports {node.module}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in WRITING_CALLS:
                bad.append(f"calls .{func.attr}() at line {node.lineno}")
            if isinstance(func, ast.Name) and func.id == "open" and _writes(node):
                bad.append(f"opens a file for writing at line {node.lineno}")
    return bad


def _writes(call: ast.Call) -> bool:
    modes = [*call.args[1:2], *(k.value for k in call.keywords if k.arg == "mode")]
    for mode in modes:
        if not isinstance(mode, ast.Constant) or set(str(mode.value)) & set("wax+"):
            return True  # a computed mode may write
    return False


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if _layer(p) != "transport"],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_transport_opens_sockets(path: Path) -> None:
    assert socket_offences(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "path",
    # cli/ only prints; shutil there is for the terminal size.
    [p for p in MODULES if _layer(p) not in ("store", "cli")],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_store_writes_files(path: Path) -> None:
    assert file_offences(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "check"),
    [
        ("import socket\nsocket.create_connection(('h', 1))", socket_offences),
        ("import socket\ns = socket.socket(2, 1)", socket_offences),
        ("import socket\nsocket.getaddrinfo('h', 1)", socket_offences),
        ("import tempfile", file_offences),
        ("from tempfile import mkdtemp", file_offences),
        ("open('x', 'wb')", file_offences),
        ("open('x', mode='a')", file_offences),
        ("open('x', m)", file_offences),
        ("p.write_bytes(b'')", file_offences),
    ],
)
def test_the_checks_see_offences(source: str, check: object) -> None:
    assert check(source)  # type: ignore[operator]


def test_the_checks_pass_reading() -> None:
    assert file_offences("open('x', 'rb')\nopen('y')") == []
    assert socket_offences("import socket\nsocket.timeout") == []
