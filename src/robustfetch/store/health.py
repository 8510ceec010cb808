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

from .locks import hold

__all__ = ["HealthStore", "HostHealth"]

log = logging.getLogger("robustfetch")

RECORD = "mirror-health.json"
#: Records older than this say nothing about the mirror today.
STALE_AFTER = 30 * 24 * 3600.0
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
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
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
        temporary = self.path.with_name(f".{RECORD}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock between processes sharing the cache, waited for briefly.

        :raises LockTimeout: (an ``OSError``) held for :data:`LOCK_WAIT` seconds.
        """
        return hold(self.path.with_name(RECORD + ".lock"), LOCK_WAIT)
