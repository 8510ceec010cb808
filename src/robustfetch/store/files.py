"""The store's own files: opened without following links, delivered as copies, named safely."""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import signal
import stat
import sys
import threading
from pathlib import Path
from typing import Optional

from .locks import mark_in_use, orphaned

__all__ = [
    "CRASH_VARIABLE",
    "RENAME_OPEN",
    "claim",
    "crash_point",
    "crash_target",
    "create_new",
    "deliver",
    "open_regular",
    "remove",
    "replace",
    "sweep",
    "sync_data",
    "temporary_name",
]

log = logging.getLogger("robustfetch")

_O_BINARY = getattr(os, "O_BINARY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted where a file should be never blocks
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FICLONE = 0x40049409  # Linux ioctl: share the extents of another file (btrfs, XFS, bcachefs)
_COPY = 1 << 20
_SUFFIX = ".robustfetch-part"
#: Bytes of the original name kept in a temporary name: with the 27 bytes around it, the
#: result stays well under the 255-byte limit of common file systems.
_NAME_BYTES = 200

#: Test seam: ``ROBUSTFETCH_TEST_CRASH_AT=<point>`` makes this process kill itself (SIGKILL)
#: at that point, so that tests can check what a crash there leaves behind. Points:
#: ``write`` (after the first bytes are staged), ``sync`` (staged bytes synced, before the
#: commit's rename), ``rename`` (just before it), ``deliver`` (a delivered copy written and
#: synced, before its rename). Never set it outside tests.
CRASH_VARIABLE = "ROBUSTFETCH_TEST_CRASH_AT"


@functools.cache
def crash_target() -> Optional[str]:
    """The point :data:`CRASH_VARIABLE` names, read once per process (tests set it for a child)."""
    return os.environ.get(CRASH_VARIABLE)


def crash_point(point: str) -> None:
    """Die here if the test seam :data:`CRASH_VARIABLE` names ``point``."""
    if crash_target() == point:
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # Windows
            os._exit(137)
        os.kill(os.getpid(), kill)


def temporary_name(name: str) -> str:
    """``.<name>.<random>.robustfetch-part``, the name cut by encoded bytes, not characters."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > _NAME_BYTES:
        # A character cut in two is dropped whole: the name stays valid UTF-8.
        name = raw[:_NAME_BYTES].decode("utf-8", "ignore")
    return f".{name}.{os.urandom(4).hex()}{_SUFFIX}"


def create_new(path: Path, flags: int = os.O_RDWR) -> int:
    """Create ``path``, which must not exist (not even as a link); return its descriptor.

    The file is marked in use while open, so that :func:`sweep` leaves it alone.
    """
    flags |= os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY | _O_CLOEXEC
    # 0o666 lets the umask decide, as for any file a user downloads.
    fd = os.open(path, flags, 0o666)
    mark_in_use(fd)
    return fd


#: Whether a file may be renamed while open (not on Windows): a temporary file
#: then stays open, and so marked in use against sweeps, until it has its name.
RENAME_OPEN = os.name != "nt"

_swept: set[str] = set()
#: The same, as paths, looked up before any ``abspath`` (one per file cost fetch_many dearly).
_swept_folders: set[Path] = set()
_swept_lock = threading.Lock()


def sweep(folder: Path, always: bool = False) -> int:
    """Remove temporary files that processes killed mid-operation left in ``folder``.

    Done once per folder per process (a folder listing per file would cost
    ``fetch_many`` dearly), or every time with ``always``. Returns how many.
    """
    if not always and folder in _swept_folders:  # fetch_many: one folder, hundreds of files
        return 0
    key = os.path.abspath(folder)
    with _swept_lock:
        if key in _swept and not always:
            return 0
        _swept.add(key)
        _swept_folders.add(Path(key))  # absolute: a relative name may change with the cwd
    removed = 0
    try:
        names = [e.name for e in os.scandir(folder) if e.name.endswith(_SUFFIX)]
    except OSError:
        return 0
    for name in names:
        path = folder / name
        if name.startswith(".") and orphaned(path):
            with contextlib.suppress(OSError):
                remove(path)
                removed += 1
                log.info("removed %s, left by a process that was killed", path)
    return removed


def claim(path: Path) -> int:
    """Open the store's file at ``path`` for reading and writing, creating it if missing.

    Anything that is not a regular file with one name (a symbolic link, a
    hard link to someone's file, a FIFO, a device) is removed, never opened
    through: the store writes only into files it made.
    """
    flags = os.O_RDWR | _O_NOFOLLOW | _O_NONBLOCK | _O_BINARY | _O_CLOEXEC
    for _ in range(5):
        if not _O_NOFOLLOW and os.path.islink(path):
            _discard(path, "a symbolic link")
            continue
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                return create_new(path)
            continue
        except OSError:
            if _is_regular(path):
                raise
            _discard(path, "not a regular file")
            continue
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            return fd
        os.close(fd)
        _discard(path, "not a regular file" if not stat.S_ISREG(info.st_mode) else "a hard link")
    raise OSError(errno.EEXIST, f"cannot claim {path}: something keeps replacing it")


def open_regular(path: Path, follow: bool = False) -> Optional[int]:
    """A descriptor reading ``path`` if it is a regular file (by default not through a link).

    None when it is missing or something else (a link, a FIFO: never waited on).
    """
    flags = os.O_RDONLY | _O_NONBLOCK | _O_BINARY | _O_CLOEXEC | (0 if follow else _O_NOFOLLOW)
    if not follow and not _O_NOFOLLOW and os.path.islink(path):
        return None
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def deliver(source: Path, target: Path, mode: Optional[int] = None) -> None:
    """Put a copy of the verified file ``source`` at ``target``, atomically.

    A reflink where the file system offers one, else a copy: never a hard
    link, so that writing into one delivered file changes no other.

    :param mode: permissions of the new file (the umask decides without it).
    """
    sweep(target.parent)
    temporary = target.parent / temporary_name(target.name)
    fd = create_new(temporary, os.O_WRONLY)
    held = True
    try:
        try:
            source_fd = os.open(source, os.O_RDONLY | _O_BINARY | _O_CLOEXEC)
            try:
                if not _reflink(source_fd, fd):
                    _copy(source_fd, fd)
            finally:
                os.close(source_fd)
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            sync_data(fd)
        finally:
            if not RENAME_OPEN:
                os.close(fd)  # Windows renames no open file
                held = False
        if mode is not None and not hasattr(os, "fchmod"):  # Windows
            os.chmod(temporary, mode)
        crash_point("deliver")
        # Open, so marked in use, until renamed: another process's sweep leaves it.
        replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            remove(temporary)
        raise
    finally:
        if held:
            os.close(fd)


def replace(source: Path, target: Path) -> None:
    """``os.replace``, also over a read-only file on Windows."""
    try:
        os.replace(source, target)
    except PermissionError:
        if sys.platform != "win32" or not os.path.isfile(target):
            raise
        os.chmod(target, stat.S_IWRITE | stat.S_IREAD)
        os.replace(source, target)


def remove(path: Path) -> None:
    """Unlink ``path`` (a read-only file on Windows too); missing is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        if sys.platform != "win32":
            raise
        os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
        os.unlink(path)


def sync_data(fd: int) -> None:
    """Make a file's bytes durable (fdatasync: the data and what is needed to read it back)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # macOS, Windows
        os.fsync(fd)


def _reflink(source_fd: int, target_fd: int) -> bool:
    """Share ``source_fd``'s extents with the empty ``target_fd``; False where not offered."""
    if not sys.platform.startswith("linux"):
        return False  # macOS's clonefile() works on paths only; a copy is fine there
    try:
        import fcntl

        fcntl.ioctl(target_fd, _FICLONE, source_fd)
    except (ImportError, OSError):  # EOPNOTSUPP, EXDEV, EINVAL, ENOTTY: not here
        return False
    return True


def _copy(source_fd: int, target_fd: int) -> None:
    """Copy all of ``source_fd`` into ``target_fd`` (in the kernel where it can)."""
    if hasattr(os, "copy_file_range"):
        try:
            while os.copy_file_range(source_fd, target_fd, _COPY * 64):
                pass
            return
        except OSError:  # EXDEV on older kernels, ENOSYS, EINVAL: copy by hand from here
            pass
    while True:
        block = os.read(source_fd, _COPY)
        if not block:
            return
        view = memoryview(block)
        while view:
            view = view[os.write(target_fd, view) :]


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _discard(path: Path, why: str) -> None:
    log.warning("%s is %s, not a file of robustfetch's; removing it", path, why)
    remove(path)
