"""Private temporary files for a moment's use (a throwaway certificate), removed on exit."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["scratch_files"]


@contextmanager
def scratch_files(
    contents: Mapping[str, bytes], prefix: str = "robustfetch-"
) -> Iterator[dict[str, Path]]:
    """Write each ``name: bytes`` into a fresh private folder; yield the paths; remove it all.

    The folder is readable by its owner only (``mkdtemp``) and each file is
    created new (mode 0600), so a key written here is never exposed or
    swapped for another file; everything is removed on every path out.

    :param contents: file name (a plain name, no ``/``) -> its bytes.
    :param prefix: the start of the folder's name, saying who made it.
    """
    for name in contents:
        if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
            raise ValueError(f"a scratch file needs a plain name, not {name!r}")
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        paths: dict[str, Path] = {}
        for name, data in contents.items():
            path = Path(folder) / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as out:
                out.write(data)
            paths[name] = path
        yield paths
