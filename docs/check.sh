#!/usr/bin/env bash
# Check the documentation and the distributions; installs nothing.
#
#   bash docs/check.sh PYTHON
#
# PYTHON must already have the docs extra, build and twine installed, e.g.
#   PYTHON -m pip install -e '.[test,docs]' build twine
# Steps: the Sphinx build with warnings as errors, then an sdist and a wheel
# built from that sdist, then `twine check --strict` on both. Everything is
# written to a temporary directory, removed on exit; the source tree is
# copied first so the build leaves no build/ or *.egg-info in it.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: bash docs/check.sh PYTHON" >&2
    exit 2
fi
# An absolute path (the steps below change folders), keeping a venv's own
# symlink: resolving it would leave the virtual environment.
case $1 in
    */*) py="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;;
    *) py=$(command -v "$1") ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/robustfetch-docs-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== sphinx (-W) with $("$py" -m sphinx --version)"
(cd "$root" && "$py" -m sphinx -W --keep-going -q -b html docs "$work/html")

echo "== build: sdist, then a wheel from the sdist"
mkdir "$work/src" "$work/dist"
(cd "$root" && tar -cf - \
    --exclude=.git --exclude='./build' --exclude='./dist' --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude='.venv*' --exclude='.ci-venv*' \
    --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.ruff_cache \
    --exclude=.hypothesis --exclude=benchmarks/work --exclude=docs/_build \
    .) | (cd "$work/src" && tar -xf -)
# Quiet unless it fails: setuptools lists every file it copies.
if ! (cd "$work" && "$py" -m build --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1); then
    cat "$work/build.log"
    exit 1
fi

echo "== contents"
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)
"$py" - "$sdist" "$wheel" <<'PYEOF'
import sys, tarfile, zipfile

sdist, wheel = sys.argv[1:]
with tarfile.open(sdist) as t:
    names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
with zipfile.ZipFile(wheel) as z:
    wheel_names = set(z.namelist())
missing = [
    n for n in ("docs/conf.py", "docs/index.rst", "CHANGELOG.md", "LICENSE", "README.md")
    if n not in names
]
if not any(n.startswith("tests/") for n in names):
    missing.append("tests/")
if "robustfetch/py.typed" not in wheel_names:
    missing.append("robustfetch/py.typed (wheel)")
if missing:
    sys.exit(f"missing from the distributions: {', '.join(missing)}")
print("sdist and wheel hold docs/, tests/, CHANGELOG.md, LICENSE and py.typed")
PYEOF

echo "== twine check --strict"
"$py" -m twine check --strict "$work"/dist/*
