"""Hedged requests: a source silent for ``hedge_after`` seconds is raced by the next one."""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from ..errors import Attempt, Reason, SourceFailed
from ..policy.plan import Source
from ..store.staging import Staging
from ..transport.cancel import Cancel
from .transfer import Opened, Transfer

__all__ = ["Race", "Won"]

log = logging.getLogger("robustfetch")

_Outcome = Union[Opened, SourceFailed, BaseException]
OnHead = Callable[[str, Mapping[str, str]], None]


@dataclass
class Won:
    """The head that won: its source, and the tries the race ended (to record before it)."""

    source: Source
    opened: Opened
    others: list[Attempt] = field(default_factory=list)


class _Contender:
    """One source's request on a thread of its own."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.cancel = Cancel()
        self.started = time.monotonic()
        self.outcome: Optional[_Outcome] = None
        self.restart_wanted = False

    def request_restart(self) -> None:
        # Only the thread that streams may touch the staging file; see Race.open.
        self.restart_wanted = True


class Race:
    """The response heads of one request's sources, hedged.

    :meth:`open` asks for one source's head. While no head has come,
    ``hedge_after`` seconds after the latest request started the next
    eligible source is asked too; the first good head wins and every other
    request still running is cancelled (its sockets shut down, so the server
    sees it closed) and recorded as ``superseded``. A source that fails while
    others still run keeps its failure until the sources are walked to it, so
    attempts stay in the order of the sources, which hedging never changes.

    :param transfer: makes the requests.
    :param staging: the file the winner will stream into (read here, never written).
    :param sources: the request's sources; the list may grow while the race runs.
    :param eligible: whether a source may be started early as a hedge.
    :param resume: whether a source's request continues the staged bytes.
    :param on_head: what a source's good head is shown to (``Link`` duplicates).
    :param hedge_after: seconds of silence before the next source joins.
    :param deadline_at: the request's deadline, if any.
    :param home: the request's first URL (where credentials may go).
    """

    def __init__(
        self,
        transfer: Transfer,
        staging: Staging,
        sources: list[Source],
        eligible: Callable[[Source], bool],
        resume: Callable[[Source], bool],
        on_head: Callable[[Source], Optional[OnHead]],
        hedge_after: float,
        deadline_at: Optional[float],
        home: Optional[str] = None,
    ) -> None:
        self._transfer = transfer
        self._staging = staging
        self._sources = sources
        self._eligible = eligible
        self._resume = resume
        self._home = home
        self._on_head = on_head
        #: The source that won instead of the one walked to (set by the caller, read once).
        self.switched: Optional[Source] = None
        self._hedge_after = hedge_after
        self._deadline_at = deadline_at
        self._events: queue.Queue[_Contender] = queue.Queue()
        self._running: dict[int, _Contender] = {}  # id(source) -> contender
        self._finished: dict[int, _Contender] = {}  # failed early, not yet walked to
        self._lock = threading.Lock()
        self._closed = False

    def busy(self) -> bool:
        """Whether another source's request is still running or waiting to be walked to."""
        return bool(self._running or self._finished)

    def open(self, source: Source) -> Won:
        """The first good head among ``source`` and the hedges started while it was silent.

        :raises SourceFailed: ``source`` failed (its own failure, as if tried alone).
        """
        done = self._finished.pop(id(source), None)
        if done is not None:
            return self._settle(done, source)
        contender = self._running.get(id(source))
        if contender is None:
            if self._next_after(source) is None and not self._running:
                # Nothing to race: ask on this thread, as without hedging.
                opened = self._transfer.request(
                    source.url,
                    self._staging,
                    self._deadline_at,
                    self._resume(source),
                    on_head=self._on_head(source),
                    home=self._home,
                )
                return Won(source, opened)
            contender = self._start(source)
        latest: Optional[float] = max(c.started for c in self._running.values())
        while True:
            wait = None if latest is None else max(latest + self._hedge_after - time.monotonic(), 0)
            try:
                finished = self._events.get(timeout=wait)
            except queue.Empty:
                hedge = self._next_after(self._last_running())
                if hedge is not None:
                    log.info(
                        "%s: no response head after %.1f s; also asking %s",
                        source.url,
                        time.monotonic() - contender.started,
                        hedge.url,
                    )
                    latest = self._start(hedge).started
                else:
                    latest = None  # nothing left to hedge with: wait for what runs
                continue
            self._running.pop(id(finished.source), None)
            if isinstance(finished.outcome, Opened):
                return self._win(finished)
            if finished is contender:
                return self._settle(finished, source)
            finished.cancel.close()
            self._finished[id(finished.source)] = finished

    def close(self) -> None:
        """Cancel whatever still runs (the request ended); late heads are closed as they come."""
        with self._lock:
            self._closed = True
        for contender in self._stop_all():
            contender.cancel.close()
        for contender in self._finished.values():
            contender.cancel.close()
        self._finished.clear()

    def _stop_all(self) -> list[_Contender]:
        """Cancel every request still running; those that had finished meanwhile are returned."""
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
            for contender in running:
                contender.cancel.cancel()
            arrived = []
            while not self._events.empty():
                arrived.append(self._events.get_nowait())
        for contender in arrived:
            if isinstance(contender.outcome, Opened):
                contender.outcome.response.close()
        return arrived

    def _settle(self, contender: _Contender, source: Source) -> Won:
        """The outcome of ``source``'s own request, which had no good head."""
        outcome = contender.outcome
        contender.cancel.close()
        if contender.restart_wanted:
            self._staging.restart()
        if isinstance(outcome, SourceFailed):
            raise outcome
        assert outcome is not None and not isinstance(outcome, Opened)
        raise outcome

    def _win(self, winner: _Contender) -> Won:
        assert isinstance(winner.outcome, Opened)
        winner.cancel.close()
        others: list[Attempt] = []
        losers = list(self._running.values())
        arrived = self._stop_all()
        waited = {id(c.source): c for c in losers}
        failed = dict(self._finished)
        self._finished.clear()
        for contender in arrived:
            if isinstance(contender.outcome, SourceFailed):
                failed[id(contender.source)] = contender
        for candidate in self._sources:  # in the order of the sources
            key = id(candidate)
            if key in waited:
                loser = waited[key]
                detail = (
                    f"no response head after {_since(loser):.1f} s; {winner.source.url}"
                    f" answered first (hedge_after={self._hedge_after:g} s); closed"
                )
                others.append(Attempt(candidate.url, Reason.SUPERSEDED, detail))
            elif key in failed:
                outcome = failed[key].outcome
                failed[key].cancel.close()
                if isinstance(outcome, SourceFailed):
                    others.append(
                        Attempt(candidate.url, outcome.reason, outcome.detail, outcome.status)
                    )
        for attempt in others:
            log.info("%s: %s: %s", attempt.url, attempt.reason, attempt.detail)
        return Won(winner.source, winner.outcome, others)

    def _start(self, source: Source) -> _Contender:
        contender = _Contender(source)
        self._running[id(source)] = contender
        resume = self._resume(source)
        thread = threading.Thread(
            target=self._run, args=(contender, resume), name="robustfetch-hedge", daemon=True
        )
        thread.start()
        return contender

    def _run(self, contender: _Contender, resume: bool) -> None:
        outcome: _Outcome
        try:
            outcome = self._transfer.request(
                contender.source.url,
                self._staging,
                self._deadline_at,
                resume,
                cancel=contender.cancel,
                restart=contender.request_restart,
                on_head=self._on_head(contender.source),
                home=self._home,
            )
        except BaseException as exc:  # handed to the thread that waits for it
            outcome = exc
            if isinstance(exc, SourceFailed):
                _release_frames(exc)
        with self._lock:
            late = self._closed or contender.cancel.cancelled
            if not late:
                contender.outcome = outcome
                self._events.put(contender)
        if late:  # the race is over: nobody will read this head
            contender.cancel.close()
            if isinstance(outcome, Opened):
                outcome.response.close()

    def _last_running(self) -> Source:
        started = max(self._running.values(), key=lambda c: c.started)
        return started.source

    def _next_after(self, source: Source) -> Optional[Source]:
        """The next source after ``source`` that may be started now, if any."""
        try:
            position = next(i for i, s in enumerate(self._sources) if s is source)
        except StopIteration:
            return None
        for candidate in self._sources[position + 1 :]:
            key = id(candidate)
            if key in self._running or key in self._finished or candidate.blocked_by:
                continue  # already asked, or never to be asked
            if self._eligible(candidate):
                return candidate
            return None  # an ineligible source in the way: hedging stops before it
        return None


def _release_frames(exc: BaseException) -> None:
    """Drop the locals of the frames ``exc`` and its causes went through.

    A library that fails half-way (urllib3 rejecting a head) may leave its
    connection to be closed by the garbage collector; handed to another
    thread, the exception would keep it open until then.
    """
    seen: set[int] = set()
    item: Optional[BaseException] = exc
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        traceback.clear_frames(item.__traceback__)
        item = item.__cause__ or item.__context__


def _since(contender: _Contender) -> float:
    return time.monotonic() - contender.started
