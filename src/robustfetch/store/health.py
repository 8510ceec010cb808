"""Mirror health kept between runs in the cache folder: failures and connect times, locked."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .files import create_new, open_regular, remove, replace, temporary_name
from .locks import hold

__all__ = ["HealthStore", "HostHealth"]

log = logging.getLogger("robustfetch")

RECORD = "mirror-health.json"
#: Records older than this say nothing about the mirror today.
STALE_AFTER = 30 * 24 * 3600.0
_MAX_RECORD = 4 << 20  # far more than any number of mirrors needs
#: Seconds to wait for another process recording health; after that this run's is dropped.
LOCK_WAIT = 5.0


@dataclass(frozen=True)
class HostHealth:
    """What past runs saw of one mirror host.

    :param failures: failed tries since the last success.
    :param connect_time: the last measured TCP connect time, seconds.
    :param updated: when this was recorded (Unix time).
    """

    failures: int = 0
    connect_time: Optional[float] = None
    updated: float = 0.0


class HealthStore:
    """``<cache>/mirror-health.json``; a corrupt or stale record is ignored, never fatal."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / RECORD

    def load(self, now: Optional[float] = None) -> dict[str, HostHealth]:
        current = time.time() if now is None else now
        return {
            host: health
            for host, health in self._read().items()
            if current - health.updated < STALE_AFTER
        }

    def record(
        self, outcomes: Mapping[str, bool], connect_times: Mapping[str, Optional[float]]
    ) -> None:
        """Add one run's outcomes (host -> succeeded) and measured connect times."""
        if not outcomes and not connect_times:
            return
        now = time.time()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                known = self._read()
                for host in set(outcomes) | set(connect_times):
                    before = known.get(host, HostHealth())
                    ok = outcomes.get(host)
                    failures = before.failures if ok is None else (0 if ok else before.failures + 1)
                    measured = connect_times.get(host, before.connect_time)
                    known[host] = HostHealth(failures, measured, now)
                self._write(known)
        except OSError as exc:
            log.info("cannot record mirror health in %s: %s", self.path, exc)

    def _read(self) -> dict[str, HostHealth]:
        try:
            raw: Any = json.loads(self._contents())
            hosts = raw["hosts"]
            return {
                str(host): HostHealth(
                    int(entry["failures"]),
                    None if entry["connect_time"] is None else float(entry["connect_time"]),
                    float(entry["updated"]),
                )
                for host, entry in hosts.items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.info("ignoring unreadable mirror health record %s: %s", self.path, exc)
            return {}

    def _write(self, known: Mapping[str, HostHealth]) -> None:
        document = {
            "version": 1,
            "hosts": {
                host: {
                    "failures": h.failures,
                    "connect_time": h.connect_time,
                    "updated": h.updated,
                }
                for host, h in sorted(known.items())
            },
        }
        data = json.dumps(document, indent=1).encode("utf-8")
        # A fresh name, created exclusively and never through a link, then renamed over
        # the record: what another user planted in a shared cache is replaced, not written.
        temporary = self.path.with_name(temporary_name(RECORD))
        fd = create_new(temporary, os.O_WRONLY)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                remove(temporary)
            raise

    def _contents(self) -> str:
        """The record's text; a link or anything but a regular file reads as missing."""
        fd = open_regular(self.path)
        if fd is None:
            raise FileNotFoundError(self.path)
        with os.fdopen(fd, "rb") as record:
            return record.read(_MAX_RECORD + 1)[:_MAX_RECORD].decode("utf-8")

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock between processes sharing the cache, waited for briefly.

        :raises LockTimeout: (an ``OSError``) held for :data:`LOCK_WAIT` seconds.
        """
        return hold(self.path.with_name(RECORD + ".lock"), LOCK_WAIT)
