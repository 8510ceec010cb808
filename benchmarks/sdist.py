"""The sdist pip downloads in case 1: a package and a PEP 503 simple index that links it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from benchmarks.common import sha256_file

__all__ = ["SDIST", "make_sdist"]

#: The sdist that pip downloads from the simple index (name, version).
SDIST = ("rfbenchpkg", "1.0")

# A build backend inside the sdist: pip asks it for metadata, nothing needs installing.
_BACKEND = """
import os


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    folder = os.path.join(metadata_directory, "{name}-{version}.dist-info")
    os.mkdir(folder)
    with open(os.path.join(folder, "METADATA"), "w") as handle:
        handle.write("Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n")
    return "{name}-{version}.dist-info"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("a benchmark package: download it, do not build it")
"""


def make_sdist(root: Path, payload: Path) -> str:
    """A ``.tar.gz`` sdist holding ``payload`` and a PEP 503 simple index linking it.

    The link carries ``#sha256=``, which pip verifies. Stored, not compressed
    (gzip level 0), so the archive is the payload's size and quick to make.
    """
    name, version = SDIST
    stem = f"{name}-{version}"
    archive = root / "packages" / f"{stem}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    texts = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n',
        "backend.py": _BACKEND.format(name=name, version=version),
    }
    with tarfile.open(archive, "w:gz", compresslevel=0) as tar:
        for member, text in texts.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{stem}/{member}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        tar.add(payload, arcname=f"{stem}/payload.bin")
    digest = sha256_file(archive)
    page = root / "simple" / name / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    href = f"../../packages/{archive.name}#sha256={digest}"
    page.write_text(f'<!DOCTYPE html>\n<html><body><a href="{href}">{archive.name}</a>\n')
    (root / "simple" / "index.html").write_text(f'<a href="{name}/">{name}</a>\n')
    return digest
