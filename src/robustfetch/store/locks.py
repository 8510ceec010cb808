"""Exclusive locks between processes and threads: flock, else msvcrt, else lock files."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["LockTimeout", "hold"]

_POLL = 0.05
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: A breaker file older than this was left by a process killed while breaking a lock.
_BREAKER_STALE = 10.0

_Release = Callable[[bool], None]


class LockTimeout(TimeoutError):
    """Someone else held the lock for longer than the caller could wait."""


@contextlib.contextmanager
def hold(path: Path, max_wait: float, remove: bool = False) -> Iterator[None]:
    """Hold the exclusive lock named by ``path`` for the ``with`` block.

    Every holder (process or thread) excludes every other; the lock of a
    process that dies is released. Raises :class:`LockTimeout` when it
    stays held for ``max_wait`` seconds (``0``: one try), and ``OSError``
    when the lock file cannot be used (a FIFO or a folder planted there).

    :param remove: delete the lock file when done (``cache clear``): later
        holders notice and lock the new file instead.
    """
    give_up = time.monotonic() + max_wait
    while True:
        release = _try_lock(path)
        if release is not None:
            break
        left = give_up - time.monotonic()
        if left <= 0:
            raise LockTimeout(f"{path} is held by another process or thread")
        time.sleep(min(_POLL, left))
    try:
        yield
    finally:
        release(remove)


def _try_lock(path: Path) -> Optional[_Release]:
    """Take the lock if it is free; None when someone else holds it."""
    # Looked up on every call: tests make fcntl unavailable to check the fallbacks.
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    if fcntl is not None:
        return _flock(fcntl, path)
    try:
        import msvcrt
    except ImportError:
        return _owner_file(path)
    return _msvcrt(msvcrt, path)


def _open_lock_file(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
    fd = os.open(path, flags, 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file; cannot lock it")
    return fd


def _flock(fcntl: Any, path: Path) -> Optional[_Release]:
    # Each open file description is its own holder for flock, so threads
    # that open the file separately exclude each other too.
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    if not names(fd, path):  # removed by ``cache clear`` meanwhile: lock the new one
        os.close(fd)
        return None

    def release(remove: bool) -> None:
        try:
            if remove:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    return release


def _msvcrt(msvcrt: Any, path: Path) -> Optional[_Release]:
    # Windows: a lock on the first byte, held by the handle; released by the OS on exit.
    fd = _open_lock_file(path)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        os.close(fd)
        return None

    def release(remove: bool) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(path)

    return release


#: Tokens of the owner files this process holds (a stale file may carry our pid).
_held: set[str] = set()
_held_lock = threading.Lock()


def _owner_file(path: Path) -> Optional[_Release]:
    """Neither flock nor msvcrt: ``<path>.owner`` created exclusively, holding pid and token.

    A file whose process is gone is taken over; breaking it is itself
    guarded by an exclusive ``<path>.breaker`` file, so that two processes
    finding the same stale owner cannot both take the lock.
    """
    owner = Path(f"{path}.owner")
    token = f"{os.getpid()} {os.urandom(8).hex()}"
    try:
        fd = os.open(owner, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o666)
    except FileExistsError:
        _break_if_stale(owner)
        return None
    try:
        os.write(fd, f"{token}\n".encode())
    finally:
        os.close(fd)
    with _held_lock:
        _held.add(token)

    def release(remove: bool) -> None:
        with _held_lock:
            _held.discard(token)
        if _read_owner(owner) == token:
            with contextlib.suppress(OSError):
                os.unlink(owner)

    return release


def _break_if_stale(owner: Path) -> None:
    breaker = Path(f"{owner}.breaker")
    try:
        fd = os.open(breaker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - os.lstat(breaker).st_mtime > _BREAKER_STALE:
                os.unlink(breaker)
        return
    except OSError:
        return
    os.close(fd)
    try:
        token = _read_owner(owner)  # read again: it may have been taken over meanwhile
        if token is not None and not _alive(token, owner):
            with contextlib.suppress(OSError):
                os.unlink(owner)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(breaker)


def _read_owner(owner: Path) -> Optional[str]:
    try:
        fd = os.open(owner, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


def _alive(token: str, owner: Path) -> bool:
    """Whether the holder named in an owner file may still be running."""
    try:
        pid = int(token.split()[0])
    except (ValueError, IndexError):
        # Not written yet, or torn by a crash between creating and writing it.
        try:
            return time.time() - os.lstat(owner).st_mtime < _BREAKER_STALE
        except OSError:
            return False
    if sys.platform == "win32":
        return True  # os.kill would end the process there (msvcrt is used anyway)
    if pid == os.getpid():
        with _held_lock:
            return token in _held
    try:
        os.kill(pid, 0)  # only reached where fcntl is missing but os.kill can probe
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True


#: An unlocked temporary file this much older than now belongs to a process that died.
ORPHAN_AGE = 10.0
#: Where no flock exists, only age tells: a writer touches its file at every write.
ORPHAN_AGE_UNLOCKED = 24 * 3600.0


def mark_in_use(fd: int) -> None:
    """Flag the open temporary file ``fd`` as being written, until it is closed."""
    try:
        import fcntl
    except ImportError:
        return
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def orphaned(path: Path) -> bool:
    """Whether the temporary file ``path`` was left by a process that died (not in use)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    try:
        age = time.time() - os.lstat(path).st_mtime
    except OSError:
        return False
    if fcntl is None:
        return age > ORPHAN_AGE_UNLOCKED
    if age < ORPHAN_AGE:  # just created: its writer may not hold the lock yet
        return False
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
    except OSError:
        return True  # a link or worse: not a file anyone writes through
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def names(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, not replaced)."""
    try:
        named = os.lstat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
