"""The deadline watchdog: one thread that shuts sockets down in time, and only live ones."""

from __future__ import annotations

import socket
import threading
import time

from robustfetch.transport.watchdog import arm


def test_a_blocked_read_is_woken_when_the_deadline_passes() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(30.0)  # far longer than the deadline: only the watchdog can end it
        watch = arm(time.monotonic() + 0.3)
        assert watch is not None
        watch.attach(ours)
        started = time.monotonic()
        assert ours.recv(10) == b""  # shut down: reads as the end
        assert time.monotonic() - started < 10.0
        assert watch.fired and watch.cancel()


def test_a_cancelled_watch_leaves_the_socket_alone() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watch = arm(time.monotonic() + 0.1)
        assert watch is not None
        watch.attach(ours)
        assert not watch.cancel()
        time.sleep(0.3)
        theirs.sendall(b"still here")
        ours.settimeout(5.0)
        assert ours.recv(10) == b"still here"


def test_a_socket_attached_after_the_deadline_is_shut_down_at_once() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watch = arm(time.monotonic() - 1.0)
        assert watch is not None
        for _ in range(100):
            if watch.fired:
                break
            time.sleep(0.05)
        watch.attach(ours)
        ours.settimeout(5.0)
        assert ours.recv(10) == b""


def test_many_watches_share_one_thread() -> None:
    watches = [arm(time.monotonic() + 0.05 * (i % 5)) for i in range(50)]
    time.sleep(0.5)
    assert all(w is not None and w.fired for w in watches)
    names = [t.name for t in threading.enumerate()]
    assert names.count("robustfetch-watchdog") == 1
    assert arm(None) is None


def test_finished_requests_do_not_pile_up_in_the_watchdog() -> None:
    """A request that ends long before its deadline leaves (almost) nothing behind."""
    from robustfetch.transport.watchdog import _WATCHDOG

    live = arm(time.monotonic() + 600)
    assert live is not None
    for _ in range(5000):
        watch = arm(time.monotonic() + 600)
        assert watch is not None
        watch.cancel()
    with _WATCHDOG._wakeup:
        queued = [entry[2] for entry in _WATCHDOG._heap]
    assert live in queued  # the live watch is kept
    assert len(queued) < 2500
    live.cancel()
