"""Public value types: Request (an item of fetch_many), FetchResult and ProgressEvent."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from .errors import Attempt

__all__ = ["FetchResult", "ProgressEvent", "Request"]

PathArg = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Request:
    """One file for :func:`robustfetch.fetch_many`; a dict with these keys works too.

    :param url: the first source to try.
    :param sha256: the expected digest (see :func:`robustfetch.fetch`).
    :param fallbacks: more URLs of the same bytes, tried in order.
    :param dest: a file path or an existing folder; ``None`` keeps it in the cache.
    :param filename: the file's name for mirrors, indexes and a folder ``dest``
        (default: the first URL's path).
    :param size: the expected size in bytes.
    :param hashes: more digests, ``{"sha512": value, ...}``, all of which must match.
    """

    url: str
    sha256: Optional[Union[str, Sequence[str]]] = None
    fallbacks: Sequence[str] = ()
    dest: Optional[PathArg] = None
    filename: Optional[str] = None
    size: Optional[int] = None
    hashes: Optional[Mapping[str, Any]] = None


@dataclass(frozen=True)
class FetchResult(os.PathLike):  # type: ignore[type-arg]  # os.PathLike is generic only in stubs
    """A complete, verified file.

    :param path: where it is.
    :param url: the source that served it.
    :param sha256: its sha256, always computed.
    :param size: its size in bytes.
    :param from_cache: served from the cache, with no download.
    :param attempts: every try, the successful one last.
    :param verified_by: whose hash the bytes matched: ``"pin"``, ``"index"``,
        ``"metalink"``, ``"server"``, or ``None`` when nothing vouched for them.
    """

    path: Path
    url: str
    sha256: str
    size: int
    from_cache: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    verified_by: Optional[str] = None

    def __fspath__(self) -> str:
        return os.fspath(self.path)


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of one download: sent per batch of chunks and once with ``done=True``."""

    url: str
    received: int
    total: Optional[int]
    done: bool = False
