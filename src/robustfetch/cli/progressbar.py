"""A one-line progress bar for a terminal, fed with ProgressEvents."""

from __future__ import annotations

import shutil
import threading
import time
from typing import Optional, TextIO

from ..results import ProgressEvent

__all__ = ["BatchProgress", "ProgressBar", "human_size"]


class ProgressBar:
    """Redraws one stderr line at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._started = time.monotonic()
        self._drawn = 0.0
        self._visible = False

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.done or now - self._drawn < 0.1:
            return
        self._drawn = now
        self._draw(event.url, event.received, event.total, now - self._started)

    def finish(self) -> None:
        if self._visible:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._visible = False

    def _draw(self, url: str, received: int, total: Optional[int], elapsed: float) -> None:
        width = shutil.get_terminal_size((80, 20)).columns
        speed = received / elapsed if elapsed > 0 else 0.0
        name = url.rsplit("/", 1)[-1] or url
        if total:
            share = min(received / total, 1.0)
            bar_width = max(10, width - 60)
            filled = int(share * bar_width)
            bar = "#" * filled + "-" * (bar_width - filled)
            text = (
                f"{name[:24]:24} [{bar}] {share:4.0%} {human_size(received)} {human_size(speed)}/s"
            )
        else:
            text = f"{name[:24]:24} {human_size(received)} {human_size(speed)}/s"
        self.stream.write("\r" + text[: width - 1] + "\x1b[K")
        self.stream.flush()
        self._visible = True


def human_size(count: float) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> human_size(3 * 1024 * 1024)
    '3.0 MiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class BatchProgress:
    """One line for a batch of files: files done, bytes received, speed. Thread-safe."""

    def __init__(self, stream: TextIO, files: int) -> None:
        self.stream = stream
        self.files = files
        self._received: dict[str, int] = {}
        self._done = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn = 0.0
        self._visible = False

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.done:
                self._done += 1
            self._received[event.url] = event.received
            now = time.monotonic()
            if now - self._drawn < 0.1 and not (event.done and self._done == self.files):
                return
            self._drawn = now
            received = sum(self._received.values())
            speed = received / max(now - self._started, 1e-6)
            text = f"{self._done}/{self.files} files  {human_size(received)}  {human_size(speed)}/s"
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self._visible = True

    def finish(self) -> None:
        with self._lock:
            if self._visible:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._visible = False
